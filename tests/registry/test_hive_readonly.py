"""Opening a hive never writes: the files are byte-identical afterwards, and read-only copies open."""

from __future__ import annotations

import hashlib
import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

from azvhdaudit.registry.model import RegKey
from azvhdaudit.registry.open import open_hive, open_hive_file


def exercise_keys(keys: list[RegKey]) -> int:
    for key in keys:
        for value in key.values():
            assert key.value(value.name) == value
    return len(keys)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_files_unchanged_after_replay(hive_copy: Callable[..., Path], backend: str) -> None:
    path = hive_copy("SYSTEM_B", logs=True)
    before = _digests(path.parent)
    stamps = {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()}
    with open_hive_file(path, backend=backend) as hive:
        assert hive.state.replayed
        assert hive.key(r"ControlSet001\Services\ad_driver") is not None
    assert _digests(path.parent) == before
    assert {p.name: p.stat().st_mtime_ns for p in path.parent.iterdir()} == stamps
    assert sorted(before) == ["SYSTEM_B", "SYSTEM_B.LOG1", "SYSTEM_B.LOG2"]  # nothing new beside them


def test_read_only_copies_open(hive_copy: Callable[..., Path], backend: str) -> None:
    path = hive_copy("SYSTEM_B", logs=True)
    for file in path.parent.iterdir():
        os.chmod(file, 0o444)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o444 for p in path.parent.iterdir())
    with open_hive_file(path, backend=backend) as hive:
        assert hive.state.replayed and hive.state.logs == ("LOG1", "LOG2")
        services = hive.key(r"ControlSet001\Services")
        assert services is not None and len(services.subkeys()) == 656


class _NoWrite(io.BytesIO):
    """A stream that fails the test on any attempt to write (root ignores 0444, this does not)."""

    def write(self, *args: object) -> int:  # type: ignore[override]
        raise AssertionError("the hive layer tried to write")

    def truncate(self, *args: object) -> int:  # type: ignore[override]
        raise AssertionError("the hive layer tried to truncate")


def test_streams_never_written(realdata: Path, backend: str) -> None:
    hive_data = (realdata / "SYSTEM_B").read_bytes()
    streams = {name: _NoWrite((realdata / f"SYSTEM_B.{name}").read_bytes()) for name in ("LOG1", "LOG2")}
    hive = open_hive(_NoWrite(hive_data), "SYSTEM", source="SYSTEM_B", backend=backend, logs=streams)
    assert hive.state.replayed
    services = hive.key(r"ControlSet001\Services")
    assert services is not None
    assert exercise_keys(services.subkeys()) == 656
    hive.close()


def test_close_closes_the_file(hive_copy: Callable[..., Path], backend: str) -> None:
    path = hive_copy("BCD")
    hive = open_hive_file(path, backend=backend)
    handle = hive._closers[0].__self__  # type: ignore[attr-defined]
    assert not handle.closed
    hive.close()
    assert handle.closed
