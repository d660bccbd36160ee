"""Fixtures of the signature tests: the real binaries (fetched once, cached, SHA-256 checked) and a work dir."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def material_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("azvhd_material", ROOT / "samples" / "material.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["azvhd_material"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def material(material_module: ModuleType) -> dict[str, bytes]:
    """Every binary of samples/material.py by name (downloaded into the cache on first use)."""
    return {name: material_module.fetch(name) for name in material_module.ITEMS}


@pytest.fixture(scope="session")
def sigwork(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("signing")
