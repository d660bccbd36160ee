"""bcd.* rules on the real store and on hand-built stores (good, bad, malformed, missing)."""

from __future__ import annotations

import struct
import uuid
from typing import Any

import pytest

from azvhdaudit.bcd import decode_bcd
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Status

from .helpers import (
    BOOTMGR,
    EMS,
    LOADER,
    MBR_OFFSET,
    MBR_SIG,
    PART_GUID,
    MakeCtx,
    boolean,
    boot_device,
    build_bcd,
    good_bcd_objects,
    gpt_device,
    image_facts,
    integer,
    mbr_device,
    run,
)

BCD_RULES = [
    "bcd.store_present",
    "bcd.bootmgr_integrityservices",
    "bcd.default_integrityservices",
    "bcd.default_recovery_disabled",
    "bcd.default_bootstatuspolicy",
    "bcd.default_device",
    "bcd.default_osdevice",
    "bcd.bootmgr_displaybootmenu",
    "bcd.bootmgr_timeout",
    "bcd.bootmgr_bootems",
    "bcd.default_ems",
    "bcd.emssettings",
]


def ctx_for(make_ctx: MakeCtx, objects: dict[str, Any], style: str = "gpt", via: str = "bcd"):
    hive = build_bcd(objects)
    if via == "bcd":
        return make_ctx(facts=image_facts(style), bcd=decode_bcd(hive))
    return make_ctx(facts=image_facts(style), hives={"BCD": hive})


@pytest.mark.parametrize("rule_id", BCD_RULES)
@pytest.mark.parametrize("via", ["bcd", "registry"])
def test_good_store_passes_everything(make_ctx: MakeCtx, rule_id: str, via: str) -> None:
    out = run(rule_id, ctx_for(make_ctx, good_bcd_objects(), via=via))
    assert out.status == Status.PASS, out.message


@pytest.mark.parametrize("rule_id", BCD_RULES)
def test_no_store_is_never_a_pass(make_ctx: MakeCtx, rule_id: str) -> None:
    ctx = make_ctx(
        facts=image_facts("gpt", boot_partition=None, bcd_path=None),
        unavailable={"BCD": "no boot store found (\\Boot\\BCD or \\EFI\\Microsoft\\Boot\\BCD)"},
    )
    out = run(rule_id, ctx)
    expected = Status.FAIL if rule_id == "bcd.store_present" else Status.NOT_CHECKED
    assert out.status == expected
    assert "no boot store found" in out.message


