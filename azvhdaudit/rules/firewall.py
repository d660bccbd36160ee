"""Windows Firewall: profiles on, the Remote Desktop and ping rules enabled, the Azure platform reachable.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Configure Windows Firewall
rules" (current and 2017 text). Rule store: ``SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\
Parameters\\FirewallPolicy\\FirewallRules`` (local; value name = rule id, REG_SZ data =
``v2.NN|Key=Value|...|``, keys may repeat) and ``SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\
FirewallRules`` (Group Policy, same grammar). Profiles: ``FirewallPolicy\\{DomainProfile,
StandardProfile,PublicProfile}`` — the Private profile is stored as StandardProfile. Indirect display
strings (``@FirewallAPI.dll,-28752``) are matched rather than English names, which are localised. The
grammar, the effective rule set and the address / port matchers are in :mod:`azvhdaudit.firewall_facts`.
"""

from __future__ import annotations

from collections.abc import Iterable

from azvhdaudit.firewall_facts import (
    FW,
    LOCAL_RULES,
    POLICY,
    POLICY_PROFILE_KEYS,
    POLICY_RULES,
    PROFILES,
    EffectiveRules,
    FirewallRule,
    address_covers,
    any_covers,
    may_hold,
    parse_rule,
    port_covers,
    store_rules,
)
from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, rule
from azvhdaudit.rules.values import (
    BOTH,
    CURRENT,
    Group,
    Item,
    ValueRule,
    key_evidence,
    open_key,
    register_values,
)

__all__ = [
    "FirewallRule",
    "parse_rule",
    "load_rules",
    "EffectiveRules",
    "effective_rules",
    "may_hold",
    "address_covers",
    "port_covers",
    "PROFILES",
    "WIRESERVER",
]

WIRESERVER = "168.63.129.16"
RDP_GROUP = "@firewallapi.dll,-28752"
ICMP_ECHO_IDS = ("FPS-ICMP4-ERQ-In", "FPS-ICMP4-ERQ-In-NoScope")


def load_rules(ctx: AuditContext, path: str, store: str) -> tuple[list[FirewallRule], Evidence]:
    """The rules of one store (raises HiveUnavailable when its hive is missing); cached per audit. Each
    rule string is parsed when a check first looks into it. The evidence is the store's key: whether it
    exists, and how many rules it holds."""

    def make() -> tuple[list[FirewallRule], Evidence]:
        key = open_key(ctx, path)
        rules = store_rules(key, store)
        note = f"{len(rules)} rule(s)" if key is not None else "no rules in this store"
        source = "policy" if store == "policy" else "registry"
        return rules, key_evidence(ctx, path, key, source, note)

    result: tuple[list[FirewallRule], Evidence] = ctx.cached(f"firewall:{store}", make)
    return result


def effective_rules(ctx: AuditContext) -> EffectiveRules:
    """The rule set every firewall check reads (cached per audit); raises HiveUnavailable when SYSTEM,
    which holds the local store, cannot be read."""

    def make() -> EffectiveRules:
        from azvhdaudit.rules.values import HiveUnavailable

        local, ev = load_rules(ctx, LOCAL_RULES, "local")
        try:
            policy, pev = load_rules(ctx, POLICY_RULES, "policy")
        except HiveUnavailable as err:
            return EffectiveRules(tuple(local), frozenset(), (ev,), err.reason, err.hive)
        merge_off, merge_ev = _local_merge_off(ctx)
        return EffectiveRules(tuple(local) + tuple(policy), merge_off, (ev, pev, *merge_ev))

    result: EffectiveRules = ctx.cached("firewall:effective", make)
    return result


