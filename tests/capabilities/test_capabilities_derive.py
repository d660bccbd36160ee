"""The capability manifest derived from reports built here: every deciding rule's verdict, one at a time."""

from __future__ import annotations

import pytest
from capkit import DECIDING, _report

from azvhdaudit.capabilities import (
    ACCELERATED_NETWORKING_RULES,
    NVME_RULES,
    SECURITY_RULES,
    SUPPORTED,
    UNKNOWN,
    UNSUPPORTED,
    derive_capabilities,
)
from azvhdaudit.engine import catalogue, in_profile
from azvhdaudit.report import Report, Result, Severity, Status


def test_every_deciding_rule_is_in_the_catalogue_and_the_azure_profile() -> None:
    rules = {r.meta.id: r for r in catalogue()}
    for rule_id in DECIDING:
        assert rule_id in rules, rule_id
        assert in_profile(rules[rule_id], "azure"), rule_id


def test_an_image_that_supports_everything_it_can_be_shown_to() -> None:
    caps = derive_capabilities(_report())
    assert caps.hyper_v_generation.value == "V2" and caps.hyper_v_generation.status == SUPPORTED
    assert caps.os_state.value == "Generalized" and caps.os_state.supported
    assert caps.architecture.value == "x64" and caps.architecture.supported
    assert caps.security_types == {"Standard", "TrustedLaunch"}
    assert caps.gallery_security_type == "TrustedLaunchSupported"
    assert caps.disk_controllers == {"SCSI", "NVMe"}
    assert caps.accelerated_networking.value is True and caps.accelerated_networking.supported
    # no rule judges Confidential VM's OS list: never "supported" on the strength of Trusted Launch's rules
    assert caps["security_type:ConfidentialVM"].status == UNKNOWN
    # Windows Server 2022 with no page file on the temporary disk: in Azure's hibernation list
    assert caps.hibernation.status == SUPPORTED and caps.hibernation.value is True
    assert caps.refused == ()
    assert all(not c.blocking for c in caps.all)


def test_an_image_that_supports_little_names_every_blocking_rule() -> None:
    failing = {
        "secureboot.bcd_integrity": Status.FAIL,
        "signing.boot_drivers": Status.WARNING,
        "nvme.stornvme_boot_start": Status.FAIL,
        "nvme.stornvme_driver_file": Status.WARNING,
        "platform_net.mana_driver": Status.WARNING,
        "os.hyperv_drivers_enabled": Status.FAIL,
        "sysprep.oobe_shutdown_not_audit": Status.FAIL,
    }
    caps = derive_capabilities(_report(failing))
    tl = caps["security_type:TrustedLaunch"]
    assert tl.status == UNSUPPORTED
    assert tl.blocking_rules == ("secureboot.bcd_integrity", "signing.boot_drivers")
    assert [b.message for b in tl.blocking] == [
        "secureboot.bcd_integrity said fail",
        "signing.boot_drivers said warning",
    ]
    assert caps["disk_controller:NVMe"].blocking_rules == ("nvme.stornvme_driver_file", "nvme.stornvme_boot_start")
    assert caps["disk_controller:SCSI"].blocking_rules == ("os.hyperv_drivers_enabled",)
    assert caps.accelerated_networking.blocking_rules == ("platform_net.mana_driver",)
    assert caps.accelerated_networking.value is False
    assert caps.os_state.blocking_rules == ("sysprep.oobe_shutdown_not_audit",)
    assert caps.security_types == {"Standard"} and caps.gallery_security_type == "Standard"
    assert caps.disk_controllers == frozenset()


@pytest.mark.parametrize("status", [Status.NOT_CHECKED, Status.ERROR, Status.MANUAL])
@pytest.mark.parametrize(
    "rule_id", ["secureboot.bootmgr_signature", "nvme.pci_boot_start", "platform_net.mellanox_driver"]
)
def test_a_rule_not_judged_leaves_its_capability_unknown(rule_id: str, status: Status) -> None:
    caps = derive_capabilities(_report({rule_id: status}))
    cap = next(c for c in caps.all if any(b.rule_id == rule_id for b in c.undecided))
    assert cap.status == UNKNOWN and not cap.blocking
    assert cap.undecided[0].status == status.value and cap.undecided[0].message == f"{rule_id}: why"


