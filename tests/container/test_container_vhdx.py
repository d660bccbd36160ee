"""VHDX: Hyper-V-made files, CRC-checked headers and region tables, the log, metadata, BAT bounds,
and a real Hyper-V differencing disk (checkpoint) read through a parent made here."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path
from uuid import UUID

import pytest
from container_samples import RAW_SIZE
from dissect.hypervisor.disk.c_vhdx import (
    BAT_REGION_GUID,
    FILE_PARAMETERS_GUID,
    PARENT_LOCATOR_GUID,
    VIRTUAL_DISK_SIZE_GUID,
)
from dissect.hypervisor.disk.vhdx import VHDX as DissectVHDX
from vhdxpatch import (
    HEADER_OFFSETS,
    REGION_OFFSETS,
    header_sequence,
    metadata_item_offset,
    patch_headers,
    region_offset,
    write_at,
)

from azvhdaudit.container import open_container
from azvhdaudit.container.base import ContainerStats, CountedFile
from azvhdaudit.container.vhdx import VHDXLayer
from azvhdaudit.errors import CorruptImageError, ParentMismatchError, ParentNotFoundError, TruncatedImageError

MiB = 1024 * 1024
PARENT_NAME = "Generation 1_49C4BAF3-4B25-4406-8C4B-D39E65C32385.avhdx"
PARENT_LINKAGE = UUID("ff34003b-11ed-4cf8-a166-b2be05e20b80")


@pytest.mark.parametrize(
    ("name", "subtype", "block_size", "disk_id"),
    [
        ("fixed.vhdx", "fixed", 2 * MiB, "4a49d245-db0a-4634-9818-9f93db5ba6c1"),
        ("dynamic.vhdx", "dynamic", 32 * MiB, "788015f0-5e93-4bd2-a5de-b0cd8459db11"),
    ],
)
def test_hyperv_vhdx(hyperv: dict[str, Path], name: str, subtype: str, block_size: int, disk_id: str) -> None:
    with open_container(hyperv[name]) as disk:
        facts = disk.facts
        assert (facts.format, facts.subtype) == ("vhdx", subtype)
        assert disk.size == 10 * MiB
        assert facts.block_size == block_size
        assert facts.disk_id == disk_id
        assert facts.logical_sector_size == 512
        assert facts.physical_sector_size == 4096
        assert facts.creator_app == "Microsoft Windows 10.0.18363.0"
        assert facts.headers_crc_valid is True
        assert facts.region_tables_crc_valid is True
        assert facts.metadata_valid is True
        assert facts.log_pending is False
        assert facts.log_guid is None
        assert facts.data_write_guid is not None
        assert facts.warnings == ()
        assert disk.read(512)[510:] == b"\x55\xaa"
        disk.seek(0x200000)
        assert disk.read(512) == b"\xff" * 512


def test_open_reads_little(hyperv: dict[str, Path]) -> None:
    # headers (2 x 4 KiB), region tables (2 x 64 KiB, CRC-checked whole), metadata: no BAT, no data
    with open_container(hyperv["dynamic.vhdx"]) as disk:
        assert disk.stats.bytes_read < 160 * 1024


@pytest.mark.parametrize("number", [1, 2])
def test_one_bad_header_crc_uses_the_other(copy_of, raw_bytes: bytes, number: int) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    write_at(path, HEADER_OFFSETS[number - 1] + 1000, b"\x01")
    with open_container(path) as disk:
        assert disk.facts.headers_crc_valid is False
        (warning,) = disk.facts.warnings
        assert f"header {number} at offset {HEADER_OFFSETS[number - 1]}" in warning
        assert "CRC-32C" in warning
        assert disk.read() == raw_bytes


def test_current_header_is_the_higher_sequence_number(copy_of) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    data = bytearray(path.read_bytes())
    # header 1 gets a different DataWriteGuid and the higher sequence number
    struct.pack_into("16s", data, HEADER_OFFSETS[0] + 32, UUID(int=1).bytes_le)
    path.write_bytes(bytes(data))
    patch_headers(path)  # only fix the CRCs
    seq = max(header_sequence(path, 1), header_sequence(path, 2))
    data = bytearray(path.read_bytes())
    struct.pack_into("<Q", data, HEADER_OFFSETS[0] + 8, seq + 1)
    path.write_bytes(bytes(data))
    patch_headers(path)
    with open_container(path) as disk:
        assert disk.facts.data_write_guid == str(UUID(int=1))


def test_bad_region_table_crc_uses_the_other(copy_of, raw_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    write_at(path, REGION_OFFSETS[0] + 60000, b"\x01")
    with open_container(path) as disk:
        assert disk.facts.region_tables_crc_valid is False
        assert any(f"region table 1 at offset {REGION_OFFSETS[0]}" in w for w in disk.facts.warnings)
        assert disk.read() == raw_bytes


def test_pending_log_is_a_fact(copy_of, raw_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    log_guid = UUID("0a0b0c0d-0e0f-1011-1213-141516171819")
    patch_headers(path, log_guid=log_guid.bytes_le)
    with open_container(path) as disk:
        assert disk.facts.log_pending is True
        assert disk.facts.log_guid == str(log_guid)
        # no entry of the log carries this LogGuid: nothing to replay, and the warning says why
        assert any(
            "log is marked pending" in w and str(log_guid) in w and "not replayed, because" in w
            for w in disk.facts.warnings
        )
        assert disk.facts.log_replay is not None and disk.facts.log_replay["replayed"] is False
        assert disk.read() == raw_bytes


def test_lazy_bat_on_a_large_disk(tmp_path: Path) -> None:
    """A 127 GiB dynamic VHDX: opening and reading a few sectors reads a few hundred KiB at most."""
    path = tmp_path / "big.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", str(path), "127G"], check=True)
    subprocess.run(
        ["qemu-io", "-f", "vhdx", "-c", "write -P 0x5a 100G 4k", "-c", "write -P 0x33 0 512", str(path)],
        check=True,
        capture_output=True,
    )
    with open_container(path) as disk:
        assert disk.size == 127 * 1024**3
        for offset in (0, 512, 64 * MiB, 100 * 1024**3, 126 * 1024**3):
            disk.seek(offset)
            disk.read(4096)
        disk.seek(100 * 1024**3)
        assert disk.read(4096) == b"\x5a" * 4096
        disk.seek(0)
        assert disk.read(512) == b"\x33" * 512
        # the BAT of this disk is over 1 MiB; only a few 4 KiB pages of it were read
        assert disk.stats.bytes_read < 400 * 1024


# --- a Hyper-V differencing disk -----------------------------------------------------------


def _partial_and_absent_blocks(child: Path) -> tuple[list[int], int]:
    layer = VHDXLayer(CountedFile(open(child, "rb"), str(child), ContainerStats(), owned=True))
    try:
        states = [layer._payload(block)[0] for block in range(layer.data_blocks)]
    finally:
        layer.close()
    return [i for i, s in enumerate(states) if s == 7], states.index(0)


def _stamp(sector: int) -> bytes:
    return (b"P%010d|" % sector) * 42 + b"P" * 8


@pytest.fixture(scope="module")
def checkpoint(hyperv: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The Hyper-V checkpoint beside a parent made here (stamped sectors, DataWriteGuid = its linkage)."""
    root = tmp_path_factory.mktemp("checkpoint")
    child = root / "differencing.avhdx"
    child.symlink_to(hyperv["differencing.avhdx"])
    partial, absent = _partial_and_absent_blocks(child)
    blocks = [*partial[:8], absent]
    raw = root / "parent.raw"
    with open(raw, "wb") as fh:
        fh.truncate(8 * 1024**3)
        for block in blocks:
            fh.seek(block * 2 * MiB)
            first = block * 4096
            fh.write(b"".join(_stamp(s) for s in range(first, first + 4096)))
    parent = root / PARENT_NAME
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vhdx", str(raw), str(parent)], check=True)
    raw.unlink()
    patch_headers(parent, data_write_guid=PARENT_LINKAGE.bytes_le)
    return {"child": child, "parent": parent, "partial": partial[:8], "absent": absent}


