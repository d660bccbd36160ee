"""Fixtures for the container tests: a raw disk with known bytes, converted by qemu-img to every format.

Images are built once per session in a temporary directory; tests that damage an image work on a copy.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from container_samples import CONVERSIONS, make_raw

HERE = Path(__file__).parent
HYPERV = HERE.parent / "data" / "hyperv"


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
