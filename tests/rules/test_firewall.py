"""Firewall rules: profiles, the Remote Desktop group, ICMP echo, the Azure platform rules."""

from __future__ import annotations

import pytest

from azvhdaudit.report import Status

from .guestkit import FW, FW_POLICY, FW_RULES, RULES_OK, Case, check_case, params

P, F, W, NC = Status.PASS, Status.FAIL, Status.WARNING, Status.NOT_CHECKED
PLATFORM_IN = "{0b5a3f3e-1111-4c4c-9d9d-000000000001}"
PLATFORM_OUT = "{0b5a3f3e-1111-4c4c-9d9d-000000000002}"


def off(rule_id: str) -> dict[str, str]:
    return {rule_id: RULES_OK[rule_id].replace("Active=TRUE", "Active=FALSE")}


CASES = [
    Case("firewall.profiles_enabled", "compliant", P),
    Case(
        "firewall.profiles_enabled",
        "public-off",
        F,
        system={FW + r"\PublicProfile": {"EnableFirewall": 0}},
        says="(Public)",
    ),
    Case(
        "firewall.profiles_enabled",
        "private-missing",
        F,
        system={FW + r"\StandardProfile": None},
        says="does not exist",
    ),
    Case(
        "firewall.profiles_enabled",
        "policy-turns-off",
        F,
        software={FW_POLICY + r"\PrivateProfile": {"EnableFirewall": 0}},
        says="Group Policy",
    ),
    Case(
        "firewall.profiles_enabled",
        "policy-turns-on",
        P,
        system={FW + r"\DomainProfile": {"EnableFirewall": 0}},
        software={FW_POLICY + r"\DomainProfile": {"EnableFirewall": 1}},
    ),
    Case("firewall.profiles_enabled", "system-missing", NC, drop=("SYSTEM",)),
    Case("firewall.profiles_policy", "not-configured", P),
    Case(
        "firewall.profiles_policy",
        "no-exceptions",
        F,
        software={FW_POLICY + r"\DomainProfile": {"DoNotAllowExceptions": 1}},
    ),
    Case("firewall.profiles_policy", "software-missing", NC, drop=("SOFTWARE",)),
    Case("firewall.rdp_policy", "not-configured", P),
    Case(
        "firewall.rdp_policy",
        "disabled",
        F,
        software={FW_POLICY + r"\StandardProfile\Services\RemoteDesktop": {"Enabled": 0}},
    ),
    Case(
        "firewall.rdp_policy",
        "scoped",
        W,
        software={
            FW_POLICY + r"\DomainProfile\Services\RemoteDesktop": {"Enabled": 1, "RemoteAddresses": "localsubnet"}
        },
    ),
    Case("firewall.rdp_policy", "software-missing", NC, drop=("SOFTWARE",)),
    Case("firewall.icmp_policy", "not-configured", P),
    Case(
        "firewall.icmp_policy",
        "blocked",
        W,
        software={FW_POLICY + r"\DomainProfile\IcmpSettings": {"AllowInboundEchoRequest": 0}},
    ),
    Case("firewall.icmp_policy", "software-missing", NC, drop=("SOFTWARE",)),
    Case("firewall.rdp_rules_enabled", "compliant", P, says="every profile"),
    Case(
        "firewall.rdp_rules_enabled",
        "udp-off",
        F,
        system={FW_RULES: off("RemoteDesktop-UserMode-In-UDP")},
        says="RemoteDesktop-UserMode-In-UDP",
    ),
    Case(
        "firewall.rdp_rules_enabled",
        "tcp-public-only-domain",
        F,
        system={
            FW_RULES: {
                "RemoteDesktop-UserMode-In-TCP": RULES_OK["RemoteDesktop-UserMode-In-TCP"].replace(
                    "Dir=In|", "Dir=In|Profile=Domain|"
                )
            }
        },
        says="private/public",
    ),
    Case(
        "firewall.rdp_rules_enabled",
        "no-group",
        F,
        system={FW_RULES: {k: None for k in RULES_OK if "RemoteDesktop" in k}},
        says="no rule of the Remote Desktop group",
    ),
    Case(
        "firewall.rdp_rules_enabled",
        "policy-blocks",
        F,
        software={
            FW_POLICY + r"\FirewallRules": {
                "block3389": "v2.30|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|Name=NoRDP|"
            }
        },
        says="blocked by",
    ),
    Case("firewall.rdp_rules_enabled", "system-missing", NC, drop=("SYSTEM",)),
    # the local rules alone would pass; Group Policy could block or switch them off
    Case("firewall.rdp_rules_enabled", "software-missing", NC, drop=("SOFTWARE",), says="local rules"),
    Case("firewall.icmp_echo_enabled", "compliant", P),
    Case("firewall.icmp_echo_enabled", "off", W, system={FW_RULES: off("FPS-ICMP4-ERQ-In")}),
    Case("firewall.icmp_echo_enabled", "noscope-off-current", P, system={FW_RULES: off("FPS-ICMP4-ERQ-In-NoScope")}),
    Case(
        "firewall.icmp_echo_enabled",
        "noscope-off-2017",
        W,
        profile="azure-2017",
        system={FW_RULES: off("FPS-ICMP4-ERQ-In-NoScope")},
        says="NoScope",
    ),
    Case("firewall.icmp_echo_enabled", "system-missing", NC, drop=("SYSTEM",)),
    Case("firewall.azure_platform_rules", "compliant", P),
    Case("firewall.azure_platform_rules", "no-outbound", F, system={FW_RULES: {PLATFORM_OUT: None}}, says="outbound"),
    Case(
        "firewall.azure_platform_rules",
        "inbound-no-edge",
        F,
        system={FW_RULES: {PLATFORM_IN: RULES_OK[PLATFORM_IN].replace("Edge=TRUE|", "")}},
        says="inbound",
    ),
    Case(
        "firewall.azure_platform_rules",
        "range-covers",
        P,
        system={FW_RULES: {PLATFORM_OUT: RULES_OK[PLATFORM_OUT].replace("168.63.129.16", "168.63.0.0/16")}},
    ),
    Case(
        "firewall.azure_platform_rules",
        "from-policy-store",
        P,
        system={FW_RULES: {PLATFORM_OUT: None}},
        software={FW_POLICY + r"\FirewallRules": {"gpo-out": RULES_OK[PLATFORM_OUT]}},
    ),
    Case("firewall.azure_platform_rules", "system-missing", NC, drop=("SYSTEM",)),
    # the local rules alone would pass; Group Policy could block or switch them off
    Case("firewall.azure_platform_rules", "software-missing", NC, drop=("SOFTWARE",), says="local rules"),
    Case("firewall.no_block_wireserver", "compliant", P),
    Case(
        "firewall.no_block_wireserver",
        "block-out-all",
        W,
        system={FW_RULES: {"blk": "v2.30|Action=Block|Active=TRUE|Dir=Out|Protocol=6|RA4=168.63.129.0/24|Name=x|"}},
        says="blk",
    ),
    Case(
        "firewall.no_block_wireserver",
        "block-other-port",
        P,
        system={
            FW_RULES: {"blk": "v2.30|Action=Block|Active=TRUE|Dir=Out|Protocol=6|RPort=443|RA4=168.63.129.16|Name=x|"}
        },
    ),
    Case(
        "firewall.no_block_wireserver",
        "inactive-block",
        P,
        system={FW_RULES: {"blk": "v2.30|Action=Block|Active=FALSE|Dir=Out|RA4=168.63.129.16|Name=x|"}},
    ),
    Case("firewall.no_block_wireserver", "system-missing", NC, drop=("SYSTEM",)),
    Case(
        "firewall.no_block_wireserver",
        "software-missing-local-block",
        NC,
        system={FW_RULES: {"blk": "v2.30|Action=Block|Active=TRUE|Dir=Out|Protocol=6|RA4=168.63.129.0/24|Name=x|"}},
        drop=("SOFTWARE",),
        says="blk",
    ),
    # the local rules alone would pass; Group Policy could block or switch them off
    Case("firewall.no_block_wireserver", "software-missing", NC, drop=("SOFTWARE",), says="local rules"),
]


