"""The rules on real hives: the Windows 7 SYSTEM (32-bit, RDP allowed, no RealTimeIsUniversal) and the
dirty Windows 10 1709 SYSTEM_B, read through the registry backends with log replay."""

from __future__ import annotations

import datetime as _dt
import lzma
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from azvhdaudit.engine import audit_context
from azvhdaudit.facts import OSFacts
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import BACKENDS, open_hive_file
from azvhdaudit.report import Result, Status
from azvhdaudit.rules.base import AuditContext

from .guestkit import facts

REALDATA = Path(__file__).parent.parent / "data" / "realdata"
WIN7 = OSFacts(
    product_name="Windows 7 Professional",
    build=7601,
    installation_type="Client",
    product_type="WinNT",
    architecture="x86",
)
WIN10 = OSFacts(
    product_name="Windows 10 Pro", build=16299, installation_type="Client", product_type="WinNT", architecture="AMD64"
)


@pytest.fixture(scope="module")
def hives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("guest-realdata")
    for name in ("SYSTEM", "SYSTEM_B", "SYSTEM_B.LOG1", "SYSTEM_B.LOG2"):
        with lzma.open(REALDATA / f"{name}.xz") as src, open(out / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def _audit(path: Path, os_facts: OSFacts, backend: str) -> Iterator[dict[str, Result]]:
    hive = open_hive_file(path, "SYSTEM", backend=backend)
    try:
        # The real SYSTEM with a SOFTWARE hive that sets no Group Policy: the verdicts are what SYSTEM holds.
        software = MemoryHive.build("SOFTWARE", {"Microsoft\\Windows NT\\CurrentVersion": {}})
        view = RegistryView(hives={"SYSTEM": hive, "SOFTWARE": software})
        ctx = AuditContext(registry=view, facts=facts(os_facts))
        yield {r.rule_id: r for r in audit_context(ctx, "azure", today=_dt.date(2026, 1, 1))}
    finally:
        hive.close()


@pytest.fixture(scope="module", params=BACKENDS)
def win7(request: pytest.FixtureRequest, hives: Path) -> Iterator[dict[str, Result]]:
    yield from _audit(hives / "SYSTEM", WIN7, request.param)


@pytest.fixture(scope="module")
def win10(hives: Path) -> Iterator[dict[str, Result]]:
    yield from _audit(hives / "SYSTEM_B", WIN10, "regf")


WIN7_EXPECTED = [
    ("rdp.enabled", Status.PASS, "fDenyTSConnections is 0"),
    ("time.utc", Status.FAIL, "value RealTimeIsUniversal is missing"),
    ("rdp.port", Status.PASS, "3389"),
    ("rdp.nla", Status.FAIL, "UserAuthentication is 0"),
    ("firewall.profiles_enabled", Status.PASS, ""),
    # RemoteDesktop-In-TCP_1 (the Public-profile rule) is off on this Windows 7
    ("firewall.rdp_rules_enabled", Status.FAIL, "RemoteDesktop-In-TCP_1"),
    ("firewall.icmp_echo_enabled", Status.WARNING, "FPS-ICMP4-ERQ-In"),
    ("firewall.azure_platform_rules", Status.FAIL, "no enabled"),
    ("winrm.firewall_http_in", Status.FAIL, "WINRM-HTTP-In-TCP"),
    ("winrm.service_auto", Status.FAIL, "Manual"),
    ("services.ikeext", Status.WARNING, "Manual (Trigger Start)"),
    ("services.netlogon", Status.WARNING, "Automatic"),
    ("services.sacsvr", Status.NOT_APPLICABLE, "Server editions"),
    ("power.high_performance", Status.PASS, "High performance"),
    ("power.display_idle_never", Status.WARNING, "900 s"),
    ("san.policy_onlineall", Status.PASS, ""),
    ("network.no_persistent_routes", Status.FAIL, "0.0.0.0,0.0.0.0,192.168.1.1,-1"),
    # the SOFTWARE hive given sets no WinHTTP proxy: direct access
    ("network.winhttp_proxy", Status.PASS, "direct access"),
    ("os.temp_tmp_default", Status.PASS, ""),
    ("crashdump.kernel_dump", Status.PASS, ""),
    ("crashdump.dump_file", Status.PASS, ""),
    ("crashdump.nmi", Status.WARNING, "missing"),
    ("pagefile.temp_drive", Status.PASS, "system-managed"),
    ("time.w32time_auto", Status.WARNING, "Manual (Trigger Start)"),
]


@pytest.mark.parametrize(("rule_id", "status", "says"), WIN7_EXPECTED, ids=[e[0] for e in WIN7_EXPECTED])
def test_win7_system(win7: dict[str, Result], rule_id: str, status: Status, says: str) -> None:
    result = win7[rule_id]
    assert result.status is status, result.message
    assert says in result.message


def test_win7_evidence_names_control_set(win7: dict[str, Result]) -> None:
    evidence = win7["time.utc"].evidence[0]
    assert evidence.control_set == "ControlSet001"
    assert evidence.key == r"HKLM\SYSTEM\ControlSet001\Control\TimeZoneInformation"
    assert evidence.present is False and evidence.hive == "SYSTEM"


@pytest.mark.parametrize("backend", BACKENDS)
def test_win7_system_alone_leaves_policy_rules_not_checked(hives: Path, backend: str) -> None:
    hive = open_hive_file(hives / "SYSTEM", "SYSTEM", backend=backend)
    try:
        view = RegistryView(hives={"SYSTEM": hive}, unavailable={"SOFTWARE": "only SYSTEM given (test)"})
        ctx = AuditContext(registry=view, facts=facts(WIN7))
        results = {r.rule_id: r for r in audit_context(ctx, "azure", today=_dt.date(2026, 1, 1))}
    finally:
        hive.close()
    assert results["rdp.enabled_policy"].status is Status.NOT_CHECKED
    assert "only SYSTEM given" in results["rdp.enabled_policy"].reason
    # Group Policy wins and cannot be read: the compliant local value does not earn a pass
    assert results["rdp.enabled"].status is Status.NOT_CHECKED
    assert "local fDenyTSConnections = 0 would pass" in results["rdp.enabled"].message


WIN10_EXPECTED = [
    # fDenyTSConnections = 1 comes from the transaction logs: the base block alone does not hold it
    ("rdp.enabled", Status.FAIL, "fDenyTSConnections is 1"),
    ("services.remoteregistry", Status.FAIL, "Disabled"),
    ("crashdump.kernel_dump", Status.WARNING, "CrashDumpEnabled is 7"),
    ("os.temp_tmp_default", Status.PASS, ""),
    ("power.high_performance", Status.FAIL, "Balanced"),
    ("firewall.rdp_rules_enabled", Status.FAIL, "RemoteDesktop-UserMode-In-TCP"),
]


@pytest.mark.parametrize(("rule_id", "status", "says"), WIN10_EXPECTED, ids=[e[0] for e in WIN10_EXPECTED])
def test_win10_dirty_system(win10: dict[str, Result], rule_id: str, status: Status, says: str) -> None:
    result = win10[rule_id]
    assert result.status is status, result.message
    assert says in result.message


def test_win10_evidence_flags_the_dirty_hive(win10: dict[str, Result]) -> None:
    assert win10["time.utc"].evidence[0].hive_dirty is True


FW_STORE = r"ControlSet001\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules"
ROUTES = r"ControlSet001\Services\Tcpip\Parameters\PersistentRoutes"


@pytest.mark.parametrize(
    "rule_id", ["firewall.rdp_rules_enabled", "firewall.icmp_echo_enabled", "winrm.firewall_http_in"]
)
def test_win7_rule_store_evidence_is_the_key_that_exists(win7: dict[str, Result], hives: Path, rule_id: str) -> None:
    """The real store holds hundreds of rules: its evidence says the key exists and how many it holds,
    counted here by python-registry, a reader the audit did not use for this count."""
    hive = open_hive_file(hives / "SYSTEM", "SYSTEM", backend="python-registry")
    try:
        key = hive.key(FW_STORE)
        assert key is not None
        count = sum(1 for v in key.values() if isinstance(v.data, str))
    finally:
        hive.close()
    (store,) = [ev for ev in win7[rule_id].evidence if ev.key.endswith("FirewallRules") and ev.source == "registry"]
    assert count > 100
    assert store.present is True and store.value_name is None and store.actual is None
    assert store.note == f"{count} rule(s)"


def test_win7_persistent_routes_key_is_present(win7: dict[str, Result]) -> None:
    result = win7["network.no_persistent_routes"]
    (ev,) = result.evidence
    assert result.status is Status.FAIL and len(result.actual) == 2
    assert ev.present is True and ev.note.startswith("2 route(s)") and ev.key.endswith(ROUTES)


def test_real_evidence_never_contradicts_itself(win7: dict[str, Result], win10: dict[str, Result]) -> None:
    problems = []
    for results in (win7, win10):
        for result in results.values():
            for ev in result.evidence:
                if not ev.present and ev.actual is not None:
                    problems.append(f"{result.rule_id}: {ev.key} absent with a value")
                if ev.present and ev.actual is None and not ev.note:
                    problems.append(f"{result.rule_id}: {ev.key} present with nothing said")
                if (
                    ev.source in ("registry", "policy")
                    and ev.value_name is None
                    and ev.actual is not None
                    and not ev.derived
                ):
                    problems.append(f"{result.rule_id}: key {ev.key} shown with a value, not derived")
    assert not problems, "\n".join(problems)


def test_win7_dhcp_fix_names_the_real_connections(win7: dict[str, Result]) -> None:
    """The two statically addressed interfaces of the real Windows 7 hive, named by the connection names its
    Control\\Network class key holds; netsh, as Windows 7 has no Set-NetIPInterface."""
    result = win7["platform_net.dhcp_enabled"]
    assert result.status is Status.WARNING
    assert "10.3.58.5" in result.message and "192.168.1.123" in result.message
    assert sorted(result.remediation.splitlines()) == [
        "netsh interface ip set address 'Local Area Connection 2' dhcp",
        "netsh interface ip set address 'Local Area Connection' dhcp",
    ]
    names = {e.key.rsplit("\\", 2)[-2]: e.actual for e in result.evidence if e.value_name == "Name"}
    assert names == {
        "{698E50A9-4F58-4D86-B61D-F42E58DCACF6}": "Local Area Connection 2",
        "{6AAFC9A9-0542-4DB2-8760-CCFFA953737C}": "Local Area Connection",
    }
