"""Real hives (tests/data/realdata, see its README) decompressed once for the facts tests."""

from __future__ import annotations

import lzma
import shutil
from pathlib import Path

import pytest

REALDATA = Path(__file__).parent.parent / "data" / "realdata"


@pytest.fixture(scope="session")
def realdata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("facts-realdata")
    for name in ("SYSTEM", "SYSTEM_B"):
        with lzma.open(REALDATA / f"{name}.xz") as src, open(out / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out
