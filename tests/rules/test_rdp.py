"""Remote Desktop rules: compliant, non-compliant, missing-evidence and Group Policy cases."""

from __future__ import annotations

import pytest

from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Status

from .guestkit import RDP_TCP, TS, TS_POLICY, Case, check_case, params

P, F, W, NC = Status.PASS, Status.FAIL, Status.WARNING, Status.NOT_CHECKED
ADMIN = r"Policy\Accounts\S-1-5-32-544\ActSysAc"
EVERYONE = r"Policy\Accounts\S-1-1-0\ActSysAc"
SAM_ADMIN = r"SAM\Domains\Account\Users\000001F4"

CASES = [
    Case("rdp.enabled", "compliant", P, says="fDenyTSConnections is 0"),
    Case("rdp.enabled", "denied", F, system={TS: {"fDenyTSConnections": 1}}, says="is 1, Azure expects 0"),
    Case(
        "rdp.enabled",
        "value-missing",
        F,
        system={TS: {"fDenyTSConnections": None}},
        says="value fDenyTSConnections is missing",
    ),
    Case(
        "rdp.enabled",
        "policy-wins-deny",
        F,
        software={TS_POLICY: {"fDenyTSConnections": 1}},
        says="set by Group Policy",
    ),
    Case(
        "rdp.enabled",
        "policy-wins-allow",
        P,
        system={TS: {"fDenyTSConnections": 1}},
        software={TS_POLICY: {"fDenyTSConnections": 0}},
        says="local value 1",
    ),
    Case(
        "rdp.enabled",
        "software-missing-local-only",
        NC,
        drop=("SOFTWARE",),
        says="local fDenyTSConnections = 0 would pass; Group Policy could override it, and SOFTWARE could not be read",
    ),
    Case(
        "rdp.enabled",
        "software-missing-local-fails",
        NC,
        system={TS: {"fDenyTSConnections": 1}},
        drop=("SOFTWARE",),
        says="local fDenyTSConnections = 1 would fail; Group Policy could override it, and SOFTWARE could not be read",
    ),
    Case("rdp.enabled", "system-missing", NC, drop=("SYSTEM",)),
    Case("rdp.enabled_policy", "not-configured", P, says="not configured"),
    Case("rdp.enabled_policy", "policy-denies", F, software={TS_POLICY: {"fDenyTSConnections": 1}}),
    Case("rdp.enabled_policy", "software-missing", NC, drop=("SOFTWARE",)),
    Case("rdp.port", "compliant", P),
    Case("rdp.port", "moved", F, system={RDP_TCP: {"PortNumber": 3390}}, says="PortNumber is 3390, Azure expects 3389"),
    Case("rdp.port", "string-type", F, system={RDP_TCP: {"PortNumber": "3389"}}, says="REG_SZ"),
    Case("rdp.port", "key-missing", F, system={RDP_TCP: None}, says="does not exist"),
    Case("rdp.port", "system-missing", NC, drop=("SYSTEM",)),
    Case(
        "rdp.port",
        "no-select-two-sets",
        NC,
        system={"Select": None, r"ControlSet002\Control": {"x": 1}},
        says="current control set",
    ),
    Case("rdp.lan_adapter", "compliant", P),
    Case("rdp.lan_adapter", "bound", F, system={RDP_TCP: {"LanAdapter": 2}}),
    Case("rdp.lan_adapter", "system-missing", NC, drop=("SYSTEM",)),
    Case("rdp.nla", "compliant", P),
    Case("rdp.nla", "off", F, system={RDP_TCP: {"UserAuthentication": 0}}),
    Case("rdp.nla", "policy-off", F, software={TS_POLICY: {"UserAuthentication": 0}}, says="Group Policy"),
    Case("rdp.nla", "system-missing", NC, drop=("SYSTEM",)),
    Case("rdp.nla_policy", "not-configured", P),
    Case("rdp.nla_policy", "disabled", F, software={TS_POLICY: {"UserAuthentication": 0}}),
    Case("rdp.nla_policy", "software-missing", NC, drop=("SOFTWARE",)),
    Case("rdp.security_layer", "compliant", P, profile="azure-2017"),
    Case("rdp.security_layer", "tls", W, profile="azure-2017", system={RDP_TCP: {"SecurityLayer": 2}}),
    Case("rdp.security_layer", "system-missing", NC, profile="azure-2017", drop=("SYSTEM",)),
    Case("rdp.sec_protocol_negotiation", "compliant", P, profile="azure-2017"),
    Case(
        "rdp.sec_protocol_negotiation",
        "off",
        W,
        profile="azure-2017",
        system={RDP_TCP: {"fAllowSecProtocolNegotiation": 0}},
    ),
    Case("rdp.sec_protocol_negotiation", "system-missing", NC, profile="azure-2017", drop=("SYSTEM",)),
    Case("rdp.keepalive_policy", "compliant", P),
    Case("rdp.keepalive_policy", "not-written", W, software={TS_POLICY: {"KeepAliveEnable": None}}, says="missing"),
    Case("rdp.keepalive_policy", "interval-5", W, software={TS_POLICY: {"KeepAliveInterval": 5}}),
    Case("rdp.keepalive_policy", "software-missing", NC, drop=("SOFTWARE",)),
    Case("rdp.keepalive_timeout", "compliant", P),
    Case("rdp.keepalive_timeout", "zero", W, system={RDP_TCP: {"KeepAliveTimeout": 0}}),
    Case("rdp.keepalive_timeout", "system-missing", NC, drop=("SYSTEM",)),
    Case("rdp.autoreconnect_policy", "not-configured", P),
    Case("rdp.autoreconnect_policy", "disabled", W, software={TS_POLICY: {"fDisableAutoReconnect": 1}}),
    Case("rdp.autoreconnect_policy", "software-missing", NC, drop=("SOFTWARE",)),
    Case("rdp.inherit_reconnect_same", "compliant", P),
    Case("rdp.inherit_reconnect_same", "zero", W, system={RDP_TCP: {"fInheritReconnectSame": 0}}),
    Case("rdp.inherit_reconnect_same", "system-missing", NC, drop=("SYSTEM",)),
    Case("rdp.reconnect_same", "compliant", P),
    Case("rdp.reconnect_same", "one", W, system={RDP_TCP: {"fReconnectSame": 1}}),
    Case("rdp.reconnect_same", "system-missing", NC, drop=("SYSTEM",)),
    Case("rdp.max_instance_count", "compliant", P),
    Case("rdp.max_instance_count", "limited", W, system={RDP_TCP: {"MaxInstanceCount": 2}}),
    Case("rdp.max_instance_count", "system-missing", NC, drop=("SYSTEM",)),
    Case("rdp.max_instance_policy", "not-configured", P),
    Case("rdp.max_instance_policy", "unlimited", P, software={TS_POLICY: {"MaxInstanceCount": 999999}}),
    Case("rdp.max_instance_policy", "one", W, software={TS_POLICY: {"MaxInstanceCount": 1}}),
    Case("rdp.max_instance_policy", "software-missing", NC, drop=("SOFTWARE",)),
    Case("rdp.no_custom_certificate", "compliant", P, says="absent"),
    Case(
        "rdp.no_custom_certificate",
        "pinned",
        F,
        system={RDP_TCP: {"SSLCertificateSHA1Hash": bytes(20)}},
        says="expects it absent",
    ),
    Case("rdp.no_custom_certificate", "system-missing", NC, drop=("SYSTEM",)),
    Case("rdp.user_right_no_deny", "compliant", P),
    Case(
        "rdp.user_right_no_deny",
        "everyone-denied",
        F,
        security={EVERYONE: {"": (RegType.BINARY, (0x80).to_bytes(4, "little"))}},
        says="Everyone",
    ),
    Case("rdp.user_right_no_deny", "security-missing", NC, drop=("SECURITY",)),
    Case("rdp.user_right_network_logon", "compliant", P),
    Case(
        "rdp.user_right_network_logon",
        "users-missing",
        W,
        security={r"Policy\Accounts\S-1-5-32-545": None},
        says="Users",
    ),
    Case("rdp.user_right_network_logon", "security-missing", NC, drop=("SECURITY",)),
    Case("rdp.user_right_allow_rds", "compliant", P),
    Case(
        "rdp.user_right_allow_rds",
        "not-granted",
        W,
        security={ADMIN: {"": (RegType.BINARY, (0x2).to_bytes(4, "little"))}},
    ),
    Case("rdp.user_right_allow_rds", "security-missing", NC, drop=("SECURITY",)),
    Case("rdp.builtin_admin_known", "enabled", P, says="enabled"),
    Case("rdp.builtin_admin_known", "record-missing", W, sam={SAM_ADMIN: None}, says="not found"),
    Case("rdp.builtin_admin_known", "sam-missing", NC, drop=("SAM",)),
]


@pytest.mark.parametrize("case", params(CASES))
def test_rdp(case: Case) -> None:
    check_case(case)


def test_disabled_admin_is_reported() -> None:
    disabled = bytes(0x38) + (0x0211).to_bytes(2, "little") + bytes(0x16)
    result = check_case(
        Case("rdp.builtin_admin_known", "disabled", P, sam={SAM_ADMIN: {"F": (RegType.BINARY, disabled)}})
    )
    assert "is disabled" in result.message


def test_policy_evidence_lists_both_sources() -> None:
    result = check_case(Case("rdp.enabled", "both", F, software={TS_POLICY: {"fDenyTSConnections": 1}}))
    sources = [e.source for e in result.evidence]
    assert sources == ["policy", "registry"]
    local = result.evidence[1]
    assert local.control_set == "ControlSet001"
    assert local.key.endswith(r"ControlSet001\Control\Terminal Server")
    assert local.type == "REG_DWORD" and local.raw == "00000000" and local.actual == 0
    assert result.actual == 1