def _local_merge_off(ctx: AuditContext) -> tuple[frozenset[str], tuple[Evidence, ...]]:
    """Profiles where Group Policy sets AllowLocalPolicyMerge = 0 (local rules do not apply there), with
    the evidence of the values that are set. SOFTWARE must be readable (the caller has read it)."""
    from azvhdaudit.rules.values import read_value

    off = set()
    evidence = []
    for profile, keys in POLICY_PROFILE_KEYS:
        for key in keys:
            read = read_value(ctx, f"{POLICY}\\{key}", "AllowLocalPolicyMerge", source="policy")
            if read.present:
                evidence.append(read.evidence)
                if read.data == 0:
                    off.add(profile)
                break
    return frozenset(off), tuple(evidence)


def local_merge_off(ctx: AuditContext) -> tuple[frozenset[str], str]:
    """Profiles where Group Policy sets AllowLocalPolicyMerge = 0, and the sentence saying so
    (``(frozenset(), "")`` when SOFTWARE cannot be read)."""
    from azvhdaudit.rules.values import HiveUnavailable

    try:
        eff = effective_rules(ctx)
    except HiveUnavailable:
        return frozenset(), ""
    return eff.merge_off, eff.merge_note


# --- value rows: the profiles and the legacy GPO exceptions -------------------------------------

FIREWALL = Group(
    area="firewall",
    source="Configure Windows Firewall rules",
    rationale="Azure expects the firewall on, with the Remote Desktop rules open.",
)

ROWS = (
    ValueRule(
        id="firewall.profiles_enabled",
        title="Windows Firewall enabled for the Domain, Private (Standard) and Public profiles",
        group=FIREWALL,
        severity=Severity.REQUIRED,
        items=(
            Item(FW + r"\DomainProfile", "EnableFirewall", 1, policy=(POLICY + r"\DomainProfile",), label="Domain"),
            Item(
                FW + r"\StandardProfile",
                "EnableFirewall",
                1,
                policy=(POLICY + r"\PrivateProfile", POLICY + r"\StandardProfile"),
                label="Private",
            ),
            Item(FW + r"\PublicProfile", "EnableFirewall", 1, policy=(POLICY + r"\PublicProfile",), label="Public"),
        ),
        remediation="Set-NetFirewallProfile -Profile Domain, Public, Private -Enabled True",
        rationale="The Private profile is stored as StandardProfile. A Group Policy EnableFirewall value "
        "(WFAS PrivateProfile first, then the legacy StandardProfile) is the effective one.",
    ),
    ValueRule(
        id="firewall.profiles_policy",
        title="Group Policy does not turn the firewall off or block all exceptions",
        group=FIREWALL,
        severity=Severity.REQUIRED,
        items=(
            Item(POLICY + r"\DomainProfile", "EnableFirewall", 1, if_absent="pass", label="Domain"),
            Item(POLICY + r"\StandardProfile", "EnableFirewall", 1, if_absent="pass", label="Standard"),
            Item(POLICY + r"\PrivateProfile", "EnableFirewall", 1, if_absent="pass", label="Private"),
            Item(POLICY + r"\PublicProfile", "EnableFirewall", 1, if_absent="pass", label="Public"),
            Item(POLICY + r"\DomainProfile", "DoNotAllowExceptions", 0, if_absent="pass", label="Domain exceptions"),
            Item(
                POLICY + r"\StandardProfile", "DoNotAllowExceptions", 0, if_absent="pass", label="Standard exceptions"
            ),
        ),
        remediation="Set 'Windows Firewall: Protect all network connections' to Enabled and 'Do not allow "
        "exceptions' to Disabled (Computer Configuration > Administrative Templates > Network > Network "
        "Connections > Windows Firewall > Domain/Standard Profile)",
        rationale="Not configured (no value) passes. DoNotAllowExceptions = 1 would block RDP.",
    ),
    ValueRule(
        id="firewall.rdp_policy",
        title="Legacy firewall GPO 'Allow inbound Remote Desktop exceptions' not disabling RDP",
        group=FIREWALL,
        severity=Severity.REQUIRED,
        items=(
            Item(POLICY + r"\DomainProfile\Services\RemoteDesktop", "Enabled", 1, if_absent="pass", label="Domain"),
            Item(POLICY + r"\StandardProfile\Services\RemoteDesktop", "Enabled", 1, if_absent="pass", label="Standard"),
            Item(
                POLICY + r"\DomainProfile\Services\RemoteDesktop",
                "RemoteAddresses",
                "*",
                compare="eq_ci",
                types=(RegType.SZ,),
                if_absent="pass",
                on_mismatch=Status.WARNING,
                label="Domain scope",
            ),
            Item(
                POLICY + r"\StandardProfile\Services\RemoteDesktop",
                "RemoteAddresses",
                "*",
                compare="eq_ci",
                types=(RegType.SZ,),
                if_absent="pass",
                on_mismatch=Status.WARNING,
                label="Standard scope",
            ),
        ),
        remediation="Set 'Windows Firewall: Allow inbound Remote Desktop exceptions' to Enabled (or Not "
        "configured) for the Domain and Standard profiles, with '*' as the allowed addresses",
        rationale="A scope other than '*' may still include Azure clients, so it is a warning, not a failure.",
    ),
    ValueRule(
        id="firewall.icmp_policy",
        title="Legacy firewall GPO 'Allow ICMP exceptions' not blocking echo requests",
        group=FIREWALL,
        severity=Severity.RECOMMENDED,
        items=(
            Item(
                POLICY + r"\DomainProfile\IcmpSettings",
                "AllowInboundEchoRequest",
                1,
                if_absent="pass",
                label="Domain",
            ),
            Item(
                POLICY + r"\StandardProfile\IcmpSettings",
                "AllowInboundEchoRequest",
                1,
                if_absent="pass",
                label="Standard",
            ),
        ),
        remediation="Set 'Windows Firewall: Allow ICMP exceptions' (Allow inbound echo request) to Enabled or "
        "Not configured",
    ),
)

