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
from dataclasses import dataclass, field

from azvhdaudit.errors import CorruptHiveError

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


@dataclass(frozen=True)
class LogEntry:
    """One verified ``HvLE`` log entry."""

    log: str
    offset: int
    sequence: int
    hive_bins_size: int
    #: the entry's flags, written to the base block's flags field (offset 0x90) when it is applied
    flags: int
    #: (offset in the hive bins data, page bytes)
    pages: tuple[tuple[int, bytes], ...]


@dataclass
class ReplayResult:
    """A recovered hive image and what was applied to get it."""

    data: bytearray
    logs: tuple[str, ...]
    sequences: tuple[int, ...] = ()
    notes: list[str] = field(default_factory=list)

    @property
    def note(self) -> str:
        return "; ".join(self.notes)


def parse_new_log(data: bytes, name: str, source: str) -> tuple[list[LogEntry], str]:
    """The verified log entries of a new-format log file, in file order, and the problem that ended
    reading (``""`` when the entries simply end: end of file, or a sector that is not a log entry)."""
    # construct is loaded only here: a clean hive (the usual case) never needs it
    from azvhdaudit.registry.log_layout import DIRTY_PAGE_REF, LOG_ENTRY_HEADER

    entries: list[LogEntry] = []
    offset = LOG_SECTOR
    end = len(data)
    while offset + LOG_ENTRY_HEADER_SIZE <= end:
        head = LOG_ENTRY_HEADER.parse(data[offset : offset + LOG_ENTRY_HEADER_SIZE])
        where = f"{source}.{name}: log entry at offset 0x{offset:X}"
        if head.signature != b"HvLE":
            return entries, ""
        size = head.size
        if size < LOG_ENTRY_HEADER_SIZE or size % LOG_SECTOR or offset + size > end:
            return entries, f"{where}: size 0x{size:X} is not a multiple of 512 inside the file"
        hbs = head.hive_bins_size
        if hbs == 0 or hbs % HBIN_ALIGNMENT or hbs > MAX_HIVE_BINS_SIZE:
            return entries, f"{where}: hive bins data size 0x{hbs:X} is not a multiple of 4096"
        count = head.dirty_page_count
        refs_end = offset + LOG_ENTRY_HEADER_SIZE + count * DIRTY_PAGE_REF_SIZE
        if refs_end > offset + size:
            return entries, f"{where}: {count} dirty page references do not fit in {size} bytes"
        if marvin32(memoryview(data)[offset + LOG_ENTRY_HEADER_SIZE : offset + size]) != head.hash1:
            return entries, f"{where}: Hash-1 does not match (sequence {head.sequence})"
        if marvin32(memoryview(data)[offset : offset + 32]) != head.hash2:
            return entries, f"{where}: Hash-2 does not match (sequence {head.sequence})"
        pages: list[tuple[int, bytes]] = []
        cursor = refs_end
        for index in range(count):
            ref = DIRTY_PAGE_REF.parse(data[offset + 40 + index * 8 : offset + 48 + index * 8])
            if ref.size == 0 or ref.size % LOG_SECTOR or ref.offset % LOG_SECTOR:
                return entries, f"{where}: dirty page {index} has offset 0x{ref.offset:X} size 0x{ref.size:X}"
            if ref.offset + ref.size > hbs or cursor + ref.size > offset + size:
                return entries, (
                    f"{where}: dirty page {index} (offset 0x{ref.offset:X}, size 0x{ref.size:X}) lies outside "
                    f"the hive bins data (0x{hbs:X}) or the entry"
                )
            pages.append((ref.offset, bytes(data[cursor : cursor + ref.size])))
            cursor += ref.size
        entries.append(LogEntry(name, offset, head.sequence, hbs, head.flags, tuple(pages)))
        offset += size
    return entries, ""


