"""Fixtures of the hardening tests: the intact base images (derived from the samples) and the corpus.

Set ``AZVHDAUDIT_BASES=/some/dir`` to keep the base images between runs (they are rebuilt only
when the directory has no ``bases.json``); by default they live in the session's temporary directory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hardkit import Bases, build_bases


@pytest.fixture(scope="session")
def bases(tmp_path_factory: pytest.TempPathFactory) -> Bases:
    where = os.environ.get("AZVHDAUDIT_BASES")
    root = Path(where) if where else tmp_path_factory.mktemp("bases")
    return build_bases(root)
