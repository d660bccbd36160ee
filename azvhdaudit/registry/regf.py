"""The default hive backend: dissect.regf, reading lazily only the cells a lookup needs.

dissect.regf parses the cells (key nodes, subkey lists, values); this module adds what an audit needs on
top: bounds checks on every cell offset and size before it is read (so a bad offset is a
:class:`~azvhdaudit.errors.CorruptHiveError`, not a seek past the end), lookups that are case-insensitive
for every list type, and names decoded as the format defines them.

Notes on dissect.regf 3.14, checked against the test hives:

- ``RegistryHive.dirty`` is inverted: it is set when the base block checksum *matches*
  (``xor32_crc(...) == CheckSum``), so every intact hive reads as "dirty" and a corrupt checksum as clean.
  It is also about the checksum, not the sequence numbers. We never use it: dirtiness is decided from the
  base block (primary != secondary sequence number) in :mod:`azvhdaudit.registry.logs`.
- ``IndexLeaf.subkey`` (``li`` lists) compares names case-sensitively; ``FastLeaf.subkey`` decodes name
  hints as ASCII and raises on other bytes. Lookups here walk the lists themselves.
- Compressed (ASCII) names are decoded as UTF-8 first; the format stores them as Latin-1, which is what
  is used here.

References: dissect.regf (github.com/fox-it/dissect.regf); M. Suhanov, *Windows registry file format
specification* ("Cell", "Fast leaf", "Hash leaf", "Index root", "Key value", "Big data").
"""

from __future__ import annotations

import functools
import logging
import struct
from codecs import utf_16_le_decode as _decode_utf16
from typing import Any, BinaryIO

from dissect.regf import regf as _dregf
from dissect.regf.c_regf import KEY, VALUE, c_regf
from dissect.regf.exceptions import Error as DissectRegfError

from azvhdaudit.batch import fetch_unit
from azvhdaudit.errors import CorruptHiveError
from azvhdaudit.registry.backend import BIG_DATA_SEGMENT, CellReader, hash_name, register_backend_errors

__all__ = ["RegfReader"]

log = logging.getLogger(__name__)

register_backend_errors(DissectRegfError)

_NK_HEADER = len(c_regf._CM_KEY_NODE)
_VK_HEADER = len(c_regf._CM_KEY_VALUE)
_NIL = 0xFFFFFFFF
_PAGE = 4096
#: cell signatures dissect.regf knows, with its class names (for messages)
_CELL_NAMES = {
    b"nk": "KeyNode",
    b"vk": "KeyValue",
    b"ri": "IndexRoot",
    b"li": "IndexLeaf",
    b"lf": "FastLeaf",
    b"lh": "HashLeaf",
    b"sk": "KeySecurity",
    b"db": "BigData",
}
_BASE_BLOCK = 4096
# cached_cell reads pages by offset >> 12 + 1: _PAGE is 1 << 12, and the hive bins start after _BASE_BLOCK == _PAGE
#: the most pages read ahead in one read of the stream
_PREFETCH_PAGES = 256
#: bytes a page of the hive missing a remote source's cache fetches around it (:func:`azvhdaudit.batch.fetch_unit`):
#: the cells of a key (its node, subkey list, value list and values) lie near each other in the hive bins, and the
#: next step of a lookup is often among them. On the 127 GiB benchmark VHDX (the real 11 MiB Windows 7 SYSTEM hive,
#: a 69 MB SOFTWARE) 32 KiB fetch 0.8 MB less than 64 KiB in as many round trips; 16 KiB cost three round trips more
HIVE_FETCH_UNIT = 32 * 1024
_CELL_SIZE = struct.Struct("<i")
#: a byte's low three bits (an offset's alignment to 8, from its least significant byte)
_LOW_BITS = bytes(byte & 7 for byte in range(256))


