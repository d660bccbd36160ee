"""Remote Desktop settings Azure needs to reach the VM.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Update remote desktop
registry settings" (current text and the 2017 text); Group Policy "Remote Desktop Session Host"
settings, stored under ``HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services``.
User rights: ntlsa.h ``SECURITY_ACCESS_*``; the LSA stores an account's system access rights as the
4-byte default value of ``SECURITY\\Policy\\Accounts\\<SID>\\ActSysAc`` (decoded by :mod:`azvhdaudit.account_facts`,
as is the built-in Administrator's ``F`` record in SAM).
"""

from __future__ import annotations

from azvhdaudit.account_facts import (
    ACB_DISABLED,
    ADMINISTRATOR_RID,
    LSA_ACCOUNTS,
    SAM_USERS,
    SE_DENY_NETWORK_LOGON,
    SE_DENY_REMOTE_INTERACTIVE_LOGON,
    SE_NETWORK_LOGON,
    SE_REMOTE_INTERACTIVE_LOGON,
    system_access_mask,
    user_account_flags,
)
from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, rule
from azvhdaudit.rules.values import (
    BOTH,
    CURRENT,
    Y2017,
    Group,
    Item,
    ValueRule,
    open_key,
    register_values,
    value_evidence,
)

TS = r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server"
RDP_TCP = TS + r"\WinStations\RDP-Tcp"
TS_POLICY = r"HKLM\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services"
_SET = "Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp'"
_SET_POLICY = "Set-ItemProperty -Path 'HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services'"

RDP = Group(
    area="rdp",
    source="Update remote desktop registry settings",
    rationale="Azure reaches a new VM over RDP on port 3389; these settings keep the listener reachable.",
)

