"""The checks across a VM's disks (rules/vm.py) on hand-made facts and an in-memory SYSTEM hive."""

from __future__ import annotations

from typing import Any

import pytest

from azvhdaudit.facts import ImageFacts
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.report import Status
from azvhdaudit.rules.base import AuditContext, AuditOptions, all_rules
from azvhdaudit.rules.vm import VM_ROLE

from .vmkit import (
    DATA_PART_GUID,
    DATA_SIG,
    OS_SIG,
    UNKNOWN_SIG,
    GiB,
    MiB,
    data_gpt,
    data_mbr,
    disk_facts,
    gpt_value,
    letter,
    mbr_value,
    os_facts,
    system_view,
    vm_context,
)

RULES = {r.id: r for r in all_rules()}
VM_RULES = sorted(r.id for r in all_rules() if VM_ROLE in r.meta.disk_roles and r.meta.area == "vm")

#: what the OS of the sample VM knows: its C:, the MBR data disk at E:, the GPT data disk at F:
KNOWN = {letter("C"): mbr_value(OS_SIG), letter("E"): mbr_value(DATA_SIG), letter("F"): gpt_value(DATA_PART_GUID)}


def run(rule_id: str, ctx: AuditContext) -> Any:
    from azvhdaudit.engine import evaluate

    return evaluate(RULES[rule_id], ctx)


def test_catalogue() -> None:
    assert VM_RULES == ["vm.data_disks_known", "vm.disk_ids_unique", "vm.disk_sizes", "vm.temp_drive_letter_free"]
    for rule_id in [*VM_RULES, "disk.windows_volume"]:
        meta = RULES[rule_id].meta
        assert meta.title and meta.rationale and meta.source and meta.remediation and meta.references
        assert rule_id.startswith(meta.area.split("-")[0] + ".")
    assert RULES["disk.windows_volume"].meta.disk_roles == ("os",)


# --- vm.data_disks_known --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mounted", "data", "status", "words"),
    [
        (
            KNOWN,
            {"m.vhd": data_mbr(), "g.vhd": data_gpt()},
            Status.PASS,
            ["data1:m.vhd: partition #0 as E:", "data2:g.vhd: partition #0 as F:"],
        ),
        # known by its volume GUID only: Windows knows it, without a letter
        ({"\\??\\Volume{1}": mbr_value(DATA_SIG)}, {"m.vhd": data_mbr()}, Status.PASS, ["as \\??\\Volume{1}"]),
        (
            KNOWN,
            {"m.vhd": data_mbr(), "u.vhd": data_mbr(UNKNOWN_SIG)},
            Status.WARNING,
            ["data2:u.vhd (MBR signature 0xDA7A0099)", "known: data1:m.vhd"],
        ),
        # the disk signature is known, but not at this partition's offset
        (KNOWN, {"m.vhd": data_mbr(offset=2 * MiB)}, Status.WARNING, ["data1:m.vhd"]),
        (
            KNOWN,
            {"g.vhd": data_gpt(guid="00000000-0000-0000-0000-0000000000aa")},
            Status.WARNING,
            ["00000000-0000-0000-0000-0000000000aa"],
        ),
        (KNOWN, {"raw.vhd": disk_facts("raw.vhd", partitions=[])}, Status.WARNING, ["uninitialized"]),
        (None, {"m.vhd": data_mbr()}, Status.NOT_CHECKED, ["SYSTEM"]),
        (KNOWN, {}, Status.NOT_APPLICABLE, ["no data disks"]),
    ],
)
def test_data_disks_known(
    mounted: dict[str, bytes] | None, data: dict[str, ImageFacts], status: Status, words: list[str]
) -> None:
    outcome = run("vm.data_disks_known", vm_context(mounted, data))
    assert outcome.status is status, outcome.message
    for word in words:
        assert word in outcome.message
    if status is Status.PASS:
        assert outcome.evidence[0].key == r"HKLM\SYSTEM\MountedDevices"


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        (1, "they come online with the next free drive letters (SAN policy OnlineAll)"),
        (2, "they stay offline until someone brings them online (SAN policy OfflineShared"),
        (None, "the edition's default SAN policy decides"),
    ],
)
def test_unknown_disks_and_the_san_policy(policy: int | None, words: str) -> None:
    ctx = vm_context(KNOWN, {"u.vhd": data_mbr(UNKNOWN_SIG)})
    if policy is not None:
        ctx.registry.hive("SYSTEM").update(  # type: ignore[union-attr]
            {r"ControlSet001\Services\partmgr\Parameters": {"SanPolicy": policy}}
        )
    outcome = run("vm.data_disks_known", ctx)
    assert outcome.status is Status.WARNING and words in outcome.message
    assert len(outcome.evidence) == (2 if policy is not None else 1)


