"""The plain-GPT path of azvhdaudit.volumes lists what dissect.volume's Disk lists, reading the array once.

Each disk is read both ways and the partitions compared field by field; disks dissect reads some other way
(a hybrid MBR, a header elsewhere than LBA 1, a BSD disklabel type, a short array) are left to it.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from diskbuild import MiB, gpt_disk, require_tools
from dissect.volume.disk import Disk

from azvhdaudit.volumes import _plain_gpt_partitions


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)


@pytest.fixture(scope="module")
def gpt(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    require_tools()
    path = gpt_disk(
        tmp_path_factory.mktemp("layout") / "gpt.raw",
        64 * MiB,
        [(1, 34, "EF00"), (35, 16, "0C01"), (51, 8, "0700"), (59, 4, "2700")],
    )
    return path.read_bytes()


def _fields(part: Any) -> tuple[Any, ...]:
    raw = part.raw.dumps() if part.raw is not None else None
    return (
        part.number,
        part.offset,
        part.size,
        part.type,
        part.name,
        part.flags,
        part.guid,
        part.type_str,
        part.type_name,
        raw,
    )


def _both(data: bytes) -> tuple[list[tuple[Any, ...]] | None, list[tuple[Any, ...]]]:
    ours = _plain_gpt_partitions(io.BytesIO(data), data[:512], 512)
    theirs = Disk(io.BytesIO(data), sector_size=512).partitions
    return ([_fields(p) for p in ours] if ours is not None else None), [_fields(p) for p in theirs]


def _set_mbr_entry(data: bytearray, index: int, kind: int, start: int, sectors: int) -> None:
    struct.pack_into("<B3xB3xII", data, 0x1BE + 16 * index, 0, kind, start, sectors)


def test_a_gpt_disk_lists_as_in_dissect(gpt: bytes) -> None:
    ours, theirs = _both(gpt)
    assert ours is not None and len(ours) == 4
    assert ours == theirs


def test_the_array_is_read_at_once(gpt: bytes) -> None:
    reader = CountingReader(gpt)
    assert _plain_gpt_partitions(reader, gpt[:512], 512) is not None
    assert reader.reads == 2  # the header, the array


def test_names_and_attributes_as_in_dissect(gpt: bytes) -> None:
    data = bytearray(gpt)
    array = struct.unpack_from("<Q", data, 512 + 72)[0] * 512
    entry = array + 128  # the second entry
    data[entry + 56 : entry + 128] = ("Reserved\uffff\x00junk".encode("utf-16-le") + b"\xff\xd8").ljust(72, b"\x00")
    struct.pack_into("<Q", data, entry + 48, 0x8000000000000001)
    ours, theirs = _both(bytes(data))
    assert ours is not None and ours == theirs


@pytest.mark.parametrize(
    "case", ["hybrid", "header-elsewhere", "bsd-type", "extended", "vbr-signature", "short-array", "no-signature"]
)
def test_other_disks_are_left_to_dissect(gpt: bytes, case: str) -> None:
    data = bytearray(gpt)
    if case == "hybrid":
        _set_mbr_entry(data, 1, 0x07, 2048, 2048)
    elif case == "header-elsewhere":
        struct.pack_into("<I", data, 0x1BE + 8, 2)
    elif case == "bsd-type":
        array = struct.unpack_from("<Q", data, 512 + 72)[0] * 512
        data[array + 128 : array + 144] = bytes.fromhex("b47c6e51cf6ed6118ff800022d09712b")
    elif case == "extended":
        _set_mbr_entry(data, 1, 0x05, 2048, 2048)
    elif case == "vbr-signature":
        data[3:11] = b"MSWIN4.1"
    elif case == "short-array":
        data = data[: 512 * 3]
    else:
        data[512:520] = b"NOT GPT!"
    if case == "hybrid":
        ours, theirs = _both(bytes(data))
        assert ours == theirs  # a hybrid MBR entry is listed as dissect lists it
        assert any(isinstance(f[3], int) for f in ours)
        return
    assert _plain_gpt_partitions(io.BytesIO(bytes(data)), bytes(data[:512]), 512) is None


def test_a_crc_is_not_what_decides(gpt: bytes) -> None:
    """dissect.volume does not check the header or array CRCs; neither does the plain path."""
    data = bytearray(gpt)
    struct.pack_into("<I", data, 512 + 16, zlib.crc32(b"wrong"))
    ours, theirs = _both(bytes(data))
    assert ours is not None and ours == theirs


def test_a_disk_without_a_protective_entry_is_not_plain(gpt: bytes) -> None:
    data = bytearray(gpt)
    _set_mbr_entry(data, 0, 0x07, 1, 2048)
    assert _plain_gpt_partitions(io.BytesIO(bytes(data)), bytes(data[:512]), 512) is None


def test_the_partitions_open_the_same_volumes(gpt: bytes, tmp_path: Path) -> None:
    from azvhdaudit.volumes import read_layout

    image = tmp_path / "gpt.raw"
    image.write_bytes(gpt)
    with open(image, "rb") as fh:
        layout = read_layout(fh, "gpt.raw", len(gpt), 512)
    assert [p.index for p in layout.partitions] == [0, 1, 2, 3]
    assert [p.size // MiB for p in layout.partitions] == [34, 16, 8, 4]
