"""End to end: open the committed sample images (samples/, see samples/manifest.json) and check what the
image rules find against what each sample was built to show."""

from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path
from typing import Any

import pytest

import azvhdaudit
from azvhdaudit.report import Status
from azvhdaudit.rules.base import all_rules

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))
BY_NAME = {s["name"]: s for s in MANIFEST["samples"]}
MODULES = ("disk", "os", "bcd", "sysprep", "updates", "agent")
MINE = {r.id for r in all_rules() if getattr(r._check, "__module__", "").rsplit(".", 1)[-1] in MODULES}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    for sample in MANIFEST["samples"]:
        target = out / sample["name"]
        if sample.get("compression") == "xz":
            with lzma.open(SAMPLES / sample["file"]) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(SAMPLES / sample["file"], target)
    return out


_REPORTS: dict[str, Any] = {}


def results(sample_dir: Path, name: str) -> dict[str, Any]:
    if name not in _REPORTS:
        report = azvhdaudit.audit(str(sample_dir / name), profile=BY_NAME[name].get("profile", "azure"))
        _REPORTS[name] = {r.rule_id: r for r in report}
    return _REPORTS[name]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_image_rules_find_what_the_sample_was_built_to_show(sample_dir: Path, name: str) -> None:
    sample = BY_NAME[name]
    got = results(sample_dir, name)
    fails = {i for i, r in got.items() if i in MINE and r.status in (Status.FAIL, Status.ERROR)}
    warns = {i for i, r in got.items() if i in MINE and r.status == Status.WARNING}
    assert fails == set(sample["expected_fail"]) & MINE, {i: got[i].message for i in fails}
    assert warns == set(sample["expected_warning"]) & MINE, {i: got[i].message for i in warns}


def test_compliant_gen1_passes_the_boot_rules(sample_dir: Path) -> None:
    got = results(sample_dir, "gen1-azure.vhd")
    for rule_id in (
        "disk.container_format",
        "disk.vhd_fixed",
        "disk.vhd_footer_valid",
        "disk.size_aligned_1mib",
        "disk.generation",
        "disk.boot_files_present",
        "bcd.store_present",
        "bcd.default_recovery_disabled",
        "bcd.default_bootstatuspolicy",
        "bcd.default_integrityservices",
        "bcd.bootmgr_integrityservices",
        "bcd.emssettings",
        "bcd.default_device",
        "bcd.default_osdevice",
        "sysprep.state",
        "sysprep.oobe_shutdown_not_audit",
        "updates.min_file_versions",
        "updates.no_pending_reboot",
        "os.min_version",
        "os.identify",
    ):
        assert got[rule_id].status == Status.PASS, (rule_id, got[rule_id].message)


def test_chs_sized_vhd_names_the_geometry(sample_dir: Path) -> None:
    out = results(sample_dir, "gen1-misaligned.vhd")["disk.size_aligned_1mib"]
    assert "CHS geometry" in out.message and "-SizeBytes 68157440" in out.message


def test_gen2_sample_devices_match_its_gpt_partition(sample_dir: Path) -> None:
    got = results(sample_dir, "gen2-misconfigured.vhdx")
    assert got["bcd.default_osdevice"].status == Status.PASS
    assert "GPT partition" in got["bcd.default_osdevice"].message
    assert "vmstorfl.sys 10.0.16299.15 < 10.0.16299.371" in got["updates.min_file_versions"].message
