"""Read a PE file's numeric version (VS_FIXEDFILEINFO FileVersion) with pefile.

References:
- "VS_FIXEDFILEINFO structure" (learn.microsoft.com, verrsrc.h): ``dwSignature`` 0xFEEF04BD,
  ``dwFileVersionMS`` / ``dwFileVersionLS`` hold the four 16-bit parts.
- PE/COFF specification, "The .rsrc Section": RT_VERSION (16) resources.
- Prepare a Windows VHD or VHDX to upload to Azure, "Install Windows updates": the minimum versions are
  numeric file versions; the FileVersion *string* carries branch tags and is not used.

:func:`file_version_of` first walks the one path to the version (headers, section table, the RT_VERSION
name and language entries, VS_VERSIONINFO) with :mod:`struct`, reading a few hundred bytes, and answers
when every structure on it has the plain layout linkers write. Any other file goes to pefile, the
reference (:func:`file_version` always uses it), parsing only the resource directory (``fast_load``
plus the one data directory) from the headers and the raw range of the section that holds it
(kilobytes of a multi-megabyte kernel): pefile sees a buffer of the file's size in which everything
else is zero (never touched, so it costs no memory), and the result is the one :func:`file_version`
gives on the whole file; when the version resource's data lies outside that section, the whole file
is read.
"""

from __future__ import annotations

import logging
import mmap
import struct
from typing import BinaryIO

import pefile

from azvhdaudit.batch import fetch_unit

__all__ = ["file_version", "file_version_of", "format_version", "parse_version"]

log = logging.getLogger(__name__)

_VS_FFI_SIGNATURE = 0xFEEF04BD
_RESOURCE = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]
#: the largest file whose version is read (the largest Windows binaries are a few tens of MB)
MAX_PE_SIZE = 64 * 1024 * 1024
_HEAD = 4096
#: bytes a read of a PE file fetches around each page it misses on a remote image
#: (:func:`azvhdaudit.batch.fetch_unit`): the headers, then the resource directory's pages, each asked for
PE_FETCH_UNIT = 4096

Version = tuple[int, int, int, int]


def file_version(data: bytes, name: str = "<bytes>") -> Version | None:
    """``(major, minor, build, revision)`` from the PE ``data``'s version resource, or ``None``.

    ``None`` (with a log line naming ``name``) when the data is not a PE file, has no version resource,
    or its resources are broken; never raises a pefile error.
    """
    if len(data) < 64 or data[:2] != b"MZ":
        log.debug("%s: not a PE file (no MZ header)", name)
        return None
    try:
        pe = pefile.PE(data=data, fast_load=True)
    except (pefile.PEFormatError, ValueError, struct.error) as err:
        log.info("%s: not a readable PE file: %s", name, err)
        return None
    # pe.close() is not called: with bytes there is nothing to release, and it runs gc.collect().
    return _resource_version(pe, name)


def _resource_version(pe: pefile.PE, name: str) -> Version | None:
    try:
        pe.parse_data_directories(directories=[_RESOURCE])
        infos = getattr(pe, "VS_FIXEDFILEINFO", None)
        if not infos:
            log.info("%s: no VS_FIXEDFILEINFO in the version resource", name)
            return None
        ffi = infos[0]
        if getattr(ffi, "Signature", _VS_FFI_SIGNATURE) != _VS_FFI_SIGNATURE:
            log.info("%s: VS_FIXEDFILEINFO signature 0x%08X, 0xFEEF04BD expected", name, ffi.Signature)
            return None
        ms, ls = int(ffi.FileVersionMS), int(ffi.FileVersionLS)
    except Exception as err:
        log.info("%s: cannot read the version resource: %s: %s", name, type(err).__name__, err)
        return None
    return (ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF)


def _read_at(fh: BinaryIO, offset: int, size: int) -> bytes:
    with fetch_unit(PE_FETCH_UNIT):
        fh.seek(offset)
        return fh.read(size)


def _headers_size(head: bytes) -> int:
    """Bytes from the file's start to the end of the section table (0 when the DOS/PE header is bad)."""
    if len(head) < 64 or head[:2] != b"MZ":
        return 0
    (lfanew,) = struct.unpack_from("<I", head, 0x3C)
    if lfanew + 24 > len(head):
        return lfanew + 24  # the section table lies further: read up to the COFF header first
    sections, optional = struct.unpack_from("<H12xH", head, lfanew + 6)
    return lfanew + 24 + optional + 40 * sections