def _log_base(data: bytes, name: str, source: str) -> BaseBlock | None:
    if len(data) < LOG_SECTOR:
        log.info("%s.%s: %d bytes, too short for a transaction log", source, name, len(data))
        return None
    base = parse_base_block(data, f"{source}.{name}")
    if base.signature != b"regf" or not base.checksum_ok:
        log.info(
            "%s.%s: no valid base block (signature %r, checksum ok %s)", source, name, base.signature, base.checksum_ok
        )
        return None
    return base


def _set_base(buf: bytearray, sequence: int, hive_bins_size: int, flags: int | None = None) -> None:
    """Write the state after a completed replay into the in-memory base block."""
    struct.pack_into("<II", buf, 4, sequence, sequence)
    struct.pack_into("<I", buf, 40, hive_bins_size)
    if flags is not None:
        struct.pack_into("<I", buf, 0x90, flags)
    struct.pack_into("<I", buf, 508, hive_checksum(bytes(buf[:508])))


def _after(seq: int, start: int) -> bool:
    """``seq`` is ``start`` or later, allowing for the 32-bit sequence numbers wrapping around."""
    return (seq - start) & _M32 < 0x80000000


def _replay_new(buf: bytearray, base: BaseBlock, logs: list[tuple[str, BaseBlock, bytes]], source: str) -> ReplayResult:
    start = base.secondary_sequence
    # The log to apply first is the one whose own base block carries the older sequence number
    # (normally LOG1); the other one continues it. Equal ones keep the LOG1, LOG2 order.
    ordered = sorted(logs, key=lambda item: (item[1].secondary_sequence - start) & _M32)
    notes: list[str] = []
    applied: list[LogEntry] = []
    expected: int | None = None
    for name, _lbase, data in ordered:
        found, problem = parse_new_log(data, name, source)
        log.debug("%s.%s: %d verified log entries %s", source, name, len(found), problem)
        gap = False
        for entry in found:
            if not _after(entry.sequence, start):
                continue  # an old entry, already applied to the primary file
            if expected is not None and entry.sequence != expected:
                notes.append(f"{name}: log entry {entry.sequence} does not continue sequence {expected - 1}")
                gap = True
                break
            applied.append(entry)
            expected = (entry.sequence + 1) & _M32
        if problem:
            # Windows stops recovery at the first bogus entry: nothing after it is applied.
            notes.append(f"{problem}; recovery stops there")
            break
        if gap:
            break
    if not applied:
        raise ReplayError(
            f"the logs ({', '.join(n for n, _, _ in logs)}) hold no usable log entry at or after sequence "
            f"number {start}" + (f" ({'; '.join(notes)})" if notes else "")
        )
    first = applied[0].sequence
    if first != start:
        # Entries start..first-1 were already written into the primary file by a partial reconcile,
        # without updating its base block (see the module references); applying from the oldest entry the
        # logs still hold is what Windows does.
        notes.insert(
            0, f"log entries {start}-{first - 1} are not in the logs (already reconciled into the primary file)"
        )
    for entry in applied:
        need = BASE_BLOCK_SIZE + entry.hive_bins_size
        if len(buf) < need:
            buf.extend(bytes(need - len(buf)))
        for page_offset, page in entry.pages:
            at = BASE_BLOCK_SIZE + page_offset
            buf[at : at + len(page)] = page
    last = applied[-1]
    _set_base(buf, last.sequence, last.hive_bins_size, last.flags)
    used = tuple(dict.fromkeys(entry.log for entry in applied))
    notes.insert(
        0,
        f"applied {len(applied)} log entries, sequence {first}-{last.sequence}, from {', '.join(used)}",
    )
    return ReplayResult(buf, used, tuple(e.sequence for e in applied), notes)


