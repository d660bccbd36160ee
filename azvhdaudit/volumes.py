"""Partitions of a virtual disk: MBR and GPT, read with dissect.volume and checked before trusting.

References: UEFI 2.10 §5.3 (GPT header and partition entries); the classic MBR layout (four 16-byte entries
at 0x1BE, disk signature at 0x1B8, 0x55AA at 0x1FE).

dissect.volume reports a GPT partition's size one sector short (``last_lba - first_lba``; the range is
inclusive), and walks as many entries as the header claims; both are corrected here, and every entry is
checked against the disk size before a file system is opened on it.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import BinaryIO
from uuid import UUID

from dissect.volume.disk import Disk
from dissect.volume.exceptions import Error as DissectVolumeError

from azvhdaudit.errors import NoPartitionTableError, VolumeError
from azvhdaudit.facts import PartitionFacts

__all__ = ["DiskLayout", "read_layout", "probe_filesystem", "ESP_TYPE", "MSR_TYPE", "BASIC_DATA_TYPE"]

log = logging.getLogger(__name__)

ESP_TYPE = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
MSR_TYPE = "e3c9e316-0b5c-4db8-817d-f92df00215ae"
BASIC_DATA_TYPE = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"
RECOVERY_TYPE = "de94bba4-06d1-4d40-a16a-bfd50179d6ac"

_GPT_NAMES = {
    ESP_TYPE: "EFI System",
    MSR_TYPE: "Microsoft reserved",
    BASIC_DATA_TYPE: "Basic data",
    RECOVERY_TYPE: "Windows Recovery Environment",
}
_MBR_NAMES = {
    0x07: "NTFS/exFAT",
    0x27: "Windows RE (hidden NTFS)",
    0x0B: "FAT32 (CHS)",
    0x0C: "FAT32 (LBA)",
    0x0E: "FAT16 (LBA)",
    0x06: "FAT16",
    0xEF: "EFI System",
    0xEE: "GPT protective",
    0x05: "Extended",
    0x0F: "Extended (LBA)",
    0x42: "Windows dynamic disk",
}

#: more entries than any real GPT holds; a header claiming more is hostile or corrupt
_MAX_GPT_ENTRIES = 1024


@dataclass
class DiskLayout:
    """The partition style and partitions of one disk."""

    style: str  # "mbr", "gpt" or "none"
    partitions: list[PartitionFacts]
    mbr_disk_signature: int | None = None
    gpt_disk_guid: str | None = None


def probe_filesystem(first_sector: bytes) -> str:
    """``ntfs``, ``bitlocker``, ``fat`` or ``unknown`` from a volume's first sector."""
    if first_sector[3:11] == b"NTFS    ":
        return "ntfs"
    if first_sector[3:11] == b"-FVE-FS-":
        return "bitlocker"
    if first_sector[82:90] == b"FAT32   " or first_sector[54:59] in (b"FAT12", b"FAT16", b"FAT  "):
        return "fat"
    if first_sector[3:11] == b"EXFAT   ":
        return "exfat"
    return "unknown"


def _read_at(stream: BinaryIO, offset: int, length: int) -> bytes:
    stream.seek(offset)
    return stream.read(length)


def _check_gpt_header(stream: BinaryIO, name: str, disk_size: int, sector_size: int) -> None:
    header = _read_at(stream, sector_size, 92)
    if header[:8] != b"EFI PART":
        raise NoPartitionTableError(
            f"{name}: protective MBR (type 0xEE) but no GPT header at offset {sector_size}: "
            f"signature {header[:8]!r}, expected b'EFI PART'"
        )
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if count > _MAX_GPT_ENTRIES or entry_size < 128 or entry_size % 8 or entry_size > 4096:
        raise VolumeError(
            f"{name}: GPT header at offset {sector_size} is corrupt: {count} partition entries of "
            f"{entry_size} bytes (expected at most {_MAX_GPT_ENTRIES} entries of 128 bytes or more)"
        )
    if entries_lba * sector_size + count * entry_size > disk_size:
        raise VolumeError(
            f"{name}: GPT partition entry array at LBA {entries_lba} ({count} x {entry_size} bytes) "
            f"extends past the end of the disk ({disk_size} bytes)"
        )