def test_unreadable_store_is_not_checked(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(unavailable={"BCD": "the BCD store cannot be read: bad base block"})
    assert run("bcd.store_present", ctx).status == Status.NOT_CHECKED


def test_not_a_bcd_hive_is_not_checked(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(hives={"BCD": MemoryHive.build("BCD", {"Foo": {"Bar": 1}})})
    out = run("bcd.default_recovery_disabled", ctx)
    assert out.status == Status.NOT_CHECKED and "no Objects key" in out.message


# --- single settings wrong ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "obj", "eid", "data", "status", "words"),
    [
        ("bcd.default_recovery_disabled", LOADER, 0x16000009, boolean(True), Status.FAIL, "recoveryenabled is Yes"),
        ("bcd.default_recovery_disabled", LOADER, 0x16000009, None, Status.FAIL, "not set"),
        ("bcd.default_bootstatuspolicy", LOADER, 0x250000E0, integer(0), Status.FAIL, "DisplayAllFailures"),
        ("bcd.default_bootstatuspolicy", LOADER, 0x250000E0, None, Status.FAIL, "not set"),
        ("bcd.default_integrityservices", LOADER, 0x1500004B, integer(2), Status.FAIL, "Disable"),
        ("bcd.default_integrityservices", LOADER, 0x1500004B, None, Status.WARNING, "Windows default"),
        ("bcd.default_integrityservices", LOADER, 0x1500004B, integer(0), Status.WARNING, "Default"),
        ("bcd.bootmgr_integrityservices", BOOTMGR, 0x1500004B, integer(2), Status.FAIL, "Disable"),
        ("bcd.bootmgr_timeout", BOOTMGR, 0x25000004, integer(30), Status.WARNING, "30s"),
        ("bcd.bootmgr_displaybootmenu", BOOTMGR, 0x26000020, boolean(False), Status.WARNING, "No"),
        ("bcd.bootmgr_bootems", BOOTMGR, 0x16000020, None, Status.WARNING, "inherit"),
        ("bcd.default_ems", LOADER, 0x260000B0, None, Status.WARNING, "not set"),
        ("bcd.emssettings", EMS, 0x15000023, integer(9600), Status.WARNING, "emsbaudrate 9600"),
        ("bcd.default_osdevice", LOADER, 0x21000001, None, Status.FAIL, "no osdevice"),
    ],
)
def test_one_setting_wrong(
    make_ctx: MakeCtx, rule_id: str, obj: str, eid: int, data: Any, status: Status, words: str
) -> None:
    objects = good_bcd_objects()
    if data is None:
        objects[obj][1].pop(eid, None)
    else:
        objects[obj][1][eid] = data
    out = run(rule_id, ctx_for(make_ctx, objects))
    assert out.status == status, out.message
    assert words in out.message


def test_bootems_inherited_off_from_emssettings(make_ctx: MakeCtx) -> None:
    # {bootmgr} -> {globalsettings} -> {emssettings} bootems No: the effective value is No, and it says where from
    objects = good_bcd_objects()
    objects[BOOTMGR][1].pop(0x16000020)
    out = run("bcd.bootmgr_bootems", ctx_for(make_ctx, objects))
    assert out.status == Status.WARNING and out.actual == "No"
    assert "inherited from {emssettings}" in out.evidence[0].note


def test_inherited_value_passes(make_ctx: MakeCtx) -> None:
    objects = good_bcd_objects()
    objects[LOADER][1].pop(0x250000E0)
    objects["{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}"][1][0x250000E0] = integer(1)
    out = run("bcd.default_bootstatuspolicy", ctx_for(make_ctx, objects))
    assert out.status == Status.PASS and "{bootloadersettings}" in out.evidence[0].note


# --- devices ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("style", "device", "status", "words"),
    [
        ("gpt", gpt_device(), Status.PASS, "Windows partition 2"),
        ("gpt", gpt_device(part_guid="0be9fc2c-9764-4b15-896e-66d154619b4d"), Status.FAIL, "partition GUID"),
        ("gpt", gpt_device(disk_guid="11111111-1111-1111-1111-111111111111"), Status.FAIL, "disk GUID"),
        ("mbr", mbr_device(), Status.PASS, "MBR signature 0xB3EBA8F1"),
        ("mbr", mbr_device(offset=1048576), Status.FAIL, "partition offset"),
        ("mbr", mbr_device(signature=0x12345678), Status.FAIL, "disk signature"),
        ("mbr", boot_device(), Status.FAIL, "another partition"),
    ],
)
@pytest.mark.parametrize("rule_id", ["bcd.default_device", "bcd.default_osdevice"])
def test_device_matches_windows_partition(
    make_ctx: MakeCtx, rule_id: str, style: str, device: bytes, status: Status, words: str
) -> None:
    out = run(rule_id, ctx_for(make_ctx, good_bcd_objects(device), style=style))
    assert out.status == status, out.message
    assert words in out.message


def test_boot_device_on_the_windows_partition(make_ctx: MakeCtx) -> None:
    facts = image_facts("mbr", boot_partition=1)
    ctx = make_ctx(facts=facts, bcd=decode_bcd(build_bcd(good_bcd_objects(boot_device()))))
    assert run("bcd.default_osdevice", ctx).status == Status.PASS


def test_device_without_windows_partition_is_not_checked(make_ctx: MakeCtx) -> None:
    facts = image_facts("gpt", windows_partition=None)
    ctx = make_ctx(facts=facts, bcd=decode_bcd(build_bcd(good_bcd_objects())))
    assert run("bcd.default_device", ctx).status == Status.NOT_CHECKED


@pytest.mark.parametrize(
    ("eid", "data"),
    [
        (0x16000009, (RegType.BINARY, b"\x00\x00")),
        (0x250000E0, (RegType.BINARY, b"\x01" + bytes(8))),
        (0x250000E0, (RegType.BINARY, b"")),
        (0x21000001, (RegType.BINARY, bytes(12))),
    ],
)
def test_malformed_element_is_not_checked(make_ctx: MakeCtx, eid: int, data: Any) -> None:
    rule_id = {
        0x16000009: "bcd.default_recovery_disabled",
        0x250000E0: "bcd.default_bootstatuspolicy",
        0x21000001: "bcd.default_osdevice",
    }[eid]
    objects = good_bcd_objects()
    objects[LOADER][1][eid] = data
    out = run(rule_id, ctx_for(make_ctx, objects))
    assert out.status == Status.NOT_CHECKED
    assert LOADER in out.message and f"{eid:08X}" in out.message


# --- store structure ---------------------------------------------------------------------------------


def test_dangling_default(make_ctx: MakeCtx) -> None:
    objects = good_bcd_objects()
    objects[BOOTMGR][1][0x23000003] = "{00000000-0000-0000-0000-00000000beef}"
    ctx = ctx_for(make_ctx, objects)
    out = run("bcd.store_present", ctx)
    assert out.status == Status.FAIL and "names no object" in out.message
    assert run("bcd.default_recovery_disabled", ctx).status == Status.NOT_CHECKED


