"""The NTFS paths of azvhdaudit.fs that skip parts of dissect.ntfs's work give dissect.ntfs's own answers.

A file open decodes the $DATA header alone (MftRecord.attributes decodes every attribute of the record),
a directory its $INDEX_ROOT / $INDEX_ALLOCATION headers, and the volume opens without dissect's $Secure
and $UsnJrnl objects. Each answer is compared with dissect.ntfs's on the same bytes, and what is decoded
is counted.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from diskbuild import MiB, make_ntfs, require_tools
from dissect.ntfs import NTFS
from dissect.ntfs.attr import AttributeHeader
from dissect.ntfs.c_ntfs import ATTRIBUTE_TYPE_CODE, c_ntfs
from dissect.ntfs.exceptions import BrokenMftError
from dissect.ntfs.mft import MftRecord

from azvhdaudit.errors import FileSystemError
from azvhdaudit.fs import NtfsVolume
from azvhdaudit.fs import fat as fs_fat
from azvhdaudit.fs import ntfs as fs_ntfs

#: a directory large enough for an $INDEX_ALLOCATION, resident and non-resident files
FILES = {
    **{f"Windows/System32/file{i:04d}.dll": b"MZ" + bytes([i % 251]) * 40 for i in range(400)},
    "Windows/System32/config/SYSTEM": b"regf" + bytes(range(256)) * 64,
    "Windows/System32/drivers/tiny.sys": b"MZ",
    "Windows/System32/drivers/empty.sys": b"",
    "Windows/Panther/unattend.xml": b"<unattend/>",
}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools()
    return make_ntfs(tmp_path_factory.mktemp("speed") / "v.img", 16 * MiB, FILES)


@pytest.fixture()
def volume(image: Path) -> Iterator[NtfsVolume]:
    with open(image, "rb") as fh:
        yield NtfsVolume(fh, 0, image.stat().st_size, "speed-ntfs")


@pytest.fixture()
def dissect_fs(image: Path) -> Iterator[Any]:
    with open(image, "rb") as fh:
        yield NTFS(fh)


def _in_use(ntfs: Any) -> Iterator[Any]:
    for segment in range(0, 100):
        try:
            record = ntfs.mft.get(segment)
        except (BrokenMftError, ValueError):
            continue
        yield record


def _dissect_table(record: Any) -> dict[int, list[int]]:
    return {kind: [a.header.offset for a in attrs] for kind, attrs in record.attributes.items()}


def _record_with(record: Any, data: bytes) -> Any:
    """A record of ``data`` (already fixed up) on ``record``'s volume, as MftRecord.from_bytes makes one."""
    made = MftRecord()
    made.ntfs = record.ntfs
    made.segment = record.segment
    made.data = data
    made.header = c_ntfs._FILE_RECORD_SEGMENT_HEADER(data)
    return made


def _offsets(record: Any) -> list[tuple[int, int]]:
    return [(kind, offset) for kind, offsets in _dissect_table(record).items() for offset in offsets]


def test_attribute_tables_are_dissects_attributes(dissect_fs: Any) -> None:
    compared = 0
    for record in _in_use(dissect_fs):
        table = fs_ntfs._attribute_table(record)
        if table is None:
            assert ATTRIBUTE_TYPE_CODE.ATTRIBUTE_LIST in record.attributes or record.is_reparse_point()
            continue
        assert table == _dissect_table(record), record
        compared += 1
    assert compared >= 20


def test_files_and_directories_open_as_dissect_opens_them(volume: NtfsVolume, dissect_fs: Any) -> None:
    for path, data in FILES.items():
        ours = volume.open(path)
        theirs = dissect_fs.mft.get(path).open()
        assert type(ours) is type(theirs)
        assert ours.read() == theirs.read() == data
    for path in ("", "Windows", "Windows/System32", "Windows/System32/drivers"):
        ours = volume._index(volume._record(path))
        theirs = dissect_fs.mft.get(path).index("$I30") if path else dissect_fs.mft.get(5).index("$I30")
        assert ours.root.header.dumps() == theirs.root.header.dumps()
        assert [e.header.dumps() for e in ours.entries()] == [e.header.dumps() for e in theirs.entries()]
    assert volume._index(volume._record("Windows/System32"))._index_stream is not None
    assert volume.listdir("Windows/System32/drivers") == ["empty.sys", "tiny.sys"]