def test_vm_rules_need_the_vm() -> None:
    plain = AuditContext(registry=system_view(KNOWN), facts=os_facts())
    for rule_id in VM_RULES:
        outcome = run(rule_id, plain)
        assert outcome.status is Status.NOT_APPLICABLE and "data disks" in outcome.reason


# --- vm.temp_drive_letter_free ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mounted", "paging", "status", "words"),
    [
        (KNOWN, None, Status.PASS, ["no volume has the letter D:"]),
        (
            {**KNOWN, letter("D"): gpt_value(DATA_PART_GUID)},
            None,
            Status.WARNING,
            ["data2:g.vhd partition #0", "drive letter D:", "D:\\pagefile.sys would land"],
        ),
        (
            {letter("D"): mbr_value(DATA_SIG)},
            ["D:\\pagefile.sys 0 0"],
            Status.WARNING,
            ["data1:m.vhd partition #0", "page file set to D:\\pagefile.sys 0 0", "data disk"],
        ),
        # the 2017 doc's REG_SZ form is read too
        ({letter("D"): mbr_value(DATA_SIG)}, "D:\\pagefile", Status.WARNING, ["page file set to D:\\pagefile"]),
        ({letter("D"): mbr_value(OS_SIG)}, None, Status.WARNING, ["os partition #0", "os disk"]),
        ({letter("D"): "\\??\\IDE#CdRomVBOX".encode("utf-16-le")}, None, Status.PASS, ["none of the audited"]),
        (None, None, Status.NOT_CHECKED, ["SYSTEM"]),
    ],
)
def test_temp_drive_letter(mounted: dict[str, bytes] | None, paging: Any, status: Status, words: list[str]) -> None:
    ctx = vm_context(mounted, {"m.vhd": data_mbr(), "g.vhd": data_gpt()}, paging=paging)
    outcome = run("vm.temp_drive_letter_free", ctx)
    assert outcome.status is status, outcome.message
    for word in words:
        assert word in outcome.message, outcome.message
    if status is Status.WARNING:
        assert outcome.actual["letter"] == "D:"


def test_temp_drive_letter_without_data_disks() -> None:
    assert run("vm.temp_drive_letter_free", vm_context(KNOWN, {})).status is Status.NOT_APPLICABLE


