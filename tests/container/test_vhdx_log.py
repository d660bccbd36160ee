"""VHDX log replay: a pending log left by qemu-io, and logs written to the letter of [MS-VHDX] 2.3, replayed in
memory and compared with what ``qemu-img check -r all`` makes of a copy of the same file."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
from pathlib import Path
from uuid import UUID

import pytest
from dissect.hypervisor.disk.c_vhdx import BAT_REGION_GUID, VIRTUAL_DISK_SIZE_GUID
from dissect.hypervisor.disk.vhdx import VHDX as DissectVHDX
from image_rules.helpers import image_facts, make_context, run
from vhdxlog import Data, Zero, entry, log_region, seal, write_log
from vhdxpatch import HEADER_OFFSETS, metadata_item_offset, patch_headers, region_offset

from azvhdaudit.container import open_container
from azvhdaudit.container.vhdx_log import CRC_BUDGET, OverlayFile
from azvhdaudit.errors import CorruptImageError, TruncatedImageError
from azvhdaudit.report import Status

MiB = 1024 * 1024
SECTOR = 4096
GUID = UUID("6c6f6765-0000-4000-8000-0000000a0b0c")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def qemu_repaired(path: Path, tmp: Path) -> Path:
    """A copy of ``path`` after ``qemu-img check -r all`` replayed its log."""
    copy = tmp / ("qemu-" + path.name)
    shutil.copyfile(path, copy)
    subprocess.run(["qemu-img", "check", "-q", "-r", "all", str(copy)], check=True, capture_output=True)
    return copy


def same_as_qemu(path: Path, tmp: Path) -> bool:
    """Our reads of ``path`` (written, 1 MiB at a time, to a sparse raw file) equal, by ``qemu-img compare``,
    the disk qemu-img check -r all repaired from a copy."""
    repaired = qemu_repaired(path, tmp)
    ours = tmp / ("ours-" + path.name + ".raw")
    with open_container(path) as disk, open(ours, "wb") as out:
        out.truncate(disk.size)
        for offset in range(0, disk.size, MiB):
            chunk = disk.read(MiB)
            if chunk.count(0) != len(chunk):
                out.seek(offset)
                out.write(chunk)
    proc = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", "-F", "vhdx", str(ours), str(repaired)], capture_output=True, text=True
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


def qemu_refuses_read_only(path: Path) -> str:
    """qemu opens a VHDX with a valid pending log read-only only after replaying it: it refuses here."""
    proc = subprocess.run(["qemu-io", "-r", "-c", "read 0 512", str(path)], capture_output=True, text=True)
    return proc.stdout + proc.stderr


# --- a pending log left by a real tool ------------------------------------------------------------------------


def qemu_pending_write(path: Path, bat_page_offset: int, command: str, first: str | None = None) -> str:
    """Run ``command`` in qemu-io with the write of the BAT page at ``bat_page_offset`` failing (blkdebug
    injects EIO there once): qemu has written and flushed its log entry, and then cannot apply it, so the
    file is left with a pending log, as a crash at that moment leaves it."""
    spec = {
        "driver": "vhdx",
        "file": {
            "driver": "blkdebug",
            "inject-error": [
                {"event": "pwritev", "iotype": "write", "sector": bat_page_offset // 512, "once": True, "errno": 5}
            ],
            "image": {"driver": "file", "filename": str(path)},
        },
    }
    commands = ["-c", first] if first else []
    proc = subprocess.run(
        ["qemu-io", *commands, "-c", command, "json:" + json.dumps(spec)], capture_output=True, text=True
    )
    return proc.stdout + proc.stderr


#: (disk size, the clean write, the write whose BAT update stays in the log, its BAT page, sequence)
QEMU_CASES = {
    # a fresh process: the pending entry is the log's first (sequence 1 at log offset 0)
    "first-entry": ("16M", "write -P 0x11 0 1M", "write -P 0x5a 3M 64k", 0, 1),
    # one process: block 0's entry is written and applied, then block 515's (BAT page 1) stays pending, as
    # entry 2 at log offset 8192 under a new LogGuid; the applied entry's old LogGuid keeps it out
    "second-entry": ("520M", None, "write -P 0x11 0 1M", 1, 2),
}


@pytest.fixture(scope="module", params=sorted(QEMU_CASES))
def qemu_pending(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A dynamic VHDX (1 MiB blocks) that qemu-io left with a pending log, and what the log must hold."""
    size, clean, pending, bat_page, sequence = QEMU_CASES[request.param]
    path = tmp_path_factory.mktemp("qemu-log") / f"{request.param}.vhdx"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M,log_size=1M", str(path), size], check=True
    )
    bat = region_offset(path, BAT_REGION_GUID)
    if clean is not None:
        subprocess.run(["qemu-io", "-c", clean, str(path)], check=True, capture_output=True)
        out = qemu_pending_write(path, bat + bat_page * SECTOR, pending)
        data_at = 3 * MiB
    else:
        out = qemu_pending_write(path, bat + bat_page * SECTOR, "write -P 0x5a 515M 64k", first=pending)
        data_at = 515 * MiB
    assert "Input/output error" in out, out
    return {"path": path, "bat_page": bat + bat_page * SECTOR, "sequence": sequence, "data_at": data_at}


