"""Read a PE file's numeric version (VS_FIXEDFILEINFO FileVersion) with pefile.

References:
- "VS_FIXEDFILEINFO structure" (learn.microsoft.com, verrsrc.h): ``dwSignature`` 0xFEEF04BD,
  ``dwFileVersionMS`` / ``dwFileVersionLS`` hold the four 16-bit parts.
- PE/COFF specification, "The .rsrc Section": RT_VERSION (16) resources.
- Prepare a Windows VHD or VHDX to upload to Azure, "Install Windows updates": the minimum versions are
  numeric file versions; the FileVersion *string* carries branch tags and is not used.

Only the resource directory is parsed (``fast_load`` plus the one data directory), so reading the version
of a 10 MB kernel costs little more than its headers and resources.
"""

from __future__ import annotations

import logging
import struct

import pefile

__all__ = ["file_version", "format_version", "parse_version"]

log = logging.getLogger(__name__)

_VS_FFI_SIGNATURE = 0xFEEF04BD
_RESOURCE = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]

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
    finally:
        pe.close()
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
