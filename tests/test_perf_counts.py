"""What an audit costs in reads from the image: bytes and read calls, counted (never timed).

An audit reads what its rules ask for and no more: the partition table, the NTFS records and index
blocks on the way to each file, the hive cells a lookup touches, and of a binary only its headers and
resource section. These tests hold those counts under fixed limits, on the committed samples and on a
127 GiB dynamic VHDX holding the real 11 MiB Windows 7 SYSTEM hive and an 8 MiB kernel-sized PE file.
The timing of the same work is measured by ``bench/run.py``, never here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from diskbuild import MiB, make_ntfs, mbr_disk, place, require_tools, run
from image_rules.test_pe_stream import build_big_pe

from azvhdaudit.fleet import audit_source
from azvhdaudit.fs import HEAD_BYTES
from azvhdaudit.image import open_image
from azvhdaudit.pe import file_version

GiB = 1024 * MiB
KiB = 1024

#: sample -> (bytes, read calls) an audit with every rule of the azure profile may take at most: about 5% above what
#: it takes (379,904 B in 107 calls, 396,496 in 134, 495,452 in 100, 653,256 in 140)
SAMPLE_LIMITS = {
    "gen1-azure.vhd": (400 * KiB, 115),
    "gen1-azure-child.vhd": (416 * KiB, 140),
    "gen2-misconfigured.vhdx": (520 * KiB, 105),
    "gen2-misconfigured-child.vhdx": (688 * KiB, 147),
}

#: twenty values the rules read from SYSTEM, through CurrentControlSet
QUERIES = [
    (r"HKLM\SYSTEM\Select", "Current"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server", "fDenyTSConnections"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp", "PortNumber"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp", "UserAuthentication"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp", "SecurityLayer"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation", "RealTimeIsUniversal"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation", "TimeZoneKeyName"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\CrashControl", "CrashDumpEnabled"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management", "PagingFiles"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Environment", "TEMP"),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Power", "HiberbootEnabled"),
    (r"HKLM\SYSTEM\CurrentControlSet\Services\partmgr\Parameters", "SanPolicy"),
    (r"HKLM\SYSTEM\CurrentControlSet\Services\W32Time", "Start"),
    (r"HKLM\SYSTEM\CurrentControlSet\Services\Dhcp", "Start"),
    (r"HKLM\SYSTEM\CurrentControlSet\Services\TermService", "Start"),
    (r"HKLM\SYSTEM\CurrentControlSet\Services\RemoteRegistry", "Start"),
    (r"HKLM\SYSTEM\CurrentControlSet\Services\MpsSvc", "Start"),
    (r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters", "Hostname"),
    (
        r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy\StandardProfile",
        "EnableFirewall",
    ),
    (r"HKLM\SYSTEM\CurrentControlSet\Control\Lsa", "LmCompatibilityLevel"),
]


@pytest.mark.parametrize("sample", sorted(SAMPLE_LIMITS))
def test_full_audit_of_a_sample_reads_little(sample_path: Callable[[str], Path], sample: str) -> None:
    report = audit_source(sample_path(sample))
    io = report.facts["extra"]["io"]
    max_bytes, max_calls = SAMPLE_LIMITS[sample]
    assert len(report.results) > 100
    assert 0 < io["bytes_read"] <= max_bytes
    assert 0 < io["requests"] <= max_calls


@pytest.fixture(scope="module")
def large_vhdx(tmp_path_factory: pytest.TempPathFactory, realdata: Path) -> tuple[Path, bytes]:
    """A 127 GiB dynamic VHDX: MBR, one NTFS partition with the real SYSTEM hive and an 8 MiB PE file."""
    require_tools()
    work = tmp_path_factory.mktemp("large")
    kernel = build_big_pe(work, (6, 1, 7601, 24000), 8 * MiB)
    files = {
        "Windows/System32/config/SYSTEM": (realdata / "SYSTEM").read_bytes(),
        "Windows/System32/ntoskrnl.exe": kernel,
    }
    volume = make_ntfs(work / "windows.ntfs", 48 * MiB, files)
    raw = mbr_disk(work / "disk.raw", 127 * GiB, [(1, 48, "7", True)])
    place(volume, raw, 1 * MiB)
    vhdx = work / "large.vhdx"
    run("qemu-img", "convert", "-f", "raw", "-O", "vhdx", "-o", "subformat=dynamic", str(raw), str(vhdx))
    raw.unlink()
    volume.unlink()
    return vhdx, kernel


@pytest.mark.slow
def test_twenty_queries_on_a_large_dynamic_vhdx(large_vhdx: tuple[Path, bytes], realdata: Path) -> None:
    path, _ = large_vhdx
    with open_image(path, hives=("SYSTEM",)) as image:
        assert image.facts.container.virtual_size == 127 * GiB
        opened = image.stats.bytes_read
        found = sum(1 for key, name in QUERIES if image.registry.value(key, name) is not None)
        total, calls = image.stats.bytes_read, image.stats.read_calls
    hive_size = (realdata / "SYSTEM").stat().st_size
    assert hive_size > 11 * MiB
    assert found >= 15  # the Windows 7 hive has most of them
    # Opening the disk (VHDX headers and region tables, partition table, NTFS, the hive's base block) and
    # answering twenty queries takes a few hundred KiB of an 11 MiB hive on a 127 GiB disk.
    assert total <= 448 * KiB
    assert total - opened <= 192 * KiB
    assert calls <= 150


def test_file_version_of_a_large_binary_reads_its_headers_and_resources(large_vhdx: tuple[Path, bytes]) -> None:
    path, kernel = large_vhdx
    with open_image(path, hives=("SYSTEM",)) as image:
        assert image.files is not None
        image.files.exists("Windows/System32/ntoskrnl.exe")  # the lookup's reads are not the version's
        before = image.stats.bytes_read
        version = image.files.file_version("Windows/System32/ntoskrnl.exe")
        spent = image.stats.bytes_read - before
    assert version == file_version(kernel) == (6, 1, 7601, 24000)
    assert len(kernel) > 8 * MiB
    assert spent <= 16 * KiB


def test_a_binarys_head_is_read_once_for_all_its_readers(large_vhdx: tuple[Path, bytes]) -> None:
    # the version rules and the signature rules both read each boot driver's headers: the first 4 KiB of a path come
    # from the image once
    path, kernel = large_vhdx
    kernel_path = "Windows/System32/ntoskrnl.exe"
    with open_image(path, hives=("SYSTEM",)) as image:
        assert image.files is not None
        assert image.files.file_version(kernel_path) == (6, 1, 7601, 24000)
        before = (image.stats.bytes_read, image.stats.read_calls)
        fh = image.files.open(kernel_path)
        assert fh.read(HEAD_BYTES) == kernel[:HEAD_BYTES]
        fh.seek(100)
        assert fh.read(200) == kernel[100:300]
        assert image.files.read(kernel_path, 512) == kernel[:512]
        assert (image.stats.bytes_read, image.stats.read_calls) == before
        # beyond the head, the file is read as asked
        fh.seek(HEAD_BYTES - 10)
        assert fh.read(20) == kernel[HEAD_BYTES - 10 : HEAD_BYTES + 10]
        assert image.stats.read_calls > before[1]