class _BoundedHive(_dregf.RegistryHive):
    """dissect.regf's hive with every cell read checked against the hive bins data."""

    def __init__(self, fh: BinaryIO, source: str, bins_size: int) -> None:
        self._source = source
        self._bins_size = bins_size
        # Cells are read through a cache of 4 KiB pages of the hive file: a lookup reads a few dozen
        # small cells that share pages, and every read of the file stream below (NTFS runs, the
        # container's block map) costs far more than slicing a page already read.
        self._pages: dict[int, bytes] = {}
        self._remote: bool | None = None  # whether fh reads from a remote source (see prefetch)
        # What dissect.regf's RegistryHive.__init__ sets, minus its cstruct parse of the whole base block
        # (1-2 ms a hive, more than the rest of opening it): the base block was checked by
        # azvhdaudit.registry.open already; only the fields below are used.
        self.fh = fh
        base = self._read_at(0, _BASE_BLOCK)
        if len(base) < _BASE_BLOCK:
            raise CorruptHiveError(f"{source}: the base block is cut at {len(base)} bytes (hive truncated)")
        self.header = _BaseBlock(base)
        self.version = self.header.Minor
        self.filename = base[48:112].decode("utf-16-le", errors="replace").rstrip("\x00")
        self.in_transaction = self.header.Sequence1 != self.header.Sequence2
        self._hbin_offset = _BASE_BLOCK
        self._root = self.cell(self.header.RootCell)

    def _page(self, index: int) -> bytes:
        page = self._pages.get(index)
        if page is None:
            with fetch_unit(HIVE_FETCH_UNIT):
                self.fh.seek(index * _PAGE)
                page = self._pages[index] = self.fh.read(_PAGE)
        return page

    def _read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes of the hive file at ``offset`` (fewer at its end), through the page cache."""
        first, last = offset // _PAGE, (offset + size - 1) // _PAGE
        start = offset - first * _PAGE
        if first == last:
            return self._page(first)[start : start + size]
        return b"".join(self._page(index) for index in range(first, last + 1))[start : start + size]

    def _cell_data(self, offset: int) -> tuple[bool, bytes]:
        if offset >= self._bins_size or offset % 8:
            raise CorruptHiveError(
                f"{self._source}: cell offset 0x{offset:X} is outside the hive bins data "
                f"(size 0x{self._bins_size:X}) or not aligned"
            )
        position = self._hbin_offset + offset
        head = self._read_at(position, 4)
        if len(head) < 4:
            raise CorruptHiveError(f"{self._source}: file ends at the cell at offset 0x{offset:X} (hive truncated)")
        size = int.from_bytes(head, "little", signed=True)
        allocated = size < 0
        size = abs(size)
        if size < 8 or offset + size > self._bins_size:
            raise CorruptHiveError(
                f"{self._source}: cell at offset 0x{offset:X} has size {size}, which does not fit in the "
                f"hive bins data (size 0x{self._bins_size:X})"
            )
        data = self._read_at(position + 4, size - 4)
        if len(data) < size - 4:
            raise CorruptHiveError(f"{self._source}: file ends inside the cell at offset 0x{offset:X} (hive truncated)")
        return allocated, data

    def cell_data(self, offset: int) -> bytes:
        # A cell inside a page already read is sliced from it (cached_cell), after the same checks as
        # _cell_data (which reads and checks every other cell): a lookup reads a few cells per key, most of
        # them on pages read for an earlier one.
        data = self.cached_cell(offset)
        return self._cell_data(offset)[1] if data is None else data

    def cached_cell(self, offset: int) -> bytes | None:
        """The data of the cell at ``offset`` when it lies whole in a page already read and passes the checks of
        :meth:`_cell_data`; ``None`` otherwise (never raises, never reads)."""
        # the hive bins data starts at the second page of the file (_BASE_BLOCK == _PAGE)
        if offset >= self._bins_size or offset & 7:
            return None
        page = self._pages.get((offset >> 12) + 1)
        if page is None:
            return None
        start = offset & 4095
        try:
            size = abs(_CELL_SIZE.unpack_from(page, start)[0])
        except struct.error:  # a short last page
            return None
        end = start + size
        if size < 8 or end > len(page) or offset + size > self._bins_size:
            return None
        return page[start + 4 : end]

    def prefetch(self, offsets: list[int]) -> None:
        """Read the pages holding the cells at ``offsets`` that are not read yet, a run of adjacent pages
        in one read: the same bytes, in far fewer reads of the stream below (each costs a walk through
        the file system's runs and the container's block map). Pages are kept only whole; anything
        that fails or comes back short is left to the read of the cell itself, which reports it."""
        bins = self._bins_size
        base = self._hbin_offset
        wanted = sorted(
            {(base + offset) // _PAGE for offset in offsets if offset < bins and not offset % 8} - self._pages.keys()
        )
        if wanted and self._remote_pages(wanted):
            return
        first = 0
        while first < len(wanted):
            last = first
            while (
                last + 1 < len(wanted) and wanted[last + 1] == wanted[last] + 1 and last + 1 - first < _PREFETCH_PAGES
            ):
                last += 1
            if last > first:
                self._read_run(wanted[first], last - first + 1)
            first = last + 1

    def _remote_pages(self, wanted: list[int]) -> bool:
        """On a remote source, read the ``wanted`` pages side by side (:func:`azvhdaudit.batch.gather`): one
        round trip for all of them, lone pages included; False on a local one (runs are read as before)."""
        from azvhdaudit.batch import gather, is_remote

        if self._remote is None:
            self._remote = is_remote(self.fh)
        if not self._remote:
            return False
        gather([functools.partial(self._page, index) for index in wanted])
        return True

    def _read_run(self, index: int, count: int) -> None:
        try:
            self.fh.seek(index * _PAGE)
            data = self.fh.read(count * _PAGE)
        except Exception as err:  # the read of the cell itself raises it again, with its place
            log.debug("%s: reading %d pages at page %d ahead: %s", self._source, count, index, err)
            return
        for number in range(min(count, len(data) // _PAGE)):
            self._pages[index + number] = data[number * _PAGE : (number + 1) * _PAGE]

    def parse_cell_data(self, data: bytes) -> _dregf.CellType:
        if data[:2] == b"nk":
            return _KeyNode(self, data)
        return super().parse_cell_data(data)


#: _CM_KEY_NODE up to the value list: Signature, Flags, LastWriteTime, Spare, Parent, SubKeyCounts[2],
#: SubKeyLists[2], ValueList.Count, ValueList.List; NameLength and ClassLength sit at 72
_NK = struct.Struct("<2sHQIIIIIIII")
_NK_NAMES = struct.Struct("<HH")
#: Flags, then ValueList.Count and ValueList.List at 36
_NK_VALUES = struct.Struct("<2xH32xII")
#: _NK_VALUES and NameLength (at 72) in one unpack
_NK_VALUES_NAME = struct.Struct("<2xH32xII28xH")
_KEY_COMP_NAME = int(KEY.COMP_NAME)


class _ChildList:
    __slots__ = ("Count", "List")

    def __init__(self, count: int, offset: int) -> None:
        self.Count = count
        self.List = offset


class _NodeFields:
    """The ``_CM_KEY_NODE`` fields this module reads, under dissect.regf's names."""

    __slots__ = (
        "Flags",
        "LastWriteTime",
        "Parent",
        "SubKeyCounts",
        "SubKeyLists",
        "ValueList",
        "NameLength",
        "ClassLength",
    )

    def __init__(self, data: bytes) -> None:
        if len(data) < _NK_HEADER:
            raise DissectRegfError(f"key node cell of {len(data)} bytes, shorter than its {_NK_HEADER}-byte header")
        (_sig, self.Flags, self.LastWriteTime, _spare, self.Parent, stable, volatile, list0, list1, count, offset) = (
            _NK.unpack_from(data)
        )
        self.SubKeyCounts = (stable, volatile)
        self.SubKeyLists = (list0, list1)
        self.ValueList = _ChildList(count, offset)
        self.NameLength, self.ClassLength = _NK_NAMES.unpack_from(data, 72)


