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
from functools import partial
from typing import BinaryIO
from uuid import UUID

from dissect.volume.disk import Disk
from dissect.volume.disk.partition import Partition
from dissect.volume.disk.schemes.bsd import BSD
from dissect.volume.disk.schemes.gpt import c_gpt
from dissect.volume.disk.schemes.mbr import c_mbr
from dissect.volume.exceptions import Error as DissectVolumeError

from azvhdaudit.batch import gather, is_remote
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


#: what dissect.volume's MBR takes for a volume boot record or a QNX boot sector instead of an MBR
_NOT_MBR = (b"MSDOS", b"MSWIN", b"NTFS", b"FAT", b"EXFAT", b"-FVE-FS-", b"SYSLINUX")
_EXTENDED = (0x05, 0x0F, 0x85)
_GPT_ENTRY_SIZE = len(c_gpt.GPT_PARTITION)
_GPT_HEADER_SIZE = len(c_gpt.GPT_HEADER)


def _plain_gpt_partitions(stream: BinaryIO, first: bytes, sector_size: int) -> list[Partition] | None:
    """``Disk(stream).partitions`` of dissect.volume for a plain GPT disk, or ``None`` for any other.

    dissect reads and decodes every entry of the partition array one by one with cstruct (128 of them,
    ~1.5 ms, on every disk Windows makes); here the array is read at once and only the entries in use are
    decoded, by dissect's own structure. A disk dissect would read any other way (an MBR it takes for a
    boot record, extended partitions, a header elsewhere than LBA 1, an array past the end of the disk, a
    BSD disklabel) is ``None``, for dissect to read.
    """
    if first[0x1FE:0x200] != b"\x55\xaa" or any(v in first[3:11] for v in _NOT_MBR):
        return None
    if first[18:38] == b"Hit Esc for .altboot" or first[168:174] == b"\r\nQNX ":
        return None
    entries = [struct.unpack_from("<B3xB3xII", first, 0x1BE + 16 * i) for i in range(4)]
    used = [(num, e) for num, e in enumerate(entries) if e[1] != 0x00]
    if any(e[1] in _EXTENDED for _, e in used):
        return None
    protective = [e for _, e in used if e[1] == 0xEE]
    if not protective or protective[0][2] != 1:
        return None
    try:
        header = _read_at(stream, sector_size, _GPT_HEADER_SIZE)
        if len(header) < _GPT_HEADER_SIZE or header[:8] != b"EFI PART":
            return None
        array_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
        length = (count - 1) * entry_size + _GPT_ENTRY_SIZE if count else 0
        array = _read_at(stream, array_lba * sector_size, length) if length else b""
    except Exception:
        # Disk() takes any error while reading a GPT for "not a GPT disk" and goes on; it decides here too
        return None
    if len(array) < length:
        return None
    mbr = c_mbr.mbr_s(first) if len(used) > len(protective) else None
    partitions: list[Partition] = []
    seen_gpt = False
    for num, (bootable, kind, start, sectors) in used:
        if kind != 0xEE:
            raw = mbr.part[num] if mbr is not None else None
            partitions.append(
                Partition(
                    disk=None,
                    number=num + 1,
                    offset=start * sector_size,
                    size=sectors * sector_size,
                    type=kind,
                    flags=bootable,
                    raw=raw,
                )
            )
            continue
        if seen_gpt:
            continue
        seen_gpt = True
        for index in range(count):
            at = index * entry_size
            if struct.unpack_from("<Q", array, at + 32)[0] == 0:
                continue
            entry = c_gpt.GPT_PARTITION(array[at : at + _GPT_ENTRY_SIZE])
            label = entry.name.decode("utf-16-le", "ignore").split("\x00")[0].strip("\x00").strip("\uffff")
            partitions.append(
                Partition(
                    disk=None,
                    number=index + 1,
                    offset=entry.first_lba * sector_size,
                    size=(entry.last_lba - entry.first_lba) * sector_size,
                    type=UUID(bytes_le=entry.type_guid),
                    name=label,
                    flags=entry.attribute_flags,
                    guid=UUID(bytes_le=entry.partition_guid),
                    raw=entry,
                )
            )
    if any(p.type in BSD.TYPES for p in partitions):
        return None
    return partitions


#: the most extended boot records followed (a logical partition each; Windows makes far fewer)
MAX_EXTENDED_RECORDS = 256