@pytest.mark.parametrize("case", params(CASES))
def test_firewall(case: Case) -> None:
    check_case(case)


def test_azure_platform_rules_not_in_2017() -> None:
    from azvhdaudit.engine import select_rules

    assert "firewall.azure_platform_rules" not in {r.id for r in select_rules("azure-2017")}
    assert "firewall.azure_platform_rules" in {r.id for r in select_rules("azure")}


MERGE_OFF = [
    Case(
        "firewall.rdp_rules_enabled",
        "local-merge-off",
        F,
        software={FW_POLICY + r"\PublicProfile": {"AllowLocalPolicyMerge": 0}},
        says="AllowLocalPolicyMerge",
    ),
    Case(
        "firewall.rdp_rules_enabled",
        "local-merge-off-policy-rule",
        P,
        software={
            FW_POLICY + r"\PublicProfile": {"AllowLocalPolicyMerge": 0},
            FW_POLICY + r"\FirewallRules": {"gpo-rdp": RULES_OK["RemoteDesktop-UserMode-In-TCP"]},
        },
    ),
    Case(
        "firewall.azure_platform_rules",
        "local-merge-off",
        F,
        software={FW_POLICY + r"\DomainProfile": {"AllowLocalPolicyMerge": 0}},
    ),
    Case(
        "winrm.firewall_http_in",
        "local-merge-off",
        F,
        software={FW_POLICY + r"\PrivateProfile": {"AllowLocalPolicyMerge": 0}},
        says="private",
    ),
]
CASES += MERGE_OFF


@pytest.mark.parametrize("case", params(MERGE_OFF))
def test_group_policy_can_switch_local_rules_off(case: Case) -> None:
    check_case(case)
