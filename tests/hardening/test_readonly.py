"""Read-only and least privilege, proven with an audit hook over whole audits of every sample.

References: PEP 578 (``sys.addaudithook``; the ``open``, ``os.*`` and ``shutil.*`` audit events);
readonly_probe.py runs the audits in a subprocess, since a hook cannot be removed.

- No ``open`` in a writing mode (``w a x +`` or ``O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|O_APPEND``), no file
  created, renamed, copied, removed or re-permissioned, no writable mmap, anywhere.
- The only data files opened are the image and its parents.
- SAM and SECURITY are opened only when asked for: never by ``open_image`` by default, never by an
  audit without the rules that read them (checked through the library's ``open_hive``, since the
  hives are read through NTFS inside the image; there is no host path to watch).
- A differencing chain reads of a file that is not its valid parent only what identifies it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from azvhdaudit.engine import select_rules
from azvhdaudit.errors import ParentError, ParentMismatchError
from azvhdaudit.image import open_image

#: slow: audits the corpus's base images under an audit hook
pytestmark = pytest.mark.slow

PROBE = Path(__file__).with_name("readonly_probe.py")
LSA_HIVES = {"SAM", "SECURITY"}


def probe(mode: str, paths: list[Path]) -> dict[str, Any]:
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")  # the interpreter's own .pyc writes are not ours
    proc = subprocess.run(
        [sys.executable, str(PROBE), mode, *map(str, paths)], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(proc.stdout.splitlines()[-1])


def data_files(opened: list[list[Any]]) -> set[str]:
    """Opened paths that are not code, packaged data or the interpreter's own files."""
    skip = (
        sys.prefix,
        sys.base_prefix,
        str(Path(__file__).resolve().parents[2] / "azvhdaudit"),
        "/usr/",
        "/etc/",
        "/proc/",
        "/dev/",
    )
    return {p for p, _m, _f in opened if not p.startswith(skip) and not p.endswith((".py", ".pyc", ".pth"))}


@pytest.fixture(scope="module")
def chains(samples: dict[str, Path], sample_manifest: dict[str, dict[str, Any]]) -> dict[Path, set[str]]:
    """Each sample -> the files of its chain (itself and its parents)."""
    out = {}
    for name, path in samples.items():
        files, entry = {str(path)}, sample_manifest[name]
        while entry.get("parent"):
            files.add(str(samples[entry["parent"]]))
            entry = sample_manifest[entry["parent"]]
        out[path] = files
    return out


@pytest.fixture(scope="module")
def runs(samples: dict[str, Path]) -> dict[str, dict[str, Any]]:
    paths = sorted(samples.values())
    return {mode: probe(mode, paths) for mode in ("audit", "open_image", "audit-with-lsa")}


def test_hook_sees_writes(tmp_path: Path) -> None:
    result = probe("selftest", [tmp_path / "written"])
    assert any("written" in v and "mode='w'" in v for v in result["violations"])
    assert any(v.startswith("os.mkdir") for v in result["violations"])


@pytest.mark.parametrize("mode", ["audit", "open_image", "audit-with-lsa"])
def test_nothing_is_written(runs: dict[str, dict[str, Any]], samples: dict[str, Path], mode: str) -> None:
    result = runs[mode]
    assert result["errors"] == {}
    assert result["violations"] == []
    assert len({h.split("#")[0] for h in result["hives"]}) == len(samples)  # every sample was really read


@pytest.mark.parametrize("mode", ["audit", "open_image"])
def test_only_the_chain_is_opened(runs: dict[str, dict[str, Any]], chains: dict[Path, set[str]], mode: str) -> None:
    allowed = set().union(*chains.values())
    opened = data_files(runs[mode]["opened"])
    assert opened <= allowed, opened - allowed
    assert opened == allowed  # every sample and parent was opened


def test_open_image_never_opens_sam_or_security(runs: dict[str, dict[str, Any]]) -> None:
    os_disks = 0
    for image, names in runs["open_image"]["hives"].items():
        assert not LSA_HIVES & set(names), image
        os_disks += "SYSTEM" in names
    assert os_disks >= 5
    opened = {p.replace("\\", "/").lower() for p in data_files(runs["open_image"]["opened"])}
    assert not any(p.endswith(("config/sam", "config/security")) for p in opened)