def _check_extended_chain(stream: BinaryIO, first: bytes, name: str, sector_size: int, disk_size: int) -> None:
    """Walk the extended boot records the way dissect.volume's MBR will, and refuse a walk that does not end.

    dissect.volume follows every extended entry of every boot record recursively, with no record of where it
    has been: an EBR naming itself recurses until Python's recursion limit, and EBRs naming the next one
    twice or more multiply the walk (4 ** depth). Here each EBR may be reached once (a second visit is a loop
    or a shared link), the walk holds at most :data:`MAX_EXTENDED_RECORDS` records, and each must lie inside
    the disk; otherwise :class:`~azvhdaudit.errors.NoPartitionTableError` names the chain.
    """
    seen: dict[int, int] = {}  # EBR offset -> order of visit
    path: list[int] = []

    def walk(sector: bytes, offset: int, ebr_offset: int | None) -> None:
        for index in range(4):
            kind = sector[0x1BE + 16 * index + 4]
            if kind not in _EXTENDED:
                continue
            start = struct.unpack_from("<I", sector, 0x1BE + 16 * index + 8)[0]
            # as dissect.volume computes it: the first EBR from the MBR, the next ones from the first EBR
            if not ebr_offset:
                ebr_offset = offset + start * sector_size
                at = ebr_offset
            else:
                at = ebr_offset + start * sector_size
            chain = " -> ".join(str(o // sector_size) for o in [*path, at])
            if at in seen:
                raise NoPartitionTableError(
                    f"{name}: the extended partition chain loops: the boot record at sector {at // sector_size} "
                    f"is reached again (chain of sectors: {chain})"
                )
            if len(seen) >= MAX_EXTENDED_RECORDS:
                raise NoPartitionTableError(
                    f"{name}: the extended partition chain holds more than {MAX_EXTENDED_RECORDS} boot records"
                )
            if at + 512 > disk_size:
                raise NoPartitionTableError(
                    f"{name}: the extended partition chain leaves the disk: a boot record at sector "
                    f"{at // sector_size}, the disk ends at byte {disk_size} (chain of sectors: {chain})"
                )
            seen[at] = len(seen)
            path.append(at)
            record = _read_at(stream, at, 512)
            if len(record) < 512:
                raise NoPartitionTableError(f"{name}: the extended boot record at sector {at // sector_size} is cut")
            walk(record, at, ebr_offset)
            path.pop()

    if any(first[0x1BE + 16 * i + 4] in _EXTENDED for i in range(4)):
        walk(first, 0, None)


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
            index=0,
            scheme="none",
            offset=0,
            size=disk_size,
            type_id="",
            type_name="whole disk",
            filesystem=bare,
            encrypted=bare == "bitlocker",
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

    found = _plain_gpt_partitions(stream, first, sector_size) if is_gpt else None
    if found is None:
        _check_extended_chain(stream, first, name, sector_size, disk_size)
        try:
            stream.seek(0)
            found = Disk(stream, sector_size=sector_size).partitions
        except (DissectVolumeError, EOFError, ValueError, struct.error) as err:
            raise NoPartitionTableError(f"{name}: cannot read the partition table: {err}") from err

    style = "gpt" if is_gpt else "mbr"
    parts: list[PartitionFacts] = []
    if is_remote(stream):  # the partitions' first sectors, probed below, fetched together
        gather([partial(_read_at, stream, part.offset, 512) for part in found])
    for number, part in enumerate(found, start=1):
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
                f"{name}: partition {number} (offset {offset}, size {size}) lies outside the disk ({disk_size} bytes)"
            )
        fs = probe_filesystem(_read_at(stream, offset, 512))
        parts.append(
            PartitionFacts(
                index=len(parts),
                scheme=style,
                offset=offset,
                size=size,
                type_id=type_id,
                type_name=type_name,
                name=pname,
                guid=guid,
                bootable=bootable,
                filesystem=fs,
                encrypted=fs == "bitlocker",
            )
        )
    ordered = sorted(parts, key=lambda p: p.offset)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if a.offset + a.size > b.offset:
            raise VolumeError(
                f"{name}: partitions overlap: one at offset {a.offset} (size {a.size}) and one at offset {b.offset}"
            )
    signature = int.from_bytes(first[0x1B8:0x1BC], "little") if not is_gpt else None
    disk_guid = None
    if is_gpt:
        disk_guid = str(UUID(bytes_le=_read_at(stream, sector_size + 56, 16))).lower()
    return DiskLayout(style=style, partitions=parts, mbr_disk_signature=signature, gpt_disk_guid=disk_guid)
