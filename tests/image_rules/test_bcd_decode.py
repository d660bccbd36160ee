"""The BCD decoder on the real UEFI store and on small hand-built stores."""

from __future__ import annotations

import json
import re
import struct
from typing import Any

import pytest

from azvhdaudit.bcd import (
    BOOTMGR,
    MAX_INHERIT_DEPTH,
    BCDDevice,
    decode_bcd,
    decode_device,
    element_name,
)
from azvhdaudit.errors import BCDError
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegType

from .helpers import (
    BOOTLOADERSETTINGS,
    DISK_GUID,
    EMS,
    GLOBALSETTINGS,
    LOADER,
    MBR_OFFSET,
    MBR_SIG,
    PART_GUID,
    boolean,
    build_bcd,
    good_bcd_objects,
    gpt_device,
    integer,
    mbr_device,
)

# --- the real store ----------------------------------------------------------------------------


def test_real_store_default_loader(real_bcd_hive: MemoryHive) -> None:
    store = decode_bcd(real_bcd_hive)
    assert store.bootmgr is not None
    assert store.default_guid == "{733b62e5-f608-11eb-825c-c112f60133ab}"
    loader = store.default_loader
    assert loader is not None
    assert loader.type == 0x10200003
    assert loader.element("description").value == "Windows 10"
    assert loader.element(0x12000002).value == "\\Windows\\system32\\winload.efi"
    assert loader.element(0x12000002).name == "path"
    assert loader.element("bootmenupolicy").value == 1
    assert store.bootmgr.element("timeout").value == 30


def test_real_store_lacks_doc_settings(real_bcd_hive: MemoryHive) -> None:
    store = decode_bcd(real_bcd_hive)
    loader = store.default_loader
    assert loader is not None
    for name in ("bootstatuspolicy", "ems", "integrityservices"):
        assert store.effective(loader, name) is None, name
    assert store.effective(loader, "recoveryenabled").value is True
    # bootems is set on {emssettings}, reached through {bootloadersettings} -> {globalsettings}
    bootems = store.effective(loader, "bootems")
    assert bootems is not None and bootems.inherited and bootems.value is False
    assert bootems.holder.guid == EMS


def test_real_store_gpt_partition_device(real_bcd_hive: MemoryHive) -> None:
    store = decode_bcd(real_bcd_hive)
    loader = store.default_loader
    assert loader is not None
    dev = loader.element("osdevice").value
    assert isinstance(dev, BCDDevice)
    assert dev.kind == "partition" and dev.partition_style == "gpt"
    assert dev.partition_guid == "8e0f2c38-e4ea-47ba-b7fc-9d8c74dccf0b"
    assert dev.disk_guid == "0b2394a9-095e-487d-8d48-719ecd4d78ca"
    # the boot manager lives on another partition (the ESP) of the same disk
    mgr_dev = store.bootmgr.element("device").value
    assert mgr_dev.disk_guid == dev.disk_guid and mgr_dev.partition_guid != dev.partition_guid


def test_real_store_ramdisk_device(real_bcd_hive: MemoryHive) -> None:
    store = decode_bcd(real_bcd_hive)
    winre = store.get("{733b62e6-f608-11eb-825c-c112f60133ab}")
    assert winre is not None
    dev = winre.element("device").value
    assert dev.kind == "ramdisk"
    assert dev.path == "\\Recovery\\WindowsRE\\Winre.wim"
    assert dev.options == "{733b62e7-f608-11eb-825c-c112f60133ab}"
    assert dev.parent is not None and dev.parent.kind == "partition"


