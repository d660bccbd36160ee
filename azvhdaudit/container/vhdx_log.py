"""The VHDX log: find its active sequence and replay it in memory, never in the file.

References:
- [MS-VHDX] Virtual Hard Disk v2 (VHDX) File Format, 2.3 Log: 2.3.1 Log Entry (entry header "loge",
  zero descriptor "zero", data descriptor "desc", data sector "data"), 2.3.2 Log Sequence, 2.3.3 Log Replay.
- QEMU ``block/vhdx-log.c`` (``vhdx_log_search``, ``vhdx_validate_log_entry``, ``vhdx_log_flush``), the
  replay ``qemu-img check -r all`` runs; the tests compare with it.

A VHDX updates its BAT and metadata write-ahead: the new 4 KiB sectors go to the log first, then to their
places in the file, and the header's LogGuid goes back to zero once they are there. A file copied from a
running VM, or left by a crash, still has a LogGuid: the log's updates may be missing from the file, and
Hyper-V and QEMU replay the log before they read anything. So does this module, into an overlay that every
read of the file goes through; the file itself is opened read-only and stays as it is.

Layouts (all little-endian)::

    entry header (64 bytes)   signature "loge", checksum u32, entry_length u32, tail u32, sequence u64,
                              descriptor_count u32, reserved u32, log_guid 16 B, flushed_file_offset u64,
                              last_file_offset u64
    zero descriptor (32)      "zero", reserved u32, zero_length u64, file_offset u64, sequence u64
    data descriptor (32)      "desc", trailing_bytes 4 B, leading_bytes 8 B, file_offset u64, sequence u64
    data sector (4096)        "data", sequence_high u32, data 4084 B, sequence_low u32

An entry is its header and descriptors (in as many 4 KiB sectors as ``descriptor_count + 2`` x 32 bytes
need), then one data sector per data descriptor. A data descriptor writes the 4 KiB sector
``leading_bytes + data + trailing_bytes`` at ``file_offset``; a zero descriptor writes ``zero_length`` zero
bytes there.

What makes an entry valid here: the signature; an entry_length that is a non-zero multiple of 4 KiB no longer
than the log; a non-zero sequence number; the header's LogGuid; descriptor sectors plus one data sector per
data descriptor filling entry_length exactly; the CRC-32C of the whole entry (checksum field zeroed); every
descriptor's signature and sequence number, 4 KiB-aligned offsets and zero lengths; every data sector's
signature and sequence number (high and low halves). The log is circular: an entry may wrap from the end of
the log to its start.

The active sequence is the longest run of valid entries, each starting where the previous one ends and
numbered one higher, that ends at the valid entry with the highest sequence number (QEMU's search, and the
sequence 2.3.3 replays). The head entry's Tail field is not used: QEMU does not keep it pointing at the
sequence's first entry, and replaying entries already flushed writes what is already there.

Bounds: the log is read once (at most :data:`MAX_LOG_LENGTH` bytes); every 4 KiB position of it is
examined once; the entries checksummed add up to at most :data:`CRC_BUDGET` times the log's length (past
that the log is reported as corrupt); a run is at most the number of sectors in the log long; the overlay
holds at most one copy of each data sector the log holds, and zero descriptors are kept as ranges, never as
bytes; building it and every read through it cost O(n log n) in the number of descriptors.
"""

from __future__ import annotations

import bisect
import heapq
import logging
import struct
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from uuid import UUID

from azvhdaudit.container.base import CountedFile
from azvhdaudit.errors import CorruptImageError, TruncatedImageError

__all__ = ["LogDescriptor", "LogEntry", "LogReplay", "OverlayFile", "find_active_sequence", "replay_log"]

log = logging.getLogger(__name__)

SECTOR = 4096
MiB = 1024 * 1024
#: the largest log replayed (Hyper-V and QEMU make 1 MiB logs; LogLength is a u32, so up to 4 GiB)
MAX_LOG_LENGTH = 32 * MiB
#: candidate entries checksummed, at most, in multiples of the log's length (entries of one log do not
#: overlap, so a real log needs at most 1; stale entries of an older sequence may add some)
CRC_BUDGET = 4
#: updates listed one by one in :meth:`LogReplay.to_dict` (the facts); the rest are counted
MAX_LISTED = 64
#: the header section: headers 1 and 2 live at 64-192 KiB and are never written through the log
HEADERS_START, HEADERS_END = 64 * 1024, 192 * 1024
#: no VHDX file is larger (64 TiB of data plus its BAT and metadata); offsets past it are damage
MAX_FILE_OFFSET = 1 << 47

