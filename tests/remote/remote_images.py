"""Disk images for the remote and fleet tests, built reproducibly with qemu-img, sfdisk, mkntfs and ntfs-3g.

Every image holds a real Windows hive from ``tests/data/realdata`` (see its README for the licence):

- ``win7``: a fixed VHD, MBR, one NTFS partition with the Windows 7 SYSTEM hive and a BCD store;
- ``win10-dirty``: the same layout with the dirty Windows 10 SYSTEM hive and its two transaction logs;
- ``large``: a fixed VHD of ``LARGE_SIZE`` (100 GiB) virtual size, sparse on disk: a raw sparse file with a
  small NTFS partition placed by ``qemu-img convert -n``, then converted with
  ``qemu-img convert -O vpc -o subformat=fixed,force_size=on`` (which keeps the holes);
- ``child``: a differencing VHD of ``win7`` beside it (relative locator), with its own MBR disk signature;
- unreadable files: ``garbage`` (no disk signature) and ``truncated`` (a VHD cut short).
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path.insert(0, str(TESTS))

sys.path.insert(0, str(TESTS / "container"))

from diskbuild import MiB, make_ntfs, mbr_disk, place, require_tools  # noqa: E402
from vhdwriter import write_child  # noqa: E402

REALDATA = TESTS / "data" / "realdata"
GiB = 1024 * MiB
LARGE_SIZE = 100 * GiB
CONFIG = "Windows/System32/config/"


def realdata(name: str) -> bytes:
    with lzma.open(REALDATA / f"{name}.xz") as fh:
        return fh.read()


def _files(kind: str) -> dict[str, bytes]:
    bcd = {"Boot/BCD": realdata("BCD")}
    if kind == "win7":
        return {CONFIG + "SYSTEM": realdata("SYSTEM"), **bcd}
    if kind == "win10-dirty":
        return {
            CONFIG + "SYSTEM": realdata("SYSTEM_B"),
            CONFIG + "SYSTEM.LOG1": realdata("SYSTEM_B.LOG1"),
            CONFIG + "SYSTEM.LOG2": realdata("SYSTEM_B.LOG2"),
            **bcd,
        }
    raise ValueError(f"unknown image kind {kind!r}")


def _qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True)


def build_vhd(out: Path, kind: str, *, disk_size: int = 64 * MiB, subformat: str = "fixed") -> Path:
    """A VHD (``fixed`` or ``dynamic``) with one 48 MiB NTFS partition at 1 MiB holding ``kind``'s hives."""
    require_tools()
    work = out.parent / (out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    try:
        volume = make_ntfs(work / "ntfs.img", 48 * MiB, _files(kind))
        raw = mbr_disk(work / "disk.raw", disk_size, [(1, 48, "7", True)])
        place(volume, raw, 1 * MiB)
        _qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", f"subformat={subformat},force_size=on", str(raw), str(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


def build_large(out: Path, kind: str = "win7", *, size: int = LARGE_SIZE) -> Path:
    """A fixed VHD of ``size`` virtual bytes that stays sparse on disk (a few MB allocated)."""
    return build_vhd(out, kind, disk_size=size, subformat="fixed")


#: the MBR disk signature a differencing child writes over its parent's
CHILD_DISK_SIGNATURE = 0x0C0FFEE0


def build_child(out: Path, parent: Path) -> Path:
    """A differencing VHD of ``parent`` (found beside it as ``.\\<name>``) holding a new MBR disk signature."""
    with open(parent, "rb") as fh:
        mbr = bytearray(fh.read(512))
    mbr[440:444] = CHILD_DISK_SIGNATURE.to_bytes(4, "little")
    write_child(out, parent, {0: bytes(mbr)})
    return out


def build_garbage(out: Path) -> Path:
    """A file that is no disk image: no VHD/VHDX/VMDK/QCOW2 signature, no boot sector."""
    out.write_bytes(bytes(range(256)) * 64)
    return out


def build_truncated(source: Path, out: Path) -> Path:
    """The first half of a fixed VHD (whole 512-byte pages): no footer at the end, the partition cut off."""
    data = source.read_bytes()
    out.write_bytes(data[: len(data) // 2 // 512 * 512])
    return out


def allocated(path: Path) -> int:
    """Bytes the file really occupies on disk."""
    return path.stat().st_blocks * 512


if __name__ == "__main__":  # pragma: no cover - a manual aid: python tests/remote/images.py OUTDIR
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    for name in ("win7", "win10-dirty"):
        print(build_vhd(target / f"{name}.vhd", name))