def test_listings_are_dissects_without_decoding_file_names(
    volume: NtfsVolume, dissect_fs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dissect.ntfs.attr import FileName

    directories = ["", "Windows", "Windows/System32", "Windows/System32/config", "Windows/Panther"]
    theirs = {}
    for path in directories:
        record = dissect_fs.mft.get(path) if path else dissect_fs.mft.get(5)
        theirs[path] = sorted(str(n) for n in record.listdir(ignore_dos=True) if n not in (".", ".."))
    assert len(theirs["Windows/System32"]) == 402
    decoded: list[int] = []
    real_init = FileName.__init__

    def counting(self: Any, *args: Any) -> None:
        decoded.append(1)
        real_init(self, *args)

    monkeypatch.setattr(FileName, "__init__", counting)
    assert {path: volume.listdir(path) for path in directories} == theirs
    assert not decoded


def test_an_entry_dissect_cannot_decode_is_listed_by_dissect(image: Path, tmp_path: Path) -> None:
    """A $FILE_NAME key whose name runs past its entry: dissect's own listing raises, and so does listdir."""
    data = bytearray(image.read_bytes())
    at = data.find("unattend.xml".encode("utf-16-le"))
    assert at > 0
    data[at - 2] = 120  # the name length, in characters
    broken = tmp_path / "broken.img"
    broken.write_bytes(bytes(data))
    with open(broken, "rb") as fh:
        with pytest.raises(EOFError) as theirs:
            NTFS(fh).mft.get("Windows/Panther").listdir(ignore_dos=True)
        volume = NtfsVolume(fh, 0, len(data), "broken")
        with pytest.raises(FileSystemError) as ours:
            volume.listdir("Windows/Panther")
    assert str(ours.value) == f"broken: cannot list Windows/Panther: {theirs.value}"


def test_a_file_open_decodes_no_attribute_header_with_cstruct(
    volume: NtfsVolume, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume.exists("Windows/System32/file0000.dll")  # the directories on the way
    cstruct_decoded: list[int] = []
    struct_decoded: list[int] = []
    real_init = AttributeHeader.__init__
    real_header = fs_ntfs._attribute_header

    def counting(self: Any, fh: Any, offset: int, record: Any = None) -> None:
        cstruct_decoded.append(offset)
        real_init(self, fh, offset, record)

    def counting_struct(*args: Any) -> Any:
        struct_decoded.append(1)
        return real_header(*args)

    monkeypatch.setattr(AttributeHeader, "__init__", counting)
    monkeypatch.setattr(fs_ntfs, "_attribute_header", counting_struct)
    for i in range(0, 400, 40):
        assert volume.read(f"Windows/System32/file{i:04d}.dll") == FILES[f"Windows/System32/file{i:04d}.dll"]
    assert not cstruct_decoded
    assert len(struct_decoded) == 10


def _header_fields(header: Any) -> tuple[Any, ...]:
    h = header.header
    resident, nonresident = h.Form.Resident, h.Form.Nonresident
    return (
        h.TypeCode,
        h.RecordLength,
        h.FormCode,
        h.NameLength,
        h.NameOffset,
        h.Flags,
        h.Instance,
        resident.ValueLength,
        resident.ValueOffset,
        resident.Flags,
        nonresident.LowestVcn,
        nonresident.HighestVcn,
        nonresident.MappingPairsOffset,
        nonresident.CompressionUnit,
        nonresident.AllocatedLength,
        nonresident.FileSize,
        nonresident.ValidDataLength,
        nonresident.TotalAllocated,
        header.type,
        header.resident,
        header.record_length,
        header.flags,
        header.size,
        header.allocated_size,
        header.lowest_vcn,
        header.highest_vcn,
        header.compression_unit,
    )


def test_attribute_headers_are_dissects(dissect_fs: Any) -> None:
    import io

    compared = 0
    for record in _in_use(dissect_fs):
        fh = io.BytesIO(record.data)
        for offsets in _dissect_table(record).values():
            for offset in offsets:
                theirs = AttributeHeader(fh, offset, record)
                ours = fs_ntfs._attribute_header(fh, record.data, offset, record)
                assert _header_fields(ours) == _header_fields(theirs)
                assert type(ours.header.TypeCode) is type(theirs.header.TypeCode)
                assert ours.name == theirs.name
                if theirs.resident:
                    assert ours.open().read() == theirs.open().read()
                else:
                    assert ours.dataruns() == theirs.dataruns()
                compared += 1
    assert compared > 100


def test_any_header_bytes_decode_as_in_dissect() -> None:
    import io
    import random

    rng = random.Random(20261122)
    size = len(c_ntfs._ATTRIBUTE_RECORD_HEADER)
    for _ in range(500):
        data = bytes(rng.getrandbits(8) for _ in range(size + 16))
        data = (
            bytes([rng.choice([0x10, 0x30, 0x80, 0x90, 0xA0, rng.getrandbits(8)])])
            + data[1:8]
            + bytes([rng.choice([0, 1, rng.getrandbits(8)])])
            + data[9:]
        )
        theirs = AttributeHeader(io.BytesIO(data), 0, None)
        ours = fs_ntfs._attribute_header(io.BytesIO(data), data, 0, None)
        assert _header_fields(ours) == _header_fields(theirs)


def _record_fields(record: Any) -> tuple[Any, ...]:
    h = record.header
    base = h.BaseFileRecordSegment
    return (
        h.MultiSectorHeader.Signature,
        h.MultiSectorHeader.UpdateSequenceArrayOffset,
        h.MultiSectorHeader.UpdateSequenceArraySize,
        h.Lsn,
        h.SequenceNumber,
        h.ReferenceCount,
        h.FirstAttributeOffset,
        h.Flags,
        h.BytesInUse,
        h.BytesAllocated,
        base.SegmentNumberLowPart,
        base.SegmentNumberHighPart,
        base.SequenceNumber,
        h.NextAttributeInstance,
        record.data,
        record.offset,
        record.segment,
        repr(record),
        record.is_dir(),
    )


def _outcome(read: Any) -> Any:
    try:
        return _record_fields(read())
    except Exception as err:  # the errors of both sides are compared
        return f"{type(err).__name__}: {err}"


def test_records_are_read_as_dissect_reads_them(image: Path, tmp_path: Path) -> None:
    data = bytearray(image.read_bytes())
    with open(image, "rb") as fh:
        ntfs = NTFS(fh)
        mft = ntfs.boot_sector.MftStartLcn * ntfs.cluster_size
        size = ntfs._record_size
    data[mft + 20 * size : mft + 20 * size + 4] = b"BAAD"  # a signature
    data[mft + 21 * size + 510 : mft + 21 * size + 512] = b"\x12\x34"  # a fixup
    damaged = tmp_path / "damaged.img"
    damaged.write_bytes(bytes(data))
    with open(damaged, "rb") as fh:
        ntfs = NTFS(fh)
        outcomes = [
            (_outcome(lambda s=segment: fs_ntfs._read_record(ntfs, s)), _outcome(lambda s=segment: ntfs.mft.get(s)))
            for segment in range(120)
        ]
    assert all(ours == theirs for ours, theirs in outcomes)
    assert sum(isinstance(ours, str) for ours, _ in outcomes) >= 2
    assert sum(not isinstance(ours, str) for ours, _ in outcomes) >= 60


def test_a_zero_attribute_length_is_dissects_error(dissect_fs: Any) -> None:
    record = dissect_fs.mft.get("Windows/System32/config/SYSTEM")
    (si_offset,) = _dissect_table(record)[ATTRIBUTE_TYPE_CODE.STANDARD_INFORMATION.value]
    data = bytearray(record.data)
    struct.pack_into("<I", data, si_offset + 4, 0)
    with pytest.raises(BrokenMftError) as theirs:
        _record_with(record, bytes(data)).attributes  # noqa: B018
    with pytest.raises(BrokenMftError) as ours:
        fs_ntfs._attribute_table(_record_with(record, bytes(data)))
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("damage", ["list", "reparse", "name-surrogate", "name-long", "nonresident"])
def test_records_dissect_treats_specially_are_left_to_it(dissect_fs: Any, damage: str) -> None:
    record = dissect_fs.mft.get("Windows/System32/config/SYSTEM")
    table = _dissect_table(record)
    (fn,) = table[ATTRIBUTE_TYPE_CODE.FILE_NAME.value]
    data = bytearray(record.data)
    value = fn + struct.unpack_from("<H", data, fn + 20)[0]
    if damage == "list":
        struct.pack_into("<I", data, table[ATTRIBUTE_TYPE_CODE.SECURITY_DESCRIPTOR.value][0], 0x20)
    elif damage == "reparse":
        struct.pack_into("<I", data, table[ATTRIBUTE_TYPE_CODE.SECURITY_DESCRIPTOR.value][0], 0xC0)
    elif damage == "name-surrogate":
        struct.pack_into("<H", data, value + 66, 0xDC00)
    elif damage == "name-long":
        data[value + 64] = 200
    else:
        data[fn + 8] = 1
    assert fs_ntfs._attribute_table(_record_with(record, bytes(data))) is None


def test_the_end_of_the_walk_is_dissects(dissect_fs: Any) -> None:
    """Where no whole header fits before the end of the record, both walks stop."""
    record = dissect_fs.mft.get("Windows/System32/config/SYSTEM")
    offsets = _offsets(record)
    last_kind, last = max(offsets, key=lambda item: item[1])
    for room in (len(c_ntfs._ATTRIBUTE_RECORD_HEADER) - 1, len(c_ntfs._ATTRIBUTE_RECORD_HEADER)):
        data = bytes(record.data[: last + room])
        made = _record_with(record, data)
        table = fs_ntfs._attribute_table(made)
        assert table == _dissect_table(_record_with(record, data))
        assert (last in table.get(last_kind, [])) == (room == len(c_ntfs._ATTRIBUTE_RECORD_HEADER))


def test_a_broken_secure_file_makes_the_volume_unreadable_as_in_dissect(image: Path, tmp_path: Path) -> None:
    with open(image, "rb") as fh:
        ntfs = NTFS(fh)
        at = ntfs.boot_sector.MftStartLcn * ntfs.cluster_size + 9 * ntfs._record_size
    broken = tmp_path / "broken.img"
    data = bytearray(image.read_bytes())
    data[at : at + 4] = b"BAAD"
    broken.write_bytes(bytes(data))
    with open(broken, "rb") as fh:
        with pytest.raises(BrokenMftError) as theirs:
            NTFS(fh)
        with pytest.raises(FileSystemError) as ours:
            NtfsVolume(fh, 0, len(data), "broken")
    assert str(ours.value) == f"broken: NTFS at offset 0 cannot be read: {theirs.value}"


# --- FAT: directory listings kept as far as lookups read them ---------------------------------------------

ESP = {
    "EFI/Boot/bootx64.efi": b"MZ-boot",
    "EFI/Microsoft/Boot/BCD": b"regf-bcd",
    "EFI/Microsoft/Boot/bootmgfw.efi": b"MZ-bootmgr",
    **{f"EFI/Microsoft/Boot/lang{i:02d}/bootmgr.efi.mui": b"mui" for i in range(6)},
}


@pytest.fixture(scope="module")
def esp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from diskbuild import make_fat

    require_tools()
    return make_fat(tmp_path_factory.mktemp("esp") / "esp.img", 34 * MiB, ESP)


@pytest.fixture()
def fat_volume(esp: Path) -> Iterator[fs_fat.FatVolume]:
    with open(esp, "rb") as fh:
        yield fs_fat.FatVolume(fh, 0, esp.stat().st_size, "esp")


def _count_entries(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[int]]:
    parsed: list[str] = []
    listed: list[int] = []
    real_init = fs_fat._fat.DirectoryEntry.__init__
    real_names = fs_fat._fat_names

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        parsed.append(self.name)

    def listing(*args: Any) -> Iterator[Any]:
        listed.append(1)
        yield from real_names(*args)

    monkeypatch.setattr(fs_fat._fat.DirectoryEntry, "__init__", counting)
    monkeypatch.setattr(fs_fat, "_fat_names", listing)
    return parsed, listed


def test_fat_lookups_read_each_directory_once(
    fat_volume: fs_fat.FatVolume, esp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed, listed = _count_entries(monkeypatch)
    assert fat_volume.exists("EFI/Microsoft/Boot/BCD")
    assert parsed == ["EFI", "Microsoft", "Boot", "BCD"]  # only the entries found are decoded by dissect
    assert fat_volume.read("efi\\microsoft\\boot\\bcd") == ESP["EFI/Microsoft/Boot/BCD"]
    assert fat_volume.exists("EFI/MICROSOFT/Boot/BCD")
    assert not fat_volume.exists("EFI/Microsoft/Boot/BCD.LOG1")
    assert not fat_volume.exists("EFI/Microsoft/Boot/BCD.LOG2")
    assert len(parsed) == 4 and len(listed) == 4
    assert fat_volume.read("EFI/Microsoft/Boot/lang03/bootmgr.efi.mui") == b"mui"
    assert len(parsed) == 6 and len(listed) == 5
    # the same answers as dissect.fat's own lookups
    with open(esp, "rb") as fh:
        theirs = fs_fat._fat.FATFS(fh)
        for path, data in ESP.items():
            assert fat_volume.read(path) == theirs.get(path).open().read() == data


def test_fat_names_are_dissects(fat_volume: fs_fat.FatVolume) -> None:
    def walk(node: Any) -> Iterator[Any]:
        yield node
        for child in node.iterdir():
            if child.is_directory() and child.name not in (".", ".."):
                yield from walk(child)

    directories = list(walk(fat_volume.fs.root))
    assert len(directories) == 11
    for node in directories:
        ours = [(name, entry) for name, _, entry in fs_fat._fat_names(fat_volume.fs, node)]
        assert [name for name, _ in ours] == [str(c.name) for c in node.iterdir()]
        assert all(entry is None for _, entry in ours)


def _dirent(name: bytes, attr: int = 0x20) -> bytes:
    return name.ljust(11, b" ") + bytes([attr]) + bytes(20)


def _long_slots(name: bytes, last_twice: bool = False) -> list[bytes]:
    """The long-name slots of ``name`` (UTF-16LE bytes), last one first, as FAT stores them."""
    padded = name + b"\x00\x00"
    padded += b"\xff" * (-len(padded) % 26)
    chunks = [padded[i : i + 26] for i in range(0, len(padded), 26)]
    slots = []
    for order, chunk in reversed(list(enumerate(chunks, start=1))):
        last = order == len(chunks) or last_twice
        slots.append(
            bytes([order | (0x40 if last else 0)])
            + chunk[:10]
            + bytes([0x0F, 0, 0])
            + chunk[10:22]
            + b"\x00\x00"
            + chunk[22:26]
        )
    return slots


CRAFTED = {
    "plain": [_dirent(b"README  TXT"), _dirent(b"BOOT", 0x10)],
    "deleted": [b"\xe5" + _dirent(b"OLD     TXT")[1:], _dirent(b"NEW     TXT")],
    "kanji-0x05": [b"\x05" + _dirent(b"ABC     TXT")[1:], _dirent(b"NEXT")],
    "long": [*_long_slots("bootmgr.efi.mui".encode("utf-16-le")), _dirent(b"BOOTMG~1MUI")],
    "long-empty": [*_long_slots(b""), _dirent(b"SHORT   TXT")],
    "two-last": [*_long_slots("a-name-of-twenty-chars".encode("utf-16-le"), last_twice=True), _dirent(b"ANAME~1")],
    "no-long": [_long_slots(b"x\x00")[0][:11] + b"\x4f" + _long_slots(b"x\x00")[0][12:], _dirent(b"X")],
    "bad-utf16": [*_long_slots(b"\x00\xdca\x00"), _dirent(b"A")],
    "cut-in-long": _long_slots("cut short".encode("utf-16-le")),
    "end": [_dirent(b"FIRST"), bytes(32), _dirent(b"AFTER")],
    "short-slot": [_dirent(b"FIRST"), b"SECOND"],
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_directories_list_as_in_dissect(fat_volume: fs_fat.FatVolume, case: str) -> None:
    import io

    data = b"".join(CRAFTED[case])

    class Node:
        def open(self) -> Any:
            return io.BytesIO(data)

    def listing(items: Iterator[Any], ours: bool) -> tuple[list[str], str | None]:
        names: list[str] = []
        try:
            for item in items:
                names.append(str(item[0]) if ours else str(item.name))
        except Exception as err:  # the errors of both sides are compared
            return names, f"{type(err).__name__}: {err}"
        return names, None

    node = Node()
    theirs = listing(fs_fat._fat._iter_dirent(fat_volume.fs, io.BytesIO(data), node), ours=False)
    assert listing(fs_fat._fat_names(fat_volume.fs, node), ours=True) == theirs


def test_a_listing_that_failed_fails_again(fat_volume: fs_fat.FatVolume, monkeypatch: pytest.MonkeyPatch) -> None:
    from dissect.fat.exceptions import InvalidDirectoryError

    calls = []
    real_names = fs_fat._fat_names

    def broken(volume_fs: Any, node: Any) -> Iterator[Any]:
        calls.append(1)
        for item in real_names(volume_fs, node):
            yield item
            if item[0] == "EFI":
                raise InvalidDirectoryError("Dirent contains multiple last-long entries")

    monkeypatch.setattr(fs_fat, "_fat_names", broken)
    assert fat_volume.exists("EFI/Boot/bootx64.efi")
    for _ in range(2):
        with pytest.raises(FileSystemError, match="cannot look up Boot: Dirent contains multiple last-long"):
            fat_volume.exists("Boot")
    assert fat_volume.exists("efi")
    assert len(calls) == 3  # the root, EFI, EFI/Boot: each listed once


def test_a_read_error_is_not_kept(fat_volume: fs_fat.FatVolume, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_names = fs_fat._fat_names

    def failing(volume_fs: Any, node: Any) -> Iterator[Any]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("the image could not be read")
        yield from real_names(volume_fs, node)

    monkeypatch.setattr(fs_fat, "_fat_names", failing)
    with pytest.raises(OSError, match="could not be read"):
        fat_volume.exists("EFI")
    assert fat_volume.exists("EFI")
    assert len(calls) == 2
