"""Shared fixtures: the committed sample images and the real hives, decompressed once per session.

The samples come from ``samples/`` (built by ``samples/build.py``; see samples/README.md) and are
listed in ``samples/manifest.json``.  Fixtures:

- ``sample_manifest``: manifest entries by sample name (``"gen1-azure.vhd"`` -> dict).
- ``sample_path(name)``: the decompressed image in a session directory; a differencing child is
  decompressed together with its parents, side by side, so its relative locator resolves.
- ``samples``: every sample decompressed, name -> path.
- ``realdata``: a directory with the real hives of ``tests/data/realdata`` decompressed
  (SYSTEM, SYSTEM_B, SYSTEM_B.LOG1, SYSTEM_B.LOG2, BCD).
- ``tools``: fails the test (it does not skip) when a Debian image tool is missing.
- ``sample_builder``: the ``samples/build.py`` module (``build_image``, ``build_large_vhdx`` ...).

Images are decompressed sparsely (runs of zeros become holes), and never written to afterwards:
tests that damage an image work on a copy.
"""

from __future__ import annotations

import importlib.util
import json
import lzma
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES_DIR = ROOT / "samples"
REALDATA_DIR = Path(__file__).resolve().parent / "data" / "realdata"
CHUNK = 1024 * 1024


def load_manifest() -> dict[str, dict[str, Any]]:
    data = json.loads((SAMPLES_DIR / "manifest.json").read_text(encoding="utf-8"))
    return {entry["name"]: entry for entry in data["samples"]}


def load_samples_module(stem: str) -> ModuleType:
    """Import ``samples/<stem>.py`` under a name that cannot clash with a PyPI package (``build``)."""
    name = f"azvhdaudit_samples_{stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SAMPLES_DIR / f"{stem}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_sample_builder() -> ModuleType:
    """samples/build.py, the script that builds every sample image."""
    return load_samples_module("build")


def sparse_unxz(packed: Path, target: Path) -> Path:
    """``packed`` (.xz) decompressed into ``target`` with holes for empty megabytes (samples/unpack.py)."""
    unxz: Callable[[Path, Path], Path] = load_samples_module("unpack").unxz
    return unxz(packed, target)


@pytest.fixture(scope="session")
def sample_manifest() -> dict[str, dict[str, Any]]:
    """samples/manifest.json, entries by sample name."""
    return load_manifest()


@pytest.fixture(scope="session")
def sample_path(
    tmp_path_factory: pytest.TempPathFactory, sample_manifest: dict[str, dict[str, Any]]
) -> Callable[[str], Path]:
    """``sample_path("gen1-azure.vhd")`` -> the decompressed image (parents decompressed beside it)."""
    directory = tmp_path_factory.mktemp("samples")

    def get(name: str) -> Path:
        if name not in sample_manifest:
            raise KeyError(f"{name!r} is not in samples/manifest.json (known: {sorted(sample_manifest)})")
        entry = sample_manifest[name]
        if entry.get("parent"):
            get(entry["parent"])
        target = directory / name
        if not target.exists():
            source = SAMPLES_DIR / entry["file"]
            if entry.get("compression") == "xz":
                sparse_unxz(source, target)
            else:
                shutil.copyfile(source, target)
        return target

    return get


@pytest.fixture(scope="session")
def samples(sample_path: Callable[[str], Path], sample_manifest: dict[str, dict[str, Any]]) -> dict[str, Path]:
    """Every sample decompressed: name -> path."""
    return {name: sample_path(name) for name in sample_manifest}


@pytest.fixture(scope="session")
def realdata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the real hives of tests/data/realdata, decompressed."""
    out = tmp_path_factory.mktemp("realdata-shared")
    for packed in sorted(REALDATA_DIR.glob("*.xz")):
        with lzma.open(packed) as src, open(out / packed.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


@pytest.fixture(scope="session")
def sample_builder() -> ModuleType:
    """The samples/build.py module."""
    return load_sample_builder()


@pytest.fixture(scope="session")
def tools(sample_builder: ModuleType) -> None:
    """Fail (not skip) with the install line when a Debian image tool is missing."""
    missing = sample_builder.missing_tools()
    if missing:
        pytest.fail(
            "Debian image tools missing: " + ", ".join(missing) + ". apt-get install libwin-hivex-perl qemu-utils"
            " fdisk gdisk ntfs-3g dosfstools mtools gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 xz-utils faketime",
            pytrace=False,
        )
