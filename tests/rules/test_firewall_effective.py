"""Every firewall-rule check reads one effective rule set: the local store, the Group Policy store and
AllowLocalPolicyMerge, with one "not checked" reasoning where SOFTWARE cannot be read."""

from __future__ import annotations

import pytest

from azvhdaudit.report import Status

from .guestkit import FW_POLICY, FW_RULES, RULES_OK, Case, check_case, params, run_case

P, F, W, NC = Status.PASS, Status.FAIL, Status.WARNING, Status.NOT_CHECKED
POLICY_RULES = FW_POLICY + r"\FirewallRules"
ALL_MERGE_OFF = {
    FW_POLICY + r"\DomainProfile": {"AllowLocalPolicyMerge": 0},
    FW_POLICY + r"\PrivateProfile": {"AllowLocalPolicyMerge": 0},
    FW_POLICY + r"\PublicProfile": {"AllowLocalPolicyMerge": 0},
}
WINRM_IDS = ("WINRM-HTTP-In-TCP-NoScope", "WINRM-HTTP-In-TCP")
RULE_CHECKS = (
    "firewall.rdp_rules_enabled",
    "firewall.icmp_echo_enabled",
    "firewall.azure_platform_rules",
    "firewall.no_block_wireserver",
    "winrm.firewall_http_in",
)

CASES = [
    # the WinRM rules delivered by Group Policy only: the local store lacks them
    Case(
        "winrm.firewall_http_in",
        "policy-store-only",
        P,
        system={FW_RULES: dict.fromkeys(WINRM_IDS)},
        software={POLICY_RULES: {i: RULES_OK[i] for i in WINRM_IDS}},
    ),
    # a policy block rule for the echo request wins nothing by itself, but merge off drops the local rule
    Case("firewall.icmp_echo_enabled", "local-merge-off", W, software=ALL_MERGE_OFF, says="AllowLocalPolicyMerge"),
    Case(
        "firewall.icmp_echo_enabled",
        "policy-store-only",
        P,
        system={FW_RULES: {"FPS-ICMP4-ERQ-In": None}},
        software={POLICY_RULES: {"FPS-ICMP4-ERQ-In": RULES_OK["FPS-ICMP4-ERQ-In"]}},
    ),
    Case(
        "firewall.icmp_echo_enabled",
        "software-missing-local-fails",
        NC,
        system={FW_RULES: {"FPS-ICMP4-ERQ-In": None}},
        drop=("SOFTWARE",),
        says="local rules alone would be a warning: rule(s) not found: FPS-ICMP4-ERQ-In; Group Policy could "
        "override them, and SOFTWARE could not be read",
    ),
    Case(
        "winrm.firewall_http_in",
        "software-missing-local-fails",
        NC,
        system={FW_RULES: dict.fromkeys(WINRM_IDS)},
        drop=("SOFTWARE",),
        says="local rules alone would fail",
    ),
    # a local block rule does not apply where Group Policy switches local rules off
    Case(
        "firewall.rdp_rules_enabled",
        "local-block-merge-off",
        P,
        system={FW_RULES: {"block-rdp": "v2.33|Action=Block|Active=TRUE|Dir=In|Protocol=6|LPort=3389|Name=x|"}},
        software={
            **ALL_MERGE_OFF,
            POLICY_RULES: {k: v for k, v in RULES_OK.items() if k.startswith("RemoteDesktop-")},
        },
    ),
    Case(
        "firewall.no_block_wireserver",
        "local-block-merge-off",
        P,
        system={FW_RULES: {"block-ws": "v2.33|Action=Block|Active=TRUE|Dir=Out|RA4=168.63.129.16|Name=x|"}},
        software={
            **ALL_MERGE_OFF,
            POLICY_RULES: {
                k: RULES_OK[k]
                for k in ("{0b5a3f3e-1111-4c4c-9d9d-000000000001}", "{0b5a3f3e-1111-4c4c-9d9d-000000000002}")
            },
        },
    ),
]


@pytest.mark.parametrize("case", params(CASES))
def test_effective_rule_set(case: Case) -> None:
    check_case(case)


@pytest.mark.parametrize("rule", RULE_CHECKS)
def test_software_unreadable_same_reasoning(rule: str) -> None:
    """Every rule check: compliant local rules, SOFTWARE unreadable -> not checked, one reason, and the
    message says what the local rules alone would give."""
    result = run_case(Case(rule, "software-missing", NC, drop=("SOFTWARE",)))
    assert result.status is NC, result.message
    assert result.reason == (
        "Group Policy could override them, and SOFTWARE could not be read (the SOFTWARE hive is not present (test))"
    )
    assert result.message.startswith("local rules alone would pass: "), result.message


@pytest.mark.parametrize("rule", RULE_CHECKS)
def test_store_evidence_says_what_is_there(rule: str) -> None:
    """The stores are keys: present when they exist, with their rule count as the note."""
    result = run_case(Case(rule, "policy-store", P, software={POLICY_RULES: {"x": "v2.33|Action=Allow|Active=FALSE|"}}))
    stores = {ev.source: ev for ev in result.evidence if ev.key.endswith("FirewallRules")}
    assert stores["registry"].present is True and stores["registry"].value_name is None
    assert stores["registry"].note == f"{len(RULES_OK)} rule(s)"
    assert stores["policy"].present is True and stores["policy"].note == "1 rule(s)"
    absent = run_case(Case(rule, "no-policy-store", P))
    policy = [ev for ev in absent.evidence if ev.source == "policy" and ev.key.endswith("FirewallRules")]
    assert policy and policy[0].present is False and policy[0].actual is None