register_values(ROWS)


# --- logic rules ---------------------------------------------------------------------------------


def _blocking_inbound_port(rules: Iterable[FirewallRule], port: int) -> list[FirewallRule]:
    return [
        r
        for r in rules
        if may_hold(r, "block")
        and r.active
        and r.action == "block"
        and r.direction == "in"
        and (r.get("Protocol") in (None, "6"))
        and (not r.all("LPort") or any(port_covers(p, port) for p in r.all("LPort")))
        and not r.all("App")
        and not r.all("Svc")
    ]


@rule(
    FIREWALL,
    id="firewall.rdp_rules_enabled",
    title="All rules of the 'Remote Desktop' group enabled (Allow, inbound, every profile)",
    severity=Severity.REQUIRED,
    source="Configure Windows Firewall rules",
    baselines=BOTH,
    remediation="Get-NetFirewallRule -DisplayGroup 'Remote Desktop' | Set-NetFirewallRule -Enabled True",
    rationale="Matched on the group resource EmbedCtxt=@FirewallAPI.dll,-28752, not the localised name. "
    "Evidence: Windows 7 has two rules, RemoteDesktop-In-TCP (Domain, Private) and RemoteDesktop-In-TCP_1 "
    "(Public); both must be on for TCP 3389 to be open in every "
    "profile. A Group Policy block rule for TCP 3389 fails the rule.",
)
def check_rdp_rules(ctx: AuditContext) -> Outcome:
    eff = effective_rules(ctx)
    evidence = eff.evidence
    group = [r for r in eff.rules if may_hold(r, RDP_GROUP) and (r.get("EmbedCtxt") or "").lower() == RDP_GROUP]
    if not group:
        return eff.verdict(
            Outcome(
                Status.FAIL,
                f"no rule of the Remote Desktop group (EmbedCtxt {RDP_GROUP}) exists",
                expected="enabled",
                actual=[],
                evidence=evidence,
            )
        )
    off = [r for r in group if not r.enabled_allow]
    covered: set[str] = set()
    for r in group:
        if (
            r.enabled_allow
            and r.direction == "in"
            and r.get("Protocol") == "6"
            and any(port_covers(p, 3389) for p in r.all("LPort"))
        ):
            covered |= eff.profiles(r)
    # a local block rule does not apply where Group Policy switches the local rules off
    blocked = [r for r in _blocking_inbound_port(eff.rules, 3389) if eff.profiles(r)]
    problems = []
    if off:
        problems.append("disabled or not Allow: " + ", ".join(r.describe() for r in off))
    missing = [p for p in PROFILES if p not in covered]
    if missing:
        problems.append("TCP 3389 is not allowed in the " + "/".join(missing) + " profile(s)")
    if blocked:
        problems.append("blocked by: " + ", ".join(r.describe() for r in blocked))
    actual = {r.id: r.enabled_allow for r in group}
    if problems:
        outcome = Outcome(
            Status.FAIL,
            "; ".join(problems) + eff.merge_note,
            expected="all enabled",
            actual=actual,
            evidence=evidence,
        )
    else:
        outcome = Outcome(
            Status.PASS,
            f"all {len(group)} Remote Desktop rules are enabled ({', '.join(actual)}); TCP "
            f"3389 is allowed in every profile{eff.merge_note}",
            expected="all enabled",
            actual=actual,
            evidence=evidence,
        )
    return eff.verdict(outcome)