def test_no_bootmgr(make_ctx: MakeCtx) -> None:
    objects = good_bcd_objects()
    del objects[BOOTMGR]
    ctx = ctx_for(make_ctx, objects)
    assert run("bcd.store_present", ctx).status == Status.FAIL
    assert run("bcd.bootmgr_timeout", ctx).status == Status.NOT_CHECKED


def test_default_is_not_a_loader(make_ctx: MakeCtx) -> None:
    objects = good_bcd_objects()
    objects[LOADER] = (0x10200005, objects[LOADER][1])
    assert run("bcd.store_present", ctx_for(make_ctx, objects)).status == Status.FAIL


def test_no_emssettings_object(make_ctx: MakeCtx) -> None:
    objects = good_bcd_objects()
    del objects[EMS]
    assert run("bcd.emssettings", ctx_for(make_ctx, objects)).status == Status.WARNING


# --- the real store ----------------------------------------------------------------------------------

REAL_EXPECTED = {
    "bcd.store_present": Status.PASS,
    "bcd.default_recovery_disabled": Status.FAIL,
    "bcd.default_bootstatuspolicy": Status.FAIL,
    "bcd.default_integrityservices": Status.WARNING,
    "bcd.bootmgr_integrityservices": Status.WARNING,
    "bcd.bootmgr_timeout": Status.WARNING,
    "bcd.bootmgr_displaybootmenu": Status.WARNING,
    "bcd.bootmgr_bootems": Status.WARNING,
    "bcd.default_ems": Status.WARNING,
    "bcd.emssettings": Status.WARNING,
}


@pytest.mark.parametrize(("rule_id", "status"), sorted(REAL_EXPECTED.items()))
def test_real_store(make_ctx: MakeCtx, real_bcd_hive: MemoryHive, rule_id: str, status: Status) -> None:
    ctx = make_ctx(facts=image_facts("gpt"), hives={"BCD": real_bcd_hive})
    out = run(rule_id, ctx)
    assert out.status == status, out.message


def test_real_store_device_matches_its_own_disk(make_ctx: MakeCtx, real_bcd_hive: MemoryHive) -> None:
    facts = image_facts("gpt", gpt_disk_guid="0b2394a9-095e-487d-8d48-719ecd4d78ca")
    facts.partitions[2] = facts.partitions[2].__class__(
        **{**facts.partitions[2].__dict__, "guid": "8e0f2c38-e4ea-47ba-b7fc-9d8c74dccf0b"}
    )
    ctx = make_ctx(facts=facts, hives={"BCD": real_bcd_hive})
    assert run("bcd.default_osdevice", ctx).status == Status.PASS
    # the synthetic disk of the other tests is not the real store's disk
    other = make_ctx(facts=image_facts("gpt"), hives={"BCD": real_bcd_hive})
    assert run("bcd.default_osdevice", other).status == Status.FAIL


# --- SYSTEM\MountedDevices as the Windows partition's identity ----------------------------------------


def _mounted(raw: bytes) -> dict[str, Any]:
    return {"Select": {"Current": 1}, "MountedDevices": {"\\DosDevices\\C:": raw}}


@pytest.mark.parametrize(
    ("style", "device", "c_raw", "status"),
    [
        ("mbr", mbr_device(), struct.pack("<IQ", MBR_SIG, MBR_OFFSET), Status.PASS),
        ("mbr", mbr_device(), struct.pack("<IQ", MBR_SIG, 1048576), Status.FAIL),
        ("gpt", gpt_device(), b"DMIO:ID:" + uuid.UUID(PART_GUID).bytes_le, Status.PASS),
        ("gpt", gpt_device(), b"DMIO:ID:" + bytes(16), Status.FAIL),
        ("gpt", gpt_device(), b"\\??\\Volume{x}", Status.NOT_CHECKED),
    ],
)
def test_device_against_mounted_devices(
    make_ctx: MakeCtx, style: str, device: bytes, c_raw: bytes, status: Status
) -> None:
    facts = image_facts(style, windows_partition=None)
    ctx = make_ctx(facts=facts, hives={"SYSTEM": _mounted(c_raw)}, bcd=decode_bcd(build_bcd(good_bcd_objects(device))))
    out = run("bcd.default_osdevice", ctx)
    assert out.status == status, out.message
    if status == Status.PASS:
        assert "Windows partition C:" in out.message


def test_mounted_devices_noted_in_evidence(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(
        facts=image_facts("mbr"),
        hives={"SYSTEM": _mounted(struct.pack("<IQ", MBR_SIG, MBR_OFFSET))},
        bcd=decode_bcd(build_bcd(good_bcd_objects(mbr_device()))),
    )
    out = run("bcd.default_device", ctx)
    assert out.status == Status.PASS and "MountedDevices" in out.evidence[0].note
