"""Generate the corpus of broken disk images from the intact base images (hardkit.py).

Nothing here is committed as data: :func:`mutants` lists every broken input as a recipe (a name, a
category, the base image and what to do to a copy of it), and :func:`materialize` writes one into a
directory. The recipes are deterministic (a fixed random seed), so a failing mutant's name is enough
to rebuild it.

References (where each structure lives):
- VHD 1.0 spec: footer (last 512 bytes, copy at 0 for dynamic disks), dynamic header, BAT, blocks,
  parent locators. [MS-VHDX] v20160714: headers at 64/128 KiB, region tables at 192/256 KiB, log,
  BAT and metadata regions.
- MBR (UEFI 2.9 §5.2.1), GPT (UEFI 2.9 §5.3: header at LBA 1, entries at LBA 2, CRC32s, backup).
- NTFS: boot sector (BPB; $MFT cluster at 0x30), FILE records with update sequence arrays, index
  entries ($FILE_NAME keys with the parent reference).
- Windows registry file format (regf base block of 4096 bytes, hbin, cells: nk / vk / lf / lh / ri / li).
- PE/COFF: e_lfanew, optional header data directories, resource directory tables.

Usage (to look at the corpus by hand)::

    python tests/hardening/corpus.py OUT_DIR [NAME_PATTERN]
"""

from __future__ import annotations

import fnmatch
import os
import random
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from uuid import UUID

from hardkit import Bases, copy_image, vhdwriter

SEED = 20261122
KiB, MiB = 1024, 1024 * 1024

Apply = Callable[[Path], Path]

#: the kinds of damage, one per recipe family
CATEGORIES = (
    "truncation",
    "vhd-footer",
    "vhd-header",
    "vhd-bat",
    "vhdx",
    "vhdx-bat",
    "chain",
    "partitions",
    "ntfs",
    "hive",
    "bcd",
    "pe",
    "random",
    "fat",
    "special",
)


@dataclass(frozen=True)
class Mutant:
    """One broken input: ``build(dir)`` writes it into ``dir`` and returns the path to audit."""

    name: str
    category: str
    #: the intact image this one is derived from (its audit is the reference for passes)
    base: str
    build: Callable[[Path], Path] = field(compare=False, repr=False)


# --- file helpers ---------------------------------------------------------------------------------


def _patch(path: Path, offset: int, data: bytes) -> None:
    size = path.stat().st_size
    if offset < 0:
        offset += size
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        if offset < 0:
            fh.seek(offset, os.SEEK_END)
        else:
            fh.seek(offset)
        return fh.read(length)


def _truncate(path: Path, size: int) -> None:
    with open(path, "r+b") as fh:
        fh.truncate(size)


def vhd_checksum(raw: bytes | bytearray, at: int) -> int:
    total = sum(raw[:at]) + sum(raw[at + 4 :])
    return ~total & 0xFFFFFFFF


# VHD footer and dynamic header field offsets (big-endian), VHD 1.0 spec
FOOTER_FIELDS = {
    "cookie": (0, "8s"),
    "data_offset": (16, ">Q"),
    "current_size": (48, ">Q"),
    "original_size": (40, ">Q"),
    "disk_type": (60, ">I"),
    "checksum": (64, ">I"),
    "cylinders": (56, ">H"),
    "version": (12, ">I"),
}
HEADER_FIELDS = {
    "cookie": (0, "8s"),
    "table_offset": (16, ">Q"),
    "header_version": (24, ">I"),
    "max_table_entries": (28, ">I"),
    "block_size": (32, ">I"),
    "checksum": (36, ">I"),
    "parent_unique_id": (40, "16s"),
}


def _set_struct(
    path: Path,
    start: int,
    length: int,
    fields: dict[str, tuple[int, str]],
    values: dict[str, object],
    checksum_at: int | None,
) -> None:
    raw = bytearray(_read(path, start, length))
    if len(raw) < length:
        return
    for name, value in values.items():
        off, fmt = fields[name]
        struct.pack_into(fmt, raw, off, value)
    if checksum_at is not None:
        struct.pack_into(">I", raw, checksum_at, vhd_checksum(raw, checksum_at))
    _patch(path, start, bytes(raw))


def vhd_footer(fix: bool = True, copy_too: bool = True, **values: object) -> Apply:
    def apply(path: Path) -> Path:
        starts = [path.stat().st_size - 512]
        if copy_too and _read(path, 0, 8) == b"conectix":
            starts.append(0)
        for start in starts:
            _set_struct(path, start, 512, FOOTER_FIELDS, values, 64 if fix and "checksum" not in values else None)
        return path

    return apply


def _vhd_header_offset(path: Path) -> int:
    return int(struct.unpack(">Q", _read(path, -512 + 16, 8))[0])


def vhd_header(fix: bool = True, **values: object) -> Apply:
    def apply(path: Path) -> Path:
        start = _vhd_header_offset(path)
        _set_struct(path, start, 1024, HEADER_FIELDS, values, 36 if fix and "checksum" not in values else None)
        return path

    return apply


def vhd_bat(entries: dict[int, int | Callable[[Path], int]]) -> Apply:
    def apply(path: Path) -> Path:
        header = _read(path, _vhd_header_offset(path), 1024)
        table = struct.unpack_from(">Q", header, 16)[0]
        for index, value in entries.items():
            v = value(path) if callable(value) else value
            _patch(path, table + 4 * index, struct.pack(">I", v & 0xFFFFFFFF))
        return path

    return apply


def vhd_bat_entry(path: Path, index: int) -> int:
    header = _read(path, _vhd_header_offset(path), 1024)
    table = struct.unpack_from(">Q", header, 16)[0]
    return int(struct.unpack(">I", _read(path, table + 4 * index, 4))[0])


def write(offset: int, data: bytes) -> Apply:
    def apply(path: Path) -> Path:
        _patch(path, offset, data)
        return path

    return apply


def truncate(size: int) -> Apply:
    def apply(path: Path) -> Path:
        _truncate(path, size if size >= 0 else path.stat().st_size + size)
        return path

    return apply


def chain(*steps: Apply) -> Apply:
    def apply(path: Path) -> Path:
        for step in steps:
            path = step(path)
        return path

    return apply


# --- VHDX ---------------------------------------------------------------------------------------------

VHDX_HEADERS = (64 * KiB, 128 * KiB)
VHDX_REGIONS = (192 * KiB, 256 * KiB)
BAT_GUID = UUID("2dc27766-f623-4200-9d64-115e9bfd4a08")
META_GUID = UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e")
FILE_PARAMS = UUID("caa16737-fa36-4d43-b3b6-33f0aa44e76b")
VIRTUAL_SIZE = UUID("2fa54224-cd1b-4876-b211-5dbed83bf4b8")
LOGICAL_SECTOR = UUID("8141bf1d-a96f-4709-ba47-f233a8faab5f")
PHYSICAL_SECTOR = UUID("cda348c7-445d-4471-9cc9-e9885251c556")


def crc32c(data: bytes) -> int:
    from dissect.util.hash.crc32c import crc32c as _crc

    return int(_crc(data))


def _fix_vhdx_crc(path: Path, start: int, size: int) -> None:
    raw = bytearray(_read(path, start, size))
    raw[4:8] = bytes(4)
    raw[4:8] = crc32c(bytes(raw)).to_bytes(4, "little")
    _patch(path, start, bytes(raw))


def vhdx_header(which: tuple[int, ...] = (1, 2), fix: bool = True, **fields: tuple[int, str, object]) -> Apply:
    """Set (offset, format, value) fields in VHDX header 1 and/or 2, recomputing the CRC-32C."""

    def apply(path: Path) -> Path:
        for number in which:
            start = VHDX_HEADERS[number - 1]
            for off, fmt, value in fields.values():
                _patch(path, start + off, struct.pack(fmt, value))
            if fix:
                _fix_vhdx_crc(path, start, 4 * KiB)
        return path

    return apply


def _regions(path: Path) -> dict[UUID, tuple[int, int, int]]:
    """Region GUID -> (entry offset in table 1, file offset, length)."""
    raw = _read(path, VHDX_REGIONS[0], 64 * KiB)
    count = struct.unpack_from("<I", raw, 8)[0]
    out = {}
    for i in range(min(count, 2047)):
        e = 16 + 32 * i
        out[UUID(bytes_le=raw[e : e + 16])] = (e, *struct.unpack_from("<QI", raw, e + 16))
    return out


