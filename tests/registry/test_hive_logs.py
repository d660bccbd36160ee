"""The base block checksum, Marvin32 on real log entries, and old-format (DIRT) log replay."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from azvhdaudit.registry.logs import (
    MARVIN32_SEED,
    hive_checksum,
    marvin32,
    parse_base_block,
    parse_new_log,
)
from azvhdaudit.registry.open import open_hive, open_hive_file

from .hivekit import BASE, cell, find_key, fix_checksum, patch, value_cell

# --- checksum -----------------------------------------------------------------------------------


def _block_with_xor(target: int) -> bytes:
    """508 bytes whose XOR-32 is ``target`` (the last word makes up the difference)."""
    head = bytearray(b"regf" + bytes(500))
    value = 0
    for (word,) in struct.iter_unpack("<I", bytes(head)):
        value ^= word
    return bytes(head) + struct.pack("<I", value ^ target)


@pytest.mark.parametrize(
    ("xor", "stored"),
    [(0x12345678, 0x12345678), (0, 1), (0xFFFFFFFF, 0xFFFFFFFE), (1, 1)],
)
def test_checksum_special_cases(xor: int, stored: int) -> None:
    assert hive_checksum(_block_with_xor(xor)) == stored


@pytest.mark.parametrize("name", ["SYSTEM", "SYSTEM_B", "BCD", "SYSTEM_B.LOG1", "SYSTEM_B.LOG2"])
def test_real_checksums_verify(realdata: Path, name: str) -> None:
    assert parse_base_block((realdata / name).read_bytes()[:512], name).checksum_ok


# --- new-format logs ----------------------------------------------------------------------------


@pytest.mark.parametrize(("log", "first", "count"), [("LOG1", 2107, 4), ("LOG2", 2111, 20)])
def test_every_real_log_entry_verifies(realdata: Path, log: str, first: int, count: int) -> None:
    entries, problem = parse_new_log((realdata / f"SYSTEM_B.{log}").read_bytes(), log, "SYSTEM_B")
    assert problem == ""
    assert [e.sequence for e in entries] == list(range(first, first + count))
    assert all(e.hive_bins_size % 4096 == 0 and e.pages for e in entries)


def test_marvin32_seed_reading(realdata: Path) -> None:
    """The spec's decimal seed, read as an integer, does not verify; its little-endian bytes do."""
    data = (realdata / "SYSTEM_B.LOG1").read_bytes()
    hash2 = struct.unpack_from("<Q", data, 0x200 + 32)[0]
    assert marvin32(data[0x200 : 0x200 + 32]) == hash2
    assert MARVIN32_SEED.to_bytes(8, "big") == (14219357686671994754).to_bytes(8, "little")
    assert marvin32(data[0x200 : 0x200 + 32], seed=14219357686671994754) != hash2


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5, 7, 8])
def test_marvin32_depends_on_every_byte_and_length(length: int) -> None:
    data = bytes(range(1, length + 1))
    assert marvin32(data) != marvin32(data + b"\x00")
    if length:
        assert marvin32(data) != marvin32(data[:-1] + bytes([data[-1] ^ 0x80]))


# --- old-format logs ----------------------------------------------------------------------------


def _description_key(data: bytes) -> str:
    """Path of the description element of {bootmgr}'s default loader in the BCD test hive."""
    bootmgr = find_key(data, r"Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements\23000003")
    vk = cell(data, value_cell(data, bootmgr, "Element"))
    size, offset = struct.unpack_from("<II", vk, 4)
    guid = cell(data, offset)[:size].decode("utf-16-le").rstrip("\x00")
    return rf"Objects\{guid}\Elements\12000004"


def _old_log_case(bcd: bytes, *, timestamp_delta: int = 0) -> tuple[bytes, bytes, str]:
    """A dirty copy of BCD and an old-format log whose one dirty page renames the default loader."""
    path = _description_key(bcd)
    vk = cell(bcd, value_cell(bcd, find_key(bcd, path), "Element"))
    size, data_offset = struct.unpack_from("<II", vk, 4)
    text_at = BASE + data_offset + 4
    assert bcd[text_at : text_at + size].decode("utf-16-le").rstrip("\x00") == "Windows 10"
    updated = bcd[:text_at] + "Windows 11".encode("utf-16-le") + bcd[text_at + 20 :]

    seq1, seq2, stamp = struct.unpack_from("<IIQ", bcd, 4)
    dirty = fix_checksum(patch(bcd, 4, "<II", seq2 + 1, seq2))
    bins = struct.unpack_from("<I", bcd, 40)[0]
    page = (text_at - BASE) // 512
    bitmap = bytearray(bins // 512 // 8)
    bitmap[page // 8] |= 1 << (page % 8)
    log_base = bytearray(dirty[:512])
    struct.pack_into("<IIQ", log_base, 4, seq2 + 1, seq2 + 1, stamp + timestamp_delta)
    struct.pack_into("<I", log_base, 28, 1)  # file type: transaction log (old format)
    log_base = bytearray(fix_checksum(bytes(log_base)))
    vector = (b"DIRT" + bytes(bitmap)).ljust(512, b"\x00")
    log = bytes(log_base) + vector + updated[BASE + page * 512 : BASE + (page + 1) * 512]
    return dirty, log, path


def test_old_format_log_replays(realdata: Path, tmp_path: Path, backend: str) -> None:
    dirty, log, path = _old_log_case((realdata / "BCD").read_bytes())
    (tmp_path / "BCD").write_bytes(dirty)
    (tmp_path / "BCD.LOG").write_bytes(log)
    with open_hive_file(tmp_path / "BCD", backend=backend) as hive:
        assert hive.state.dirty and hive.state.replayed and hive.state.logs == ("LOG",)
        assert "1 dirty pages" in hive.state.note
        element = hive.key(path).value("Element")  # type: ignore[union-attr]
        assert element is not None and element.data == "Windows 11"
    with open_hive_file(tmp_path / "BCD", backend=backend, logs=None) as hive:
        assert hive.state.dirty and not hive.state.replayed
        assert hive.key(path).value("Element").data == "Windows 10"  # type: ignore[union-attr]


def test_old_format_log_of_another_write_is_refused(realdata: Path, backend: str) -> None:
    dirty, log, path = _old_log_case((realdata / "BCD").read_bytes(), timestamp_delta=1)
    hive = open_hive(io.BytesIO(dirty), "BCD", source="BCD", backend=backend, logs={"LOG": io.BytesIO(log)})
    assert hive.state.dirty and not hive.state.replayed
    assert "timestamp" in hive.state.note
    assert hive.key(path).value("Element").data == "Windows 10"  # type: ignore[union-attr]
