"""NTFS volumes read with dissect.ntfs, with faster paths through its internals for what an audit reads.

References: dissect.ntfs; NTFS $Volume VOLUME_INFORMATION flags (0x0001 = dirty).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from io import BytesIO
from types import SimpleNamespace
from typing import Any, BinaryIO

from dissect.ntfs import NTFS
from dissect.ntfs.attr import Attribute, AttributeHeader
from dissect.ntfs.c_ntfs import (
    ATTRIBUTE_TYPE_CODE,
    FILE_NAME_DOS,
    INDEX_ENTRY_END,
    INDEX_ENTRY_NODE,
    SECTOR_SHIFT,
    c_ntfs,
)
from dissect.ntfs.exceptions import BrokenMftError, VolumeNotAvailableError
from dissect.ntfs.exceptions import Error as NtfsError
from dissect.ntfs.exceptions import FileNotFoundError as DissectFileNotFoundError
from dissect.ntfs.exceptions import NotADirectoryError as DissectNotADirectoryError
from dissect.ntfs.index import Index, IndexRoot
from dissect.ntfs.mft import Mft, MftRecord
from dissect.ntfs.ntfs import _get_dataruns_from_attribute_list
from dissect.ntfs.util import AttributeCollection, apply_fixup

from azvhdaudit import fs as _base
from azvhdaudit.batch import fetch_unit
from azvhdaudit.errors import CorruptVolumeError, FileSystemError, GuestFileNotFoundError, ImageError
from azvhdaudit.fs import Volume, _norm

__all__ = ["NtfsVolume"]

log = logging.getLogger(__name__)

#: errors dissect.ntfs and the parsing here raise on corrupt structures
_FS_ERRORS = (NtfsError, *_base._FS_ERRORS)
_READ_ERRORS = (*_FS_ERRORS, ImageError)


# --- MFT record attributes ---------------------------------------------------------------------------
#
# dissect.ntfs's MftRecord.attributes decodes every attribute header of a record with cstruct (a union of
# the resident and non-resident forms) and every $STANDARD_INFORMATION and $FILE_NAME value: ~300 µs a
# record, of which opening a file needs only its $DATA header and walking a directory its $INDEX_ROOT and
# $INDEX_ALLOCATION. _attribute_table finds the headers as that walk does, with struct; the fields of the
# headers used are decoded with struct too (_attribute_header), and dissect.ntfs's AttributeHeader and
# AttributeCollection read the names, runlists, resident values and compressed streams. A record that walk
# would treat specially (an attribute list, a reparse point) or might fail on is left to dissect.

_ATTRIBUTE_HEADER_SIZE = len(c_ntfs._ATTRIBUTE_RECORD_HEADER)
#: dissect.ntfs's FileName pads the $FILE_NAME value to this length before decoding it
_FILE_NAME_PADDED = len(c_ntfs.STANDARD_INFORMATION_EX)
_END = ATTRIBUTE_TYPE_CODE.END.value
_STANDARD_INFORMATION = ATTRIBUTE_TYPE_CODE.STANDARD_INFORMATION.value
_FILE_NAME = ATTRIBUTE_TYPE_CODE.FILE_NAME.value
#: attributes whose presence changes what MftRecord.attributes holds or what a lookup does
_DISSECT_ONLY = (ATTRIBUTE_TYPE_CODE.ATTRIBUTE_LIST.value, ATTRIBUTE_TYPE_CODE.REPARSE_POINT.value)

AttributeTable = dict[int, list[int]]


def _attribute_table(record: Any) -> AttributeTable | None:
    """The offsets of ``record``'s attribute headers by type code, in the order MftRecord.attributes lists
    them, or ``None`` when that walk must run itself.

    The walk ends where dissect's does (at the END marker, or where a whole header no longer fits) and
    raises its error for a zero RecordLength. ``None`` for an attribute list or a reparse point, and for a
    $STANDARD_INFORMATION or $FILE_NAME value that is not resident within the record or whose name
    dissect could not decode: for those, dissect's own walk gives the answer or the error.
    """
    data = record.data
    size = len(data)
    offset = record.header.FirstAttributeOffset
    table: AttributeTable = {}
    while offset + _ATTRIBUTE_HEADER_SIZE <= size:
        type_code, length, form = struct.unpack_from("<IIB", data, offset)
        if type_code == _END:
            break
        if length == 0:
            raise BrokenMftError("Attribute RecordLength is 0 but end not yet reached")
        if type_code in _DISSECT_ONLY:
            return None
        if type_code in (_STANDARD_INFORMATION, _FILE_NAME):
            value_length, value_offset = struct.unpack_from("<IH", data, offset + 16)
            start = offset + value_offset
            if form != 0 or start + value_length > size:
                return None
            if type_code == _FILE_NAME:
                value = data[start : start + value_length].ljust(_FILE_NAME_PADDED, b"\x00")
                end = 66 + 2 * value[64]
                if end > len(value):
                    return None
                try:
                    value[66:end].decode("utf-16-le")
                except UnicodeDecodeError:
                    return None
        table.setdefault(type_code, []).append(offset)
        offset += length
    return table


def _attributes(record: Any, table: AttributeTable, attr_type: int, name: str | None = None) -> list[Any]:
    """dissect.ntfs Attributes of ``attr_type`` (named ``name``, case-insensitively, unless ``None``)."""
    found = []
    data = record.data
    fh = None
    for offset in table.get(int(attr_type), ()):
        if name is not None:
            name_offset = offset + struct.unpack_from("<H", data, offset + 10)[0]
            attr_name = data[name_offset : name_offset + 2 * data[offset + 9]].decode("utf-16-le")
            if attr_name.lower() != name.lower():
                continue
        fh = fh or BytesIO(data)
        found.append(Attribute(_attribute_header(fh, data, offset, record), record))
    return found


_COMMON = struct.Struct("<IIBBHHH")
_RESIDENT = struct.Struct("<IHBB")
_NONRESIDENT = struct.Struct("<QQHB5xqqqq")


def _attribute_header(fh: BinaryIO, data: bytes, offset: int, record: Any) -> Any:
    """dissect.ntfs's ``AttributeHeader(fh, offset, record)`` of a header :func:`_attribute_table` found.

    AttributeHeader decodes the 72-byte _ATTRIBUTE_RECORD_HEADER with cstruct (~35 µs: the resident and
    non-resident forms are a union); its fields are decoded here with struct, as c_ntfs lays them out,
    and given to dissect's own AttributeHeader, which reads the name, the runlist and the value.
    """
    type_code, length, form, name_length, name_offset, flags, instance = _COMMON.unpack_from(data, offset)
    value_length, value_offset, value_flags, _ = _RESIDENT.unpack_from(data, offset + 16)
    lowest, highest, pairs, unit, allocated, size, valid, total = _NONRESIDENT.unpack_from(data, offset + 16)
    header = AttributeHeader.__new__(AttributeHeader)
    header.fh = fh
    header.offset = offset
    header.record = record
    header.header = SimpleNamespace(
        TypeCode=ATTRIBUTE_TYPE_CODE(type_code),
        RecordLength=length,
        FormCode=form,
        NameLength=name_length,
        NameOffset=name_offset,
        Flags=flags,
        Instance=instance,
        Form=SimpleNamespace(
            Resident=SimpleNamespace(ValueLength=value_length, ValueOffset=value_offset, Flags=value_flags),
            Nonresident=SimpleNamespace(
                LowestVcn=lowest,
                HighestVcn=highest,
                MappingPairsOffset=pairs,
                CompressionUnit=unit,
                AllocatedLength=allocated,
                FileSize=size,
                ValidDataLength=valid,
                TotalAllocated=total,
            ),
        ),
    )
    return header


def _open_stream(record: Any, table: AttributeTable | None, name: str, attr_type: int) -> BinaryIO | None:
    """``record.open(name, attr_type)`` from the headers in ``table``; ``None`` when there is no such stream
    (or no table: the caller asks dissect)."""
    if table is None:
        return None
    attrs = _attributes(record, table, attr_type, name)
    if not attrs:
        return None
    return AttributeCollection(attrs).open()  # type: ignore[no-any-return]


def _index_names(data: bytes, offset: int, size: int, names: set[str]) -> bool:
    """Add the names of the $I30 entries in ``data[offset:offset + size]`` to ``names`` (not the DOS ones);
    ``False`` at an entry dissect.ntfs's IndexEntry and FileName could not decode."""
    end = offset + size
    while offset < end and offset + 16 <= len(data):
        length, key_length, flags = struct.unpack_from("<HHH", data, offset + 8)
        if flags & INDEX_ENTRY_END or length == 0:
            break
        if not key_length:
            return False
        # IndexEntry reads Length - 16 bytes after the header (to the end for a shorter Length), and
        # FileName decodes all of them, padded
        key = data[offset + 16 : offset + length if length >= 16 else len(data)].ljust(_FILE_NAME_PADDED, b"\x00")
        name_end = 66 + 2 * key[64]
        if name_end > len(key):
            return False
        try:
            name = key[66:name_end].decode("utf-16-le")
        except UnicodeDecodeError:
            return False
        if key[65] != FILE_NAME_DOS:
            names.add(name)
        offset += length
    return True


