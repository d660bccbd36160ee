"""Hive files: the base block, the dirty state, and transaction-log replay in memory.

References:

- M. Suhanov, *Windows registry file format specification* (github.com/msuhanov/regf):
  "Base block", "Format of transaction log files" (old format: ``DIRT`` dirty vector; new format:
  ``HvLE`` log entries, Windows 8.1 and later), "Dirty state of a hive", "Multiple transaction log files".
- M. Suhanov, *Missing log entries for a dirty primary file* (notes in the same repository): after a
  partial reconcile the first log entry to apply may be newer than the primary's secondary sequence number.
- libyal/libregf, *Windows NT Registry File (REGF) format*, sections on the file header and transaction logs.
- N. Ferguson, *Marvin32* (the hash Windows uses for log entries; the algorithm as published with .NET's
  ``System.Marvin``).

Nothing here writes to a file: a dirty hive is read whole into memory, the log entries are applied to that
copy, and the caller opens the copy.

What replay verifies for a new-format log entry (``HvLE``): its signature, that its size is a non-zero
multiple of 512 inside the file, that its dirty page references fit in the entry and in the hive bins data
size it records (a multiple of 4096), its Hash-1 (Marvin32 of the entry after the 40-byte header) and
Hash-2 (Marvin32 of the first 32 bytes), and that the sequence numbers applied are consecutive from the
log whose base block is older (normally ``LOG1``) into the other. The first bad entry ends recovery: the
entries before it are applied, as the specification says Windows does. Entries older than the primary's
secondary sequence number are skipped; the first entry applied may be newer than it (the partial-reconcile
case, which the real Windows 10 test hive shows), and the state note says so. For an old-format log
(``DIRT``): the log's base block (type 1 or 2, valid checksum, equal sequence numbers, the primary's
last-written timestamp), the signature and the size of the dirty vector and of the pages it announces.
"""

from __future__ import annotations

import datetime as _dt
import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azvhdaudit.errors import CorruptHiveError

if TYPE_CHECKING:
    from azvhdaudit.registry.replay import LogEntry, ReplayResult

__all__ = [
    "BASE_BLOCK_SIZE",
    "BaseBlock",
    "LogEntry",
    "ReplayError",
    "ReplayResult",
    "filetime",
    "hive_checksum",
    "marvin32",
    "parse_base_block",
    "parse_new_log",
    "replay_logs",
    "validate_primary",
]

log = logging.getLogger(__name__)

BASE_BLOCK_SIZE = 4096
#: log entries and dirty pages of a log file are aligned to this
LOG_SECTOR = 512
HBIN_ALIGNMENT = 4096
#: a hive bins data size above this is not a registry hive (Windows caps hives well below 2 GiB)
MAX_HIVE_BINS_SIZE = 0x7FFFF000

FILE_TYPE_PRIMARY = 0
FILE_TYPE_LOG_OLD = 1
FILE_TYPE_LOG_OLD_ALT = 2
FILE_TYPE_LOG_NEW = 6

#: the base block's layout (:data:`azvhdaudit.registry.log_layout.BASE_BLOCK`) for struct
_BASE_BLOCK_FIELDS = struct.Struct("<4sIIQIIIIIII64s396xI")

#: the sizes of :data:`~azvhdaudit.registry.log_layout.LOG_ENTRY_HEADER` and of a dirty page reference
LOG_ENTRY_HEADER_SIZE = 40
DIRTY_PAGE_REF_SIZE = 8

# The spec prints the seed as 14219357686671994754 "(little-endian)": those are the bytes
# 82 EF 4D 88 7A 4E 55 C5, i.e. the integer 0x82EF4D887A4E55C5. Checked against the Hash-1 and Hash-2 of
# every entry in the Windows 10 SYSTEM.LOG1/LOG2 of the test data: only this reading matches.
MARVIN32_SEED = 0x82EF4D887A4E55C5

_M32 = 0xFFFFFFFF