def vhdx_region(guid: UUID, offset: int | None = None, length: int | None = None, fix: bool = True) -> Apply:
    def apply(path: Path) -> Path:
        entry, file_offset, size = _regions(path)[guid]
        for table in VHDX_REGIONS:
            _patch(
                path,
                table + entry + 16,
                struct.pack("<QI", file_offset if offset is None else offset, size if length is None else length),
            )
            if fix:
                _fix_vhdx_crc(path, table, 64 * KiB)
        return path

    return apply


def _metadata_item(path: Path, item: UUID) -> int:
    base = _regions(path)[META_GUID][1]
    raw = _read(path, base, 64 * KiB)
    count = struct.unpack_from("<H", raw, 10)[0]
    for i in range(count):
        e = 32 + 32 * i
        if UUID(bytes_le=raw[e : e + 16]) == item:
            return int(base + struct.unpack_from("<I", raw, e + 16)[0])
    raise LookupError(item)


def vhdx_metadata(item: UUID, fmt: str, *values: object) -> Apply:
    def apply(path: Path) -> Path:
        _patch(path, _metadata_item(path, item), struct.pack(fmt, *values))
        return path

    return apply


def vhdx_bat(index: int, value: int | Callable[[Path], int]) -> Apply:
    def apply(path: Path) -> Path:
        bat = _regions(path)[BAT_GUID][1]
        v = value(path) if callable(value) else value
        _patch(path, bat + 8 * index, struct.pack("<Q", v))
        return path

    return apply


def vhdx_bat_entry(path: Path, index: int) -> int:
    bat = _regions(path)[BAT_GUID][1]
    return int(struct.unpack("<Q", _read(path, bat + 8 * index, 8))[0])


# --- NTFS ------------------------------------------------------------------------------------------


def ntfs_geometry(path: Path, volume: int) -> tuple[int, int, int]:
    """(cluster size, $MFT offset in the file, MFT record size) of the NTFS volume at ``volume``."""
    boot = _read(path, volume, 512)
    bps, spc = struct.unpack_from("<HB", boot, 11)
    cluster = bps * spc
    mft = volume + struct.unpack_from("<Q", boot, 0x30)[0] * cluster
    clusters_per_record = struct.unpack_from("<b", boot, 0x40)[0]
    record = 2**-clusters_per_record if clusters_per_record < 0 else clusters_per_record * cluster
    return cluster, mft, record


def find_all(path: Path, needle: bytes, start: int = 0, end: int | None = None, align: int = 1) -> list[int]:
    data = _read(path, start, (end or path.stat().st_size) - start)
    found, at = [], data.find(needle)
    while at >= 0:
        if at % align == 0:
            found.append(start + at)
        at = data.find(needle, at + 1)
    return found


# --- registry cells ------------------------------------------------------------------------------------


def hive_cells(blob: bytes) -> dict[str, list[int]]:
    """Offsets (in the hive file) of the allocated cells by signature: nk, vk, lf, lh, li, ri, sk, db."""
    out: dict[str, list[int]] = {}
    pos = 4096
    while pos + 32 <= len(blob) and blob[pos : pos + 4] == b"hbin":
        bin_size = struct.unpack_from("<I", blob, pos + 8)[0]
        if bin_size < 32:
            break
        cell = pos + 32
        while cell + 4 <= pos + bin_size:
            size = struct.unpack_from("<i", blob, cell)[0]
            if size == 0:
                break
            if size < 0:
                sig = blob[cell + 4 : cell + 6].decode("latin-1")
                out.setdefault(sig, []).append(cell)
            cell += abs(size)
        pos += bin_size
    return out


def hive_bins(blob: bytes) -> list[int]:
    bins, pos = [], 4096
    while pos + 32 <= len(blob) and blob[pos : pos + 4] == b"hbin":
        bins.append(pos)
        pos += max(struct.unpack_from("<I", blob, pos + 8)[0], 4096)
    return bins


def regf_checksum(base: bytes | bytearray) -> int:
    value = 0
    for (word,) in struct.iter_unpack("<I", bytes(base[:508])):
        value ^= word
    if value == 0xFFFFFFFF:
        return 0xFFFFFFFE
    return value or 1


# --- the corpus ---------------------------------------------------------------------------------------


