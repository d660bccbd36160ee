"""Fixtures for the registry tests: the real hives of ``tests/data/realdata`` decompressed once per session.

The decompressed files are checked against the sha256 sums listed in the README beside them, so a test
never runs on data that differs from what the README describes. Tests that damage a hive work on a copy.
"""

from __future__ import annotations

import hashlib
import lzma
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from azvhdaudit.registry.open import BACKENDS

REALDATA = Path(__file__).parent.parent / "data" / "realdata"


def _readme_sums() -> dict[str, str]:
    text = (REALDATA / "README.md").read_text(encoding="utf-8")
    return {name: digest for digest, name in re.findall(r"^\s+([0-9a-f]{64})\s+(\S+)\s*$", text, re.M)}


@pytest.fixture(scope="session")
def realdata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding SYSTEM, SYSTEM_B, SYSTEM_B.LOG1, SYSTEM_B.LOG2 and BCD, decompressed."""
    out = tmp_path_factory.mktemp("realdata")
    sums = _readme_sums()
    for packed in sorted(REALDATA.glob("*.xz")):
        target = out / packed.stem
        with lzma.open(packed) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == sums[target.name], target.name
    return out


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def hive_copy(realdata: Path, tmp_path: Path) -> Callable[..., Path]:
    """Copy a real hive (and its logs) into a fresh directory: ``hive_copy("SYSTEM_B", logs=True)``."""

    def copy(name: str, logs: bool = False) -> Path:
        target = tmp_path / name
        shutil.copyfile(realdata / name, target)
        if logs:
            for log in realdata.glob(f"{name}.LOG*"):
                shutil.copyfile(log, tmp_path / log.name)
        return target

    return copy
