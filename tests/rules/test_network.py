"""Network rules (persistent routes, WinHTTP proxy) and property tests of the WinHttpSettings parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azvhdaudit.report import Status
from azvhdaudit.rules.network import WIRESERVER, bypasses, parse_winhttp_settings

from .guestkit import CCS, CONNECTIONS, DIRECT_BLOB, Case, check_case, params, winhttp_blob

P, F, NC = Status.PASS, Status.FAIL, Status.NOT_CHECKED
ROUTES = rf"{CCS}\Services\Tcpip\Parameters\PersistentRoutes"
WOW = r"WOW6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\Connections"

CASES = [
    Case("network.no_persistent_routes", "empty", P),
    Case("network.no_persistent_routes", "no-key", P, system={ROUTES: None}, says="does not exist"),
    Case(
        "network.no_persistent_routes",
        "default-route",
        F,
        system={ROUTES: {"0.0.0.0,0.0.0.0,192.168.1.1,-1": ""}},
        says="192.168.1.1",
    ),
    Case("network.no_persistent_routes", "system-missing", NC, drop=("SYSTEM",)),
    Case("network.winhttp_proxy", "direct", P, says="direct"),
    Case("network.winhttp_proxy", "no-value", P, software={CONNECTIONS: {"WinHttpSettings": None}}),
    Case(
        "network.winhttp_proxy",
        "proxy",
        F,
        software={CONNECTIONS: {"WinHttpSettings": winhttp_blob("proxy:8080", "<local>")}},
        says="does not hold",
    ),
    Case(
        "network.winhttp_proxy",
        "proxy-bypass",
        P,
        software={CONNECTIONS: {"WinHttpSettings": winhttp_blob("proxy:8080", "<local>;168.63.129.16")}},
    ),
    Case(
        "network.winhttp_proxy",
        "proxy-bypass-2017",
        F,
        profile="azure-2017",
        software={CONNECTIONS: {"WinHttpSettings": winhttp_blob("proxy:8080", "168.63.*")}},
        says="2017",
    ),
    Case(
        "network.winhttp_proxy",
        "wow64-proxy",
        F,
        software={WOW: {"WinHttpSettings": winhttp_blob("p:3128", "")}},
        says="WOW6432Node",
    ),
    Case(
        "network.winhttp_proxy",
        "truncated",
        NC,
        software={CONNECTIONS: {"WinHttpSettings": DIRECT_BLOB[:14]}},
        says="cannot be decoded",
    ),
    Case("network.winhttp_proxy", "software-missing", NC, drop=("SOFTWARE",)),
]


@pytest.mark.parametrize("case", params(CASES))
def test_network(case: Case) -> None:
    check_case(case)


def test_direct_blob_from_the_support_article() -> None:
    settings = parse_winhttp_settings(DIRECT_BLOB)
    assert (settings.version, settings.flags, settings.proxy, settings.bypass) == (0x18, 1, "", "")
    assert not settings.uses_proxy


_ascii = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)


@given(
    proxy=_ascii,
    bypass=_ascii,
    flags=st.integers(0, 0xF),
    counter=st.integers(0, 2**32 - 1),
    tail=st.binary(max_size=16),
)
def test_parser_round_trips(proxy: str, bypass: str, flags: int, counter: int, tail: bytes) -> None:
    p, b = proxy.encode(), bypass.encode()
    raw = (
        b"\x28\x00\x00\x00"
        + counter.to_bytes(4, "little")
        + flags.to_bytes(4, "little")
        + len(p).to_bytes(4, "little")
        + p
        + len(b).to_bytes(4, "little")
        + b
        + tail
    )
    settings = parse_winhttp_settings(raw)
    assert (settings.counter, settings.flags, settings.proxy, settings.bypass, settings.rest) == (
        counter,
        flags,
        proxy,
        bypass,
        tail,
    )
    assert settings.uses_proxy == bool(flags & 2 and proxy)


@given(raw=st.binary(max_size=64))
def test_parser_never_reads_past_the_end(raw: bytes) -> None:
    try:
        settings = parse_winhttp_settings(raw)
    except ValueError as err:
        assert "offset" in str(err)
    else:
        assert 20 <= len(raw)
        assert len(settings.proxy) + len(settings.bypass) + len(settings.rest) + 20 == len(raw)


@pytest.mark.parametrize(
    ("bypass", "expected"),
    [
        ("168.63.129.16", True),
        ("<local>;168.63.129.16", True),
        ("*.corp;168.63.*", True),
        ("*", True),
        ("<local>", False),
        ("168.63.129.1", False),
        ("", False),
        ("10.0.0.0/8 168.63.129.16", True),
    ],
)
def test_bypass_list(bypass: str, expected: bool) -> None:
    assert bypasses(bypass, WIRESERVER) is expected
