"""The azure-marketplace rules, each with a compliant, a non-compliant and a missing-evidence case (status, evidence
and fix asserted), on guestkit's compliant hives with an overlay and image facts made for the case.

The numbers come from "Troubleshoot virtual machine certification" (ms.date 2021-09-27) and "Plan a virtual
machine offer" (ms.date 2021-11-17); see azvhdaudit/rules/marketplace.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from image_rules.helpers import gpt_partitions
from image_rules.helpers import run as run_check

from azvhdaudit.engine import select_rules
from azvhdaudit.facts import SysprepFacts
from azvhdaudit.report import Status

from .mpkit import (
    CACHE,
    CLIENT_10,
    SERVER_2012R2,
    SERVER_2019,
    SERVICES,
    SQL,
    SRV,
    SRV2,
    UNINSTALL,
    GiB,
    MiB,
    context,
    run,
    run_vm,
)

PASS, FAIL, WARN, NC, NA, MANUAL = (
    Status.PASS,
    Status.FAIL,
    Status.WARNING,
    Status.NOT_CHECKED,
    Status.NOT_APPLICABLE,
    Status.MANUAL,
)
KERNEL = r"Windows\System32\ntoskrnl.exe"


def kernel(machine: str | None, value: int | None = None, error: str | None = None) -> dict[str, object]:
    return {
        "kernel": {
            "path": KERNEL,
            "present": machine is not None,
            "machine": machine,
            "machine_value": value,
            "error": error,
        }
    }


# --- marketplace.os_64bit ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("machine", "value"), [("AMD64", 0x8664), ("ARM64", 0xAA64)])
def test_64bit_kernel_passes(machine: str, value: int) -> None:
    result = run("marketplace.os_64bit", context(extra=kernel(machine, value)))
    assert result.status is PASS and result.actual == machine
    [ev] = result.evidence
    assert ev.key == KERNEL and ev.actual == machine and ev.raw == f"{value:04x}"


@pytest.mark.parametrize(("machine", "value"), [("x86", 0x14C), ("ARM", 0x1C4), ("0x0200", 0x200)])
def test_32bit_or_unknown_kernel_fails(machine: str, value: int) -> None:
    result = run("marketplace.os_64bit", context(extra=kernel(machine, value)))
    assert result.status is FAIL and result.actual == machine
    assert f"the kernel is {machine}" in result.message
    assert result.evidence[0].raw == f"{value:04x}"
    assert "64-bit Windows" in result.remediation


def test_unread_kernel_is_not_checked() -> None:
    result = run("marketplace.os_64bit", context(extra=kernel(None, error=rf"{KERNEL} does not exist")))
    assert result.status is NC and "does not exist" in result.reason


def test_kernel_read_from_the_files_when_the_facts_lack_it() -> None:
    # the hives given without an image: no Windows volume, no kernel facts
    result = run("marketplace.os_64bit", context())
    assert result.status is NC and "no Windows volume was read" in result.reason


# --- marketplace.os_disk_not_encrypted ----------------------------------------------------------------------------


def test_os_disk_without_bitlocker_passes() -> None:
    result = run("marketplace.os_disk_not_encrypted", context())
    assert result.status is PASS
    assert result.evidence[0].actual == {"partitions": 3, "encrypted": []}


def test_bitlocker_on_the_windows_volume_fails() -> None:
    parts = gpt_partitions()
    parts[2] = replace(parts[2], filesystem="bitlocker", encrypted=True)
    result = run("marketplace.os_disk_not_encrypted", context(partitions=parts, bitlocker=True))
    assert result.status is FAIL
    assert result.evidence[0].actual == {"partitions": 3, "encrypted": [2]}
    assert "#2 (Basic data" in result.message
    assert result.remediation.startswith("manage-bde -off C:")


def test_bitlocker_on_another_partition_names_it_in_the_fix() -> None:
    parts = gpt_partitions()
    parts[0] = replace(parts[0], filesystem="bitlocker", encrypted=True)
    result = run("marketplace.os_disk_not_encrypted", context(partitions=parts))
    assert result.status is FAIL and "Decrypt partition #0 (EFI System" in result.remediation


def test_no_partitions_read_is_not_checked() -> None:
    result = run("marketplace.os_disk_not_encrypted", context(partitions=[]))
    assert result.status is NC and "no partitions" in result.reason


# --- marketplace.os_disk_size -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [30 * GiB, 127 * GiB, 250 * GiB])
def test_os_disk_within_30_to_250_gib_passes(size: int) -> None:
    result = run("marketplace.os_disk_size", context(virtual_size=size))
    assert result.status is PASS and result.actual == size
    assert result.evidence[0].actual["virtual_size"] == size


def test_os_disk_under_30_gib_fails_with_the_resize_to_30_gib() -> None:
    size = 30 * GiB - MiB
    result = run("marketplace.os_disk_size", context(virtual_size=size))
    assert result.status is FAIL and result.actual == size
    assert "under the 30 GiB" in result.message
    assert result.remediation.splitlines()[0] == "Resize-VHD -Path disk.vhd -SizeBytes 32212254720"
    assert "Resize-Partition -DriveLetter C" in result.remediation


def test_small_qcow2_grows_with_qemu_img() -> None:
    result = run("marketplace.os_disk_size", context(virtual_size=20 * GiB, fmt="qcow2", path="os.qcow2"))
    assert result.remediation.splitlines()[0] == "qemu-img resize -f qcow2 os.qcow2 32212254720"


def test_os_disk_over_250_gib_fails_with_the_shrink_through_a_vhdx() -> None:
    size = 251 * GiB
    result = run("marketplace.os_disk_size", context(virtual_size=size))
    assert result.status is FAIL and "over the 250 GiB" in result.message
    # the partitions end at 20 GiB + 117 MiB: no partition to shrink first
    assert result.remediation.splitlines() == [
        "Convert-VHD -Path disk.vhd -DestinationPath disk-shrink.vhdx",
        "Resize-VHD -Path disk-shrink.vhdx -SizeBytes 268435456000",
        "Convert-VHD -Path disk-shrink.vhdx -DestinationPath disk-250gib.vhd -VHDType Fixed",
    ]


def test_os_disk_over_250_gib_whose_partition_reaches_past_it_shrinks_the_partition_first() -> None:
    parts = gpt_partitions()
    parts[2] = replace(parts[2], size=300 * GiB)
    result = run(
        "marketplace.os_disk_size", context(virtual_size=301 * GiB, fmt="vhdx", path="os.vhdx", partitions=parts)
    )
    end = parts[2].offset + parts[2].size
    assert result.evidence[0].actual["partitions_end"] == end
    first, last = result.remediation.splitlines()
    assert f"they end at {end}" in first and f"minus {end - 250 * GiB} bytes" in first
    assert last == "Resize-VHD -Path os.vhdx -SizeBytes 268435456000"


def test_unknown_virtual_size_is_not_checked() -> None:
    result = run("marketplace.os_disk_size", context(virtual_size=0))
    assert result.status is NC and "virtual size" in result.reason


# --- marketplace.data_disk_size -----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [20 * MiB, 100 * GiB, 1023 * GiB])
def test_data_disk_within_20_mib_to_1023_gib_passes(size: int) -> None:
    result = run("marketplace.data_disk_size", context(role="data", virtual_size=size, os=None))
    assert result.status is PASS and result.actual == size


def test_data_disk_under_20_mib_fails() -> None:
    result = run("marketplace.data_disk_size", context(role="data", virtual_size=16 * MiB, os=None))
    assert result.status is FAIL and "16 MiB, under the 20 MiB" in result.message
    assert result.remediation == "Resize-VHD -Path disk.vhd -SizeBytes 20971520"


def test_data_disk_over_1023_gib_fails() -> None:
    result = run("marketplace.data_disk_size", context(role="data", virtual_size=1024 * GiB, os=None))
    assert result.status is FAIL and "over the 1023 GiB" in result.message
    assert result.remediation.splitlines()[-1].endswith("-VHDType Fixed")
    assert "-SizeBytes 1098437885952" in result.remediation


def test_data_disk_size_unknown_is_not_checked() -> None:
    result = run("marketplace.data_disk_size", context(role="data", virtual_size=0, os=None))
    assert result.status is NC


def test_data_disk_size_is_not_an_os_disk_rule() -> None:
    planned = {r.id for r in select_rules("azure-marketplace", role="os")}
    assert "marketplace.os_disk_size" in planned and "marketplace.data_disk_size" not in planned


# --- marketplace.data_disk_count ------------------------------------------------------------------------------------


def test_16_data_disks_pass() -> None:
    result = run_vm("marketplace.data_disk_count", 16)
    assert result.status is PASS and result.actual == 16 and len(result.evidence[0].actual) == 16


def test_17_data_disks_fail_naming_the_one_to_leave_out() -> None:
    result = run_vm("marketplace.data_disk_count", 17)
    assert result.status is FAIL and result.actual == 17
    assert result.remediation.startswith("Leave 1 data disk(s) out of the image (data17:d17.vhd)")


def test_data_disk_count_outside_a_vm_audit_is_not_applicable() -> None:
    # the data disks given are the evidence: the engine runs the rule only in a VM audit, where they were read;
    # called on an OS disk alone it says why it does not apply
    assert "marketplace.data_disk_count" not in {r.id for r in select_rules("azure-marketplace", role="os")}
    outcome = run_check("marketplace.data_disk_count", context())
    assert outcome.status is NA and "across the VM's disks" in outcome.reason


# --- marketplace.srv_version ----------------------------------------------------------------------------------------


def test_srv_sys_at_the_2016_minimum_passes() -> None:
    result = run("marketplace.srv_version", context(files={SRV: (10, 0, 14393, 953), SRV2: (10, 0, 14393, 953)}))
    assert result.status is PASS and result.expected == "10.0.14393.953" and result.actual == "10.0.14393.953"
    assert [e.key for e in result.evidence] == [SRV, SRV2]


def test_srv_sys_older_than_the_2016_minimum_fails_with_the_update() -> None:
    result = run("marketplace.srv_version", context(files={SRV: (10, 0, 14393, 206), SRV2: (10, 0, 14393, 206)}))
    assert result.status is FAIL and result.actual == "10.0.14393.206"
    assert "older than the 10.0.14393.953" in result.message
    assert result.evidence[0].actual == "10.0.14393.206" and result.evidence[0].present
    assert "Windows Server 2016 (MS17-010 came with KB4013429" in result.remediation


def test_srv2_sys_is_judged_where_smb1_was_removed() -> None:
    result = run("marketplace.srv_version", context(os=SERVER_2012R2, files={SRV2: (6, 3, 9600, 17000)}))
    assert result.status is FAIL and "srv2.sys is 6.3.9600.17000" in result.message
    assert result.evidence[0].present is False and result.evidence[1].present is True
    assert "KB4012213 or KB4012216" in result.remediation


def test_no_srv_driver_is_not_checked() -> None:
    result = run("marketplace.srv_version", context(files={KERNEL: b"MZ"}))
    assert result.status is NC and "neither srv.sys nor srv2.sys" in result.reason


def test_unreadable_version_resource_is_not_checked() -> None:
    result = run("marketplace.srv_version", context(files={SRV: b"MZ not a version resource"}))
    assert result.status is NC and "version resource of srv.sys" in result.reason


def test_srv_of_another_build_is_not_checked() -> None:
    result = run("marketplace.srv_version", context(files={SRV: (6, 3, 9600, 20000)}))
    assert result.status is NC and "does not belong to this build" in result.reason


def test_srv_without_the_files_or_the_build_is_not_checked() -> None:
    assert run("marketplace.srv_version", context()).status is NC  # no Windows volume
    unknown = context(os=replace(SERVER_2019, build=None), files={})
    assert run("marketplace.srv_version", unknown).status is NC


def test_srv_has_no_minimum_from_server_2019_on() -> None:
    result = run("marketplace.srv_version", context(os=SERVER_2019, files={}))
    assert result.status is NA and "NA" in result.reason


# --- marketplace.unsupported_roles ---------------------------------------------------------------------------------


def cache(**states: int) -> dict[str, dict[str, object]]:
    return {f"{CACHE}\\{name}": {"InstallState": state, "UniqueName": name} for name, state in states.items()}


def test_flagged_components_not_installed_pass() -> None:
    result = run("marketplace.unsupported_roles", context(software=cache(DHCP=0, WDS=0, **{"Web-Server": 1})))
    assert result.status is PASS
    assert result.evidence[0].actual == {"DHCP": 0, "WDS": 0}  # Web-Server is not flagged


def test_installed_roles_fail_with_the_uninstall_line() -> None:
    software = cache(DHCP=1, **{"Failover-Clustering": 1, "Multipath-IO": 0})
    result = run("marketplace.unsupported_roles", context(software=software))
    assert result.status is FAIL and result.actual == ["Failover-Clustering", "DHCP"]
    assert "Failover cluster (Failover-Clustering); DHCP Server (DHCP)" in result.message
    assert result.evidence[0].key.endswith("ServerComponentCache")
    assert result.remediation.splitlines() == [
        "Uninstall-WindowsFeature -Name Failover-Clustering,DHCP -Remove  (inside the VM, then generalize and "
        "capture again)",
        "or offline, on the image: Uninstall-WindowsFeature -Name Failover-Clustering,DHCP -Vhd disk.vhd",
    ]


def test_a_role_service_without_the_cache_fails() -> None:
    result = run("marketplace.unsupported_roles", context(system={rf"{SERVICES}\ClusSvc": {"Start": 2}}))
    assert result.status is FAIL and result.actual == ["ClusSvc"]
    assert result.evidence[0].key.endswith(r"Services\ClusSvc") and result.evidence[0].present
    assert "Uninstall-WindowsFeature -Name Failover-Clustering -Remove" in result.remediation


def test_the_cache_and_a_role_service_disagreeing_warns() -> None:
    software = cache(DHCP=0)
    result = run(
        "marketplace.unsupported_roles", context(software=software, system={rf"{SERVICES}\DHCPServer": {"Start": 2}})
    )
    assert result.status is WARN and result.actual == ["DHCPServer"]


def test_no_cache_and_no_role_service_is_not_checked_on_a_server() -> None:
    result = run("marketplace.unsupported_roles", context())
    assert result.status is NC and "does not prove the roles absent" in result.reason


def test_no_cache_on_a_client_is_not_applicable() -> None:
    assert run("marketplace.unsupported_roles", context(os=CLIENT_10)).status is NA


def test_roles_without_software_are_not_checked() -> None:
    result = run("marketplace.unsupported_roles", context(drop=("SOFTWARE",)))
    assert result.status is NC and "SOFTWARE" in result.reason


# --- marketplace.sql_server ------------------------------------------------------------------------------------------


def test_no_sql_server_passes() -> None:
    result = run("marketplace.sql_server", context())
    assert result.status is PASS
    assert [e.present for e in result.evidence] == [False, False]


def test_a_sql_server_instance_is_manual_review() -> None:
    result = run(
        "marketplace.sql_server",
        context(
            software={
                rf"{SQL}\SQL": {"MSSQLSERVER": "MSSQL15.MSSQLSERVER"},
                rf"WOW6432Node\{SQL}\RS": {"SSRS": "MSRS13.SSRS"},
            }
        ),
    )
    assert result.status is MANUAL
    assert result.actual == {r"SQL\MSSQLSERVER": "MSSQL15.MSSQLSERVER", r"RS\SSRS": "MSRS13.SSRS"}
    assert result.evidence[0].present and result.evidence[0].actual == {r"SQL\MSSQLSERVER": "MSSQL15.MSSQLSERVER"}
    assert "approved SQL Server base image" in result.message and result.reason


def test_sql_server_without_software_is_not_checked() -> None:
    assert run("marketplace.sql_server", context(drop=("SOFTWARE",))).status is NC


def test_sql_server_in_a_software_hive_without_a_build_is_not_checked() -> None:
    result = run("marketplace.sql_server", context(software={r"Microsoft\Windows NT\CurrentVersion": None}))
    assert result.status is NC and "prove nothing" in result.reason


# --- marketplace.licensed_products ----------------------------------------------------------------------------------


def products(*names: str) -> dict[str, dict[str, object]]:
    return {rf"{UNINSTALL}\{{p{n}}}": {"DisplayName": name, "DisplayVersion": "1.0"} for n, name in enumerate(names)}


def test_redistributables_only_pass() -> None:
    result = run(
        "marketplace.licensed_products",
        context(
            software=products(
                "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.38.33135",
                "Microsoft Visual Studio 2010 Tools for Office Runtime (x64)",
                "Microsoft Office 2010 Primary Interop Assemblies",
                "7-Zip 23.01 (x64)",
            )
        ),
    )
    assert result.status is PASS and result.actual == []
    assert result.evidence[0].note == "4 product(s)"


def test_visual_studio_and_office_are_manual_review() -> None:
    result = run(
        "marketplace.licensed_products",
        context(
            software={
                **products("Visual Studio Enterprise 2022", "7-Zip 23.01 (x64)"),
                rf"WOW6432Node\{UNINSTALL}\Office16.PROPLUS": {
                    "DisplayName": "Microsoft Office Professional Plus 2016",
                    "DisplayVersion": "16.0.4266.1001",
                },
            }
        ),
    )
    assert result.status is MANUAL
    assert result.actual == [
        "Microsoft Office Professional Plus 2016 16.0.4266.1001",
        "Visual Studio Enterprise 2022 1.0",
    ]
    assert "prior approval" in result.message and result.reason


def test_no_uninstall_key_is_not_checked() -> None:
    result = run("marketplace.licensed_products", context())
    assert result.status is NC and "Uninstall" in result.reason


def test_licensed_products_without_software_are_not_checked() -> None:
    assert run("marketplace.licensed_products", context(drop=("SOFTWARE",))).status is NC


# --- what needs the running VM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule_id",
    [
        "marketplace.certification_test_tool",
        "marketplace.application_dependencies",
        "marketplace.no_default_credentials",
    ],
)
def test_live_vm_steps_are_manual_whatever_the_image(rule_id: str) -> None:
    for ctx in (context(), context(drop=("SOFTWARE", "SYSTEM"))):
        result = run(rule_id, ctx)
        assert result.status is MANUAL and "not checked offline" in result.message and result.reason
        assert result.remediation and result.remediation in result.message


# --- marketplace.generalized ----------------------------------------------------------------------------------------


def sysprep(state: str) -> SysprepFacts:
    return SysprepFacts(state=state, evidence=(f"ImageState = IMAGE_STATE_{state.upper()}",))


def test_a_generalized_image_passes() -> None:
    result = run("marketplace.generalized", context(sysprep=sysprep("generalized")))
    assert result.status is PASS and result.actual == "generalized"
    assert result.evidence[0].key == "sysprep" and "IMAGE_STATE_GENERALIZED" in result.evidence[0].note


@pytest.mark.parametrize("state", ["specialized", "undeployable"])
def test_a_specialized_or_undeployable_image_fails(state: str) -> None:
    result = run("marketplace.generalized", context(sysprep=sysprep(state)))
    assert result.status is FAIL and result.actual == state and result.evidence[0].actual == state
    assert "sysprep.exe /generalize /oobe /shutdown" in result.remediation


def test_an_image_to_be_uploaded_specialized_fails() -> None:
    ctx = context(sysprep=sysprep("generalized"))
    ctx.options = replace(ctx.options, image_type="specialized")
    result = run("marketplace.generalized", ctx)
    assert result.status is FAIL and "image_type option" in result.message


def test_an_unknown_sysprep_state_is_not_checked() -> None:
    result = run("marketplace.generalized", context(sysprep=sysprep("unknown")))
    assert result.status is NC and "ImageState" in result.reason


def test_sysprep_state_without_software_is_not_checked() -> None:
    result = run("marketplace.generalized", context(sysprep=sysprep("generalized"), drop=("SOFTWARE",)))
    assert result.status is NC and result.reason.startswith("ImageState not read")