def test_a_profile_without_the_platform_rules_decides_nothing_of_them() -> None:
    caps = derive_capabilities(_report(omit=(*SECURITY_RULES, *NVME_RULES, *ACCELERATED_NETWORKING_RULES)))
    for name in ("security_type:TrustedLaunch", "disk_controller:NVMe", "accelerated_networking"):
        assert caps[name].status == UNKNOWN
        assert {b.status for b in caps[name].undecided} == {"not_run"}
    assert caps.accelerated_networking.value is None
    assert caps.security_types == {"Standard"} and caps.disk_controllers == {"SCSI"}


def test_advisory_findings_are_notes_not_blockers() -> None:
    caps = derive_capabilities(
        _report({"secureboot.uefica2023_servicing": Status.WARNING, "nvme.pagefile_not_on_temp_disk": Status.WARNING})
    )
    assert "TrustedLaunch" in caps.security_types and "NVMe" in caps.disk_controllers
    assert any("secureboot.uefica2023_servicing" in n for n in caps["security_type:TrustedLaunch"].notes)
    assert any("nvme.pagefile_not_on_temp_disk" in n for n in caps["disk_controller:NVMe"].notes)


def test_a_waived_failure_still_blocks() -> None:
    report = _report()
    index = next(i for i, r in enumerate(report.results) if r.rule_id == "signing.boot_drivers")
    r = report.results[index]
    report.results[index] = Result(
        r.rule_id, r.title, r.area, r.severity, Status.WAIVED, r.message, waived_status=Status.FAIL
    )
    assert derive_capabilities(report)["security_type:TrustedLaunch"].blocking_rules == ("signing.boot_drivers",)


def test_generation_1_refuses_trusted_launch_confidential_vm_and_nvme() -> None:
    caps = derive_capabilities(_report(generation=1))
    assert caps.hyper_v_generation.value == "V1"
    for name in ("security_type:TrustedLaunch", "security_type:ConfidentialVM", "disk_controller:NVMe"):
        assert caps[name].status == UNSUPPORTED
        assert caps[name].blocking_rules[0] == "facts.generation"
    assert len(caps.refused) == 3 and all("Generation 1" in r for r in caps.refused)
    assert caps.security_types == {"Standard"} and caps.gallery_security_type == "Standard"


def test_an_encrypted_generalized_image_refuses_confidential_vm() -> None:
    caps = derive_capabilities(_report(bitlocker=True))
    assert "facts.bitlocker" in caps["security_type:ConfidentialVM"].blocking_rules
    assert any("can only be specialized" in r for r in caps.refused)


@pytest.mark.parametrize(
    ("state", "value", "status"),
    [
        ("generalized", "Generalized", SUPPORTED),
        ("specialized", "Specialized", SUPPORTED),
        ("undeployable", None, UNSUPPORTED),
        ("unknown", None, UNKNOWN),
        (None, None, UNKNOWN),
    ],
)
def test_os_state_from_the_sysprep_facts(state: str | None, value: str | None, status: str) -> None:
    cap = derive_capabilities(_report(state=state)).os_state
    assert (cap.value, cap.status) == (value, status)


@pytest.mark.parametrize(
    ("machine", "value", "status"),
    [
        ("AMD64", "x64", SUPPORTED),
        ("ARM64", "Arm64", SUPPORTED),
        ("x86", None, UNSUPPORTED),
        ("0x0200", None, UNSUPPORTED),
        (None, None, UNKNOWN),
    ],
)
def test_architecture_from_the_kernel_machine_type(machine: str | None, value: str | None, status: str) -> None:
    cap = derive_capabilities(_report(machine=machine)).architecture
    assert (cap.value, cap.status) == (value, status)


def test_unknown_generation_supports_no_security_type() -> None:
    caps = derive_capabilities(_report(generation=None))
    assert caps.hyper_v_generation.status == UNKNOWN
    assert caps.security_types == frozenset() and caps.gallery_security_type is None