@pytest.mark.slow
def test_qemu_left_a_pending_log(qemu_pending: dict[str, object]) -> None:
    assert "contains a log that needs to be replayed" in qemu_refuses_read_only(qemu_pending["path"])  # type: ignore[arg-type]


@pytest.mark.slow
def test_qemu_pending_log_replayed_like_qemu_img_check(qemu_pending: dict[str, object], tmp_path: Path) -> None:
    path: Path = qemu_pending["path"]  # type: ignore[assignment]
    data_at: int = qemu_pending["data_at"]  # type: ignore[assignment]
    seq = qemu_pending["sequence"]
    before = sha256(path)
    with open_container(path) as disk:
        at_open = disk.stats.bytes_read
        disk.seek(data_at)
        assert disk.read(64 * 1024) == b"\x5a" * 64 * 1024
        disk.seek(0)
        assert disk.read(64 * 1024) == b"\x11" * 64 * 1024
        facts = disk.facts
    assert same_as_qemu(path, tmp_path)
    assert sha256(path) == before  # nothing written
    replay = facts.log_replay
    assert replay is not None and replay["replayed"] is True
    assert (replay["entries"], replay["sequence_first"], replay["sequence_last"]) == (1, seq, seq)
    assert replay["writes"] == [{"kind": "data", "file_offset": qemu_pending["bat_page"], "length": 4096}]
    assert replay["bytes"] == 4096 and replay["log_offset"] == MiB and replay["log_length"] == MiB
    assert facts.log_pending is True and facts.file_size == path.stat().st_size
    (warning,) = facts.warnings
    assert (
        f"replayed in memory: 1 entry (sequence {seq}), 1 write of 4096 bytes "
        f"(data 4096 B at {qemu_pending['bat_page']})"
    ) in warning
    if seq == 2:
        assert replay["rejected"][0].startswith("log offset 0: its LogGuid ")
    # opening reads the log (1 MiB) once, besides the headers (8 KiB), region tables (128 KiB), metadata
    assert MiB < at_open < MiB + 160 * 1024


@pytest.mark.slow
def test_without_replay_the_block_is_missing(qemu_pending: dict[str, object]) -> None:
    """dissect.hypervisor reads the file as it is: the pending write is not there (so the replay is what
    makes the comparison above pass)."""
    path: Path = qemu_pending["path"]  # type: ignore[assignment]
    reference = DissectVHDX(path.open("rb"))
    reference.seek(qemu_pending["data_at"])  # type: ignore[arg-type]
    assert reference.read(64 * 1024) == bytes(64 * 1024)


@pytest.mark.slow
def test_rule_says_the_log_was_replayed(qemu_pending: dict[str, object]) -> None:
    with open_container(qemu_pending["path"]) as disk:  # type: ignore[arg-type]
        facts = disk.facts
    ctx = make_context(facts=image_facts("gpt", container=facts))
    out = run("disk.vhdx_log_clean", ctx)
    assert out.status == Status.WARNING
    seq = qemu_pending["sequence"]
    assert f"1 log entry (sequence {seq}, 4096 bytes) replayed in memory; the file is unchanged" in out.message
    assert out.actual == "pending (replayed)"
    assert out.evidence[0].note.startswith("1 log entry")


