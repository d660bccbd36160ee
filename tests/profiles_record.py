"""Record what a released profile finds on every sample image, to hold a renamed profile to it.

    python tests/profiles_record.py [--ref main] [--profile azure] [--out tests/data/profiles/azure-2022.json]

The profile ``azure-2022`` is the old ``azure`` profile under its document's name: it must give exactly the rule
ids and verdicts the old code gave. This script takes the package as it is at ``--ref`` (``git archive``, into a
temporary directory), audits each sample of samples/manifest.json with that code and ``--profile`` in a separate
interpreter, and writes the results in the form :func:`normalize` gives (timings dropped, the sample's temporary
path masked, the old baseline name mapped to the new one): every OS disk, platform sample and data disk of the
manifest alone, and the manifest's VM (its OS disk with its data disks). tests/test_profiles.py compares the
current code against that file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
#: baseline names renamed since the recorded code: old -> new
RENAMED = {"azure": "azure-2022"}
#: where the temporary copy of the samples is, in any message or evidence
MASK = "<samples>"
#: the recording tests/test_profiles.py reads (xz-compressed JSON)
RECORDED = ROOT / "tests" / "data" / "profiles" / "azure-2022.json.xz"


def _manifest() -> dict[str, Any]:
    return json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def manifest() -> list[dict[str, Any]]:
    """Every sample image of the manifest: the OS disks, the platform samples and the data disks."""
    doc = _manifest()
    return [*doc["samples"], *doc.get("platform_samples", []), *doc.get("data_disks", [])]


def audits() -> dict[str, tuple[str, dict[str, Any]]]:
    """What is recorded: name -> (image name, audit keywords). Each image alone (a data disk as one), and the
    manifest's VM (its OS disk with its data disks)."""
    doc = _manifest()
    out: dict[str, tuple[str, dict[str, Any]]] = {s["name"]: (s["name"], {}) for s in manifest()}
    for disk in doc.get("data_disks", []):
        out[disk["name"]] = (disk["name"], {"role": "data"})
    vm = doc.get("vm")
    if vm:
        out[f"vm:{vm['os_disk']}"] = (vm["os_disk"], {"data_disks": list(vm["data_disks"])})
    return out


def sample_path(sample: dict[str, Any]) -> Path:
    for where in (SAMPLES / sample["file"], SAMPLES / "vm" / sample["file"]):
        if where.exists():
            return where
    raise FileNotFoundError(f"{sample['file']} is not under {SAMPLES}")


def unpack_samples(into: Path) -> dict[str, Path]:
    """Each sample of the manifest as an image file in ``into`` (decompressed, side by side), by name."""
    out = {}
    for sample in manifest():
        target = into / sample["name"]
        if sample.get("compression") == "xz":
            with lzma.open(sample_path(sample)) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(sample_path(sample), target)
        out[sample["name"]] = target
    return out


def normalize(report: dict[str, Any], where: Path) -> dict[str, Any]:
    """The parts of a report (``Report.to_dict()``) that must not change: every result but its duration, with
    the old baseline names mapped to the new, and the summary. ``where`` (the samples' directory) is masked."""
    results = []
    for result in report["results"]:
        kept = {k: v for k, v in result.items() if k != "duration_ms"}
        kept["baselines"] = [RENAMED.get(b, b) for b in result["baselines"]]
        results.append(kept)
    # bytes (raw registry data) are written as their repr, as the recording's interpreter wrote them
    text = json.dumps({"summary": report["summary"], "results": results}, sort_keys=True, default=str)
    return json.loads(text.replace(json.dumps(str(where))[1:-1], MASK))  # type: ignore[no-any-return]


_RUN = """
import json, os, sys
import azvhdaudit
print(azvhdaudit.__file__, file=sys.stderr)
kwargs = json.loads(sys.argv[3])
if "data_disks" in kwargs:
    kwargs["data_disks"] = [os.path.join(os.path.dirname(sys.argv[1]), d) for d in kwargs["data_disks"]]
report = azvhdaudit.audit(sys.argv[1], profile=sys.argv[2], **kwargs)
json.dump(report.to_dict(), sys.stdout, default=str)
"""


def resolve_kwargs(kwargs: dict[str, Any], where: Path) -> dict[str, Any]:
    """The audit keywords with data disk names made paths in ``where``."""
    if "data_disks" in kwargs:
        return {**kwargs, "data_disks": [str(where / d) for d in kwargs["data_disks"]]}
    return dict(kwargs)


def audit_with(code: Path, image: Path, profile: str, kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """``Report.to_dict()`` of ``image`` audited by the package in ``code``, in a separate interpreter."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run(
        [sys.executable, "-c", _RUN, str(image), profile, json.dumps(kwargs or {})],
        capture_output=True,
        text=True,
        env=env,
        cwd=code,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"auditing {image.name} with {code} failed:\n{proc.stderr}")
    used = proc.stderr.strip().splitlines()[-1]
    if not used.startswith(str(code)):
        raise SystemExit(f"the audit ran {used}, not the code of {code}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def load(path: Path = RECORDED) -> dict[str, Any]:
    """A recording this script wrote."""
    return json.loads(lzma.decompress(path.read_bytes()))  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default="main", help="git revision whose package is recorded (default: main)")
    ap.add_argument("--profile", default="azure", help="the profile to run with that code (default: azure)")
    ap.add_argument("--out", type=Path, default=RECORDED)
    args = ap.parse_args(argv)
    commit = subprocess.run(
        ["git", "rev-parse", args.ref], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        code, images = Path(tmp) / "code", Path(tmp) / "samples"
        code.mkdir()
        images.mkdir()
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, "azvhdaudit"], cwd=ROOT, capture_output=True, check=True
        ).stdout
        archive_path = Path(tmp) / "code.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(code, filter="data")
        unpacked = unpack_samples(images)
        digests = {s["name"]: hashlib.sha256(sample_path(s).read_bytes()).hexdigest() for s in manifest()}
        recorded = {}
        for name, (image, kwargs) in audits().items():
            report = audit_with(code, unpacked[image], args.profile, kwargs)
            used = [image, *kwargs.get("data_disks", [])]
            recorded[name] = {"sha256": {u: digests[u] for u in used}, "kwargs": kwargs, **normalize(report, images)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"recorded_from": commit, "profile": args.profile, "samples": recorded}
    args.out.write_bytes(lzma.compress(json.dumps(doc, sort_keys=True).encode("utf-8")))
    print(f"{args.out}: {len(recorded)} samples, code of {commit[:12]} with profile {args.profile!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