class _BaseBlock:
    """The base block fields used here, under dissect.regf's ``_HBASE_BLOCK`` names."""

    __slots__ = ("Sequence1", "Sequence2", "Minor", "RootCell", "Length")

    def __init__(self, data: bytes) -> None:
        self.Sequence1, self.Sequence2 = struct.unpack_from("<II", data, 4)
        (self.Minor,) = struct.unpack_from("<I", data, 24)
        self.RootCell, self.Length = struct.unpack_from("<II", data, 36)


class _KeyNode(_dregf.KeyNode):
    """dissect.regf's key node with the header decoded by struct (every path walk parses a node per
    level) and no class name read (nothing here uses it; dissect reads its cell eagerly)."""

    def __init__(self, hive: _dregf.RegistryHive, data: bytes) -> None:
        self.hive = hive
        self._cache: dict[str, object] = {}
        self.cell = _NodeFields(data)  # type: ignore[assignment]
        if _NK_HEADER + self.cell.NameLength > len(data):
            # a cut name would not match any lookup, and the key would read as absent
            raise DissectRegfError(
                f"key node name of {self.cell.NameLength} bytes runs past its cell of {len(data)} bytes"
            )
        blob = data[_NK_HEADER : _NK_HEADER + self.cell.NameLength]
        self.name = _decode_name(blob, bool(self.cell.Flags & _KEY_COMP_NAME))