@rule(
    FIREWALL,
    id="firewall.icmp_echo_enabled",
    title="ICMPv4 echo request rule enabled (ping inside the virtual network)",
    severity=Severity.RECOMMENDED,
    source="Configure Windows Firewall rules",
    baselines=BOTH,
    remediation="Set-NetFirewallRule -Name FPS-ICMP4-ERQ-In -Enabled True",
    rationale="Current text: the rule id FPS-ICMP4-ERQ-In only. The 2017 text enabled the rule by display "
    "name, which also enables its Domain-profile twin FPS-ICMP4-ERQ-In-NoScope; under azure-2017 both "
    "are required.",
)
def check_icmp(ctx: AuditContext) -> Outcome:
    eff = effective_rules(ctx)
    by_id: dict[str, list[FirewallRule]] = {}
    for r in eff.rules:
        by_id.setdefault(r.id.lower(), []).append(r)
    wanted = ICMP_ECHO_IDS if ctx.profile == "azure-2017" else ICMP_ECHO_IDS[:1]
    missing = [i for i in wanted if i.lower() not in by_id]
    # a rule counts where it is enabled and applies in some profile (local rules where local merge is on)
    on = {i: any(r.enabled_allow and eff.profiles(r) for r in by_id.get(i.lower(), [])) for i in wanted}
    off = [r for i in wanted if i.lower() in by_id and not on[i] for r in by_id[i.lower()]]
    actual = {i: (on[i] if i.lower() in by_id else None) for i in wanted}
    if missing or off:
        parts = []
        if missing:
            parts.append("rule(s) not found: " + ", ".join(missing))
        if off:
            parts.append("not enabled: " + ", ".join(r.describe() for r in off))
        return eff.verdict(
            Outcome(
                Status.WARNING,
                "; ".join(parts) + eff.merge_note,
                expected="enabled",
                actual=actual,
                evidence=eff.evidence,
            )
        )
    return eff.verdict(
        Outcome(
            Status.PASS,
            "echo request rule(s) enabled: " + ", ".join(wanted) + eff.merge_note,
            expected="enabled",
            actual=actual,
            evidence=eff.evidence,
        )
    )


def _platform_rule(r: FirewallRule, direction: str) -> bool:
    return (
        may_hold(r, "allow", "ra4", "true")
        and r.enabled_allow
        and r.direction == direction
        and any_covers(r.all("RA4"), WIRESERVER)
    )


