"""Small VHDX editing helpers for tests: change a header field or metadata item and fix the CRC-32C.

Reference: [MS-VHDX] 2.2.2 Header (fields and offsets), 2.2.3 Region Table, 2.6 Metadata Region.
"""

from __future__ import annotations

import struct
from pathlib import Path
from uuid import UUID

from dissect.hypervisor.disk.c_vhdx import METADATA_REGION_GUID
from dissect.util.hash.crc32c import crc32c

HEADER_OFFSETS = (64 * 1024, 128 * 1024)
REGION_OFFSETS = (192 * 1024, 256 * 1024)
#: offsets of header fields (MS-VHDX 2.2.2)
HEADER_FIELDS = {"sequence_number": (8, "<Q"), "data_write_guid": (32, "16s"), "log_guid": (48, "16s")}


def _fix_crc(data: bytearray, start: int, size: int) -> None:
    data[start + 4 : start + 8] = b"\x00\x00\x00\x00"
    data[start + 4 : start + 8] = crc32c(bytes(data[start : start + size])).to_bytes(4, "little")


def patch_headers(path: Path, **fields: object) -> None:
    """Set header fields in both headers and recompute their checksums."""
    data = bytearray(path.read_bytes())
    for start in HEADER_OFFSETS:
        for name, value in fields.items():
            offset, fmt = HEADER_FIELDS[name]
            struct.pack_into(fmt, data, start + offset, value)
        _fix_crc(data, start, 4096)
    path.write_bytes(bytes(data))


def header_sequence(path: Path, number: int) -> int:
    data = path.read_bytes()
    return int(struct.unpack_from("<Q", data, HEADER_OFFSETS[number - 1] + 8)[0])


def metadata_item_offset(path: Path, item: UUID) -> int:
    """The file offset of a metadata item's value."""
    data = path.read_bytes()
    table = REGION_OFFSETS[0]
    count = struct.unpack_from("<I", data, table + 8)[0]
    for i in range(count):
        entry = table + 16 + i * 32
        if UUID(bytes_le=data[entry : entry + 16]) == METADATA_REGION_GUID:
            base = struct.unpack_from("<Q", data, entry + 16)[0]
            break
    else:
        raise AssertionError("no metadata region")
    count = struct.unpack_from("<H", data, base + 10)[0]
    for i in range(count):
        entry = base + 32 + i * 32
        if UUID(bytes_le=data[entry : entry + 16]) == item:
            return int(base + struct.unpack_from("<I", data, entry + 16)[0])
    raise AssertionError(f"no metadata item {item}")


def region_offset(path: Path, region: UUID) -> int:
    data = path.read_bytes()
    table = REGION_OFFSETS[0]
    count = struct.unpack_from("<I", data, table + 8)[0]
    for i in range(count):
        entry = table + 16 + i * 32
        if UUID(bytes_le=data[entry : entry + 16]) == region:
            return int(struct.unpack_from("<Q", data, entry + 16)[0])
    raise AssertionError(f"no region {region}")


def write_at(path: Path, offset: int, value: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(value)