# --- vm.disk_sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "os_size", "generation", "data_size", "status", "words"),
    [
        ("azure", 127 * GiB, 1, 1024 * GiB, Status.PASS, ["2 disks, 1151 GiB in all"]),
        ("azure", 127 * GiB, 1, 32768 * GiB, Status.FAIL, ["data1:m.vhd is 32768 GiB, over 32,767 GiB"]),
        ("azure", 3072 * GiB, 1, GiB, Status.FAIL, ["os is 3072 GiB, over 2 TiB"]),
        ("azure", 3072 * GiB, 2, GiB, Status.PASS, ["each within its limit"]),
        # the 2017 doc limits every VHD, data disks too
        ("azure-2017", 127 * GiB, 1, 1024 * GiB, Status.FAIL, ["data1:m.vhd is 1024 GiB, over the 2017 doc"]),
        ("azure-2017", 127 * GiB, 1, 1023 * GiB, Status.PASS, ["each within its limit"]),
    ],
)
def test_disk_sizes(
    profile: str, os_size: int, generation: int, data_size: int, status: Status, words: list[str]
) -> None:
    ctx = vm_context(KNOWN, {"m.vhd": data_mbr(size=data_size)}, os=os_facts(os_size, generation), profile=profile)
    outcome = run("vm.disk_sizes", ctx)
    assert outcome.status is status, outcome.message
    for word in words:
        assert word in outcome.message
    assert outcome.actual["total"] == os_size + data_size


# --- vm.disk_ids_unique ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        ({"m.vhd": data_mbr(), "g.vhd": data_gpt()}, Status.PASS, ["3 disk identities"]),
        (
            {"a.vhd": data_mbr(), "b.vhd": data_mbr()},
            Status.WARNING,
            ["data1:a.vhd and data2:b.vhd share the MBR signature 0xDA7A0001"],
        ),
        ({"clone.vhd": data_mbr(OS_SIG)}, Status.WARNING, ["os and data1:clone.vhd"]),
        (
            {"a.vhd": data_gpt(), "b.vhd": data_gpt(disk_guid="11111111-2222-3333-4444-555555555555".upper())},
            Status.WARNING,
            ["GPT disk GUID 11111111-2222-3333-4444-555555555555"],
        ),
        ({}, Status.NOT_APPLICABLE, []),
    ],
)
def test_disk_ids_unique(data: dict[str, ImageFacts], status: Status, words: list[str]) -> None:
    outcome = run("vm.disk_ids_unique", vm_context(KNOWN, data))
    assert outcome.status is status, outcome.message
    for word in words:
        assert word in outcome.message


# --- disk.windows_volume ----------------------------------------------------------------------------


NO_HIVES = RegistryView(hives={}, unavailable={"SYSTEM": "the SYSTEM hive cannot be read: no Windows volume found"})


@pytest.mark.parametrize(
    ("facts", "registry", "role", "status", "words"),
    [
        (os_facts(), NO_HIVES, None, Status.PASS, ["Windows is on partition #0 (offset 1048576)"]),
        # hives given directly (no partitions): the SYSTEM hive is the evidence
        (
            disk_facts("mem", partitions=[]),
            RegistryView(hives={"SYSTEM": MemoryHive.build("SYSTEM", {})}),
            "os",
            Status.PASS,
            ["SYSTEM hive was read"],
        ),
        (
            data_mbr(),
            NO_HIVES,
            None,
            Status.FAIL,
            ["no NTFS volume holds Windows", "#0 NTFS/exFAT ntfs", "audit it as one: role='data'"],
        ),
        (data_mbr(), NO_HIVES, "os", Status.FAIL, ["no NTFS volume holds Windows"]),
        (disk_facts("none", partitions=[]), NO_HIVES, None, Status.FAIL, ["(no partitions)"]),
    ],
)
def test_windows_volume(
    facts: ImageFacts, registry: RegistryView, role: str | None, status: Status, words: list[str]
) -> None:
    ctx = AuditContext(registry=registry, facts=facts, options=AuditOptions(role=role))
    outcome = run("disk.windows_volume", ctx)
    assert outcome.status is status, outcome.message
    for word in words:
        assert word in outcome.message
    if role == "os":
        assert "role='data'" not in outcome.message


def test_windows_volume_on_an_encrypted_disk_is_not_checked() -> None:
    facts = data_mbr()
    facts.bitlocker = True
    outcome = run("disk.windows_volume", AuditContext(registry=NO_HIVES, facts=facts))
    assert outcome.status is Status.NOT_CHECKED and "BitLocker" in outcome.reason
