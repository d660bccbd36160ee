"""Whole-VM audits of real disk files (the ``vm`` fixture of conftest.py): the report and its formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from azvhdaudit.engine import audit
from azvhdaudit.report import Status

#: slow: audits a VM's images built with the real tools
pytestmark = [pytest.mark.slow, pytest.mark.tools]


def test_vm_report_holds_every_disk_and_the_cross_checks(vm: dict[str, Path]) -> None:
    report = audit(vm["os"], data_disks=[vm["mbr"], vm["gpt"], vm["unknown"]])
    names = ["os", "data1:data-mbr.vhd", "data2:data-gpt1.vhd", "data3:data-unknown.vhd"]
    assert list(report.disks) == names
    assert {r.disk for r in report} == {*names, "vm"}
    # each data disk passes the disk-format rules a data disk needs; the guest rules are not applicable
    for name in names[1:]:
        assert report.disks[name]["role"] == "data" and report.disks[name]["windows"] is False
        for rule_id in (
            "disk.container_format",
            "disk.vhd_fixed",
            "disk.size_aligned_1mib",
            "disk.data_max_size",
            "disk.not_differencing",
        ):
            result = report.get(rule_id, name)
            assert result is not None and result.status is Status.PASS, (name, rule_id)
        assert report.get("rdp.port", name).status is Status.NOT_APPLICABLE  # type: ignore[union-attr]
        assert report.disks[name]["summary"] == report.disk_summary(name)
        assert report.disks[name]["facts"]["container"]["subtype"] == "fixed"
    # the letters Windows gives them
    assert report.disks["os"]["drive_letters"] == ["C:"]
    assert report.disks["data1:data-mbr.vhd"]["drive_letters"] == ["E:"]
    assert report.disks["data2:data-gpt1.vhd"]["drive_letters"] == ["D:"]
    assert report.disks["data3:data-unknown.vhd"]["drive_letters"] == []
    letters = report.disks["os"]["drive_letter_map"]
    assert {k: v["disk"] for k, v in letters.items()} == {
        "C:": "os",
        "D:": "data2:data-gpt1.vhd",
        "E:": "data1:data-mbr.vhd",
    }
    known = report.get("vm.data_disks_known", "vm")
    assert known is not None and known.status is Status.WARNING
    assert "data3:data-unknown.vhd (MBR signature 0xDA7A0099)" in known.message
    assert "data1:data-mbr.vhd: partition #0 as E:" in known.message
    conflict = report.get("vm.temp_drive_letter_free", "vm")
    assert conflict is not None and conflict.status is Status.WARNING
    assert "data2:data-gpt1.vhd partition #0" in conflict.message and "D:\\pagefile.sys" in conflict.message
    assert report.get("vm.disk_sizes", "vm").status is Status.PASS  # type: ignore[union-attr]
    assert report.get("vm.disk_ids_unique", "vm").status is Status.PASS  # type: ignore[union-attr]
    # the JSON nests the disks
    data = json.loads(json.dumps(report.to_dict(), default=str))
    assert data["disks"]["data3:data-unknown.vhd"]["summary"]["not_applicable"] > 0
    assert data["options"]["data_disks"] == [str(vm["mbr"]), str(vm["gpt"]), str(vm["unknown"])]


def test_only_known_data_disks(vm: dict[str, Path]) -> None:
    report = audit(vm["os"], select=["vm"], data_disks=[vm["mbr"]])
    assert report.get("vm.data_disks_known", "vm").status is Status.PASS  # type: ignore[union-attr]
    assert report.get("vm.temp_drive_letter_free", "vm").status is Status.PASS  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("role", "windows_status"),
    [(None, Status.FAIL), ("os", Status.FAIL), ("data", Status.NOT_APPLICABLE)],
)
def test_a_disk_without_windows_is_a_clear_result(
    vm: dict[str, Path], role: str | None, windows_status: Status
) -> None:
    report = audit(vm["mbr"], role=role)
    name = "os" if role != "data" else "data:data-mbr.vhd"
    assert list(report.disks) == [name]
    assert report.disks[name]["windows"] is False
    result = report.get("disk.windows_volume", name)
    assert result is not None and result.status is windows_status
    assert report.get("disk.vhd_fixed", name).status is Status.PASS  # type: ignore[union-attr]
    guest = report.get("rdp.port", name)
    assert guest is not None
    if role == "data":
        assert guest.status is Status.NOT_APPLICABLE and "data disk" in guest.reason
        assert report.exit_code() == 0
    else:
        assert "no NTFS volume holds Windows" in result.message
        assert guest.status is Status.NOT_CHECKED and "no Windows on this disk" in guest.reason
        assert report.exit_code() == 1


def test_vm_report_matches_the_schema(vm: dict[str, Path]) -> None:
    import jsonschema

    from azvhdaudit.render.json import load_schema, to_jsonable

    report = audit(vm["os"], select=["disk-format", "vm", "rdp.port"], data_disks=[vm["gpt"], vm["unknown"]])
    data = json.loads(json.dumps(to_jsonable(report)))
    jsonschema.Draft202012Validator(load_schema()).validate(data)
    assert data["disks"]["os"]["drive_letter_map"]["D:"]["disk"] == "data1:data-gpt1.vhd"
    assert {r["disk"] for r in data["results"]} == {"os", "data1:data-gpt1.vhd", "data2:data-unknown.vhd", "vm"}


def test_junit_has_a_testsuite_per_disk(vm: dict[str, Path]) -> None:
    import xml.etree.ElementTree as ET

    from azvhdaudit.render import render

    report = audit(vm["os"], select=["disk-format", "vm"], data_disks=[vm["mbr"], vm["gpt"]])
    root = ET.fromstring(render(report, "junit"))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    source = report.source
    assert set(suites) == {
        source,
        f"{source} [data1:data-mbr.vhd]",
        f"{source} [data2:data-gpt1.vhd]",
        f"{source} [vm]",
    }
    for name, suite in suites.items():
        disk = next(p.get("value") for p in suite.iter("property") if p.get("name") == "disk")
        assert int(suite.get("tests") or 0) == len(report.filter(disk=disk)), name
        role = next(p.get("value") for p in suite.iter("property") if p.get("name") == "role")
        assert role == ("vm" if disk == "vm" else report.disks[disk]["role"])
    vm_cases = {c.get("name") for c in suites[f"{source} [vm]"].iter("testcase")}
    assert any("vm.temp_drive_letter_free" in (n or "") for n in vm_cases)


def test_a_disk_without_a_partition_table(vm: dict[str, Path]) -> None:
    report = audit(vm["os"], select=["disk-format", "vm"], data_disks=[vm["blank"]])
    name = "data1:data-blank.vhd"
    assert report.disks[name]["facts"]["partitions"] == []
    assert "no partition table" in report.disks[name]["facts"]["extra"]["partition_table"]
    for rule_id in ("disk.container_format", "disk.vhd_fixed", "disk.size_aligned_1mib", "disk.data_max_size"):
        assert report.get(rule_id, name).status is Status.PASS  # type: ignore[union-attr]
    assert report.get("disk.first_partition_offset", name).status is Status.NOT_APPLICABLE  # type: ignore[union-attr]
    known = report.get("vm.data_disks_known", "vm")
    assert known is not None and "data1:data-blank.vhd (no partition table" in known.message
    # as the OS disk it is a clear result too
    alone = audit(vm["blank"])
    assert alone["disk.windows_volume"].status is Status.FAIL
    assert "no partitions" in alone["disk.windows_volume"].message
    assert "no partition table" in alone["rdp.port"].reason
