"""Network: no static persistent routes, and a WinHTTP proxy that lets the platform address through.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Set Windows configurations
for Azure" (``route print`` / ``route delete``; ``netsh winhttp reset proxy``, and since 2018 a proxy
whose bypass list holds 168.63.129.16). Persistent routes: ``SYSTEM\\CurrentControlSet\\Services\\
Tcpip\\Parameters\\PersistentRoutes``, one value per route named ``dest,mask,gateway,metric``.
WinHTTP settings: ``SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections\\
WinHttpSettings`` (and the WOW6432Node view), an undocumented blob; Microsoft's support text gives the
direct-access value ``1800000000000000010000000000000000000000``; it is decoded by
:mod:`azvhdaudit.network_facts`.
"""

from __future__ import annotations

from dataclasses import replace

from azvhdaudit.errors import NotChecked
from azvhdaudit.network_facts import (
    WINHTTP_SETTINGS,
    WIRESERVER,
    WinHttpSettings,
    bypasses,
    parse_persistent_route,
    parse_winhttp_settings,
)
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.values import BOTH, HiveUnavailable, key_evidence, open_key, printable, read_value, worst

__all__ = ["WinHttpSettings", "parse_winhttp_settings", "bypasses", "WIRESERVER"]

ROUTES = r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\PersistentRoutes"
CONNECTIONS = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections",
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\Connections",
)

NETWORK = Group(area="network", source="Set Windows configurations for Azure")


@rule(
    NETWORK,
    id="network.no_persistent_routes",
    title="No static persistent routes",
    severity=Severity.REQUIRED,
    rationale="A persistent route of the old network (the Windows 7 hive in the tests keeps two persistent "
    "default routes) sends traffic to a gateway that does not exist in Azure. Routes created with "
    "New-NetRoute -PolicyStore PersistentStore live in binary NSI keys and are not checked.",
    baselines=BOTH,
    remediation="route.exe print  (see 'Persistent Routes')  ->  route.exe delete <destination>",
)
def check_routes(ctx: AuditContext) -> Outcome:
    key = open_key(ctx, ROUTES)
    if key is None:
        ev = key_evidence(ctx, ROUTES, None)
        return Outcome(
            Status.PASS,
            f"no persistent routes ({ctx.registry.display_path(ROUTES)} does not exist)",
            expected=[],
            actual=[],
            evidence=(ev,),
        )
    routes = [v.name for v in key.values()]
    ev = key_evidence(ctx, ROUTES, key, note=f"{len(routes)} route(s), one value each")
    if routes:
        return Outcome(
            Status.FAIL,
            "persistent route(s) (dest,mask,gateway,metric): " + "; ".join(routes),
            expected=[],
            actual=routes,
            evidence=(ev,),
            remediation="\n".join(_route_delete(r) for r in routes),
        )
    return Outcome(Status.PASS, "no persistent routes", expected=[], actual=[], evidence=(ev,))


def _setting(settings: WinHttpSettings | None) -> str:
    """What a view's WinHTTP setting is, in words: ``direct`` or ``proxy host:port, bypass list``."""
    if settings is None or not settings.uses_proxy:
        return "direct"
    return f"proxy {settings.proxy}, bypass {settings.bypass or '(empty)'}"


def _route_delete(name: str) -> str:
    """``route.exe delete`` for one PersistentRoutes value (``dest,mask,gateway,metric``); the doc's two
    steps when the name is not in that form."""
    route = parse_persistent_route(name)
    if route is not None:
        return f"route.exe delete {route.destination} mask {route.mask} {route.gateway}"
    return f"route.exe print  (see 'Persistent Routes', value '{printable(name)}')  ->  route.exe delete <destination>"


def _judge_blob(ctx: AuditContext, path: str) -> tuple[Status, str, Evidence | None, str | None]:
    """(status, message, evidence, the setting in words — None when not read)."""
    try:
        read = read_value(ctx, path, WINHTTP_SETTINGS)
    except HiveUnavailable as err:
        return Status.NOT_CHECKED, f"not checked: {err.reason}", None, None
    where = read.key_path
    if read.value is None:
        return Status.PASS, f"no WinHttpSettings under {where} (direct access)", read.evidence, "direct"
    raw = read.value.raw
    try:
        settings = parse_winhttp_settings(raw)
    except ValueError as err:
        return Status.NOT_CHECKED, f"{where}: WinHttpSettings cannot be decoded: {err}", read.evidence, None
    ev = replace(read.evidence, note=f"decoded: {_setting(settings)} (flags 0x{settings.flags:X})")
    shown = _setting(settings)
    if not settings.uses_proxy:
        return Status.PASS, f"WinHTTP goes direct under {where} (flags 0x{settings.flags:X})", ev, shown
    if bypasses(settings.bypass):
        if ctx.profile == "azure-2017":
            return (
                Status.FAIL,
                f"WinHTTP proxy '{settings.proxy}' is set under {where} (bypass list "
                f"'{settings.bypass}' holds {WIRESERVER}, but the 2017 text resets the proxy)",
                ev,
                shown,
            )
        return (
            Status.PASS,
            f"WinHTTP proxy '{settings.proxy}' under {where} bypasses {WIRESERVER} ('{settings.bypass}')",
            ev,
            shown,
        )
    return (
        Status.FAIL,
        f"WinHTTP proxy '{settings.proxy}' is set under {where} and its bypass list "
        f"'{settings.bypass}' does not hold {WIRESERVER}",
        ev,
        shown,
    )


@rule(
    NETWORK,
    id="network.winhttp_proxy",
    title="WinHTTP proxy reset (direct), or the proxy bypasses 168.63.129.16",
    severity=Severity.REQUIRED,
    rationale="The VM agent talks to 168.63.129.16 through WinHTTP; a proxy that does not bypass it "
    "breaks provisioning and extensions. The current text accepts a proxy whose bypass list holds "
    "168.63.129.16; the 2017 text requires the reset. Both the 64-bit and the WOW6432Node views count.",
    baselines=BOTH,
    remediation="netsh.exe winhttp reset proxy  (or: netsh.exe winhttp set proxy <proxy> "
    '"<bypass list>;168.63.129.16")',
)
def check_proxy(ctx: AuditContext) -> Outcome:
    verdicts = [_judge_blob(ctx, path) for path in CONNECTIONS]
    statuses = [v[0] for v in verdicts]
    evidence = tuple(v[2] for v in verdicts if v[2] is not None)
    message = "; ".join(dict.fromkeys(v[1] for v in verdicts))
    if all(s is Status.NOT_CHECKED for s in statuses):
        raise NotChecked(message, message, evidence=evidence)
    status = worst(statuses)
    views = ("64-bit", "32-bit (WOW6432Node)")
    actual = {view: v[3] for view, v in zip(views, verdicts, strict=True) if v[3] is not None}
    return Outcome(
        status,
        message,
        expected="direct or bypass 168.63.129.16",
        actual=actual,
        evidence=evidence,
        reason=message if status is Status.NOT_CHECKED else "",
    )
