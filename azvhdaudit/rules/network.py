"""Network: no static persistent routes, and a WinHTTP proxy that lets the platform address through.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Set Windows configurations
for Azure" (``route print`` / ``route delete``; ``netsh winhttp reset proxy``, and since 2018 a proxy
whose bypass list holds 168.63.129.16). Persistent routes: ``SYSTEM\\CurrentControlSet\\Services\\
Tcpip\\Parameters\\PersistentRoutes``, one value per route named ``dest,mask,gateway,metric``.
WinHTTP settings: ``SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections\\
WinHttpSettings`` (and the WOW6432Node view), an undocumented blob; Microsoft's support text gives the
direct-access value ``1800000000000000010000000000000000000000``: u32 size/version, u32 counter,
u32 flags (0x1 direct, 0x2 proxy, 0x4 auto-config URL, 0x8 auto-detect), then length-prefixed ASCII
proxy server and bypass list.
"""

from __future__ import annotations

import fnmatch
import re
import struct
from dataclasses import dataclass, replace

from azvhdaudit.errors import NotChecked
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.values import BOTH, HiveUnavailable, key_evidence, open_key, read_value, worst

__all__ = ["WinHttpSettings", "parse_winhttp_settings", "bypasses", "WIRESERVER"]

ROUTES = r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\PersistentRoutes"
CONNECTIONS = (
    r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections",
    r"HKLM\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Internet Settings\Connections",
)
WIRESERVER = "168.63.129.16"

NETWORK = Group(area="network", source="Set Windows configurations for Azure")
FLAG_DIRECT = 0x1
FLAG_PROXY = 0x2
FLAG_AUTO_URL = 0x4
FLAG_AUTO_DETECT = 0x8


@dataclass(frozen=True)
class WinHttpSettings:
    """The decoded WinHttpSettings blob."""

    version: int
    counter: int
    flags: int
    proxy: str
    bypass: str
    #: bytes after the bypass list (auto-config URL etc.), kept undecoded
    rest: bytes = b""

    @property
    def uses_proxy(self) -> bool:
        return bool(self.flags & FLAG_PROXY) and bool(self.proxy)


def parse_winhttp_settings(raw: bytes) -> WinHttpSettings:
    """Decode the blob by its length fields; raises ``ValueError`` naming the offset where it ends early."""

    def u32(offset: int, what: str) -> int:
        if offset + 4 > len(raw):
            raise ValueError(f"WinHttpSettings ends at {len(raw)} bytes, {what} expected at offset {offset}")
        value: int = struct.unpack_from("<I", raw, offset)[0]
        return value

    def text(offset: int, what: str) -> tuple[str, int]:
        length = u32(offset, f"the {what} length")
        start = offset + 4
        if start + length > len(raw):
            raise ValueError(
                f"WinHttpSettings {what} length {length} at offset {offset} runs past the end ({len(raw)} bytes)"
            )
        return raw[start : start + length].decode("latin-1"), start + length

    version = u32(0, "the structure version")
    counter = u32(4, "the change counter")
    flags = u32(8, "the flags")
    proxy, offset = text(12, "proxy server")
    bypass, offset = text(offset, "bypass list")
    return WinHttpSettings(version, counter, flags, proxy, bypass, bytes(raw[offset:]))


def bypasses(bypass_list: str, address: str = WIRESERVER) -> bool:
    """Whether a WinHTTP bypass list (``;``/space separated, wildcards allowed) names ``address``."""
    for entry in re.split(r"[;,\s]+", bypass_list):
        entry = entry.strip().lower()
        if entry and entry != "<local>" and fnmatch.fnmatchcase(address, entry):
            return True
    return False


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
    parts = [p.strip() for p in name.split(",")]
    if len(parts) == 4 and all(re.fullmatch(r"[0-9.]+", p) for p in parts[:3]):
        dest, mask, gateway, _ = parts
        return f"route.exe delete {dest} mask {mask} {gateway}"
    return f"route.exe print  (see 'Persistent Routes', value '{name}')  ->  route.exe delete <destination>"


def _judge_blob(ctx: AuditContext, path: str) -> tuple[Status, str, Evidence | None, str | None]:
    """(status, message, evidence, the setting in words — None when not read)."""
    try:
        read = read_value(ctx, path, "WinHttpSettings")
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
