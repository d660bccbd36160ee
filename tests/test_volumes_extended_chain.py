"""MBR extended partition chains that loop, branch or leave the disk end in NoPartitionTableError at once.

dissect.volume follows extended boot records recursively with no memory of where it has been: an EBR naming
itself ran to Python's recursion limit (a RecursionError, not the library's error), and EBRs naming the next
one four times over multiplied the walk. Disks are made by sfdisk (tests/diskbuild.py); the generation 1
sample's audit goes on from its container facts.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from diskbuild import MiB, require_tools, run

import azvhdaudit
from azvhdaudit.errors import NoPartitionTableError
from azvhdaudit.volumes import MAX_EXTENDED_RECORDS, read_layout


@pytest.fixture(scope="module")
def logical(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MBR disk with one primary partition and an extended one holding three logical partitions."""
    require_tools()
    path = tmp_path_factory.mktemp("ebr") / "logical.raw"
    with open(path, "wb") as fh:
        fh.truncate(64 * MiB)
    table = "\n".join(
        [
            "label: dos",
            "label-id: 0x0badcafe",
            "start=2048, size=8192, type=7",
            "start=12288, size=100000, type=5",
            "start=14336, size=8192, type=7",
            "start=24576, size=8192, type=7",
            "start=34816, size=8192, type=7",
        ]
    )
    run("sfdisk", "-q", str(path), stdin=table + "\n")
    return path


def ebrs(path: Path) -> list[int]:
    """Byte offsets of the extended boot records, in chain order."""
    data = path.read_bytes()
    first = next(
        struct.unpack_from("<I", data, 0x1BE + 16 * i + 8)[0] * 512 for i in range(4) if data[0x1BE + 16 * i + 4] == 5
    )
    found, at = [first], first
    while True:
        kind, start = data[at + 0x1CE + 4], struct.unpack_from("<I", data, at + 0x1CE + 8)[0]
        if kind != 5:
            return found
        at = first + start * 512
        found.append(at)


def layout(path: Path):  # type: ignore[no-untyped-def]
    with open(path, "rb") as fh:
        return read_layout(fh, path.name, os.path.getsize(path))


def damaged(logical: Path, tmp_path: Path, change: Callable[[bytearray, list[int]], None]) -> Path:
    data = bytearray(logical.read_bytes())
    change(data, ebrs(logical))
    out = tmp_path / "damaged.raw"
    out.write_bytes(bytes(data))
    return out


def link(data: bytearray, ebr: int, entry: int, sector_from_first: int) -> None:
    """Make entry ``entry`` of the EBR at ``ebr`` an extended entry pointing ``sector_from_first`` sectors
    past the first EBR."""
    data[ebr + 0x1BE + 16 * entry + 4] = 5
    struct.pack_into("<II", data, ebr + 0x1BE + 16 * entry + 8, sector_from_first, 2048)


def test_intact_chain(logical: Path) -> None:
    assert len(ebrs(logical)) == 3
    assert [p.offset // 512 for p in layout(logical).partitions] == [2048, 14336, 24576, 34816]


@pytest.mark.parametrize(
    ("label", "change", "words"),
    [
        (
            "first EBR names itself",
            lambda d, e: link(d, e[0], 1, 0),
            r"loops: the boot record at sector 12288 is "
            r"reached again \(chain of sectors: 12288 -> 12288\)",
        ),
        ("last EBR names the first", lambda d, e: link(d, e[2], 1, 0), r"loops: .*12288 -> 22528 -> 32768 -> 12288"),
        ("two EBRs name each other", lambda d, e: link(d, e[1], 1, 0), r"loops: .*12288 -> 22528 -> 12288"),
        (
            "an EBR names the next one four times",
            lambda d, e: [link(d, e[0], i, (e[1] - e[0]) // 512) for i in range(4)],
            r"loops: the boot record at sector 22528 is reached again",
        ),
        ("a link past the disk", lambda d, e: link(d, e[2], 1, 0x7FFFFFF0), r"leaves the disk"),
    ],
)
def test_bad_chain(
    logical: Path, tmp_path: Path, label: str, change: Callable[[bytearray, list[int]], None], words: str
) -> None:
    with pytest.raises(NoPartitionTableError, match=r"damaged\.raw: the extended partition chain " + words):
        layout(damaged(logical, tmp_path, change))


def test_long_chain_is_bounded(tmp_path: Path, logical: Path) -> None:
    """More EBRs than the bound, each naming the next: refused after MAX_EXTENDED_RECORDS reads."""

    def long_chain(data: bytearray, found: list[int]) -> None:
        first = found[0]
        for n in range(MAX_EXTENDED_RECORDS + 5):
            at = first + n * 512
            data[at + 0x1BE : at + 0x1FE] = bytes(64)
            data[at + 0x1FE : at + 0x200] = b"\x55\xaa"
            link(data, at, 1, n + 1)

    with pytest.raises(NoPartitionTableError, match=f"more than {MAX_EXTENDED_RECORDS} boot records"):
        layout(damaged(logical, tmp_path, long_chain))


def test_audit_of_the_sample_with_a_looping_ebr_goes_on(sample_path: Callable[[str], Path], tmp_path: Path) -> None:
    """The generation 1 sample, its MBR's free entry made an extended partition whose EBR names itself."""
    raw = tmp_path / "gen1.raw"
    subprocess.run(
        ["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(sample_path("gen1-azure.vhd")), str(raw)], check=True
    )
    data = bytearray(raw.read_bytes())
    free = next(i for i in range(4) if data[0x1BE + 16 * i + 4] == 0)
    ebr_sector = len(data) // 512 - 8
    struct.pack_into("<B3xB3xII", data, 0x1BE + 16 * free, 0, 5, ebr_sector, 8)
    data[ebr_sector * 512 + 0x1FE : ebr_sector * 512 + 0x200] = b"\x55\xaa"
    link(data, ebr_sector * 512, 1, 0)
    copy = tmp_path / "looping.raw"
    copy.write_bytes(bytes(data))
    report = azvhdaudit.audit(copy)
    windows = next(r for r in report.results if r.rule_id == "disk.windows_volume")
    assert windows.status == "fail"
    rdp = [r for r in report.results if r.rule_id.startswith("rdp.")]
    assert rdp and all(r.status == "not_checked" for r in rdp)
    assert all("the extended partition chain loops" in (r.reason or "") for r in rdp), rdp[0].reason
    shutil.rmtree(tmp_path, ignore_errors=True)
