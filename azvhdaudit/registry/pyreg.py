"""The second hive backend: python-registry, which reads the whole hive into memory.

python-registry's record classes (``NKRecord``, ``VKRecord``, the subkey lists, ``DBRecord``) parse the
cells. Two things are taken by the format's rules instead of python-registry's high-level helpers, so
that both backends return the same bytes for the same hive:

- value data: ``VKRecord.raw_data()`` depends on the type (a REG_DWORD always yields four bytes whatever
  its size, an inline REG_MULTI_SZ yields nothing, a REG_QWORD ignores the stored size). Here the data is
  the stored size taken from the inline field, the data cell, or the big-data segments.
- names: python-registry decodes compressed names as windows-1252; the format stores Latin-1.

Every offset is checked against the hive bins data before python-registry reads it, and an index root
may point only to leaves, so a list pointing into itself is reported, not followed.

References: python-registry (github.com/williballenthin/python-registry); M. Suhanov, *Windows registry
file format specification*.
"""

from __future__ import annotations

import logging
import struct

from Registry import RegistryParse as _rp

from azvhdaudit.errors import CorruptHiveError
from azvhdaudit.registry.backend import BIG_DATA_SEGMENT, CellReader, hash_name, register_backend_errors

__all__ = ["PyRegReader"]

log = logging.getLogger(__name__)

register_backend_errors(_rp.RegistryException)

_BASE = 0x1000
_NIL = 0xFFFFFFFF
_LEAF_STRIDE = {b"li": 4, b"lf": 8, b"lh": 8}


def _count(value: int) -> int:
    return 0 if value == _NIL else value


