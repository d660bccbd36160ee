"""Reading VHDX files: fixed, dynamic and differencing, with CRC-checked headers and region tables.

References:
- [MS-VHDX] Virtual Hard Disk v2 (VHDX) File Format, https://learn.microsoft.com/en-us/openspecs/
  windows_protocols/ms-vhdx/83e061f8-f6e2-4de1-91bd-5d518a43d477 — 2.2 Header Section (file type
  identifier, headers, region tables), 2.3 Log, 2.4 BAT, 2.5 Metadata Region, 2.6 Parent locator.
- Layouts: as ``dissect.hypervisor.disk.c_vhdx`` defines them (GUIDs and the region table entry restated here).

A pending log (a file copied from a running VM or left by a crash) is replayed in memory before the
region tables, metadata and BAT are read: :mod:`.vhdx_log`.

Why not ``dissect.hypervisor.disk.vhdx.VHDX`` itself: it checks signatures but no CRC, ignores a
pending log, opens a parent only from a ``pathlib.Path`` without saying what it tried, and never
compares the child's ``parent_linkage`` with the parent's DataWriteGuid. Here the BAT is read one
4 KiB page at a time when a block is first used; every entry is bounds-checked when used.
"""

from __future__ import annotations

import logging
import struct
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

from azvhdaudit.container.base import MAX_VIRTUAL_SIZE, CountedFile, Layer
from azvhdaudit.errors import CorruptImageError, TruncatedImageError
from azvhdaudit.facts import ContainerFacts

if TYPE_CHECKING:
    from azvhdaudit.container.vhdx_log import LogReplay

__all__ = ["VHDXLayer", "SIGNATURE"]

log = logging.getLogger(__name__)

# The region and metadata item GUIDs of [MS-VHDX] 2.2.3 / 2.6 (as dissect.hypervisor's c_vhdx names them);
# defined here so that opening a VHDX does not import dissect.hypervisor (every format it reads, ~0.1 s).
BAT_REGION_GUID = UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_REGION_GUID = UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS_GUID = UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE_GUID = UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
VIRTUAL_DISK_ID_GUID = UUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SECTOR_SIZE_GUID = UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR_SIZE_GUID = UUID("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOCATOR_GUID = UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_PARENT_LOCATOR_GUID = UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")


class _RegionEntry(NamedTuple):
    """A region table entry ([MS-VHDX] 2.2.3.1): guid[16], file_offset u64, length u32, required u32."""

    guid: bytes
    file_offset: int
    length: int
    required: int


_REGION_ENTRY = struct.Struct("<16sQII")

SIGNATURE = b"vhdxfile"
KiB = 1024
MiB = 1024 * KiB
HEADER_OFFSETS = (64 * KiB, 128 * KiB)
HEADER_SIZE = 4 * KiB
REGION_OFFSETS = (192 * KiB, 256 * KiB)

#: bytes of the BAT fetched with the metadata on a remote file (see :meth:`VHDXLayer.__init__`): 2047 entries, 2 GiB of
#: disk in 1 MiB blocks, 64 GiB in 32 MiB ones
BAT_FIRST_READ = 16 * KiB
#: the most bytes of the BAT fetched ahead on a remote file, the rest of :data:`BAT_FIRST_READ` as far as the BAT's
#: entries go once the metadata says how many there are, without waiting (see :meth:`VHDXLayer.__init__`)
BAT_READ_AHEAD = 1024 * KiB
REGION_SIZE = 64 * KiB
#: bytes of the metadata region fetched with the BAT on a remote file: the table's start (its header and the
#: entries every writer makes, 32 bytes each) and the items, which writers place from 64 KiB on, one after another
METADATA_TABLE_READ = 4 * KiB
METADATA_ITEMS_READ = 4 * KiB
MAX_ENTRIES = 2047
#: BAT entries read at once (4 KiB)
BAT_PAGE = 512
BITMAP_CACHE = 64