_CHECKSUM_WORDS = struct.Struct("<127I")


def hive_checksum(data: bytes) -> int:
    """XOR-32 of the first 508 bytes of a base block, with Windows' two special cases
    (a result of 0 is stored as 1, and 0xFFFFFFFF as 0xFFFFFFFE)."""
    value = 0
    words = _CHECKSUM_WORDS.unpack_from(data) if len(data) >= 508 else (w for (w,) in struct.iter_unpack("<I", data))
    for word in words:
        value ^= word
    if value == 0:
        return 1
    if value == 0xFFFFFFFF:
        return 0xFFFFFFFE
    return value


def marvin32(data: bytes | memoryview, seed: int = MARVIN32_SEED) -> int:
    """The 64-bit Marvin32 hash of ``data`` (low word of the seed is the first state word)."""
    p0 = seed & _M32
    p1 = (seed >> 32) & _M32
    whole = len(data) & ~3
    mv = memoryview(data)
    for (word,) in struct.iter_unpack("<I", mv[:whole]):
        p0 = (p0 + word) & _M32
        p1 ^= p0
        p0 = ((p0 << 20) | (p0 >> 12)) & _M32
        p0 = (p0 + p1) & _M32
        p1 = ((p1 << 9) | (p1 >> 23)) & _M32
        p1 ^= p0
        p0 = ((p0 << 27) | (p0 >> 5)) & _M32
        p0 = (p0 + p1) & _M32
        p1 = ((p1 << 19) | (p1 >> 13)) & _M32
    # The tail (0-3 bytes) is padded with a single 0x80 byte, then one more empty block is mixed in.
    final = int.from_bytes(bytes(mv[whole:]) + b"\x80", "little")
    for word in (final, 0):
        p0 = (p0 + word) & _M32
        p1 ^= p0
        p0 = ((p0 << 20) | (p0 >> 12)) & _M32
        p0 = (p0 + p1) & _M32
        p1 = ((p1 << 9) | (p1 >> 23)) & _M32
        p1 ^= p0
        p0 = ((p0 << 27) | (p0 >> 5)) & _M32
        p0 = (p0 + p1) & _M32
        p1 = ((p1 << 19) | (p1 >> 13)) & _M32
    return (p1 << 32) | p0


@dataclass(frozen=True)
class BaseBlock:
    """The fields of a base block (primary file or transaction log) that matter for reading."""

    signature: bytes
    primary_sequence: int
    secondary_sequence: int
    timestamp: int
    major: int
    minor: int
    file_type: int
    file_format: int
    root_cell: int
    hive_bins_size: int
    clustering_factor: int
    file_name: str
    checksum: int
    computed_checksum: int

    @property
    def dirty(self) -> bool:
        """Primary and secondary sequence numbers differ: a write was not completed in the primary file."""
        return self.primary_sequence != self.secondary_sequence

    @property
    def checksum_ok(self) -> bool:
        return self.checksum == self.computed_checksum

    @property
    def last_written(self) -> _dt.datetime | None:
        return filetime(self.timestamp)


def filetime(value: int) -> _dt.datetime | None:
    """A FILETIME as an aware UTC datetime; ``None`` for 0 or a value datetime cannot hold."""
    if not value:
        return None
    try:
        return _dt.datetime(1601, 1, 1, tzinfo=_dt.timezone.utc) + _dt.timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def parse_base_block(raw: bytes, source: str) -> BaseBlock:
    """Parse the first 512 bytes of ``raw`` as a base block (no validation beyond the length)."""
    if len(raw) < 512:
        raise CorruptHiveError(f"{source}: base block truncated: {len(raw)} bytes at offset 0, at least 512 needed")
    # BASE_BLOCK's fields, unpacked with struct: construct's parse costs ~25 µs, for every hive opened
    (
        signature,
        primary,
        secondary,
        timestamp,
        major,
        minor,
        file_type,
        file_format,
        root_cell,
        bins_size,
        clustering,
        file_name,
        checksum,
    ) = _BASE_BLOCK_FIELDS.unpack_from(raw)
    return BaseBlock(
        signature=signature,
        primary_sequence=primary,
        secondary_sequence=secondary,
        timestamp=timestamp,
        major=major,
        minor=minor,
        file_type=file_type,
        file_format=file_format,
        root_cell=root_cell,
        hive_bins_size=bins_size,
        clustering_factor=clustering,
        file_name=file_name.decode("utf-16-le", errors="replace").split("\x00")[0],
        checksum=checksum,
        computed_checksum=hive_checksum(raw),
    )


