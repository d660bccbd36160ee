"""Dirty hives: detection from the base block, and in-memory replay of the transaction logs.

SYSTEM_B (Windows 10 1709) has primary sequence 1622 and secondary 1621, with LOG1 holding entries
2107-2110 and LOG2 2111-2130: the entries up to 2106 had already been reconciled into the primary file.
"""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import pytest
from Registry.RegistryLog import RegistryLog

from azvhdaudit.registry.logs import parse_base_block, replay_logs
from azvhdaudit.registry.open import open_hive, open_hive_file

#: slow: replays real hive logs and compares both backends
pytestmark = pytest.mark.slow

CCS = "ControlSet001"


def _streams(realdata: Path, *names: str) -> dict[str, io.BytesIO]:
    return {name: io.BytesIO((realdata / f"SYSTEM_B.{name}").read_bytes()) for name in names}


def test_dirty_detected_from_sequence_numbers(realdata: Path) -> None:
    base = parse_base_block((realdata / "SYSTEM_B").read_bytes()[:4096], "SYSTEM_B")
    assert (base.primary_sequence, base.secondary_sequence) == (1622, 1621)
    assert base.dirty and base.checksum_ok
    clean = parse_base_block((realdata / "SYSTEM").read_bytes()[:4096], "SYSTEM")
    assert not clean.dirty and clean.checksum_ok


def test_dissect_regf_dirty_flag_is_inverted(realdata: Path) -> None:
    """dissect.regf 3.14 sets ``dirty`` when the checksum matches; we do not use it (see regf.py)."""
    from dissect.regf.regf import RegistryHive

    with open(realdata / "SYSTEM", "rb") as fh:
        assert RegistryHive(fh).dirty is True  # a clean hive with a valid checksum
    broken = bytearray((realdata / "BCD").read_bytes())
    broken[508] ^= 0xFF
    assert RegistryHive(io.BytesIO(bytes(broken))).dirty is False  # a wrong checksum


def test_replay_state_and_changes(realdata: Path, backend: str) -> None:
    with (
        open_hive_file(realdata / "SYSTEM_B", backend=backend, logs=None) as before,
        open_hive_file(realdata / "SYSTEM_B", backend=backend) as after,
    ):
        assert before.state.dirty and not before.state.replayed
        assert "no transaction logs" in before.state.note
        assert after.state.dirty and after.state.replayed
        assert after.state.logs == ("LOG1", "LOG2")
        assert "2107-2130" in after.state.note and "1621-2106" in after.state.note
        # a service the logs added, a counter they moved on, a drive letter they recorded
        assert before.key(CCS + r"\Services\ad_driver") is None
        assert after.key(CCS + r"\Services\ad_driver") is not None
        epoch = (CCS + r"\Services\SharedAccess\Epoch", "Epoch")
        assert before.key(epoch[0]).value(epoch[1]).data == 0x1AF  # type: ignore[union-attr]
        assert after.key(epoch[0]).value(epoch[1]).data == 0x1B3  # type: ignore[union-attr]
        assert before.key("MountedDevices").value(r"\DosDevices\F:") is None  # type: ignore[union-attr]
        assert after.key("MountedDevices").value(r"\DosDevices\F:") is not None  # type: ignore[union-attr]
        services = (before.key(CCS + r"\Services"), after.key(CCS + r"\Services"))
        assert [len(s.subkeys()) for s in services if s is not None] == [655, 656]


def test_replayed_base_block_is_consistent(realdata: Path) -> None:
    data = (realdata / "SYSTEM_B").read_bytes()
    logs = {name: (realdata / f"SYSTEM_B.{name}").read_bytes() for name in ("LOG1", "LOG2")}
    result = replay_logs(data, parse_base_block(data, "SYSTEM_B"), logs, "SYSTEM_B")
    base = parse_base_block(bytes(result.data), "replayed")
    assert (base.primary_sequence, base.secondary_sequence) == (2130, 2130)
    assert base.checksum_ok and not base.dirty
    assert base.hive_bins_size == 12591104
    assert result.sequences == tuple(range(2107, 2131))


def test_replay_matches_python_registry_recovery(realdata: Path) -> None:
    """python-registry's own RegistryLog, applied to a writable copy in memory, gives the same bytes."""
    data = (realdata / "SYSTEM_B").read_bytes()
    logs = {name: (realdata / f"SYSTEM_B.{name}").read_bytes() for name in ("LOG1", "LOG2")}
    mine = replay_logs(data, parse_base_block(data, "SYSTEM_B"), logs, "SYSTEM_B").data

    primary = io.BytesIO(data)
    first = RegistryLog(primary, io.BytesIO(logs["LOG1"]))
    primary.seek(0)
    second = RegistryLog(primary, io.BytesIO(logs["LOG2"]))
    last = first.recover_hive()
    assert second.recover_hive_continue(last + 1) == 2130
    assert bytes(mine) == primary.getvalue()


