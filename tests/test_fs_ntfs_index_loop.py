"""An NTFS directory index whose B-tree points back at a block already on the walk ends in CorruptVolumeError.

dissect.ntfs's Index.search (and the lookup that mirrors it) descends child VCNs with no memory of where it
has been: an INDX block whose end entry names itself as its child looped forever. The volume is made by
mkntfs + ntfs-3g (tests/diskbuild.py) with a directory large enough for INDX blocks; the last block's end
entry is then given the node flag and its own VCN (its free space holds the eight bytes).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from diskbuild import MiB, make_ntfs, require_tools

from azvhdaudit.errors import CorruptVolumeError
from azvhdaudit.fs import NtfsVolume

NAMES = [f"file-{i:04d}-with-a-longer-name.txt" for i in range(400)]


@pytest.fixture(scope="module")
def volume_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools()
    return make_ntfs(tmp_path_factory.mktemp("ntfs") / "v.img", 16 * MiB, {f"big/{n}": b"x" for n in NAMES})


def _fixup(block: bytearray, sector: int = 512) -> None:
    """Undo the update sequence: put the saved bytes back at each sector's end (to edit the block)."""
    usa, count = struct.unpack_from("<HH", block, 4)
    for i in range(1, count):
        block[i * sector - 2 : i * sector] = block[usa + 2 * i : usa + 2 * i + 2]


def _refix(block: bytearray, sector: int = 512) -> None:
    usa, count = struct.unpack_from("<HH", block, 4)
    usn = block[usa : usa + 2]
    for i in range(1, count):
        block[usa + 2 * i : usa + 2 * i + 2] = block[i * sector - 2 : i * sector]
        block[i * sector - 2 : i * sector] = usn


def _last_block(data: bytes) -> tuple[int, int]:
    """(offset, VCN) of the INDX block holding the greatest name of the directory."""
    needle = NAMES[-1].upper().encode("utf-16-le")
    for at in range(0, len(data), 4096):
        if data[at : at + 4] == b"INDX":
            block = bytearray(data[at : at + 4096])
            _fixup(block)
            if needle in bytes(block).upper() or NAMES[-1].encode("utf-16-le") in block:
                return at, struct.unpack_from("<Q", block, 16)[0]
    raise AssertionError("no INDX block holds the last name")


def _loop(data: bytearray) -> None:
    at, vcn = _last_block(bytes(data))
    block = bytearray(data[at : at + 4096])
    _fixup(block)
    first, total, allocated = struct.unpack_from("<III", block, 0x18)
    entry = 0x18 + first
    while True:
        length, flags = struct.unpack_from("<H", block, entry + 8)[0], struct.unpack_from("<H", block, entry + 12)[0]
        if flags & 2:  # INDEX_ENTRY_END
            break
        entry += length
    assert total + 8 <= allocated
    struct.pack_into("<H", block, entry + 8, 24)
    struct.pack_into("<H", block, entry + 12, 3)  # NODE | END
    struct.pack_into("<Q", block, entry + 16, vcn)
    struct.pack_into("<I", block, 0x18 + 4, total + 8)
    struct.pack_into("<I", block, 0x18 + 12, 1)  # the block has children
    _refix(block)
    data[at : at + 4096] = block


def test_intact_directory(volume_image: Path) -> None:
    with open(volume_image, "rb") as fh:
        volume = NtfsVolume(fh, 0, volume_image.stat().st_size, "ntfs")
        assert volume.exists(f"big/{NAMES[-1]}")
        assert not volume.exists("big/zzzz")


def test_index_block_naming_itself_as_its_child(volume_image: Path, tmp_path: Path) -> None:
    data = bytearray(volume_image.read_bytes())
    _loop(data)
    damaged = tmp_path / "loop.img"
    damaged.write_bytes(bytes(data))
    with open(damaged, "rb") as fh:
        volume = NtfsVolume(fh, 0, len(data), "ntfs")
        assert volume.exists("big/" + NAMES[0])  # a name the looping block does not route
        with pytest.raises(
            CorruptVolumeError,
            match=r"^ntfs: the index of directory record \d+ loops: the B-tree "
            r"walk comes back to the block at VCN \d+",
        ):
            volume.exists("big/zzzz")