@pytest.mark.slow
def test_rule_on_a_clean_qemu_vhdx(images: dict[str, Path]) -> None:
    with open_container(images["dynamic.vhdx"]) as disk:
        facts = disk.facts
    assert facts.log_replay is None
    out = run("disk.vhdx_log_clean", make_context(facts=image_facts("gpt", container=facts)))
    assert out.status == Status.PASS


# --- logs written to the letter of the spec ------------------------------------------------------------------


def _page(path: Path, offset: int) -> bytearray:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return bytearray(fh.read(SECTOR))


def spec_log(path: Path) -> dict[str, object]:
    """Three entries (sequence 10-12) ending at the end of the log, the last one wrapping to its start, and a
    stale entry (sequence 3) elsewhere, on qemu-img's 8 MiB dynamic VHDX (one 8 MiB block at file offset 8 MiB):

    - 10: the BAT page with block 1 present at file offset 16 MiB (past the end of the 16 MiB file;
      LastFileOffset says the file was 24 MiB), and 0x11 over the payload sector at 8 MiB + 0x300000;
    - 11: the metadata page with VirtualDiskSize 12 MiB;
    - 12: 64 KiB of zeros from 8 MiB + 0x300000 (over entry 10's sector), then 0xa5 at 8 MiB + 0x301000 and
      0x5c at 16 MiB + 4096;
    - 3 (stale): 0xee over 8 MiB + 0x1000, never applied.
    """
    _, log_length = log_region(path)
    bat = region_offset(path, BAT_REGION_GUID)
    bat_page = _page(path, bat)
    struct.pack_into("<Q", bat_page, 8, (16 << 20) | 6)
    size_at = metadata_item_offset(path, VIRTUAL_DISK_SIZE_GUID)
    meta_page = _page(path, size_at & ~(SECTOR - 1))
    struct.pack_into("<Q", meta_page, size_at % SECTOR, 12 * MiB)
    last = 24 * MiB - SECTOR
    e10 = entry(
        10, [Data(bat, bytes(bat_page)), Data(8 * MiB + 0x300000, b"\x11" * SECTOR)], GUID, flushed=16 * MiB, last=last
    )
    e11 = entry(11, [Data(size_at & ~(SECTOR - 1), bytes(meta_page))], GUID, flushed=16 * MiB, last=last)
    e12 = entry(
        12,
        [
            Zero(8 * MiB + 0x300000, 64 * 1024),
            Data(8 * MiB + 0x301000, b"\xa5" * SECTOR),
            Data(16 * MiB + SECTOR, b"\x5c" * SECTOR),
        ],
        GUID,
        flushed=16 * MiB,
        last=last,
    )
    stale = entry(3, [Data(8 * MiB + 0x1000, b"\xee" * SECTOR)], GUID, flushed=16 * MiB, last=last)
    at12 = log_length - SECTOR  # e12 is 2 sectors: it wraps to the log's start
    at11 = at12 - len(e11)
    at10 = at11 - len(e10)
    write_log(path, [(at10, e10), (at11, e11), (at12, e12), (256 * 1024, stale)], GUID)
    return {"bat": bat, "size_at": size_at, "offsets": (at10, at11, at12)}