def _decode_name(blob: bytes, compressed: bool) -> str:
    # the codec function itself: bytes.decode("utf-16-le") looks the codec up by name on every call, several
    # times the cost of decoding a short name (same function, errors and final flag)
    return blob.decode("latin-1") if compressed else _decode_utf16(blob, "replace", True)[0]


def _count(value: int) -> int:
    return 0 if value == _NIL else value


_VALUE_COMP_NAME = int(VALUE.COMP_NAME)
#: _CM_KEY_VALUE up to the name: Signature, NameLength, DataLength, Data, Type, Flags
_VK = struct.Struct("<2sHIIIH")
#: the cell's size and the same (the name follows at 4 + _VK_HEADER: a spare field sits between)
_VK_CELL = struct.Struct("<i2sHIIIH")
_INLINE = struct.Struct("<I")


#: a value record as read once: (name, or None when it runs past its cell; type; data length; data offset;
#: name length; cell size). A tuple, not an object: an audit reads thousands of records, most only for the name.
_Record = tuple[str | None, int, int, int, int, int]


class RegfReader(CellReader[_dregf.KeyNode, int]):
    """Cell reads through dissect.regf on a seekable stream; nothing is read before it is asked for."""

    def __init__(self, fh: BinaryIO, source: str, bins_size: int, minor_version: int) -> None:
        self.source = source
        self.bins_size = bins_size
        self.minor = minor_version
        self.hive = _BoundedHive(fh, source, bins_size)
        # value records are named by their cell offsets; the records read, by offset
        self._value_lists: dict[tuple[int, int], list[int]] = {}
        self._records: dict[int, _Record] = {}
        self._nodes: dict[int, _dregf.KeyNode] = {}
        self._leaf_lists: dict[int, list[tuple[bytes, bytes]]] = {}
        self._subkey_lists: dict[int, list[int]] = {}
        # node_values' last names asked for (kept, so that the identity test below cannot match another dict) and
        # their ASCII bytes
        self._wanted: dict[str, str] | None = None
        self._wanted_bytes: dict[bytes, str] | None = None
        self._wanted_lengths: frozenset[int] = frozenset()

    # --- cells ------------------------------------------------------------------------------

    def _cell(self, offset: int, kinds: tuple[type, ...], what: str) -> _dregf.CellType:
        self.check_offset(offset, what)
        cell = self.hive.cell(offset)
        if not isinstance(cell, kinds):
            names = "/".join(getattr(k, "__signature__", b"?").decode() for k in kinds)
            raise CorruptHiveError(
                f"{self.source}: {what}: expected a {names} cell at offset 0x{offset:X}, found {type(cell).__name__}"
            )
        return cell

    def root_offset(self) -> int:
        return int(self.hive.header.RootCell)

    def node(self, offset: int) -> _dregf.KeyNode:
        # Every lookup walks from the root: the nodes of ControlSet001, Services ... are parsed once.
        cell = self._nodes.get(offset)
        if cell is None:
            if offset < self.bins_size and not offset % 8:
                data = self.hive.cell_data(offset)
                if data[:2] == b"nk":
                    cell = _KeyNode(self.hive, data)
            if cell is None:
                # not a key node (or not a cell): read again the checked way, which says what is wrong
                found = self._cell(offset, (_dregf.KeyNode,), "key node")
                assert isinstance(found, _dregf.KeyNode)
                cell = found
            self._nodes[offset] = cell
        return cell

    def node_name(self, node: _dregf.KeyNode) -> str:
        return str(node.name)

    def node_filetime(self, node: _dregf.KeyNode) -> int:
        return int(node.cell.LastWriteTime)

    def _list_cell(self, offset: int, allowed: tuple[bytes, ...], what: str) -> tuple[bytes, bytes]:
        """A subkey list cell (``li``/``lf``/``lh``/``ri``) as its signature and its entries' bytes.

        Decoded with struct as dissect.regf lays these cells out (signature, count, then 4-byte
        ``li``/``ri`` or 8-byte ``lf``/``lh`` entries); a signature not allowed here, or a count the cell
        cannot hold, is :class:`~azvhdaudit.errors.CorruptHiveError`.
        """
        self.check_offset(offset, what)
        data = self.hive.cell_data(offset)
        sig = data[:2]
        if sig not in allowed:
            names = "/".join(kind.decode() for kind in allowed)
            found = _CELL_NAMES.get(sig, f"a cell of unknown signature {sig!r}")
            raise CorruptHiveError(
                f"{self.source}: {what}: expected a {names} cell at offset 0x{offset:X}, found {found}"
            )
        if len(data) < 4:
            raise CorruptHiveError(
                f"{self.source}: {what}: {sig.decode()} cell at offset 0x{offset:X} holds {len(data)} bytes"
            )
        (count,) = struct.unpack_from("<H", data, 2)
        end = 4 + count * (4 if sig in (b"li", b"ri") else 8)
        if end > len(data):
            raise CorruptHiveError(
                f"{self.source}: {what}: {sig.decode()} cell at offset 0x{offset:X}: {count} entries need {end} "
                f"bytes, the cell holds {len(data)}"
            )
        return sig, data[4:end]

    def _leaves(self, node: _dregf.KeyNode) -> list[tuple[bytes, bytes]]:
        if not _count(node.cell.SubKeyCounts[0]):
            return []
        list_offset = node.cell.SubKeyLists[0]
        cached = self._leaf_lists.get(list_offset)
        if cached is not None:
            return cached
        where = f"subkey list of key node {node.name!r}"
        top = self._list_cell(list_offset, (b"li", b"lf", b"lh", b"ri"), where)
        if top[0] != b"ri":
            leaves = [top]
        else:
            # An index root points only to leaves (never to another index root): this also stops loops.
            inner = f"index root of key node {node.name!r}"
            entries = struct.iter_unpack("<I", top[1])
            leaves = [self._list_cell(entry, (b"li", b"lf", b"lh"), inner) for (entry,) in entries]
        self._leaf_lists[list_offset] = leaves
        return leaves

    def list_cells(self, node: _dregf.KeyNode) -> set[int]:
        if not _count(node.cell.SubKeyCounts[0]):
            return set()
        top = node.cell.SubKeyLists[0]
        cells = {top}
        sig, body = self._list_cell(top, (b"li", b"lf", b"lh", b"ri"), f"subkey list of key node {node.name!r}")
        if sig == b"ri":
            cells.update(entry for (entry,) in struct.iter_unpack("<I", body))
        return cells

    def subkey_offsets(self, node: _dregf.KeyNode) -> list[int]:
        # read once per list: subkeys(), subkey_values() and the absence check each ask for it
        if not _count(node.cell.SubKeyCounts[0]):
            return []
        list_offset = node.cell.SubKeyLists[0]
        offsets = self._subkey_lists.get(list_offset)
        if offsets is None:
            offsets = []
            for sig, body in self._leaves(node):
                # li: the offsets alone; lf/lh: each offset followed by a name hint or hash
                entries = struct.unpack_from(f"<{len(body) // 4}I", body)
                offsets.extend(entries if sig == b"li" else entries[::2])
            self._subkey_lists[list_offset] = offsets
        return offsets

    def find_subkey(self, node: _dregf.KeyNode, name: str) -> int | None:
        if not _count(node.cell.SubKeyCounts[0]):
            return None
        lname = name.lower()
        # Hashes and name hints are made from the upper-cased name; for non-ASCII names Windows'
        # upcase table may differ from Python's, so those are compared by name only.
        exact = name.isascii()
        hashed = _INLINE.pack(hash_name(name)) if exact else b""
        hint = lname[:4].encode("ascii").ljust(4, b"\x00") if exact else b""
        for sig, body in self._leaves(node):
            if sig == b"li" or not exact:
                entries = struct.unpack_from(f"<{len(body) // 4}I", body)
                candidates: Any = entries if sig == b"li" else entries[::2]
            else:
                # The entries whose hash (lh) or lower-cased name hint (lf) is the name's, in list order: found in
                # the list's bytes (at 4 modulo 8, the second half of an entry) rather than through a table
                # built per list, which cost more than the lookups of an audit in all but the largest lists.
                haystack, needle = (body, hashed) if sig == b"lh" else (body.lower(), hint)
                candidates = []
                position = haystack.find(needle, 4)
                while position >= 0:
                    if position % 8 == 4:
                        candidates.append(_INLINE.unpack_from(body, position - 4)[0])
                        position = haystack.find(needle, position + 4)
                    else:
                        position = haystack.find(needle, position + 1)
            for offset in candidates:
                if self.node(offset).name.lower() == lname:
                    return offset
        return None

    # --- values -----------------------------------------------------------------------------

    def value_records(self, node: _dregf.KeyNode) -> list[int]:
        count = _count(node.cell.ValueList.Count)
        if not count:
            return []
        list_offset = node.cell.ValueList.List
        cached = self._value_lists.get((list_offset, count))
        if cached is not None:
            return cached
        if list_offset >= self.bins_size or list_offset % 8:
            self.check_offset(list_offset, f"value list of key node {node.name!r}")
        data = self.hive.cell_data(list_offset)
        if count * 4 > len(data):
            raise CorruptHiveError(
                f"{self.source}: key node {node.name!r}: {count} values do not fit in the value list cell at "
                f"offset 0x{list_offset:X} ({len(data)} bytes)"
            )
        offsets = list(struct.unpack_from(f"<{count}I", data))
        # every offset checked at once, the largest and the alignment of all (the low three bits of each
        # offset are those of its first byte); then the first bad one is named
        if max(offsets) >= self.bins_size or data[: count * 4 : 4].translate(_LOW_BITS).count(0) != count:
            for offset in offsets:
                self.check_offset(offset, f"value of key node {node.name!r}")
        # Rules read several values of one key, each lookup walking the list: decode it once.
        self._value_lists[(list_offset, count)] = offsets
        return offsets

    def node_values(self, offset: int, wanted: dict[str, str]) -> tuple[str, dict[str, tuple[str, int, bytes]]] | None:
        # Straight from the cells, in the order and with the checks of node(), value_records(), find_values() and
        # value_raw(): the key node, its value list, the value records up to the last name asked for, the data of
        # those found. Only cells already in the page cache and well formed are read here; on anything else
        # (a page not read yet, a bad offset, a signature, a name or a count that does not fit, big data) the
        # caller takes the step-by-step way, which reads what is missing and raises on what is wrong.
        cell = self.hive.cached_cell
        data = cell(offset)
        if data is None or data[:2] != b"nk" or len(data) < _NK_HEADER:
            return None
        flags, count, list_offset, length = _NK_VALUES_NAME.unpack_from(data)
        if _NK_HEADER + length > len(data):
            return None
        name = _decode_name(data[_NK_HEADER : _NK_HEADER + length], bool(flags & _KEY_COMP_NAME))
        found: dict[str, tuple[str, int, bytes]] = {}
        if count == _NIL or not count:
            return name, found
        bins = self.bins_size
        if list_offset >= bins or list_offset % 8:
            return None
        cells = cell(list_offset)
        if cells is None or count * 4 > len(cells):
            return None
        offsets = struct.unpack_from(f"<{count}I", cells)
        if max(offsets) >= bins or cells[: count * 4 : 4].translate(_LOW_BITS).count(0) != count:
            return None
        known = self._records.get
        pages = self.hive._pages
        # An ASCII name asked for matches a compressed (Latin-1) name only when the name's bytes lower-cased as
        # ASCII are its bytes (no other Latin-1 letter lower-cases to ASCII): compared without decoding each name.
        # (built once per set of names asked for: subkey_values asks every subkey of a key for the same ones)
        if wanted is not self._wanted:
            ascii_names = {n.encode("ascii"): n for n in wanted} if all(n.isascii() for n in wanted) else None
            self._wanted, self._wanted_bytes = wanted, ascii_names
            self._wanted_lengths = frozenset(map(len, ascii_names or ()))
        by_bytes, lengths = self._wanted_bytes, self._wanted_lengths
        hits: list[tuple[str, str, int, int, int]] = []
        for record_offset in offsets:
            record = known(record_offset)
            if record is not None:
                vname = record[0]
                if vname is None:
                    return None
                lname = vname.lower()
                type_, data_length, data_offset = record[1], record[2], record[3]
            else:
                # the checks of _cached_record, on the page already read (the offsets were checked above)
                page = pages.get((record_offset >> 12) + 1)
                start = record_offset & 4095
                name_at = start + 4 + _VK_HEADER
                if page is None or name_at > len(page):
                    return None
                size, sig, length, data_length, data_offset, type_, vflags = _VK_CELL.unpack_from(page, start)
                size = abs(size)
                if (
                    sig != b"vk"
                    or size < 4 + _VK_HEADER
                    or start + size > len(page)
                    or record_offset + size > bins
                    or name_at + length > start + size
                ):
                    return None
                compressed = bool(vflags & _VALUE_COMP_NAME)
                if compressed and by_bytes is not None:
                    if length not in lengths:  # a Latin-1 name of another length is none of them
                        continue
                    raw = page[name_at : name_at + length]
                    matched = by_bytes.get(raw.lower())
                    if matched is None:
                        continue
                    lname, vname = matched, raw.decode("latin-1")
                else:
                    vname = _decode_name(page[name_at : name_at + length], compressed) if length else ""
                    lname = vname.lower()
            if lname in wanted and lname not in found:
                found[lname] = (vname, 0, b"")
                hits.append((lname, vname, type_, data_length, data_offset))
                if len(found) == len(wanted):
                    break
        for lname, vname, type_, data_length, data_offset in hits:
            size = data_length & 0x7FFFFFFF
            if data_length & 0x80000000:
                value = _INLINE.pack(data_offset)[: min(size, 4)]
            elif not size:
                value = b""
            else:
                if size > BIG_DATA_SEGMENT:
                    return None
                blob = cell(data_offset)
                if blob is None or len(blob) < size:
                    return None
                value = blob[:size]
            found[lname] = (vname, type_, value)
        return name, found

    def prefetch(self, offsets: list[int]) -> None:
        self.hive.prefetch(offsets)

    def prefetch_values(self, records: list[int]) -> None:
        self.hive.prefetch([offset for offset in records if offset not in self._records])

    def _cached_record(self, offset: int) -> _Record | None:
        """The value record at ``offset`` decoded straight from a page already read, with the checks of
        :meth:`_record` and of the cell itself (one unpack for the cell size and the ``vk`` header); ``None``
        when it is not in such a page or anything about it is not well formed (never raises, never reads)."""
        if offset >= self.bins_size or offset & 7:
            return None
        page = self.hive._pages.get((offset >> 12) + 1)
        start = offset & 4095
        name_at = start + 4 + _VK_HEADER
        if page is None or name_at > len(page):
            return None
        size, sig, length, data_length, data_offset, type_, flags = _VK_CELL.unpack_from(page, start)
        size = abs(size)
        if (
            sig != b"vk"
            or size < 4 + _VK_HEADER
            or start + size > len(page)
            or offset + size > self.bins_size
            or name_at + length > start + size
        ):
            return None
        name = _decode_name(page[name_at : name_at + length], bool(flags & _VALUE_COMP_NAME)) if length else ""
        record = self._records[offset] = (name, type_, data_length, data_offset, length, size - 4)
        return record

    def _record(self, offset: int) -> _Record:
        """The value record at ``offset``: its ``vk`` header decoded with :mod:`struct` and its name, read once
        (parsing each record with cstruct cost more than the rest of the lookup)."""
        record = self._records.get(offset) or self._cached_record(offset)
        if record is not None:
            return record
        raw = self.hive.cell_data(offset)
        if len(raw) < _VK_HEADER:
            raise CorruptHiveError(
                f"{self.source}: value record: the value cell at offset 0x{offset:X} holds {len(raw)} bytes, "
                f"fewer than a value record's {_VK_HEADER}"
            )
        if raw[:2] != b"vk":
            # an entry of a value list pointing at another cell (the list itself, a key node): its name would be
            # garbage, matching no lookup, and the value it should be would read as absent
            raise CorruptHiveError(
                f"{self.source}: value record: the cell at offset 0x{offset:X} is not a value (signature "
                f"{raw[:2]!r}, expected b'vk')"
            )
        _sig, length, data_length, data_offset, type_, flags = _VK.unpack_from(raw)
        end = _VK_HEADER + length
        name = (
            (_decode_name(raw[_VK_HEADER:end], bool(flags & _VALUE_COMP_NAME)) if end <= len(raw) else None)
            if length
            else ""
        )
        record = self._records[offset] = (name, type_, data_length, data_offset, length, len(raw))
        return record

    def find_values(self, records: list[int], wanted: dict[str, str]) -> dict[str, tuple[int, str]]:
        found: dict[str, tuple[int, str]] = {}
        known = self._records
        for offset in records:
            record = known.get(offset) or self._record(offset)
            vname = record[0]
            if vname is None:
                vname = self.value_name(offset)  # raises: the name runs past its cell
            lname = vname.lower()
            if lname in wanted and lname not in found:
                found[lname] = (offset, vname)
                if len(found) == len(wanted):
                    break
        return found

    def value_name(self, record: int) -> str:
        known = self._records.get(record) or self._cached_record(record) or self._record(record)
        name, _type, _dlen, _doff, length, size = known
        if name is None:
            # a cut name would not match any lookup, and the value would read as absent
            raise CorruptHiveError(
                f"{self.source}: value cell at offset 0x{record:X}: name of {length} bytes runs past "
                f"the cell ({size} bytes)"
            )
        return name

    def value_type(self, record: int) -> int:
        return (self._records.get(record) or self._cached_record(record) or self._record(record))[1]

    def value_raw(self, record: int) -> bytes:
        known = self._records.get(record) or self._cached_record(record) or self._record(record)
        _name, _type, length, offset, _nlen, _size = known
        return self._data(length, offset)

    def value_data(self, record: int) -> tuple[int, bytes]:
        known = self._records.get(record) or self._cached_record(record) or self._record(record)
        _name, type_, length, offset, _nlen, _size = known
        return type_, self._data(length, offset)

    def _data(self, length: int, offset: int) -> bytes:
        """A value's data from its record's data length and data offset fields."""
        size = length & 0x7FFFFFFF
        if length & 0x80000000:
            # Up to four bytes stored in the data offset field itself.
            return _INLINE.pack(offset)[: min(size, 4)]
        if not size:
            return b""
        if offset >= self.bins_size or offset % 8:
            self.check_offset(offset, "value data")
        data = self.hive.cell_data(offset)
        if size > BIG_DATA_SEGMENT and self.minor >= 4 and data[:2] == b"db":
            return self._big_data(data, offset, size)
        if len(data) < size:
            raise CorruptHiveError(
                f"{self.source}: value data cell at offset 0x{offset:X} holds {len(data)} bytes, the value says {size}"
            )
        return data[:size]

    def _big_data(self, data: bytes, offset: int, size: int) -> bytes:
        if len(data) < 8:
            raise CorruptHiveError(
                f"{self.source}: big data record at offset 0x{offset:X} holds {len(data)} bytes, fewer than its "
                "8-byte header"
            )
        count, list_offset = struct.unpack_from("<HI", data, 2)
        self.check_offset(list_offset, f"big data segment list of the record at offset 0x{offset:X}")
        segments = self.hive.cell_data(list_offset)
        if count * 4 > len(segments):
            raise CorruptHiveError(
                f"{self.source}: big data record at offset 0x{offset:X}: {count} segments do not fit in "
                f"the segment list at offset 0x{list_offset:X}"
            )
        parts = []
        for (segment,) in struct.iter_unpack("<I", segments[: count * 4]):
            self.check_offset(segment, f"big data segment of the record at offset 0x{offset:X}")
            parts.append(self.hive.cell_data(segment)[:BIG_DATA_SEGMENT])
        blob = b"".join(parts)
        if len(blob) < size:
            raise CorruptHiveError(
                f"{self.source}: big data record at offset 0x{offset:X} holds {len(blob)} bytes, the value says {size}"
            )
        return blob[:size]
