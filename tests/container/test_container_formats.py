"""Every format qemu-img writes reads back byte for byte as the raw disk it came from."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

import pytest
from container_samples import PATTERN_LENGTH, PATTERN_OFFSETS, RAW_SIZE, pattern

from azvhdaudit.container import Container, open_container
from azvhdaudit.errors import CorruptImageError, UnsupportedFormatError

# name, format, subtype, virtual size (None: the raw size)
FORMATS = [
    ("raw.img", "raw", None, RAW_SIZE),
    ("fixed.vhd", "vhd", "fixed", RAW_SIZE),
    # without force_size qemu-img rounds the size up to what the CHS geometry can address
    ("fixed-chs.vhd", "vhd", "fixed", 8390656),
    ("dynamic.vhd", "vhd", "dynamic", 8390656),
    ("dynamic.vhdx", "vhdx", "dynamic", RAW_SIZE),
    ("fixed.vhdx", "vhdx", "fixed", RAW_SIZE),
    ("disk.vmdk", "vmdk", "dynamic", RAW_SIZE),
    ("disk.qcow2", "qcow2", "dynamic", RAW_SIZE),
]
NAMES = [row[0] for row in FORMATS]


@pytest.mark.parametrize(("name", "fmt", "subtype", "size"), FORMATS)
def test_detects_format_and_size(images: dict[str, Path], name: str, fmt: str, subtype: str | None, size: int) -> None:
    with open_container(images[name]) as disk:
        assert isinstance(disk, Container)
        assert disk.facts.format == fmt
        assert disk.facts.subtype == subtype
        assert disk.size == disk.facts.virtual_size == size
        assert disk.facts.file_size == images[name].stat().st_size
        assert disk.path == str(images[name])
        assert disk.chain == [str(images[name])]
        assert disk.facts.parents == ()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("offset", PATTERN_OFFSETS)
def test_pattern_reads_back(images: dict[str, Path], name: str, offset: int) -> None:
    with open_container(images[name]) as disk:
        disk.seek(offset)
        assert disk.read(PATTERN_LENGTH) == pattern(offset)


@pytest.mark.parametrize("name", NAMES)
def test_whole_disk_equals_raw(images: dict[str, Path], raw_bytes: bytes, name: str) -> None:
    with open_container(images[name]) as disk:
        data = disk.read()
    assert len(data) == disk.size
    assert data[:RAW_SIZE] == raw_bytes
    assert data[RAW_SIZE:] == bytes(len(data) - RAW_SIZE)


@pytest.mark.parametrize("name", NAMES)
def test_stream_interface(images: dict[str, Path], raw_bytes: bytes, name: str) -> None:
    with open_container(images[name]) as disk:
        assert disk.readable() and disk.seekable() and not disk.writable()
        assert disk.seek(-512, io.SEEK_END) == disk.size - 512
        assert disk.tell() == disk.size - 512
        disk.seek(0x1FFF00)
        buffer = bytearray(0x200)
        assert disk.readinto(buffer) == 0x200
        assert bytes(buffer) == raw_bytes[0x1FFF00:0x200100]
        assert disk.seek(16, io.SEEK_CUR) == 0x200110
        disk.seek(disk.size + 10)
        assert disk.read(10) == b""
        # reads through io.BufferedReader work too
        buffered = io.BufferedReader(disk)
        buffered.seek(0x1000)
        assert buffered.read(PATTERN_LENGTH) == pattern(0x1000)
    assert disk.closed
    with pytest.raises(ValueError):
        disk.read(1)


@pytest.mark.parametrize("name", NAMES)
def test_stats_count_underlying_reads(images: dict[str, Path], name: str) -> None:
    with open_container(images[name]) as disk:
        opened = disk.stats.bytes_read
        calls = disk.stats.read_calls
        assert 0 < opened < 256 * 1024
        disk.seek(0x300000)
        disk.read(PATTERN_LENGTH)
        assert disk.stats.read_calls > calls
        assert disk.stats.bytes_read > opened


@pytest.mark.parametrize("name", NAMES)
def test_file_object_source_is_left_open(images: dict[str, Path], name: str) -> None:
    with open(images[name], "rb") as fh:
        with open_container(fh) as disk:
            assert disk.path == str(images[name])
            disk.seek(0x1000)
            assert disk.read(PATTERN_LENGTH) == pattern(0x1000)
        assert not fh.closed
        fh.seek(0)  # still usable


def test_file_object_without_name(images: dict[str, Path]) -> None:
    stream = io.BytesIO(images["dynamic.vhdx"].read_bytes())
    with open_container(stream) as disk:
        assert disk.path == "<stream>"
        assert disk.facts.format == "vhdx"
    with open_container(io.BytesIO(stream.getvalue()), name="given.vhdx") as disk:
        assert disk.path == "given.vhdx"


@pytest.mark.parametrize("name", NAMES)
def test_opener_opens_the_image(images: dict[str, Path], name: str) -> None:
    opened: list[str] = []

    def opener(path: str):  # type: ignore[no-untyped-def]
        opened.append(path)
        return open(path, "rb")

    with open_container(str(images[name]), opener=opener) as disk:
        assert disk.read(512)[510:] == b"\x55\xaa"
    assert opened == [str(images[name])]


@pytest.mark.parametrize("name", NAMES)
def test_files_unchanged_and_read_only_copy_opens(tmp_path: Path, images: dict[str, Path], name: str) -> None:
    before = hashlib.sha256(images[name].read_bytes()).hexdigest()
    mtime = images[name].stat().st_mtime_ns
    copy = tmp_path / name
    shutil.copyfile(images[name], copy)
    os.chmod(copy, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    with open_container(copy) as disk:
        disk.read()
    with open_container(images[name]) as disk:
        disk.read()
    assert hashlib.sha256(images[name].read_bytes()).hexdigest() == before
    assert images[name].stat().st_mtime_ns == mtime
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before


def test_close_closes_every_file_it_opened(images: dict[str, Path]) -> None:
    handles: list[io.BufferedReader] = []

    def opener(path: str):  # type: ignore[no-untyped-def]
        fh = open(path, "rb")
        handles.append(fh)
        return fh

    disk = open_container(str(images["dynamic.vhdx"]), opener=opener)
    assert handles and not handles[0].closed
    disk.close()
    assert all(fh.closed for fh in handles)
    disk.close()  # twice is fine


# --- VMDK text descriptors -----------------------------------------------------------------

DESCRIPTORS = [("flat.vmdk", "fixed", "flat-flat.vmdk"), ("split.vmdk", "dynamic", "split-s001.vmdk")]


@pytest.mark.parametrize(("name", "subtype", "extent"), DESCRIPTORS)
def test_vmdk_descriptor_reads_its_extents(
    images: dict[str, Path], raw_bytes: bytes, name: str, subtype: str, extent: str
) -> None:
    handles: list[io.BufferedReader] = []

    def opener(path: str):  # type: ignore[no-untyped-def]
        fh = open(path, "rb")
        handles.append(fh)
        return fh

    disk = open_container(str(images[name]), opener=opener)
    with disk:
        assert (disk.facts.format, disk.facts.subtype) == ("vmdk", subtype)
        assert disk.chain == [str(images[name]), str(images[name].parent / extent)]
        for offset in PATTERN_OFFSETS:
            disk.seek(offset)
            assert disk.read(PATTERN_LENGTH) == pattern(offset)
        disk.seek(0)
        assert disk.read() == raw_bytes
    assert len(handles) == 2 and all(fh.closed for fh in handles)


@pytest.mark.parametrize(("name", "subtype", "extent"), DESCRIPTORS)
def test_vmdk_descriptor_missing_extent(
    tmp_path: Path, images: dict[str, Path], name: str, subtype: str, extent: str
) -> None:
    shutil.copyfile(images[name], tmp_path / name)
    with pytest.raises(CorruptImageError) as err:
        open_container(tmp_path / name)
    assert str(tmp_path / extent) in str(err.value) and "cannot be opened" in str(err.value)


def test_vmdk_descriptor_stream_needs_a_path(images: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedFormatError, match="open it by path"):
        open_container(io.BytesIO(images["flat.vmdk"].read_bytes()))


def test_name_relabels_a_path_source(images: dict[str, Path]) -> None:
    with open_container(images["dynamic.vhdx"], name="label.vhdx") as disk:
        assert disk.path == disk.facts.path == "label.vhdx"
        assert disk.chain == [str(images["dynamic.vhdx"])]


def test_missing_and_unreadable_image_files_are_library_errors(tmp_path: Path) -> None:
    from azvhdaudit.errors import ImageError, ImageNotFoundError

    missing = tmp_path / "nope.vhd"
    with pytest.raises(ImageNotFoundError) as info:
        open_container(missing)
    assert isinstance(info.value, FileNotFoundError) and str(missing) in str(info.value)
    locked = tmp_path / "locked.vhd"
    locked.write_bytes(b"\x00" * 1024)
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: show the error on an opener that refuses instead

        def refuse(path: str) -> BinaryIO:
            raise PermissionError(13, "Permission denied", path)

        with pytest.raises(ImageError, match="cannot be opened for reading"):
            open_container(str(locked), opener=refuse)
    else:
        with pytest.raises(ImageError, match="cannot be opened for reading"):
            open_container(locked)