def test_audit_opens_sam_and_security_only_when_asked(runs: dict[str, dict[str, Any]]) -> None:
    # by default never, although rules that read them are selected (they are then "not checked")
    os_disks = 0
    for image, names in runs["audit"]["hives"].items():
        assert not LSA_HIVES & set(names), image
        os_disks += "SYSTEM" in names
    assert os_disks >= 5
    opened = {p.replace("\\", "/").lower() for p in data_files(runs["audit"]["opened"])}
    assert not any(p.endswith(("config/sam", "config/security")) for p in opened)
    # asked for (with_lsa=True), and rules that read them are selected: opened on every OS disk
    needing = [
        r.id for r in select_rules("azure") if r.id.startswith("rdp.user_right") or r.id == "rdp.builtin_admin_known"
    ]
    assert needing
    for image, names in runs["audit-with-lsa"]["hives"].items():
        if "SYSTEM" in names:  # an OS disk (a data disk has no hives)
            assert LSA_HIVES <= set(names), image


def test_with_lsa_opens_them_only_for_the_rules_that_read_them() -> None:
    from azvhdaudit.engine import wanted_hives

    assert wanted_hives("azure") == ("SYSTEM", "SOFTWARE")
    assert set(wanted_hives("azure", with_lsa=True)) == {"SYSTEM", "SOFTWARE", "SAM", "SECURITY"}
    assert wanted_hives("azure", ignore=["rdp.user_right*", "rdp.builtin_admin_known"], with_lsa=True) == (
        "SYSTEM",
        "SOFTWARE",
    )


class Counting:
    """An opener that counts the bytes read from each path."""

    def __init__(self) -> None:
        self.read: dict[str, int] = {}

    def __call__(self, path: str) -> BinaryIO:
        fh = open(path, "rb")  # the container owns and closes it
        counts = self.read
        counts.setdefault(path, 0)
        real_read, real_readinto = fh.read, fh.readinto

        def read(n: int = -1) -> bytes:
            data = real_read(n)
            counts[path] += len(data)
            return data

        def readinto(b: Any) -> int:
            n = real_readinto(b)
            counts[path] += n or 0
            return n

        fh.read, fh.readinto = read, readinto  # type: ignore[method-assign]
        return fh


@pytest.mark.parametrize(
    ("replace_with", "error"),
    [
        ("gen1-misaligned.vhd", ParentMismatchError),  # a VHD, but not the one the child was made from
        (b"just some text\n" * 10000, ParentError),  # not an image
    ],
)
def test_chain_does_not_read_an_invalid_parent(
    tmp_path: Path, sample_path: Callable[[str], Path], replace_with: str | bytes, error: type[Exception]
) -> None:
    child = Path(shutil.copyfile(sample_path("gen1-azure-child.vhd"), tmp_path / "gen1-azure-child.vhd"))
    parent = tmp_path / "gen1-azure.vhd"
    if isinstance(replace_with, bytes):
        parent.write_bytes(replace_with)
    else:
        shutil.copyfile(sample_path(replace_with), parent)
    opener = Counting()
    with pytest.raises(error):
        open_image(child, opener=opener)
    # identified by its first sectors and its footer (format probes): far less than one 2 MiB data block
    assert 0 < opener.read[str(parent)] <= 64 * 1024


def test_signed_files_are_verified_without_writing_or_spawning(tmp_path: Path) -> None:
    # The platform samples carry Authenticode-signed drivers and a signed boot manager: verifying them loads the
    # crypto stack, which must neither open a file for writing nor run a helper program (ldconfig) mid-audit.
    import lzma

    samples_dir = Path(__file__).resolve().parents[2] / "samples"
    manifest = json.loads((samples_dir / "manifest.json").read_text(encoding="utf-8"))
    paths = []
    for entry in manifest["platform_samples"]:
        target = tmp_path / entry["name"]
        with lzma.open(samples_dir / entry["file"]) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        paths.append(target)
    result = probe("audit", paths)
    assert result["errors"] == {}
    assert result["violations"] == []
    assert len({h.split("#")[0] for h in result["hives"]}) == len(paths)
