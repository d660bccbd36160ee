"""NTFS and FAT volumes read by azvhdaudit.fs: Windows paths, case-insensitive, either slash, read-only."""

from __future__ import annotations

from pathlib import Path

import pytest
from diskbuild import MiB, make_fat, make_ntfs, require_tools

from azvhdaudit.errors import FileSystemError, GuestFileNotFoundError
from azvhdaudit.fs import FatVolume, GuestFileSystem, NtfsVolume

FILES = {
    "Windows/System32/config/SYSTEM": b"regf" + b"\x00" * 4092,
    "Windows/System32/drivers/storvsc.sys": b"MZ" + b"\x00" * 100,
    "WindowsAzure/readme.txt": b"agent",
}


@pytest.fixture(scope="module")
def ntfs(tmp_path_factory: pytest.TempPathFactory) -> NtfsVolume:
    require_tools()
    img = make_ntfs(tmp_path_factory.mktemp("ntfs") / "v.img", 8 * MiB, FILES)
    fh = open(img, "rb")
    return NtfsVolume(fh, 0, img.stat().st_size, "test-ntfs")


@pytest.fixture(scope="module")
def fat(tmp_path_factory: pytest.TempPathFactory) -> FatVolume:
    require_tools()
    img = make_fat(tmp_path_factory.mktemp("fat") / "v.img", 34 * MiB, {"EFI/Microsoft/Boot/BCD": b"regf-bcd"})
    fh = open(img, "rb")
    return FatVolume(fh, 0, img.stat().st_size, "test-fat")


@pytest.mark.parametrize(
    "path",
    [
        "Windows\\System32\\config\\SYSTEM",
        "windows/system32/CONFIG/system",
        "\\WINDOWS\\System32\\Config\\System",
        "/Windows//System32/config/SYSTEM",
    ],
)
def test_ntfs_paths_are_windows_like(ntfs: NtfsVolume, path: str) -> None:
    assert ntfs.exists(path)
    assert ntfs.read(path) == FILES["Windows/System32/config/SYSTEM"]


def test_ntfs_listing_and_missing(ntfs: NtfsVolume) -> None:
    assert ntfs.listdir("Windows\\System32") == ["config", "drivers"]
    assert ntfs.is_dir("windows") and not ntfs.is_dir("WindowsAzure/readme.txt")
    assert ntfs.listdir("Windows\\Panther") is None
    assert ntfs.read("Windows\\Panther\\unattend.xml") is None
    assert not ntfs.exists("Windows\\System32\\config\\SYSTEM\\below-a-file")
    with pytest.raises(GuestFileNotFoundError) as info:
        ntfs.open("Windows/System32/config/SOFTWARE")
    assert isinstance(info.value, FileNotFoundError)
    assert "SOFTWARE" in str(info.value)


def test_ntfs_volume_facts(ntfs: NtfsVolume) -> None:
    assert ntfs.dirty is False
    assert ntfs.label == "Windows"


def test_fat_paths_are_case_insensitive(fat: FatVolume) -> None:
    assert fat.exists("efi\\microsoft\\boot\\bcd")
    assert fat.read("EFI/Microsoft/Boot/BCD") == b"regf-bcd"
    assert fat.listdir("EFI") == ["Microsoft"]
    assert fat.read("EFI/Boot/bootx64.efi") is None


def test_guest_files_version_of_a_non_pe_is_none(ntfs: NtfsVolume) -> None:
    files = GuestFileSystem(ntfs)
    assert files.file_version("Windows/System32/drivers/storvsc.sys") is None
    assert files.file_version("Windows/System32/drivers/missing.sys") is None


def test_garbage_is_a_file_system_error(tmp_path: Path) -> None:
    img = tmp_path / "junk.img"
    img.write_bytes(b"\xeb\x52\x90NTFS    " + b"\xff" * (1 * MiB))
    with open(img, "rb") as fh, pytest.raises(FileSystemError) as info:
        NtfsVolume(fh, 0, img.stat().st_size, "junk-volume").listdir("Windows")
    assert "junk-volume" in str(info.value)


def test_listings_are_plain_strings(ntfs: NtfsVolume, fat: FatVolume) -> None:
    # dissect hands back cstruct string subclasses, which do not pickle: reports go through process pools.
    import pickle

    for names in (ntfs.listdir("Windows\\System32"), fat.listdir("EFI")):
        assert names and all(type(n) is str for n in names)
        assert pickle.loads(pickle.dumps(names)) == names
