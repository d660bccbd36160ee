"""Fixtures for the container tests: a raw disk with known bytes, converted by qemu-img to every format.

Images are built once per session in a temporary directory; tests that damage an image work on a copy.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent
HYPERV = HERE.parent / "data" / "hyperv"

RAW_SIZE = 8 * 1024 * 1024
#: offsets holding recognisable bytes; 0x1FFFE0 straddles the first 2 MiB block boundary
PATTERN_OFFSETS = (0x1000, 0x1FFFE0, 0x300000, 0x5FFF00, RAW_SIZE - 512)
PATTERN_LENGTH = 64

#: name -> qemu-img convert arguments
CONVERSIONS = {
    "fixed.vhd": ["-O", "vpc", "-o", "subformat=fixed,force_size=on"],
    "fixed-chs.vhd": ["-O", "vpc", "-o", "subformat=fixed"],
    "dynamic.vhd": ["-O", "vpc", "-o", "subformat=dynamic"],
    "dynamic.vhdx": ["-O", "vhdx"],
    "fixed.vhdx": ["-O", "vhdx", "-o", "subformat=fixed"],
    "disk.vmdk": ["-O", "vmdk"],
    "disk.qcow2": ["-O", "qcow2"],
    # text descriptors naming extent files beside them
    "flat.vmdk": ["-O", "vmdk", "-o", "subformat=monolithicFlat"],
    "split.vmdk": ["-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"],
}


def pattern(offset: int) -> bytes:
    return hashlib.sha256(offset.to_bytes(8, "little")).digest() * 2


def make_raw(path: Path) -> bytes:
    data = bytearray(RAW_SIZE)
    data[510:512] = b"\x55\xaa"
    for offset in PATTERN_OFFSETS:
        data[offset : offset + PATTERN_LENGTH] = pattern(offset)
    path.write_bytes(data)
    return bytes(data)


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The raw disk and its qemu-img conversions, by name (``raw.img``, ``fixed.vhd`` ...)."""
    root = tmp_path_factory.mktemp("images")
    raw = root / "raw.img"
    make_raw(raw)
    found = {"raw.img": raw}
    for name, args in CONVERSIONS.items():
        out = root / name
        subprocess.run(["qemu-img", "convert", "-f", "raw", *args, str(raw), str(out)], check=True)
        found[name] = out
    return found


@pytest.fixture(scope="session")
def raw_bytes(images: dict[str, Path]) -> bytes:
    return images["raw.img"].read_bytes()


@pytest.fixture(scope="session")
def hyperv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The Hyper-V-made test files from tests/data/hyperv, decompressed."""
    root = tmp_path_factory.mktemp("hyperv")
    found = {}
    for packed in sorted(HYPERV.glob("*.gz")):
        out = root / packed.name[:-3]
        with gzip.open(packed, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
        found[out.name] = out
    return found


@pytest.fixture
def copy_of(tmp_path: Path, images: dict[str, Path]):  # type: ignore[no-untyped-def]
    """copy_of("dynamic.vhd") -> a writable copy in this test's directory."""

    def copy(name: str, new_name: str | None = None) -> Path:
        target = tmp_path / (new_name or name)
        shutil.copyfile(images[name], target)
        return target

    return copy