class _Index(Index):  # type: ignore[misc]
    """dissect.ntfs's Index on streams opened from an attribute table; ``Index(record, name)`` would open
    them through MftRecord.attributes. The rest is dissect's own."""

    def __init__(self, record: Any, name: str, root: BinaryIO, allocation: Callable[[], BinaryIO | None]) -> None:
        self.record = record
        self.name = name
        self.root = IndexRoot(self, root)
        ntfs = record.ntfs
        if ntfs and ntfs.cluster_size <= self.root.bytes_per_index_buffer:
            self._vcn_size_shift = ntfs.cluster_size_shift
        else:
            self._vcn_size_shift = SECTOR_SHIFT
        self._index_stream = allocation()


def _open(record: Any, table: AttributeTable | None, name: str = "") -> BinaryIO:
    """``record.open(name)``: a $DATA stream."""
    stream = _open_stream(record, table, name, ATTRIBUTE_TYPE_CODE.DATA)
    return stream if stream is not None else record.open(name)  # type: ignore[no-any-return]


def _index(record: Any, table: AttributeTable | None, name: str) -> Any:
    """``record.index(name)``."""
    root = _open_stream(record, table, name, ATTRIBUTE_TYPE_CODE.INDEX_ROOT)
    if root is None:
        return record.index(name)
    return _Index(record, name, root, lambda: _open_stream(record, table, name, ATTRIBUTE_TYPE_CODE.INDEX_ALLOCATION))


