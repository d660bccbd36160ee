"""The two backends agree value for value on every key of the real hives.

This is the cross-check that keeps the backends honest: dissect.regf (lazy, the default) and
python-registry (whole file) parse the cells independently; the keys built on them must match in
names, last-write times, subkey names, and every value's name, type and raw bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from azvhdaudit.registry.open import BACKENDS, open_hive_file

from .hivekit import snapshot

#: slow: the two registry backends compared key by key over whole hives
pytestmark = pytest.mark.slow

CASES = {
    # name: (file, logs)
    "SYSTEM": ("SYSTEM", "auto"),
    "SYSTEM_B replayed": ("SYSTEM_B", "auto"),
    "SYSTEM_B as is": ("SYSTEM_B", None),
    "BCD": ("BCD", "auto"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_backends_agree_on_every_key(realdata: Path, case: str) -> None:
    filename, logs = CASES[case]
    snapshots = {}
    states = {}
    for backend in BACKENDS:
        with open_hive_file(realdata / filename, backend=backend, logs=logs) as hive:
            snapshots[backend] = snapshot(hive)
            states[backend] = hive.state
    regf, pyreg = (snapshots[b] for b in BACKENDS)
    assert len(regf) > 100 and sum(len(k[3]) for k in regf) > 100
    assert len(regf) == len(pyreg)
    for mine, theirs in zip(regf, pyreg, strict=True):
        assert mine == theirs, mine[0]
    assert states["regf"] == states["python-registry"]
