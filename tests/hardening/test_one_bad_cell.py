"""One bad cell met by one fact leaves that fact unknown; the other facts of the image stand.

The generation 1 sample's disk (hardkit.py) with the first entry of SYSTEM\\MountedDevices' value list pointed
at the value list itself: the drive letter facts cannot be read, the OS, Sysprep and agent facts can.
"""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import hardkit
import pytest

from azvhdaudit import osinfo
from azvhdaudit.errors import CorruptHiveError
from azvhdaudit.image import open_image
from azvhdaudit.registry.open import open_hive


def _bad_mounted_devices(bases: hardkit.Bases, tmp_path: Path) -> Path:
    raw = tmp_path / "gen1.raw"
    shutil.copyfile(bases.path("gen1.raw"), raw)
    at, size = bases.hives["gen1.raw"]["SYSTEM"]
    with open(raw, "r+b") as fh:
        fh.seek(at)
        blob = fh.read(size)
        key = open_hive(io.BytesIO(blob), "SYSTEM", source="SYSTEM").key("MountedDevices")
        assert key is not None
        node = 4096 + key.offset + 4  # type: ignore[attr-defined]
        count, values = struct.unpack_from("<II", blob, node + 0x24)
        assert count > 0
        fh.seek(at + 4096 + values + 4)
        fh.write(struct.pack("<I", values))
    return raw


def test_a_bad_mounted_devices_cell_leaves_the_other_facts(bases: hardkit.Bases, tmp_path: Path) -> None:
    with open_image(bases.path("gen1.raw")) as intact:
        assert intact.facts.extra["mounted_c"] is not None  # the control: the intact disk has it
    with open_image(_bad_mounted_devices(bases, tmp_path)) as image:
        facts = image.facts
        assert "mounted_c" not in facts.extra
        assert facts.os is not None and facts.os.build
        assert None not in (facts.sysprep, facts.pending_reboot, facts.agent)
        with pytest.raises(
            CorruptHiveError,
            match=r"config\\SYSTEM: value record: the value cell at offset "
            r"0x[0-9A-F]+ holds 12 bytes",
        ):
            osinfo.mounted_devices(image.registry)


def test_an_image_cut_where_a_file_lies_makes_that_rule_not_checked(bases: hardkit.Bases, tmp_path: Path) -> None:
    """The generation 2 VHDX cut short: a rule reading a driver's version meets the container's
    CorruptImageError under the file system; the evidence could not be read (not checked), not a rule error."""
    image = tmp_path / "gen2.vhdx"
    shutil.copyfile(bases.path("gen2.vhdx"), image)
    with open(image, "r+b") as fh:
        fh.truncate(17314301)
    import azvhdaudit

    report = azvhdaudit.audit(image)
    errors = [(r.rule_id, r.message) for r in report.results if str(r.status) == "error"]
    assert not errors
    versions = next(r for r in report.results if r.rule_id == "updates.min_file_versions")
    assert str(versions.status) == "not_checked"
    assert "lies outside the file" in (versions.reason or "")
