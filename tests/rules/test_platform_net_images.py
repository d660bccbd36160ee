"""The platform network rules on the committed platform samples, through azvhdaudit.audit: gen2-ready carries MANA
and the three Mellanox drivers in its DriverDatabase, gen2-blocked no MANA driver; a disk without Windows leaves every
rule not checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from profiles_record import unpack_samples

import azvhdaudit
from azvhdaudit.report import Result, Status

pytestmark = pytest.mark.slow

RULES = (
    "platform_net.mana_driver",
    "platform_net.mellanox_driver",
    "platform_net.kms_host",
    "platform_net.dhcp_enabled",
)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return unpack_samples(tmp_path_factory.mktemp("net-images"))


def results(path: Path) -> dict[str, Result]:
    return {r.rule_id: r for r in azvhdaudit.audit(str(path), select=["platform-network"])}


def test_ready_image(images: dict[str, Path]) -> None:
    got = results(images["gen2-ready.vhd"])
    assert {i: r.status for i, r in got.items()} == {i: Status.PASS for i in RULES}
    assert got["platform_net.mana_driver"].message.startswith("MANA (PCI\\VEN_1414&DEV_00BA) -> mana.inf_amd64_")


def test_blocked_image_has_no_mana_driver(images: dict[str, Path]) -> None:
    got = results(images["gen2-blocked.vhd"])
    assert got["platform_net.mana_driver"].status is Status.WARNING
    assert "no accelerated networking on Azure Boost sizes" in got["platform_net.mana_driver"].message


def test_a_disk_without_windows_is_not_checked(images: dict[str, Path]) -> None:
    got = results(images["data-gpt.vhd"])
    assert set(got) == set(RULES) and {r.status for r in got.values()} == {Status.NOT_CHECKED}
