"""A tiny VHD writer for tests: dynamic and differencing disks built with the library's own layouts.

References: Microsoft, "Virtual Hard Disk Image Format Specification" v1.0 (2006). qemu-img cannot
create VHD differencing disks, so the tests write them here (``construct`` build mode).

Layout written: footer copy (512) | dynamic header (1024) | locator data (512 each) | BAT |
blocks (bitmap + data) | footer.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field

from azvhdaudit.container.vhd import bitmap_size
from azvhdaudit.container.vhd_structs import (
    DISK_DIFFERENCING,
    DISK_DYNAMIC,
    DYNAMIC_COOKIE,
    DYNAMIC_HEADER,
    FOOTER,
    FOOTER_CHECKSUM_OFFSET,
    FOOTER_COOKIE,
    HEADER_CHECKSUM_OFFSET,
    NO_DATA_OFFSET,
    UNALLOCATED,
    VHD_VERSION,
    checksum,
    chs_geometry,
)

SECTOR = 512


def footer_bytes(
    *,
    disk_type: int,
    size: int,
    data_offset: int = 512,
    unique_id: bytes | None = None,
    version: int = VHD_VERSION,
    cookie: bytes = FOOTER_COOKIE,
) -> bytes:
    cyl, heads, spt = chs_geometry(size)
    values = dict(
        cookie=cookie,
        features=2,
        version=version,
        data_offset=data_offset,
        timestamp=0,
        creator_app=b"test",
        creator_version=0x00010000,
        creator_host_os=b"Wi2k",
        original_size=size,
        current_size=size,
        cylinders=cyl,
        heads=heads,
        sectors_per_track=spt,
        disk_type=disk_type,
        checksum=0,
        unique_id=unique_id or uuid.uuid4().bytes,
        saved_state=0,
        reserved=bytes(427),
    )
    raw = FOOTER.build(values)
    values["checksum"] = checksum(raw, FOOTER_CHECKSUM_OFFSET)
    return FOOTER.build(values)


def parse_footer(path: str | os.PathLike[str]):  # type: ignore[no-untyped-def]
    with open(path, "rb") as fh:
        fh.seek(-512, os.SEEK_END)
        return FOOTER.parse(fh.read(512))


@dataclass
class DiffSpec:
    """What to write: a differencing child of ``parent`` (or a plain dynamic disk when parent is None)."""

    size: int
    block_size: int = 2 * 1024 * 1024
    #: sector number -> 512 bytes held in this file
    sectors: dict[int, bytes] = field(default_factory=dict)
    parent_unique_id: bytes = bytes(16)
    relative: str | None = None
    absolute: str | None = None
    parent_name: str = ""
    unique_id: bytes | None = None


def write_vhd(path: str | os.PathLike[str], spec: DiffSpec, *, differencing: bool) -> bytes:
    """Write the disk; returns its unique id."""
    bs = spec.block_size
    entries = -(-spec.size // bs)
    locators = []
    offset = 512 + 1024
    blobs: list[tuple[int, bytes]] = []
    for code, text in ((b"W2ru", spec.relative), (b"W2ku", spec.absolute)):
        if text is None:
            continue
        data = text.encode("utf-16-le")
        space = -(-len(data) // SECTOR) * SECTOR
        locators.append(
            dict(
                platform_code=code,
                platform_data_space=space // SECTOR,
                platform_data_length=len(data),
                reserved=0,
                platform_data_offset=offset,
            )
        )
        blobs.append((offset, data))
        offset += space
    while len(locators) < 8:
        locators.append(
            dict(
                platform_code=bytes(4),
                platform_data_space=0,
                platform_data_length=0,
                reserved=0,
                platform_data_offset=0,
            )
        )
    table_offset = offset
    bat_bytes = -(-entries * 4 // SECTOR) * SECTOR
    data_start = table_offset + bat_bytes
    bm = bitmap_size(bs)

    blocks: dict[int, dict[int, bytes]] = {}
    for sector, payload in spec.sectors.items():
        assert len(payload) == SECTOR
        blocks.setdefault(sector * SECTOR // bs, {})[sector % (bs // SECTOR)] = payload
    bat = [UNALLOCATED] * entries
    body = bytearray()
    for block in sorted(blocks):
        bat[block] = (data_start + len(body)) // SECTOR
        bitmap = bytearray(bm)
        data = bytearray(bs)
        for sector, payload in blocks[block].items():
            bitmap[sector >> 3] |= 0x80 >> (sector & 7)
            data[sector * SECTOR : (sector + 1) * SECTOR] = payload
        if not differencing:
            bitmap = bytearray(b"\xff" * bm)
        body += bitmap + data

    header_values = dict(
        cookie=DYNAMIC_COOKIE,
        data_offset=NO_DATA_OFFSET,
        table_offset=table_offset,
        header_version=VHD_VERSION,
        max_table_entries=entries,
        block_size=bs,
        checksum=0,
        parent_unique_id=spec.parent_unique_id,
        parent_timestamp=0,
        reserved1=0,
        parent_unicode_name=spec.parent_name.encode("utf-16-be").ljust(512, b"\x00"),
        parent_locators=locators,
        reserved2=bytes(256),
    )
    raw_header = DYNAMIC_HEADER.build(header_values)
    header_values["checksum"] = checksum(raw_header, HEADER_CHECKSUM_OFFSET)
    raw_header = DYNAMIC_HEADER.build(header_values)

    unique_id = spec.unique_id or uuid.uuid4().bytes
    footer = footer_bytes(
        disk_type=DISK_DIFFERENCING if differencing else DISK_DYNAMIC, size=spec.size, unique_id=unique_id
    )
    image = bytearray(footer + raw_header)
    for at, blob in blobs:
        image[len(image) : at] = bytes(at - len(image))
        image += blob.ljust(-(-len(blob) // SECTOR) * SECTOR, b"\x00")
    image[len(image) : table_offset] = bytes(table_offset - len(image))
    image += b"".join(entry.to_bytes(4, "big") for entry in bat).ljust(bat_bytes, b"\xff")
    image += body + footer
    with open(path, "wb") as fh:
        fh.write(image)
    return unique_id


def write_child(
    path: str | os.PathLike[str],
    parent: str | os.PathLike[str],
    sectors: dict[int, bytes],
    *,
    relative: str | None = "default",
    absolute: str | None = None,
    parent_unique_id: bytes | None = None,
    block_size: int = 2 * 1024 * 1024,
) -> bytes:
    """A differencing child of the VHD ``parent`` holding ``sectors``; locators default to the parent's name."""
    footer = parse_footer(parent)
    name = os.path.basename(os.fspath(parent))
    spec = DiffSpec(
        size=footer.current_size,
        block_size=block_size,
        sectors=sectors,
        parent_unique_id=footer.unique_id if parent_unique_id is None else parent_unique_id,
        relative=(".\\" + name) if relative == "default" else relative,
        absolute=absolute,
        parent_name=name,
    )
    return write_vhd(path, spec, differencing=True)