def test_only_the_os_disk_results_decide() -> None:
    report = _report()
    report.results.append(
        Result("nvme.stornvme_boot_start", "t", "nvme", Severity.REQUIRED, Status.FAIL, "data", disk="data1:d.vhd")
    )
    assert "NVMe" in derive_capabilities(report).disk_controllers


def test_the_report_property_and_to_dict_agree() -> None:
    report = _report({"nvme.pci_boot_start": Status.FAIL})
    data = report.to_dict()["capabilities"]
    assert data == derive_capabilities(report).to_dict()
    assert data["disk_controllers"] == ["SCSI"]
    nvme = next(c for c in data["capabilities"] if c["name"] == "disk_controller:NVMe")
    assert nvme["blocking"] == [
        {"rule_id": "nvme.pci_boot_start", "status": "fail", "message": "nvme.pci_boot_start said fail"}
    ]
    assert "capabilities" not in Report(source="none", profile="azure").to_dict()


def _os(build: int, edition: str, kind: str) -> dict[str, object]:
    return {
        "product_name": "Windows",
        "build": build,
        "edition_id": edition,
        "installation_type": kind,
        "architecture": "AMD64",
    }


@pytest.mark.parametrize(
    ("os_facts", "status", "words"),
    [
        (_os(20348, "ServerDatacenter", "Server"), SUPPORTED, "Windows Server 2022, in the list of"),
        (_os(17763, "ServerStandard", "Server Core"), SUPPORTED, "Windows Server 2019, in the list of"),
        (_os(14393, "ServerDatacenter", "Server"), UNSUPPORTED, "older than Windows Server 2019"),
        (_os(26100, "ServerDatacenter", "Server"), UNKNOWN, "a Windows Server build the list of"),
        (_os(22631, "Professional", "Client"), SUPPORTED, "Windows 11 Pro, in the list of"),
        (_os(19045, "ServerRdsh", "Client"), SUPPORTED, "Windows 10 Enterprise multi-session, in the list of"),
        (_os(19045, "Core", "Client"), UNSUPPORTED, "a Home edition"),
        (_os(19045, "Education", "Client"), UNKNOWN, "an edition the list of"),
        (_os(9600, "Professional", "Client"), UNSUPPORTED, "older than Windows 10"),
        ({"product_name": "Windows", "build": 19045}, UNKNOWN, "whether it is a server could not be read"),
    ],
)
def test_hibernation_follows_azures_windows_list(os_facts: dict[str, object], status: str, words: str) -> None:
    report = _report()
    report.facts["os"] = os_facts
    hib = derive_capabilities(report).hibernation
    assert hib.status == status and words in hib.notes[0], hib
    assert "hibernate-resume-windows, ms.date 2024-04-09" in hib.notes[0] or "could not be read" in hib.notes[0]
    assert hib.value == {SUPPORTED: True, UNSUPPORTED: False}.get(status)
    if status == UNSUPPORTED:
        assert hib.blocking_rules == ("facts.os",)


def test_hibernation_needs_the_page_file_off_the_temporary_disk() -> None:
    listed = _os(20348, "ServerDatacenter", "Server")
    warned = _report({"nvme.pagefile_not_on_temp_disk": Status.WARNING})
    warned.facts["os"] = listed
    hib = derive_capabilities(warned).hibernation
    assert hib.status == UNSUPPORTED and hib.value is False
    assert hib.blocking_rules == ("nvme.pagefile_not_on_temp_disk",)
    unjudged = _report(omit=("nvme.pagefile_not_on_temp_disk",))
    unjudged.facts["os"] = listed
    hib = derive_capabilities(unjudged).hibernation
    assert hib.status == UNKNOWN and hib.value is None
    assert [(b.rule_id, b.status) for b in hib.undecided] == [("nvme.pagefile_not_on_temp_disk", "not_run")]
    # no OS facts at all: unknown, never supported
    bare = _report()
    bare.facts["os"] = None
    assert derive_capabilities(bare).hibernation.status == UNKNOWN