def _offset_of(pe: pefile.PE, rva: int) -> int | None:
    """The file offset of ``rva``; ``None`` where pefile cannot map it (the caller then reads the whole file)."""
    try:
        return pe.get_offset_from_rva(rva)  # type: ignore[no-any-return]
    except pefile.PEFormatError:
        return None


def _version_data_inside(pe: pefile.PE, start: int, end: int) -> bool:
    """Whether every RT_VERSION data entry lies in the file range [start, end)."""
    for entry in getattr(getattr(pe, "DIRECTORY_ENTRY_RESOURCE", None), "entries", ()):
        if entry.id != pefile.RESOURCE_TYPE["RT_VERSION"]:
            continue
        for named in getattr(getattr(entry, "directory", None), "entries", ()):
            for lang in getattr(getattr(named, "directory", None), "entries", ()):
                if not hasattr(lang, "data"):
                    continue  # a subdirectory where a language's data should be: nothing pefile reads
                data = lang.data.struct
                offset = _offset_of(pe, data.OffsetToData)
                if offset is None or offset < start or offset + data.Size > end:
                    return False
    return True


def file_version_of(fh: BinaryIO, name: str = "<stream>", size: int | None = None) -> Version | None:
    """:func:`file_version` of the PE file ``fh`` (seekable, read-only), reading only what it needs.

    Reads the headers and the raw range of the section holding the resource directory; falls back to
    the whole file (at most :data:`MAX_PE_SIZE` bytes) when the resources lie elsewhere. ``size`` is
    the file's size when known. Read errors of ``fh`` propagate; PE errors give ``None``.
    """
    if size is None:
        size = fh.seek(0, 2)
    size = min(size, MAX_PE_SIZE)
    head = _read_at(fh, 0, min(size, _HEAD))
    needed = _headers_size(head)
    while len(head) < min(size, needed):
        head = _read_at(fh, 0, min(size, needed))
        needed = _headers_size(head)
    if needed == 0 or len(head) < 64:
        return file_version(head, name)
    try:
        return _fast_version(_Pages(fh, size, head), head)
    except _Defer as why:
        log.debug("%s: %s; reading it with pefile", name, why)
    # A buffer the size of the file, zero except where read: the untouched pages of an anonymous map are
    # never allocated, so an 8 MiB kernel costs the pages of its headers and resource section only.
    with mmap.mmap(-1, max(size, 1)) as buffer:
        buffer[: len(head)] = head
        return _version_in(fh, buffer, size, name)


def _version_in(fh: BinaryIO, buffer: mmap.mmap, size: int, name: str) -> Version | None:
    try:
        pe = pefile.PE(data=buffer, fast_load=True)
    except (pefile.PEFormatError, ValueError, struct.error) as err:
        log.info("%s: not a readable PE file: %s", name, err)
        return None
    directories = getattr(pe.OPTIONAL_HEADER, "DATA_DIRECTORY", [])
    rva = directories[_RESOURCE].VirtualAddress if len(directories) > _RESOURCE else 0
    section = pe.get_section_by_rva(rva) if rva else None
    if section is None:
        return _whole(fh, size, name) if rva else _resource_version(pe, name)
    start = min(int(section.PointerToRawData), size)
    end = min(start + int(section.SizeOfRawData), size)
    directory_end = _offset_of(pe, rva + max(directories[_RESOURCE].Size, 1) - 1)
    if directory_end is None or not start <= directory_end < end:
        return _whole(fh, size, name)
    buffer[start:end] = _read_at(fh, start, end - start)
    version = _resource_version(pe, name)
    if version is None and not _version_data_inside(pe, start, end):
        return _whole(fh, size, name)
    return version


def _whole(fh: BinaryIO, size: int, name: str) -> Version | None:
    log.debug("%s: the resources lie outside the resource section; reading the whole file", name)
    return file_version(_read_at(fh, 0, size), name)


# --- the fast path ------------------------------------------------------------------------------
#
# pefile builds an object for every header field, section flag and resource entry: ~1 ms a binary, most
# of the version rule's cost. The reader below walks only the path to the first version resource with
# struct, and answers only when every structure on that path has the plain layout a linker writes
# (full optional header, aligned sections, data inside the section's raw data, the VS_VERSION_INFO key
# where the format puts it). Anything else -- and any doubt -- goes to pefile, which stays the reference:
# tests check that on every input the fast path answers, pefile gives the same version (or gives up).