def _replay_old(buf: bytearray, base: BaseBlock, logs: list[tuple[str, BaseBlock, bytes]], source: str) -> ReplayResult:
    reasons: list[str] = []
    for name, lbase, data in logs:
        where = f"{source}.{name}"
        if lbase.primary_sequence != lbase.secondary_sequence:
            reasons.append(f"{name}: sequence numbers {lbase.primary_sequence}/{lbase.secondary_sequence} differ")
            continue
        if lbase.timestamp != base.timestamp:
            reasons.append(f"{name}: its last-written timestamp does not match the primary file's")
            continue
        sector = LOG_SECTOR * max(1, lbase.clustering_factor)
        hbs = lbase.hive_bins_size
        if hbs == 0 or hbs % HBIN_ALIGNMENT or hbs > MAX_HIVE_BINS_SIZE:
            reasons.append(f"{name}: hive bins data size 0x{hbs:X} at offset 0x28 is not a multiple of 4096")
            continue
        if data[sector : sector + 4] != b"DIRT":
            reasons.append(f"{name}: dirty vector signature {bytes(data[sector : sector + 4])!r} at 0x{sector:X}")
            continue
        bitmap_len = hbs // LOG_SECTOR // 8
        bitmap = data[sector + 4 : sector + 4 + bitmap_len]
        if len(bitmap) < bitmap_len:
            reasons.append(f"{name}: dirty vector truncated at 0x{sector + 4 + len(bitmap):X}")
            continue
        pages_at = -(-(sector + 4 + bitmap_len) // sector) * sector
        dirty = [i for i in range(bitmap_len * 8) if bitmap[i // 8] >> (i % 8) & 1]
        if pages_at + len(dirty) * LOG_SECTOR > len(data):
            reasons.append(f"{where}: {len(dirty)} dirty pages announced, the file ends first")
            continue
        need = BASE_BLOCK_SIZE + hbs
        if len(buf) < need:
            buf.extend(bytes(need - len(buf)))
        for n, bit in enumerate(dirty):
            page = data[pages_at + n * LOG_SECTOR : pages_at + (n + 1) * LOG_SECTOR]
            at = BASE_BLOCK_SIZE + bit * LOG_SECTOR
            buf[at : at + LOG_SECTOR] = page
        _set_base(buf, base.primary_sequence, hbs)
        return ReplayResult(buf, (name,), (), [f"applied {len(dirty)} dirty pages of 512 bytes from {name}"])
    raise ReplayError("no applicable old-format log: " + "; ".join(reasons))


def replay_logs(hive: bytes, base: BaseBlock, logs: Mapping[str, bytes], source: str) -> ReplayResult:
    """Bring the dirty hive image ``hive`` up to date with its transaction ``logs`` (name -> log bytes).

    New-format logs (``HvLE``) are applied ``LOG1`` then ``LOG2`` (then any other name, sorted); an
    old-format log (``DIRT``) is used when no new-format one is present. Raises :class:`ReplayError`
    when nothing can be applied.
    """
    if not logs:
        raise ReplayError("no transaction logs beside the hive")
    order = sorted(logs, key=lambda n: (n.upper() not in ("LOG1", "LOG2", "LOG"), n.upper()))
    new: list[tuple[str, BaseBlock, bytes]] = []
    old: list[tuple[str, BaseBlock, bytes]] = []
    skipped: list[str] = []
    for name in order:
        data = logs[name]
        lbase = _log_base(data, name, source)
        if lbase is None:
            skipped.append(f"{name}: no valid log base block")
        elif lbase.file_type == FILE_TYPE_LOG_NEW:
            new.append((name, lbase, data))
        elif lbase.file_type in (FILE_TYPE_LOG_OLD, FILE_TYPE_LOG_OLD_ALT):
            old.append((name, lbase, data))
        else:
            skipped.append(f"{name}: file type {lbase.file_type} at offset 0x1C is not a transaction log")
    buf = bytearray(hive)
    if new:
        result = _replay_new(buf, base, new, source)
    elif old:
        result = _replay_old(buf, base, old, source)
    else:
        raise ReplayError("; ".join(skipped) or "no usable transaction log")
    result.notes.extend(skipped)
    return result
