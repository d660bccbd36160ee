"""Write VHD and VHDX differencing disks, and pin the random identities qemu-img writes.

References:
- Microsoft, "Virtual Hard Disk Image Format Specification" v1.0 (October 2006): hard disk
  footer, dynamic disk header, parent locators (W2ku / W2ru), BAT, sector bitmaps (bit 7 of
  byte 0 = first sector of the block).
- Microsoft, "[MS-VHDX]: Virtual Hard Disk v2 (VHDX) File Format" v20160714: file type
  identifier, headers and region tables (CRC-32C), metadata table and items, parent locator
  (type B04AEFB7-D19E-4A81-B789-25B8E9445913; parent_linkage, relative_path,
  absolute_win32_path), BAT with interleaved sector bitmap entries (chunk ratio), sector bitmap
  blocks (bit 0 of byte 0 = first sector of the chunk).

qemu-img can read and convert both formats but cannot create a differencing disk in either, so
the sample children are written here.  The structures are declared from the specifications with
``construct`` and do not use the azvhdaudit package, so the samples check the reader rather than
mirror it.  The input has the same shape as tests/container/vhdwriter.py (sector number ->
512 bytes held in the child; locators ".\\<parent name>").
"""

from __future__ import annotations

import os
import struct
import uuid
from collections.abc import Mapping
from pathlib import Path

from construct import Array, Bytes, Const, Int8ub, Int16ub, Int16ul, Int32ub, Int32ul, Int64ub, Int64ul, Padding, Struct
from dissect.util.hash.crc32c import crc32c

SECTOR = 512
MiB = 1024 * 1024
KiB = 1024

#: Seconds between the Unix epoch and the VHD epoch (2000-01-01 00:00:00 UTC).
VHD_EPOCH_OFFSET = 946684800

# ---------------------------------------------------------------------------------------------
# VHD (all fields big-endian)

VHD_FOOTER = Struct(
    "cookie" / Const(b"conectix"),
    "features" / Int32ub,
    "version" / Int32ub,
    "data_offset" / Int64ub,
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
    Padding(427),
)
VHD_FOOTER_CHECKSUM = 64

VHD_LOCATOR = Struct(
    "platform_code" / Bytes(4),
    "platform_data_space" / Int32ub,
    "platform_data_length" / Int32ub,
    Padding(4),
    "platform_data_offset" / Int64ub,
)

VHD_DYNAMIC_HEADER = Struct(
    "cookie" / Const(b"cxsparse"),
    "data_offset" / Int64ub,
    "table_offset" / Int64ub,
    "header_version" / Int32ub,
    "max_table_entries" / Int32ub,
    "block_size" / Int32ub,
    "checksum" / Int32ub,
    "parent_unique_id" / Bytes(16),
    "parent_timestamp" / Int32ub,
    Padding(4),
    "parent_unicode_name" / Bytes(512),
    "parent_locators" / Array(8, VHD_LOCATOR),
    Padding(256),
)
VHD_HEADER_CHECKSUM = 36

DISK_FIXED, DISK_DYNAMIC, DISK_DIFFERENCING = 2, 3, 4
UNUSED_BAT = 0xFFFFFFFF


def vhd_timestamp(unix_seconds: int) -> int:
    """VHD time stamp: seconds since 2000-01-01 00:00:00 UTC."""
    return unix_seconds - VHD_EPOCH_OFFSET


def vhd_checksum(data: bytes, field: int) -> int:
    """Ones' complement of the byte sum, with the 4-byte checksum field at ``field`` taken as 0."""
    total = sum(data) - sum(data[field : field + 4])
    return ~total & 0xFFFFFFFF


def _with_checksum(data: bytes, field: int) -> bytes:
    return data[:field] + struct.pack(">I", vhd_checksum(data, field)) + data[field + 4 :]


def read_vhd_footer(path: Path) -> dict[str, object]:
    with open(path, "rb") as fh:
        fh.seek(-512, os.SEEK_END)
        return dict(VHD_FOOTER.parse(fh.read(512)))


