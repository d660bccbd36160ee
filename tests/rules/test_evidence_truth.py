"""A verdict's expected, found and evidence say what is there: types where types differ, the decoded
proxy, keys that exist as existing keys."""

from __future__ import annotations

from azvhdaudit.registry.model import RegType
from azvhdaudit.render._common import format_value
from azvhdaudit.report import Status

from .guestkit import CCS, CONNECTIONS, ENV, TS, TS_POLICY, Case, run_case, winhttp_blob

ROUTES = rf"{CCS}\Services\Tcpip\Parameters\PersistentRoutes"


def test_type_mismatch_shows_the_types_in_expected_and_found() -> None:
    result = run_case(
        Case(
            "os.temp_tmp_default",
            "temp-reg-sz",
            Status.FAIL,
            system={ENV: {"TEMP": (RegType.SZ, r"%SystemRoot%\TEMP")}},
        )
    )
    assert result.status is Status.FAIL
    assert format_value(result.expected) != format_value(result.actual)
    assert result.actual["TEMP"] == r"REG_SZ '%SystemRoot%\TEMP'"
    assert result.expected["TEMP"] == r"REG_EXPAND_SZ '%SystemRoot%\TEMP'"
    # the item whose type is right keeps its plain data
    assert result.actual["TMP"] == r"%SystemRoot%\TEMP"


def test_value_message_has_no_repr() -> None:
    result = run_case(
        Case(
            "os.temp_tmp_default",
            "temp-reg-sz",
            Status.FAIL,
            system={ENV: {"TEMP": (RegType.SZ, r"%SystemRoot%\TEMP")}},
        )
    )
    assert "\\\\" not in result.message and r"'%SystemRoot%\TEMP'" in result.message


def test_proxy_found_is_the_proxy() -> None:
    blob = winhttp_blob("proxy.contoso.com:8080", "<local>;10.*")
    result = run_case(
        Case("network.winhttp_proxy", "proxy", Status.FAIL, software={CONNECTIONS: {"WinHttpSettings": blob}})
    )
    assert result.status is Status.FAIL
    assert result.actual["64-bit"] == "proxy proxy.contoso.com:8080, bypass <local>;10.*"
    assert result.actual["32-bit (WOW6432Node)"] == "direct"
    assert "proxy.contoso.com:8080" in format_value(result.actual)
    ev = result.evidence[0]
    assert ev.note == "decoded: proxy proxy.contoso.com:8080, bypass <local>;10.* (flags 0x3)"
    direct = run_case(Case("network.winhttp_proxy", "direct", Status.PASS))
    assert direct.actual["64-bit"] == "direct"


def test_persistent_routes_key_is_present_with_its_routes() -> None:
    result = run_case(
        Case(
            "network.no_persistent_routes",
            "one",
            Status.FAIL,
            system={ROUTES: {"10.0.0.0,255.0.0.0,192.168.1.1,1": ""}},
        )
    )
    (ev,) = result.evidence
    assert ev.present is True and ev.value_name is None and ev.actual is None
    assert ev.note.startswith("1 route(s)")
    absent = run_case(Case("network.no_persistent_routes", "none", Status.PASS, system={ROUTES: None}))
    assert absent.evidence[0].present is False


def test_policy_set_value_gets_the_policy_fix() -> None:
    """fDenyTSConnections = 1 set by Group Policy: the local line would change nothing; the fix sets the
    policy value, and the .reg file writes that same key."""
    from azvhdaudit.fix import reg_file
    from azvhdaudit.report import Report

    result = run_case(
        Case("rdp.enabled", "policy-denies", Status.FAIL, software={TS_POLICY: {"fDenyTSConnections": 1}})
    )
    assert result.status is Status.FAIL
    assert result.remediation == (
        r"Set-ItemProperty -Path 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services' "
        "-Name fDenyTSConnections -Value 0 -Type DWord -Force"
    )
    reg = reg_file(Report(source="x.vhd", profile="azure", results=[result]))
    assert "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services]\r\n" in reg
    assert "Control\\Terminal Server]" not in reg
    local = run_case(Case("rdp.enabled", "local-denies", Status.FAIL, system={TS: {"fDenyTSConnections": 1}}))
    assert "SYSTEM\\CurrentControlSet\\Control\\Terminal Server" in local.remediation


def test_route_fix_names_the_routes_found() -> None:
    result = run_case(
        Case(
            "network.no_persistent_routes",
            "two",
            Status.FAIL,
            system={ROUTES: {"10.0.0.0,255.0.0.0,192.168.1.1,1": "", "0.0.0.0,0.0.0.0,10.1.1.1,1": ""}},
        )
    )
    assert sorted(result.remediation.splitlines()) == [
        "route.exe delete 0.0.0.0 mask 0.0.0.0 10.1.1.1",
        "route.exe delete 10.0.0.0 mask 255.0.0.0 192.168.1.1",
    ]
