"""Write VHDX log entries exactly as [MS-VHDX] 2.3 lays them out, for the log replay tests.

QEMU leaves a real pending log only one entry long (it flushes after every entry), so sequences of several
entries, zero descriptors, entries that wrap around the end of the log and damaged entries are written here,
into the log region of a disk qemu-img made, and replayed by ``qemu-img check -r all`` on a copy for
comparison. CRC-32C from dissect.util, not from the code under test.

Layouts: entry header "loge" (64 bytes: signature, checksum, entry_length, tail, sequence u64,
descriptor_count, reserved, log_guid, flushed_file_offset u64, last_file_offset u64); descriptors of 32
bytes ("desc": trailing 4 B, leading 8 B, file_offset, sequence; "zero": reserved, zero_length, file_offset,
sequence); data sectors of 4096 bytes ("data", sequence_high, 4084 bytes, sequence_low).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from dissect.util.hash.crc32c import crc32c
from vhdxpatch import HEADER_OFFSETS, patch_headers

SECTOR = 4096
MiB = 1024 * 1024


@dataclass
class Data:
    """A data descriptor: write ``sector`` (4096 bytes) at ``file_offset``."""

    file_offset: int
    sector: bytes


@dataclass
class Zero:
    """A zero descriptor: ``length`` zero bytes at ``file_offset``."""

    file_offset: int
    length: int


def entry(
    sequence: int, updates: list[Data | Zero], log_guid: UUID, *, tail: int = 0, flushed: int = 0, last: int = 0
) -> bytearray:
    """One log entry (header, descriptor sectors, data sectors) with its CRC-32C."""
    count = len(updates)
    desc_sectors = -(-(count + 2) // 128)
    datas = [u for u in updates if isinstance(u, Data)]
    length = (desc_sectors + len(datas)) * SECTOR
    out = bytearray(length)
    struct.pack_into(
        "<4sIIIQII16sQQ", out, 0, b"loge", 0, length, tail, sequence, count, 0, log_guid.bytes_le, flushed, last
    )
    at = desc_sectors * SECTOR
    for i, update in enumerate(updates):
        if isinstance(update, Data):
            assert len(update.sector) == SECTOR
            s = update.sector
            struct.pack_into("<4s4s8sQQ", out, 64 + i * 32, b"desc", s[4092:], s[:8], update.file_offset, sequence)
            struct.pack_into("<4sI", out, at, b"data", sequence >> 32)
            out[at + 8 : at + 4092] = s[8:4092]
            struct.pack_into("<I", out, at + 4092, sequence & 0xFFFFFFFF)
            at += SECTOR
        else:
            struct.pack_into("<4sIQQQ", out, 64 + i * 32, b"zero", 0, update.length, update.file_offset, sequence)
    seal(out)
    return out


def seal(raw: bytearray) -> None:
    """Recompute the entry's checksum (after a test changed a field on purpose)."""
    raw[4:8] = bytes(4)
    raw[4:8] = crc32c(bytes(raw)).to_bytes(4, "little")


def log_region(path: Path) -> tuple[int, int]:
    """(LogOffset, LogLength) of the current header."""
    data = path.read_bytes()
    best = max(HEADER_OFFSETS, key=lambda h: struct.unpack_from("<Q", data, h + 8)[0])
    length, offset = struct.unpack_from("<IQ", data, best + 68)
    return int(offset), int(length)


def write_log(path: Path, entries: list[tuple[int, bytes]], log_guid: UUID) -> None:
    """Put each entry at its log offset (wrapping around the end of the log) and name ``log_guid`` in both
    headers."""
    offset, length = log_region(path)
    with open(path, "r+b") as fh:
        for at, raw in entries:
            first = raw[: length - at]
            fh.seek(offset + at)
            fh.write(first)
            if len(first) < len(raw):
                fh.seek(offset)
                fh.write(raw[len(first) :])
    patch_headers(path, log_guid=log_guid.bytes_le)
