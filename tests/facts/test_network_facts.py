"""The WinHttpSettings blob: Microsoft's direct-access value, and the blobs of the sample images (written by
hivexregedit from samples/hives, read back through the image's NTFS volume), decoded and cut short."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from azvhdaudit.image import open_image
from azvhdaudit.network_facts import (
    FLAG_DIRECT,
    FLAG_PROXY,
    WINHTTP_SETTINGS,
    WIRESERVER,
    PersistentRoute,
    bypasses,
    parse_persistent_route,
    parse_winhttp_settings,
)
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import open_hive_file

CONNECTIONS = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections"
#: "netsh winhttp reset proxy": the value Microsoft's support text gives for direct access
DIRECT = bytes.fromhex("1800000000000000010000000000000000000000")


def _sample_blob(sample_path: Callable[[str], Path], name: str) -> bytes:
    with open_image(sample_path(name)) as image:
        value = image.registry.value(CONNECTIONS, WINHTTP_SETTINGS)
        assert value is not None
        return bytes(value.raw)


def test_direct_access() -> None:
    settings = parse_winhttp_settings(DIRECT)
    assert (settings.version, settings.counter, settings.flags) == (0x18, 0, FLAG_DIRECT)
    assert (settings.proxy, settings.bypass, settings.rest) == ("", "", b"")
    assert not settings.uses_proxy


def test_the_compliant_sample_goes_direct(sample_path: Callable[[str], Path]) -> None:
    raw = _sample_blob(sample_path, "gen1-azure.vhd")
    assert raw == DIRECT
    assert not parse_winhttp_settings(raw).uses_proxy


def test_the_misconfigured_sample_sets_a_proxy(sample_path: Callable[[str], Path]) -> None:
    raw = _sample_blob(sample_path, "gen2-misconfigured.vhdx")
    settings = parse_winhttp_settings(raw)
    assert settings.flags == FLAG_DIRECT | FLAG_PROXY
    assert (settings.proxy, settings.bypass) == ("proxy.contoso.com:8080", "<local>;10.*")
    assert settings.uses_proxy
    assert not bypasses(settings.bypass)
    # every byte accounted for: three u32, two length-prefixed strings, nothing after
    assert len(raw) == 12 + 4 + len(settings.proxy) + 4 + len(settings.bypass)
    assert settings.rest == b""


def test_every_shorter_blob_names_where_it_ends(sample_path: Callable[[str], Path]) -> None:
    raw = _sample_blob(sample_path, "gen2-misconfigured.vhdx")
    for end in range(len(raw)):
        with pytest.raises(ValueError, match=rf"WinHttpSettings .*{end} bytes"):
            parse_winhttp_settings(raw[:end])


def test_a_length_past_the_end() -> None:
    raw = struct.pack("<IIII", 0x18, 1, FLAG_PROXY, 0xFFFFFFFF) + b"proxy:80"
    with pytest.raises(ValueError, match="proxy server length 4294967295 at offset 12 runs past the end"):
        parse_winhttp_settings(raw)


def test_what_follows_the_bypass_list_is_kept() -> None:
    raw = struct.pack("<III", 0x46, 7, FLAG_PROXY | 0x4) + struct.pack("<I", 4) + b"p:80" + struct.pack("<I", 0)
    settings = parse_winhttp_settings(raw + b"\x05\x00\x00\x00https")
    assert settings.rest == b"\x05\x00\x00\x00https"
    assert settings.uses_proxy and settings.counter == 7


@pytest.mark.parametrize(
    ("bypass_list", "hit"),
    [
        ("168.63.129.16", True),
        ("<local>;168.63.129.16", True),
        ("*.contoso.com; 168.63.*", True),
        ("168.63.129.*,10.*", True),
        ("*", True),
        ("<local>;10.*", False),
        ("168.63.129.1", False),
        ("", False),
        ("<local>", False),
    ],
)
def test_bypasses(bypass_list: str, hit: bool) -> None:
    assert bypasses(bypass_list, WIRESERVER) is hit


def test_the_persistent_routes_of_a_real_hive(realdata: Path) -> None:
    hive = open_hive_file(realdata / "SYSTEM", "SYSTEM")
    try:
        key = RegistryView(hives={"SYSTEM": hive}).key(
            r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\PersistentRoutes"
        )
        assert key is not None
        routes = sorted((v.name, v.data) for v in key.values())
    finally:
        hive.close()
    assert [data for _, data in routes] == ["", ""]
    assert [parse_persistent_route(name) for name, _ in routes] == [
        PersistentRoute("0.0.0.0", "0.0.0.0", "10.3.58.1", "-1"),
        PersistentRoute("0.0.0.0", "0.0.0.0", "192.168.1.1", "-1"),
    ]


@pytest.mark.parametrize(
    "name", ["", "0.0.0.0,0.0.0.0,192.168.1.1", "a,b,c,d", "0.0.0.0,0.0.0.0,gw,1", "0.0.0.0,0.0.0.0,1.1.1.1,1,5"]
)
def test_a_name_not_of_a_route(name: str) -> None:
    assert parse_persistent_route(name) is None
