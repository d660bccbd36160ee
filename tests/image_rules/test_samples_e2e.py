"""End to end: open the sample images (samples/, built by samples/build.py) and run the image rules.

The samples are the committed ``samples/*.xz`` files, decompressed once per session; a sample that is not
committed is rebuilt from ``samples/build.py`` (which needs the Debian image tools).
"""

from __future__ import annotations

import importlib.util
import lzma
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

import azvhdaudit
from azvhdaudit.report import Status
from azvhdaudit.rules.base import all_rules

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
pytestmark = [pytest.mark.slow, pytest.mark.tools]


def _load_build() -> Any:
    spec = importlib.util.spec_from_file_location("samples_build", SAMPLES / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("samples_build", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    build = _load_build()
    missing = [n for n in build.committed_files() if not (SAMPLES / n).exists()]
    source = SAMPLES
    if missing:
        source = out / "built"
        build.build_all(source, out / "work", log=False)
    for name in build.committed_files():
        target = out / name.removesuffix(".xz")
        if name.endswith(".xz"):
            with lzma.open(source / name) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copyfile(source / name, target)
    return out


def audit(sample_dir: Path, name: str, **kw: Any) -> dict[str, Any]:
    report = azvhdaudit.audit(str(sample_dir / name), **kw)
    return {r.rule_id: r for r in report}


MODULES = ("disk", "os", "bcd", "sysprep", "updates", "agent")


def test_compliant_gen1(sample_dir: Path) -> None:
    results = audit(sample_dir, "gen1-azure.vhd", image_type="generalized")
    for rule_id in ("disk.container_format", "disk.vhd_fixed", "disk.vhd_footer_valid", "disk.size_aligned_1mib",
                    "disk.generation", "disk.boot_files_present", "bcd.store_present",
                    "bcd.default_recovery_disabled", "bcd.default_bootstatuspolicy", "bcd.default_integrityservices",
                    "bcd.bootmgr_integrityservices", "bcd.emssettings", "bcd.default_device", "bcd.default_osdevice",
                    "sysprep.state", "sysprep.oobe_shutdown_not_audit", "updates.min_file_versions",
                    "updates.no_pending_reboot", "os.min_version"):
        assert results[rule_id].status == Status.PASS, (rule_id, results[rule_id].message)
    mine = {r.id for r in all_rules() if getattr(r._check, "__module__", "").rsplit(".", 1)[-1] in MODULES}
    bad = {i: r.message for i, r in results.items() if i in mine and r.status in (Status.FAIL, Status.ERROR)}
    assert not bad


def test_chs_sized_vhd(sample_dir: Path) -> None:
    out = audit(sample_dir, "gen1-misaligned.vhd")["disk.size_aligned_1mib"]
    assert out.status == Status.FAIL and "CHS geometry" in out.message


def test_misconfigured_gen2(sample_dir: Path) -> None:
    results = audit(sample_dir, "gen2-misconfigured.vhdx")
    expected = {
        "disk.container_format": Status.FAIL,
        "disk.generation": Status.PASS,
        "bcd.default_recovery_disabled": Status.FAIL,
        "bcd.default_bootstatuspolicy": Status.FAIL,
        "bcd.default_device": Status.PASS,
        "bcd.default_osdevice": Status.PASS,
        "sysprep.panther_deleted": Status.WARNING,
        "updates.min_file_versions": Status.FAIL,
        "updates.no_pending_reboot": Status.FAIL,
    }
    got = {i: results[i].status for i in expected}
    assert got == expected, {i: results[i].message for i in expected if got[i] != expected[i]}
    assert "vmstorfl.sys 10.0.16299.15 < 10.0.16299.371" in results["updates.min_file_versions"].message
    assert not [r.rule_id for r in results.values() if r.status == Status.ERROR]


@pytest.mark.parametrize("name", ["gen1-azure-child.vhd", "gen2-misconfigured-child.vhdx"])
def test_differencing_children(sample_dir: Path, name: str) -> None:
    results = audit(sample_dir, name)
    assert results["disk.not_differencing"].status == Status.FAIL
    assert results["bcd.store_present"].status == Status.PASS