@pytest.mark.slow
def test_spec_log_replayed_like_qemu_img_check(copy_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    layout = spec_log(path)
    assert "contains a log that needs to be replayed" in qemu_refuses_read_only(path)
    before = sha256(path)
    with open_container(path) as disk:
        ours = disk.read()
        facts = disk.facts
    assert sha256(path) == before
    assert same_as_qemu(path, tmp_path)
    assert len(ours) == 12 * MiB
    pattern_page = 0x300000
    assert ours[pattern_page : pattern_page + SECTOR] == bytes(SECTOR)  # entry 10's 0x11, zeroed by entry 12
    assert ours[pattern_page + SECTOR : pattern_page + 2 * SECTOR] == b"\xa5" * SECTOR
    assert ours[8 * MiB : 8 * MiB + SECTOR] == bytes(SECTOR)  # block 1 at 16 MiB: past the file, zeros
    assert ours[8 * MiB + SECTOR : 8 * MiB + 2 * SECTOR] == b"\x5c" * SECTOR
    assert b"\xee" * 16 not in ours  # the stale entry
    replay = facts.log_replay
    assert replay is not None
    assert (replay["entries"], replay["sequence_first"], replay["sequence_last"]) == (3, 10, 12)
    assert [w["kind"] for w in replay["writes"]] == ["data", "data", "data", "zero", "data", "data"]
    assert replay["writes_total"] == 6
    assert replay["bytes"] == 5 * SECTOR + 64 * 1024
    assert replay["writes"][0]["file_offset"] == layout["bat"]
    assert facts.virtual_size == 12 * MiB and facts.file_size == 16 * MiB


def _damaged_entry(damage: str) -> bytearray:
    raw = entry(7, [Data(8 * MiB + 0x1000, b"\xee" * SECTOR)], GUID, flushed=16 * MiB, last=16 * MiB)
    if damage == "crc":
        raw[100] ^= 1
        return raw
    if damage == "guid":
        raw[32:48] = UUID(int=0xFF).bytes_le
    elif damage == "data_sequence":
        struct.pack_into("<I", raw, 2 * SECTOR - 4, 8)
    elif damage == "descriptor_signature":
        raw[64:68] = b"dxsc"
    elif damage == "sequence_zero":
        struct.pack_into("<Q", raw, 16, 0)
    elif damage == "padding":
        struct.pack_into("<I", raw, 8, 3 * SECTOR)
        raw += bytes(SECTOR)
    seal(raw)
    return raw


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        ("crc", "its checksum is 0x"),
        ("guid", "its LogGuid 00000000-0000-0000-0000-0000000000ff is not the header's"),
        ("sequence_zero", "its SequenceNumber is 0"),
    ],
)
def test_torn_or_foreign_entry_is_not_replayed(copy_of, tmp_path: Path, damage: str, words: str) -> None:  # type: ignore[no-untyped-def]
    """An entry that fails its header checks or its checksum was never written whole (or belongs to another
    log): the file holds the last complete update, and is read as it is, with the reason reported."""
    path = copy_of("dynamic.vhdx")
    write_log(path, [(0, _damaged_entry(damage))], GUID)
    with open_container(path) as disk:
        ours = disk.read()
        facts = disk.facts
    replay = facts.log_replay
    assert replay is not None and replay["replayed"] is False
    assert words in replay["reason"] and "log offset 0" in replay["reason"]
    assert replay["entries"] == 0 and replay["writes"] == []
    (warning,) = facts.warnings
    assert "not replayed, because the log holds no valid entry" in warning and words in warning
    assert b"\xee" * 16 not in ours
    # qemu finds no valid sequence either: it opens the file as it is
    assert same_as_qemu(path, tmp_path)
    out = run("disk.vhdx_log_clean", make_context(facts=image_facts("gpt", container=facts)))
    assert out.status == Status.WARNING and "not replayed, because" in out.message


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (
            "data_sequence",
            "the data sector of descriptor 0 has signature b'data' and sequence 8, expected b'data' and 7",
        ),
        ("descriptor_signature", "descriptor 0 has signature b'dxsc', expected b'desc' or b'zero'"),
    ],
)
def test_whole_but_malformed_entry_is_an_error(copy_of, tmp_path: Path, damage: str, words: str) -> None:  # type: ignore[no-untyped-def]
    """An entry whose checksum is right was written whole; if its contents are wrong, what the file holds is
    unknown: an error, as qemu-img check fails on it."""
    path = copy_of("dynamic.vhdx")
    write_log(path, [(0, _damaged_entry(damage))], GUID)
    with pytest.raises(CorruptImageError) as info:
        open_container(path)
    assert f"entry 7 at log offset 0 passes its checksum, but {words}" in str(info.value)
    assert str(path) in str(info.value)
    copy = tmp_path / "qemu.vhdx"
    shutil.copyfile(path, copy)
    assert subprocess.run(["qemu-img", "check", "-r", "all", str(copy)], capture_output=True).returncode != 0


