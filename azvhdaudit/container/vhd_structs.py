"""On-disk layouts of the Virtual Hard Disk (VHD) format, as ``construct`` structures.

References:
- Microsoft, "Virtual Hard Disk Image Format Specification", version 1.0, October 2006
  (https://www.microsoft.com/en-us/download/details.aspx?id=23850): Hard Disk Footer Format,
  Dynamic Disk Header Format, Block Allocation Table and Data Blocks, Splitting Hard Disk (parent
  locators), Appendix "CHS Calculation".

All integers are big-endian. Signatures are parsed as plain bytes (not ``Const``) so the reader can
put the bad value in its own error message. The same structures build images in the tests.
"""

from __future__ import annotations

from construct import Array, Bytes, Int8ub, Int16ub, Int32ub, Int64ub, Struct

__all__ = [
    "FOOTER",
    "FOOTER_SIZE",
    "DYNAMIC_HEADER",
    "DYNAMIC_HEADER_SIZE",
    "PARENT_LOCATOR",
    "FOOTER_COOKIE",
    "DYNAMIC_COOKIE",
    "VHD_VERSION",
    "NO_DATA_OFFSET",
    "UNALLOCATED",
    "DISK_FIXED",
    "DISK_DYNAMIC",
    "DISK_DIFFERENCING",
    "DISK_TYPES",
    "FOOTER_CHECKSUM_OFFSET",
    "HEADER_CHECKSUM_OFFSET",
    "checksum",
    "chs_geometry",
]

FOOTER_COOKIE = b"conectix"
DYNAMIC_COOKIE = b"cxsparse"
VHD_VERSION = 0x00010000
#: data offset of a fixed disk's footer
NO_DATA_OFFSET = 0xFFFFFFFFFFFFFFFF
#: BAT entry of a block not stored in the file
UNALLOCATED = 0xFFFFFFFF

DISK_FIXED = 2
DISK_DYNAMIC = 3
DISK_DIFFERENCING = 4
DISK_TYPES = {DISK_FIXED: "fixed", DISK_DYNAMIC: "dynamic", DISK_DIFFERENCING: "differencing"}

FOOTER_SIZE = 512
DYNAMIC_HEADER_SIZE = 1024
FOOTER_CHECKSUM_OFFSET = 64
HEADER_CHECKSUM_OFFSET = 36

FOOTER = Struct(
    "cookie" / Bytes(8),
    "features" / Int32ub,
    "version" / Int32ub,
    "data_offset" / Int64ub,
    #: seconds since 2000-01-01 00:00:00 UTC
    "timestamp" / Int32ub,
    "creator_app" / Bytes(4),
    "creator_version" / Int32ub,
    "creator_host_os" / Bytes(4),
    "original_size" / Int64ub,
    "current_size" / Int64ub,
    "cylinders" / Int16ub,
    "heads" / Int8ub,
    "sectors_per_track" / Int8ub,
    "disk_type" / Int32ub,
    "checksum" / Int32ub,
    "unique_id" / Bytes(16),
    "saved_state" / Int8ub,
    "reserved" / Bytes(427),
)

PARENT_LOCATOR = Struct(
    #: ``W2ru`` (relative, UTF-16LE), ``W2ku`` (absolute, UTF-16LE), ``Wi2r``/``Wi2k`` (deprecated),
    #: ``Mac ``/``MacX`` (Mac alias / file URL); all zero when unused
    "platform_code" / Bytes(4),
    #: sectors reserved for the locator data (some writers store bytes here)
    "platform_data_space" / Int32ub,
    #: bytes of locator data
    "platform_data_length" / Int32ub,
    "reserved" / Int32ub,
    "platform_data_offset" / Int64ub,
)

DYNAMIC_HEADER = Struct(
    "cookie" / Bytes(8),
    "data_offset" / Int64ub,
    "table_offset" / Int64ub,
    "header_version" / Int32ub,
    "max_table_entries" / Int32ub,
    "block_size" / Int32ub,
    "checksum" / Int32ub,
    "parent_unique_id" / Bytes(16),
    "parent_timestamp" / Int32ub,
    "reserved1" / Int32ub,
    #: UTF-16BE file name of the parent
    "parent_unicode_name" / Bytes(512),
    "parent_locators" / Array(8, PARENT_LOCATOR),
    "reserved2" / Bytes(256),
)


def checksum(data: bytes, checksum_offset: int) -> int:
    """The VHD checksum: ones' complement of the byte sum, with the 4-byte checksum field taken as zero."""
    total = sum(data) - sum(data[checksum_offset : checksum_offset + 4])
    return ~total & 0xFFFFFFFF


def chs_geometry(size: int) -> tuple[int, int, int]:
    """Cylinders, heads, sectors per track for ``size`` bytes (the specification's CHS Calculation)."""
    total = size // 512
    if total > 65535 * 16 * 255:
        total = 65535 * 16 * 255
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cyl_heads = total // spt
    else:
        spt = 17
        cyl_heads = total // spt
        heads = (cyl_heads + 1023) // 1024
        if heads < 4:
            heads = 4
        if cyl_heads >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cyl_heads = total // spt
        if cyl_heads >= heads * 1024:
            spt, heads = 63, 16
            cyl_heads = total // spt
    return cyl_heads // heads, heads, spt
