"""Fixtures for the image-level rule tests (the builders are in :mod:`.helpers`)."""

from __future__ import annotations

import pytest

from azvhdaudit.registry.memory import MemoryHive

from .helpers import MakeCtx, load_real_bcd, make_context


@pytest.fixture(scope="session")
def real_bcd_hive() -> MemoryHive:
    return load_real_bcd()


@pytest.fixture
def make_ctx() -> MakeCtx:
    """``make_ctx(facts=..., hives={"SYSTEM": tree}, files={...}, bcd=store, image_type=...)``."""
    return make_context