_ENTRY_HEADER = struct.Struct("<4sIIIQII16sQQ")
_DESCRIPTOR = struct.Struct("<4s4s8sQQ")
_ZERO_DESCRIPTOR = struct.Struct("<4sIQQQ")
_DATA_SECTOR_HEAD = struct.Struct("<4sI")


class LogDescriptor(NamedTuple):
    """One update of an entry: ``kind`` "data" (``data`` is the 4 KiB sector) or "zero" (``length`` zeros)."""

    kind: str
    file_offset: int
    length: int
    data: bytes | None


class LogEntry(NamedTuple):
    """A valid log entry: where it starts in the log, its header fields and its updates."""

    log_offset: int
    sequence: int
    length: int
    tail: int
    flushed_file_offset: int
    last_file_offset: int
    descriptors: tuple[LogDescriptor, ...]


@dataclass
class LogReplay:
    """What the log held and what replaying it did (``replayed`` False: why not, in ``reason``)."""

    log_guid: str
    log_offset: int
    log_length: int
    replayed: bool
    entries: list[LogEntry] = field(default_factory=list)
    reason: str | None = None
    #: why other candidate entries were not valid (a few, for the report)
    rejected: list[str] = field(default_factory=list)

    @property
    def sequence_range(self) -> tuple[int, int] | None:
        if not self.entries:
            return None
        return self.entries[0].sequence, self.entries[-1].sequence

    @property
    def writes(self) -> list[tuple[str, int, int]]:
        """(kind, file offset, length) of every update applied, in order."""
        return [(d.kind, d.file_offset, d.length) for e in self.entries for d in e.descriptors]

    @property
    def bytes_written(self) -> int:
        return sum(length for _, _, length in self.writes)

    def summary(self) -> str:
        if not self.replayed:
            return f"not replayed, because {self.reason}"
        first, last = self.sequence_range or (0, 0)
        writes = self.writes
        shown = ", ".join(f"{kind} {length} B at {offset}" for kind, offset, length in writes[:8])
        more = f" and {len(writes) - 8} more" if len(writes) > 8 else ""
        count = len(self.entries)
        return (
            f"replayed in memory: {count} entr{'y' if count == 1 else 'ies'} (sequence {first}"
            f"{'' if first == last else f' to {last}'}), {len(writes)} write{'' if len(writes) == 1 else 's'} "
            f"of {self.bytes_written} bytes ({shown}{more})"
        )

    def to_dict(self) -> dict[str, Any]:
        seq = self.sequence_range
        return {
            "replayed": self.replayed,
            "reason": self.reason,
            "log_guid": self.log_guid,
            "log_offset": self.log_offset,
            "log_length": self.log_length,
            "entries": len(self.entries),
            "sequence_first": None if seq is None else seq[0],
            "sequence_last": None if seq is None else seq[1],
            "bytes": self.bytes_written,
            # the first MAX_LISTED updates (a 1 MiB log can hold thousands); writes_total counts them all
            "writes": [
                {"kind": kind, "file_offset": offset, "length": length}
                for kind, offset, length in self.writes[:MAX_LISTED]
            ],
            "writes_total": len(self.writes),
            "rejected": list(self.rejected),
        }


