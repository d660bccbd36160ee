"""Power: the High performance plan active, the display never turned off on AC.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Set Windows configurations
for Azure" (``powercfg /setactive SCHEME_MIN``; current text adds ``powercfg /setacvalueindex
SCHEME_CURRENT SUB_VIDEO VIDEOIDLE 0``). Power schemes: ``SYSTEM\\CurrentControlSet\\Control\\Power\\
User\\PowerSchemes`` (ActivePowerScheme, per-scheme overrides), ``...\\User\\Default\\PowerSchemes``
and ``...\\Control\\Power\\PowerSettings\\<subgroup>\\<setting>\\DefaultPowerSchemeValues\\<scheme>``
(factory defaults); Group Policy: ``SOFTWARE\\Policies\\Microsoft\\Power\\PowerSettings``.
"""

from __future__ import annotations

from azvhdaudit.errors import NotChecked
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.values import BOTH, CURRENT, HiveUnavailable, Read, read_value

POWER = r"HKLM\SYSTEM\CurrentControlSet\Control\Power"
SCHEMES = POWER + r"\User\PowerSchemes"
POLICY = r"HKLM\SOFTWARE\Policies\Microsoft\Power\PowerSettings"
SCHEME_MIN = "8c5e7fda-e8bf-4a96-9a85-a6e23a8c635c"
SUB_VIDEO = "7516b95f-f776-4464-8c53-06167f40cc99"
VIDEOIDLE = "3c0bc021-c8a8-4e07-a973-6b14cbcb2b7e"

POWER_GROUP = Group(area="power", source="Set Windows configurations for Azure")
SCHEME_NAMES = {
    SCHEME_MIN: "High performance",
    "381b4222-f694-41f0-9685-ff5bb260df2e": "Balanced",
    "a1841308-3541-4fab-bc81-f71556f20b4a": "Power saver",
    "e9a42b02-d5df-448d-aa00-03f14749eb61": "Ultimate Performance",
}


def normalise_guid(text: object) -> str | None:
    """``{8C5E7FDA-...}`` -> ``8c5e7fda-...``; ``None`` for anything that is not text."""
    if not isinstance(text, str):
        return None
    return text.strip().strip("{}").lower()


def _policy_read(ctx: AuditContext, path: str, name: str) -> tuple[Read | None, str]:
    try:
        return read_value(ctx, path, name, source="policy"), ""
    except HiveUnavailable as err:
        return None, f"; Group Policy not checked ({err.reason})"


def active_scheme(ctx: AuditContext) -> tuple[str | None, str, list[Evidence], str]:
    """(scheme GUID, where it came from, evidence, note)."""
    local = read_value(ctx, SCHEMES, "ActivePowerScheme")
    policy, note = _policy_read(ctx, POLICY, "ActivePowerScheme")
    evidence = ([policy.evidence] if policy else []) + [local.evidence]
    if policy is not None and policy.present:
        return normalise_guid(policy.data), f"Group Policy ({policy.key_path})", evidence, note
    return normalise_guid(local.data), f"{local.key_path}", evidence, note


def _name(guid: str | None) -> str:
    return f"{SCHEME_NAMES.get(guid or '', 'unknown scheme')} {guid}"


@rule(
    POWER_GROUP,
    id="power.high_performance",
    title="Active power scheme is High performance (SCHEME_MIN)",
    severity=Severity.REQUIRED,
    rationale="Power saving (disk, CPU, display) hurts a server VM. A Group Policy 'Select an active power "
    "plan' value is the effective one.",
    baselines=BOTH,
    remediation="powercfg.exe /setactive SCHEME_MIN",
)
def check_scheme(ctx: AuditContext) -> Outcome:
    guid, where, evidence, note = active_scheme(ctx)
    if note:
        # Group Policy's ActivePowerScheme wins over the local one, and it could not be read.
        reason = note.strip("; ")
        raise NotChecked(
            reason,
            f"the local active scheme is {_name(guid) if guid else 'not set'} ({where}); not checked, the "
            f"effective scheme is unknown: {reason}",
            expected=SCHEME_MIN,
            actual=guid,
            evidence=tuple(evidence),
        )
    if guid is None:
        return Outcome(
            Status.FAIL,
            f"no ActivePowerScheme value under {ctx.registry.display_path(SCHEMES)}",
            expected=SCHEME_MIN,
            evidence=tuple(evidence),
        )
    if guid == SCHEME_MIN:
        return Outcome(
            Status.PASS,
            f"active scheme is {_name(guid)} (from {where})",
            expected=SCHEME_MIN,
            actual=guid,
            evidence=tuple(evidence),
        )
    return Outcome(
        Status.FAIL,
        f"active scheme is {_name(guid)} (from {where}), Azure expects {_name(SCHEME_MIN)}",
        expected=SCHEME_MIN,
        actual=guid,
        evidence=tuple(evidence),
    )