def test_real_store_to_dict_names_every_element(real_bcd_hive: MemoryHive) -> None:
    store = decode_bcd(real_bcd_hive)
    data = store.to_dict()
    json.dumps(data)  # JSON-friendly
    mgr = data["objects"][BOOTMGR]
    assert mgr["alias"] == "{bootmgr}"
    assert {"default", "timeout", "displayorder", "toolsdisplayorder", "resumeobject", "device"} <= set(mgr["elements"])
    for obj in data["objects"].values():
        for name in obj["elements"]:
            assert name, obj
    # each element also as bcdedit prints it, for text output
    assert mgr["elements"]["timeout"]["text"] == "30"
    assert mgr["elements"]["displayorder"]["text"].splitlines()[0].startswith("{")
    assert not PYTHON_REPR.search(
        json.dumps([e["text"] for o in data["objects"].values() for e in o["elements"].values()])
    )


def test_real_store_aliases(real_bcd_hive: MemoryHive) -> None:
    store = decode_bcd(real_bcd_hive)
    assert store.get("{bootmgr}") is store.bootmgr
    assert store.get("{default}") is store.default_loader
    assert store.get("9DEA862C-5CDD-4E70-ACC1-F32B344D4795") is store.bootmgr
    assert store.get("{resumeloadersettings}") is not None


# --- hand-built stores --------------------------------------------------------------------------


def test_built_store_effective_values() -> None:
    store = decode_bcd(build_bcd(good_bcd_objects()))
    loader = store.default_loader
    assert loader is not None and loader.guid == LOADER
    assert store.effective(loader, "bootstatuspolicy").value == 1
    assert store.effective(loader, "recoveryenabled").value is False
    assert store.effective(loader, "ems").value is True
    ems = store.get("{emssettings}")
    assert ems is not None
    assert ems.element("emsport").value == 1 and ems.element("emsbaudrate").value == 115200


def test_inherit_loop_is_cut() -> None:
    objects = good_bcd_objects()
    objects[EMS][1][0x14000006] = [BOOTLOADERSETTINGS]  # EMS -> bootloadersettings -> global -> EMS
    store = decode_bcd(build_bcd(objects))
    loader = store.default_loader
    assert loader is not None
    assert store.effective(loader, "nointegritychecks") is None


def test_inherit_loop_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    objects = good_bcd_objects()
    objects[EMS][1][0x14000006] = [BOOTLOADERSETTINGS]
    store = decode_bcd(build_bcd(objects))
    loader = store.default_loader
    assert loader is not None
    with caplog.at_level("WARNING", logger="azvhdaudit.bcd"):
        for _ in range(3):
            assert store.effective(loader, "nointegritychecks") is None
    (warning,) = [w for w in store.warnings if "inherit loop" in w]
    assert warning == (
        "BCD inherit loop: {bootloadersettings} -> {globalsettings} -> {emssettings} -> {bootloadersettings}; cut there"
    )
    assert [r.getMessage() for r in caplog.records].count(f"{store.source}: {warning}") == 1
    # values on the loop are still found
    assert store.effective(loader, "emsport").value == 1


def test_object_inheriting_itself() -> None:
    objects = good_bcd_objects()
    objects[LOADER][1][0x14000006] = [LOADER, BOOTLOADERSETTINGS]
    store = decode_bcd(build_bcd(objects))
    eff = store.effective(store.default_loader, "bootems")  # type: ignore[arg-type]
    assert eff is not None and eff.holder.guid == EMS
    assert any(w.startswith(f"BCD inherit loop: {LOADER} -> {LOADER}") for w in store.warnings)


def test_diamond_is_not_a_loop() -> None:
    # the loader inherits {globalsettings} twice (directly and through {bootloadersettings})
    objects = good_bcd_objects()
    objects[LOADER][1][0x14000006] = [BOOTLOADERSETTINGS, GLOBALSETTINGS]
    store = decode_bcd(build_bcd(objects))
    assert store.effective(store.default_loader, "nointegritychecks") is None  # type: ignore[arg-type]
    assert not [w for w in store.warnings if "loop" in w]


