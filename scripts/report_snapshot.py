"""Write the JSON report of every sample image under every profile, timings removed, so two runs compare byte
for byte; and compare two such snapshots result by result.

    python scripts/report_snapshot.py write OUT_DIR [--images DIR]
    python scripts/report_snapshot.py compare BEFORE_DIR AFTER_DIR

``write`` decompresses the committed samples listed in ``samples/manifest.json`` (``samples``,
``platform_samples``, ``data_disks``) into ``--images`` (a temporary directory by default; an image already
there is reused; a sample whose ``.xz`` is absent is built with ``samples/build.py --out``), then runs
``azvhdaudit audit --format json`` on each one:

- every sample and platform sample under the profiles ``azure``, ``azure-2022`` and ``azure-2017`` (a platform
  sample with its manifest ``target`` as ``--security-type`` / ``--disk-controller``);
- the compliant sample again with ``--with-lsa`` (the rules that read SECURITY and SAM), and as generalized and
  specialized (``--image-type``);
- the manifest's VM (its OS disk with its data disks) and each data disk alone (``--role data``).

Each report is written as ``<name>.json`` with the fields that measure time (``started``, ``finished``,
``timings_ms``, ``duration_ms``) removed and the image directory replaced by ``<images>``; ``exit_codes.json``
holds each command's exit code. ``compare`` prints every difference between two snapshots (a changed exit code,
a result added or removed, a field of a result or of the report that changed) and exits 1 when there is one.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
sys.path.insert(0, str(SAMPLES))
import unpack  # noqa: E402  (samples/unpack.py; samples/ is not a package)

PROFILES = ("azure", "azure-2022", "azure-2017")
#: fields whose value is a time or a duration: they differ on every run
TIMING_FIELDS = frozenset({"started", "finished", "timings_ms", "duration_ms"})


def _images(manifest: dict[str, Any], directory: Path) -> dict[str, Path]:
    """Every sample of the manifest as an image file in ``directory`` (name -> path)."""
    entries = [*manifest["samples"], *manifest["platform_samples"], *manifest["data_disks"]]
    if any(not (SAMPLES / e["file"]).exists() for e in entries if not (directory / e["name"]).exists()):
        subprocess.run([sys.executable, str(SAMPLES / "build.py"), "--out", str(directory)], check=True)
    paths = {}
    for entry in entries:
        target = directory / entry["name"]
        if not target.exists():
            packed = SAMPLES / entry["file"]
            if not packed.exists():
                packed = directory / entry["file"]
            unpack.unxz(packed, target)
        paths[entry["name"]] = target
    return paths


def _runs(manifest: dict[str, Any], images: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(report name, audit arguments) for every audit of the snapshot."""
    runs: list[tuple[str, list[str]]] = []
    for entry in manifest["samples"]:
        for profile in PROFILES:
            runs.append((f"{entry['name']}.{profile}", [str(images[entry["name"]]), "--profile", profile]))
    for entry in manifest["platform_samples"]:
        target = entry.get("target") or {}
        flags = []
        if target.get("security_type"):
            flags += ["--security-type", target["security_type"]]
        if target.get("disk_controller"):
            flags += ["--disk-controller", target["disk_controller"]]
        for profile in PROFILES:
            runs.append((f"{entry['name']}.{profile}", [str(images[entry["name"]]), "--profile", profile, *flags]))
    compliant = str(images[manifest["samples"][0]["name"]])
    runs.append(("lsa.azure", [compliant, "--with-lsa"]))
    runs.append(("lsa.azure-2017", [compliant, "--with-lsa", "--profile", "azure-2017"]))
    for image_type in ("generalized", "specialized"):
        runs.append((f"image-type-{image_type}.azure", [compliant, "--image-type", image_type]))
    vm = manifest["vm"]
    data_flags = [arg for name in vm["data_disks"] for arg in ("--data-disk", str(images[name]))]
    runs.append(("vm.azure", [str(images[vm["os_disk"]]), *data_flags]))
    for entry in manifest["data_disks"]:
        runs.append((f"{entry['name']}.data", [str(images[entry["name"]]), "--role", "data"]))
    return runs


def _scrub(value: Any, directory: str) -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, directory) for k, v in value.items() if k not in TIMING_FIELDS}
    if isinstance(value, list):
        return [_scrub(v, directory) for v in value]
    if isinstance(value, str):
        return value.replace(directory, "<images>")
    return value


def write(out: Path, images_dir: Path | None) -> int:
    manifest = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="report-snapshot-") as tmp:
        directory = images_dir or Path(tmp)
        directory.mkdir(parents=True, exist_ok=True)
        images = _images(manifest, directory)
        codes = {}
        for name, args in _runs(manifest, images):
            raw = Path(tmp) / "report.json"
            cmd = [sys.executable, "-m", "azvhdaudit", "audit", *args, "--format", "json", "-o", str(raw)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            codes[name] = done.returncode
            if done.returncode not in (0, 1):
                print(f"{name}: exit {done.returncode}: {done.stderr.strip()}", file=sys.stderr)
                continue
            report = _scrub(json.loads(raw.read_text(encoding="utf-8")), str(directory))
            (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            print(f"{name}: exit {done.returncode}")
        (out / "exit_codes.json").write_text(json.dumps(codes, indent=2) + "\n", encoding="utf-8")
    return 0


def _results(report: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["disk"], r["rule_id"]): r for r in report.get("results", [])}


def compare(before: Path, after: Path) -> int:
    lines: list[str] = []
    names = sorted({p.name for p in before.glob("*.json")} | {p.name for p in after.glob("*.json")})
    for name in names:
        a_path, b_path = before / name, after / name
        if not a_path.exists() or not b_path.exists():
            lines.append(f"{name}: only in {'after' if not a_path.exists() else 'before'}")
            continue
        if a_path.read_bytes() == b_path.read_bytes():
            continue
        a, b = json.loads(a_path.read_text(encoding="utf-8")), json.loads(b_path.read_text(encoding="utf-8"))
        if name == "exit_codes.json":
            for key in sorted(set(a) | set(b)):
                if a.get(key) != b.get(key):
                    lines.append(f"{name}: {key}: {a.get(key)} -> {b.get(key)}")
            continue
        for key in sorted(set(a) | set(b)):
            if key != "results" and a.get(key) != b.get(key):
                lines.append(f"{name}: {key}: {json.dumps(a.get(key))} -> {json.dumps(b.get(key))}")
        ra, rb = _results(a), _results(b)
        if list(ra) != list(rb) and set(ra) == set(rb):
            lines.append(f"{name}: results in a different order")
        for rid in [*ra, *(k for k in rb if k not in ra)]:
            if rid not in rb or rid not in ra:
                lines.append(f"{name}: {rid[1]} ({rid[0]}) only in {'before' if rid not in rb else 'after'}")
                continue
            for field in sorted(set(ra[rid]) | set(rb[rid])):
                old, new = ra[rid].get(field), rb[rid].get(field)
                if old != new:
                    lines.append(f"{name}: {rid[1]} ({rid[0]}): {field}: {json.dumps(old)} -> {json.dumps(new)}")
    print("\n".join(lines) if lines else "no differences")
    return 1 if lines else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="audit every sample and write the scrubbed JSON reports")
    w.add_argument("out", type=Path)
    w.add_argument("--images", type=Path, help="where the decompressed images live (default: a temporary dir)")
    c = sub.add_parser("compare", help="list the differences between two snapshots")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    if args.command == "write":
        return write(args.out, args.images)
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