#: bytes a read of an MFT record or an index block fetches around each page it misses on a remote image
#: (:func:`azvhdaudit.batch.fetch_unit`): the records of the files one path leads to, and of the files looked up
#: together, lie near each other (32 records in 32 KiB); 16 KiB cost the 127 GiB benchmark VHDX a round trip more
RECORD_FETCH_UNIT = 32 * 1024
_FILE_RECORD_HEADER = struct.Struct("<4sHHQHHHHIIIHHH")


def _read_record(ntfs: Any, segment: int) -> Any:
    """dissect.ntfs's ``ntfs.mft.get(segment)``: the record read from the $MFT and fixed up by dissect.

    MftRecord.from_bytes decodes the 42-byte FILE record header with cstruct (~20 µs, nested structures);
    its fields are decoded here with struct, as c_ntfs lays them out, by the names MftRecord reads.
    """
    size = ntfs._record_size
    fh = ntfs.mft.fh
    with fetch_unit(RECORD_FETCH_UNIT):
        fh.seek(segment * size)
        data = fh.read(size)
    if data[:4] != b"FILE":
        raise BrokenMftError(f"Invalid MFT record Signature: {data[:4]}")
    record = MftRecord()
    record.ntfs = ntfs
    record.data = apply_fixup(data)
    (
        signature,
        usa_offset,
        usa_size,
        lsn,
        sequence,
        references,
        first_attribute,
        flags,
        in_use,
        allocated,
        base_low,
        base_high,
        base_sequence,
        next_instance,
    ) = _FILE_RECORD_HEADER.unpack_from(record.data)
    record.header = SimpleNamespace(
        MultiSectorHeader=SimpleNamespace(
            Signature=signature, UpdateSequenceArrayOffset=usa_offset, UpdateSequenceArraySize=usa_size
        ),
        Lsn=lsn,
        SequenceNumber=sequence,
        ReferenceCount=references,
        FirstAttributeOffset=first_attribute,
        Flags=flags,
        BytesInUse=in_use,
        BytesAllocated=allocated,
        BaseFileRecordSegment=SimpleNamespace(
            SegmentNumberLowPart=base_low, SegmentNumberHighPart=base_high, SequenceNumber=base_sequence
        ),
        NextAttributeInstance=next_instance,
    )
    record.offset = segment * size
    record.segment = segment
    return record