def test_checkpoint_without_parent(hyperv: dict[str, Path]) -> None:
    with pytest.raises(ParentNotFoundError) as err:
        open_container(hyperv["differencing.avhdx"])
    message = str(err.value)
    assert str(hyperv["differencing.avhdx"].parent / PARENT_NAME) in message
    assert "C:\\Users\\Public\\Documents\\Hyper-V\\Virtual hard disks" in message


def test_checkpoint_facts(checkpoint: dict[str, object]) -> None:
    with open_container(checkpoint["child"]) as disk:  # type: ignore[arg-type]
        facts = disk.facts
        assert facts.subtype == "differencing"
        assert disk.size == 8 * 1024**3
        assert facts.block_size == 2 * MiB
        assert facts.log_pending is False
        (link,) = facts.parents
        assert link.path == str(checkpoint["parent"])
        assert link.format == "vhdx"
        assert link.id == link.expected_id == str(PARENT_LINKAGE)
        assert link.linkage_matches is True
        assert link.tried == ()
        assert disk.chain == [str(checkpoint["child"]), str(checkpoint["parent"])]


def test_checkpoint_reads_match_dissect_and_use_both_files(checkpoint: dict[str, object]) -> None:
    reference = DissectVHDX(Path(checkpoint["child"]))  # type: ignore[arg-type]
    from_parent = from_child = 0
    with open_container(checkpoint["child"]) as disk:  # type: ignore[arg-type]
        for block in checkpoint["partial"]:  # type: ignore[attr-defined]
            disk.seek(block * 2 * MiB)
            ours = disk.read(2 * MiB)
            reference.seek(block * 2 * MiB)
            assert ours == reference.read(2 * MiB), f"block {block}"
            for i in range(4096):
                sector = ours[i * 512 : (i + 1) * 512]
                if sector == _stamp(block * 4096 + i):
                    from_parent += 1
                else:
                    from_child += 1
        absent = checkpoint["absent"]
        disk.seek(absent * 2 * MiB + 512 * 7)  # type: ignore[operator]
        assert disk.read(512) == _stamp(absent * 4096 + 7)  # type: ignore[operator]
    assert from_parent > 0 and from_child > 0