@rule(
    POWER_GROUP,
    id="power.display_idle_never",
    title="Turn off the display after: never on AC (VIDEOIDLE AC = 0) in the active scheme",
    severity=Severity.RECOMMENDED,
    rationale="The effective value is looked up as Windows does: Group Policy, then the scheme's user "
    "override (User\\PowerSchemes), then the OEM default (User\\Default\\PowerSchemes), then the factory "
    "default (Control\\Power\\PowerSettings\\<sub>\\<setting>\\DefaultPowerSchemeValues\\<scheme>). The "
    "catalogue expected the defaults under User\\Default\\PowerSchemes only; the Windows 7 and Windows "
    "10 1709 hives hold VIDEOIDLE there nowhere — its factory default is in DefaultPowerSchemeValues "
    "(High performance: AcSettingIndex 900 s). So an image where powercfg was never run gets a warning.",
    baselines=CURRENT,
    remediation="powercfg /setacvalueindex SCHEME_CURRENT SUB_VIDEO VIDEOIDLE 0",
)
def check_videoidle(ctx: AuditContext) -> Outcome:
    guid, _where, evidence, note = active_scheme(ctx)
    if guid is None:
        raise NotChecked(
            "ActivePowerScheme missing",
            "no active power scheme: the display timeout cannot be resolved",
            evidence=tuple(evidence),
        )
    chain: list[tuple[str, str, str, str]] = [
        ("policy", f"{POLICY}\\{VIDEOIDLE}", "ACSettingIndex", "Group Policy"),
        ("registry", f"{SCHEMES}\\{guid}\\{SUB_VIDEO}\\{VIDEOIDLE}", "ACSettingIndex", "the scheme's setting"),
        (
            "registry",
            f"{POWER}\\User\\Default\\PowerSchemes\\{guid}\\{SUB_VIDEO}\\{VIDEOIDLE}",
            "ACSettingIndex",
            "the OEM default",
        ),
        (
            "registry",
            f"{POWER}\\PowerSettings\\{SUB_VIDEO}\\{VIDEOIDLE}\\DefaultPowerSchemeValues\\{guid}",
            "AcSettingIndex",
            "the factory default",
        ),
    ]
    found: Read | None = None
    label = ""
    for source, path, name, what in chain:
        if source == "policy":
            read, pnote = _policy_read(ctx, path, name)
            note = note or pnote
        else:
            read = read_value(ctx, path, name)
        if read is None:
            continue
        evidence.append(read.evidence)
        if read.present:
            found, label = read, what
            break
    if note:
        # Group Policy sets both the active scheme and the display timeout, over the local values.
        reason = note.strip("; ")
        local = (
            f"the local value is {found.data} ({label} at {found.key_path})"
            if found is not None
            else f"no local value for scheme {_name(guid)}"
        )
        raise NotChecked(
            reason,
            f"{local}; not checked, the effective display timeout is unknown: {reason}",
            expected=0,
            actual=found.data if found is not None else None,
            evidence=tuple(evidence),
        )
    if found is None or not isinstance(found.data, int):
        raise NotChecked(
            "no override and no default found",
            f"VIDEOIDLE (AC) is set nowhere for scheme {_name(guid)}",
            evidence=tuple(evidence),
        )
    seconds = found.data
    text = "never" if seconds == 0 else f"{seconds} s"
    if seconds == 0:
        return Outcome(
            Status.PASS,
            f"display turns off after: never (AC), from {label} at {found.key_path}",
            expected=0,
            actual=0,
            evidence=tuple(evidence),
        )
    return Outcome(
        Status.WARNING,
        f"display turns off after {text} on AC, from {label} at {found.key_path}; Azure expects never (0)",
        expected=0,
        actual=seconds,
        evidence=tuple(evidence),
    )
