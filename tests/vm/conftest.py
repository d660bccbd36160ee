"""The VM tests' fixture: an OS disk whose MountedDevices knows some data disks, and the data disks.

Built once per session by Debian's tools (sfdisk/sgdisk, mkntfs + ntfs-3g, qemu-img, hivex), see
tests/diskbuild.py and tests/vm/vmkit.py.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import diskbuild as db
import pytest

from .vmkit import DATA_PART_GUID, DATA_SIG, OS_SIG, UNKNOWN_SIG, gpt_value, letter, mbr_value, system_hive_file

#: what the OS disk's Windows knows: its C:, the MBR data disk at E:, the GPT data disk at D: (the conflict)
MOUNTED = {letter("C"): mbr_value(OS_SIG), letter("E"): mbr_value(DATA_SIG), letter("D"): gpt_value(DATA_PART_GUID)}


def _vhd(raw: Path) -> Path:
    out = raw.with_suffix(".vhd")
    db.run("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size", str(raw), str(out))
    raw.unlink()
    return out


def _data_disk(directory: Path, name: str, style: str, signature: int = 0) -> Path:
    raw = directory / f"{name}.raw"
    if style == "gpt":
        db.gpt_disk(raw, 8 * db.MiB, [(1, 6, "0700")], disk_guid="dddddddd-0000-0000-0000-00000000000" + name[-1])
    else:
        db.mbr_disk(raw, 8 * db.MiB, [(1, 6, "7", False)], label_id=signature)
    db.place(db.make_ntfs(directory / f"{name}.ntfs", 6 * db.MiB, {}, label="Data"), raw, db.MiB)
    (directory / f"{name}.ntfs").unlink()
    return _vhd(raw)


def _blank(raw: Path) -> Path:
    """A new disk nobody initialized: zeros, no partition table."""
    with open(raw, "wb") as fh:
        fh.truncate(8 * db.MiB)
    return _vhd(raw)


@pytest.fixture(scope="session")
def vm(tmp_path_factory: pytest.TempPathFactory, tools: None, sample_builder: ModuleType) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("vm")
    hive = system_hive_file(sample_builder, d / "SYSTEM", MOUNTED, paging=["D:\\pagefile.sys"])
    volume = db.make_ntfs(d / "os.ntfs", 16 * db.MiB, {r"Windows\System32\config\SYSTEM": hive.read_bytes()})
    os_raw = db.mbr_disk(d / "os.raw", 20 * db.MiB, [(1, 16, "7", True)], label_id=OS_SIG)
    db.place(volume, os_raw, db.MiB)
    return {
        "os": _vhd(os_raw),
        "mbr": _data_disk(d, "data-mbr", "mbr", DATA_SIG),
        "gpt": _data_disk(d, "data-gpt1", "gpt"),
        "unknown": _data_disk(d, "data-unknown", "mbr", UNKNOWN_SIG),
        "blank": _blank(d / "data-blank.raw"),
    }
