"""Property tests of the firewall rule-string parser and the address/port matchers."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azvhdaudit.firewall_facts import PROFILES, address_covers, parse_rule, port_covers

_key = st.sampled_from(["Action", "Active", "Dir", "Protocol", "Profile", "LPort", "RA4", "Name", "EmbedCtxt", "Edge"])
_value = st.text(alphabet=st.characters(blacklist_characters="|\x00", blacklist_categories=("Cs",)), max_size=30)


@given(version=st.from_regex(r"v2\.[0-9]{1,2}", fullmatch=True), pairs=st.lists(st.tuples(_key, _value), max_size=12))
def test_every_pair_is_kept_in_order(version: str, pairs: list[tuple[str, str]]) -> None:
    text = version + "|" + "".join(f"{k}={v}|" for k, v in pairs)
    rule = parse_rule("id", text)
    assert rule.version == version
    for key in {k for k, _ in pairs}:
        assert rule.all(key) == tuple(v for k, v in pairs if k == key)
        assert rule.all(key.upper()) == rule.all(key)  # key names are case-insensitive


@given(st.text(max_size=200))
def test_parser_never_raises(text: str) -> None:
    rule = parse_rule("x", text)
    assert rule.raw == text


def test_real_windows7_rule() -> None:
    rule = parse_rule(
        "RemoteDesktop-In-TCP",
        "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|LPort=3389|App=System|"
        "Name=@FirewallAPI.dll,-28753|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|",
    )
    assert rule.enabled_allow and rule.direction == "in"
    assert rule.profiles == {"domain", "private"}
    assert rule.get("EmbedCtxt") == "@FirewallAPI.dll,-28752"


def test_no_profile_token_means_every_profile() -> None:
    assert parse_rule("x", "v2.33|Action=Allow|Active=TRUE|Dir=In|").profiles == frozenset(PROFILES)


@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_network_covers_its_members(address: ipaddress.IPv4Address, prefix: int) -> None:
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    assert address_covers(str(network), str(address))
    assert address_covers(f"{network.network_address}/{network.netmask}", str(address))
    assert address_covers(f"{network.network_address}-{network.broadcast_address}", str(address))


@given(st.ip_addresses(v=4), st.ip_addresses(v=4))
def test_single_address(a: ipaddress.IPv4Address, b: ipaddress.IPv4Address) -> None:
    assert address_covers(str(a), str(b)) == (a == b)


@pytest.mark.parametrize("keyword", ["LocalSubnet", "DNS", "DHCP", "DefaultGateway", "Intranet", "garbage"])
def test_keywords_do_not_cover_the_platform_address(keyword: str) -> None:
    assert not address_covers(keyword, "168.63.129.16")


@given(st.integers(1, 65535), st.integers(1, 65535), st.integers(1, 65535))
def test_port_ranges(low: int, high: int, port: int) -> None:
    low, high = min(low, high), max(low, high)
    assert port_covers(f"{low}-{high}", port) == (low <= port <= high)
    assert port_covers(f"{low},{high}", port) == (port in (low, high))
    assert not port_covers("RPC", port)