def _chain(length: int) -> dict[str, tuple[int, dict[int, Any]]]:
    """{bootmgr} -> obj0 -> obj1 -> ... -> obj<length-1>, the last one holding timeout 7."""
    guids = [f"{{00000000-0000-0000-0000-{i:012x}}}" for i in range(length)]
    objects: dict[str, tuple[int, dict[int, Any]]] = {
        BOOTMGR: (0x10100002, {0x14000006: [guids[0]]}),
    }
    for i, guid in enumerate(guids):
        elements: dict[int, Any] = {0x14000006: [guids[i + 1]]} if i + 1 < length else {0x25000004: integer(7)}
        objects[guid] = (0x20100000, elements)
    return objects


def test_inherit_chain_at_the_bound_is_followed() -> None:
    store = decode_bcd(build_bcd(_chain(MAX_INHERIT_DEPTH)))
    eff = store.effective(store.bootmgr, "timeout")  # type: ignore[arg-type]
    assert eff is not None and eff.value == 7 and eff.inherited


@pytest.mark.parametrize("length", [MAX_INHERIT_DEPTH + 1, 5000])
def test_inherit_chain_past_the_bound_is_an_error(length: int) -> None:
    # 5000 levels would also overflow Python's recursion limit if the walk were not bounded
    store = decode_bcd(build_bcd(_chain(length)))
    with pytest.raises(BCDError, match=f"{{bootmgr}}: inherit chain deeper than {MAX_INHERIT_DEPTH} objects"):
        store.effective(store.bootmgr, "timeout")  # type: ignore[arg-type]


def test_own_value_wins_over_inherited() -> None:
    objects = good_bcd_objects()
    objects[BOOTLOADERSETTINGS][1][0x16000009] = boolean(True)
    store = decode_bcd(build_bcd(objects))
    eff = store.effective(store.default_loader, "recoveryenabled")  # type: ignore[arg-type]
    assert eff is not None and eff.value is False and not eff.inherited


def test_mbr_device_roundtrip() -> None:
    dev = decode_device(mbr_device())
    assert (dev.kind, dev.partition_style, dev.partition_offset, dev.mbr_signature) == (
        "partition",
        "mbr",
        MBR_OFFSET,
        MBR_SIG,
    )
    assert "0xB3EBA8F1" in dev.describe()


def test_mistyprojects_mbr_example() -> None:
    # the published "partition=C:" element of a Windows 8.1 MBR install
    data = bytes.fromhex(
        "00000000000000000000000000000000060000000000000048000000000000000000f015000000000000000000000000"
        "0000000001000000f1a8ebb300000000000000000000000000000000000000000000000000000000"
    )
    dev = decode_device(data)
    assert dev.partition_offset == 0x15F00000 and dev.mbr_signature == 0xB3EBA8F1


def test_gpt_device_roundtrip() -> None:
    dev = decode_device(gpt_device())
    assert (dev.partition_guid, dev.disk_guid) == (PART_GUID, DISK_GUID)


@pytest.mark.parametrize(
    ("eid", "data", "words"),
    [
        (0x16000009, (RegType.BINARY, b"\x00\x00\x00\x00"), "boolean data is 4 bytes, 1 expected"),
        (0x250000E0, (RegType.BINARY, b"\x01" + bytes(8)), "integer data is 9 bytes, 1 to 8 expected"),
        (0x250000E0, (RegType.BINARY, b""), "integer data is 0 bytes, 1 to 8 expected"),
        (0x16000009, (RegType.BINARY, b""), "boolean data is 0 bytes, 1 expected"),
        (0x250000E0, 1, "stored as REG_DWORD, REG_BINARY expected"),
        (0x21000001, (RegType.BINARY, bytes(20)), "device data is 20 bytes"),
        (0x21000001, (RegType.BINARY, bytes(16) + struct.pack("<IIII", 6, 0, 0x400, 0)), "claims size 0x400"),
    ],
)
def test_malformed_element_raises_naming_object_and_element(eid: int, data: object, words: str) -> None:
    objects = good_bcd_objects()
    objects[LOADER][1][eid] = data
    store = decode_bcd(build_bcd(objects))
    loader = store.default_loader
    assert loader is not None
    with pytest.raises(BCDError) as info:
        _ = store.effective(loader, eid).value  # type: ignore[union-attr]
    assert LOADER in str(info.value) and f"{eid:08X}" in str(info.value) and words in str(info.value)
    # and to_dict shows it instead of failing
    shown = store.to_dict()["objects"][LOADER]["elements"][element_name(eid, 0x10200003)]["value"]
    assert "error" in shown