def _rng(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


def mutants(bases: Bases) -> list[Mutant]:
    """Every broken input, in a stable order with unique names."""
    out: list[Mutant] = []
    for gen in (
        _vhd_fixed,
        _vhd_dynamic,
        _vhdx,
        _chains,
        _partitions,
        _ntfs,
        _hives,
        _bcd,
        _bcd_inherit_loops,
        _pe,
        _random_bytes,
        _fat_chains,
        _extended_chains,
        _special_files,
        _foreign_hives,
        _list_cycles,
    ):
        out.extend(gen(bases))
    names = [m.name for m in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    assert not dupes, f"mutant names must be unique: {dupes[:5]}"
    return out


def _on(base: str, bases: Bases, *steps: Apply) -> Callable[[Path], Path]:
    src = bases.path(base)

    def build(directory: Path) -> Path:
        target = copy_image(src, directory / Path(base).name)
        return chain(*steps)(target)

    return build


def _vhd_fixed(bases: Bases) -> Iterator[Mutant]:
    base = "gen1-fixed.vhd"
    size = bases.path(base).stat().st_size
    hives = bases.hives["gen1.raw"]
    cuts = [
        0,
        1,
        511,
        512,
        513,
        4096,
        MiB - 1,
        MiB,
        MiB + 512,
        size - 1,
        size - 100,
        size - 511,
        size - 512,
        size - 513,
        size // 2,
    ]
    for at, length in hives.values():
        cuts += [at, at + 1, at + 4096, at + length // 2, at + length - 1]
    rng = _rng(base)
    cuts += [rng.randrange(1, size) for _ in range(20)]
    for cut in sorted(set(cuts)):
        yield Mutant(f"{base}/truncate@{cut}", "truncation", base, _on(base, bases, truncate(cut)))
    footer_cases: list[tuple[str, dict[str, object], bool]] = [
        ("cookie", {"cookie": b"conectiy"}, True),
        ("checksum", {"checksum": 0x12345678}, False),
        ("size-2^63", {"current_size": 2**63}, True),
        ("size-2^64-1", {"current_size": 2**64 - 1}, True),
        ("size-0", {"current_size": 0}, True),
        ("size-plus-1MiB", {"current_size": size - 512 + MiB}, True),
        ("size-minus-1", {"current_size": size - 513}, True),
        ("type-0", {"disk_type": 0}, True),
        ("type-dynamic", {"disk_type": 3}, True),
        ("type-differencing", {"disk_type": 4}, True),
        ("type-99", {"disk_type": 99}, True),
        ("data-offset-0", {"data_offset": 0}, True),
        ("version-2", {"version": 0x00020000}, True),
        ("cylinders-0", {"cylinders": 0}, True),
    ]
    for label, values, fix in footer_cases:
        yield Mutant(f"{base}/footer-{label}", "vhd-footer", base, _on(base, bases, vhd_footer(fix=fix, **values)))


def _vhd_dynamic(bases: Bases) -> Iterator[Mutant]:
    base = "gen1-dynamic.vhd"
    path = bases.path(base)
    size = path.stat().st_size
    table = struct.unpack_from(">Q", _read(path, 512, 1024), 16)[0]
    entries = struct.unpack_from(">I", _read(path, 512, 1024), 28)[0]
    allocated = [i for i in range(entries) if vhd_bat_entry(path, i) != 0xFFFFFFFF]
    first_block = min(vhd_bat_entry(path, i) for i in allocated) * 512
    cuts = [
        0,
        100,
        511,
        512,
        1024,
        1535,
        1536,
        table,
        table + 2,
        table + 4 * entries - 1,
        first_block,
        first_block + 511,
        first_block + 512 + 4096,
        size - 1,
        size - 511,
        size - 512,
        size - 513,
    ]
    rng = _rng(base)
    cuts += [rng.randrange(first_block, size) for _ in range(20)]
    for cut in sorted(set(cuts)):
        yield Mutant(f"{base}/truncate@{cut}", "truncation", base, _on(base, bases, truncate(cut)))
    for label, values, fix in [
        ("cookie", {"cookie": b"cxsparsf"}, True),
        ("checksum", {"checksum": 1}, False),
        ("table-past-end", {"table_offset": size + MiB}, True),
        ("table-2^63", {"table_offset": 2**63}, True),
        ("table-0", {"table_offset": 0}, True),
        ("table-on-header", {"table_offset": 512}, True),
        ("entries-0", {"max_table_entries": 0}, True),
        ("entries-huge", {"max_table_entries": 0xFFFFFFFF}, True),
        ("entries-plus-1", {"max_table_entries": entries + 1}, True),
        ("block-0", {"block_size": 0}, True),
        ("block-1", {"block_size": 1}, True),
        ("block-513", {"block_size": 513}, True),
        ("block-2^31", {"block_size": 2**31}, True),
        ("block-4GiB-1", {"block_size": 0xFFFFFFFF}, True),
        ("version-0", {"header_version": 0}, True),
    ]:
        yield Mutant(f"{base}/header-{label}", "vhd-header", base, _on(base, bases, vhd_header(fix=fix, **values)))
    for label, values, fix, copy_too in [
        ("cookie-end", {"cookie": b"XXXXXXXX"}, True, False),
        ("cookie-both", {"cookie": b"XXXXXXXX"}, True, True),
        ("checksum-end", {"checksum": 7}, False, False),
        ("checksum-both", {"checksum": 7}, False, True),
        ("data-offset-past-end", {"data_offset": size + 4096}, True, True),
        ("data-offset-on-footer", {"data_offset": size - 512}, True, True),
        ("data-offset-0", {"data_offset": 0}, True, True),
        ("size-2^63", {"current_size": 2**63}, True, True),
        ("size-0", {"current_size": 0}, True, True),
        ("size-doubled", {"current_size": 128 * MiB}, True, True),
        ("type-fixed", {"disk_type": 2}, True, True),
        ("type-differencing", {"disk_type": 4}, True, True),
    ]:
        yield Mutant(
            f"{base}/footer-{label}",
            "vhd-footer",
            base,
            _on(base, bases, vhd_footer(fix=fix, copy_too=copy_too, **values)),
        )
    for index in sorted(set(allocated[:6] + allocated[-1:])):
        own = vhd_bat_entry(path, index)
        for label, value in [
            ("past-end", (size + MiB) // 512),
            ("at-end", size // 512 - 1),
            ("zero", 0),
            ("on-header", 1),
            ("on-bat", table // 512),
            ("huge", 0xFFFFFFFE),
            ("overlap-prev", own - 1),
        ]:
            yield Mutant(f"{base}/bat[{index}]-{label}", "vhd-bat", base, _on(base, bases, vhd_bat({index: value})))
    if len(allocated) >= 2:
        a, b = allocated[0], allocated[1]
        yield Mutant(
            f"{base}/bat-overlap-{a}-{b}", "vhd-bat", base, _on(base, bases, vhd_bat({b: vhd_bat_entry(path, a)}))
        )
        yield Mutant(
            f"{base}/bat-all-same",
            "vhd-bat",
            base,
            _on(base, bases, vhd_bat({i: vhd_bat_entry(path, a) for i in allocated})),
        )


def _vhdx(bases: Bases) -> Iterator[Mutant]:
    for base in ("gen1.vhdx", "gen2.vhdx"):
        path = bases.path(base)
        size = path.stat().st_size
        regions = _regions(path)
        bat = regions[BAT_GUID][1]
        meta = regions[META_GUID][1]
        cuts = [
            0,
            8,
            64 * KiB,
            64 * KiB + 100,
            128 * KiB,
            192 * KiB,
            256 * KiB,
            MiB,
            bat,
            bat + 8,
            meta,
            meta + 4096,
            size - 1,
            size // 2,
        ]
        rng = _rng(base)
        cuts += [rng.randrange(meta, size) for _ in range(10)]
        for cut in sorted(set(cuts)):
            yield Mutant(f"{base}/truncate@{cut}", "truncation", base, _on(base, bases, truncate(cut)))
        guid = UUID("01234567-89ab-cdef-0123-456789abcdef").bytes_le
        for label, step in [
            ("signature", write(0, b"vhdxfilf")),
            ("header1-crc", write(VHDX_HEADERS[0] + 4, b"\xde\xad\xbe\xef")),
            ("header2-crc", write(VHDX_HEADERS[1] + 4, b"\xde\xad\xbe\xef")),
            (
                "both-header-crcs",
                chain(write(VHDX_HEADERS[0] + 4, b"\x01\x02\x03\x04"), write(VHDX_HEADERS[1] + 4, b"\x01\x02\x03\x04")),
            ),
            ("header-signatures", chain(write(VHDX_HEADERS[0], b"HEAD"), write(VHDX_HEADERS[1], b"HEAD"))),
            ("pending-log", vhdx_header(log=(48, "16s", guid))),
            ("pending-log-header1", vhdx_header(which=(1,), log=(48, "16s", guid), seq=(8, "<Q", 2**40))),
            ("version-2", vhdx_header(version=(66, "<H", 2))),
            ("log-offset-past-end", vhdx_header(log_offset=(72, "<Q", size + MiB), log=(48, "16s", guid))),
            ("log-length-0", vhdx_header(log_length=(68, "<I", 0), log=(48, "16s", guid))),
            ("sequence-equal", vhdx_header(seq=(8, "<Q", 5))),
            ("region-crc1", write(VHDX_REGIONS[0] + 4, b"\x00\x00\x00\x01")),
            (
                "region-crc-both",
                chain(write(VHDX_REGIONS[0] + 4, b"\x00\x00\x00\x01"), write(VHDX_REGIONS[1] + 4, b"\x00\x00\x00\x01")),
            ),
            (
                "region-count-huge",
                chain(write(VHDX_REGIONS[0] + 8, b"\xff\xff\xff\x7f"), write(VHDX_REGIONS[1] + 8, b"\xff\xff\xff\x7f")),
            ),
            ("bat-past-end", vhdx_region(BAT_GUID, offset=size + MiB)),
            ("bat-at-0", vhdx_region(BAT_GUID, offset=0)),
            ("bat-length-0", vhdx_region(BAT_GUID, length=0)),
            ("bat-length-huge", vhdx_region(BAT_GUID, length=0xFFF00000)),
            ("bat-over-metadata", vhdx_region(BAT_GUID, offset=meta)),
            ("metadata-over-headers", vhdx_region(META_GUID, offset=0)),
            ("metadata-past-end", vhdx_region(META_GUID, offset=2**62)),
            ("virtual-size-2^63", vhdx_metadata(VIRTUAL_SIZE, "<Q", 2**63)),
            ("virtual-size-0", vhdx_metadata(VIRTUAL_SIZE, "<Q", 0)),
            ("virtual-size-odd", vhdx_metadata(VIRTUAL_SIZE, "<Q", 64 * MiB + 1)),
            ("block-size-0", vhdx_metadata(FILE_PARAMS, "<I", 0)),
            ("block-size-1", vhdx_metadata(FILE_PARAMS, "<I", 1)),
            ("block-size-3MiB", vhdx_metadata(FILE_PARAMS, "<I", 3 * MiB)),
            ("block-size-2^31", vhdx_metadata(FILE_PARAMS, "<I", 2**31)),
            ("flags-has-parent", vhdx_metadata(FILE_PARAMS, "<II", 32 * MiB, 2)),
            ("logical-sector-1234", vhdx_metadata(LOGICAL_SECTOR, "<I", 1234)),
            ("logical-sector-4096", vhdx_metadata(LOGICAL_SECTOR, "<I", 4096)),
            ("physical-sector-0", vhdx_metadata(PHYSICAL_SECTOR, "<I", 0)),
            ("metadata-signature", write(meta, b"metadatx")),
            ("metadata-count-huge", write(meta + 10, b"\xff\xff")),
        ]:
            yield Mutant(f"{base}/{label}", "vhdx", base, _on(base, bases, step))
        for index in (0, 1, 2, 8, 16):
            own = vhdx_bat_entry(path, index)
            mb_units = own >> 20
            for label, value in [
                ("past-end", ((size + MiB) // MiB) << 20 | 6),
                ("offset-0", 6),
                ("on-bat", (bat // MiB) << 20 | 6),
                ("state-5", own & ~7 | 5),
                ("state-7", own & ~7 | 7),
                ("huge", 0xFFFFFFFFFFF00006),
                ("overlap-next", ((mb_units + 1) << 20 | 6) if mb_units else 6),
            ]:
                yield Mutant(f"{base}/bat[{index}]-{label}", "vhdx-bat", base, _on(base, bases, vhdx_bat(index, value)))


def _chains(bases: Bases) -> Iterator[Mutant]:
    writer = vhdwriter()
    base = "chain1/gen1-azure-child.vhd"
    child, parent = bases.path(base), bases.path("chain1/gen1-azure.vhd")
    mbr = _read(bases.path("gen1.raw"), 0, 512)

    def pair(directory: Path) -> tuple[Path, Path]:
        c = Path(copy_image(child, directory / child.name))
        p = Path(copy_image(parent, directory / parent.name))
        return c, p

    def missing(d: Path) -> Path:
        c, p = pair(d)
        p.unlink()
        return c

    def renamed(d: Path) -> Path:
        c, p = pair(d)
        p.rename(d / "other.vhd")
        return c

    def directory(d: Path) -> Path:
        c, p = pair(d)
        p.unlink()
        p.mkdir()
        return c

    def not_image(d: Path) -> Path:
        c, p = pair(d)
        p.write_bytes(b"this is not a disk image\n" * 1000)
        return c

    def empty(d: Path) -> Path:
        c, p = pair(d)
        p.write_bytes(b"")
        return c

    def raw_parent(d: Path) -> Path:
        c, p = pair(d)
        p.unlink()
        copy_image(bases.path("gen1.raw"), p)
        return c

    def vhdx_parent(d: Path) -> Path:
        c, p = pair(d)
        p.unlink()
        copy_image(bases.path("gen1.vhdx"), p)
        return c

    def fixed_parent_other_id(d: Path) -> Path:
        c, p = pair(d)
        p.unlink()
        copy_image(bases.path("gen1-fixed.vhd"), p)
        return c

    def self_parent(d: Path) -> Path:
        own = UUID("11111111-2222-3333-4444-555555555555").bytes
        spec = writer.DiffSpec(
            size=64 * MiB, parent_unique_id=own, unique_id=own, relative=".\\self.vhd", sectors={0: mbr}
        )
        writer.write_vhd(d / "self.vhd", spec, differencing=True)
        return d / "self.vhd"

    def loop(d: Path) -> Path:
        a, b = UUID(int=1).bytes, UUID(int=2).bytes
        writer.write_vhd(
            d / "a.vhd",
            writer.DiffSpec(64 * MiB, parent_unique_id=b, unique_id=a, relative=".\\b.vhd", sectors={0: mbr}),
            differencing=True,
        )
        writer.write_vhd(
            d / "b.vhd",
            writer.DiffSpec(64 * MiB, parent_unique_id=a, unique_id=b, relative=".\\a.vhd"),
            differencing=True,
        )
        return d / "a.vhd"

    def loop_of_three(d: Path) -> Path:
        ids = [UUID(int=i + 10).bytes for i in range(3)]
        for i, name in enumerate("xyz"):
            nxt = "xyz"[(i + 1) % 3]
            writer.write_vhd(
                d / f"{name}.vhd",
                writer.DiffSpec(
                    64 * MiB, parent_unique_id=ids[(i + 1) % 3], unique_id=ids[i], relative=f".\\{nxt}.vhd"
                ),
                differencing=True,
            )
        return d / "x.vhd"

    def no_locators(d: Path) -> Path:
        writer.write_vhd(
            d / "orphan.vhd",
            writer.DiffSpec(64 * MiB, relative=None, absolute=None, sectors={0: mbr}),
            differencing=True,
        )
        return d / "orphan.vhd"

    def locator(text: str) -> Callable[[Path], Path]:
        def build(d: Path) -> Path:
            c, p = pair(d)
            c.unlink()
            writer.write_child(c, p, {0: mbr}, relative=text)
            return c

        return build

    def parent_damaged(step: Apply) -> Callable[[Path], Path]:
        def build(d: Path) -> Path:
            c, p = pair(d)
            step(p)
            return c

        return build

    def child_of_child_loop(d: Path) -> Path:
        c, p = pair(d)
        # the parent's footer says it is differencing and names the child as its parent
        vhd_footer(disk_type=4)(p)
        return c

    cases: list[tuple[str, Callable[[Path], Path]]] = [
        ("parent-missing", missing),
        ("parent-renamed", renamed),
        ("parent-is-directory", directory),
        ("parent-not-an-image", not_image),
        ("parent-empty-file", empty),
        ("parent-raw", raw_parent),
        ("parent-vhdx", vhdx_parent),
        ("parent-other-unique-id", fixed_parent_other_id),
        ("parent-is-itself", self_parent),
        ("parent-loop-of-two", loop),
        ("parent-loop-of-three", loop_of_three),
        ("no-locators", no_locators),
        ("locator-dot", locator(".")),
        ("locator-dotdot", locator("..")),
        ("locator-root", locator("\\")),
        ("locator-dev-zero", locator("/dev/zero")),
        ("locator-proc", locator("/proc/self/mem")),
        ("locator-empty", locator("")),
        ("locator-long", locator("a\\" * 200 + "p.vhd")),
        ("locator-nul", locator("par\x00ent.vhd")),
        ("parent-truncated", parent_damaged(truncate(4096))),
        ("parent-footer-cookie", parent_damaged(vhd_footer(cookie=b"XXXXXXXX"))),
        ("parent-size-doubled", parent_damaged(vhd_footer(current_size=128 * MiB))),
        ("parent-made-differencing", child_of_child_loop),
    ]
    # a recipe that writes a new child over the parent (with no changes of its own) is compared with the parent
    rewritten = {"parent-is-itself", "parent-loop-of-two", "parent-loop-of-three", "no-locators"}
    for label, build in cases:
        reference = "chain1/gen1-azure.vhd" if label in rewritten or label.startswith("locator-") else base
        yield Mutant(f"{base}/{label}", "chain", reference, build)
    for label, step in [
        ("header-parent-id", vhd_header(parent_unique_id=bytes(16))),
        ("header-block-0", vhd_header(block_size=0)),
        ("bat-past-end", vhd_bat({0: 0x7FFFFFFF})),
        ("truncate-bitmap", truncate(-(2 * MiB))),
    ]:
        yield Mutant(f"{base}/child-{label}", "chain", base, _on(base, bases, step))

    # differencing VHDX: the sample's child and Hyper-V's checkpoint, each beside its parent, then broken
    for hbase, hparent in (
        ("chain2/gen2-misconfigured-child.vhdx", "chain2/gen2-misconfigured.vhdx"),
        ("hyperv/differencing.avhdx", "hyperv/dynamic.vhdx"),
    ):
        hv_child, hv_parent = bases.path(hbase), bases.path(hparent)

        def hv(
            step: Callable[[Path, Path], object], _c: Path = hv_child, _p: Path = hv_parent
        ) -> Callable[[Path], Path]:
            def build(d: Path) -> Path:
                c = Path(copy_image(_c, d / _c.name))
                p = Path(copy_image(_p, d / _p.name))
                step(c, p)
                return c

            return build

        for label, step in [
            ("parent-missing", lambda c, p: p.unlink()),
            ("parent-other-vhdx", lambda c, p: (p.unlink(), copy_image(bases.path("gen1.vhdx"), p))),
            ("parent-is-directory", lambda c, p: (p.unlink(), p.mkdir())),
            ("parent-not-an-image", lambda c, p: p.write_bytes(b"not a disk\n" * 4096)),
            ("parent-truncated", lambda c, p: _truncate(p, 300 * KiB)),
            ("parent-is-itself", lambda c, p: (p.unlink(), copy_image(c, p))),
            ("parent-log-pending", lambda c, p: vhdx_header(log=(48, "16s", UUID(int=7).bytes_le))(p)),
            ("child-log-pending", lambda c, p: vhdx_header(log=(48, "16s", UUID(int=7).bytes_le))(c)),
            ("child-bat-past-end", lambda c, p: vhdx_bat(0, ((c.stat().st_size + MiB) // MiB) << 20 | 6)(c)),
            ("child-truncated", lambda c, p: _truncate(c, c.stat().st_size // 2)),
        ]:
            yield Mutant(f"{hbase}/{label}", "chain", hbase, hv(step))


def _partitions(bases: Bases) -> Iterator[Mutant]:
    for base in ("gen1.raw", "gen1-fixed.vhd"):
        path = bases.path(base)
        mbr = _read(path, 0, 512)
        start, count = struct.unpack_from("<II", mbr, 446 + 8)
        disk_sectors = 64 * MiB // 512

        def entry(status: int, ptype: int, lba: int, sectors: int) -> bytes:
            return struct.pack("<B3sB3sII", status, b"\xfe\xff\xff", ptype, b"\xfe\xff\xff", lba, sectors)

        for label, step in [
            ("no-55aa", write(510, b"\x00\x00")),
            ("start-past-end", write(446, entry(0x80, 7, disk_sectors + 10, count))),
            ("size-past-end", write(446, entry(0x80, 7, start, disk_sectors))),
            ("size-max", write(446, entry(0x80, 7, start, 0xFFFFFFFF))),
            ("start-max", write(446, entry(0x80, 7, 0xFFFFFFFF, 0xFFFFFFFF))),
            ("size-0", write(446, entry(0x80, 7, start, 0))),
            ("start-0", write(446, entry(0x80, 7, 0, count))),
            ("overlap-2", write(462, entry(0, 7, start + 8, count))),
            ("duplicate-4", write(446, entry(0x80, 7, start, count) * 4)),
            ("protective-no-gpt", write(446, entry(0, 0xEE, 1, disk_sectors - 1))),
            (
                "extended-self-loop",
                chain(
                    write(462, entry(0, 0x05, 64, 1024)),
                    write(64 * 512 + 446, entry(0, 0x05, 0, 1024)),
                    write(64 * 512 + 510, b"\x55\xaa"),
                ),
            ),
            ("extended-past-end", write(462, entry(0, 0x0F, disk_sectors * 4, 1024))),
            ("status-bad", write(446, b"\x42")),
            ("type-0", write(450, b"\x00")),
            ("type-fat", write(450, b"\x0c")),
            ("all-zero", write(0, bytes(512))),
        ]:
            yield Mutant(f"{base}/mbr-{label}", "partitions", base, _on(base, bases, step))
    base = "gen2.raw"
    path = bases.path(base)
    size = path.stat().st_size
    header = _read(path, 512, 92)
    entries_lba, n, esize = struct.unpack_from("<QII", header, 72)
    table = entries_lba * 512

    def gpt_header(fix: bool = True, backup_too: bool = False, **fields: tuple[int, str, object]) -> Apply:
        def apply(p: Path) -> Path:
            starts = [512] + ([size - 512] if backup_too else [])
            for at in starts:
                raw = bytearray(_read(p, at, 92))
                for off, fmt, value in fields.values():
                    struct.pack_into(fmt, raw, off, value)
                if fix:
                    struct.pack_into("<I", raw, 16, 0)
                    struct.pack_into("<I", raw, 16, zlib.crc32(bytes(raw)))
                _patch(p, at, bytes(raw))
            return p

        return apply

    def gpt_entry(index: int, first: int, last: int) -> Apply:
        def apply(p: Path) -> Path:
            _patch(p, table + index * esize + 32, struct.pack("<QQ", first, last))
            raw = _read(p, table, n * esize)
            gpt_header(entries_crc=(88, "<I", zlib.crc32(raw)))(p)
            return p

        return apply

    last_lba = size // 512 - 1
    for label, step in [
        ("header-crc", write(512 + 16, b"\x00\x00\x00\x00")),
        ("both-header-crcs", chain(write(512 + 16, b"\x00\x00\x00\x00"), write(size - 512 + 16, b"\x00\x00\x00\x00"))),
        ("signature", write(512, b"EFI PARX")),
        ("entries-crc", write(table + 40, b"\xff")),
        ("entries-huge", gpt_header(n=(80, "<I", 0xFFFFFFFF))),
        ("entries-0", gpt_header(n=(80, "<I", 0))),
        ("entry-size-0", gpt_header(es=(84, "<I", 0))),
        ("entry-size-1", gpt_header(es=(84, "<I", 1))),
        ("entry-size-huge", gpt_header(es=(84, "<I", 0x10000000))),
        ("entries-lba-past-end", gpt_header(lba=(72, "<Q", 2**40))),
        ("entries-lba-0", gpt_header(lba=(72, "<Q", 0))),
        ("header-size-0", gpt_header(hs=(12, "<I", 0))),
        ("header-size-huge", gpt_header(hs=(12, "<I", 0xFFFFFFFF))),
        ("my-lba-wrong", gpt_header(my=(24, "<Q", 7))),
        ("last-usable-past-end", gpt_header(lu=(48, "<Q", 2**63))),
        ("part0-past-end", gpt_entry(0, last_lba + 100, last_lba + 200)),
        ("part0-reversed", gpt_entry(0, 4000, 2048)),
        ("part0-huge", gpt_entry(0, 2048, 2**64 - 1)),
        ("part1-overlaps-0", gpt_entry(1, 2048, 100000)),
        ("part2-overlaps-all", gpt_entry(2, 34, last_lba)),
        ("part2-starts-at-0", gpt_entry(2, 0, 4096)),
        ("mbr-not-protective", write(450, b"\x07")),
    ]:
        yield Mutant(f"{base}/gpt-{label}", "partitions", base, _on(base, bases, step))


def _ntfs(bases: Bases) -> Iterator[Mutant]:
    base = "gen1.raw"
    path = bases.path(base)
    vol = bases.volumes[base]["ntfs"]
    cluster, mft, record = ntfs_geometry(path, vol)
    for label, step in [
        ("oem", write(vol + 3, b"XXXXXXXX")),
        ("bytes-per-sector-0", write(vol + 11, b"\x00\x00")),
        ("bytes-per-sector-1", write(vol + 11, b"\x01\x00")),
        ("sectors-per-cluster-0", write(vol + 13, b"\x00")),
        ("sectors-per-cluster-255", write(vol + 13, b"\xff")),
        ("mft-cluster-past-end", write(vol + 0x30, struct.pack("<Q", 2**40))),
        ("mft-cluster-0", write(vol + 0x30, struct.pack("<Q", 0))),
        ("mft-record-size-0", write(vol + 0x40, b"\x00")),
        ("mft-record-size-huge", write(vol + 0x40, b"\x7f")),
        ("mft-record-size-neg-huge", write(vol + 0x40, b"\x80")),
        ("index-size-0", write(vol + 0x44, b"\x00")),
        ("total-sectors-0", write(vol + 0x28, bytes(8))),
        ("boot-zero", write(vol, bytes(512))),
    ]:
        yield Mutant(f"{base}/ntfs-boot-{label}", "ntfs", base, _on(base, bases, step))
    # FILE records: the system files, the root, and the records of the path to the hives
    records = list(range(0, 16)) + list(range(24, 80, 3))
    for number in records:
        at = mft + number * record
        rec = _read(path, at, record)
        if rec[:4] != b"FILE":
            continue
        attr = struct.unpack_from("<H", rec, 0x14)[0]
        for label, step in [
            ("signature", write(at, b"BAAD")),
            ("fixup", write(at + 510, b"\x12\x34")),
            ("usa-offset", write(at + 4, b"\xff\x0f")),
            ("attr-offset", write(at + 0x14, b"\xf0\x03")),
            ("attr-length-0", write(at + attr + 4, bytes(4))),
            ("attr-length-huge", write(at + attr + 4, b"\xff\xff\xff\x7f")),
        ]:
            yield Mutant(f"{base}/mft[{number}]-{label}", "ntfs", base, _on(base, bases, step))
    # directory loops: index entries naming System32 / config point back at their own parent
    for name in ("System32", "config", "Windows"):
        hits = []
        for namespace in range(4):  # POSIX (ntfs-3g's), Win32, DOS, Win32 & DOS
            needle = bytes([len(name), namespace]) + name.encode("utf-16-le")
            hits += find_all(path, needle, vol, vol + 63 * MiB)
        for k, hit in enumerate(hits[:4]):
            key = hit - 0x40  # start of the $FILE_NAME key
            entry = key - 0x10
            parent_ref = _read(path, key, 8)
            yield Mutant(f"{base}/dir-loop-{name}-{k}", "ntfs", base, _on(base, bases, write(entry, parent_ref)))
            yield Mutant(
                f"{base}/dir-self-{name}-{k}", "ntfs", base, _on(base, bases, write(key, _read(path, entry, 8)))
            )


def _hive_step(base: str, bases: Bases, hive: str, offset: int, data: bytes, fix_checksum: bool = False) -> Apply:
    at, _length = bases.hives[base][hive]

    def apply(p: Path) -> Path:
        _patch(p, at + offset, data)
        if fix_checksum:
            head = bytearray(_read(p, at, 4096))
            struct.pack_into("<I", head, 508, regf_checksum(head))
            _patch(p, at, bytes(head))
        return p

    return apply


def _hives(bases: Bases) -> Iterator[Mutant]:
    base = "gen1.raw"
    for hive in ("SYSTEM", "SOFTWARE", "BCD"):
        if hive not in bases.hives[base]:
            continue
        blob = bases.hive_files[hive].read_bytes()
        length = len(blob)
        cells = hive_cells(blob)
        bins = hive_bins(blob)

        def h(offset: int, data: bytes, fix: bool = False, _hive: str = hive) -> Apply:
            return _hive_step(base, bases, _hive, offset, data, fix)

        root = struct.unpack_from("<I", blob, 36)[0]
        base_cases = [
            ("signature", h(0, b"regX")),
            ("checksum", h(508, b"\x00\x00\x00\x00")),
            ("dirty-no-logs", h(4, struct.pack("<I", struct.unpack_from("<I", blob, 4)[0] + 1), True)),
            ("seq-huge", h(4, struct.pack("<II", 0xFFFFFFFF, 0), True)),
            ("root-cell-bad", h(36, struct.pack("<I", 0xFFFFFFF0), True)),
            ("root-cell-0", h(36, struct.pack("<I", 0), True)),
            ("root-cell-not-nk", h(36, struct.pack("<I", cells.get("vk", [4128])[0] - 4096), True)),
            ("bins-size-huge", h(40, struct.pack("<I", 0x7FFFF000), True)),
            ("bins-size-0", h(40, struct.pack("<I", 0), True)),
            ("bins-size-unaligned", h(40, struct.pack("<I", 4097), True)),
            ("version-9", h(24, struct.pack("<I", 9), True)),
            ("version-0", h(20, struct.pack("<II", 0, 0), True)),
            ("type-log", h(28, struct.pack("<I", 1), True)),
            ("format-2", h(32, struct.pack("<I", 2), True)),
            ("zero-base-block", h(0, bytes(4096))),
            ("truncated-bins-half", h(4096 + (length - 4096) // 2, bytes((length - 4096) // 2))),
            ("truncated-bins-all", h(4096, bytes(length - 4096))),
        ]
        for label, step in base_cases:
            yield Mutant(f"{base}/{hive}-base-{label}", "hive", base, _on(base, bases, step))
        for i, b in enumerate(bins[:4]):
            for label in ("signature", "size-0", "size-huge", "offset"):
                if label == "signature":
                    step = h(b, b"hbiX")
                elif label == "size-0":
                    step = h(b + 8, bytes(4))
                elif label == "size-huge":
                    step = h(b + 8, struct.pack("<I", 0x7FFFFFF0))
                else:
                    step = h(b + 4, struct.pack("<I", 0x10000000))
                yield Mutant(f"{base}/{hive}-bin[{i}]-{label}", "hive", base, _on(base, bases, step))
        rng = _rng(f"{hive}-cells")
        nks = cells.get("nk", [])
        picks = sorted(set([root + 4096] + rng.sample(nks, min(6, len(nks)))))
        for cell in picks:
            rel = cell - 4096
            for label, off, data in [
                ("subkeys-huge", 4 + 0x14, b"\xff\xff\xff\x7f"),
                ("subkey-list-bad", 4 + 0x1C, b"\xf0\xff\xff\x7f"),
                ("subkey-list-self", 4 + 0x1C, struct.pack("<I", rel)),
                ("values-huge", 4 + 0x24, b"\xff\xff\xff\x7f"),
                ("value-list-bad", 4 + 0x28, b"\x00\x00\x00\x70"),
                ("value-list-self", 4 + 0x28, struct.pack("<I", rel)),
                ("name-length-huge", 4 + 0x48, b"\xff\xff"),
                ("parent-self", 4 + 0x10, struct.pack("<I", rel)),
                ("cell-size-0", 0, bytes(4)),
                ("cell-size-positive", 0, struct.pack("<i", 8)),
                ("signature", 4, b"xx"),
                ("sk-bad", 4 + 0x2C, b"\xff\xff\xff\xff"),
            ]:
                yield Mutant(f"{base}/{hive}-nk@{rel}-{label}", "hive", base, _on(base, bases, h(cell + off, data)))
        for sig in ("lf", "lh", "ri", "li"):
            for cell in cells.get(sig, [])[:3]:
                rel = cell - 4096
                for label, off, data in [
                    ("count-huge", 6, b"\xff\xff"),
                    ("first-self", 8, struct.pack("<I", rel)),
                    ("first-bad", 8, b"\xf8\xff\xff\x7f"),
                    ("first-0", 8, bytes(4)),
                ]:
                    yield Mutant(
                        f"{base}/{hive}-{sig}@{rel}-{label}", "hive", base, _on(base, bases, h(cell + off, data))
                    )
        vks = cells.get("vk", [])
        for cell in rng.sample(vks, min(5, len(vks))):
            rel = cell - 4096
            for label, off, data in [
                ("data-length-huge", 8, b"\x00\x00\x00\x7f"),
                ("data-offset-bad", 12, b"\xf0\xff\xff\x7f"),
                ("data-offset-self", 12, struct.pack("<I", rel)),
                ("name-length-huge", 6, b"\xff\xff"),
                ("type-huge", 16, b"\xff\xff\xff\xff"),
            ]:
                yield Mutant(f"{base}/{hive}-vk@{rel}-{label}", "hive", base, _on(base, bases, h(cell + off, data)))


def _bcd(bases: Bases) -> Iterator[Mutant]:
    """BCD elements with wrong sizes: the ``Element`` values' data length, and device blobs."""
    base = "gen1.raw"
    if "BCD" not in bases.hives[base]:
        return
    blob = bases.hive_files["BCD"].read_bytes()
    cells = hive_cells(blob)
    elements = [c for c in cells.get("vk", []) if blob[c + 24 : c + 31] == b"Element"]
    rng = _rng("bcd")
    for cell in rng.sample(elements, min(20, len(elements))):
        rel = cell - 4096
        length = struct.unpack_from("<I", blob, cell + 8)[0]
        inline = bool(length & 0x80000000)
        real = length & 0x7FFFFFFF
        cases = [("len-0", 0 | (length & 0x80000000)), ("len-plus-1", (real + 1) | (length & 0x80000000))]
        if real > 1:
            cases.append(("len-minus-1", (real - 1) | (length & 0x80000000)))
        if not inline:
            cases.append(("len-huge", 0x00FFFFFF))
        for label, value in cases:
            yield Mutant(
                f"{base}/BCD-element@{rel}-{label}",
                "bcd",
                base,
                _on(base, bases, _hive_step(base, bases, "BCD", cell + 8, struct.pack("<I", value))),
            )
        if not inline and real >= 16:
            data_at = 4096 + struct.unpack_from("<I", blob, cell + 12)[0] + 4
            for label, off, data in [
                ("device-type", 0, b"\xff\xff\xff\xff"),
                ("device-length", 8, b"\xff\xff\x00\x00"),
                ("device-inner", 16, b"\xff" * 8),
            ]:
                if off < real:
                    yield Mutant(
                        f"{base}/BCD-element@{rel}-{label}",
                        "bcd",
                        base,
                        _on(base, bases, _hive_step(base, bases, "BCD", data_at + off, data)),
                    )


#: the BCD objects of the samples' stores whose inherit lists the loop recipes rewrite
_GLOBALSETTINGS = "{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}"
_BOOTLOADERSETTINGS = "{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}"
_DBGSETTINGS = "{4636856e-540f-4170-a130-a84776f4c654}"


def _bcd_inherit_loops(bases: Bases) -> Iterator[Mutant]:
    """BCD inherit lists that loop: a GUID in the ``inherit`` multi-strings rewritten in place (same length)."""
    base = "gen1.raw"
    if "BCD" not in bases.hives[base]:
        return
    blob = bases.hive_files["BCD"].read_bytes()
    for label, old, new in [
        # {bootloadersettings} inherits itself (it listed {globalsettings}; so does {bootmgr}, now the loader's)
        ("inherit-self", _GLOBALSETTINGS, _BOOTLOADERSETTINGS),
        # {globalsettings} -> {bootloadersettings} -> {globalsettings}
        ("inherit-cycle", _DBGSETTINGS, _BOOTLOADERSETTINGS),
    ]:
        needle, replacement = old.encode("utf-16-le"), new.encode("utf-16-le")
        spots, at = [], blob.find(needle)
        while at >= 0:
            spots.append(at)
            at = blob.find(needle, at + 1)
        if spots:
            steps = [_hive_step(base, bases, "BCD", spot, replacement) for spot in spots]
            yield Mutant(f"{base}/BCD-{label}", "bcd", base, _on(base, bases, chain(*steps)))


def _pe(bases: Bases) -> Iterator[Mutant]:
    base = "gen1.raw"
    path = bases.path(base)
    data = path.read_bytes()
    for pe in bases.pe_files[:6]:
        blob = pe.read_bytes()
        at = data.find(blob)
        if at < 0:
            continue
        lfanew = struct.unpack_from("<I", blob, 0x3C)[0]
        opt = lfanew + 24
        magic = struct.unpack_from("<H", blob, opt)[0]
        dirs = opt + (96 if magic == 0x10B else 112)
        res_rva, res_size = struct.unpack_from("<II", blob, dirs + 2 * 8)
        # the resource section's file offset: find the section holding res_rva
        nsec = struct.unpack_from("<H", blob, lfanew + 6)[0]
        sec_table = opt + struct.unpack_from("<H", blob, lfanew + 20)[0]
        res_off = None
        for i in range(nsec):
            va, vsize, raw_size, raw_ptr = struct.unpack_from("<IIII", blob, sec_table + 40 * i + 8)[:4][0:4]
            va, raw_size, raw_ptr = (
                struct.unpack_from("<I", blob, sec_table + 40 * i + 12)[0],
                struct.unpack_from("<I", blob, sec_table + 40 * i + 16)[0],
                struct.unpack_from("<I", blob, sec_table + 40 * i + 20)[0],
            )
            if va <= res_rva < va + max(raw_size, 1):
                res_off = raw_ptr + (res_rva - va)
        cases: list[tuple[str, int, bytes]] = [
            ("lfanew-huge", 0x3C, b"\xff\xff\xff\x7f"),
            ("lfanew-0", 0x3C, bytes(4)),
            ("pe-signature", lfanew, b"PX\x00\x00"),
            ("sections-huge", lfanew + 6, b"\xff\xff"),
            ("resource-rva-huge", dirs + 16, b"\xff\xff\xff\x7f"),
            ("resource-size-huge", dirs + 20, b"\xff\xff\xff\x7f"),
            ("tail-zeroed", len(blob) // 2, bytes(len(blob) - len(blob) // 2)),
        ]
        if res_off is not None:
            cases += [
                ("res-named-huge", res_off + 12, b"\xff\xff\xff\xff"),
                ("res-entry-loop", res_off + 20, struct.pack("<I", 0x80000000)),
                ("res-entry-past-end", res_off + 20, b"\xff\xff\xff\x7f"),
                ("res-dir-garbage", res_off, b"\xa5" * 64),
            ]
        for label, off, patch in cases:
            yield Mutant(f"{base}/pe-{pe.stem}-{label}", "pe", base, _on(base, bases, write(at + off, patch)))


def _random_bytes(bases: Bases) -> Iterator[Mutant]:
    """Seeded random damage (bytes flipped, runs of 0x00 / 0xFF) in the regions the audit reads."""
    base = "gen1.raw"
    path = bases.path(base)
    vol = bases.volumes[base]["ntfs"]
    _cluster, mft, record = ntfs_geometry(path, vol)
    regions = {"mbr": (0, 512), "boot": (vol, 512), "mft": (mft, 80 * record)}
    regions.update({h.lower(): v for h, v in bases.hives[base].items() if h in ("SYSTEM", "SOFTWARE", "BCD")})
    for region, (start, length) in regions.items():
        rng = _rng(f"random-{region}")
        for k in range(8):
            at = start + rng.randrange(length)
            n = rng.choice([1, 2, 4, 16, 64])
            fill = rng.choice(["random", "zero", "ff"])
            data = (
                bytes(rng.randrange(256) for _ in range(n))
                if fill == "random"
                else (b"\x00" if fill == "zero" else b"\xff") * n
            )
            yield Mutant(f"{base}/random-{region}-{k}", "random", base, _on(base, bases, write(at, data)))


# --- cycles in the FAT, MBR extended chains, special files, foreign hives ----------------------------------


def fat_layout(path: Path, volume: int) -> tuple[int, int, int, int, int]:
    """(FAT offset, first data byte, cluster size, root cluster, data clusters) of the FAT32 volume at ``volume``."""
    boot = _read(path, volume, 512)
    bps, spc, reserved, fats = struct.unpack_from("<HBHB", boot, 11)
    total = struct.unpack_from("<H", boot, 19)[0] or struct.unpack_from("<I", boot, 32)[0]
    fat_size = struct.unpack_from("<I", boot, 36)[0]
    root = struct.unpack_from("<I", boot, 44)[0]
    first_data = (reserved + fats * fat_size) * bps
    return volume + reserved * bps, volume + first_data, bps * spc, root, (total - first_data // bps) // spc


def fat_chain(path: Path, volume: int, cluster: int) -> list[int]:
    """The clusters of the chain at ``cluster`` in the intact volume (a bounded walk)."""
    fat, _, _, _, count = fat_layout(path, volume)
    out: list[int] = []
    while 2 <= cluster <= count + 1 and cluster not in out:
        out.append(cluster)
        cluster = struct.unpack("<I", _read(path, fat + 4 * cluster, 4))[0] & 0x0FFFFFFF
    return out


def fat_entries(volume: int, values: Callable[[Path], dict[int, int]]) -> Apply:
    """Set FAT32 entries (both copies of the table are left alone but the first, which is the one read)."""

    def apply(path: Path) -> Path:
        fat = fat_layout(path, volume)[0]
        for cluster, value in values(path).items():
            _patch(path, fat + 4 * cluster, struct.pack("<I", value))
        return path

    return apply


def _fat_dir_cluster(path: Path, volume: int, names: list[str]) -> int:
    """The first cluster of the file or directory at ``names`` on the intact FAT volume, as the library finds it."""
    from azvhdaudit.fs import FatVolume

    with open(path, "rb") as fh:
        fat = FatVolume(fh, volume, fat_layout(path, volume)[4] * fat_layout(path, volume)[2], "corpus")
        entry = fat._entry("\\".join(names))
        if entry is None:
            raise ValueError(f"{names} not found")
        return int(entry.cluster)


def _fat_chains(bases: Bases) -> Iterator[Mutant]:
    """FAT cluster chains on the generation 2 ESP that loop or leave the volume (root, EFI folder, BCD file)."""
    base = "gen2.raw"
    esp = bases.volumes[base].get("fat32", bases.volumes[base].get("fat"))
    if esp is None:
        return
    path = bases.path(base)

    def root(p: Path) -> int:
        return fat_layout(p, esp)[3]

    def efi(p: Path) -> int:
        return _fat_dir_cluster(p, esp, ["EFI"])

    def boot_dir(p: Path) -> int:
        return _fat_dir_cluster(p, esp, ["EFI", "Microsoft", "Boot"])

    def last_of(first: Callable[[Path], int]) -> Callable[[Path], int]:
        return lambda p: fat_chain(p, esp, first(p))[-1]

    cases: list[tuple[str, Callable[[Path], dict[int, int]]]] = [
        ("root-self", lambda p: {root(p): root(p)}),
        ("root-2-cycle", lambda p: {root(p): root(p) + 1, root(p) + 1: root(p)}),
        ("entries-2-127-self", lambda p: {c: c for c in range(2, 128)}),
        ("root-past-volume", lambda p: {root(p): 0x0FFFFF00}),
        ("root-reserved-1", lambda p: {root(p): 1}),
        ("root-free", lambda p: {root(p): 0}),
        ("root-bad-cluster", lambda p: {root(p): 0x0FFFFFF7}),
        ("efi-dir-self", lambda p: {efi(p): efi(p)}),
        ("efi-dir-to-root", lambda p: {last_of(efi)(p): root(p)}),
        ("boot-dir-2-cycle", lambda p: {boot_dir(p): efi(p), efi(p): boot_dir(p)}),
        (
            "every-cluster-one-loop",
            lambda p: {c: c + 1 for c in range(2, fat_layout(p, esp)[4] + 1)} | {fat_layout(p, esp)[4] + 1: 2},
        ),
    ]
    for label, values in cases:
        yield Mutant(f"{base}/fat-{label}", "fat", base, _on(base, bases, fat_entries(esp, values)))
    # the BCD file's own chain: its last cluster back to its first, and to the root directory
    try:
        bcd_first = _fat_dir_cluster(path, esp, ["EFI", "Microsoft", "Boot", "BCD"])
    except ValueError:
        return
    chain_ = fat_chain(path, esp, bcd_first)
    for label, values in [("bcd-file-loop", {chain_[-1]: chain_[0]}), ("bcd-file-self", {chain_[0]: chain_[0]})]:
        yield Mutant(f"{base}/fat-{label}", "fat", base, _on(base, bases, fat_entries(esp, lambda p, v=values: v)))


def _extended_chains(bases: Bases) -> Iterator[Mutant]:
    """MBR extended boot record chains that loop, branch or leave the disk (the free MBR entries of gen1)."""
    base = "gen1.raw"
    disk_sectors = bases.path(base).stat().st_size // 512
    ebr = disk_sectors - 16  # sectors past the last partition, inside the disk

    def entry(ptype: int, lba: int, sectors: int) -> bytes:
        return struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", ptype, b"\xfe\xff\xff", lba, sectors)

    def record(at: int, entries: dict[int, bytes]) -> Apply:
        steps = [write(at * 512 + 446 + 16 * i, e) for i, e in entries.items()]
        return chain(*steps, write(at * 512 + 510, b"\x55\xaa"))

    cases = [
        ("ebr-self", chain(write(462, entry(5, ebr, 8)), record(ebr, {1: entry(5, 0, 8)}))),
        (
            "ebr-2-cycle",
            chain(write(462, entry(5, ebr, 8)), record(ebr, {1: entry(5, 2, 8)}), record(ebr + 2, {1: entry(5, 0, 8)})),
        ),
        (
            "ebr-3-cycle",
            chain(
                write(462, entry(5, ebr, 8)),
                record(ebr, {1: entry(5, 2, 8)}),
                record(ebr + 2, {1: entry(5, 4, 8)}),
                record(ebr + 4, {1: entry(5, 0, 8)}),
            ),
        ),
        (
            "ebr-four-links",
            chain(
                write(462, entry(5, ebr, 8)),
                record(ebr, {i: entry(5, 2, 8) for i in range(4)}),
                record(ebr + 2, {i: entry(5, 4, 8) for i in range(4)}),
            ),
        ),
        (
            "ebr-two-extended-in-mbr",
            chain(write(462, entry(5, ebr, 8)), write(478, entry(0x0F, ebr, 8)), record(ebr, {})),
        ),
        ("ebr-past-end", chain(write(462, entry(5, ebr, 8)), record(ebr, {1: entry(5, 0x7FFFFFF0, 8)}))),
        (
            "ebr-long",
            chain(
                write(462, entry(5, ebr - 600, 8)),
                *[record(ebr - 600 + n, {1: entry(5, n + 1, 8)}) for n in range(590)],
            ),
        ),
    ]
    for label, step in cases:
        yield Mutant(f"{base}/mbr-{label}", "partitions", base, _on(base, bases, step))


def _parent_file_name(child: Path) -> str | None:
    """The file name the first parent locator of ``child`` names (where the library looks first)."""
    from azvhdaudit.container import _open_layer, _parent_candidates
    from azvhdaudit.container.base import ContainerStats, CountedFile

    with open(child, "rb") as fh:
        layer = _open_layer(CountedFile(fh, str(child), ContainerStats(), owned=False))
        candidates = _parent_candidates(str(child), layer.parent_locators())  # type: ignore[attr-defined]
    return os.path.basename(candidates[0]) if candidates else None


def _special_files(bases: Bases) -> Iterator[Mutant]:
    """The image or a parent is a FIFO, a socket, or a link to a character device: refused at once."""
    import socket

    def fifo_image(d: Path) -> Path:
        os.mkfifo(d / "x.vhd")
        return d / "x.vhd"

    def socket_image(d: Path) -> Path:
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(d / "s.vhd"))  # the file stays after the socket object goes
        sock.close()
        return d / "s.vhd"

    def dev_null_image(d: Path) -> Path:
        os.symlink("/dev/null", d / "null.vhd")
        return d / "null.vhd"

    def vmdk_extent_fifo(d: Path) -> Path:
        import subprocess

        subprocess.run(
            [
                "qemu-img",
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                "subformat=monolithicFlat",
                str(bases.path("gen1.raw")),
                str(d / "disk.vmdk"),
            ],
            check=True,
            capture_output=True,
        )
        (d / "disk-flat.vmdk").unlink()
        os.mkfifo(d / "disk-flat.vmdk")
        return d / "disk.vmdk"

    yield Mutant("special/vmdk-extent-fifo", "special", "gen1.raw", vmdk_extent_fifo)
    yield Mutant("special/image-fifo", "special", "gen1-fixed.vhd", fifo_image)
    yield Mutant("special/image-socket", "special", "gen1-fixed.vhd", socket_image)
    yield Mutant("special/image-link-to-dev-null", "special", "gen1-fixed.vhd", dev_null_image)
    for child_name, parent_name in (
        ("chain1/gen1-azure-child.vhd", "chain1/gen1-azure.vhd"),
        ("chain2/gen2-misconfigured-child.vhdx", "chain2/gen2-misconfigured.vhdx"),
        ("hyperv/differencing.avhdx", "hyperv/dynamic.vhdx"),
    ):
        child = bases.path(child_name)
        parent = _parent_file_name(child) or Path(parent_name).name

        def beside(make: Callable[[Path], None], _c: Path = child, _p: str = parent) -> Callable[[Path], Path]:
            def build(d: Path) -> Path:
                c = Path(copy_image(_c, d / _c.name))
                make(d / _p)
                return c

            return build

        for label, make in [
            ("parent-fifo", lambda p: os.mkfifo(p)),
            ("parent-link-to-dev-zero", lambda p: os.symlink("/dev/zero", p)),
            (
                "parent-link-to-fifo",
                lambda p: (os.mkfifo(p.with_suffix(".fifo")), os.symlink(p.with_suffix(".fifo"), p)),
            ),
        ]:
            yield Mutant(f"{child_name}/{label}", "special", child_name, beside(make))


def _foreign_hives(bases: Bases) -> Iterator[Mutant]:
    """Every hive slot holding another hive (copied in place, when it fits) or a base block naming another."""
    for base in ("gen1.raw", "gen2.raw"):
        where = bases.hives[base]
        for slot in ("SYSTEM", "SOFTWARE", "BCD"):
            if slot not in where:
                continue
            for foreign in where:
                if foreign == slot or where[foreign][1] > where[slot][1]:
                    continue

                def copy_in(p: Path, _f: tuple[int, int] = where[foreign], _s: int = where[slot][0]) -> Path:
                    _patch(p, _s, _read(p, _f[0], _f[1]))
                    return p

                yield Mutant(f"{base}/{slot}-is-{foreign}", "hive", base, _on(base, bases, copy_in))
            other = "SAM" if slot != "SAM" else "SYSTEM"
            name = f"\\SystemRoot\\System32\\Config\\{other}".encode("utf-16-le")[-64:].ljust(64, b"\x00")
            yield Mutant(
                f"{base}/{slot}-base-names-{other}",
                "hive",
                base,
                _on(base, bases, _hive_step(base, bases, slot, 48, name, True)),
            )


def _subkey_list(blob: bytes, path: str) -> tuple[int, int]:
    """(offset of the key node cell, offset of its subkey list cell), relative to the hive bins."""
    import io

    from azvhdaudit.registry.open import open_hive

    hive = open_hive(io.BytesIO(blob), "X", source="corpus")
    key = hive.key(path)
    if key is None:
        raise KeyError(path)
    node = key.offset  # type: ignore[attr-defined]
    return node, struct.unpack_from("<I", blob, 4096 + node + 4 + 0x1C)[0]


def _list_cycles(bases: Bases) -> Iterator[Mutant]:
    """Subkey and value lists pointing into themselves, in the keys the rules read (Services, MountedDevices)."""
    base = "gen1.raw"
    blob = bases.hive_files["SYSTEM"].read_bytes()
    for path in ("ControlSet001\\Services", "ControlSet001\\Control", "ControlSet001", ""):
        try:
            node, lst = _subkey_list(blob, path)
        except KeyError:
            continue
        sig = blob[4096 + lst + 4 : 4096 + lst + 6]
        stride = 4 if sig in (b"li", b"ri") else 8
        count = struct.unpack_from("<H", blob, 4096 + lst + 6)[0]
        label = path.replace("\\", "-") or "root"
        for index, what in ((0, "first"), (count - 1, "last")):
            entry = 4096 + lst + 8 + index * stride
            for target, name in ((lst, "list"), (node, "key"), (0x7FFFFFF8, "outside")):
                yield Mutant(
                    f"{base}/SYSTEM-{label}-subkey-{what}-to-{name}",
                    "hive",
                    base,
                    _on(base, bases, _hive_step(base, bases, "SYSTEM", entry, struct.pack("<I", target))),
                )
    node, _ = _subkey_list(blob, "MountedDevices")
    count, values = struct.unpack_from("<II", blob, 4096 + node + 4 + 0x24)
    if count:
        first = struct.unpack_from("<I", blob, 4096 + values + 4)[0]
        for label, offset, data in [
            ("value-to-list", 4096 + values + 4, struct.pack("<I", values)),
            ("value-to-key", 4096 + values + 4, struct.pack("<I", node)),
            ("value-cell-size-0", 4096 + first, bytes(4)),
            ("value-signature", 4096 + first + 4, b"xx"),
            ("value-data-outside", 4096 + first + 4 + 12, b"\xf8\xff\xff\x7f"),
        ]:
            yield Mutant(
                f"{base}/SYSTEM-MountedDevices-{label}",
                "hive",
                base,
                _on(base, bases, _hive_step(base, bases, "SYSTEM", offset, data)),
            )


def main(argv: list[str]) -> int:  # pragma: no cover - manual use
    import hardkit

    out = Path(argv[1])
    bases = hardkit.build_bases(out / "bases")
    pattern = argv[2] if len(argv) > 2 else "*"
    chosen = [m for m in mutants(bases) if fnmatch.fnmatch(m.name, pattern)]
    print(f"{len(chosen)} mutants")
    for m in chosen:
        d = out / m.name.replace("/", "__")
        d.mkdir(parents=True, exist_ok=True)
        print(m.category, m.name, m.build(d))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv))
