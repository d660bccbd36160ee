"""The engine's decisions by disk role: data disks, an OS disk without Windows, the VM checks."""

from __future__ import annotations

import datetime as _dt

import pytest

from azvhdaudit.engine import DISK_AREAS, audit, audit_context, audit_vm_context, select_rules
from azvhdaudit.errors import ProfileError
from azvhdaudit.report import Status
from azvhdaudit.rules.base import AuditContext, AuditOptions
from azvhdaudit.rules.vm import VM_ROLE

from .vmkit import DATA_SIG, data_mbr, letter, mbr_value, os_facts, system_view, vm_context

TODAY = _dt.date(2026, 6, 1)
NO_WINDOWS = "no Windows on this disk (see disk.windows_volume): the SYSTEM hive cannot be read: no Windows volume"
#: what a data disk must get (the issue's list): VHD, fixed, 1 MiB-aligned and size + 512, <= 32,767 GiB,
#: not differencing
DATA_DISK_RULES = {
    "disk.container_format",
    "disk.vhd_fixed",
    "disk.size_aligned_1mib",
    "disk.data_max_size",
    "disk.not_differencing",
}


def data_ctx(role: str | None = "data") -> AuditContext:
    return AuditContext(registry=system_view(None), facts=data_mbr(), options=AuditOptions(role=role))


def test_select_rules_by_role() -> None:
    vm = {r.id for r in select_rules("azure", role=VM_ROLE)}
    data = {r.id for r in select_rules("azure", role="data")}
    os_rules = {r.id for r in select_rules("azure")}
    assert vm == {"vm.data_disks_known", "vm.temp_drive_letter_free", "vm.disk_sizes", "vm.disk_ids_unique"}
    assert DATA_DISK_RULES <= data
    assert not vm & (data | os_rules)
    assert "disk.windows_volume" in os_rules - data


def test_data_disk_runs_the_disk_rules_and_reports_the_rest_not_applicable() -> None:
    results = audit_context(data_ctx(), "azure", disk="data1:d.vhd", today=TODAY)
    by_id = {r.rule_id: r for r in results}
    assert {r.disk for r in results} == {"data1:d.vhd"}
    for rule_id in DATA_DISK_RULES:
        assert by_id[rule_id].status is Status.PASS, (rule_id, by_id[rule_id].message)
    # every OS-disk rule is there, not applicable, with the reason
    for rule_id in ("rdp.port", "time.utc", "sysprep.state", "disk.windows_volume", "disk.os_max_size"):
        assert by_id[rule_id].status is Status.NOT_APPLICABLE
        assert "data1:d.vhd is audited as a data disk" in by_id[rule_id].reason
    assert "guest settings" in by_id["rdp.port"].reason
    # the OS-disk rules of the profile all appear, and no VM check
    assert set(by_id) == {r.id for r in select_rules("azure")} | {r.id for r in select_rules("azure", role="data")}
    assert not any(r.area == "vm" for r in results)


def test_no_windows_makes_guest_rules_not_checked_and_disk_rules_run() -> None:
    results = audit_context(data_ctx(None), "azure", today=TODAY, no_windows=NO_WINDOWS)
    by_id = {r.rule_id: r for r in results}
    assert by_id["disk.windows_volume"].status is Status.FAIL
    assert "role='data'" in by_id["disk.windows_volume"].message
    assert by_id["disk.vhd_fixed"].status is Status.PASS
    guest = [r for r in results if r.area not in DISK_AREAS]
    assert guest and all(r.status is Status.NOT_CHECKED and r.reason == NO_WINDOWS for r in guest)
    # the problems are only the disk's own: nothing from a guest rule
    assert {r.area for r in results if r.status.is_problem} <= DISK_AREAS


def test_no_windows_is_ignored_on_a_data_disk() -> None:
    results = audit_context(data_ctx(), "azure", select=["rdp.port", "disk.vhd_fixed"], no_windows=NO_WINDOWS)
    assert [r.status for r in results] == [Status.PASS, Status.NOT_APPLICABLE]


def test_waiver_does_not_hide_not_applicable_on_a_data_disk() -> None:
    waivers = [{"rule": "rdp.port", "reason": "r"}, {"rule": "disk.vhd_fixed", "reason": "converted later"}]
    results = audit_context(data_ctx(), "azure", select=["rdp.port", "disk.vhd_fixed"], waivers=waivers, today=TODAY)
    by_id = {r.rule_id: r for r in results}
    assert by_id["rdp.port"].status is Status.NOT_APPLICABLE
    assert by_id["disk.vhd_fixed"].status is Status.WAIVED


def test_unknown_role_in_the_context_is_an_error() -> None:
    with pytest.raises(ProfileError, match="role"):
        audit_context(data_ctx("boot"), "azure")


def test_vm_checks_run_once_for_the_vm() -> None:
    ctx = vm_context({letter("D"): mbr_value(DATA_SIG)}, {"m.vhd": data_mbr()})
    results = audit_vm_context(ctx, "azure", today=TODAY)
    assert {r.disk for r in results} == {"vm"}
    by_id = {r.rule_id: r for r in results}
    assert by_id["vm.temp_drive_letter_free"].status is Status.WARNING
    assert by_id["vm.data_disks_known"].status is Status.PASS
    # select and waivers work as for every rule
    [one] = audit_vm_context(ctx, "azure", select=["vm.disk_sizes"])
    assert one.rule_id == "vm.disk_sizes"
    waived = audit_vm_context(
        ctx,
        "azure",
        select=["vm"],
        waivers=[{"rule": "vm.temp_drive_letter_free", "reason": "D: kept for data on purpose"}],
    )
    assert {r.rule_id: r.status for r in waived}["vm.temp_drive_letter_free"] is Status.WAIVED


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"role": "boot"}, "role must be"),
        ({"role": "data", "data_disks": ["d.vhd"]}, "data_disks belong to an OS disk"),
        ({"select": ["vm.nothing"]}, "matches no rule"),
    ],
)
def test_audit_checks_roles_before_opening_anything(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ProfileError, match=match):
        audit("/nonexistent/os.vhd", **kwargs)  # type: ignore[arg-type]


def test_audit_of_opened_hives_records_the_disk_and_its_letters() -> None:
    from types import SimpleNamespace

    facts = os_facts()
    opened = SimpleNamespace(
        source="os.vhd",
        registry=system_view({letter("C"): mbr_value(facts.mbr_disk_signature or 0)}),
        facts=facts,
        files=None,
        bcd=None,
    )
    report = audit(opened, select=["disk.windows_volume"])
    assert report["disk.windows_volume"].status is Status.PASS
    assert report.disks == {
        "os": {
            "role": "os",
            "source": "os.vhd",
            "windows": True,
            "drive_letters": ["C:"],
            "summary": report.disk_summary("os"),
            "drive_letter_map": {
                "C:": {
                    "disk": "os",
                    "partition": 0,
                    "name": letter("C"),
                    "style": "mbr",
                    "mbr_signature": 0x0051D15C,
                    "offset": 1048576,
                    "guid": None,
                    "raw_length": 12,
                }
            },
        }
    }
    assert report.disk_summary("os")["pass"] == 1 and report.disk_summary("vm")["pass"] == 0