def _open_ntfs(stream: BinaryIO) -> Any:
    """dissect.ntfs's NTFS on ``stream``: the boot sector as ``NTFS(boot=...)`` reads it, then the $MFT as
    ``NTFS(fh)`` opens it. ``NTFS(fh)`` goes on to build $Secure and $UsnJrnl objects through
    MftRecord.attributes; :meth:`NtfsVolume._check_system_files` reads the same structures."""
    fs = NTFS(boot=stream)
    fs.fh = stream
    record = MftRecord.from_fh(stream, fs.boot_sector.MftStartLcn * fs.cluster_size, ntfs=fs)
    table = _attribute_table(record)
    fs.mft = Mft(_open(record, table), ntfs=fs)
    # with no MFT yet, MftRecord.attributes does not follow an attribute list; the extra $DATA runs
    # of a fragmented $MFT are in the records it names, which the first runs reach
    if table is None and ATTRIBUTE_TYPE_CODE.ATTRIBUTE_LIST in record.attributes:
        for runs in _get_dataruns_from_attribute_list(record):
            fs.mft.fh.runlist += runs
    return fs


class NtfsVolume(Volume):
    """An NTFS volume.

    Bounds of the walks over on-disk links: a path lookup descends each directory's index B-tree visiting
    each index block once (:meth:`_search`); a listing reads the INDX blocks in VCN order up to the end of the
    allocation; a runlist is decoded from the attribute's own bytes (its length bounds it); an attribute list
    is followed by dissect.ntfs, which skips records it has listed already, and a record whose list names a
    record listing it back ends in Python's recursion limit, reported as :class:`FileSystemError`.
    """

    kind = "ntfs"
    read_errors = _READ_ERRORS

    def __init__(self, stream: BinaryIO, offset: int, size: int, name: str) -> None:
        super().__init__(stream, offset, size, name)
        self._records: dict[str, Any] = {}
        self._indexes: dict[int, Any] = {}
        self._nodes: dict[tuple[int, int | None], list[tuple[str | None, int, int, int]]] = {}
        self._tables: dict[int, AttributeTable | None] = {}
        self._buffers: dict[tuple[int, int], Any] = {}
        self._segments: dict[int, Any] = {}
        try:
            self.fs = _open_ntfs(self._stream)
            self._check_system_files()
        except _FS_ERRORS as err:
            raise FileSystemError(f"{name}: NTFS at offset {offset} cannot be read: {err}") from err

    def _record(self, path: str):  # type: ignore[no-untyped-def]
        # Records are cached by path (the volume is read-only): a rule that asks exists(), then open()
        # or file_version() of the same file, and every file under System32, walk the tree once.
        key = _norm(path).lower()
        if key in self._records:
            return self._records[key]
        try:
            record = self._lookup(_norm(path))
        except (FileNotFoundError, NotADirectoryError):
            record = None
        except _READ_ERRORS as err:
            raise FileSystemError(f"{self.name}: cannot look up {path}: {err}") from err
        self._records[key] = record
        return record

    def _lookup(self, norm: str):  # type: ignore[no-untyped-def]
        """The record of ``norm`` as dissect.ntfs's ``mft.get(path)`` finds it, the parent from the cache."""
        if not norm:
            return self._get(5)
        parent_path, _, name = norm.rpartition("\\")
        node = self._record(parent_path)
        if node is None:
            raise FileNotFoundError(norm)
        while self._table(node) is None and (node.is_symlink() or node.is_mount_point()):
            node = node.reparse_point_record
        if not node.is_dir():
            raise NotADirectoryError(norm)
        segment = self._search(node, name)
        if segment is None:
            raise FileNotFoundError(norm)
        return self._get(segment)

    def _get(self, segment: int) -> Any:
        """``self.fs.mft.get(segment)``, once per record (:func:`_read_record`)."""
        record = self._segments.get(segment)
        if record is None:
            record = self._segments[segment] = _read_record(self.fs, segment)
        return record

    def _table(self, record: Any) -> AttributeTable | None:
        """The record's attribute table (:func:`_attribute_table`), once per record."""
        segment = record.segment
        if segment is None:
            return _attribute_table(record)
        if segment not in self._tables:
            self._tables[segment] = _attribute_table(record)
        return self._tables[segment]

    def _index(self, node: Any) -> Any:
        """The $I30 index of directory ``node``, once per directory."""
        index = self._indexes.get(node.segment)
        if index is None:
            index = self._indexes[node.segment] = _index(node, self._table(node), "$I30")
        return index

    def _check_system_files(self) -> None:
        """Read what dissect.ntfs's ``NTFS(fh)`` reads beyond the $MFT, and fail where it fails.

        Nothing here uses $Secure or the change journal, but a volume whose root directory or those
        system files cannot be read is reported unreadable when it is opened, as ``NTFS(fh)`` does,
        rather than half-way through an audit: $Secure's $SDS stream and $SII index, then
        $Extend\\$UsnJrnl's $J stream, each absent one skipped as ``NTFS(fh)`` skips it.
        """
        try:
            secure = self._system_record("$Secure")
            if secure is None:
                if not self._get(5).is_dir():
                    # dissect's lookup of $Secure fails this way, and NTFS(fh) lets the error through
                    raise DissectNotADirectoryError(f"Error finding path $Secure: {self.fs.mft!r} is not a directory")
            else:
                table = self._table(secure)
                _open(secure, table, "$SDS")
                _index(secure, table, "$SII")
        except (DissectFileNotFoundError, VolumeNotAvailableError):
            pass
        try:
            journal = self._system_record("$Extend\\$UsnJrnl")
            if journal is not None:
                _open(journal, self._table(journal), "$J")
        except (DissectFileNotFoundError, NotADirectoryError, VolumeNotAvailableError):
            pass

    def _system_record(self, path: str) -> Any:
        """:meth:`_record` of ``path``, raising dissect's error itself rather than a FileSystemError."""
        try:
            return self._record(path)
        except FileSystemError as err:
            if err.__cause__ is None:
                raise
            raise err.__cause__ from None

    def _entries(self, node, vcn: int | None) -> list[tuple[str | None, int, int, int]]:  # type: ignore[no-untyped-def]
        """One node of a directory's $I30 B-tree: (upper-cased name, flags, file reference, child VCN).

        dissect.ntfs reads the index root and the INDX blocks (with their fixups); the 16-byte entry
        headers are decoded here with struct, as dissect's IndexEntry lays them out, because parsing each
        one with cstruct costs ~100 µs and a lookup in System32 passes dozens.
        """
        key = (node.segment, vcn)
        cached = self._nodes.get(key)
        if cached is not None:
            return cached
        index = self._index(node)
        if vcn is None:
            fh = index.root.fh
            fh.seek(0)
            data = fh.read()
            offset = len(c_ntfs._INDEX_ROOT)
            end = offset + index.root.header.IndexHeader.TotalSizeOfEntries
        else:
            buffer = self._buffer(node, index, vcn)
            data = buffer.data
            offset = buffer.header.IndexHeader.FirstEntryOffset + 0x18
            end = offset + buffer.header.IndexHeader.TotalSizeOfEntries
        entries: list[tuple[str | None, int, int, int]] = []
        while offset < end and offset + 16 <= len(data):
            reference, length, _key_length, flags = struct.unpack_from("<QHHI", data, offset)
            is_end = bool(flags & INDEX_ENTRY_END) or length == 0
            child = -1
            if flags & INDEX_ENTRY_NODE and length >= 24:
                (child,) = struct.unpack_from("<Q", data, offset + length - 8)
            name = None
            if not is_end:
                chars = data[offset + 16 + 64]
                name = data[offset + 16 + 66 : offset + 16 + 66 + 2 * chars].decode("utf-16-le").upper()
            entries.append((name, flags, reference, child))
            if is_end:
                break
            offset += length
        self._nodes[key] = entries
        return entries

    def _buffer(self, node: Any, index: Any, vcn: int) -> Any:
        """dissect.ntfs's IndexBuffer ``vcn`` of ``node``'s $I30 index (read and fixed up), once."""
        key = (node.segment, vcn)
        buffer = self._buffers.get(key)
        if buffer is None:
            with fetch_unit(RECORD_FETCH_UNIT):
                buffer = self._buffers[key] = index.index_buffer(vcn)
        return buffer

    def _names(self, node: Any) -> list[str] | None:
        """The names ``node.listdir(ignore_dos=True)`` lists, or ``None`` to let dissect.ntfs list them.

        Index.entries() walks the index root, then every INDX block of the allocation in VCN order (one
        that is not an INDX block skipped, the first that cannot be read ending the walk), and MftRecord
        decodes each entry's $FILE_NAME key with cstruct to see its namespace and name. The blocks come from
        dissect; the entries are decoded here as IndexEntry and FileName lay them out. An entry dissect
        could not decode ends this walk with ``None``, and dissect's own walk raises its error.
        """
        index = self._index(node)
        if index.root.attribute_type != _FILE_NAME:
            return None
        names: set[str] = set()
        fh = index.root.fh
        fh.seek(0)
        if not _index_names(
            fh.read(), len(c_ntfs._INDEX_ROOT), index.root.header.IndexHeader.TotalSizeOfEntries, names
        ):
            return None
        vcn = 0
        while index._index_stream:
            try:
                buffer = self._buffer(node, index, vcn)
            except NtfsError:
                vcn += 1
                continue
            except EOFError:
                break
            header = buffer.header.IndexHeader
            if not _index_names(buffer.data, header.FirstEntryOffset + 0x18, header.TotalSizeOfEntries, names):
                return None
            vcn += 1
        return sorted(n for n in names if n not in (".", ".."))

    def _search(self, node, name: str) -> int | None:  # type: ignore[no-untyped-def]
        """The segment number of ``name`` in directory ``node`` (dissect.ntfs Index.search's walk).

        Bound: the descent visits each index block (VCN) at most once; a child pointer back to a block already
        on the way (the root's child naming itself, a cycle of INDX blocks) is a
        :class:`~azvhdaudit.errors.CorruptVolumeError`, where dissect's walk would loop forever."""
        value = name.upper()
        entries = self._entries(node, None)
        visited: list[int] = []
        while True:
            if not entries:
                return None
            low, high = 0, len(entries) - 1
            while low != high:
                middle = low + (high - low) // 2
                test = entries[middle]
                is_end = bool(test[1] & INDEX_ENTRY_END)
                if not is_end and test[0] is not None and value > test[0]:
                    low = middle + 1
                elif test[0] == value:
                    high = low = middle
                else:
                    high = middle
            entry = entries[low]
            is_end = bool(entry[1] & INDEX_ENTRY_END) or entry[0] is None
            if not entry[1] & INDEX_ENTRY_NODE or (not is_end and entry[0] == value):
                break
            if entry[3] in visited:
                raise CorruptVolumeError(
                    f"{self.name}: the index of directory record {node.segment} loops: the B-tree walk comes back "
                    f"to the block at VCN {entry[3]} (walk: root -> {' -> '.join(map(str, [*visited, entry[3]]))})"
                )
            visited.append(entry[3])
            entries = self._entries(node, entry[3])
        if is_end or entry[0] != value:
            return None
        return int(entry[2] & 0xFFFFFFFFFFFF)

    def exists(self, path: str) -> bool:
        return self._record(path) is not None

    def is_dir(self, path: str) -> bool:
        rec = self._record(path)
        try:
            return bool(rec is not None and rec.is_dir())
        except _READ_ERRORS as err:
            raise FileSystemError(f"{self.name}: cannot read {path}: {err}") from err

    def listdir(self, path: str) -> list[str] | None:
        rec = self._record(path)
        if rec is None:
            return None
        try:
            if not rec.is_dir():
                return None
            names = self._names(rec)
            if names is not None:
                return names
            # str(): dissect returns cstruct string subclasses, which do not pickle (process pools, Dask)
            return sorted(str(n) for n in rec.listdir(ignore_dos=True) if n not in (".", ".."))
        except _READ_ERRORS as err:
            raise FileSystemError(f"{self.name}: cannot list {path}: {err}") from err

    def open(self, path: str) -> BinaryIO:
        rec = self._record(path)
        if rec is None:
            raise GuestFileNotFoundError(f"{self.name}: {path} does not exist")
        try:
            if rec.is_dir():
                raise GuestFileNotFoundError(f"{self.name}: {path} is a directory, not a file")
            return _open(rec, self._table(rec))
        except _READ_ERRORS as err:
            raise FileSystemError(f"{self.name}: cannot open {path}: {err}") from err

    @property
    def dirty(self) -> bool | None:
        """The NTFS dirty flag (chkdsk runs at next boot), from $Volume's VOLUME_INFORMATION."""
        try:
            record = self._get(3)
            table = self._table(record)
            if table is None:
                attr = record.attributes[ATTRIBUTE_TYPE_CODE.VOLUME_INFORMATION]
            else:
                attr = _attributes(record, table, ATTRIBUTE_TYPE_CODE.VOLUME_INFORMATION)
            data = attr[0].data() if isinstance(attr, list) else attr.data()
            flags = struct.unpack_from("<H", data, 10)[0]
            return bool(flags & 0x0001)
        except _FS_ERRORS + (FileNotFoundError,) as err:
            log.debug("%s: cannot read the NTFS volume flags: %s", self.name, err)
            return None

    @property
    def label(self) -> str | None:
        try:
            return self.fs.volume_name or None
        except _FS_ERRORS:
            return None
