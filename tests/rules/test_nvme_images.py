"""The NVMe rules on the committed platform samples, through azvhdaudit.audit: gen2-ready is NVMe-ready, gen2-blocked
is not (stornvme demand-start with StartOverride\\0 = 3, page file on D:), and a disk without Windows leaves every
rule not checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from profiles_record import manifest, unpack_samples

import azvhdaudit
from azvhdaudit.report import Result, Status

pytestmark = pytest.mark.slow

NVME_RULES = (
    "nvme.stornvme_boot_start",
    "nvme.pci_boot_start",
    "nvme.vpci_no_override",
    "nvme.storage_boot_chain",
    "nvme.stornvme_driver_file",
    "nvme.generation_and_build",
    "nvme.pagefile_not_on_temp_disk",
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    names = {s["name"] for s in manifest()}
    assert {"gen2-ready.vhd", "gen2-blocked.vhd", "data-gpt.vhd"} <= names
    return unpack_samples(tmp_path_factory.mktemp("nvme-images"))


def results(path: Path, **kwargs: Any) -> dict[str, Result]:
    report = azvhdaudit.audit(str(path), select=["nvme"], **kwargs)
    return {r.rule_id: r for r in report}


def test_ready_image_passes_every_nvme_rule(images: dict[str, Path]) -> None:
    got = results(images["gen2-ready.vhd"], target={"disk_controller": "NVMe"})
    assert {i: r.status for i, r in got.items()} == {i: Status.PASS for i in NVME_RULES}


def test_blocked_image_fails_with_the_control_set_and_the_fix(images: dict[str, Path]) -> None:
    got = results(images["gen2-blocked.vhd"], target={"disk_controller": "NVMe"})
    stornvme = got["nvme.stornvme_boot_start"]
    assert stornvme.status is Status.FAIL
    assert (
        "ControlSet001 (current, default, LastKnownGood): Services\\stornvme\\StartOverride holds 0 = 3"
        in stornvme.message
    )
    assert "Remove-Item -Path 'HKLM:\\SYSTEM\\ControlSet001\\Services\\stornvme\\StartOverride'" in stornvme.remediation
    assert (
        "Set-ItemProperty -Path 'HKLM:\\SYSTEM\\ControlSet001\\Services\\stornvme' -Name Start -Value 0"
        in stornvme.remediation
    )
    # said once: the message names the control set, the remediation holds both fixes (inside the VM, offline)
    assert "fix:" not in stornvme.message and "Remove-Item" not in stornvme.message
    assert 'reg delete "HKLM\\IMG_SYSTEM\\ControlSet001\\Services\\stornvme\\StartOverride" /f' in stornvme.remediation
    assert got["nvme.pagefile_not_on_temp_disk"].status is Status.WARNING


def test_blocked_image_under_scsi_only_warns(images: dict[str, Path]) -> None:
    got = results(images["gen2-blocked.vhd"])
    assert got["nvme.stornvme_boot_start"].status is Status.WARNING
    assert "will not boot on NVMe-only sizes" in got["nvme.stornvme_boot_start"].message


def test_a_disk_without_windows_is_not_checked(images: dict[str, Path]) -> None:
    got = results(images["data-gpt.vhd"], target={"disk_controller": "NVMe"})
    assert {r.status for r in got.values()} == {Status.NOT_CHECKED}
    assert all(r.reason for r in got.values())
