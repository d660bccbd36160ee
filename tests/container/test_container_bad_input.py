"""Bad input: each damaged file raises the library's own error class, with a message naming the problem."""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
import vhdwriter
from construct import Container as CStruct

from azvhdaudit.container import open_container
from azvhdaudit.container.vhd_structs import (
    DYNAMIC_HEADER,
    FOOTER,
    FOOTER_CHECKSUM_OFFSET,
    HEADER_CHECKSUM_OFFSET,
    checksum,
)
from azvhdaudit.errors import (
    AuditError,
    CorruptImageError,
    ParentError,
    SpecialFileError,
    TruncatedImageError,
    UnsupportedFormatError,
)

Damage = Callable[[Path], None]


def truncate_to(size: int | Callable[[int], int]) -> Damage:
    def damage(path: Path) -> None:
        with open(path, "r+b") as fh:
            fh.truncate(size(path.stat().st_size) if callable(size) else size)

    return damage


def write(offset: int | Callable[[int], int], value: bytes) -> Damage:
    def damage(path: Path) -> None:
        at = offset(path.stat().st_size) if callable(offset) else offset
        with open(path, "r+b") as fh:
            fh.seek(at)
            fh.write(value)

    return damage


def footer_field(field: str, value: object, *, fix_checksum: bool = True, copy_too: bool = True) -> Damage:
    """Change a field of the footer at the end (and the copy at 0 of a dynamic disk)."""

    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        footer: CStruct = FOOTER.parse(bytes(data[-512:]))
        footer[field] = value
        raw = FOOTER.build(footer)
        if fix_checksum:
            footer["checksum"] = checksum(raw, FOOTER_CHECKSUM_OFFSET)
            raw = FOOTER.build(footer)
        data[-512:] = raw
        if copy_too and data[:8] == b"conectix":
            data[:512] = raw
        path.write_bytes(bytes(data))

    return damage


def header_field(field: str, value: object, *, fix_checksum: bool = True) -> Damage:
    """Change a field of the dynamic header (at offset 512 in qemu-img's files)."""

    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        header: CStruct = DYNAMIC_HEADER.parse(bytes(data[512:1536]))
        header[field] = value
        raw = DYNAMIC_HEADER.build(header)
        if fix_checksum:
            header["checksum"] = checksum(raw, HEADER_CHECKSUM_OFFSET)
            raw = DYNAMIC_HEADER.build(header)
        data[512:1536] = raw
        path.write_bytes(bytes(data))

    return damage


def bat_entry(index: int, value: int) -> Damage:
    def damage(path: Path) -> None:
        data = path.read_bytes()
        table = DYNAMIC_HEADER.parse(data[512:1536]).table_offset
        with open(path, "r+b") as fh:
            fh.seek(table + index * 4)
            fh.write(struct.pack(">I", value))

    return damage


def replace_with(content: bytes) -> Damage:
    def damage(path: Path) -> None:
        path.write_bytes(content)

    return damage