ROWS = (
    ValueRule(
        id="rdp.enabled",
        title="RDP enabled (fDenyTSConnections = 0)",
        group=RDP,
        severity=Severity.REQUIRED,
        items=(Item(TS, "fDenyTSConnections", 0, policy=(TS_POLICY,)),),
        remediation="Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server' "
        "-Name fDenyTSConnections -Value 0 -Type DWord -Force",
        rationale="With fDenyTSConnections = 1 nobody can log on to the VM in Azure. The Group Policy value, "
        "when set, is the one that applies; it is reported with the local value.",
    ),
    ValueRule(
        id="rdp.enabled_policy",
        title="RDP not disabled by Group Policy",
        group=RDP,
        severity=Severity.REQUIRED,
        items=(Item(TS_POLICY, "fDenyTSConnections", 0, if_absent="pass"),),
        remediation=_SET_POLICY + " -Name fDenyTSConnections -Value 0 -Type DWord -Force",
        rationale="Policy 'Allow users to connect remotely by using Remote Desktop Services'. Not configured "
        "(no value) is fine: the doc says the error for a missing policy key can be ignored.",
    ),
    ValueRule(
        id="rdp.port",
        title="RDP listener port is 3389",
        group=RDP,
        severity=Severity.REQUIRED,
        items=(Item(RDP_TCP, "PortNumber", 3389),),
        remediation=_SET + " -Name PortNumber -Value 3389 -Type DWord -Force",
        rationale="Azure's default NSG rules and the portal's Connect button target 3389; change the port only "
        "after deployment.",
    ),
    ValueRule(
        id="rdp.lan_adapter",
        title="RDP listener bound to every network interface (LanAdapter = 0)",
        group=RDP,
        severity=Severity.REQUIRED,
        items=(Item(RDP_TCP, "LanAdapter", 0),),
        remediation=_SET + " -Name LanAdapter -Value 0 -Type DWord -Force",
        rationale="A listener bound to one adapter of the old host does not listen on the Azure NIC.",
    ),
    ValueRule(
        id="rdp.nla",
        title="Network Level Authentication required (UserAuthentication = 1)",
        group=RDP,
        severity=Severity.REQUIRED,
        items=(Item(RDP_TCP, "UserAuthentication", 1, policy=(TS_POLICY,)),),
        remediation=_SET + " -Name UserAuthentication -Value 1 -Type DWord -Force",
    ),
    ValueRule(
        id="rdp.nla_policy",
        title="NLA not disabled by Group Policy",
        group=RDP,
        severity=Severity.REQUIRED,
        items=(Item(TS_POLICY, "UserAuthentication", 1, if_absent="pass"),),
        remediation="Set the policy 'Require user authentication for remote connections by using Network Level "
        "Authentication' to Enabled (or Not configured)",
        rationale="Policy value absent = not configured = the local setting applies.",
    ),
    ValueRule(
        id="rdp.security_layer",
        title="RDP security layer = Negotiate (SecurityLayer = 1)",
        group=RDP,
        severity=Severity.RECOMMENDED,
        items=(Item(RDP_TCP, "SecurityLayer", 1),),
        baselines=Y2017,
        remediation="Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\"
        'WinStations\\RDP-Tcp\' -name "SecurityLayer" 1 -Type DWord',
        rationale="Only the 2017 text sets it; the current text dropped the line (2 = TLS works with NLA too).",
    ),
    ValueRule(
        id="rdp.sec_protocol_negotiation",
        title="Security protocol negotiation allowed (fAllowSecProtocolNegotiation = 1)",
        group=RDP,
        severity=Severity.RECOMMENDED,
        items=(Item(RDP_TCP, "fAllowSecProtocolNegotiation", 1),),
        baselines=Y2017,
        remediation="Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\"
        'WinStations\\RDP-Tcp\' -name "fAllowSecProtocolNegotiation" 1 -Type DWord',
        rationale="Only the 2017 text sets it; the current text dropped the line.",
    ),
    ValueRule(
        id="rdp.keepalive_policy",
        title="RDP keep-alive enabled with a 1-minute interval (policy values)",
        group=RDP,
        severity=Severity.RECOMMENDED,
        items=(
            Item(TS_POLICY, "KeepAliveEnable", 1, if_absent="warn"),
            Item(TS_POLICY, "KeepAliveInterval", 1, if_absent="warn"),
        ),
        remediation=_SET_POLICY
        + " -Name KeepAliveEnable -Value 1 -Type DWord -Force; "
        + _SET_POLICY
        + " -Name KeepAliveInterval -Value 1 -Type DWord -Force",
        rationale="The doc writes these into the policy key itself, so a missing value means the step was "
        "skipped (a warning), not 'not configured'.",
    ),
    ValueRule(
        id="rdp.keepalive_timeout",
        title="RDP-Tcp KeepAliveTimeout = 1",
        group=RDP,
        severity=Severity.RECOMMENDED,
        items=(Item(RDP_TCP, "KeepAliveTimeout", 1, if_absent="warn"),),
        remediation=_SET + " -Name KeepAliveTimeout -Value 1 -Type DWord -Force",
    ),
    ValueRule(
        id="rdp.autoreconnect_policy",
        title="Automatic reconnection not disabled by Group Policy",
        group=RDP,
        severity=Severity.RECOMMENDED,
        items=(Item(TS_POLICY, "fDisableAutoReconnect", 0, if_absent="pass"),),
        remediation=_SET_POLICY + " -Name fDisableAutoReconnect -Value 0 -Type DWord -Force",
    ),
    ValueRule(
        id="rdp.inherit_reconnect_same",
        title="RDP-Tcp fInheritReconnectSame = 1",
        group=RDP,
        severity=Severity.RECOMMENDED,
        items=(Item(RDP_TCP, "fInheritReconnectSame", 1, if_absent="warn"),),
        remediation=_SET + " -Name fInheritReconnectSame -Value 1 -Type DWord -Force",
    ),
    ValueRule(
        id="rdp.reconnect_same",
        title="RDP-Tcp fReconnectSame = 0",
        group=RDP,
        severity=Severity.RECOMMENDED,
        items=(Item(RDP_TCP, "fReconnectSame", 0, if_absent="warn"),),
        remediation=_SET + " -Name fReconnectSame -Value 0 -Type DWord -Force",
    ),
    ValueRule(
        id="rdp.max_instance_count",
        title="RDP-Tcp MaxInstanceCount = 4294967295 (no listener limit)",
        group=RDP,
        severity=Severity.RECOMMENDED,
        items=(Item(RDP_TCP, "MaxInstanceCount", 0xFFFFFFFF, if_absent="warn"),),
        remediation=_SET + " -Name MaxInstanceCount -Value 4294967295 -Type DWord -Force",
    ),
    ValueRule(
        id="rdp.max_instance_policy",
        title="'Limit number of connections' policy not restricting",
        group=RDP,
        severity=Severity.RECOMMENDED,
        items=(Item(TS_POLICY, "MaxInstanceCount", 999999, if_absent="pass"),),
        remediation="Set the policy 'Limit number of connections' to Not configured (or 999999 = unlimited)",
        rationale="The doc only asks that the policy does not revert the setting; 999999 is 'unlimited' in "
        "the policy editor.",
    ),
    ValueRule(
        id="rdp.no_custom_certificate",
        title="No certificate pinned to the RDP listener (SSLCertificateSHA1Hash absent)",
        group=RDP,
        severity=Severity.REQUIRED,
        items=(Item(RDP_TCP, "SSLCertificateSHA1Hash", compare="absent", types=(RegType.BINARY,)),),
        remediation="if ((Get-Item -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations"
        "\\RDP-Tcp').Property -contains 'SSLCertificateSHA1Hash') { Remove-ItemProperty -Path 'HKLM:\\SYSTEM\\"
        "CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp' -Name SSLCertificateSHA1Hash -Force }",
        rationale="A pinned self-signed certificate of the old host can keep the listener from starting; "
        "without the value the listener makes its own.",
    ),
)