def read_layout(stream: BinaryIO, name: str, disk_size: int, sector_size: int = 512) -> DiskLayout:
    """Read the partition table of the disk in ``stream`` (``name`` is used in messages).

    A disk whose first sector is itself an NTFS/FAT boot sector is a bare volume (style ``none``).
    """
    first = _read_at(stream, 0, 512)
    if len(first) < 512:
        raise NoPartitionTableError(f"{name}: the disk is {disk_size} bytes, too small for a partition table")
    bare = probe_filesystem(first)
    if bare in ("ntfs", "bitlocker", "fat"):
        part = PartitionFacts(
            index=0, scheme="none", offset=0, size=disk_size, type_id="", type_name="whole disk",
            filesystem=bare, encrypted=bare == "bitlocker",
        )
        return DiskLayout(style="none", partitions=[part])
    if first[510:512] != b"\x55\xaa":
        raise NoPartitionTableError(
            f"{name}: no partition table: the first sector ends in {first[510:512].hex()} (expected 55aa), "
            "and it is not an NTFS or FAT boot sector"
        )
    mbr_types = [first[0x1BE + 16 * i + 4] for i in range(4)]
    is_gpt = 0xEE in mbr_types
    if is_gpt:
        _check_gpt_header(stream, name, disk_size, sector_size)

    try:
        stream.seek(0)
        disk = Disk(stream, sector_size=sector_size)
    except (DissectVolumeError, EOFError, ValueError, struct.error) as err:
        raise NoPartitionTableError(f"{name}: cannot read the partition table: {err}") from err

    style = "gpt" if is_gpt else "mbr"
    parts: list[PartitionFacts] = []
    for number, part in enumerate(disk.partitions, start=1):
        if is_gpt:
            raw = part.raw
            # dissect lists the protective MBR entry (no raw) and a hybrid MBR's entries (an MBR raw entry,
            # an int type) beside the GPT entries; only GPT entries describe the disk
            if raw is None or isinstance(part.type, int):
                continue
            size = (raw.last_lba - raw.first_lba + 1) * sector_size
            type_id = str(part.type).lower()
            type_name = _GPT_NAMES.get(type_id, part.type_name or "unknown")
            guid = str(part.guid).lower() if part.guid else None
            bootable = type_id == ESP_TYPE
            pname = part.name or None
        else:
            if part.type in (0x00, 0x05, 0x0F):
                continue
            size = part.size
            type_id = f"0x{part.type:02X}"
            type_name = _MBR_NAMES.get(part.type, part.type_name or "unknown")
            guid = None
            bootable = bool(part.raw is not None and getattr(part.raw, "bootable", 0) == 0x80)
            pname = None
        offset = part.offset
        if size <= 0 or offset < sector_size or offset + size > disk_size:
            raise VolumeError(
                f"{name}: partition {number} (offset {offset}, size {size}) lies outside the disk "
                f"({disk_size} bytes)"
            )
        fs = probe_filesystem(_read_at(stream, offset, 512))
        parts.append(
            PartitionFacts(
                index=len(parts), scheme=style, offset=offset, size=size, type_id=type_id,
                type_name=type_name, name=pname, guid=guid, bootable=bootable, filesystem=fs,
                encrypted=fs == "bitlocker",
            )
        )
    ordered = sorted(parts, key=lambda p: p.offset)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.offset + a.size > b.offset:
            raise VolumeError(
                f"{name}: partitions overlap: one at offset {a.offset} (size {a.size}) and one at offset "
                f"{b.offset}"
            )
    signature = int.from_bytes(first[0x1B8:0x1BC], "little") if not is_gpt else None
    disk_guid = None
    if is_gpt:
        disk_guid = str(UUID(bytes_le=_read_at(stream, sector_size + 56, 16))).lower()
    return DiskLayout(style=style, partitions=parts, mbr_disk_signature=signature, gpt_disk_guid=disk_guid)
