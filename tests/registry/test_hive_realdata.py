"""What the real hives hold, read through each backend (see tests/data/realdata/README.md)."""

from __future__ import annotations

import datetime as _dt
import struct
from pathlib import Path

import pytest

from azvhdaudit.registry.model import RegType
from azvhdaudit.registry.open import open_hive_file

from .hivekit import BASE, find_key, nk_field, subkey_entries

#: slow: every key of the real hives, under both backends
pytestmark = pytest.mark.slow

CCS = "ControlSet001"
FIREWALL_RULES = CCS + r"\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules"

# (key path, value name, type, decoded data); None = the value must be absent
WIN7_SYSTEM_VALUES = [
    ("Select", "Current", RegType.DWORD, 1),
    ("Select", "Default", RegType.DWORD, 1),
    ("Select", "LastKnownGood", RegType.DWORD, 2),
    (CCS + r"\Control\Terminal Server", "fDenyTSConnections", RegType.DWORD, 0),
    (CCS + r"\Control\TimeZoneInformation", "RealTimeIsUniversal", None, None),
    (CCS + r"\Control\TimeZoneInformation", "TimeZoneKeyName", RegType.SZ, "Eastern Standard Time"),
    (CCS + r"\Control\CrashControl", "CrashDumpEnabled", RegType.DWORD, 2),
    (CCS + r"\Control\Session Manager\Memory Management", "PagingFiles", RegType.MULTI_SZ, ["?:\\pagefile.sys"]),
    (CCS + r"\Services\partmgr\Parameters", "SanPolicy", RegType.DWORD, 1),
    (CCS + r"\Control\Terminal Server\WinStations\RDP-Tcp", "PortNumber", RegType.DWORD, 3389),
]


@pytest.mark.parametrize(("path", "name", "type_", "data"), WIN7_SYSTEM_VALUES)
def test_win7_system_values(realdata: Path, backend: str, path: str, name: str, type_: int, data: object) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend) as hive:
        key = hive.key(path)
        assert key is not None, path
        value = key.value(name)
        if type_ is None:
            assert value is None
        else:
            assert value is not None
            assert (value.type, value.data) == (type_, data)


def test_win7_system_shape(realdata: Path, backend: str) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend) as hive:
        assert hive.state.dirty is False and hive.state.replayed is False and hive.backend == backend
        assert hive.state.logs == () and hive.state.note == ""
        sets = sorted(k.name for k in hive.root().subkeys() if k.name.lower().startswith("controlset"))
        assert sets == ["ControlSet001", "ControlSet002"]
        services = hive.key(CCS + r"\Services")
        assert services is not None and len(services.subkeys()) == 467
        rules = hive.key(FIREWALL_RULES)
        assert rules is not None and len(rules.values()) == 323
        assert all(v.type == RegType.SZ and str(v.data).startswith("v2.") for v in rules.values())


def test_last_write_is_aware_utc(realdata: Path, backend: str) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend) as hive:
        stamp = hive.root().last_write
        assert stamp is not None and stamp.tzinfo == _dt.timezone.utc
        assert stamp == _dt.datetime(2012, 4, 4, 11, 47, 6, 609375, tzinfo=_dt.timezone.utc)


@pytest.mark.parametrize("path", [CCS.upper() + r"\CONTROL\CRASHCONTROL", CCS.lower() + r"\control\crashcontrol"])
def test_lookup_is_case_insensitive(realdata: Path, backend: str, path: str) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend) as hive:
        key = hive.key(path)
        assert key is not None and key.name == "CrashControl"
        value = key.value("CRASHDUMPENABLED")
        assert value is not None and value.name == "CrashDumpEnabled" and value.data == 2


def test_missing_is_none(realdata: Path, backend: str) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend) as hive:
        assert hive.key(CCS + r"\NoSuchKey") is None
        assert hive.key(r"NoSuchKey\Deeper") is None
        control = hive.key(CCS + r"\Control")
        assert control is not None and control.value("NoSuchValue") is None
        assert control.subkey("NoSuchKey") is None


