"""VHD: footer facts, differencing chains written by tests/container/vhdwriter.py, and parent lookup."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from container_samples import RAW_SIZE
from vhdwriter import DiffSpec, parse_footer, write_child, write_vhd

from azvhdaudit.container import open_container
from azvhdaudit.container.vhd_structs import FOOTER, FOOTER_CHECKSUM_OFFSET, FOOTER_SIZE, checksum, chs_geometry
from azvhdaudit.errors import (
    ParentError,
    ParentLoopError,
    ParentMismatchError,
    ParentNotFoundError,
)

MiB = 1024 * 1024


# --- footer facts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "subtype", "copy_matches", "header_valid", "block_size", "creator"),
    [
        # qemu-img marks a forced size with the creator "qem2" (the size, not the geometry, is exact)
        ("fixed.vhd", "fixed", None, None, None, "qem2"),
        ("fixed-chs.vhd", "fixed", None, None, None, "qemu"),
        ("dynamic.vhd", "dynamic", True, True, 2 * MiB, "qemu"),
    ],
)
def test_qemu_footer_facts(
    images: dict[str, Path],
    name: str,
    subtype: str,
    copy_matches: bool | None,
    header_valid: bool | None,
    block_size: int | None,
    creator: str,
) -> None:
    footer = parse_footer(images[name])
    with open_container(images[name]) as disk:
        facts = disk.facts
    assert facts.subtype == subtype
    assert facts.footer_cookie_valid is True
    assert facts.footer_checksum_valid is True
    assert facts.footer_version == "1.0"
    assert facts.footer_at_end is True
    assert facts.footer_copy_matches is copy_matches
    assert facts.dynamic_header_checksum_valid is header_valid
    assert facts.block_size == block_size
    assert facts.creator_app == creator
    assert facts.creator_host == "Wi2k"
    assert facts.geometry == (footer.cylinders, footer.heads, footer.sectors_per_track)
    assert facts.geometry_size == footer.cylinders * footer.heads * footer.sectors_per_track * 512
    assert facts.original_size == footer.original_size
    assert facts.disk_id == str(uuid.UUID(bytes=footer.unique_id))
    assert facts.warnings == ()


def test_chs_rounded_size_equals_geometry(images: dict[str, Path]) -> None:
    with open_container(images["fixed-chs.vhd"]) as disk:
        assert disk.facts.geometry_size == disk.size
        # qemu-img rounds the size up to the next geometry; the specification's algorithm gives it back
        assert disk.size > RAW_SIZE
        assert disk.facts.geometry == chs_geometry(disk.size)
    with open_container(images["fixed.vhd"]) as disk:
        # force_size keeps the exact size; the geometry no longer describes it
        assert disk.size == RAW_SIZE
        assert disk.facts.geometry_size != disk.size


@pytest.mark.parametrize(
    ("name", "subtype", "creator_version"),
    [("fixed.vhd", "fixed", "10.0"), ("dynamic.vhd", "dynamic", "10.0")],
)
def test_hyperv_vhd(hyperv: dict[str, Path], name: str, subtype: str, creator_version: str) -> None:
    with open_container(hyperv[name]) as disk:
        assert disk.facts.format == "vhd"
        assert disk.facts.subtype == subtype
        assert disk.size == 10 * MiB
        assert disk.facts.creator_app == "win"
        assert disk.facts.creator_host == "Wi2k"
        assert disk.facts.creator_version == creator_version
        assert disk.facts.footer_checksum_valid is True
        sector0 = disk.read(512)
        assert sector0[:4] == bytes.fromhex("33c08ed0")  # the Windows MBR boot code
        assert sector0[510:] == b"\x55\xaa"
        disk.seek(0x200000)
        assert disk.read(512) == b"\xff" * 512  # written there by the test data's author


def test_footer_of_511_bytes(copy_of, raw_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("fixed.vhd")
    data = path.read_bytes()
    path.write_bytes(data[:-1])  # Virtual PC before 2004 wrote the footer without its last (zero) byte
    with open_container(path) as disk:
        assert disk.facts.footer_at_end is True
        assert disk.read() == raw_bytes
        assert any("511 bytes" in warning for warning in disk.facts.warnings)


def test_footer_copy_differs(copy_of, raw_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhd")
    with open(path, "r+b") as fh:
        fh.seek(500)  # reserved bytes of the copy at offset 0
        fh.write(b"\x01")
    with open_container(path) as disk:
        assert disk.facts.footer_copy_matches is False
        assert any("copy at offset 0 differs" in warning for warning in disk.facts.warnings)
        assert disk.read()[:RAW_SIZE] == raw_bytes


def test_bad_end_footer_checksum_falls_back_to_copy(copy_of, raw_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhd")
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size - FOOTER_SIZE + 64)
        fh.write(b"\xde\xad\xbe\xef")
    with open_container(path) as disk:
        assert disk.facts.footer_checksum_valid is False
        assert disk.facts.footer_copy_matches is False
        assert any("0xdeadbeef" in warning and "copy at offset 0" in warning for warning in disk.facts.warnings)
        assert disk.read()[:RAW_SIZE] == raw_bytes


# --- differencing -------------------------------------------------------------------------


def overrides(size: int) -> dict[int, bytes]:
    last = size // 512 - 1
    sectors = [0, 7, 8, 9, 1023, 1024, 4095, 4096, 4097, last]
    return {s: (f"child sector {s} ".encode() * 40)[:512] for s in sectors}


def apply(base: bytes, sectors: dict[int, bytes]) -> bytes:
    data = bytearray(base)
    for sector, payload in sectors.items():
        data[sector * 512 : (sector + 1) * 512] = payload
    return bytes(data)


@pytest.mark.parametrize("parent_name", ["dynamic.vhd", "fixed.vhd"])
@pytest.mark.parametrize("block_size", [2 * MiB, 512 * 1024])
def test_differencing_reads_parent_with_overrides(tmp_path: Path, copy_of, parent_name: str, block_size: int) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of(parent_name, "parent.vhd")
    with open_container(parent) as disk:
        base = disk.read()
        parent_id = disk.facts.disk_id
    sectors = overrides(len(base))
    child = tmp_path / "child.vhd"
    write_child(child, parent, sectors, block_size=block_size)
    with open_container(child) as disk:
        assert disk.facts.subtype == "differencing"
        assert disk.facts.is_differencing
        assert disk.size == len(base)
        assert disk.read() == apply(base, sectors)
        disk.seek(4096 * 512 - 100)
        assert disk.read(200) == apply(base, sectors)[4096 * 512 - 100 : 4096 * 512 + 100]
        (link,) = disk.facts.parents
        assert link.path == str(parent)
        assert link.format == "vhd"
        assert link.id == parent_id
        assert link.expected_id == parent_id
        assert link.linkage_matches is True
        assert link.tried == ()
        assert disk.chain == [str(child), str(parent)]
        assert disk.facts.block_size == block_size


def test_two_level_chain(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    base_path = copy_of("dynamic.vhd", "base.vhd")
    with open_container(base_path) as disk:
        base = disk.read()
    first = {5: b"a" * 512, 6000: b"b" * 512}
    second = {6: b"c" * 512, 6000: b"d" * 512}
    write_child(tmp_path / "mid.vhd", base_path, first)
    write_child(tmp_path / "top.vhd", tmp_path / "mid.vhd", second)
    with open_container(tmp_path / "top.vhd") as disk:
        assert disk.read() == apply(apply(base, first), second)
        assert [link.path for link in disk.facts.parents] == [str(tmp_path / "mid.vhd"), str(base_path)]
        assert all(link.linkage_matches for link in disk.facts.parents)
        assert disk.chain == [str(tmp_path / "top.vhd"), str(tmp_path / "mid.vhd"), str(base_path)]


def test_stats_cover_the_whole_chain(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {0: b"x" * 512})
    with open_container(tmp_path / "child.vhd") as disk:
        before = disk.stats.bytes_read
        disk.seek(0x300000)  # not in the child: read from the parent
        disk.read(4096)
        assert disk.stats.bytes_read >= before + 4096


def test_parent_found_from_absolute_windows_path_beside_child(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {}, relative=".\\moved\\parent.vhd", absolute="C:\\VMs\\parent.vhd")
    with open_container(tmp_path / "child.vhd") as disk:
        (link,) = disk.facts.parents
        assert link.path == str(parent)
        assert link.tried == (str(tmp_path / "moved" / "parent.vhd"),)


def test_parent_found_from_relative_path_in_other_directory(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "base").mkdir()
    (tmp_path / "diffs").mkdir()
    parent = copy_of("dynamic.vhd", "base/parent.vhd")
    write_child(tmp_path / "diffs" / "child.vhd", parent, {}, relative="..\\base\\parent.vhd")
    with open_container(tmp_path / "diffs" / "child.vhd") as disk:
        assert disk.facts.parents[0].path == str(parent)


def test_parent_found_from_absolute_posix_path(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "elsewhere").mkdir()
    parent = copy_of("dynamic.vhd", "elsewhere/p.vhd")
    write_child(tmp_path / "child.vhd", parent, {}, relative=".\\gone.vhd", absolute=str(parent))
    with open_container(tmp_path / "child.vhd") as disk:
        assert disk.facts.parents[0].path == str(parent)


def test_parent_opened_with_opener(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {})
    opened: list[str] = []

    def opener(path: str):  # type: ignore[no-untyped-def]
        opened.append(path)
        return open(path, "rb")

    with open_container(str(tmp_path / "child.vhd"), opener=opener):
        assert opened == [str(tmp_path / "child.vhd"), str(parent)]


# --- parent errors ------------------------------------------------------------------------


def test_missing_parent_names_every_path_tried(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {}, absolute="C:\\VMs\\Base\\base.vhd")
    parent.unlink()
    with pytest.raises(ParentNotFoundError) as err:
        open_container(tmp_path / "child.vhd")
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert str(tmp_path / "child.vhd") in message
    assert str(tmp_path / "parent.vhd") in message
    assert str(tmp_path / "base.vhd") in message
    assert "C:\\VMs\\Base\\base.vhd" in message


def test_parent_that_is_itself(tmp_path: Path, images: dict[str, Path]) -> None:
    own = uuid.uuid4().bytes
    spec = DiffSpec(size=RAW_SIZE, parent_unique_id=own, unique_id=own, relative=".\\self.vhd")
    write_vhd(tmp_path / "self.vhd", spec, differencing=True)
    with pytest.raises(ParentLoopError, match=r"self\.vhd -> .*self\.vhd"):
        open_container(tmp_path / "self.vhd")


def test_loop_of_two(tmp_path: Path) -> None:
    id_a, id_b = uuid.uuid4().bytes, uuid.uuid4().bytes
    write_vhd(
        tmp_path / "a.vhd",
        DiffSpec(RAW_SIZE, parent_unique_id=id_b, unique_id=id_a, relative=".\\b.vhd"),
        differencing=True,
    )
    write_vhd(
        tmp_path / "b.vhd",
        DiffSpec(RAW_SIZE, parent_unique_id=id_a, unique_id=id_b, relative=".\\a.vhd"),
        differencing=True,
    )
    with pytest.raises(ParentLoopError) as err:
        open_container(tmp_path / "a.vhd")
    assert "a.vhd -> " in str(err.value) and "b.vhd -> " in str(err.value)


def test_locator_pointing_at_directory(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {}, relative=".\\folder")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ParentError, match=r"folder.*directory"):
        open_container(tmp_path / "child.vhd")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"just some text\n" * 100, "not a VHD file"),
        (bytes(510) + b"\x55\xaa" + bytes(RAW_SIZE - 512), "is a RAW file"),
    ],
)
def test_parent_that_is_not_a_vhd(tmp_path: Path, copy_of, content: bytes, words: str) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {})
    parent.write_bytes(content)
    with pytest.raises(ParentError) as err:
        open_container(tmp_path / "child.vhd")
    assert words in str(err.value)
    assert str(parent) in str(err.value)


def test_parent_of_other_format(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {})
    copy_of("dynamic.vhdx", "parent.vhd")
    with pytest.raises(ParentError, match="is a VHDX file; a differencing VHD disk needs a VHD parent"):
        open_container(tmp_path / "child.vhd")


def test_parent_id_mismatch(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    wrong = uuid.UUID("12345678-1234-5678-1234-567812345678")
    write_child(tmp_path / "child.vhd", parent, {3: b"z" * 512}, parent_unique_id=wrong.bytes)
    parent_id = str(uuid.UUID(bytes=parse_footer(parent).unique_id))
    with pytest.raises(ParentMismatchError) as err:
        open_container(tmp_path / "child.vhd")
    assert str(wrong) in str(err.value) and parent_id in str(err.value)
    with open_container(tmp_path / "child.vhd", allow_parent_mismatch=True) as disk:
        (link,) = disk.facts.parents
        assert link.linkage_matches is False
        assert link.expected_id == str(wrong)
        assert link.id == parent_id
        assert any(str(wrong) in warning for warning in disk.facts.warnings)
        disk.seek(3 * 512)
        assert disk.read(512) == b"z" * 512


def test_differencing_file_object_needs_a_path(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {})
    with pytest.raises(ParentNotFoundError, match="open it by path"):
        open_container(io.BytesIO((tmp_path / "child.vhd").read_bytes()))
    # a named file object works: its name is the base for the parent's relative path
    with open(tmp_path / "child.vhd", "rb") as fh, open_container(fh) as disk:
        assert disk.facts.parents[0].path == str(parent)


def test_parent_opener_errors_become_parent_errors(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {})

    def opener(path: str):  # type: ignore[no-untyped-def]
        if path == str(parent):
            raise PermissionError(13, "Permission denied", path)
        return open(path, "rb")

    with pytest.raises(ParentError, match="cannot be opened.*Permission denied"):
        open_container(str(tmp_path / "child.vhd"), opener=opener)


def test_failed_open_closes_files(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    parent = copy_of("dynamic.vhd", "parent.vhd")
    write_child(tmp_path / "child.vhd", parent, {}, parent_unique_id=bytes(16))
    handles = []

    def opener(path: str):  # type: ignore[no-untyped-def]
        fh = open(path, "rb")
        handles.append(fh)
        return fh

    with pytest.raises(ParentMismatchError):
        open_container(str(tmp_path / "child.vhd"), opener=opener)
    assert len(handles) == 2 and all(fh.closed for fh in handles)


def test_failed_parent_open_closes_the_whole_chain(tmp_path: Path, copy_of) -> None:  # type: ignore[no-untyped-def]
    """The grandparent is missing: the child and the parent opened before must be closed."""
    base = copy_of("dynamic.vhd", "base.vhd")
    write_child(tmp_path / "mid.vhd", base, {})
    write_child(tmp_path / "top.vhd", tmp_path / "mid.vhd", {})
    base.unlink()
    handles = []

    def opener(path: str):  # type: ignore[no-untyped-def]
        fh = open(path, "rb")
        handles.append(fh)
        return fh

    with pytest.raises(ParentNotFoundError, match="base.vhd"):
        open_container(str(tmp_path / "top.vhd"), opener=opener)
    assert len(handles) == 2 and all(fh.closed for fh in handles)


def test_saved_state_is_a_warning(copy_of, raw_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("fixed.vhd")
    data = bytearray(path.read_bytes())
    footer = FOOTER.parse(bytes(data[-512:]))
    footer.saved_state = 1
    footer.checksum = checksum(FOOTER.build(footer), FOOTER_CHECKSUM_OFFSET)
    data[-512:] = FOOTER.build(footer)
    path.write_bytes(bytes(data))
    with open_container(path) as disk:
        assert any("saved_state is 1" in warning for warning in disk.facts.warnings)
        assert disk.read() == raw_bytes