def _sectors_for_descriptors(count: int) -> int:
    """4 KiB sectors holding the 64-byte header and ``count`` 32-byte descriptors (never 0)."""
    return -(-(count + 2) // 128)


class _Invalid(Exception):
    """A candidate entry that is not valid, and why (not an error: the search goes on)."""


class _Malformed(_Invalid):
    """An entry whose checksum is right but whose contents are not: it was written whole, and wrong."""

    def __init__(self, sequence: int, why: str) -> None:
        super().__init__(why)
        self.sequence = sequence


class _OverBudget(Exception):
    """More entry bytes checksummed than any real log needs."""


def _circular(log_data: bytes, start: int, length: int) -> bytes:
    end = start + length
    if end <= len(log_data):
        return log_data[start:end]
    return log_data[start:] + log_data[: end - len(log_data)]


def _parse_entry(log_data: bytes, at: int, log_guid: bytes, crc32c: Any) -> LogEntry:
    """The valid entry starting at log offset ``at``; :class:`_Invalid` says why there is none."""
    (signature, checksum, length, tail, sequence, count, _reserved, guid, flushed, last) = _ENTRY_HEADER.unpack_from(
        log_data, at
    )
    if signature != b"loge":
        raise _Invalid("no entry signature")
    if guid != log_guid:
        raise _Invalid(f"its LogGuid {UUID(bytes_le=guid)} is not the header's")
    if length == 0 or length % SECTOR or length > len(log_data):
        raise _Invalid(f"its EntryLength {length} is not a non-zero multiple of 4096 within the log")
    if sequence == 0:
        raise _Invalid("its SequenceNumber is 0")
    desc_sectors = _sectors_for_descriptors(count)
    if desc_sectors * SECTOR > length:
        raise _Invalid(f"its {count} descriptors do not fit in its {length} bytes")
    entry = _circular(log_data, at, length)
    stored = checksum
    computed = crc32c(entry[:4] + b"\x00\x00\x00\x00" + entry[8:])
    if stored != computed:
        raise _Invalid(f"its checksum is 0x{stored:08x}, the CRC-32C of the entry is 0x{computed:08x}")
    descriptors: list[LogDescriptor] = []
    data_at = desc_sectors * SECTOR
    for i in range(count):
        raw = entry[64 + i * 32 : 96 + i * 32]
        kind = raw[:4]
        if kind == b"desc":
            _sig, trailing, leading, offset, dseq = _DESCRIPTOR.unpack(raw)
            if data_at + SECTOR > length:
                raise _Malformed(sequence, f"data descriptor {i} has no data sector inside the entry")
            sector = entry[data_at : data_at + SECTOR]
            data_sig, seq_high = _DATA_SECTOR_HEAD.unpack_from(sector)
            seq_low = int.from_bytes(sector[4092:], "little")
            if data_sig != b"data" or (seq_high << 32 | seq_low) != sequence:
                raise _Malformed(
                    sequence,
                    f"the data sector of descriptor {i} has signature {data_sig!r} and "
                    f"sequence {seq_high << 32 | seq_low}, expected b'data' and {sequence}",
                )
            data_at += SECTOR
            payload = leading + sector[8:4092] + trailing
            descriptors.append(LogDescriptor("data", offset, SECTOR, payload))
        elif kind == b"zero":
            _sig, _res, zlength, offset, dseq = _ZERO_DESCRIPTOR.unpack(raw)
            if zlength == 0 or zlength % SECTOR:
                raise _Malformed(
                    sequence, f"zero descriptor {i} has ZeroLength {zlength}, not a non-zero multiple of 4096"
                )
            descriptors.append(LogDescriptor("zero", offset, zlength, None))
        else:
            raise _Malformed(sequence, f"descriptor {i} has signature {kind!r}, expected b'desc' or b'zero'")
        if dseq != sequence:
            raise _Malformed(sequence, f"descriptor {i} has sequence {dseq}, the entry {sequence}")
        if offset % SECTOR or offset + descriptors[-1].length > MAX_FILE_OFFSET:
            raise _Malformed(
                sequence,
                f"descriptor {i} writes {descriptors[-1].length} bytes at file offset "
                f"{offset}, not 4 KiB aligned or past any VHDX file",
            )
    # more sectors than the descriptors use: QEMU checksums and accepts them (and so does this reader)
    return LogEntry(at, sequence, length, tail, flushed, last, tuple(descriptors))


def find_active_sequence(log_data: bytes, log_guid: bytes, crc32c: Any) -> tuple[list[LogEntry], list[str]]:
    """The active sequence of the log (oldest entry first; empty when no entry is valid), and why the
    candidate entries that were rejected were rejected (``"log offset N: reason"``)."""
    valid: dict[int, LogEntry] = {}
    rejected: list[str] = []
    malformed: list[tuple[int, int, str]] = []
    budget = [CRC_BUDGET * len(log_data)]

    def counted_crc(data: bytes) -> int:
        budget[0] -= len(data)
        if budget[0] < 0:
            raise _OverBudget
        return int(crc32c(data))

    for at in range(0, len(log_data), SECTOR):
        if log_data[at : at + 4] != b"loge":
            continue
        try:
            valid[at] = _parse_entry(log_data, at, log_guid, counted_crc)
        except _Malformed as why:
            rejected.append(f"log offset {at}: {why}")
            malformed.append((why.sequence, at, str(why)))
        except _Invalid as why:
            rejected.append(f"log offset {at}: {why}")
        except _OverBudget:
            raise _Invalid(
                f"the candidate entries up to log offset {at} add up to more than {CRC_BUDGET} times the "
                "log's length; entries of one log do not overlap that much"
            ) from None
    newest = max((e.sequence for e in valid.values()), default=0)
    for sequence, at, problem in malformed:
        if sequence > newest:
            # written whole (its checksum is right) and newer than anything valid: the file's state is unknown
            raise _Invalid(
                f"entry {sequence} at log offset {at} passes its checksum, but {problem}; QEMU refuses such a log too"
            )
    if not valid:
        return [], rejected
    # each valid entry's successor: the valid entry starting where it ends, numbered one higher
    previous: dict[int, int] = {}
    for at, entry in valid.items():
        following = valid.get((at + entry.length) % len(log_data))
        if following is not None and following.sequence == entry.sequence + 1 and following.log_offset != at:
            previous[following.log_offset] = at
    head = max(valid.values(), key=lambda e: (e.sequence, -e.log_offset))
    run = [head]
    # sequence numbers fall by one at each step back, so this ends; the bound is belt and braces
    while run[-1].log_offset in previous and len(run) < len(log_data) // SECTOR:
        run.append(valid[previous[run[-1].log_offset]])
    run.reverse()
    return run, rejected


def replay_log(
    file: CountedFile, *, log_guid: bytes, log_offset: int, log_length: int, log_version: int, crc32c: Any
) -> tuple[LogReplay, OverlayFile | None]:
    """Read the log of a VHDX whose header names ``log_guid`` and replay its active sequence in memory.

    Returns what was found and, when there was something to replay, the overlay to read the file through.
    Raises :class:`CorruptImageError` when the log's place or version is invalid or a valid entry writes
    where no log may (the headers, the log itself), and :class:`TruncatedImageError` when the log lies past
    the end of the file or the active sequence says the file was longer when it was written.
    """
    name = file.name
    guid_text = str(UUID(bytes_le=log_guid))
    if log_version != 0:
        raise CorruptImageError(
            f"{name}: VHDX header field LogVersion is {log_version}, expected 0; the pending "
            f"log (LogGuid {guid_text}) cannot be replayed"
        )
    if log_offset < MiB or log_offset % MiB or log_length == 0 or log_length % MiB:
        raise CorruptImageError(
            f"{name}: VHDX header: log at LogOffset {log_offset} with LogLength {log_length}; both must be "
            f"non-zero multiples of 1 MiB, after the first MiB; the pending log (LogGuid {guid_text}) cannot be "
            "replayed"
        )
    if log_length > MAX_LOG_LENGTH:
        raise CorruptImageError(
            f"{name}: VHDX header field LogLength is {log_length}, more than the {MAX_LOG_LENGTH} bytes replayed "
            f"here; the pending log (LogGuid {guid_text}) was not replayed, and the disk cannot be read without it"
        )
    if log_offset + log_length > file.size:
        raise TruncatedImageError(
            f"{name}: VHDX log spans offsets {log_offset}-{log_offset + log_length}, past the end of the file "
            f"({file.size} bytes); its pending updates (LogGuid {guid_text}) cannot be replayed"
        )
    log_data = file.read_exact(log_offset, log_length, "VHDX log")
    try:
        entries, rejected = find_active_sequence(log_data, log_guid, crc32c)
    except _Invalid as why:
        raise CorruptImageError(f"{name}: VHDX log at offset {log_offset}: {why}; not replayed") from None
    result = LogReplay(
        guid_text, log_offset, log_length, replayed=bool(entries), entries=entries, rejected=rejected[:8]
    )
    if not entries:
        result.reason = (
            "the log holds no valid entry for LogGuid "
            + guid_text
            + (": " + "; ".join(rejected[:3]) if rejected else " (no entry signature in it)")
            + "; a log entry is written before the file is changed, so the file holds the last complete update"
        )
        return result, None
    head = entries[-1]
    if head.flushed_file_offset > file.size:
        raise TruncatedImageError(
            f"{name}: VHDX log entry {head.sequence} at log offset {head.log_offset}: FlushedFileOffset "
            f"{head.flushed_file_offset} is past the end of the file ({file.size} bytes); the file was cut "
            "after the log was written"
        )
    for entry in entries:
        for number, desc in enumerate(entry.descriptors):
            start, end = desc.file_offset, desc.file_offset + desc.length
            for what, lo, hi in (
                ("the VHDX headers", HEADERS_START, HEADERS_END),
                ("the log itself", log_offset, log_offset + log_length),
            ):
                if start < hi and lo < end:
                    raise CorruptImageError(
                        f"{name}: VHDX log entry {entry.sequence} at log offset {entry.log_offset}, descriptor "
                        f"{number}: writes offsets {start}-{end}, inside {what} ({lo}-{hi}); not replayed"
                    )
    return result, OverlayFile(file, entries, max(file.size, _round_mib(head.last_file_offset)))


def _round_mib(value: int) -> int:
    return -(-value // MiB) * MiB


class OverlayFile(CountedFile):
    """The VHDX file as it is after the log's updates: reads see the replayed sectors; nothing is written.

    Shares the underlying file object (and its read counters) with the file it wraps; close one of them.
    ``size`` is the file's size, or the size the log says the file had (``LastFileOffset``, rounded up to
    1 MiB as QEMU extends it) when that is larger; the added bytes read as zeros.
    """

    def __init__(self, base: CountedFile, entries: list[LogEntry], size: int) -> None:
        # not CountedFile.__init__: the file object is already open and measured
        self.fh = base.fh
        self.name = base.name
        self.stats = base.stats
        self.owned = base.owned
        self._pos = 0
        self.real_size = base.size
        self.size = size
        self._sectors, zeros = _final_updates(entries)
        self._keys = sorted(self._sectors)
        self._zeros = _merge(zeros)
        self._zero_starts = [start for start, _ in self._zeros]

    def pread(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        end = min(offset + length, self.size)
        if end <= offset:
            return b""
        inside = max(0, min(end, self.real_size) - offset)
        data = bytearray(super().pread(offset, inside) if inside else b"")
        data += bytes(end - offset - len(data))
        for zstart, zend in self._zeros[max(0, bisect.bisect_right(self._zero_starts, offset) - 1) :]:
            if zstart >= end:
                break
            lo, hi = max(zstart, offset), min(zend, end)
            if lo < hi:
                data[lo - offset : hi - offset] = bytes(hi - lo)
        first = bisect.bisect_left(self._keys, offset - SECTOR + 1)
        for key in self._keys[first:]:
            if key >= end:
                break
            lo, hi = max(key, offset), min(key + SECTOR, end)
            data[lo - offset : hi - offset] = self._sectors[key][lo - key : hi - key]
        return bytes(data)


def _final_updates(entries: list[LogEntry]) -> tuple[dict[int, bytes], list[tuple[int, int]]]:
    """The data sectors that survive (no later data sector at the same offset, no later zero range over
    them) and every zero range. Applying the ranges and then the sectors gives what replaying the
    descriptors in order gives."""
    order = [d for e in entries for d in e.descriptors]
    latest: dict[int, tuple[int, bytes]] = {}
    zeros: list[tuple[int, int, int]] = []
    for index, desc in enumerate(order):
        if desc.kind == "data":
            assert desc.data is not None
            latest[desc.file_offset] = (index, desc.data)
        else:
            zeros.append((desc.file_offset, desc.file_offset + desc.length, index))
    # sweep the sectors by offset, keeping the zero ranges open there in a heap by (newest first)
    zeros.sort()
    active: list[tuple[int, int]] = []  # (-index, end)
    sectors: dict[int, bytes] = {}
    z = 0
    for offset in sorted(latest):
        index, data = latest[offset]
        while z < len(zeros) and zeros[z][0] <= offset:
            heapq.heappush(active, (-zeros[z][2], zeros[z][1]))
            z += 1
        while active and active[0][1] <= offset:
            heapq.heappop(active)
        # the newest open range may have ended; older ones under it are cleared when they reach the top
        if active and -active[0][0] > index:
            continue
        sectors[offset] = data
    return sectors, [(start, end) for start, end, _ in zeros]


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