PB_NOT_PRESENT = 0
PB_UNDEFINED = 1
PB_ZERO = 2
PB_UNMAPPED = 3
PB_FULLY_PRESENT = 6
PB_PARTIALLY_PRESENT = 7
SB_PRESENT = 6
STATE_NAMES = {
    0: "NOT_PRESENT",
    1: "UNDEFINED",
    2: "ZERO",
    3: "UNMAPPED",
    6: "FULLY_PRESENT",
    7: "PARTIALLY_PRESENT",
}
ZERO_GUID = b"\x00" * 16
KNOWN_METADATA = {
    FILE_PARAMETERS_GUID,
    VIRTUAL_DISK_SIZE_GUID,
    VIRTUAL_DISK_ID_GUID,
    LOGICAL_SECTOR_SIZE_GUID,
    PHYSICAL_SECTOR_SIZE_GUID,
    PARENT_LOCATOR_GUID,
}


#: the fields of a VHDX header before its reserved bytes (c_vhdx.header also spans the 4 KiB reserve)
HEADER_FORMAT = "<4sIQ16s16s16sHHIQ"


class VHDXHeader(NamedTuple):
    signature: bytes
    checksum: int
    sequence_number: int
    file_write_guid: bytes
    data_write_guid: bytes
    log_guid: bytes
    log_version: int
    version: int
    log_length: int
    log_offset: int


def _crc_table() -> tuple[int, ...]:
    # CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, as in dissect.util.hash.crc32c
    table = []
    for n in range(256):
        value = n
        for _ in range(8):
            value = (value >> 1) ^ (0x82F63B78 if value & 1 else 0)
        table.append(value)
    return tuple(table)


_CRC_TABLE = _crc_table()