register_values(ROWS)


# --- user rights (SECURITY hive) ---------------------------------------------------------------

ACCOUNTS = LSA_ACCOUNTS

SIDS = {
    "S-1-5-32-544": "Administrators",
    "S-1-5-32-545": "Users",
    "S-1-5-32-551": "Backup Operators",
    "S-1-5-32-555": "Remote Desktop Users",
    "S-1-1-0": "Everyone",
    "S-1-5-113": "Local account",
    "S-1-5-114": "Local account and member of Administrators",
}

_RIGHTS_SOURCE = "Verify the VM (user rights assignment)"


def _access_mask(ctx: AuditContext, sid: str) -> tuple[int | None, Evidence]:
    """The account's system-access mask (``ActSysAc`` default value), ``None`` when not granted any."""
    path = f"{ACCOUNTS}\\{sid}\\ActSysAc"
    key = open_key(ctx, path)
    value = key.value("") if key is not None else None
    mask = system_access_mask(value.raw) if value is not None and isinstance(value.raw, bytes) else None
    return mask, value_evidence(ctx, path, "", value, "registry", note=SIDS.get(sid, sid))


def _names(sids: list[str]) -> str:
    return ", ".join(f"{SIDS.get(s, s)} ({s})" for s in sids)


@rule(
    RDP,
    id="rdp.user_right_no_deny",
    title="No deny-network / deny-RDS logon rights for Administrators, Users, Everyone, local accounts",
    severity=Severity.REQUIRED,
    source=_RIGHTS_SOURCE,
    baselines=BOTH,
    remediation="Remove the accounts from 'Deny access to this computer from the network' and 'Deny log on "
    "through Remote Desktop Services' (secpol.msc > Local Policies > User Rights Assignment)",
    hives=("SECURITY",),
    rationale="A deny right wins over every allow right; Azure logons come over the network via RDP. "
    "Rights delivered by a domain GPO that was never applied are not visible offline.",
)
def check_no_deny(ctx: AuditContext) -> Outcome:
    denied, evidence = [], []
    for sid in ("S-1-5-32-544", "S-1-5-32-545", "S-1-1-0", "S-1-5-113", "S-1-5-114", "S-1-5-32-555"):
        mask, ev = _access_mask(ctx, sid)
        evidence.append(ev)
        if mask is not None and mask & (SE_DENY_NETWORK_LOGON | SE_DENY_REMOTE_INTERACTIVE_LOGON):
            denied.append(sid)
    if denied:
        return Outcome(
            Status.FAIL,
            f"deny logon rights are assigned to {_names(denied)}",
            expected="no deny rights",
            actual=denied,
            evidence=tuple(evidence),
        )
    return Outcome(
        Status.PASS,
        "no deny-network or deny-RDS logon right for the listed accounts",
        expected="no deny rights",
        actual=[],
        evidence=tuple(evidence),
    )