@pytest.mark.parametrize(
    ("logs", "replayed", "in_note"),
    [
        (("LOG1", "LOG2"), True, "sequence 2107-2130, from LOG1, LOG2"),
        (("LOG2", "LOG1"), True, "sequence 2107-2130, from LOG1, LOG2"),
        (("LOG1",), True, "sequence 2107-2110, from LOG1"),
        (("LOG2",), True, "sequence 2111-2130, from LOG2"),
        ((), False, "no transaction logs"),
    ],
)
def test_log_combinations(realdata: Path, backend: str, logs: tuple[str, ...], replayed: bool, in_note: str) -> None:
    hive = open_hive(
        io.BytesIO((realdata / "SYSTEM_B").read_bytes()),
        "SYSTEM",
        source="SYSTEM_B",
        backend=backend,
        logs=_streams(realdata, *logs) or None,
    )
    assert hive.state.dirty
    assert hive.state.replayed is replayed
    assert in_note in hive.state.note
    assert hive.state.logs == logs  # the logs found, whether or not they could be applied


# (log, offset of a byte to flip, expected replay, note) -- offsets are inside entries of the real logs
BROKEN_LOGS = [
    ("LOG1", 0x200 + 100, False, "Hash-1 does not match (sequence 2107)"),
    ("LOG1", 0x200 + 8, False, "Hash-2 does not match (sequence 2107)"),  # the flags field
    ("LOG2", 0x5E000 + 1000, True, "sequence 2107-2114"),
    # a log without a valid base block is ignored; LOG2 alone still applies
    ("LOG1", 0x0, True, "LOG1: no valid log base block"),
]


@pytest.mark.parametrize(("log", "at", "replayed", "in_note"), BROKEN_LOGS)
def test_broken_logs(realdata: Path, backend: str, log: str, at: int, replayed: bool, in_note: str) -> None:
    streams = _streams(realdata, "LOG1", "LOG2")
    broken = bytearray(streams[log].getvalue())
    broken[at] ^= 0x01
    streams[log] = io.BytesIO(bytes(broken))
    hive = open_hive(
        io.BytesIO((realdata / "SYSTEM_B").read_bytes()), "SYSTEM", source="SYSTEM_B", backend=backend, logs=streams
    )
    assert hive.state.dirty and hive.state.replayed is replayed
    assert in_note in hive.state.note
    assert hive.key(CCS + r"\Services") is not None


def test_log_entry_sequence_gap_stops_replay(realdata: Path, backend: str) -> None:
    streams = _streams(realdata, "LOG1", "LOG2")
    # renumber LOG2's first entry (2111 -> 2200) and fix its Hash-2 so it verifies: the chain breaks
    from azvhdaudit.registry.logs import marvin32

    log2 = bytearray(streams["LOG2"].getvalue())
    struct.pack_into("<I", log2, 0x200 + 12, 2200)
    struct.pack_into("<Q", log2, 0x200 + 32, marvin32(bytes(log2[0x200 : 0x200 + 32])))
    streams["LOG2"] = io.BytesIO(bytes(log2))
    hive = open_hive(
        io.BytesIO((realdata / "SYSTEM_B").read_bytes()), "SYSTEM", source="SYSTEM_B", backend=backend, logs=streams
    )
    assert hive.state.replayed
    assert "sequence 2107-2110, from LOG1" in hive.state.note
    assert "2200 does not continue sequence 2110" in hive.state.note


def test_logs_found_case_insensitively(realdata: Path, tmp_path: Path, backend: str) -> None:
    shutil.copyfile(realdata / "SYSTEM_B", tmp_path / "SYSTEM")
    shutil.copyfile(realdata / "SYSTEM_B.LOG1", tmp_path / "system.log1")
    shutil.copyfile(realdata / "SYSTEM_B.LOG2", tmp_path / "SYSTEM.LOG2")
    with open_hive_file(tmp_path / "SYSTEM", backend=backend) as hive:
        assert hive.state.replayed and hive.state.logs == ("LOG1", "LOG2")


class _Unreadable(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:
        raise OSError(5, "Input/output error")


def test_unreadable_log_leaves_the_hive_as_is(realdata: Path, backend: str) -> None:
    streams: dict[str, io.BytesIO] = _streams(realdata, "LOG2")
    streams["LOG1"] = _Unreadable()
    hive = open_hive(
        io.BytesIO((realdata / "SYSTEM_B").read_bytes()), "SYSTEM", source="SYSTEM_B", backend=backend, logs=streams
    )
    assert hive.state.dirty and not hive.state.replayed
    assert "cannot read the LOG1 log" in hive.state.note
    assert hive.state.logs == ("LOG2", "LOG1")
