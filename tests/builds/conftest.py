"""Fixtures: the images of buildkit.py, built once per session; the committed gen1 sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from .buildkit import build_all


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory, tools: None) -> dict[str, Path]:
    """gen1-week2.vhd, web-clone.vhd and web-other.vhd (see buildkit.py), about 7 s each to build."""
    return build_all(tmp_path_factory.mktemp("builds-work"), tmp_path_factory.mktemp("builds"))


@pytest.fixture(scope="session")
def gen1(sample_path: Callable[[str], Path]) -> Path:
    return sample_path("gen1-azure.vhd")