def test_default_value_has_empty_name(realdata: Path, backend: str) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend) as hive:
        key = hive.key(CCS + r"\Control\Class\{36FC9E60-C465-11CF-8056-444553540000}")
        assert key is not None
        default = key.value("")
        assert default is not None and default.name == ""
        assert (default.type, default.data) == (RegType.SZ, "Universal Serial Bus controllers")
        assert key.value("(Default)") is None


def test_bcd_store(realdata: Path, backend: str) -> None:
    with open_hive_file(realdata / "BCD", backend=backend) as hive:
        bootmgr = hive.key(r"Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements")
        assert bootmgr is not None
        default = bootmgr.subkey("23000003")
        assert default is not None
        loader = default.value("Element")
        assert loader is not None and loader.type == RegType.SZ
        loader_key = hive.key(rf"Objects\{loader.data}\Elements\12000004")
        assert loader_key is not None
        description = loader_key.value("Element")
        assert description is not None and description.data == "Windows 10"


def test_system_b_as_replayed(realdata: Path, backend: str) -> None:
    with open_hive_file(realdata / "SYSTEM_B", backend=backend) as hive:
        assert hive.state.replayed
        for path, name, data in [
            (r"Control\Terminal Server", "fDenyTSConnections", 1),
            (r"Control\Terminal Server\WinStations\RDP-Tcp", "SecurityLayer", 2),
            (r"Control\CrashControl", "CrashDumpEnabled", 7),
        ]:
            key = hive.key(CCS + "\\" + path)
            assert key is not None
            value = key.value(name)
            assert value is not None and value.data == data
        rules = hive.key(FIREWALL_RULES)
        assert rules is not None and len(rules.values()) == 443


@pytest.mark.parametrize(
    ("filename", "path", "count"),
    [
        ("SYSTEM", r"ControlSet001\Control\CriticalDeviceDatabase", 2548),  # an index root (ri) over lh lists
        ("SYSTEM", r"ControlSet001\Services", 467),  # hash leaves (lh)
        ("BCD", "Objects", 17),  # fast leaves (lf)
    ],
)
def test_every_subkey_found_by_name(realdata: Path, backend: str, filename: str, path: str, count: int) -> None:
    """The lookup (hash or name hint first, then the name) finds each listed subkey, in any case."""
    with open_hive_file(realdata / filename, backend=backend) as hive:
        parent = hive.key(path)
        assert parent is not None
        subkeys = parent.subkeys()
        assert len(subkeys) == count
        for index, sub in enumerate(subkeys):
            name = sub.name.upper() if index % 2 else sub.name.lower()
            found = parent.subkey(name)
            assert found is not None and found.path == sub.path, name
        assert parent.subkey(subkeys[0].name + "x") is None


def _as_index_leaf(data: bytes, path: str) -> bytes:
    """Rewrite the lf list of the key at ``path`` as an li list (same entries, 4 bytes each)."""
    key = find_key(data, path)
    list_offset = struct.unpack_from("<I", data, nk_field(key, 28))[0]
    offsets = [offset for _, offset in subkey_entries(data, key)]
    body = struct.pack(f"<2sH{len(offsets)}I", b"li", len(offsets), *offsets)
    return data[: BASE + list_offset + 4] + body + data[BASE + list_offset + 4 + len(body) :]


def test_index_leaf_lookup_is_case_insensitive(realdata: Path, tmp_path: Path, backend: str) -> None:
    """li lists carry no hash: the name decides. dissect.regf 3.14's own IndexLeaf.subkey is case-sensitive."""
    from dissect.regf.regf import IndexLeaf, RegistryHive

    patched = _as_index_leaf((realdata / "BCD").read_bytes(), "Objects")
    (tmp_path / "BCD").write_bytes(patched)
    guid = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
    with open(tmp_path / "BCD", "rb") as fh:
        objects = RegistryHive(fh).open("Objects")
        assert isinstance(objects._subkey_list, IndexLeaf)
        assert objects._subkey_list.subkey(guid.upper()) is None  # the library's own lookup misses
    with open_hive_file(tmp_path / "BCD", backend=backend) as hive:
        objects_key = hive.key("objects")
        assert objects_key is not None and len(objects_key.subkeys()) == 17
        for name in (guid, guid.upper()):
            found = objects_key.subkey(name)
            assert found is not None and found.name == guid