@rule(
    RDP,
    id="rdp.user_right_network_logon",
    title="'Access this computer from the network' lists Administrators, Backup Operators, Everyone, Users",
    severity=Severity.RECOMMENDED,
    source=_RIGHTS_SOURCE,
    baselines=CURRENT,
    remediation="Grant 'Access this computer from the network' to Administrators, Backup Operators, "
    "Everyone and Users (secpol.msc > Local Policies > User Rights Assignment)",
    rationale="A Remote Desktop logon with Network Level Authentication (rdp.nla) authenticates over the network "
    "first: an account without 'Access this computer from the network' cannot log on over RDP. The doc lists "
    "the four groups Windows grants the right by default.",
    hives=("SECURITY",),
)
def check_network_logon(ctx: AuditContext) -> Outcome:
    missing, evidence = [], []
    for sid in ("S-1-5-32-544", "S-1-5-32-551", "S-1-1-0", "S-1-5-32-545"):
        mask, ev = _access_mask(ctx, sid)
        evidence.append(ev)
        if mask is None or not mask & SE_NETWORK_LOGON:
            missing.append(sid)
    if missing:
        return Outcome(
            Status.WARNING,
            f"'Access this computer from the network' is not granted to {_names(missing)}",
            expected="granted",
            actual=missing,
            evidence=tuple(evidence),
        )
    return Outcome(
        Status.PASS,
        "'Access this computer from the network' is granted to all four groups",
        expected="granted",
        actual=[],
        evidence=tuple(evidence),
    )


@rule(
    RDP,
    id="rdp.user_right_allow_rds",
    title="'Allow log on through Remote Desktop Services' includes Administrators",
    severity=Severity.RECOMMENDED,
    source=_RIGHTS_SOURCE,
    baselines=BOTH,
    remediation="Grant 'Allow log on through Remote Desktop Services' to Administrators (secpol.msc > "
    "Local Policies > User Rights Assignment)",
    rationale="Logging on through Remote Desktop needs the 'Allow log on through Remote Desktop Services' right; "
    "Windows grants it to Administrators by default, and without it the VM's administrator cannot log on over "
    "RDP.",
    hives=("SECURITY",),
)
def check_allow_rds(ctx: AuditContext) -> Outcome:
    mask, ev = _access_mask(ctx, "S-1-5-32-544")
    if mask is not None and mask & SE_REMOTE_INTERACTIVE_LOGON:
        return Outcome(
            Status.PASS,
            "Administrators may log on through Remote Desktop Services",
            expected=True,
            actual=True,
            evidence=(ev,),
        )
    return Outcome(
        Status.WARNING,
        "Administrators are not granted 'Allow log on through Remote Desktop Services'",
        expected=True,
        actual=False,
        evidence=(ev,),
    )


SAM_ADMIN = f"{SAM_USERS}\\{ADMINISTRATOR_RID:08X}"


@rule(
    RDP,
    id="rdp.builtin_admin_known",
    title="Built-in Administrator account state reported (its password must be known)",
    severity=Severity.ADVISORY,
    source="Verify the VM",
    baselines=BOTH,
    remediation="Make sure the built-in Administrator's password is known (net user Administrator *)",
    hives=("SAM",),
    rationale="Offline only the enabled flag can be read (ACB flags at offset 0x38 of the account's F "
    "value); whether the password is known is a manual step.",
)
def check_builtin_admin(ctx: AuditContext) -> Outcome:
    key = open_key(ctx, SAM_ADMIN)
    value = key.value("F") if key is not None else None
    ev = value_evidence(ctx, SAM_ADMIN, "F", value, "registry")
    flags = user_account_flags(value.raw) if value is not None else None
    if flags is None:
        return Outcome(
            Status.WARNING,
            f"the built-in Administrator account record (F under {SAM_ADMIN}) was not found or is short",
            evidence=(ev,),
        )
    enabled = not flags & ACB_DISABLED
    state = "enabled" if enabled else "disabled"
    return Outcome(
        Status.PASS,
        f"the built-in Administrator account is {state}; make sure its password is known",
        actual=state,
        evidence=(ev,),
    )
