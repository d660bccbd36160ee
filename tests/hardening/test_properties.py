"""Property-based tests of the parsers the project writes itself: any input ends in a value or the
library's own error, and well-formed input reads back what was written.

References: VHD 1.0 spec (footer, dynamic header, parent locators), [MS-VHDX] 2.2 (headers, region
tables), the registry file format (base block, HvLE log entries), the BCD element formats
(bcd.py), the firewall rule string grammar (rules/firewall.py), the WinHttpSettings blob
(rules/network.py). Bounded for CI: few examples each, no deadline (the machine is shared).
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import tempfile
import uuid
from functools import cache
from pathlib import Path

import pytest
from hardkit import vhdwriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azvhdaudit.bcd import BCDElement, decode_device
from azvhdaudit.container import open_container
from azvhdaudit.container.vhd_structs import (
    DYNAMIC_HEADER_SIZE,
    FOOTER_CHECKSUM_OFFSET,
    HEADER_CHECKSUM_OFFSET,
    checksum,
)
from azvhdaudit.errors import (
    AuditError,
    BCDError,
    CorruptHiveError,
    ImageError,
    ParentError,
    ParentLoopError,
    ParentNotFoundError,
)
from azvhdaudit.registry.logs import (
    FILE_TYPE_PRIMARY,
    ReplayError,
    hive_checksum,
    parse_base_block,
    parse_new_log,
    replay_logs,
    validate_primary,
)
from azvhdaudit.rules.firewall import parse_rule
from azvhdaudit.rules.network import parse_winhttp_settings

#: slow: property runs over the corpus's base images
pytestmark = pytest.mark.slow

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MiB = 1024 * 1024
writer = vhdwriter()


def read_all(disk) -> None:  # type: ignore[no-untyped-def]
    """Read a few places of an opened container; every read returns what was asked, within the disk."""
    size = disk.facts.virtual_size
    for offset in {0, size // 2, max(size - 4096, 0)}:
        disk.seek(offset)
        got = disk.read(4096)
        assert len(got) == min(4096, size - offset)


@cache
def seed_image(kind: str) -> bytes:
    """A 1 MiB disk with a pattern, as a fixed VHD, a dynamic VHD or a VHDX (qemu-img)."""
    args = {
        "fixed.vhd": ["-O", "vpc", "-o", "subformat=fixed"],
        "dynamic.vhd": ["-O", "vpc", "-o", "subformat=dynamic"],
        "dynamic.vhdx": ["-O", "vhdx", "-o", "subformat=dynamic,block_size=1M"],
    }[kind]
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        raw.write_bytes(bytes(range(256)) * 4096)
        subprocess.run(["qemu-img", "convert", "-f", "raw", *args, str(raw), str(Path(tmp) / kind)], check=True)
        return (Path(tmp) / kind).read_bytes()


def open_bytes(data: bytes) -> None:
    try:
        with open_container(io.BytesIO(data), name="prop.img") as disk:
            read_all(disk)
    except AuditError:
        pass


# --- VHD footer and dynamic header ----------------------------------------------------------------

FOOTER_FIELDS = {  # name -> (offset, struct format)
    "data_offset": (16, ">Q"),
    "original_size": (40, ">Q"),
    "current_size": (48, ">Q"),
    "cylinders": (56, ">H"),
    "heads": (58, ">B"),
    "sectors": (59, ">B"),
    "disk_type": (60, ">I"),
    "version": (12, ">I"),
}
u64 = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 511, 512, MiB, 2**63, 2**64 - 1]))


@FAST
@given(
    field=st.sampled_from(sorted(FOOTER_FIELDS)),
    value=u64,
    fix=st.booleans(),
    kind=st.sampled_from(["fixed.vhd", "dynamic.vhd"]),
)
def test_vhd_footer_fields(field: str, value: int, fix: bool, kind: str) -> None:
    data = bytearray(seed_image(kind))
    offset, fmt = FOOTER_FIELDS[field]
    value &= (1 << (8 * struct.calcsize(fmt))) - 1
    footer = bytearray(data[-512:])
    struct.pack_into(fmt, footer, offset, value)
    if fix:
        struct.pack_into(">I", footer, FOOTER_CHECKSUM_OFFSET, checksum(bytes(footer), FOOTER_CHECKSUM_OFFSET))
    data[-512:] = footer
    if kind == "dynamic.vhd":
        data[:512] = footer
    open_bytes(bytes(data))


def test_vhd_footer_size_is_what_is_read() -> None:
    """A fixed VHD whose footer names a size other than the data it holds is refused, never read past."""
    data = bytearray(seed_image("fixed.vhd"))
    footer = bytearray(data[-512:])
    struct.pack_into(">Q", footer, 48, 4 * MiB)
    struct.pack_into(">I", footer, FOOTER_CHECKSUM_OFFSET, checksum(bytes(footer), FOOTER_CHECKSUM_OFFSET))
    data[-512:] = footer
    with pytest.raises(ImageError):
        with open_container(io.BytesIO(bytes(data)), name="short.vhd") as disk:
            read_all(disk)


HEADER_FIELDS = {
    "data_offset": (8, ">Q"),
    "table_offset": (16, ">Q"),
    "header_version": (24, ">I"),
    "max_table_entries": (28, ">I"),
    "block_size": (32, ">I"),
}


@FAST
@given(field=st.sampled_from(sorted(HEADER_FIELDS)), value=u64, fix=st.booleans())
def test_vhd_dynamic_header_fields(field: str, value: int, fix: bool) -> None:
    data = bytearray(seed_image("dynamic.vhd"))
    start = struct.unpack_from(">Q", data, len(data) - 512 + 16)[0]
    offset, fmt = HEADER_FIELDS[field]
    value &= (1 << (8 * struct.calcsize(fmt))) - 1
    header = bytearray(data[start : start + DYNAMIC_HEADER_SIZE])
    struct.pack_into(fmt, header, offset, value)
    if fix:
        struct.pack_into(">I", header, HEADER_CHECKSUM_OFFSET, checksum(bytes(header), HEADER_CHECKSUM_OFFSET))
    data[start : start + DYNAMIC_HEADER_SIZE] = header
    open_bytes(bytes(data))


@FAST
@given(entries=st.dictionaries(st.integers(0, 7), st.integers(0, 2**32 - 1), max_size=4))
def test_vhd_bat_entries(entries: dict[int, int]) -> None:
    data = bytearray(seed_image("dynamic.vhd"))
    start = struct.unpack_from(">Q", data, len(data) - 512 + 16)[0]
    table = struct.unpack_from(">Q", data, start + 16)[0]
    for index, value in entries.items():
        struct.pack_into(">I", data, table + 4 * index, value)
    open_bytes(bytes(data))


# --- differencing chains -----------------------------------------------------------------------------

#: what a disk's parent locator names: another disk of the set, itself, a missing file, a directory,
#: a file that is not an image
TARGETS = st.one_of(st.integers(0, 3), st.sampled_from(["self", "missing", "dir", "text"]))


@SLOW
@given(links=st.lists(TARGETS, min_size=1, max_size=4), base_at=st.integers(0, 4))
def test_differencing_chains(links: list[object], base_at: int) -> None:
    """Disk i is differencing with a parent named by ``links[i]``; disk ``base_at`` (if any) is a plain
    dynamic disk. Opening disk 0 either succeeds, when following the links from it reaches the dynamic
    disk without repeating, or raises the ParentError the first broken link calls for."""
    n = len(links)
    ids = [uuid.UUID(int=i + 1).bytes for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "dir.vhd").mkdir()
        (d / "text.vhd").write_bytes(b"not a disk\n" * 100)
        for i, link in enumerate(links):
            if i == base_at:
                writer.write_vhd(d / f"{i}.vhd", writer.DiffSpec(MiB, unique_id=ids[i]), differencing=False)
                continue
            if isinstance(link, int):
                target, parent_id = (f"{link % n}.vhd", ids[link % n])
            elif link == "self":
                target, parent_id = (f"{i}.vhd", ids[i])
            else:
                target, parent_id = (f"{link}.vhd", bytes(16))
            writer.write_vhd(
                d / f"{i}.vhd",
                writer.DiffSpec(MiB, unique_id=ids[i], parent_unique_id=parent_id, relative=".\\" + target),
                differencing=True,
            )
        # the model: follow the links from disk 0
        expected: type[BaseException] | None = None
        seen, current = {0}, 0
        while current != base_at:
            link = links[current]
            if link == "missing":
                expected = ParentNotFoundError
                break
            if link in ("dir", "text"):
                expected = ParentError
                break
            nxt = current if link == "self" else int(link) % n  # type: ignore[call-overload]
            if nxt in seen:
                expected = ParentLoopError
                break
            seen.add(nxt)
            current = nxt
        if expected is None:
            with open_container(d / "0.vhd") as disk:
                read_all(disk)
                assert len(disk.facts.parents) == len(seen) - 1
        else:
            with pytest.raises(expected):
                open_container(d / "0.vhd")
        shutil.rmtree(d / "dir.vhd")


# --- VHDX headers and region tables ------------------------------------------------------------------


def _crc32c(data: bytes) -> int:
    from dissect.util.hash.crc32c import crc32c

    return int(crc32c(data))


def _fix(data: bytearray, start: int, size: int) -> None:
    data[start + 4 : start + 8] = bytes(4)
    data[start + 4 : start + 8] = _crc32c(bytes(data[start : start + size])).to_bytes(4, "little")


@FAST
@given(
    which=st.sampled_from([64 * 1024, 128 * 1024, 192 * 1024, 256 * 1024]),
    at=st.integers(0, 127),
    value=st.binary(min_size=1, max_size=8),
    fix=st.booleans(),
)
def test_vhdx_headers_and_region_tables(which: int, at: int, value: bytes, fix: bool) -> None:
    data = bytearray(seed_image("dynamic.vhdx"))
    data[which + at : which + at + len(value)] = value
    if fix:
        _fix(data, which, 4096 if which < 192 * 1024 else 64 * 1024)
    open_bytes(bytes(data))


@FAST
@given(seq1=st.integers(0, 2**64 - 1), seq2=st.integers(0, 2**64 - 1), log=st.booleans())
def test_vhdx_current_header_and_pending_log(seq1: int, seq2: int, log: bool) -> None:
    """The header with the higher sequence number is used; a log GUID there is reported as a pending log."""
    data = bytearray(seed_image("dynamic.vhdx"))
    for start, seq in ((64 * 1024, seq1), (128 * 1024, seq2)):
        struct.pack_into("<Q", data, start + 8, seq)
        if log and seq == max(seq1, seq2):
            data[start + 48 : start + 64] = uuid.UUID(int=5).bytes_le
        _fix(data, start, 4096)
    try:
        disk = open_container(io.BytesIO(bytes(data)), name="log.vhdx")
    except AuditError:
        return
    with disk:
        assert disk.facts.log_pending is (log or False) or seq1 == seq2
        read_all(disk)


# --- hive base block and log headers -----------------------------------------------------------------

BASE_FIELDS = {  # offset -> format
    4: "<I",
    8: "<I",
    20: "<I",
    24: "<I",
    28: "<I",
    32: "<I",
    36: "<I",
    40: "<I",
    44: "<I",
}


def good_base_block(bins: int = 4096) -> bytearray:
    raw = bytearray(4096)
    raw[0:4] = b"regf"
    struct.pack_into("<IIQIIIIIII", raw, 4, 1, 1, 0, 1, 5, FILE_TYPE_PRIMARY, 1, 0x20, bins, 1)
    struct.pack_into("<I", raw, 508, hive_checksum(bytes(raw)))
    return raw


@FAST
@given(raw=st.binary(min_size=0, max_size=600))
def test_base_block_from_any_bytes(raw: bytes) -> None:
    try:
        base = parse_base_block(raw, "prop")
        validate_primary(base, "prop")
    except CorruptHiveError:
        pass


@FAST
@given(fields=st.dictionaries(st.sampled_from(sorted(BASE_FIELDS)), st.integers(0, 2**32 - 1), max_size=3))
def test_base_block_fields_with_valid_checksum(fields: dict[int, int]) -> None:
    raw = good_base_block()
    for offset, value in fields.items():
        struct.pack_into(BASE_FIELDS[offset], raw, offset, value)
    struct.pack_into("<I", raw, 508, hive_checksum(bytes(raw)))
    base = parse_base_block(bytes(raw), "prop")
    assert base.checksum_ok
    try:
        validate_primary(base, "prop")
    except CorruptHiveError as err:
        assert "prop" in str(err)
        return
    assert base.signature == b"regf" and base.hive_bins_size % 4096 == 0 and base.root_cell < base.hive_bins_size


@FAST
@given(log=st.binary(max_size=3000), prefix=st.booleans())
def test_new_log_from_any_bytes(log: bytes, prefix: bool) -> None:
    data = (b"regf" + log) if prefix else log
    entries, problem = parse_new_log(data, "LOG1", "prop")
    assert isinstance(problem, str)
    for entry in entries:
        assert entry.offset >= 512


@FAST
@given(log=st.binary(max_size=3000), which=st.sampled_from(["LOG1", "LOG2", "LOG"]))
def test_replay_from_any_log(log: bytes, which: str) -> None:
    hive = bytes(good_base_block()) + b"hbin" + bytes(4092)
    base = parse_base_block(hive, "prop")
    try:
        result = replay_logs(hive, base, {which: log}, "prop")
    except (ReplayError, CorruptHiveError):
        return
    assert len(result.data) >= 4096


# --- BCD elements ---------------------------------------------------------------------------------------

ELEMENT_IDS = st.one_of(
    st.sampled_from(
        [
            0x16000009,
            0x250000E0,
            0x11000001,
            0x21000001,
            0x12000004,
            0x23000003,
            0x24000001,
            0x17000077,
            0x26000010,
            0x15000011,
            0x12000002,
        ]
    ),
    st.integers(0, 2**32 - 1),
)


@FAST
@given(eid=ELEMENT_IDS, reg_type=st.integers(0, 11), raw=st.binary(max_size=200))
def test_bcd_element_any_data(eid: int, reg_type: int, raw: bytes) -> None:
    reg_data: object = raw
    if reg_type in (1, 2):
        reg_data = raw.decode("utf-16-le", errors="replace")
    elif reg_type == 7:
        reg_data = [raw.decode("latin-1")]
    element = BCDElement(id=eid, name="prop", object_guid="{prop}", reg_type=reg_type, raw=raw, reg_data=reg_data)
    try:
        element.value  # noqa: B018
    except BCDError as err:
        assert "prop" in str(err) or "{prop}" in str(err)
    shown = element.display()
    assert shown is not None or element.format not in ("boolean", "integer")


@FAST
@given(raw=st.binary(max_size=300))
def test_bcd_device_any_bytes(raw: bytes) -> None:
    try:
        device = decode_device(raw, "prop device")
    except BCDError:
        return
    device.describe()
    device.to_dict()


@FAST
@given(value=st.booleans())
def test_bcd_boolean_round_trip(value: bool) -> None:
    element = BCDElement(id=0x16000009, name="x", object_guid="{g}", reg_type=3, raw=bytes([value]))
    assert element.value is value


# --- firewall rule strings and the WinHTTP blob ---------------------------------------------------------

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=12)
VALUES = st.text(alphabet=st.characters(blacklist_characters="|", blacklist_categories=("Cs",)), max_size=20)


@FAST
@given(text=st.text(max_size=300))
def test_firewall_rule_any_string(text: str) -> None:
    parsed = parse_rule("{prop}", text)
    assert parsed.raw == text


@FAST
@given(fields=st.lists(st.tuples(KEYS, VALUES), max_size=8))
def test_firewall_rule_round_trip(fields: list[tuple[str, str]]) -> None:
    text = "v2.30|" + "".join(f"{k}={v}|" for k, v in fields)
    parsed = parse_rule("{prop}", text)
    assert parsed.version == "v2.30"
    for key, _ in fields:
        assert list(parsed.fields[key.lower()]) == [v for k, v in fields if k.lower() == key.lower()]


@FAST
@given(raw=st.binary(max_size=200))
def test_winhttp_any_blob(raw: bytes) -> None:
    try:
        parsed = parse_winhttp_settings(raw)
    except ValueError as err:
        assert "WinHttpSettings" in str(err)
        return
    assert len(raw) >= 20 and len(parsed.proxy) + len(parsed.bypass) + len(parsed.rest) == len(raw) - 20


@FAST
@given(
    flags=st.integers(0, 2**32 - 1),
    proxy=st.text(alphabet=st.characters(max_codepoint=255), max_size=40),
    bypass=st.text(alphabet=st.characters(max_codepoint=255), max_size=40),
    rest=st.binary(max_size=16),
)
def test_winhttp_round_trip(flags: int, proxy: str, bypass: str, rest: bytes) -> None:
    p, b = proxy.encode("latin-1"), bypass.encode("latin-1")
    raw = struct.pack("<III", 0x18, 7, flags) + struct.pack("<I", len(p)) + p + struct.pack("<I", len(b)) + b + rest
    parsed = parse_winhttp_settings(raw)
    assert (parsed.flags, parsed.proxy, parsed.bypass, parsed.rest) == (flags, proxy, bypass, rest)


def test_seed_images_open() -> None:
    """The intact seeds the properties start from open and read back their pattern."""
    for kind in ("fixed.vhd", "dynamic.vhd", "dynamic.vhdx"):
        with open_container(io.BytesIO(seed_image(kind)), name=kind) as disk:
            disk.seek(MiB - 256)
            assert disk.read(256) == bytes(range(256))