@pytest.mark.slow
def test_entry_with_a_padding_sector_is_replayed_like_qemu(copy_of, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    write_log(path, [(0, _damaged_entry("padding"))], GUID)
    with open_container(path) as disk:
        ours = disk.read()
        assert disk.facts.log_replay["replayed"] is True  # type: ignore[index]
    assert ours[0x1000:0x2000] == b"\xee" * SECTOR
    assert same_as_qemu(path, tmp_path)


def test_log_guid_no_entry_carries(copy_of, raw_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    """qemu-img convert left its own (flushed) entry in the log, under the LogGuid it used then: a header
    naming another LogGuid does not replay it."""
    path = copy_of("dynamic.vhdx")
    offset, _ = log_region(path)
    old_guid = UUID(bytes_le=path.read_bytes()[offset + 32 : offset + 48])
    assert path.read_bytes()[offset : offset + 4] == b"loge" and old_guid != GUID
    patch_headers(path, log_guid=GUID.bytes_le)
    with open_container(path) as disk:
        assert disk.read() == raw_bytes
        reason = disk.facts.log_replay["reason"]  # type: ignore[index]
    assert f"log offset 0: its LogGuid {old_guid} is not the header's" in reason


def test_sequence_with_a_gap_replays_the_newest_run(copy_of) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    e5 = entry(5, [Data(8 * MiB + 0x1000, b"\x05" * SECTOR)], GUID, flushed=16 * MiB)
    e6 = entry(6, [Data(8 * MiB + 0x2000, b"\x06" * SECTOR)], GUID, flushed=16 * MiB)
    e8 = entry(8, [Data(8 * MiB + 0x3000, b"\x08" * SECTOR)], GUID, flushed=16 * MiB)
    write_log(path, [(0, e5), (len(e5), e6), (len(e5) + len(e6), e8)], GUID)
    with open_container(path) as disk:
        data = disk.read()
        replay = disk.facts.log_replay
    assert replay is not None and (replay["sequence_first"], replay["sequence_last"]) == (8, 8)
    assert data[0x3000:0x4000] == b"\x08" * SECTOR and data[0x1000:0x1010] != b"\x05" * 16


@pytest.mark.parametrize(
    ("case", "error", "words"),
    [
        ("flushed", TruncatedImageError, "FlushedFileOffset 33554432 is past the end of the file (16777216 bytes)"),
        ("header", CorruptImageError, "inside the VHDX headers (65536-196608)"),
        ("into_log", CorruptImageError, "inside the log itself (1048576-2097152)"),
        ("version", CorruptImageError, "field LogVersion is 1, expected 0"),
        ("truncated", TruncatedImageError, "VHDX log spans offsets 1048576-2097152, past the end of the file"),
        ("log_length", CorruptImageError, "LogLength 12345"),
    ],
)
def test_log_that_cannot_be_replayed_is_an_error(copy_of, case: str, error: type, words: str) -> None:  # type: ignore[no-untyped-def]
    path = copy_of("dynamic.vhdx")
    target = {"header": 64 * 1024, "into_log": MiB + 8 * SECTOR}.get(case, 8 * MiB)
    raw = entry(1, [Data(target, b"\x01" * SECTOR)], GUID, flushed=32 * MiB if case == "flushed" else 16 * MiB)
    write_log(path, [(0, raw)], GUID)
    data = bytearray(path.read_bytes())
    if case in ("version", "log_length"):
        for start in HEADER_OFFSETS:
            if case == "version":
                struct.pack_into("<H", data, start + 64, 1)
            else:
                struct.pack_into("<I", data, start + 68, 12345)
        path.write_bytes(bytes(data))
        patch_headers(path)
    elif case == "truncated":
        path.write_bytes(bytes(data[: MiB + 4 * SECTOR]))
    with pytest.raises(error) as info:
        open_container(path)
    assert words in str(info.value) and str(path) in str(info.value)


def test_overlapping_candidates_are_bounded(copy_of) -> None:  # type: ignore[no-untyped-def]
    """Every 4 KiB of the log starts an entry as long as the log (each wrapping around it): checksumming them
    all would read the log 256 times over; the search stops after CRC_BUDGET lengths and says so."""
    path = copy_of("dynamic.vhdx")
    _, log_length = log_region(path)
    count = log_length // SECTOR - 2  # 2 descriptor sectors + one data sector each: the whole log
    raw = entry(1, [Data(8 * MiB, b"\x01" * SECTOR)] * count, GUID, flushed=16 * MiB)
    assert len(raw) == log_length
    write_log(path, [(at, raw[:SECTOR]) for at in range(0, log_length, SECTOR)], GUID)
    with pytest.raises(CorruptImageError, match=f"more than {CRC_BUDGET} times the log's length"):
        open_container(path)


def test_long_entry_is_listed_in_part(copy_of) -> None:  # type: ignore[no-untyped-def]
    """One entry of 200 updates: all applied, the first MAX_LISTED listed in the facts, all counted."""
    from azvhdaudit.container.vhdx_log import MAX_LISTED

    path = copy_of("dynamic.vhdx")
    updates: list[Data | Zero] = [Data(8 * MiB + i * SECTOR, bytes([i % 251 + 1]) * SECTOR) for i in range(200)]
    write_log(path, [(0, entry(1, updates, GUID, flushed=16 * MiB))], GUID)
    with open_container(path) as disk:
        data = disk.read(200 * SECTOR)
        replay = disk.facts.log_replay
    assert replay is not None and replay["writes_total"] == 200 and len(replay["writes"]) == MAX_LISTED
    assert replay["bytes"] == 200 * SECTOR
    assert all(data[i * SECTOR : (i + 1) * SECTOR] == bytes([i % 251 + 1]) * SECTOR for i in range(200))


def test_overlay_order_and_extension(tmp_path: Path) -> None:
    """Later updates win: data over zeros survives, zeros over data clear it; reads past the file's end
    inside the log's LastFileOffset are zeros."""
    from azvhdaudit.container.base import ContainerStats, CountedFile
    from azvhdaudit.container.vhdx_log import LogDescriptor, LogEntry

    path = tmp_path / "f"
    path.write_bytes(b"\x77" * 8 * SECTOR)

    def e(seq: int, *descs: LogDescriptor) -> LogEntry:
        return LogEntry(0, seq, 0, 0, 0, 0, tuple(descs))

    entries = [
        e(
            1,
            LogDescriptor("data", 0, SECTOR, b"\x01" * SECTOR),
            LogDescriptor("data", 2 * SECTOR, SECTOR, b"\x02" * SECTOR),
        ),
        e(2, LogDescriptor("zero", SECTOR, 2 * SECTOR, None)),
        e(
            3,
            LogDescriptor("data", 3 * SECTOR, SECTOR, b"\x03" * SECTOR),
            LogDescriptor("data", 9 * SECTOR, SECTOR, b"\x09" * SECTOR),
        ),
    ]
    with open(path, "rb") as fh:
        base = CountedFile(fh, "f", ContainerStats(), owned=False)
        overlay = OverlayFile(base, entries, 12 * SECTOR)
        got = overlay.read_exact(0, 12 * SECTOR, "all")
        assert overlay.read_exact(SECTOR + 100, 10, "inside") == bytes(10)
        assert overlay.read_exact(3 * SECTOR - 5, 10, "straddling") == bytes(5) + b"\x03" * 5
    want = (
        b"\x01" * SECTOR
        + bytes(SECTOR)
        + bytes(SECTOR)
        + b"\x03" * SECTOR
        + b"\x77" * 4 * SECTOR
        + bytes(SECTOR)
        + b"\x09" * SECTOR
        + bytes(2 * SECTOR)
    )
    assert got == want


def test_stale_log_on_the_clean_fact_file_is_ignored(copy_of, raw_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    """A log whose header LogGuid is zero is not read at all, whatever the log region holds."""
    path = copy_of("dynamic.vhdx")
    write_log(path, [(0, entry(1, [Data(8 * MiB, b"\x01" * SECTOR)], GUID, flushed=16 * MiB))], GUID)
    patch_headers(path, log_guid=bytes(16))
    with open_container(path) as disk:
        assert disk.read() == raw_bytes
        assert disk.facts.log_pending is False and disk.facts.log_replay is None
        assert disk.stats.bytes_read < MiB + 160 * 1024 + 8 * MiB


def test_mutated_logs_replay_or_fail_clearly(copy_of) -> None:  # type: ignore[no-untyped-def]
    """Bytes of a valid three-entry log flipped at random (fixed seed): every open either reads the disk
    (replayed or not, saying which) or raises the library's own error; nothing else escapes."""
    import io
    import random

    path = copy_of("dynamic.vhdx")
    spec_log(path)
    offset, log_length = log_region(path)
    base = path.read_bytes()
    starts = [*spec_log_entries(path), 256 * 1024]
    rng = random.Random(20261207)
    outcomes: dict[str, int] = {}
    for _ in range(20):
        data = bytearray(base)
        for _ in range(rng.randrange(1, 4)):
            # the header, the descriptors or the data sector of one entry (which may wrap around the log)
            inside = rng.choice([rng.randrange(64), rng.randrange(64, 160), rng.randrange(SECTOR, 2 * SECTOR)])
            at = offset + (rng.choice(starts) + inside) % log_length
            data[at] ^= 1 << rng.randrange(8)
        try:
            with open_container(io.BytesIO(bytes(data)), name="mutated.vhdx") as disk:
                disk.read(64 * 1024)
                replay = disk.facts.log_replay
                assert replay is not None
                assert replay["replayed"] or replay["reason"]
                assert replay["replayed"] is bool(replay["entries"])
                kind = "rejected an entry" if replay["rejected"] else "replayed all"
        except (CorruptImageError, TruncatedImageError) as err:
            assert "mutated.vhdx" in str(err)
            kind = type(err).__name__
        outcomes[kind] = outcomes.get(kind, 0) + 1
    # a flipped bit is always noticed: no mutation leaves every entry valid
    assert "replayed all" not in outcomes, outcomes


def spec_log_entries(path: Path) -> list[int]:
    """Log offsets of the three entries :func:`spec_log` wrote (entry 10, 11, 12)."""
    _, log_length = log_region(path)
    return [log_length - 5 * SECTOR, log_length - 3 * SECTOR, log_length - SECTOR]


def test_audit_of_a_sample_left_with_a_pending_log(sample_path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The gen2 sample, into whose first ZERO-state block qemu-io writes zeros with the BAT update left in the
    log: the guest sees the same bytes, so every verdict but the log rule's is the clean sample's, and the
    log rule says what was replayed."""
    import azvhdaudit
    from azvhdaudit.container.base import ContainerStats, CountedFile
    from azvhdaudit.container.vhdx import PB_ZERO, VHDXLayer

    clean = sample_path("gen2-misconfigured.vhdx")
    pending = tmp_path / "pending" / clean.name
    pending.parent.mkdir()
    shutil.copyfile(clean, pending)
    layer = VHDXLayer(CountedFile(open(pending, "rb"), str(pending), ContainerStats(), owned=True))
    try:
        block = next(b for b in range(layer.data_blocks) if layer._payload(b)[0] == PB_ZERO)
        bat_page = layer.bat_offset + (block + block // layer.chunk_ratio) * 8 // SECTOR * SECTOR
        block_size = layer.block_size
    finally:
        layer.close()
    out = qemu_pending_write(pending, bat_page, f"write -P 0 {block * block_size} 64k")
    assert "Input/output error" in out, out
    assert "contains a log that needs to be replayed" in qemu_refuses_read_only(pending)

    before = {r.rule_id: r for r in azvhdaudit.audit(clean).results}
    after = {r.rule_id: r for r in azvhdaudit.audit(pending).results}
    assert before.keys() == after.keys()
    changed = {k for k in before if (before[k].status, before[k].message) != (after[k].status, after[k].message)}
    assert changed == {"disk.vhdx_log_clean"}
    assert before["disk.vhdx_log_clean"].status == Status.PASS
    log_rule = after["disk.vhdx_log_clean"]
    assert log_rule.status == Status.WARNING
    assert "1 log entry (sequence 1, 4096 bytes) replayed in memory; the file is unchanged" in log_rule.message
