"""FAT cluster chains that loop or leave the volume end in CorruptVolumeError, in a bounded number of reads.

dissect.fat follows a chain until an end-of-chain mark; a FAT entry pointing to itself (or any cycle) made
it grow its runlist without limit. Volumes are made by mkfs.fat + mtools (tests/diskbuild.py), and the
generation 2 sample's own EFI system partition is damaged the same way for the whole audit.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from diskbuild import MiB, make_fat, require_tools

import azvhdaudit
from azvhdaudit.errors import CorruptVolumeError, FileSystemError
from azvhdaudit.fs import MAX_FAT_DIRECTORY, FatVolume

BCD = "EFI/Microsoft/Boot/BCD"


@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools()
    return make_fat(tmp_path_factory.mktemp("fat") / "v.img", 34 * MiB, {BCD: b"regf-bcd" * 1000})


def geometry(data: bytes | bytearray) -> tuple[int, int, int]:
    """(offset of the first FAT, offset of cluster 2's data, cluster size) from the boot sector."""
    bps, spc, reserved, fats = struct.unpack_from("<HBHB", data, 11)
    fat_size = struct.unpack_from("<I", data, 36)[0]
    return reserved * bps, (reserved + fats * fat_size) * bps, bps * spc


def root_cluster(data: bytes | bytearray) -> int:
    return int(struct.unpack_from("<I", data, 44)[0])


def set_entries(data: bytearray, entries: dict[int, int]) -> None:
    fat, _, _ = geometry(data)
    for cluster, value in entries.items():
        struct.pack_into("<I", data, fat + 4 * cluster, value)


def damaged(intact: Path, tmp_path: Path, change: Callable[[bytearray], None]) -> FatVolume:
    data = bytearray(intact.read_bytes())
    change(data)
    path = tmp_path / "damaged.img"
    path.write_bytes(bytes(data))
    return FatVolume(open(path, "rb"), 0, len(data), "esp")


def test_intact_volume_reads(intact: Path, tmp_path: Path) -> None:
    volume = damaged(intact, tmp_path, lambda data: None)
    assert volume.read(BCD) == b"regf-bcd" * 1000


@pytest.mark.parametrize(
    ("label", "entries", "words"),
    [
        ("root points to itself", lambda r: {r: r}, r"starting at cluster 2 loops: .*\(chain: 2 -> 2\)"),
        ("2-cycle", lambda r: {r: r + 100, r + 100: r}, r"loops: it comes back to cluster 2 after 2 .*2 -> 102 -> 2"),
        ("every entry 2..127 to itself", lambda r: {c: c for c in range(2, 128)}, r"loops: .*2 -> 2"),
        (
            "past the volume",
            lambda r: {r: 0x0FFFFF00},
            r"reaches cluster 268435200, outside the volume's data clusters",
        ),
        ("reserved value", lambda r: {r: 1}, r"holds a reserved value, 0x1, in the entry of cluster 2"),
        (
            "reserved high value",
            lambda r: {r: 0x0FFFFFF0},
            r"holds a reserved value, 0xFFFFFF0, in the entry of "
            r"cluster 2",
        ),
    ],
)
def test_root_directory_chain(
    intact: Path, tmp_path: Path, label: str, entries: Callable[[int], dict[int, int]], words: str
) -> None:
    volume = damaged(intact, tmp_path, lambda data: set_entries(data, entries(root_cluster(data))))
    with pytest.raises(CorruptVolumeError, match=r"^esp: FAT cluster chain .*" + words) as caught:
        volume.exists(BCD)
    assert isinstance(caught.value, FileSystemError)


def _chain_of(volume: FatVolume, path: str) -> list[int]:
    entry = volume._entry(path)
    return list(volume.fs.fat.chain(entry.cluster))


def test_file_chain_that_loops_after_a_long_run(intact: Path, tmp_path: Path) -> None:
    """The BCD file's chain: its last cluster points back to its first; the message shows both ends."""
    clusters = _chain_of(FatVolume(open(intact, "rb"), 0, intact.stat().st_size, "esp"), BCD)
    assert len(clusters) > 12
    volume = damaged(intact, tmp_path, lambda data: set_entries(data, {clusters[-1]: clusters[0]}))
    with pytest.raises(
        FileSystemError,
        match=rf"loops: it comes back to cluster {clusters[0]} after "
        rf"{len(clusters)} clusters .*\.\.\. \({len(clusters) - 12} more\)",
    ):
        volume.read(BCD)


def test_a_chain_walk_reads_each_cluster_once(intact: Path, tmp_path: Path) -> None:
    """Every data cluster chained into one loop: the walk reads each FAT entry once, then stops."""
    reads = []

    def every_cluster(data: bytearray) -> None:
        count = FatVolume(open(intact, "rb"), 0, len(data), "esp").fs.fat.last_cluster
        set_entries(data, {c: c + 1 for c in range(2, count)} | {count: 2})

    volume = damaged(intact, tmp_path, every_cluster)
    fat = volume.fs.fat
    get = fat.get
    fat.get = lambda cluster: reads.append(cluster) or get(cluster)  # type: ignore[method-assign]
    with pytest.raises(CorruptVolumeError, match="loops: it comes back to cluster 2 after"):
        list(fat.chain(2))
    assert len(reads) == fat.last_cluster - 1
    assert sorted(reads) == list(range(2, fat.last_cluster + 1))


def test_directory_longer_than_the_format_allows(intact: Path, tmp_path: Path) -> None:
    """A root directory chain through enough clusters of non-empty slots to pass 65,536 entries."""

    def long_root(data: bytearray) -> None:
        _, first_data, cluster_size = geometry(data)
        count = MAX_FAT_DIRECTORY // cluster_size + 2
        root = root_cluster(data)
        chain = [root, *range(1000, 1000 + count)]
        set_entries(data, {a: b for a, b in zip(chain, chain[1:], strict=False)} | {chain[-1]: 0x0FFFFFFF})
        for cluster in chain:
            at = first_data + (cluster - 2) * cluster_size
            data[at : at + cluster_size] = (b"FILE    TXT" + b"\x20" + bytes(20)) * (cluster_size // 32)

    volume = damaged(intact, tmp_path, long_root)
    with pytest.raises(CorruptVolumeError, match=r"esp: directory .* holds more than 65,536 entries"):
        volume.exists("nothing/here")


# --- the whole audit of the generation 2 sample with its ESP damaged -------------------------------------


@pytest.fixture(scope="module")
def gen2_raw(
    sample_path: Callable[[str], Path], sample_manifest: dict[str, dict], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, int]:
    raw = tmp_path_factory.mktemp("gen2") / "gen2.raw"
    subprocess.run(
        ["qemu-img", "convert", "-f", "vhdx", "-O", "raw", str(sample_path("gen2-misconfigured.vhdx")), str(raw)],
        check=True,
    )
    esp = next(p for p in sample_manifest["gen2-misconfigured.vhdx"]["partitions"] if p["filesystem"] == "fat32")
    return raw, esp["start"] * 512


@pytest.mark.parametrize("cycle", ["self", "two"])
def test_audit_goes_on_when_the_esp_root_loops(gen2_raw: tuple[Path, int], tmp_path: Path, cycle: str) -> None:
    raw, esp = gen2_raw
    copy = tmp_path / "gen2.raw"
    shutil.copyfile(raw, copy)
    with open(copy, "r+b") as fh:
        fh.seek(esp)
        boot = bytearray(fh.read(512))
        fat, _, _ = geometry(boot)
        root = root_cluster(boot)
        entries = {root: root} if cycle == "self" else {root: root + 1, root + 1: root}
        for cluster, value in entries.items():
            fh.seek(esp + fat + 4 * cluster)
            fh.write(struct.pack("<I", value))
    report = azvhdaudit.audit(copy)
    why = report.facts["hives"]["BCD"]["error"]
    assert "the BCD store cannot be read: its folder cannot be looked up" in why
    assert f"cluster chain starting at cluster {root} loops" in why
    bcd_rules = [r for r in report.results if r.rule_id.startswith("bcd.")]
    assert bcd_rules and all(r.status == "not_checked" for r in bcd_rules), [(r.rule_id, r.status) for r in bcd_rules]
    assert any(r.status == "pass" for r in report.results if r.rule_id.startswith("rdp."))
