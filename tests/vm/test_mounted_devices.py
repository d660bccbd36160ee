"""SYSTEM\\MountedDevices decoding and matching values to the partitions of audited disks."""

from __future__ import annotations

import pytest

from azvhdaudit.osinfo import drive_letter_map, find_partition, mounted_devices, mounted_volume

from .vmkit import (
    DATA_PART_GUID,
    DATA_SIG,
    MiB,
    data_gpt,
    data_mbr,
    gpt_value,
    letter,
    mbr_value,
    system_view,
)

VOLUME = "\\??\\Volume{656b1715-ecf6-11df-92e6-806e6f6e6963}"
USB = "_??_USBSTOR#Disk&Ven_Kingston".encode("utf-16-le")


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        (
            letter("e"),
            mbr_value(DATA_SIG, 2 * MiB),
            {
                "letter": "E:",
                "volume_guid": None,
                "style": "mbr",
                "mbr_signature": DATA_SIG,
                "offset": 2 * MiB,
                "guid": None,
            },
        ),
        (
            letter("D"),
            gpt_value(DATA_PART_GUID.upper()),
            {"letter": "D:", "style": "gpt", "guid": DATA_PART_GUID, "mbr_signature": None},
        ),
        (
            VOLUME,
            mbr_value(1, MiB),
            {"letter": None, "volume_guid": "{656b1715-ecf6-11df-92e6-806e6f6e6963}", "style": "mbr"},
        ),
        (letter("A"), USB, {"letter": "A:", "style": "other", "raw_length": len(USB)}),
        # DMIO:ID: with the wrong length is not a GPT identity
        (letter("F"), b"DMIO:ID:" + b"\x01" * 8, {"style": "other"}),
        # 12 bytes are always the MBR form
        ("\\DosDevices\\COM1", mbr_value(7, 0), {"letter": None, "style": "mbr", "mbr_signature": 7}),
    ],
)
def test_decoding(name: str, raw: bytes, expected: dict[str, object]) -> None:
    [device] = mounted_devices(system_view({name: raw}))
    data = device.to_dict()
    assert data["name"] == name
    for key, value in expected.items():
        assert data[key] == value, key


def test_letters_first_in_order_then_volumes() -> None:
    view = system_view({VOLUME: mbr_value(1), letter("E"): mbr_value(2), letter("C"): mbr_value(3)})
    assert [d.name for d in mounted_devices(view)] == [letter("C"), letter("E"), VOLUME]


@pytest.mark.parametrize("mounted", [None, {}])
def test_missing_hive_or_key_is_empty(mounted: dict[str, bytes] | None) -> None:
    view = system_view(mounted)
    assert mounted_devices(view) == []
    assert drive_letter_map(view, {"d": data_mbr()}) == {}


@pytest.mark.parametrize(
    ("raw", "facts", "hit"),
    [
        (mbr_value(DATA_SIG, MiB), data_mbr(), True),
        (mbr_value(DATA_SIG, 2 * MiB), data_mbr(), False),  # same disk, another partition
        (mbr_value(DATA_SIG + 1, MiB), data_mbr(), False),  # another disk
        (gpt_value(DATA_PART_GUID), data_gpt(), True),
        (gpt_value("00000000-0000-0000-0000-000000000002"), data_gpt(), False),
        # an MBR identity never matches a GPT disk's partition at the same offset
        (mbr_value(0, MiB), data_gpt(), False),
    ],
)
def test_find_partition(raw: bytes, facts: object, hit: bool) -> None:
    [device] = mounted_devices(system_view({letter("E"): raw}))
    found = find_partition(device, {"data1:x.vhd": facts})  # type: ignore[dict-item]
    assert (found is not None) is hit
    if hit:
        assert found is not None and found[0] == "data1:x.vhd" and found[1].index == 0


def test_drive_letter_map_names_disks_and_unknown_volumes() -> None:
    view = system_view(
        {
            letter("E"): mbr_value(DATA_SIG),
            letter("D"): gpt_value(DATA_PART_GUID),
            letter("Z"): mbr_value(0x1234),
            VOLUME: mbr_value(DATA_SIG),
        }
    )
    letters = drive_letter_map(view, {"data1:m.vhd": data_mbr(), "data2:g.vhd": data_gpt()})
    assert set(letters) == {"D:", "E:", "Z:"}
    assert (letters["E:"]["disk"], letters["E:"]["partition"]) == ("data1:m.vhd", 0)
    assert (letters["D:"]["disk"], letters["D:"]["style"]) == ("data2:g.vhd", "gpt")
    assert letters["Z:"]["disk"] is None and letters["Z:"]["mbr_signature"] == 0x1234


def test_mounted_volume_keeps_its_shape() -> None:
    view = system_view({letter("C"): mbr_value(DATA_SIG), letter("D"): gpt_value(DATA_PART_GUID)})
    assert mounted_volume(view) == {"style": "mbr", "mbr_signature": DATA_SIG, "offset": MiB}
    assert mounted_volume(view, "d:") == {"style": "gpt", "guid": DATA_PART_GUID}