# id, source image, damage, error class, words the message must hold, raised at open (else on read)
CASES = [
    ("text file", "raw.img", replace_with(b"hello, world\n" * 50), UnsupportedFormatError, ["not a disk image"], True),
    ("empty file", "raw.img", replace_with(b""), UnsupportedFormatError, ["not a disk image", "empty"], True),
    ("zeros", "raw.img", replace_with(bytes(1 << 20)), UnsupportedFormatError, ["no MBR, GPT, NTFS or FAT"], True),
    # dynamic VHD cut short: only the footer copy at offset 0 is left; the message names the full size
    ("VHD cut in footer", "dynamic.vhd", truncate_to(lambda n: n - 100), TruncatedImageError, ["{size}"], True),
    (
        "VHD cut in header",
        "dynamic.vhd",
        truncate_to(1000),
        TruncatedImageError,
        ["should be at least 2048 bytes", "dynamic"],
        True,
    ),
    ("VHD cut in BAT", "dynamic.vhd", truncate_to(1536 + 8), TruncatedImageError, ["at least"], True),
    ("VHD cut in block", "dynamic.vhd", truncate_to(1 << 20), TruncatedImageError, ["{size}"], True),
    ("VHD cut at sector", "dynamic.vhd", truncate_to(lambda n: n - 512), TruncatedImageError, ["{size}"], True),
    ("fixed VHD cut in footer", "fixed.vhd", truncate_to(lambda n: n - 100), TruncatedImageError, ["cut off"], True),
    (
        "VHD bad cookie",
        "dynamic.vhd",
        write(lambda n: n - 512, b"conectiX"),
        CorruptImageError,
        ["cookie", "b'conectiX'", "expected b'conectix'"],
        True,
    ),
    (
        "VHD footer zeroed",
        "dynamic.vhd",
        write(lambda n: n - 512, bytes(512)),
        CorruptImageError,
        ["not a footer", "offset {footer}", "cookie is b'\\x00"],
        True,
    ),
    (
        "fixed VHD bad cookie",
        "fixed.vhd",
        write(lambda n: n - 512, b"XXXXXXXX"),
        CorruptImageError,
        ["cookie", "b'XXXXXXXX'"],
        True,
    ),
    (
        "VHD bad checksum",
        "fixed.vhd",
        footer_field("checksum", 0x12345678, fix_checksum=False),
        CorruptImageError,
        ["checksum is 0x12345678", "offset {footer}"],
        True,
    ),
    (
        "VHD bad version",
        "fixed.vhd",
        footer_field("version", 0x00020000),
        CorruptImageError,
        ["version is 0x00020000"],
        True,
    ),
    ("VHD bad disk type", "fixed.vhd", footer_field("disk_type", 7), CorruptImageError, ["disk_type is 7"], True),
    (
        "VHD size 2^63",
        "dynamic.vhd",
        footer_field("current_size", 2**63),
        CorruptImageError,
        [f"current_size is {2**63}"],
        True,
    ),
    (
        "fixed VHD larger than file",
        "fixed.vhd",
        footer_field("current_size", 16 << 20),
        TruncatedImageError,
        [f"virtual size {16 << 20}"],
        True,
    ),
    (
        "VHD header bad cookie",
        "dynamic.vhd",
        header_field("cookie", b"cxsparsX"),
        CorruptImageError,
        ["dynamic header at offset 512", "b'cxsparsX'"],
        True,
    ),
    (
        "VHD header bad checksum",
        "dynamic.vhd",
        header_field("checksum", 1, fix_checksum=False),
        CorruptImageError,
        ["dynamic header at offset 512", "checksum is 0x00000001"],
        True,
    ),
    (
        "VHD block size 0",
        "dynamic.vhd",
        header_field("block_size", 0),
        CorruptImageError,
        ["block_size is 0"],
        True,
    ),
    (
        "VHD block size 3 MiB",
        "dynamic.vhd",
        header_field("block_size", 3 << 20),
        CorruptImageError,
        [f"block_size is {3 << 20}"],
        True,
    ),
    (
        "VHD too few BAT entries",
        "dynamic.vhd",
        header_field("max_table_entries", 1),
        CorruptImageError,
        ["max_table_entries is 1", "needs 5"],
        True,
    ),
    (
        "VHD BAT past end",
        "dynamic.vhd",
        header_field("table_offset", 1 << 30),
        CorruptImageError,
        [f"table_offset is {1 << 30}"],
        True,
    ),
    (
        "VHD BAT entry past end",
        "dynamic.vhd",
        bat_entry(0, 0x00F00000),
        CorruptImageError,
        ["block 0", "0x00f00000", "{size}"],
        False,
    ),
    (
        "VHD BAT entry into headers",
        "dynamic.vhd",
        bat_entry(0, 0x3),
        CorruptImageError,
        ["block 0", "0x00000003", "inside the headers"],
        False,
    ),
]


