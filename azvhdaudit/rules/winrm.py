"""WinRM (PowerShell remoting): service, HTTP listener and its firewall rules.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Configure Windows Firewall
rules" (``Enable-PSRemoting -Force``; 2017 also ``netsh advfirewall firewall set rule dir=in
name="Windows Remote Management (HTTP-In)" new enable=yes``). WS-Management configuration lives in
``SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\WSMAN`` (``Listener\\*+HTTP``, ``Service\\
allow_remote_requests``; undocumented layout, as exported by ``winrm``); Group Policy
``SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM\\Service``. Firewall rules: Name=@FirewallAPI.dll,-30253
("Windows Remote Management (HTTP-In)"), LPort 5985.
"""

from __future__ import annotations

from azvhdaudit.report import Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.firewall import PROFILES, effective_rules, may_hold, port_covers
from azvhdaudit.rules.services import service_outcome
from azvhdaudit.rules.values import BOTH, Item, evaluate_items, key_evidence, open_key, worst

WSMAN = r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\WSMAN"
WINRM_NAME = "@firewallapi.dll,-30253"
_SOURCE = "Configure Windows Firewall rules (Enable-PSRemoting)"
WINRM = Group(area="winrm", source=_SOURCE)


@rule(
    WINRM,
    id="winrm.service_auto",
    title="WinRM service start type Automatic (Enable-PSRemoting)",
    severity=Severity.REQUIRED,
    rationale="Enable-PSRemoting sets WinRM to Automatic (Delayed Start counts). Both real hives in the "
    "tests have it Manual: PSRemoting was never enabled there.",
    baselines=BOTH,
    remediation="Enable-PSRemoting -Force",
)
def check_service(ctx: AuditContext) -> Outcome:
    outcome = service_outcome(ctx, "WinRM", 2, Severity.REQUIRED)
    # Manual means remoting was never enabled: that is the step missing, not a cosmetic difference.
    if outcome.status is Status.WARNING:
        return Outcome(
            Status.FAIL,
            outcome.message + " (PowerShell remoting was not enabled)",
            outcome.expected,
            outcome.actual,
            outcome.evidence,
        )
    return outcome


@rule(
    WINRM,
    id="winrm.listener_http",
    title="A WinRM HTTP listener is configured",
    severity=Severity.RECOMMENDED,
    rationale="Enable-PSRemoting creates the listener on every address over HTTP (WSMAN\\Listener\\*+HTTP) "
    "and sets allow_remote_requests; the Group Policy 'Allow remote server management through WinRM' "
    "(AllowAutoConfig) must not be 0. The registry layout is undocumented.",
    baselines=BOTH,
    remediation="Enable-PSRemoting -Force",
)
def check_listener(ctx: AuditContext) -> Outcome:
    listeners = open_key(ctx, WSMAN + r"\Listener")
    http = [k.name for k in (listeners.subkeys() if listeners is not None else []) if k.name.upper().endswith("+HTTP")]
    star = [n for n in http if n.startswith("*")]
    items = (
        Item(WSMAN + r"\Service", "allow_remote_requests", 1, if_absent="warn"),
        Item(r"HKLM\SOFTWARE\Policies\Microsoft\Windows\WinRM\Service", "AllowAutoConfig", 1, if_absent="pass"),
    )
    values = evaluate_items(ctx, items, Severity.RECOMMENDED)
    ev = key_evidence(
        ctx, WSMAN + r"\Listener", listeners, "registry", note=f"HTTP listener keys: {', '.join(http) or 'none'}"
    )
    listener_status = Status.PASS if star else Status.WARNING
    listener_text = (
        f"HTTP listener {star[0]} configured"
        if star
        else f"no *+HTTP listener under {ctx.registry.display_path(WSMAN + chr(92) + 'Listener')}"
        + (f" (found {', '.join(http)})" if http else "")
    )
    return Outcome(
        worst((listener_status, values.status)),
        f"{listener_text}; {values.message}",
        expected="listener *+HTTP",
        actual=http,
        evidence=(ev, *values.evidence),
    )


@rule(
    WINRM,
    id="winrm.firewall_http_in",
    title="'Windows Remote Management (HTTP-In)' firewall rules enabled for every profile",
    severity=Severity.REQUIRED,
    rationale="Matched on Name=@FirewallAPI.dll,-30253 and LPort=5985, not on rule ids: which profiles a rule id "
    "covers differs between releases — on the Windows 7 client hive WINRM-HTTP-In-TCP-NoScope "
    "is Domain and WINRM-HTTP-In-TCP is Private+Public, on Windows 10 1709 -NoScope is Domain+Private and "
    "WINRM-HTTP-In-TCP is Public; and the group resource is -30252 on Windows 7, -30267 later. A rule "
    "scoped to LocalSubnet still counts (Enable-PSRemoting's own choice), and is named in the message.",
    baselines=BOTH,
    remediation="Enable-PSRemoting -Force  (it enables the firewall rules); 2017: netsh advfirewall firewall "
    'set rule dir=in name="Windows Remote Management (HTTP-In)" new enable=yes',
)
def check_firewall(ctx: AuditContext) -> Outcome:
    eff = effective_rules(ctx)
    winrm = [
        r
        for r in eff.rules
        if may_hold(r, WINRM_NAME)
        and (r.get("Name") or "").lower() == WINRM_NAME
        and any(port_covers(p, 5985) for p in r.all("LPort"))
    ]
    if not winrm:
        return eff.verdict(
            Outcome(
                Status.FAIL,
                "no 'Windows Remote Management (HTTP-In)' rule (Name @FirewallAPI.dll,-30253, LPort 5985) exists",
                expected="enabled",
                actual={},
                evidence=eff.evidence,
            )
        )
    covered: set[str] = set()
    for r in winrm:
        if r.enabled_allow and r.direction == "in":
            covered |= eff.profiles(r)
    missing = [p for p in PROFILES if p not in covered]
    actual = {r.id: r.enabled_allow for r in winrm}
    scoped = [f"{r.id} RA4={','.join(r.all('RA4'))}" for r in winrm if r.enabled_allow and r.all("RA4")]
    scope_note = (f"; scoped: {'; '.join(scoped)}" if scoped else "") + eff.merge_note
    if missing:
        return eff.verdict(
            Outcome(
                Status.FAIL,
                f"WinRM HTTP-In is not allowed in the {'/'.join(missing)} profile(s): "
                + ", ".join(r.describe() for r in winrm)
                + eff.merge_note,
                expected="enabled",
                actual=actual,
                evidence=eff.evidence,
            )
        )
    return eff.verdict(
        Outcome(
            Status.PASS,
            f"WinRM HTTP-In allowed in every profile by {', '.join(actual)}{scope_note}",
            expected="enabled",
            actual=actual,
            evidence=eff.evidence,
        )
    )