def test_checkpoint_parent_mismatch(checkpoint: dict[str, object], tmp_path: Path) -> None:
    child = tmp_path / "differencing.avhdx"
    child.symlink_to(checkpoint["child"])  # type: ignore[arg-type]
    parent = tmp_path / PARENT_NAME
    parent.write_bytes(Path(checkpoint["parent"]).read_bytes())  # type: ignore[arg-type]
    other = UUID("01234567-89ab-cdef-0123-456789abcdef")
    patch_headers(parent, data_write_guid=other.bytes_le)
    with pytest.raises(ParentMismatchError) as err:
        open_container(child)
    assert str(other) in str(err.value) and str(PARENT_LINKAGE) in str(err.value)
    assert "DataWriteGuid" in str(err.value)
    with open_container(child, allow_parent_mismatch=True) as disk:
        assert disk.facts.parents[0].linkage_matches is False


# --- damaged VHDX --------------------------------------------------------------------------


def test_both_header_crcs_bad(copy_of) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    for offset in HEADER_OFFSETS:
        write_at(path, offset + 1000, b"\x01")
    with pytest.raises(CorruptImageError) as err:
        open_container(path)
    assert "header 1 at offset 65536" in str(err.value) and "header 2 at offset 131072" in str(err.value)


def test_both_region_table_crcs_bad(copy_of) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    for offset in REGION_OFFSETS:
        write_at(path, offset + 1000, b"\x01")
    with pytest.raises(CorruptImageError, match="no valid VHDX region table.*region table 2 at offset 262144"):
        open_container(path)