class PyRegReader(CellReader[_rp.NKRecord, _rp.VKRecord]):
    """Cell reads through python-registry on the whole hive held in memory."""

    def __init__(self, data: bytes, source: str, bins_size: int, minor_version: int) -> None:
        self.source = source
        self.bins_size = bins_size
        self.minor = minor_version
        self.buf = data
        self.regf = _rp.REGFBlock(data, 0, False)
        self.first_hbin = _rp.HBINBlock(data, self.regf.first_hbin_offset(), self.regf)

    def _cell(self, offset: int, what: str) -> _rp.HBINCell:
        self.check_offset(offset, what)
        cell = _rp.HBINCell(self.buf, _BASE + offset, self.first_hbin)
        size = cell.size()
        if size < 8 or offset + size > self.bins_size or _BASE + offset + size > len(self.buf):
            raise CorruptHiveError(
                f"{self.source}: {what}: cell at offset 0x{offset:X} has size {size}, which does not fit in "
                f"the hive bins data (size 0x{self.bins_size:X})"
            )
        return cell

    @staticmethod
    def _data(cell: _rp.HBINCell) -> bytes:
        start = cell.data_offset()
        return bytes(cell._buf[start : start + cell.size() - 4])

    def root_offset(self) -> int:
        return int(self.regf.unpack_dword(0x24))

    def node(self, offset: int) -> _rp.NKRecord:
        cell = self._cell(offset, "key node")
        return _rp.NKRecord(self.buf, cell.data_offset(), self.first_hbin)

    def node_name(self, node: _rp.NKRecord) -> str:
        blob = node.unpack_string(0x4C, node.unpack_word(0x48))
        return blob.decode("latin-1") if node.has_ascii_name() else blob.decode("utf-16-le", errors="replace")

    def node_filetime(self, node: _rp.NKRecord) -> int:
        return int(node.unpack_qword(0x4))

    def _leaves(self, node: _rp.NKRecord) -> list[_rp.HBINCell]:
        if not _count(node.unpack_dword(0x14)):
            return []
        top = self._cell(node.unpack_dword(0x1C), "subkey list")
        kind = top.data_id()
        if kind in _LEAF_STRIDE:
            return [top]
        if kind != b"ri":
            raise CorruptHiveError(
                f"{self.source}: expected a subkey list (li/lf/lh/ri) at offset 0x{top.offset() - _BASE:X}, "
                f"found {kind!r}"
            )
        root = _rp.RIRecord(self.buf, top.data_offset(), self.first_hbin)
        count = root.unpack_word(0x2)
        if 4 + count * 4 > top.size() - 4:
            raise CorruptHiveError(
                f"{self.source}: index root at offset 0x{top.offset() - _BASE:X}: {count} entries do not fit "
                f"in its {top.size() - 4} bytes"
            )
        leaves = []
        for index in range(count):
            leaf = self._cell(root.unpack_dword(4 + 4 * index), "index root entry")
            if leaf.data_id() not in _LEAF_STRIDE:
                # An index root points only to leaves: this also stops a list that points into itself.
                raise CorruptHiveError(
                    f"{self.source}: index root at offset 0x{top.offset() - _BASE:X} points to a "
                    f"{leaf.data_id()!r} cell at offset 0x{leaf.offset() - _BASE:X}, expected li/lf/lh"
                )
            leaves.append(leaf)
        return leaves

    def _entries(self, node: _rp.NKRecord) -> list[tuple[bytes, int, bytes]]:
        """(list kind, key node offset, hash or name hint bytes) for each entry of the subkey lists."""
        entries: list[tuple[bytes, int, bytes]] = []
        for leaf in self._leaves(node):
            kind = leaf.data_id()
            record = {b"li": _rp.LIRecord, b"lf": _rp.LFRecord, b"lh": _rp.LHRecord}[kind](
                self.buf, leaf.data_offset(), self.first_hbin
            )
            stride = _LEAF_STRIDE[kind]
            count = record.unpack_word(0x2)
            if 4 + count * stride > leaf.size() - 4:
                raise CorruptHiveError(
                    f"{self.source}: subkey list at offset 0x{leaf.offset() - _BASE:X}: {count} entries do not "
                    f"fit in its {leaf.size() - 4} bytes"
                )
            raw = record.unpack_binary(4, count * stride)
            if stride == 8:
                entries.extend((kind, offset, extra) for offset, extra in struct.iter_unpack("<I4s", raw))
            else:
                entries.extend((kind, offset, b"") for (offset,) in struct.iter_unpack("<I", raw))
        return entries

    def list_cells(self, node: _rp.NKRecord) -> set[int]:
        if not _count(node.unpack_dword(0x14)):
            return set()
        top = node.unpack_dword(0x1C)
        return {top} | {leaf.offset() - _BASE for leaf in self._leaves(node)}

    def subkey_offsets(self, node: _rp.NKRecord) -> list[int]:
        return [offset for _, offset, _ in self._entries(node)]

    def find_subkey(self, node: _rp.NKRecord, name: str) -> int | None:
        # The same rules as the regf backend: the lh hash or lf name hint first (ASCII names), then the name.
        lname = name.lower()
        exact = name.isascii()
        wanted_hash = hash_name(name).to_bytes(4, "little")
        hint = lname[:4]
        for kind, offset, extra in self._entries(node):
            if exact and kind == b"lh" and extra != wanted_hash:
                continue
            if exact and kind == b"lf" and extra.rstrip(b"\x00").decode("latin-1").lower() != hint:
                continue
            self.check_offset(offset, "subkey")
            if self.node_name(self.node(offset)).lower() == lname:
                return offset
        return None

    def value_records(self, node: _rp.NKRecord) -> list[_rp.VKRecord]:
        count = node.values_number()
        if not count:
            return []
        cell = self._cell(node.unpack_dword(0x28), "value list")
        if count * 4 > cell.size() - 4:
            raise CorruptHiveError(
                f"{self.source}: {count} values do not fit in the value list cell at offset "
                f"0x{cell.offset() - _BASE:X} ({cell.size() - 4} bytes)"
            )
        records = []
        for index in range(count):
            vcell = self._cell(cell.unpack_dword(4 + 4 * index), "value")
            if vcell.data_id() != b"vk":
                raise CorruptHiveError(
                    f"{self.source}: value record: the cell at offset 0x{vcell.offset() - _BASE:X} is not a value "
                    f"(signature {vcell.data_id()!r}, expected b'vk')"
                )
            records.append(_rp.VKRecord(self.buf, vcell.data_offset(), vcell))
        return records

    def value_name(self, record: _rp.VKRecord) -> str:
        if not record.has_name():
            return ""
        blob = record.unpack_string(0x14, record.unpack_word(0x2))
        return blob.decode("latin-1") if record.has_ascii_name() else blob.decode("utf-16-le", errors="replace")

    def value_type(self, record: _rp.VKRecord) -> int:
        # data_type() masks the type with DEVPROP_MASK_TYPE; the registry type is the whole field.
        return int(record.unpack_dword(0xC))

    def value_raw(self, record: _rp.VKRecord) -> bytes:
        length = record.raw_data_length()
        size = length & 0x7FFFFFFF
        if length & 0x80000000:
            return bytes(record.unpack_binary(0x8, min(size, 4)))
        if not size:
            return b""
        offset = record.unpack_dword(0x8)
        cell = self._cell(offset, "value data")
        if size > BIG_DATA_SEGMENT and self.minor >= 4 and cell.data_id() == b"db":
            big = _rp.DBRecord(self.buf, cell.data_offset(), cell)
            count = big.unpack_word(0x2)
            segments = self._cell(big.unpack_dword(0x4), "big data segment list")
            if count * 4 > segments.size() - 4:
                raise CorruptHiveError(
                    f"{self.source}: big data record at offset 0x{offset:X}: {count} segments do not fit in "
                    f"the segment list"
                )
            for index in range(count):
                self._cell(segments.unpack_dword(4 + 4 * index), "big data segment")
            blob = big.large_data(size)
            if len(blob) < size:
                raise CorruptHiveError(
                    f"{self.source}: big data record at offset 0x{offset:X} holds {len(blob)} bytes, "
                    f"the value says {size}"
                )
            return bytes(blob)
        data = self._data(cell)
        if len(data) < size:
            raise CorruptHiveError(
                f"{self.source}: value data cell at offset 0x{offset:X} holds {len(data)} bytes, the value says {size}"
            )
        return data[:size]