@rule(
    FIREWALL,
    id="firewall.azure_platform_rules",
    title="Allow rules for the Azure platform address 168.63.129.16 (inbound with edge traversal, outbound)",
    severity=Severity.REQUIRED,
    source="Configure Windows Firewall rules (Create a rule for the Azure platform network)",
    baselines=CURRENT,
    remediation="New-NetFirewallRule -DisplayName AzurePlatform -Direction Inbound -RemoteAddress "
    "168.63.129.16 -Profile Any -Action Allow -EdgeTraversalPolicy Allow; New-NetFirewallRule -DisplayName "
    "AzurePlatform -Direction Outbound -RemoteAddress 168.63.129.16 -Profile Any -Action Allow",
    rationale="The rule id is a random GUID, so rules are matched on RA4 covering 168.63.129.16, Active, "
    "Allow, together covering every profile (and Edge=TRUE inbound), in the local or the Group Policy "
    "store; local rules do not count in a profile where Group Policy sets AllowLocalPolicyMerge = 0.",
)
def check_platform(ctx: AuditContext) -> Outcome:
    eff = effective_rules(ctx)
    note = eff.merge_note
    inbound = [r for r in eff.rules if _platform_rule(r, "in") and (r.get("Edge") or "").upper() == "TRUE"]
    outbound = [r for r in eff.rules if _platform_rule(r, "out")]
    actual = {"in": [r.id for r in inbound], "out": [r.id for r in outbound]}
    evidence = eff.evidence

    def covers_all(found: list[FirewallRule]) -> bool:
        covered: set[str] = set()
        for r in found:
            covered |= eff.profiles(r)
        return covered >= set(PROFILES)

    missing = [
        d for d, found in (("inbound (with edge traversal)", inbound), ("outbound", outbound)) if not covers_all(found)
    ]
    if missing:
        outcome = Outcome(
            Status.FAIL,
            f"no enabled {' and no '.join(missing)} Allow rule for {WIRESERVER} covering every profile{note}",
            expected="in and out",
            actual=actual,
            evidence=evidence,
        )
    else:
        outcome = Outcome(
            Status.PASS,
            f"Azure platform rules found: in {', '.join(actual['in'])}; out {', '.join(actual['out'])}{note}",
            expected="in and out",
            actual=actual,
            evidence=evidence,
        )
    return eff.verdict(outcome)


def _blocks_wireserver(r: FirewallRule) -> bool:
    if not (may_hold(r, "block") and r.active and r.action == "block") or r.all("App") or r.all("Svc"):
        return False
    if r.get("Protocol") not in (None, "6"):
        return False
    ra4 = r.all("RA4")
    if ra4 and not any_covers(ra4, WIRESERVER):
        return False
    if r.direction == "out":
        rports = r.all("RPort")
        return not rports or any(port_covers(p, 80) or port_covers(p, 32526) for p in rports)
    return r.direction == "in" and bool(ra4)


@rule(
    FIREWALL,
    id="firewall.no_block_wireserver",
    title="No active Block rule covering 168.63.129.16 (local or Group Policy store)",
    severity=Severity.ADVISORY,
    source="Configure Windows Firewall rules (derived: the VM must reach 168.63.129.16)",
    baselines=CURRENT,
    remediation="Remove or narrow the block rule(s) (Remove-NetFirewallRule -Name <id>)",
    rationale="Block rules win over allow rules. Counted: enabled Block rules for TCP or any protocol, "
    "without an App/Svc condition, whose RA4 covers 168.63.129.16 (or, outbound, any address) and whose "
    "remote port covers 80 or 32526. Address keywords such as LocalSubnet are taken as not covering it.",
)
def check_no_block(ctx: AuditContext) -> Outcome:
    eff = effective_rules(ctx)
    # a local block rule does not apply where Group Policy switches the local rules off
    blocking = [r for r in eff.rules if _blocks_wireserver(r) and eff.profiles(r)]
    evidence = eff.evidence
    if blocking:
        outcome = Outcome(
            Status.WARNING,
            f"block rule(s) covering {WIRESERVER}: " + ", ".join(r.describe() for r in blocking) + eff.merge_note,
            expected=[],
            actual=[r.id for r in blocking],
            evidence=evidence,
        )
    else:
        outcome = Outcome(
            Status.PASS, f"no enabled block rule covers {WIRESERVER}", expected=[], actual=[], evidence=evidence
        )
    return eff.verdict(outcome)