@pytest.mark.parametrize(
    ("item", "fmt", "value", "words"),
    [
        (FILE_PARAMETERS_GUID, "<I", 0, "field BlockSize is 0"),
        (FILE_PARAMETERS_GUID, "<I", 3 * MiB, f"field BlockSize is {3 * MiB}"),
        (VIRTUAL_DISK_SIZE_GUID, "<Q", 2**63, f"VirtualDiskSize is {2**63}"),
        (VIRTUAL_DISK_SIZE_GUID, "<Q", 0, "VirtualDiskSize is 0"),
        (VIRTUAL_DISK_SIZE_GUID, "<Q", RAW_SIZE + 100, f"VirtualDiskSize is {RAW_SIZE + 100}"),
    ],
)
def test_bad_metadata(copy_of, item: UUID, fmt: str, value: int, words: str) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    write_at(path, metadata_item_offset(path, item), struct.pack(fmt, value))
    with pytest.raises(CorruptImageError) as err:
        open_container(path)
    assert words in str(err.value) and str(path) in str(err.value)


def test_bat_entry_past_end(copy_of) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    bat = region_offset(path, BAT_REGION_GUID)
    entry = (4096 << 20) | 6  # fully present at 4 GiB
    write_at(path, bat, struct.pack("<Q", entry))
    with open_container(path) as disk, pytest.raises(CorruptImageError) as err:
        disk.read(512)
    message = str(err.value)
    assert f"0x{entry:016x}" in message and "block 0" in message and str(path.stat().st_size) in message


def test_bat_entry_bad_state(copy_of) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    bat = region_offset(path, BAT_REGION_GUID)
    write_at(path, bat, struct.pack("<Q", 5))
    with open_container(path) as disk, pytest.raises(CorruptImageError, match="state 5 is not valid"):
        disk.read(512)


@pytest.mark.parametrize(
    ("keep", "at_open", "words"),
    [
        (100 * 1024, True, "VHDX header 2 at offset 131072"),
        (300 * 1024, True, "VHDX region table 2 at offset 262144"),
        (int(2.5 * MiB), True, "past the end of the file"),
        (16 * MiB - 3 * MiB, False, "past the end of the file"),
    ],
)
def test_truncated_vhdx(copy_of, keep: int, at_open: bool, words: str) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    with open(path, "r+b") as fh:
        fh.truncate(keep)
    with pytest.raises(TruncatedImageError) as err:
        with open_container(path) as disk:
            assert not at_open
            disk.read()
    assert words in str(err.value) and str(path) in str(err.value)


def test_checkpoint_parent_linkage2(checkpoint: dict[str, object], tmp_path: Path) -> None:
    """The child's parent_linkage2 is an accepted alternative; its zero value never matches."""
    child = tmp_path / "differencing.avhdx"
    data = Path(checkpoint["child"]).read_bytes()  # type: ignore[arg-type]
    zeros = "{00000000-0000-0000-0000-000000000000}".encode("utf-16-le")
    # the parent locator item holds parent_linkage2 (the metadata region has no checksum)
    at = data.index(zeros, metadata_item_offset(Path(checkpoint["child"]), PARENT_LOCATOR_GUID))  # type: ignore[arg-type]
    alternative = UUID("a1a2a3a4-b1b2-c1c2-d1d2-e1e2e3e4e5e6")
    child.write_bytes(data[:at] + f"{{{alternative}}}".encode("utf-16-le") + data[at + len(zeros) :])
    parent = tmp_path / PARENT_NAME
    parent.write_bytes(Path(checkpoint["parent"]).read_bytes())  # type: ignore[arg-type]
    patch_headers(parent, data_write_guid=alternative.bytes_le)
    with open_container(child) as disk:
        (link,) = disk.facts.parents
        assert link.linkage_matches is True
        assert link.id == str(alternative)
        assert link.expected_id == str(PARENT_LINKAGE)
    patch_headers(parent, data_write_guid=bytes(16))
    child.write_bytes(data)
    with pytest.raises(ParentMismatchError):
        open_container(child)