def test_not_a_bcd_store() -> None:
    with pytest.raises(BCDError, match="no Objects key"):
        decode_bcd(MemoryHive.build("BCD", {"Select": {"Current": 1}}))


def test_dangling_default() -> None:
    objects = good_bcd_objects()
    objects["{9dea862c-5cdd-4e70-acc1-f32b344d4795}"][1][0x23000003] = "{00000000-0000-0000-0000-00000000dead}"
    store = decode_bcd(build_bcd(objects))
    assert store.default_guid == "{00000000-0000-0000-0000-00000000dead}"
    assert store.default_loader is None


@pytest.mark.parametrize(
    ("eid", "otype", "name"),
    [
        (0x23000003, 0x10100002, "default"),
        (0x23000003, 0x10200003, "resumeobject"),
        (0x21000001, 0x10200003, "osdevice"),
        (0x1500004B, 0x10200003, "integrityservices"),
        (0x16000048, None, "nointegritychecks"),
        (0x250000E0, 0x10200003, "bootstatuspolicy"),
        (0x26000020, 0x10100002, "displaybootmenu"),
        (0x25000004, 0x10100002, "timeout"),
        (0x16000020, None, "bootems"),
        (0x260000B0, 0x10200003, "ems"),
        (0x15000022, None, "emsport"),
        (0x15000023, None, "emsbaudrate"),
        (0x14000006, None, "inherit"),
        (0x24000001, 0x10100002, "displayorder"),
        (0x250000C2, 0x10200003, "bootmenupolicy"),
        (0x3FFFFFFF, None, "custom:3fffffff"),
    ],
)
def test_element_names(eid: int, otype: int | None, name: str) -> None:
    assert element_name(eid, otype) == name


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"\x1e", 30),  # Windows' BCD-Template: {bootmgr} timeout
        (b"\x05\x00", 5),
        (b"\x00\xc2\x01", 115200),
        (b"\x00\xc2\x01\x00", 115200),
        (b"\xff" * 7, 2**56 - 1),
        (b"\xff" * 8, 2**64 - 1),
    ],
)
def test_integers_of_1_to_8_bytes(raw: bytes, value: int) -> None:
    objects = good_bcd_objects()
    objects[BOOTMGR][1][0x25000004] = (RegType.BINARY, raw)
    store = decode_bcd(build_bcd(objects))
    assert store.bootmgr is not None and store.bootmgr.element("timeout").value == value


def test_integer_boolean_helpers_are_what_bcdedit_writes() -> None:
    assert integer(5)[1] == b"\x05" + bytes(7)
    assert boolean(True)[1] == b"\x01"


@pytest.mark.parametrize("backend", ["regf", "python-registry"])
def test_real_store_through_the_hive_backends(backend: str) -> None:
    import io
    import lzma

    from azvhdaudit.registry.open import open_hive

    from .helpers import REALDATA

    with lzma.open(REALDATA / "BCD.xz") as fh:
        hive = open_hive(io.BytesIO(fh.read()), "BCD", source="realdata/BCD", backend=backend)
    store = decode_bcd(hive)
    loader = store.default_loader
    assert loader is not None and loader.element("description").value == "Windows 10"
    assert loader.element("osdevice").value.partition_guid == "8e0f2c38-e4ea-47ba-b7fc-9d8c74dccf0b"
    assert store.bootmgr is not None and store.bootmgr.element("timeout").value == 30