def _crc_update_raw(register: int, data: bytes) -> int:
    for byte in data:
        register = _CRC_TABLE[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo the CRC polynomial, in the CRC's reflected bit order (zlib's multmodp)."""
    m = 1 << 31
    product = 0
    while a:
        if a & m:
            product ^= b
            a ^= m
        m >>= 1
        b = (b >> 1) ^ 0x82F63B78 if b & 1 else b >> 1
    return product


#: x^(2^k) modulo the CRC polynomial for k = 0..31, filled on first use (x^1 is bit 30, reflected)
_X2N: list[int] = []


def _x8nmodp(count: int) -> int:
    """x^(8 * count) modulo the CRC polynomial: what ``count`` zero bytes multiply a CRC register by."""
    if not _X2N:
        power = 1 << 30
        for _ in range(32):
            _X2N.append(power)
            power = _multmodp(power, power)
    product = 1 << 31  # x^0
    k = 3
    while count:
        if count & 1:
            product = _multmodp(_X2N[k & 31], product)
        count >>= 1
        k += 1
    return product


_ZERO_PAGE = bytes(4096)


def _body_length(data: bytes) -> int:
    """``len(data.rstrip(b"\\0"))``. bytes.rstrip tests every byte against its argument (~140 µs for a
    64 KiB region table); whole zero pages are compared at memcmp speed first."""
    end = len(data)
    while end >= len(_ZERO_PAGE) and data[end - len(_ZERO_PAGE) : end] == _ZERO_PAGE:
        end -= len(_ZERO_PAGE)
    return len(data[:end].rstrip(b"\x00"))


def _crc32c_zero_tail(data: bytes) -> int:
    """CRC-32C of ``data``; its trailing zero bytes cost O(log n) (zlib's crc32_combine idea).

    VHDX headers (4 KiB) and region tables (64 KiB) are a few dozen bytes followed by zeros, and a
    byte-at-a-time CRC in Python spends ~10 ms per table on those zeros.
    """
    body = _body_length(data)
    register = _crc_update_raw(0xFFFFFFFF, data[:body])
    zeros = len(data) - body
    if zeros:
        register = _multmodp(_x8nmodp(zeros), register)
    return register ^ 0xFFFFFFFF


def _crc_ok(raw: bytes, checksum_offset: int) -> tuple[bool, int, int]:
    stored = int.from_bytes(raw[checksum_offset : checksum_offset + 4], "little")
    zeroed = raw[:checksum_offset] + b"\x00\x00\x00\x00" + raw[checksum_offset + 4 :]
    computed = _crc32c_zero_tail(zeroed)
    return stored == computed, stored, computed


def _guid(raw: bytes) -> str:
    return str(UUID(bytes_le=bytes(raw)))


def normalize_guid(text: str | None) -> str | None:
    """``{ABC...}`` or ``abc...`` as a lower-case GUID string, or None when it is not a GUID."""
    if not text:
        return None
    try:
        return str(UUID(text.strip().strip("{}")))
    except ValueError:
        return None


class VHDXLayer(Layer):
    """One VHDX file."""

    format = "vhdx"

    def __init__(self, file: CountedFile) -> None:
        super().__init__(file)
        name = file.name
        #: the file's own size (``self.file`` may become the log-replayed view, which can be longer)
        self.file_size = file.size
        ident = file.read_exact(0, 8 + 512, "VHDX file type identifier")
        if ident[:8] != SIGNATURE:
            raise CorruptImageError(
                f"{name}: VHDX file type identifier at offset 0: signature is {ident[:8]!r}, expected {SIGNATURE!r}"
            )
        self.creator = ident[8:].decode("utf-16-le", errors="replace").split("\x00", 1)[0] or None
        # the two headers and the two region tables sit at fixed offsets (64 KiB to 320 KiB): one round trip
        # for the four on a remote file, instead of four in a row
        prefetch = getattr(file.fh, "prefetch", None)
        if prefetch is not None:
            prefetch([(64 * 1024, 256 * 1024)])
        self._read_headers()
        self._read_region_tables()
        if prefetch is not None:
            # the metadata table and its items (where every writer lays them out) and the BAT's start: one round trip
            items = min(max(0, self.metadata_length - 64 * KiB), METADATA_ITEMS_READ)
            prefetch(
                [
                    (self.metadata_offset, min(self.metadata_length, METADATA_TABLE_READ)),
                    (self.metadata_offset + 64 * KiB, items),
                    (self.bat_offset, min(self.bat_length, BAT_FIRST_READ)),
                ]
            )
        self._read_metadata()
        if prefetch is not None:
            # the rest of the BAT as far as its entries go, at most its first MiB (131072 entries: a whole 127 GiB
            # disk of 1 MiB blocks, 4 TiB of 32 MiB ones), so that a file far into the disk does not wait for its
            # BAT entry first; started without waiting, it travels beside the partition table's read
            end = min(self.bat_entries * 8, self.bat_length, BAT_READ_AHEAD)
            if end > BAT_FIRST_READ:
                prefetch([(self.bat_offset + BAT_FIRST_READ, end - BAT_FIRST_READ)], wait=False)
        self._bat: dict[int, list[int]] = {}
        #: payload blocks already looked up and checked: block -> (state, file offset)
        self._payloads: dict[int, tuple[int, int]] = {}
        self._bitmaps: OrderedDict[int, bytes] = OrderedDict()

    # --- header section ---------------------------------------------------------------------

    def _read_headers(self) -> None:
        name = self.path
        valid: list[tuple[int, VHDXHeader]] = []
        problems: list[str] = []
        for number, offset in enumerate(HEADER_OFFSETS, 1):
            raw = self.file.read_exact(offset, HEADER_SIZE, f"VHDX header {number}")
            ok, stored, computed = _crc_ok(raw, 4)
            if raw[:4] != b"head":
                problems.append(f"header {number} at offset {offset}: signature is {raw[:4]!r}, expected b'head'")
            elif not ok:
                problems.append(
                    f"header {number} at offset {offset}: field checksum is 0x{stored:08x}, "
                    f"CRC-32C of the 4 KiB header is 0x{computed:08x}"
                )
            else:
                valid.append((offset, VHDXHeader._make(struct.unpack_from(HEADER_FORMAT, raw))))
        if not valid:
            raise CorruptImageError(f"{name}: no valid VHDX header: " + "; ".join(problems))
        self.headers_crc_valid = not problems
        for problem in problems:
            self.warnings.append(f"{name}: VHDX {problem}; using the other header")
        offset, header = max(valid, key=lambda item: item[1].sequence_number)
        if header.version != 1:
            raise CorruptImageError(
                f"{name}: VHDX header at offset {offset}: field version is {header.version}, expected 1"
            )
        self.header = header
        self.header_offset = offset
        self.data_write_guid = _guid(header.data_write_guid)
        self.log_pending = bytes(header.log_guid) != ZERO_GUID
        self.log_guid = _guid(header.log_guid) if self.log_pending else None
        self.log_replay: LogReplay | None = None
        if self.log_pending:
            self._replay_log(header)

    def _replay_log(self, header: VHDXHeader) -> None:
        """Replay the pending log into an overlay that every later read (region tables, metadata, BAT,
        payload) goes through; the file is not written (see :mod:`.vhdx_log`, loaded here: a disk closed cleanly,
        as most are, never needs it)."""
        from azvhdaudit.container.vhdx_log import replay_log

        replay, overlay = replay_log(
            self.file,
            log_guid=bytes(header.log_guid),
            log_offset=header.log_offset,
            log_length=header.log_length,
            log_version=header.log_version,
            crc32c=_crc32c_zero_tail,
        )
        self.log_replay = replay
        if overlay is not None:
            self.file = overlay
            self.warnings.append(
                f"{self.path}: the VHDX log is not empty (LogGuid {self.log_guid}): the disk was not closed "
                f"cleanly; its log was {replay.summary()}, as Hyper-V and qemu-img check -r all replay it; the "
                "file itself still holds the pending log"
            )
        else:
            self.warnings.append(
                f"{self.path}: the VHDX log is marked pending (LogGuid {self.log_guid}) but was "
                f"{replay.summary()}; the disk is read as the file holds it"
            )

    def _read_region_tables(self) -> None:
        name = self.path
        tables: list[dict[UUID, Any]] = []
        problems: list[str] = []
        for number, offset in enumerate(REGION_OFFSETS, 1):
            raw = self.file.read_exact(offset, REGION_SIZE, f"VHDX region table {number}")
            ok, stored, computed = _crc_ok(raw, 4)
            count = int.from_bytes(raw[8:12], "little")
            if raw[:4] != b"regi":
                problems.append(f"region table {number} at offset {offset}: signature is {raw[:4]!r}, expected b'regi'")
            elif not ok:
                problems.append(
                    f"region table {number} at offset {offset}: field checksum is 0x{stored:08x}, "
                    f"CRC-32C of the 64 KiB table is 0x{computed:08x}"
                )
            elif count > MAX_ENTRIES:
                problems.append(
                    f"region table {number} at offset {offset}: field entry_count is {count}, at most {MAX_ENTRIES}"
                )
            else:
                entries = {}
                for i in range(count):
                    entry = _RegionEntry._make(_REGION_ENTRY.unpack_from(raw, 16 + i * 32))
                    entries[UUID(bytes_le=bytes(entry.guid))] = (offset + 16 + i * 32, entry)
                tables.append(entries)
        if not tables:
            raise CorruptImageError(f"{name}: no valid VHDX region table: " + "; ".join(problems))
        self.region_tables_crc_valid = not problems
        for problem in problems:
            self.warnings.append(f"{name}: VHDX {problem}; using the other region table")
        regions = tables[0]
        for guid, (entry_offset, entry) in regions.items():
            if guid not in (BAT_REGION_GUID, METADATA_REGION_GUID) and entry.required:
                raise CorruptImageError(
                    f"{name}: VHDX region table entry at offset {entry_offset}: unknown required region {guid}"
                )
        self.bat_offset, self.bat_length = self._region(regions, BAT_REGION_GUID, "BAT")
        self.metadata_offset, self.metadata_length = self._region(regions, METADATA_REGION_GUID, "metadata")

    def _region(self, regions: dict[UUID, Any], guid: UUID, what: str) -> tuple[int, int]:
        if guid not in regions:
            raise CorruptImageError(f"{self.path}: VHDX region table has no {what} region ({guid})")
        entry_offset, entry = regions[guid]
        start, length = entry.file_offset, entry.length
        if start < MiB or start % MiB or length == 0 or length % MiB:
            raise CorruptImageError(
                f"{self.path}: VHDX region table entry at offset {entry_offset}: {what} region at "
                f"file_offset {start} with length {length}; both must be non-zero multiples of 1 MiB, "
                "after the first MiB"
            )
        if start + length > self.file.size:
            raise TruncatedImageError(
                f"{self.path}: VHDX {what} region spans offsets {start}-{start + length}, past the end of "
                f"the file ({self.file.size} bytes)"
            )
        return start, length

    # --- metadata ---------------------------------------------------------------------------

    def _read_metadata(self) -> None:
        name, base = self.path, self.metadata_offset
        head = self.file.read_exact(base, 32, "VHDX metadata table header")
        if head[:8] != b"metadata":
            raise CorruptImageError(
                f"{name}: VHDX metadata table at offset {base}: signature is {head[:8]!r}, expected b'metadata'"
            )
        count = int.from_bytes(head[10:12], "little")
        if count > MAX_ENTRIES:
            raise CorruptImageError(
                f"{name}: VHDX metadata table at offset {base}: field entry_count is {count}, at most {MAX_ENTRIES}"
            )
        raw_entries = self.file.read_exact(base + 32, count * 32, "VHDX metadata table entries")
        items: dict[UUID, bytes] = {}
        for i in range(count):
            entry_offset = base + 32 + i * 32
            item_id = UUID(bytes_le=raw_entries[i * 32 : i * 32 + 16])
            offset, length, flags = struct.unpack_from("<III", raw_entries, i * 32 + 16)
            if item_id not in KNOWN_METADATA:
                if flags & 4:
                    raise CorruptImageError(
                        f"{name}: VHDX metadata entry at offset {entry_offset}: unknown required item {item_id}"
                    )
                continue
            if length and (offset < 64 * KiB or offset + length > self.metadata_length):
                raise CorruptImageError(
                    f"{name}: VHDX metadata entry at offset {entry_offset}: item {item_id} at offset {offset} "
                    f"length {length} lies outside the metadata region ({self.metadata_length} bytes)"
                )
            items[item_id] = self.file.read_exact(base + offset, length, f"VHDX metadata item {item_id}")

        def need(guid: UUID, what: str, size: int) -> bytes:
            value = items.get(guid)
            if value is None or len(value) < size:
                raise CorruptImageError(
                    f"{name}: VHDX metadata at offset {base}: required item {what} ({guid}) missing"
                )
            return value

        params = need(FILE_PARAMETERS_GUID, "FileParameters", 8)
        self.block_size, flags = struct.unpack_from("<II", params)
        self.leave_block_allocated = bool(flags & 1)
        self.has_parent = bool(flags & 2)
        self.size = struct.unpack_from("<Q", need(VIRTUAL_DISK_SIZE_GUID, "VirtualDiskSize", 8))[0]
        self.disk_id = _guid(need(VIRTUAL_DISK_ID_GUID, "VirtualDiskId", 16)[:16])
        self.sector_size = struct.unpack_from("<I", need(LOGICAL_SECTOR_SIZE_GUID, "LogicalSectorSize", 4))[0]
        self.physical_sector_size = struct.unpack_from("<I", need(PHYSICAL_SECTOR_SIZE_GUID, "PhysicalSectorSize", 4))[
            0
        ]
        bs = self.block_size
        if bs < MiB or bs > 256 * MiB or bs & (bs - 1):
            raise CorruptImageError(
                f"{name}: VHDX metadata FileParameters: field BlockSize is {bs}; expected a power of two "
                "from 1 MiB to 256 MiB"
            )
        sizes = (("LogicalSectorSize", self.sector_size), ("PhysicalSectorSize", self.physical_sector_size))
        for field, value in sizes:
            if value not in (512, 4096):
                raise CorruptImageError(f"{name}: VHDX metadata {field} is {value}, expected 512 or 4096")
        if self.size <= 0 or self.size > MAX_VIRTUAL_SIZE or self.size % self.sector_size:
            raise CorruptImageError(
                f"{name}: VHDX metadata VirtualDiskSize is {self.size} (0x{self.size:x}); expected a multiple "
                f"of the {self.sector_size}-byte sector size, at most {MAX_VIRTUAL_SIZE} bytes"
            )
        self.subtype = "differencing" if self.has_parent else ("fixed" if self.leave_block_allocated else "dynamic")
        self.locator: dict[str, str] = {}
        if self.has_parent:
            self.locator = self._parse_locator(need(PARENT_LOCATOR_GUID, "ParentLocator", 20))
        self.metadata_valid = True

        self.chunk_ratio = (2**23 * self.sector_size) // bs
        self.data_blocks = -(-self.size // bs)
        if self.has_parent:
            entries = -(-self.data_blocks // self.chunk_ratio) * (self.chunk_ratio + 1)
        else:
            entries = self.data_blocks + (self.data_blocks - 1) // self.chunk_ratio
        self.bat_entries = entries
        if entries * 8 > self.bat_length:
            raise CorruptImageError(
                f"{name}: VHDX BAT region is {self.bat_length} bytes, but {self.data_blocks} blocks of {bs} "
                f"bytes need {entries} entries ({entries * 8} bytes)"
            )

    def _parse_locator(self, raw: bytes) -> dict[str, str]:
        name = self.path
        kind = UUID(bytes_le=raw[:16])
        if kind != VHDX_PARENT_LOCATOR_GUID:
            raise CorruptImageError(
                f"{name}: VHDX parent locator: field LocatorType is {kind}, expected {VHDX_PARENT_LOCATOR_GUID}"
            )
        count = int.from_bytes(raw[18:20], "little")
        result: dict[str, str] = {}
        for i in range(count):
            at = 20 + i * 12
            if at + 12 > len(raw):
                raise CorruptImageError(
                    f"{name}: VHDX parent locator: entry {i} of {count} lies past the item ({len(raw)} bytes)"
                )
            key_offset, value_offset, key_length, value_length = struct.unpack_from("<IIHH", raw, at)
            if key_offset + key_length > len(raw) or value_offset + value_length > len(raw):
                raise CorruptImageError(
                    f"{name}: VHDX parent locator entry {i}: key at {key_offset} (+{key_length}) or value at "
                    f"{value_offset} (+{value_length}) lies past the item ({len(raw)} bytes)"
                )
            key = raw[key_offset : key_offset + key_length].decode("utf-16-le", errors="replace")
            value = raw[value_offset : value_offset + value_length].decode("utf-16-le", errors="replace")
            result[key] = value
        return result

    # --- block lookups ----------------------------------------------------------------------

    def _entry(self, index: int) -> int:
        page_index, slot = divmod(index, BAT_PAGE)
        page = self._bat.get(page_index)
        if page is None:
            first = page_index * BAT_PAGE
            count = min(BAT_PAGE, self.bat_entries - first)
            raw = self.file.read_exact(self.bat_offset + first * 8, count * 8, "VHDX BAT")
            page = list(struct.unpack(f"<{count}Q", raw))
            self._bat[page_index] = page
        return page[slot]

    def _payload(self, block: int) -> tuple[int, int]:
        """(state, file offset) of a payload block, checked against the file (once per block)."""
        known = self._payloads.get(block)
        if known is not None:
            return known
        index = block + block // self.chunk_ratio
        entry = self._entry(index)
        state, offset = entry & 7, (entry >> 20) * MiB
        if state not in STATE_NAMES or (state == PB_PARTIALLY_PRESENT and not self.has_parent):
            raise CorruptImageError(f"{self._bat_where(index, block, entry)}: state {state} is not valid here")
        if state in (PB_FULLY_PRESENT, PB_PARTIALLY_PRESENT):
            length = min(self.block_size, self.size - block * self.block_size)
            if offset < MiB or offset >= self.file.size:
                raise CorruptImageError(
                    f"{self._bat_where(index, block, entry)}: block offset {offset} lies outside the file "
                    f"({self.file.size} bytes)"
                )
            if offset + length > self.file.size:
                raise TruncatedImageError(
                    f"{self._bat_where(index, block, entry)}: block spans offsets {offset}-{offset + length}, "
                    f"past the end of the file ({self.file.size} bytes)"
                )
        self._payloads[block] = (state, offset)
        return state, offset

    def _bat_where(self, index: int, block: int, entry: int) -> str:
        return f"{self.path}: VHDX BAT entry {index} (block {block}) is 0x{entry:016x}"

    def _bitmap(self, block: int) -> bytes:
        """This block's bits of its chunk's sector bitmap (bit set = sector in this file)."""
        cached = self._bitmaps.get(block)
        if cached is not None:
            return cached
        chunk = block // self.chunk_ratio
        index = (chunk + 1) * self.chunk_ratio + chunk
        entry = self._entry(index)
        state, offset = entry & 7, (entry >> 20) * MiB
        if state != SB_PRESENT:
            raise CorruptImageError(
                f"{self.path}: VHDX BAT sector bitmap entry {index} is 0x{entry:016x} (state {state}), but "
                f"block {block} is PARTIALLY_PRESENT and needs it"
            )
        if offset < MiB or offset + MiB > self.file.size:
            raise CorruptImageError(
                f"{self.path}: VHDX BAT sector bitmap entry {index} is 0x{entry:016x}: the 1 MiB bitmap at "
                f"{offset} lies outside the file ({self.file.size} bytes)"
            )
        per_block = self.block_size // self.sector_size // 8
        start = offset + (block % self.chunk_ratio) * per_block
        bitmap = self.file.read_exact(start, per_block, f"VHDX sector bitmap of block {block}")
        self._bitmaps[block] = bitmap
        if len(self._bitmaps) > BITMAP_CACHE:
            self._bitmaps.popitem(last=False)
        return bitmap

    def _parent_read(self, offset: int, length: int) -> bytes:
        parent = self.parent
        if parent is None:
            return bytes(length)
        inside = max(0, min(length, parent.size - offset))
        data = parent.read(offset, inside) if inside else b""
        return data + bytes(length - inside)

    def read(self, offset: int, length: int) -> bytes:
        bs = self.block_size
        out: list[bytes] = []
        while length > 0:
            block, inblock = divmod(offset, bs)
            count = min(bs - inblock, length)
            state, file_offset = self._payload(block)
            if state == PB_FULLY_PRESENT:
                out.append(self.file.read_exact(file_offset + inblock, count, f"VHDX payload block {block}"))
            elif state == PB_PARTIALLY_PRESENT:
                out.append(self._read_partial(block, file_offset, offset, inblock, count))
            elif state == PB_NOT_PRESENT and self.has_parent:
                out.append(self._parent_read(offset, count))
            else:
                out.append(bytes(count))
            offset += count
            length -= count
        return b"".join(out)

    def _read_partial(self, block: int, file_offset: int, offset: int, inblock: int, count: int) -> bytes:
        bitmap = self._bitmap(block)
        ss = self.sector_size
        out: list[bytes] = []
        pos, end = inblock, inblock + count

        def bit(sector: int) -> bool:
            return bool(bitmap[sector >> 3] & (1 << (sector & 7)))

        while pos < end:
            here = bit(pos // ss)
            run_end = min(end, (pos // ss + 1) * ss)
            while run_end < end and bit(run_end // ss) == here:
                run_end = min(end, (run_end // ss + 1) * ss)
            n = run_end - pos
            if here:
                out.append(self.file.read_exact(file_offset + pos, n, f"VHDX payload block {block}"))
            else:
                out.append(self._parent_read(offset + (pos - inblock), n))
            pos = run_end
        return b"".join(out)

    # --- parents ----------------------------------------------------------------------------

    def parent_locators(self) -> list[tuple[str, str]]:
        """(kind, path) pairs in the order to try: relative_path, volume_path, absolute_win32_path."""
        order = (("relative_path", "relative"), ("volume_path", "volume"), ("absolute_win32_path", "absolute"))
        return [(kind, self.locator[key]) for key, kind in order if self.locator.get(key)]

    @property
    def own_id(self) -> str:
        """The id a child records for this disk as its parent: the DataWriteGuid."""
        return self.data_write_guid

    @property
    def expected_parent_id(self) -> str | None:
        return normalize_guid(self.locator.get("parent_linkage"))

    def linkage_matches(self, parent: Layer) -> bool:
        if not isinstance(parent, VHDXLayer):
            return False
        # parent_linkage2 is the DataWriteGuid the parent may have after an interrupted update; zeros = unset
        ids = {normalize_guid(self.locator.get(key)) for key in ("parent_linkage", "parent_linkage2")}
        ids.discard(None)
        ids.discard(str(UUID(int=0)))
        return parent.own_id in ids

    # --- facts ------------------------------------------------------------------------------

    def facts(self) -> ContainerFacts:
        return ContainerFacts(
            path=self.path,
            format="vhdx",
            subtype=self.subtype,
            virtual_size=self.size,
            file_size=self.file_size,
            logical_sector_size=self.sector_size,
            physical_sector_size=self.physical_sector_size,
            block_size=self.block_size,
            creator_app=self.creator,
            disk_id=self.disk_id,
            headers_crc_valid=self.headers_crc_valid,
            region_tables_crc_valid=self.region_tables_crc_valid,
            metadata_valid=self.metadata_valid,
            log_pending=self.log_pending,
            log_guid=self.log_guid,
            log_replay=None if self.log_replay is None else self.log_replay.to_dict(),
            data_write_guid=self.data_write_guid,
        )