def set_vhd_footer_identity(path: Path, unique_id: uuid.UUID, timestamp: int) -> None:
    """Replace the unique id and time stamp in a VHD's footer (and its copy at offset 0 for
    dynamic disks) and recompute the checksum."""
    with open(path, "r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        offsets = [size - 512]
        fh.seek(0)
        if fh.read(8) == b"conectix":
            offsets.append(0)
        for offset in offsets:
            fh.seek(offset)
            footer = dict(VHD_FOOTER.parse(fh.read(512)))
            footer.update(unique_id=unique_id.bytes, timestamp=timestamp, checksum=0)
            fh.seek(offset)
            fh.write(_with_checksum(VHD_FOOTER.build(footer), VHD_FOOTER_CHECKSUM))


def changed_sectors(parent_raw: Path, child_raw: Path, chunk: int = MiB) -> dict[int, bytes]:
    """Sectors (number -> 512 bytes) where ``child_raw`` differs from ``parent_raw``."""
    out: dict[int, bytes] = {}
    with open(parent_raw, "rb") as pa, open(child_raw, "rb") as ch:
        offset = 0
        while True:
            a, b = pa.read(chunk), ch.read(chunk)
            if not a and not b:
                break
            if len(a) != len(b):
                raise ValueError(f"{parent_raw} and {child_raw} differ in size near offset {offset}")
            if a != b:
                for i in range(0, len(b), SECTOR):
                    if a[i : i + SECTOR] != b[i : i + SECTOR]:
                        out[(offset + i) // SECTOR] = b[i : i + SECTOR]
            offset += len(b)
    return out


def write_vhd_child(
    path: Path,
    parent: Path,
    sectors: Mapping[int, bytes],
    *,
    unique_id: uuid.UUID,
    timestamp: int,
    absolute_path: str,
    block_size: int = 2 * MiB,
) -> Path:
    """A differencing VHD of ``parent`` that holds ``sectors``.

    Layout: footer copy | dynamic header | W2ku and W2ru locator data (one sector each) | BAT |
    blocks (sector bitmap padded to a sector, then the block's data) | footer.  The relative
    locator is ``.\\<parent file name>``, so the child finds a parent lying beside it.
    """
    pf = read_vhd_footer(parent)
    size = int(pf["current_size"])  # type: ignore[call-overload]
    entries = -(-size // block_size)
    bitmap_bytes = -(-(block_size // SECTOR // 8) // SECTOR) * SECTOR
    name = parent.name
    locators_data = [
        (b"W2ku", absolute_path.encode("utf-16-le")),
        (b"W2ru", (".\\" + name).encode("utf-16-le")),
    ]
    offset = 512 + 1024
    locators = []
    blobs = []
    for code, data in locators_data:
        space = -(-len(data) // SECTOR) * SECTOR
        # the specification counts platform_data_space in sectors
        locators.append(
            dict(
                platform_code=code,
                platform_data_space=space // SECTOR,
                platform_data_length=len(data),
                platform_data_offset=offset,
            )
        )
        blobs.append(data.ljust(space, b"\0"))
        offset += space
    while len(locators) < 8:
        locators.append(
            dict(platform_code=bytes(4), platform_data_space=0, platform_data_length=0, platform_data_offset=0)
        )
    table_offset = offset
    bat_bytes = -(-entries * 4 // SECTOR) * SECTOR
    data_start = table_offset + bat_bytes

    per_block = block_size // SECTOR
    blocks: dict[int, dict[int, bytes]] = {}
    for sector, data in sectors.items():
        if len(data) != SECTOR:
            raise ValueError(f"sector {sector}: {len(data)} bytes, expected {SECTOR}")
        blocks.setdefault(sector // per_block, {})[sector % per_block] = data
    bat = [UNUSED_BAT] * entries
    body = bytearray()
    for block in sorted(blocks):
        bat[block] = (data_start + len(body)) // SECTOR
        bitmap = bytearray(bitmap_bytes)
        data = bytearray(block_size)
        for index, payload in blocks[block].items():
            bitmap[index >> 3] |= 0x80 >> (index & 7)
            data[index * SECTOR : (index + 1) * SECTOR] = payload
        body += bitmap + data

    header = VHD_DYNAMIC_HEADER.build(
        dict(
            data_offset=0xFFFFFFFFFFFFFFFF,
            table_offset=table_offset,
            header_version=0x00010000,
            max_table_entries=entries,
            block_size=block_size,
            checksum=0,
            parent_unique_id=pf["unique_id"],
            parent_timestamp=pf["timestamp"],
            parent_unicode_name=name.encode("utf-16-be").ljust(512, b"\0"),
            parent_locators=locators,
        )
    )
    header = _with_checksum(header, VHD_HEADER_CHECKSUM)
    footer = dict(pf)
    footer.update(
        features=2,
        version=0x00010000,
        data_offset=512,
        timestamp=timestamp,
        creator_app=b"azvh",
        creator_version=0x00010000,
        creator_host_os=b"Wi2k",
        disk_type=DISK_DIFFERENCING,
        checksum=0,
        unique_id=unique_id.bytes,
        saved_state=0,
    )
    footer_bytes = _with_checksum(VHD_FOOTER.build(footer), VHD_FOOTER_CHECKSUM)
    with open(path, "wb") as fh:
        fh.write(footer_bytes + header + b"".join(blobs))
        fh.write(b"".join(struct.pack(">I", e) for e in bat).ljust(bat_bytes, b"\xff"))
        fh.write(body)
        fh.write(footer_bytes)
    return path


# ---------------------------------------------------------------------------------------------
# VHDX (all fields little-endian; GUIDs in Windows byte order)

VHDX_HEADER = Struct(
    "signature" / Const(b"head"),
    "checksum" / Int32ul,
    "sequence_number" / Int64ul,
    "file_write_guid" / Bytes(16),
    "data_write_guid" / Bytes(16),
    "log_guid" / Bytes(16),
    "log_version" / Int16ul,
    "version" / Int16ul,
    "log_length" / Int32ul,
    "log_offset" / Int64ul,
    Padding(4016),
)
VHDX_REGION_ENTRY = Struct("guid" / Bytes(16), "file_offset" / Int64ul, "length" / Int32ul, "required" / Int32ul)
VHDX_REGION_TABLE_HEADER = Struct(
    "signature" / Const(b"regi"), "checksum" / Int32ul, "entry_count" / Int32ul, Padding(4)
)
VHDX_METADATA_HEADER = Struct("signature" / Const(b"metadata"), Padding(2), "entry_count" / Int16ul, Padding(20))
VHDX_METADATA_ENTRY = Struct(
    "item_id" / Bytes(16), "offset" / Int32ul, "length" / Int32ul, "flags" / Int32ul, Padding(4)
)
VHDX_LOCATOR_HEADER = Struct("locator_type" / Bytes(16), Padding(2), "key_value_count" / Int16ul)
VHDX_LOCATOR_ENTRY = Struct(
    "key_offset" / Int32ul, "value_offset" / Int32ul, "key_length" / Int16ul, "value_length" / Int16ul
)

HEADER_OFFSETS = (64 * KiB, 128 * KiB)
REGION_TABLE_OFFSETS = (192 * KiB, 256 * KiB)
BAT_REGION = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
METADATA_REGION = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
FILE_PARAMETERS = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
VIRTUAL_DISK_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
PAGE83_DATA = uuid.UUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
LOGICAL_SECTOR_SIZE = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
PHYSICAL_SECTOR_SIZE = uuid.UUID("CDA348C7-445D-4471-9CC9-E9885251C556")
PARENT_LOCATOR = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
VHDX_PARENT_LOCATOR_TYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913")

PAYLOAD_BLOCK_NOT_PRESENT = 0
PAYLOAD_BLOCK_PARTIALLY_PRESENT = 7
SB_BLOCK_PRESENT = 6


def _derived_guid(identity: uuid.UUID, role: str) -> uuid.UUID:
    """A fixed GUID for one role (file write, data write, page 83) of a sample disk."""
    return uuid.uuid5(identity, role)


def _crc_field(block: bytes, field: int = 4) -> bytes:
    zeroed = block[:field] + bytes(4) + block[field + 4 :]
    return block[:field] + struct.pack("<I", crc32c(zeroed)) + block[field + 4 :]


def vhdx_regions(path: Path) -> dict[uuid.UUID, tuple[int, int]]:
    """Region GUID -> (file offset, length) from the first region table."""
    with open(path, "rb") as fh:
        fh.seek(REGION_TABLE_OFFSETS[0])
        table = fh.read(64 * KiB)
    head = VHDX_REGION_TABLE_HEADER.parse(table)
    out = {}
    for i in range(head.entry_count):
        entry = VHDX_REGION_ENTRY.parse(table[16 + 32 * i : 48 + 32 * i])
        out[uuid.UUID(bytes_le=entry.guid)] = (entry.file_offset, entry.length)
    return out


def vhdx_metadata(path: Path) -> dict[uuid.UUID, tuple[int, bytes]]:
    """Metadata item id -> (absolute file offset, data)."""
    offset, _length = vhdx_regions(path)[METADATA_REGION]
    with open(path, "rb") as fh:
        fh.seek(offset)
        table = fh.read(64 * KiB)
        head = VHDX_METADATA_HEADER.parse(table)
        out = {}
        for i in range(head.entry_count):
            entry = VHDX_METADATA_ENTRY.parse(table[32 + 32 * i : 64 + 32 * i])
            fh.seek(offset + entry.offset)
            out[uuid.UUID(bytes_le=entry.item_id)] = (offset + entry.offset, fh.read(entry.length))
    return out


def read_vhdx_header(path: Path) -> dict[str, object]:
    """The current (highest sequence number, valid CRC) VHDX header."""
    best: dict[str, object] | None = None
    with open(path, "rb") as fh:
        for offset in HEADER_OFFSETS:
            fh.seek(offset)
            block = fh.read(4096)
            if (
                block[:4] != b"head"
                or crc32c(block[:4] + bytes(4) + block[8:]) != struct.unpack_from("<I", block, 4)[0]
            ):
                continue
            header = dict(VHDX_HEADER.parse(block))
            if best is None or header["sequence_number"] > best["sequence_number"]:  # type: ignore[operator]
                best = header
    if best is None:
        raise ValueError(f"{path}: no valid VHDX header")
    return best


def set_vhdx_identity(path: Path, identity: uuid.UUID) -> None:
    """Give a qemu-img VHDX fixed write GUIDs, page-83 id and sequence numbers (1 and 2, keeping
    which header is current), recomputing the header CRC-32C."""
    with open(path, "r+b") as fh:
        headers = []
        for offset in HEADER_OFFSETS:
            fh.seek(offset)
            headers.append(dict(VHDX_HEADER.parse(fh.read(4096))))
        newer = 0 if headers[0]["sequence_number"] > headers[1]["sequence_number"] else 1
        for i, (offset, header) in enumerate(zip(HEADER_OFFSETS, headers, strict=True)):
            if any(header["log_guid"]):
                raise ValueError(f"{path}: log not empty; cannot rewrite its headers")
            header.update(
                checksum=0,
                sequence_number=2 if i == newer else 1,
                file_write_guid=_derived_guid(identity, "file-write").bytes_le,
                data_write_guid=_derived_guid(identity, "data-write").bytes_le,
            )
            fh.seek(offset)
            fh.write(_crc_field(VHDX_HEADER.build(header)))
        # qemu-img journals its BAT updates and leaves the replayed entries behind, each with a
        # random log GUID; with LogGuid zero in the headers the log is empty, so clear it.
        fh.seek(headers[newer]["log_offset"])  # type: ignore[arg-type]
        fh.write(bytes(headers[newer]["log_length"]))  # type: ignore[arg-type]
    page83_offset, _ = vhdx_metadata(path)[PAGE83_DATA]
    with open(path, "r+b") as fh:
        fh.seek(page83_offset)
        fh.write(_derived_guid(identity, "page83").bytes_le)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _parent_locator(entries: Mapping[str, str]) -> bytes:
    head = VHDX_LOCATOR_HEADER.build(dict(locator_type=VHDX_PARENT_LOCATOR_TYPE.bytes_le, key_value_count=len(entries)))
    table_len = len(head) + 12 * len(entries)
    blob = bytearray()
    table = bytearray()
    for key, value in entries.items():
        k, v = _utf16(key), _utf16(value)
        key_offset = table_len + len(blob)
        blob += k
        value_offset = table_len + len(blob)
        blob += v
        table += VHDX_LOCATOR_ENTRY.build(
            dict(key_offset=key_offset, value_offset=value_offset, key_length=len(k), value_length=len(v))
        )
    return head + bytes(table) + bytes(blob)


def write_vhdx_child(
    path: Path,
    parent: Path,
    sectors: Mapping[int, bytes],
    *,
    identity: uuid.UUID,
    absolute_path: str,
    block_size: int = MiB,
) -> Path:
    """A differencing VHDX of ``parent`` that holds ``sectors``.

    Layout (every region 1 MiB aligned): file type identifier, headers (64/128 KiB), region
    tables (192/256 KiB) | log (1 MiB, empty) | metadata (1 MiB) | BAT (1 MiB) | one sector
    bitmap block per chunk in use | payload blocks (state PARTIALLY_PRESENT).  The parent
    locator holds parent_linkage = the parent's DataWriteGuid, relative_path
    ``.\\<parent file name>`` and absolute_win32_path.
    """
    parent_header = read_vhdx_header(parent)
    parent_meta = vhdx_metadata(parent)
    size = struct.unpack("<Q", parent_meta[VIRTUAL_DISK_SIZE][1][:8])[0]
    logical = struct.unpack("<I", parent_meta[LOGICAL_SECTOR_SIZE][1][:4])[0]
    physical = struct.unpack("<I", parent_meta[PHYSICAL_SECTOR_SIZE][1][:4])[0]
    if logical != SECTOR:
        raise ValueError(f"{parent}: logical sector size {logical}, only {SECTOR} is supported here")
    chunk_ratio = (2**23 * logical) // block_size
    data_blocks = -(-size // block_size)
    bitmap_blocks = -(-data_blocks // chunk_ratio)
    total_entries = bitmap_blocks * (chunk_ratio + 1)
    linkage = "{" + str(uuid.UUID(bytes_le=parent_header["data_write_guid"])) + "}"  # type: ignore[arg-type]

    log_offset, metadata_offset, bat_offset = 1 * MiB, 2 * MiB, 3 * MiB
    bat_length = -(-(total_entries * 8) // MiB) * MiB
    next_free = bat_offset + bat_length

    per_block = block_size // logical
    blocks: dict[int, dict[int, bytes]] = {}
    for sector, data in sectors.items():
        if len(data) != logical:
            raise ValueError(f"sector {sector}: {len(data)} bytes, expected {logical}")
        blocks.setdefault(sector // per_block, {})[sector % per_block] = data

    bat = [0] * total_entries
    bitmaps: dict[int, tuple[int, bytearray]] = {}
    for chunk in sorted({b // chunk_ratio for b in blocks}):
        bitmaps[chunk] = (next_free, bytearray(MiB))
        bat[chunk * (chunk_ratio + 1) + chunk_ratio] = SB_BLOCK_PRESENT | (next_free // MiB) << 20
        next_free += MiB
    payload: list[tuple[int, bytes]] = []
    for block in sorted(blocks):
        chunk = block // chunk_ratio
        data = bytearray(block_size)
        bitmap = bitmaps[chunk][1]
        for index, content in blocks[block].items():
            data[index * logical : (index + 1) * logical] = content
            bit = (block % chunk_ratio) * per_block + index
            bitmap[bit >> 3] |= 1 << (bit & 7)
        bat[chunk * (chunk_ratio + 1) + block % chunk_ratio] = (
            PAYLOAD_BLOCK_PARTIALLY_PRESENT | (next_free // MiB) << 20
        )
        payload.append((next_free, bytes(data)))
        next_free += block_size

    items = [
        (FILE_PARAMETERS, struct.pack("<II", block_size, 0b10), 0b100),  # HasParent
        (VIRTUAL_DISK_SIZE, struct.pack("<Q", size), 0b110),
        (PAGE83_DATA, _derived_guid(identity, "page83").bytes_le, 0b110),
        (LOGICAL_SECTOR_SIZE, struct.pack("<I", logical), 0b110),
        (PHYSICAL_SECTOR_SIZE, struct.pack("<I", physical), 0b110),
        (
            PARENT_LOCATOR,
            _parent_locator(
                {
                    "parent_linkage": linkage,
                    "relative_path": ".\\" + parent.name,
                    "absolute_win32_path": absolute_path,
                }
            ),
            0b100,
        ),
    ]
    metadata = bytearray(MiB)
    metadata[:32] = VHDX_METADATA_HEADER.build(dict(entry_count=len(items)))
    item_offset = 64 * KiB
    for i, (item_id, data, flags) in enumerate(items):
        metadata[32 + 32 * i : 64 + 32 * i] = VHDX_METADATA_ENTRY.build(
            dict(item_id=item_id.bytes_le, offset=item_offset, length=len(data), flags=flags)
        )
        metadata[item_offset : item_offset + len(data)] = data
        item_offset += -(-len(data) // 4096) * 4096

    region = bytearray(64 * KiB)
    region[:16] = VHDX_REGION_TABLE_HEADER.build(dict(checksum=0, entry_count=2))
    region[16:48] = VHDX_REGION_ENTRY.build(
        dict(guid=BAT_REGION.bytes_le, file_offset=bat_offset, length=bat_length, required=1)
    )
    region[48:80] = VHDX_REGION_ENTRY.build(
        dict(guid=METADATA_REGION.bytes_le, file_offset=metadata_offset, length=MiB, required=1)
    )
    region_bytes = _crc_field(bytes(region))

    creator = b"vhdxfile" + _utf16("azvhdaudit samples/diskwriter.py").ljust(512, b"\0")
    with open(path, "wb") as fh:
        fh.truncate(next_free)
        fh.write(creator)
        for seq, offset in enumerate(HEADER_OFFSETS, 1):
            header = VHDX_HEADER.build(
                dict(
                    checksum=0,
                    sequence_number=seq,
                    file_write_guid=_derived_guid(identity, "file-write").bytes_le,
                    data_write_guid=_derived_guid(identity, "data-write").bytes_le,
                    log_guid=bytes(16),
                    log_version=0,
                    version=1,
                    log_length=MiB,
                    log_offset=log_offset,
                )
            )
            fh.seek(offset)
            fh.write(_crc_field(header))
        for offset in REGION_TABLE_OFFSETS:
            fh.seek(offset)
            fh.write(region_bytes)
        fh.seek(metadata_offset)
        fh.write(metadata)
        fh.seek(bat_offset)
        fh.write(b"".join(struct.pack("<Q", e) for e in bat))
        for offset, bitmap in bitmaps.values():
            fh.seek(offset)
            fh.write(bitmap)
        for offset, data in payload:
            fh.seek(offset)
            fh.write(data)
    return path
