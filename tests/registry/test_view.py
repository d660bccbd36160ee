"""RegistryView over the real hives, with either backend: HKLM paths, CurrentControlSet, missing = None."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from azvhdaudit.errors import HiveNotFoundError
from azvhdaudit.registry.model import RegistryView, RegType
from azvhdaudit.registry.open import open_hive_file

from .hivekit import BASE, cell, find_key, patch, value_cell


@pytest.fixture
def view(realdata: Path, backend: str) -> Iterator[RegistryView]:
    hives = {
        "SYSTEM": open_hive_file(realdata / "SYSTEM", backend=backend),
        "BCD": open_hive_file(realdata / "BCD", backend=backend),
    }
    view = RegistryView(hives, unavailable={"SOFTWARE": "not present in this test"})
    yield view
    view.close()


def test_current_control_set(view: RegistryView) -> None:
    assert view.current_control_set == 1 and view.default_control_set == 1
    assert view.control_set_name == "ControlSet001"
    assert view.resolve(r"HKLM\SYSTEM\CurrentControlSet\Services") == ("SYSTEM", r"ControlSet001\Services")
    assert view.display_path(r"system\currentcontrolset\control") == r"HKLM\SYSTEM\ControlSet001\control"


@pytest.mark.parametrize(
    "path",
    [
        r"HKLM\SYSTEM\CurrentControlSet\Control\CrashControl",
        r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Control\CrashControl",
        r"SYSTEM\CurrentControlSet\Control\CrashControl",
        r"hklm\system\currentcontrolset\control\crashcontrol",
        "HKLM/SYSTEM/ControlSet001/Control/CrashControl",
        r"\HKLM\SYSTEM\\ControlSet001\Control\CrashControl\\",
    ],
)
def test_paths_reach_the_same_key(view: RegistryView, path: str) -> None:
    key = view.key(path)
    assert key is not None and key.path == r"ControlSet001\Control\CrashControl"
    value = view.value(path, "crashdumpenabled")
    assert value is not None and (value.name, value.type, value.data) == ("CrashDumpEnabled", RegType.DWORD, 2)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        (r"HKLM\SYSTEM\CurrentControlSet\Control\NoSuchKey", "X"),
        (r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation", "RealTimeIsUniversal"),
        (r"HKLM\NOHIVE\Anything", "X"),
        (r"HKLM", "X"),
    ],
)
def test_missing_is_none(view: RegistryView, path: str, name: str) -> None:
    assert view.value(path, name) is None


def test_unavailable_hive_says_why(view: RegistryView) -> None:
    """A hive the view knows it could not read raises with the reason: None would read as "absent"."""
    with pytest.raises(HiveNotFoundError, match=r"^HKLM\\SOFTWARE: not present in this test$"):
        view.key(r"HKLM\SOFTWARE")
    with pytest.raises(HiveNotFoundError, match=r"CurrentVersion: not present in this test"):
        view.value(r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion", "ProductName")
    assert view.why_unavailable("software") == "not present in this test"
    assert view.why_unavailable("SYSTEM") == ""


def test_bcd_through_the_view(view: RegistryView) -> None:
    objects = view.key(r"HKLM\BCD\Objects")
    assert objects is not None and len(objects.subkeys()) == 17
    assert sum(1 for _ in view.walk(r"HKLM\BCD")) == 132


def test_walk_firewall_rules(view: RegistryView) -> None:
    rules = list(view.walk(r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy"))
    assert rules[0].name == "FirewallPolicy"
    by_name = {key.name: key for key in rules}
    assert len(by_name["FirewallRules"].values()) == 323


def test_current_differs_from_default(realdata: Path, tmp_path: Path, backend: str) -> None:
    """Select\\Current = 2 while Default stays 1: CurrentControlSet follows Current, never ControlSet001."""
    data = (realdata / "SYSTEM").read_bytes()
    vk_offset = value_cell(data, find_key(data, "Select"), "Current")
    length, inline = struct.unpack_from("<II", cell(data, vk_offset), 4)
    assert (length, inline) == (0x80000004, 1)  # a DWORD stored in the value cell itself
    (tmp_path / "SYSTEM").write_bytes(patch(data, BASE + vk_offset + 4 + 8, "<I", 2))
    view = RegistryView({"SYSTEM": open_hive_file(tmp_path / "SYSTEM", backend=backend)})
    try:
        assert (view.current_control_set, view.default_control_set) == (2, 1)
        assert view.resolve(r"HKLM\SYSTEM\CurrentControlSet\Control") == ("SYSTEM", r"ControlSet002\Control")
        current = view.key(r"HKLM\SYSTEM\CurrentControlSet")
        assert current is not None and current.name == "ControlSet002"
    finally:
        view.close()


def test_states_of_a_dirty_hive(realdata: Path, backend: str) -> None:
    view = RegistryView({"system": open_hive_file(realdata / "SYSTEM_B", backend=backend)})
    try:
        state = view.states()["SYSTEM"]
        assert state.dirty and state.replayed
        assert view.value(r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server", "fDenyTSConnections").data == 1  # type: ignore[union-attr]
    finally:
        view.close()