def test_partition_style_in_the_wrong_field_is_an_error() -> None:
    # style 1 written at 0x30 (the local device type) instead of 0x34: not a layout Windows writes
    data = bytearray(mbr_device())
    data[0x30:0x38] = struct.pack("<II", 1, 0)
    with pytest.raises(BCDError, match=r"local device type 1 \(floppy\) at offset 0x30"):
        decode_device(bytes(data))


# --- printed forms: what a user sees in a terminal or a notebook ------------------------------------------------

#: a Python repr leaking into text: a dataclass dump, a dict or list literal, a Python constant
PYTHON_REPR = re.compile(r"\b[A-Za-z]\w*\(\w+=|\{'|\['|': |\bTrue\b|\bFalse\b|\bNone\b")


def _printed(store: Any) -> list[str]:
    texts = [str(store), repr(store), store._repr_html_()]
    for obj in store:
        texts += [str(obj), repr(obj), obj._repr_html_()]
        for el in obj.elements.values():
            texts += [str(el), repr(el), el.text]
            try:
                value = el.value
            except BCDError:
                continue
            if isinstance(value, BCDDevice):
                texts += [str(value), repr(value)]
        for name in ("bootems", "recoveryenabled", "timeout", "osdevice", "inherit", "description"):
            eff = store.effective(obj, name)
            if eff is not None:
                texts += [str(eff), repr(eff)]
    return texts


def test_printed_forms_of_the_real_store(real_bcd_hive: MemoryHive) -> None:
    store = decode_bcd(real_bcd_hive)
    for text in _printed(store):
        assert not PYTHON_REPR.search(text), text
    loader = store.default_loader
    assert loader is not None
    assert str(store.effective(loader, "bootems")) == "bootems = No (inherited from {emssettings})"
    assert str(store.effective(loader, "bootmenupolicy")) == (
        "bootmenupolicy = 1 (set on {733b62e5-f608-11eb-825c-c112f60133ab} (Windows 10))"
    )
    assert repr(store) == "<BCDStore realdata/BCD: 17 objects, default {733b62e5-f608-11eb-825c-c112f60133ab}>"
    assert repr(store.bootmgr) == "<BCDObject {bootmgr}: Windows Boot Manager, 10 elements>"
    listing = str(loader).splitlines()
    assert listing[:3] == [
        "Windows Boot Loader",
        "-------------------",
        "identifier               {733b62e5-f608-11eb-825c-c112f60133ab}",
    ]
    assert "inherit                  {bootloadersettings}" in listing
    assert "recoveryenabled          Yes" in listing
    assert str(store).startswith("Windows Boot Manager\n")
    assert str(loader.element("osdevice").value) == (
        "partition (GPT disk {0b2394a9-095e-487d-8d48-719ecd4d78ca}, partition {8e0f2c38-e4ea-47ba-b7fc-9d8c74dccf0b})"
    )


def test_printed_forms_of_malformed_and_hostile_elements() -> None:
    objects = good_bcd_objects()
    objects[LOADER][1][0x12000004] = "<script>alert(1)</script>"
    objects[LOADER][1][0x250000E0] = (RegType.BINARY, bytes(9))
    objects[LOADER][1][0x21000001] = (RegType.BINARY, bytes(12))
    objects[LOADER][1][0x17000077] = (RegType.BINARY, struct.pack("<QQ", 0x15000075, 0x1500004B))
    objects[EMS][1][0x14000006] = [BOOTLOADERSETTINGS]  # a loop, listed under the warnings
    store = decode_bcd(build_bcd(objects))
    for text in _printed(store):
        assert not PYTHON_REPR.search(text), text
    loader = store.default_loader
    assert loader is not None
    assert loader.element("bootstatuspolicy").text.startswith("unreadable: BCD object " + LOADER)
    assert "allowedinmemorysettings  0x15000075\n" in str(loader) + "\n"
    assert "<script>" not in loader._repr_html_() and "&lt;script&gt;" in loader._repr_html_()
    assert "Warnings\n--------\nBCD inherit loop" in str(store)