def validate_primary(base: BaseBlock, source: str) -> None:
    """Raise :class:`CorruptHiveError` (naming field, offset and value) for a base block no reader can trust."""
    if base.signature != b"regf":
        raise CorruptHiveError(
            f"{source}: not a registry hive: signature {base.signature!r} at offset 0x0, expected b'regf'"
        )
    if not base.checksum_ok:
        raise CorruptHiveError(
            f"{source}: base block checksum 0x{base.checksum:08X} at offset 0x1FC does not match "
            f"0x{base.computed_checksum:08X} computed over the first 508 bytes"
        )
    if base.major != 1:
        raise CorruptHiveError(f"{source}: major version {base.major} at offset 0x14, expected 1")
    if base.file_type != FILE_TYPE_PRIMARY:
        raise CorruptHiveError(
            f"{source}: file type {base.file_type} at offset 0x1C: a transaction log, not a primary hive file"
            if base.file_type in (FILE_TYPE_LOG_OLD, FILE_TYPE_LOG_OLD_ALT, FILE_TYPE_LOG_NEW)
            else f"{source}: file type {base.file_type} at offset 0x1C, expected 0 (primary file)"
        )
    size = base.hive_bins_size
    if size == 0 or size % HBIN_ALIGNMENT or size > MAX_HIVE_BINS_SIZE:
        raise CorruptHiveError(
            f"{source}: hive bins data size 0x{size:X} at offset 0x28 is not a positive multiple of 4096"
        )
    if base.root_cell >= size or base.root_cell % 8:
        raise CorruptHiveError(
            f"{source}: root cell offset 0x{base.root_cell:X} at offset 0x24 is outside the hive bins data "
            f"(size 0x{size:X}) or not aligned"
        )


# --- transaction logs -------------------------------------------------------------------------


class ReplayError(Exception):
    """Transaction logs cannot bring a dirty hive up to date; the message says why.

    Not an :class:`~azvhdaudit.errors.AuditError`: the hive is still opened as it is, and the reason
    goes into :class:`~azvhdaudit.registry.model.HiveState.note`.
    """


# The replay itself lives in azvhdaudit.registry.replay, loaded when a dirty hive first needs it: a clean hive (the
# usual case) is opened without its classes, nor construct's.


def parse_new_log(data: bytes, name: str, source: str) -> tuple[list[LogEntry], str]:
    """The verified log entries of a new-format log file, in file order, and the problem that ended reading
    (``""`` when the entries simply end): :func:`azvhdaudit.registry.replay.parse_new_log`."""
    from azvhdaudit.registry import replay

    return replay.parse_new_log(data, name, source)


def replay_logs(hive: bytes, base: BaseBlock, logs: Mapping[str, bytes], source: str) -> ReplayResult:
    """Bring the dirty hive image ``hive`` up to date with its transaction ``logs`` (name -> log bytes); raises
    :class:`ReplayError` when nothing can be applied: :func:`azvhdaudit.registry.replay.replay_logs`."""
    from azvhdaudit.registry import replay

    return replay.replay_logs(hive, base, logs, source)


def __getattr__(name: str) -> Any:
    # LogEntry and ReplayResult, named in __all__, from the module that defines them
    if name in ("LogEntry", "ReplayResult"):
        from azvhdaudit.registry import replay

        return getattr(replay, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
