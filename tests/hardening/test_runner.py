"""The corpus runner's own limits work: a hang and a runaway allocation are caught and reported as such.

Without these, a corpus run without failures would prove nothing about time and memory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pytest
import runner


def _hang(path: object) -> None:
    while True:
        pass


def _allocate(path: object) -> None:
    hoard = []
    while True:
        hoard.append(bytearray(64 * 1024 * 1024))


def _refuse(path: object) -> None:
    from azvhdaudit.errors import CorruptImageError

    raise CorruptImageError(f"{path}: refused")


def _crash(path: object) -> None:
    raise KeyError("a foreign exception")


@dataclass(frozen=True)
class Job:
    """Replaces azvhdaudit.audit in the worker with ``behaviour`` before the audit runs."""

    behaviour: str

    def build(self, directory: Path) -> Path:
        import azvhdaudit

        azvhdaudit.audit = globals()[self.behaviour]  # type: ignore[attr-defined] - this worker only
        return directory / "image.vhd"


def _jobs() -> list[Job]:
    return [Job("_hang"), Job("_allocate"), Job("_refuse"), Job("_crash")]


@pytest.mark.slow
def test_limits_are_enforced(tmp_path: Path) -> None:
    outcomes = dict(runner.run_all(functools.partial(_jobs), range(4), tmp_path, workers=1))
    kinds = {i: outcomes[i]["kind"] for i in outcomes}
    assert kinds == {0: "hang", 1: "memory", 2: "audit_error", 3: "uncaught"}
    assert outcomes[0]["cpu_seconds"] >= runner.HANG_SECONDS * 0.9
    assert "KeyError" in outcomes[3]["error"]
