"""Read a PE file's numeric version (VS_FIXEDFILEINFO FileVersion) with pefile.

References:
- "VS_FIXEDFILEINFO structure" (learn.microsoft.com, verrsrc.h): ``dwSignature`` 0xFEEF04BD,
  ``dwFileVersionMS`` / ``dwFileVersionLS`` hold the four 16-bit parts.
- PE/COFF specification, "The .rsrc Section": RT_VERSION (16) resources.
- Prepare a Windows VHD or VHDX to upload to Azure, "Install Windows updates": the minimum versions are
  numeric file versions; the FileVersion *string* carries branch tags and is not used.

Only the resource directory is parsed (``fast_load`` plus the one data directory). :func:`file_version_of`
reads a file object the same way without reading the whole file: the headers, then only the raw range of
the section that holds the resource directory (kilobytes of a multi-megabyte kernel). pefile sees a buffer
of the file's size in which everything else is zero (never touched, so it costs no memory), and the
result is the one :func:`file_version` gives on the whole file; when the version resource's data lies
outside that section, the whole file is read.
"""

from __future__ import annotations

import logging
import mmap
import struct
from typing import BinaryIO

import pefile

__all__ = ["file_version", "file_version_of", "format_version", "parse_version"]

log = logging.getLogger(__name__)

_VS_FFI_SIGNATURE = 0xFEEF04BD
_RESOURCE = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]
#: the largest file whose version is read (the largest Windows binaries are a few tens of MB)
MAX_PE_SIZE = 64 * 1024 * 1024
_HEAD = 4096

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


def _version_data_inside(pe: pefile.PE, start: int, end: int) -> bool:
    """Whether every RT_VERSION data entry lies in the file range [start, end)."""
    for entry in getattr(getattr(pe, "DIRECTORY_ENTRY_RESOURCE", None), "entries", ()):
        if entry.id != pefile.RESOURCE_TYPE["RT_VERSION"]:
            continue
        for named in getattr(getattr(entry, "directory", None), "entries", ()):
            for lang in getattr(getattr(named, "directory", None), "entries", ()):
                data = lang.data.struct
                offset = pe.get_offset_from_rva(data.OffsetToData)
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
    directory_end = pe.get_offset_from_rva(rva + max(directories[_RESOURCE].Size, 1) - 1)
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
