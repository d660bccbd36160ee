"""Partition tables read by azvhdaudit.volumes, on disks made by sfdisk/sgdisk/mkntfs/mkfs.fat."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from diskbuild import MiB, gpt_disk, make_fat, make_ntfs, mbr_disk, place, require_tools

from azvhdaudit.errors import AuditError, NoPartitionTableError, VolumeError
from azvhdaudit.volumes import BASIC_DATA_TYPE, ESP_TYPE, MSR_TYPE, read_layout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    require_tools()
    d = tmp_path_factory.mktemp("volumes")
    ntfs = make_ntfs(d / "ntfs.img", 8 * MiB, {"hello.txt": b"hi"})
    fat = make_fat(d / "fat.img", 34 * MiB, {"EFI/Boot/x.txt": b"x"})
    mbr = mbr_disk(d / "mbr.raw", 16 * MiB, [(1, 8, "7", True)])
    place(ntfs, mbr, 1 * MiB)
    gpt = gpt_disk(d / "gpt.raw", 64 * MiB, [(1, 34, "EF00"), (35, 16, "0C01"), (51, 8, "0700")])
    place(fat, gpt, 1 * MiB)
    place(ntfs, gpt, 51 * MiB)
    return {"ntfs": ntfs, "fat": fat, "mbr": mbr, "gpt": gpt}


def layout(path: Path):  # type: ignore[no-untyped-def]
    with open(path, "rb") as fh:
        return read_layout(fh, str(path), os.path.getsize(path))


def test_mbr_layout(built: dict[str, Path]) -> None:
    lay = layout(built["mbr"])
    assert lay.style == "mbr"
    assert lay.mbr_disk_signature == 0x12345678
    (part,) = lay.partitions
    assert (part.offset, part.size, part.type_id, part.bootable, part.filesystem) == (
        1 * MiB,
        8 * MiB,
        "0x07",
        True,
        "ntfs",
    )


def test_gpt_layout_sizes_are_inclusive(built: dict[str, Path]) -> None:
    lay = layout(built["gpt"])
    assert lay.style == "gpt"
    assert lay.gpt_disk_guid == "11111111-2222-3333-4444-555555555555"
    got = [(p.offset // MiB, p.size // MiB, p.type_id, p.filesystem) for p in lay.partitions]
    # dissect.volume alone reports each size one sector short; the layout must not
    assert got == [(1, 34, ESP_TYPE, "fat"), (35, 16, MSR_TYPE, "unknown"), (51, 8, BASIC_DATA_TYPE, "ntfs")]
    assert all(p.size % MiB == 0 for p in lay.partitions)
    assert lay.partitions[2].guid == "00000000-0000-0000-0000-000000000003"


def test_bare_ntfs_volume_is_style_none(built: dict[str, Path]) -> None:
    lay = layout(built["ntfs"])
    assert lay.style == "none"
    assert lay.partitions[0].filesystem == "ntfs" and lay.partitions[0].offset == 0


def patched(src: Path, dst: Path, offset: int, data: bytes) -> Path:
    buf = bytearray(src.read_bytes())
    buf[offset : offset + len(data)] = data
    dst.write_bytes(bytes(buf))
    return dst


def test_bitlocker_volume_is_reported_encrypted(built: dict[str, Path], tmp_path: Path) -> None:
    disk = patched(built["mbr"], tmp_path / "bl.raw", 1 * MiB + 3, b"-FVE-FS-")
    (part,) = layout(disk).partitions
    assert part.filesystem == "bitlocker" and part.encrypted


BAD = [
    # name, base, offset, bytes, error, words in the message
    ("random bytes", None, 0, os.urandom(0), NoPartitionTableError, "no partition table"),
    ("gpt entry count huge", "gpt", 512 + 80, struct.pack("<I", 0xFFFFFFFF), VolumeError, "partition entries"),
    ("gpt entry size zero", "gpt", 512 + 84, struct.pack("<I", 0), VolumeError, "corrupt"),
    ("gpt signature", "gpt", 512, b"EFI JUNK", NoPartitionTableError, "EFI JUNK"),
    ("gpt array past end", "gpt", 512 + 72, struct.pack("<Q", 1 << 40), VolumeError, "past the end"),
    ("mbr partition past end", "mbr", 0x1BE + 12, struct.pack("<I", 0x7FFFFFFF), VolumeError, "outside the disk"),
    ("mbr boot signature", "mbr", 510, b"\x00\x00", NoPartitionTableError, "55aa"),
]


@pytest.mark.parametrize(("name", "base", "offset", "data", "error", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_partition_tables(
    built: dict[str, Path],
    tmp_path: Path,
    name: str,
    base: str | None,
    offset: int,
    data: bytes,
    error: type[AuditError],
    words: str,
) -> None:
    if base is None:
        disk = tmp_path / "junk.raw"
        disk.write_bytes(b"\x5a" * (4 * MiB))
    else:
        disk = patched(built[base], tmp_path / "bad.raw", offset, data)
    with pytest.raises(error) as info:
        layout(disk)
    assert str(disk) in str(info.value)
    assert words.lower() in str(info.value).lower()


def test_overlapping_mbr_partitions(tmp_path: Path) -> None:
    require_tools()
    disk = mbr_disk(tmp_path / "o.raw", 16 * MiB, [(1, 4, "7", False), (6, 4, "7", False)])
    # move the second partition's start into the first one
    patched(disk, disk, 0x1BE + 16 + 8, struct.pack("<I", 3 * 2048))
    with pytest.raises(VolumeError, match="overlap"):
        layout(disk)


def test_tiny_file(tmp_path: Path) -> None:
    disk = tmp_path / "tiny.raw"
    disk.write_bytes(b"\x00" * 100)
    with pytest.raises(NoPartitionTableError, match="too small"):
        layout(disk)
