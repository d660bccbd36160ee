"""Reading VHD files: fixed, dynamic and differencing, with every structure validated.

References:
- Microsoft, "Virtual Hard Disk Image Format Specification", version 1.0, October 2006
  (https://www.microsoft.com/en-us/download/details.aspx?id=23850).
- Layouts: :mod:`azvhdaudit.container.vhd_structs`.

Why not ``dissect.hypervisor.disk.vhd``: it ignores differencing disks, never checks the footer
cookie or checksum, and reads a dynamic VHD whose end was cut off as zeros.

Reads are lazy: the block allocation table is read one sector (128 entries) at a time when a
block is first asked for, and every entry is bounds-checked against the file when it is used.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any
from uuid import UUID

from construct import ConstructError

from azvhdaudit.container.base import MAX_VIRTUAL_SIZE, CountedFile, Layer
from azvhdaudit.container.vhd_structs import (
    DISK_DYNAMIC,
    DISK_FIXED,
    DISK_TYPES,
    DYNAMIC_COOKIE,
    DYNAMIC_HEADER,
    DYNAMIC_HEADER_SIZE,
    FOOTER,
    FOOTER_CHECKSUM_OFFSET,
    FOOTER_COOKIE,
    FOOTER_SIZE,
    HEADER_CHECKSUM_OFFSET,
    UNALLOCATED,
    VHD_VERSION,
    checksum,
)
from azvhdaudit.errors import CorruptImageError, TruncatedImageError
from azvhdaudit.facts import ContainerFacts

__all__ = ["VHDLayer", "probe_vhd"]

log = logging.getLogger(__name__)

SECTOR = 512
#: BAT entries read at once (one sector)
BAT_PAGE = 128
MAX_BLOCK_SIZE = 256 * 1024 * 1024
#: most bytes a parent locator may hold (a Windows path, UTF-16)
MAX_LOCATOR_LENGTH = 64 * 1024
BITMAP_CACHE = 64


def probe_vhd(file: CountedFile) -> str | None:
    """Where this file's VHD footer is, or None (not a VHD).

    ``"end"``: the last 512 bytes; ``"end511"``: the last 511 (Virtual PC before 2004); ``"cut"``: the
    footer starts at the last sector boundary but the file ends inside it; ``"badcookie"``: the last
    512 bytes are a footer (version and disk type fit) whose cookie is wrong; ``"copy"``: only the
    copy at offset 0 of a dynamic disk is there (the end of the file is missing).
    """
    size = file.size
    tail = file.pread(max(0, size - FOOTER_SIZE), FOOTER_SIZE)
    if len(tail) == FOOTER_SIZE and tail[:8] == FOOTER_COOKIE:
        return "end"
    if len(tail) >= FOOTER_SIZE - 1 and tail[1:9] == FOOTER_COOKIE:
        return "end511"
    cut = size - size % SECTOR
    if size % SECTOR and size > SECTOR and tail[cut - size + FOOTER_SIZE :][:8] == FOOTER_COOKIE:
        return "cut"
    if (
        len(tail) == FOOTER_SIZE
        and int.from_bytes(tail[12:16], "big") == VHD_VERSION
        and int.from_bytes(tail[60:64], "big") in DISK_TYPES
    ):
        return "badcookie"
    if file.pread(0, 8) == FOOTER_COOKIE:
        return "copy"
    return None


def bitmap_size(block_size: int) -> int:
    """Bytes of the sector bitmap before each data block: one bit per sector, padded to a sector."""
    bits = max(1, block_size // SECTOR)
    return -(-bits // (8 * SECTOR)) * SECTOR


def _text(raw: bytes) -> str:
    return raw.decode("latin-1").rstrip("\x00 ")


def _uuid(raw: bytes) -> str:
    return str(UUID(bytes=bytes(raw)))


class VHDLayer(Layer):
    """One VHD file."""

    format = "vhd"

    def __init__(self, file: CountedFile, where: str) -> None:
        super().__init__(file)
        name = file.name
        self.footer_at_end = where in ("end", "end511")
        self.footer_checksum_valid = True
        self.footer_copy_matches: bool | None = None
        self.dynamic_header_checksum_valid: bool | None = None
        self.header = None
        self.block_size: int | None = None
        self._bat: dict[int, list[int]] = {}
        self._bitmaps: OrderedDict[int, bytes] = OrderedDict()

        if where == "copy":
            self._raise_truncated()
        if where == "cut":
            start = file.size - file.size % SECTOR
            raise TruncatedImageError(
                f"{name}: the VHD footer at offset {start} is cut off: the file ends {file.size - start} bytes "
                f"into it ({FOOTER_SIZE} needed); the file should be {start + FOOTER_SIZE} bytes long"
            )

        if where in ("end", "badcookie"):
            self.footer_offset = file.size - FOOTER_SIZE
            raw_footer = file.read_exact(self.footer_offset, FOOTER_SIZE, "VHD footer")
        else:
            self.footer_offset = file.size - (FOOTER_SIZE - 1)
            raw_footer = file.read_exact(self.footer_offset, FOOTER_SIZE - 1, "VHD footer") + b"\x00"
            self.warnings.append(
                f"{name}: the footer is 511 bytes (written by Virtual PC before 2004); current tools write 512 bytes"
            )
        footer = self._parse_footer(raw_footer, self.footer_offset)
        end_footer = raw_footer

        stored, computed = footer.checksum, checksum(raw_footer, FOOTER_CHECKSUM_OFFSET)
        if stored != computed:
            self.footer_checksum_valid = False
            copy = self._footer_copy(footer.disk_type)
            bad = (
                f"{name}: VHD footer at offset {self.footer_offset}: field checksum is 0x{stored:08x}, "
                f"the checksum computed over the bytes is 0x{computed:08x}"
            )
            if copy is None or checksum(copy, FOOTER_CHECKSUM_OFFSET) != FOOTER.parse(copy).checksum:
                raise CorruptImageError(bad)
            # The copy at offset 0 of a dynamic disk is intact: read through it, but say so.
            self.warnings.append(bad + "; using the valid footer copy at offset 0")
            raw_footer = copy
            footer = self._parse_footer(copy, 0)
        self.raw_footer = raw_footer
        self.footer = footer

        if footer.version != VHD_VERSION:
            raise CorruptImageError(
                f"{name}: VHD footer at offset {self.footer_offset}: field version is "
                f"0x{footer.version:08x}, expected 0x{VHD_VERSION:08x}"
            )
        if footer.disk_type not in DISK_TYPES:
            raise CorruptImageError(
                f"{name}: VHD footer at offset {self.footer_offset}: field disk_type is {footer.disk_type}, "
                f"expected 2 (fixed), 3 (dynamic) or 4 (differencing)"
            )
        self.subtype = DISK_TYPES[footer.disk_type]
        size = footer.current_size
        if size <= 0 or size > MAX_VIRTUAL_SIZE:
            raise CorruptImageError(
                f"{name}: VHD footer at offset {self.footer_offset}: field current_size is {size} "
                f"(0x{size:x}); a virtual disk holds 1 byte to {MAX_VIRTUAL_SIZE} bytes"
            )
        if size % SECTOR:
            self.warnings.append(f"{name}: virtual size {size} is not a multiple of {SECTOR} bytes")
        if footer.saved_state:
            self.warnings.append(
                f"{name}: VHD footer at offset {self.footer_offset}: field saved_state is {footer.saved_state}: "
                "the disk was saved with a running virtual machine's state"
            )
        self.size = size

        if footer.disk_type == DISK_FIXED:
            if self.footer_offset < size:
                raise TruncatedImageError(
                    f"{name}: fixed VHD of virtual size {size} needs {size + FOOTER_SIZE} bytes, "
                    f"but the file is {file.size} bytes long"
                )
            if self.footer_offset > size:
                self.warnings.append(
                    f"{name}: {self.footer_offset - size} bytes lie between the end of the data "
                    f"(offset {size}) and the footer (offset {self.footer_offset})"
                )
        else:
            copy = self._footer_copy(footer.disk_type)
            self.footer_copy_matches = copy == end_footer
            if not self.footer_copy_matches:
                self.warnings.append(f"{name}: the footer copy at offset 0 differs from the footer at the end")
            self._open_dynamic()

    # --- structures -----------------------------------------------------------------------

    def _parse_footer(self, raw: bytes, offset: int) -> Any:
        try:
            footer = FOOTER.parse(raw)
        except ConstructError as err:  # pragma: no cover - fixed-size bytes always parse
            raise CorruptImageError(f"{self.path}: VHD footer at offset {offset}: {err}") from err
        if footer.cookie != FOOTER_COOKIE:
            raise CorruptImageError(
                f"{self.path}: VHD footer at offset {offset}: field cookie is {bytes(footer.cookie)!r}, "
                f"expected {FOOTER_COOKIE!r}"
            )
        return footer

    def _footer_copy(self, disk_type: int) -> bytes | None:
        if disk_type == DISK_FIXED:
            return None
        copy = self.file.pread(0, FOOTER_SIZE)
        return copy if len(copy) == FOOTER_SIZE and copy[:8] == FOOTER_COOKIE else None

    def _read_dynamic_header(self, footer: Any, limit: int) -> tuple[Any, bytes]:
        name = self.path
        offset = footer.data_offset
        if offset % SECTOR or offset + DYNAMIC_HEADER_SIZE > limit:
            raise CorruptImageError(
                f"{name}: VHD footer: field data_offset is {offset} (0x{offset:x}); the dynamic header "
                f"({DYNAMIC_HEADER_SIZE} bytes) must lie sector-aligned inside the file ({limit} bytes)"
            )
        raw = self.file.read_exact(offset, DYNAMIC_HEADER_SIZE, "VHD dynamic header")
        header = DYNAMIC_HEADER.parse(raw)
        if header.cookie != DYNAMIC_COOKIE:
            raise CorruptImageError(
                f"{name}: VHD dynamic header at offset {offset}: field cookie is {bytes(header.cookie)!r}, "
                f"expected {DYNAMIC_COOKIE!r}"
            )
        return header, raw

    def _open_dynamic(self) -> None:
        name = self.path
        footer = self.footer
        header, raw = self._read_dynamic_header(footer, self.footer_offset)
        offset = footer.data_offset
        stored, computed = header.checksum, checksum(raw, HEADER_CHECKSUM_OFFSET)
        self.dynamic_header_checksum_valid = stored == computed
        if stored != computed:
            raise CorruptImageError(
                f"{name}: VHD dynamic header at offset {offset}: field checksum is 0x{stored:08x}, "
                f"the checksum computed over the bytes is 0x{computed:08x}"
            )
        if header.header_version != VHD_VERSION:
            raise CorruptImageError(
                f"{name}: VHD dynamic header at offset {offset}: field header_version is "
                f"0x{header.header_version:08x}, expected 0x{VHD_VERSION:08x}"
            )
        bs = header.block_size
        if bs < SECTOR or bs > MAX_BLOCK_SIZE or bs & (bs - 1):
            raise CorruptImageError(
                f"{name}: VHD dynamic header at offset {offset}: field block_size is {bs}; expected a power "
                f"of two from {SECTOR} to {MAX_BLOCK_SIZE} bytes (2 MiB is usual)"
            )
        needed = -(-self.size // bs)
        if header.max_table_entries < needed:
            raise CorruptImageError(
                f"{name}: VHD dynamic header at offset {offset}: field max_table_entries is "
                f"{header.max_table_entries}, but a virtual size of {self.size} bytes in blocks of {bs} "
                f"bytes needs {needed}"
            )
        table_end = header.table_offset + header.max_table_entries * 4
        if header.table_offset % SECTOR or table_end > self.footer_offset:
            raise CorruptImageError(
                f"{name}: VHD dynamic header at offset {offset}: field table_offset is {header.table_offset}; "
                f"the block allocation table of {header.max_table_entries} entries would end at "
                f"{table_end}, past the data end of the file ({self.footer_offset} bytes before the footer)"
            )
        self.header = header
        self.block_size = bs
        #: blocks start after the block allocation table (which fills whole sectors)
        self.data_start = header.table_offset + -(-header.max_table_entries * 4 // SECTOR) * SECTOR
        self.bitmap_size = bitmap_size(bs)

    def _raise_truncated(self) -> None:
        """The footer copy at offset 0 exists but the footer at the end does not: say how long the file should be."""
        file, name = self.file, self.path
        raw = file.pread(0, FOOTER_SIZE)
        footer = self._parse_footer(raw.ljust(FOOTER_SIZE, b"\x00"), 0)
        kind = DISK_TYPES.get(footer.disk_type, f"type {footer.disk_type}")
        at_least = False
        if footer.disk_type == DISK_FIXED:
            expected = footer.current_size + FOOTER_SIZE
        else:
            try:
                header, _ = self._read_dynamic_header(footer, 2**63)
            except CorruptImageError:
                header = None
            if header is None:
                expected, at_least = footer.data_offset + DYNAMIC_HEADER_SIZE + FOOTER_SIZE, True
            else:
                bat_bytes = header.max_table_entries * 4
                expected = header.table_offset + -(-bat_bytes // SECTOR) * SECTOR
                raw_bat = file.pread(header.table_offset, min(bat_bytes, max(0, file.size - header.table_offset)))
                at_least = len(raw_bat) < bat_bytes
                block_bytes = bitmap_size(header.block_size) + header.block_size
                for i in range(0, len(raw_bat) - 3, 4):
                    entry = int.from_bytes(raw_bat[i : i + 4], "big")
                    if entry != UNALLOCATED:
                        expected = max(expected, entry * SECTOR + block_bytes)
                expected += FOOTER_SIZE
        if not at_least and file.size >= expected:
            tail = file.pread(file.size - FOOTER_SIZE, 16)
            raise CorruptImageError(
                f"{name}: {kind} VHD: the footer copy at offset 0 is present, the file has its full length "
                f"({file.size} bytes), but the last 512 bytes (offset {file.size - FOOTER_SIZE}) are not a footer: "
                f"cookie is {tail[:8]!r}, expected {FOOTER_COOKIE!r}"
            )
        raise TruncatedImageError(
            f"{name}: truncated {kind} VHD: the footer copy at offset 0 is present but the footer at the "
            f"end is missing; the file is {file.size} bytes, its headers say it should be "
            f"{'at least ' if at_least else ''}{expected} bytes long"
        )

    # --- block lookups ----------------------------------------------------------------------

    def _bat_entry(self, block: int) -> int:
        page_index, slot = divmod(block, BAT_PAGE)
        page = self._bat.get(page_index)
        if page is None:
            header = self.header
            assert header is not None
            first = page_index * BAT_PAGE
            count = min(BAT_PAGE, header.max_table_entries - first)
            raw = self.file.read_exact(header.table_offset + first * 4, count * 4, "VHD block allocation table")
            page = [int.from_bytes(raw[i : i + 4], "big") for i in range(0, len(raw), 4)]
            self._bat[page_index] = page
        entry = page[slot]
        if entry == UNALLOCATED:
            return entry
        bs = self.block_size
        assert bs is not None
        start = entry * SECTOR
        end = start + self.bitmap_size + min(bs, self.size - block * bs)
        if start < self.data_start:
            raise CorruptImageError(
                f"{self.path}: VHD block allocation table: entry for block {block} is 0x{entry:08x} "
                f"(offset {start}), inside the headers and table that end at offset {self.data_start}"
            )
        if start >= self.footer_offset:
            raise CorruptImageError(
                f"{self.path}: VHD block allocation table: entry for block {block} is 0x{entry:08x} "
                f"(offset {start}), past the end of the file ({self.file.size} bytes)"
            )
        if end > self.footer_offset:
            raise TruncatedImageError(
                f"{self.path}: VHD block allocation table: block {block} (entry 0x{entry:08x}) spans offsets "
                f"{start}-{end}, past the data end of the file ({self.footer_offset} bytes before the "
                f"footer, file size {self.file.size})"
            )
        return entry

    def _bitmap(self, block: int, entry: int) -> bytes:
        bitmap = self._bitmaps.get(block)
        if bitmap is None:
            bitmap = self.file.read_exact(entry * SECTOR, self.bitmap_size, f"VHD sector bitmap of block {block}")
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
        if self.footer.disk_type == DISK_FIXED:
            return self.file.read_exact(offset, length, "VHD data")
        bs = self.block_size
        assert bs is not None
        out: list[bytes] = []
        while length > 0:
            block, inblock = divmod(offset, bs)
            count = min(bs - inblock, length)
            entry = self._bat_entry(block)
            if entry == UNALLOCATED:
                out.append(self._parent_read(offset, count))
            elif self.footer.disk_type == DISK_DYNAMIC:
                base = entry * SECTOR + self.bitmap_size
                out.append(self.file.read_exact(base + inblock, count, f"VHD data block {block}"))
            else:
                out.append(self._read_differencing(block, entry, offset, inblock, count))
            offset += count
            length -= count
        return b"".join(out)

    def _read_differencing(self, block: int, entry: int, offset: int, inblock: int, count: int) -> bytes:
        """Sectors whose bitmap bit is set come from this file, the others from the parent."""
        bitmap = self._bitmap(block, entry)
        base = entry * SECTOR + self.bitmap_size
        out: list[bytes] = []
        pos, end = inblock, inblock + count
        while pos < end:
            sector = pos // SECTOR
            here = bool(bitmap[sector >> 3] & (0x80 >> (sector & 7)))
            run_end = min(end, (sector + 1) * SECTOR)
            while run_end < end:
                nxt = run_end // SECTOR
                if bool(bitmap[nxt >> 3] & (0x80 >> (nxt & 7))) != here:
                    break
                run_end = min(end, (nxt + 1) * SECTOR)
            n = run_end - pos
            if here:
                out.append(self.file.read_exact(base + pos, n, f"VHD data block {block}"))
            else:
                out.append(self._parent_read(offset + (pos - inblock), n))
            pos = run_end
        return b"".join(out)

    # --- parents ----------------------------------------------------------------------------

    def parent_locators(self) -> list[tuple[str, str]]:
        """(kind, path) pairs in the order to try: ``relative``, ``absolute``, ``name``."""
        header = self.header
        if header is None:
            return []
        found: dict[str, list[str]] = {"relative": [], "absolute": [], "name": []}
        for index, loc in enumerate(header.parent_locators):
            code = bytes(loc.platform_code)
            if code not in (b"W2ru", b"W2ku", b"Wi2r", b"Wi2k"):
                continue  # unused, or a Mac alias/URL a Windows image does not need
            length, offset = loc.platform_data_length, loc.platform_data_offset
            if length == 0:
                continue
            if length > MAX_LOCATOR_LENGTH or offset + length > self.file.size:
                raise CorruptImageError(
                    f"{self.path}: VHD dynamic header: parent locator {index} ({code.decode()}) names "
                    f"{length} bytes at offset {offset}, outside the file ({self.file.size} bytes)"
                )
            raw = self.file.read_exact(offset, length, f"VHD parent locator {index}")
            if code in (b"W2ru", b"W2ku"):
                text = raw.decode("utf-16-le", errors="replace")
            else:
                text = raw.decode("latin-1")
            text = text.split("\x00", 1)[0].strip()
            if text:
                found["relative" if code in (b"W2ru", b"Wi2r") else "absolute"].append(text)
        name = bytes(header.parent_unicode_name).decode("utf-16-be", errors="replace").split("\x00", 1)[0]
        if name.strip():
            found["name"].append(name.strip())
        return [(kind, path) for kind in ("relative", "absolute", "name") for path in found[kind]]

    @property
    def own_id(self) -> str:
        """The id a child records for this disk as its parent: the footer's unique id."""
        return _uuid(self.footer.unique_id)

    @property
    def expected_parent_id(self) -> str | None:
        if self.header is None or self.subtype != "differencing":
            return None
        return _uuid(self.header.parent_unique_id)

    def linkage_matches(self, parent: Layer) -> bool:
        return isinstance(parent, VHDLayer) and parent.own_id == self.expected_parent_id

    # --- facts ------------------------------------------------------------------------------

    def facts(self) -> ContainerFacts:
        f = self.footer
        cyl, heads, spt = f.cylinders, f.heads, f.sectors_per_track
        version = f.creator_version
        return ContainerFacts(
            path=self.path,
            format="vhd",
            subtype=self.subtype,
            virtual_size=self.size,
            file_size=self.file.size,
            block_size=self.block_size,
            creator_app=_text(bytes(f.creator_app)) or None,
            creator_version=f"{version >> 16}.{version & 0xFFFF}",
            creator_host=_text(bytes(f.creator_host_os)) or None,
            disk_id=self.own_id,
            footer_cookie_valid=True,
            footer_checksum_valid=self.footer_checksum_valid,
            footer_version=f"{f.version >> 16}.{f.version & 0xFFFF}",
            footer_at_end=self.footer_at_end,
            footer_copy_matches=self.footer_copy_matches,
            geometry=(cyl, heads, spt),
            geometry_size=cyl * heads * spt * SECTOR,
            original_size=f.original_size,
            dynamic_header_checksum_valid=self.dynamic_header_checksum_valid,
        )
