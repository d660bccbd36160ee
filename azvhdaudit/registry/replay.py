"""Transaction-log replay of a dirty hive, in memory: the log entries verified and applied to a copy.

References and what is verified: see :mod:`azvhdaudit.registry.logs` (M. Suhanov, *Windows registry file format
specification*, "Format of transaction log files", "Dirty state of a hive", "Multiple transaction log files"; the
notes on missing log entries after a partial reconcile; libyal/libregf).

Apart from :mod:`azvhdaudit.registry.logs` (the base block, read for every hive opened) because only a dirty hive
needs it: :func:`azvhdaudit.registry.logs.replay_logs` loads it on first use. Nothing here writes to a file.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from azvhdaudit.registry.logs import (
    _M32,
    BASE_BLOCK_SIZE,
    DIRTY_PAGE_REF_SIZE,
    FILE_TYPE_LOG_NEW,
    FILE_TYPE_LOG_OLD,
    FILE_TYPE_LOG_OLD_ALT,
    HBIN_ALIGNMENT,
    LOG_ENTRY_HEADER_SIZE,
    LOG_SECTOR,
    MAX_HIVE_BINS_SIZE,
    BaseBlock,
    ReplayError,
    hive_checksum,
    marvin32,
    parse_base_block,
)

__all__ = ["LogEntry", "ReplayResult", "parse_new_log", "replay_logs"]

log = logging.getLogger("azvhdaudit.registry.logs")


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