_COFF = struct.Struct("<4sHHIIIHH")  # Signature, Machine, NumberOfSections, ..., SizeOfOptionalHeader, Flags
_SECTION = struct.Struct("<8sIIIIIIHHI")
_RES_DIR = struct.Struct("<IIHHHH")  # Characteristics, TimeDateStamp, Major, Minor, Named, Id
_RES_ENTRY = struct.Struct("<II")  # Name/Id, OffsetToData (high bit: subdirectory)
_RES_DATA = struct.Struct("<IIII")  # OffsetToData (an RVA), Size, CodePage, Reserved
_VS_KEY = "VS_VERSION_INFO\x00".encode("utf-16-le")
#: (magic, data directories' offset in the optional header, the optional header's full size)
_OPTIONAL = {0x10B: (96, 224), 0x20B: (112, 240)}
_RT_VERSION = 16
_MAX_ENTRIES = 4096  # pefile's limit for one resource directory
_FFI_SIZE = 52


class _Defer(Exception):
    """The fast path cannot decide this file; pefile reads it."""


class _Pages:
    """Reads of a file through a cache of 4 KiB pages (resource directories are small and close together)."""

    def __init__(self, fh: BinaryIO, size: int, head: bytes) -> None:
        self.fh = fh
        self.size = size
        self.pages = {i: head[i * _HEAD : (i + 1) * _HEAD] for i in range(len(head) // _HEAD)}

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise _Defer(f"{length} bytes at 0x{offset:X} lie outside the file")
        first, last = offset // _HEAD, (offset + length - 1) // _HEAD
        parts = []
        for index in range(first, last + 1):
            page = self.pages.get(index)
            if page is None:
                page = self.pages[index] = _read_at(self.fh, index * _HEAD, _HEAD)
            parts.append(page)
        data = b"".join(parts)[offset - first * _HEAD : offset - first * _HEAD + length]
        if len(data) != length:
            raise _Defer(f"the file ends before 0x{offset + length:X}")
        return data


class _Section:
    __slots__ = ("va", "end", "raw", "raw_end")

    def __init__(self, va: int, end: int, raw: int, raw_end: int) -> None:
        self.va, self.end, self.raw, self.raw_end = va, end, raw, raw_end


def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def _plain_sections(head: bytes, pages: _Pages) -> tuple[list[_Section], int]:
    """The sections of a PE file with a plain layout, and the resource directory's RVA (0: none)."""
    (lfanew,) = struct.unpack_from("<I", head, 0x3C)
    if lfanew < 64 or lfanew + _COFF.size + 2 > len(head):
        raise _Defer(f"e_lfanew 0x{lfanew:X}")
    sig, _machine, count, _ts, _symbols, _nsym, optional_size, _flags = _COFF.unpack_from(head, lfanew)
    if sig != b"PE\x00\x00" or not 0 < count <= 96:
        raise _Defer("not a plain PE header")
    optional = lfanew + _COFF.size
    (magic,) = struct.unpack_from("<H", head, optional)
    directories, full = _OPTIONAL.get(magic, (0, 0))
    table = optional + optional_size
    if optional_size != full or table + count * _SECTION.size > len(head):
        raise _Defer(f"optional header of {optional_size} bytes (magic 0x{magic:X})")
    section_alignment, file_alignment = struct.unpack_from("<II", head, optional + 32)
    (rva_count,) = struct.unpack_from("<I", head, optional + directories - 4)
    if (
        rva_count != 16
        or not _power_of_two(file_alignment)
        or not 0x200 <= file_alignment <= 0x10000
        or not _power_of_two(section_alignment)
        or section_alignment < max(0x1000, file_alignment)
    ):
        raise _Defer("unusual alignment or data directory count")
    rva, _size = struct.unpack_from("<II", head, optional + directories + 8 * _RESOURCE)
    sections: list[_Section] = []
    for index in range(count):
        _name, vsize, va, raw_size, raw, *_ = _SECTION.unpack_from(head, table + index * _SECTION.size)
        # (a zeroed header ends pefile's section table: VirtualAddress 0 never passes)
        if not va or va % section_alignment or raw % file_alignment or raw + raw_size > pages.size:
            raise _Defer(f"section {index} is not aligned or lies past the end of the file")
        if sections and va <= sections[-1].va:
            raise _Defer(f"section {index} does not follow the one before it")
        sections.append(_Section(va, va + max(vsize, raw_size), raw, raw + raw_size))
    # As in pefile (sections sorted by address): a section ends at the latest where the next one starts
    for before, after in zip(sections, sections[1:], strict=False):
        before.end = min(before.end, after.va)
    return sections, rva


def _offset(sections: list[_Section], rva: int, length: int) -> int:
    """The file offset of ``length`` bytes at ``rva``, which must lie in one section's raw data."""
    for section in sections:
        if section.va <= rva < section.end:
            offset = rva - section.va + section.raw
            if offset + length > section.raw_end or rva + length > section.end:
                raise _Defer(f"{length} bytes at RVA 0x{rva:X} run past their section's data")
            return offset
    raise _Defer(f"RVA 0x{rva:X} is in no section")


def _entries(pages: _Pages, sections: list[_Section], rva: int) -> list[tuple[int, int]]:
    _c, _t, _major, _minor, named, ids = _RES_DIR.unpack(
        pages.read(_offset(sections, rva, _RES_DIR.size), _RES_DIR.size)
    )
    count = named + ids
    if count > _MAX_ENTRIES:
        raise _Defer(f"resource directory at RVA 0x{rva:X} with {count} entries")
    size = count * _RES_ENTRY.size
    data = pages.read(_offset(sections, rva + _RES_DIR.size, size), size) if count else b""
    return list(_RES_ENTRY.iter_unpack(data))


def _fast_version(pages: _Pages, head: bytes) -> Version | None:
    """The version by the plain path; raises :class:`_Defer` when pefile must decide."""
    sections, base = _plain_sections(head, pages)
    if not base:
        return None  # no resource directory at all
    seen = {base}
    rva = base
    for level in range(3):
        entries = _entries(pages, sections, rva)
        if level == 0:
            # pefile takes any entry whose low 16 bits are 16 (named ones too) for RT_VERSION
            hits = [e for e in entries if e[0] & 0xFFFF == _RT_VERSION]
            if not hits:
                return None  # no version resource: pefile finds none either, whatever else it reads
            entry = hits[0]
            if entry[0] != _RT_VERSION:
                raise _Defer("a named resource type looks like RT_VERSION")
        elif not entries:
            raise _Defer("an empty version resource directory")
        else:
            entry = entries[0]
        is_directory = bool(entry[1] & 0x80000000)
        target = base + (entry[1] & 0x7FFFFFFF)
        if is_directory != (level < 2) or target in seen:
            raise _Defer("the version resource tree is not name/language/data")
        seen.add(target)
        rva = target
    data_rva, size, _codepage, _reserved = _RES_DATA.unpack(
        pages.read(_offset(sections, rva, _RES_DATA.size), _RES_DATA.size)
    )
    # VS_VERSIONINFO: wLength, wValueLength, wType, the key, padding to 32 bits (from the RVA, as pefile)
    fixed = ((6 + len(_VS_KEY) + data_rva + 3) & ~3) - (data_rva & ~3)
    if size < fixed + _FFI_SIZE:
        raise _Defer(f"a version resource of {size} bytes")
    blob = pages.read(_offset(sections, data_rva, fixed + _FFI_SIZE), fixed + _FFI_SIZE)
    if blob[6 : 6 + len(_VS_KEY)] != _VS_KEY:
        raise _Defer("the version resource's key is not VS_VERSION_INFO")
    signature, _struc, ms, ls = struct.unpack_from("<IIII", blob, fixed)
    if signature != _VS_FFI_SIGNATURE:
        raise _Defer(f"VS_FIXEDFILEINFO signature 0x{signature:08X}")
    return (ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF)


def format_version(version: Version | tuple[int, ...] | None) -> str:
    """``6.1.7601.23403`` (``"not present"`` for ``None``)."""
    return "not present" if version is None else ".".join(str(p) for p in version)


def parse_version(text: str) -> Version:
    """``"6.1.7601.23403"`` -> ``(6, 1, 7601, 23403)``; missing parts are 0."""
    parts = [int(p) for p in text.strip().split(".")]
    if not 1 <= len(parts) <= 4:
        raise ValueError(f"not a 4-part version: {text!r}")
    parts += [0] * (4 - len(parts))
    return (parts[0], parts[1], parts[2], parts[3])