@pytest.mark.parametrize(
    ("source", "damage", "error", "words", "at_open"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_bad_input(
    copy_of,  # type: ignore[no-untyped-def]
    source: str,
    damage: Damage,
    error: type[AuditError],
    words: list[str],
    at_open: bool,
) -> None:
    path = copy_of(source, "damaged.img")
    size = path.stat().st_size
    damage(path)
    with pytest.raises(error) as err:
        with open_container(path) as disk:
            assert not at_open, "opened without an error"
            disk.read()
    assert type(err.value) is error
    message = str(err.value)
    assert str(path) in message
    for word in words:
        word = word.format(size=size, footer=size - 512)
        assert word in message, f"{word!r} not in {message!r}"


def test_truncated_error_is_also_eof_error(copy_of) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhd")
    truncate_to(4096)(path)
    with pytest.raises(EOFError):
        open_container(path)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="is a directory"):
        open_container(tmp_path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_container(tmp_path / "nothing.vhd")


def test_no_foreign_exception_escapes_on_random_damage(copy_of) -> None:  # type: ignore[no-untyped-def]
    """Flip bytes through the structures of a dynamic VHD and VHDX: only AuditError (or success)."""
    for source, offsets in (
        ("dynamic.vhd", range(0, 2048, 61)),
        ("dynamic.vhdx", [*range(64 * 1024, 64 * 1024 + 200, 13), *range(3 << 20, (3 << 20) + 400, 17)]),
    ):
        for offset in offsets:
            path = copy_of(source, f"flip-{offset}.img")
            with open(path, "r+b") as fh:
                fh.seek(offset)
                byte = fh.read(1)
                fh.seek(offset)
                fh.write(bytes([byte[0] ^ 0xFF]))
            try:
                with open_container(path) as disk:
                    disk.read(1 << 20)
            except AuditError:
                pass
            os.unlink(path)


# --- special files: only regular files and block devices are opened -------------------------------------


def test_fifo_as_the_image_is_refused_without_blocking(tmp_path: Path) -> None:
    """``open()`` on a FIFO waits for a writer; the type is checked first, so this returns at once."""
    fifo = tmp_path / "x.vhd"
    os.mkfifo(fifo)
    with pytest.raises(SpecialFileError, match=r"x\.vhd: .*is a FIFO \(named pipe\)") as caught:
        open_container(fifo)
    assert isinstance(caught.value, UnsupportedFormatError)


def test_character_device_as_the_image_is_refused() -> None:
    with pytest.raises(SpecialFileError, match="/dev/zero: .*is a character device"):
        open_container("/dev/zero")


def test_unix_socket_as_the_image_is_refused(tmp_path: Path) -> None:
    import socket

    path = tmp_path / "s.vhd"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(SpecialFileError, match="is a socket"):
            open_container(path)


def test_fifo_where_the_parent_should_be(images: dict[str, Path], tmp_path: Path) -> None:
    """A child beside a FIFO carrying its parent's name: a ParentError naming the FIFO, not a hang."""
    parent = tmp_path / "parent.vhd"
    shutil.copyfile(images["dynamic.vhd"], parent)
    child = tmp_path / "child.vhd"
    vhdwriter.write_child(child, parent, {0: b"\x55" * 512})
    with open_container(child) as disk:  # the intact pair opens
        assert disk.facts.parents[0].path == str(parent)
    parent.unlink()
    os.mkfifo(parent)
    with pytest.raises(ParentError, match=r"child\.vhd: parent .*parent\.vhd: .*is a FIFO"):
        open_container(child)


def test_locator_naming_a_character_device(images: dict[str, Path], tmp_path: Path) -> None:
    parent = tmp_path / "parent.vhd"
    shutil.copyfile(images["dynamic.vhd"], parent)
    child = tmp_path / "child.vhd"
    vhdwriter.write_child(child, parent, {0: b"\x55" * 512}, relative="/dev/zero", absolute="/dev/zero")
    with pytest.raises(ParentError, match="/dev/zero: .*is a character device"):
        open_container(child)


def test_vmdk_extent_that_is_a_fifo(images: dict[str, Path], tmp_path: Path) -> None:
    """A VMDK descriptor's flat extent replaced by a FIFO of the same name: refused, not waited on."""
    descriptor = tmp_path / "flat.vmdk"
    shutil.copyfile(images["flat.vmdk"], descriptor)
    os.mkfifo(tmp_path / "flat-flat.vmdk")
    with pytest.raises(SpecialFileError, match=r"flat-flat\.vmdk: .*is a FIFO"):
        open_container(descriptor)


def test_a_file_swapped_for_a_fifo_after_the_check_is_caught_on_the_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race: the path is a regular file when checked and a FIFO when opened. O_NONBLOCK keeps the open
    from waiting, and the check on the opened descriptor refuses it."""
    from azvhdaudit import localfiles

    fifo = tmp_path / "swap.vhd"
    os.mkfifo(fifo)
    real_stat = os.stat

    def lying_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        result = real_stat(path, *args, **kwargs)  # type: ignore[arg-type]
        if os.fspath(path) == str(fifo):  # type: ignore[call-overload]
            return os.stat_result((0o100644, *tuple(result)[1:]))
        return result

    monkeypatch.setattr(localfiles.os, "stat", lying_stat)
    with pytest.raises(SpecialFileError, match="is a FIFO"):
        open_container(fifo)


# --- our own errors are not taken for a corrupt image ------------------------------------------------------


def test_a_bug_in_our_vmdk_code_is_not_reported_as_a_corrupt_image(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the calls into dissect.hypervisor are wrapped: a TypeError of this package's own descriptor code
    reaches the caller as itself (it used to read "VMDK image cannot be opened")."""
    from azvhdaudit.container.other import HypervisorLayer

    with open_container(images["flat.vmdk"]) as disk:  # the intact descriptor opens
        assert disk.facts.format == "vmdk"

    def broken(self: object, open_extent: object) -> None:
        raise TypeError("a bug of ours")

    monkeypatch.setattr(HypervisorLayer, "_open_descriptor", broken)
    with pytest.raises(TypeError, match="a bug of ours"):
        open_container(images["flat.vmdk"])


def test_a_bug_in_our_extent_reads_is_not_reported_as_a_corrupt_image(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from azvhdaudit.container.other import HypervisorLayer

    def broken(self: object, offset: int, length: int) -> bytes:
        raise TypeError("a bug of ours")

    with open_container(images["flat.vmdk"]) as disk:
        monkeypatch.setattr(HypervisorLayer, "_read_extents", broken)
        with pytest.raises(TypeError, match="a bug of ours"):
            disk.read(512)


def test_an_error_inside_dissect_is_still_a_corrupt_image(
    images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side: what dissect raises while reading an extent is the library's CorruptImageError."""
    from dissect.hypervisor.disk.vmdk import RawDisk

    def failing(self: object, sector: int, count: int) -> bytes:
        raise ValueError("dissect could not read this")

    with open_container(images["flat.vmdk"]) as disk:
        monkeypatch.setattr(RawDisk, "read_sectors", failing)
        with pytest.raises(
            CorruptImageError,
            match=r"VMDK read of 512 bytes at virtual offset 0 failed: "
            r"ValueError: dissect could not read this",
        ):
            disk.read(512)
