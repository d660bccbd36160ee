"""The firewall facts on the rule stores of two real SYSTEM hives (Windows 7 SP1, 323 rules; Windows 10 1709,
443 rules): every string of the store read, parsed by the grammar, the matchers and the effective rule set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from azvhdaudit import firewall_facts
from azvhdaudit.errors import NotChecked
from azvhdaudit.firewall_facts import (
    LOCAL_RULES,
    PROFILES,
    EffectiveRules,
    address_covers,
    effective_profiles,
    may_hold,
    parse_rule,
    port_covers,
    store_rules,
)
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import open_hive_file
from azvhdaudit.report import Outcome, Status

RDP_GROUP = "@firewallapi.dll,-28752"


#: per real hive: its rule count and the Remote Desktop group's rules, each enabled or not (as stored)
REAL = {
    "SYSTEM": (323, {"RemoteDesktop-In-TCP": True, "RemoteDesktop-In-TCP_1": False}),
    "SYSTEM_B": (
        443,
        {
            "RemoteDesktop-UserMode-In-TCP": False,
            "RemoteDesktop-UserMode-In-UDP": False,
            "RemoteDesktop-Shadow-In-TCP": False,
        },
    ),
}


@pytest.fixture(scope="module", params=list(REAL), ids=["win7", "win10"])
def store(request: pytest.FixtureRequest, realdata: Path) -> Iterator[tuple[RegistryView, str]]:
    hive = open_hive_file(realdata / request.param, "SYSTEM")
    try:
        yield RegistryView(hives={"SYSTEM": hive}), request.param
    finally:
        hive.close()


def test_every_rule_of_a_real_store_is_read(store: tuple[RegistryView, str]) -> None:
    view, name = store
    count = REAL[name][0]
    key = view.key(LOCAL_RULES)
    assert key is not None
    rules = store_rules(key, "local")
    assert len(rules) == count
    assert {r.store for r in rules} == {"local"}
    assert all(r.raw.startswith("v2.") for r in rules)
    # each string as the grammar reads it: "v" VERSION, then TYPE=VALUE tokens ended by "|"
    for r in rules:
        parsed = parse_rule(r.id, r.raw)
        assert (r.version, r.fields) == (parsed.version, parsed.fields)
        assert r.version == r.raw.split("|", 1)[0]
        assert r.get("Action") in ("Allow", "Block") and r.direction in ("in", "out")


def test_a_real_store_parses_only_the_rules_a_check_looks_into(
    store: tuple[RegistryView, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    view, name = store
    parsed: list[str] = []
    original = firewall_facts.parse_rule

    def counting(rule_id: str, text: str, store_name: str = "local") -> firewall_facts.FirewallRule:
        parsed.append(rule_id)
        return original(rule_id, text, store_name)

    monkeypatch.setattr(firewall_facts, "parse_rule", counting)
    rules = store_rules(view.key(LOCAL_RULES), "local")
    assert parsed == []
    group = [r for r in rules if may_hold(r, RDP_GROUP) and (r.get("EmbedCtxt") or "").lower() == RDP_GROUP]
    assert parsed == []  # one key read from the string, nothing parsed
    assert {r.id: r.enabled_allow for r in group} == REAL[name][1]
    assert parsed == []  # single keys are read from the string
    for r in group + group:
        assert r.profiles  # a repeated key: the string is parsed, once
    assert sorted(parsed) == sorted(r.id for r in group)


def test_the_substring_test_skips_no_real_rule(store: tuple[RegistryView, str]) -> None:
    view, _ = store
    for r in store_rules(view.key(LOCAL_RULES), "local"):
        full = parse_rule(r.id, r.raw)
        assert may_hold(r, RDP_GROUP) or (full.get("EmbedCtxt") or "").lower() != RDP_GROUP
        assert may_hold(r, "block") or not (full.active and full.action == "block")
        assert may_hold(r, "allow", "ra4", "true") or not (full.enabled_allow and full.all("RA4"))


def test_the_real_windows7_rdp_rule() -> None:
    text = (
        "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|LPort=3389|App=System|"
        "Name=@FirewallAPI.dll,-28753|Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|"
    )
    rule = parse_rule("RemoteDesktop-In-TCP", text)
    assert rule.profiles == {"domain", "private"}
    assert rule.all("profile") == ("Domain", "Private")
    assert any(port_covers(p, 3389) for p in rule.all("LPort"))
    assert rule.describe() == "RemoteDesktop-In-TCP (local: Active=TRUE, Action=Allow, profiles=domain/private)"


def test_store_rules_of_an_absent_key_and_other_types() -> None:
    assert store_rules(None, "policy") == []
    hive = MemoryHive.build("SYSTEM", {"Rules": {"a": "v2.10|Action=Allow|", "n": 1, "b": (3, b"v2.10|")}})
    rules = store_rules(hive.root().subkey("Rules"), "policy")
    assert [(r.id, r.store) for r in rules] == [("a", "policy")]


@pytest.mark.parametrize(
    ("spec", "address", "covers"),
    [
        ("*", "168.63.129.16", True),
        ("168.63.129.16", "168.63.129.16", True),
        ("168.63.0.0/16", "168.63.129.16", True),
        ("168.63.0.0/255.255.0.0", "168.63.129.16", True),
        ("168.63.129.1-168.63.129.20", "168.63.129.16", True),
        ("10.0.0.0/8,168.63.129.16", "168.63.129.16", True),
        ("LocalSubnet", "168.63.129.16", False),
        ("10.0.0.0/8", "168.63.129.16", False),
        ("fe80::1-fe80::9", "168.63.129.16", False),
        ("not an address", "168.63.129.16", False),
    ],
)
def test_address_covers(spec: str, address: str, covers: bool) -> None:
    assert address_covers(spec, address) is covers


@pytest.mark.parametrize(
    ("spec", "port", "covers"),
    [
        ("3389", 3389, True),
        ("3000-4000", 3389, True),
        ("80,3389", 3389, True),
        ("RPC", 3389, False),
        ("3390", 3389, False),
        ("4000-3000", 3389, False),
        ("", 3389, False),
    ],
)
def test_port_covers(spec: str, port: int, covers: bool) -> None:
    assert port_covers(spec, port) is covers


def test_the_effective_set_drops_local_rules_where_merge_is_off() -> None:
    local = parse_rule("l", "v2.10|Action=Allow|Active=TRUE|Dir=In|", "local")
    policy = parse_rule("p", "v2.10|Action=Allow|Active=TRUE|Dir=In|", "policy")
    eff = EffectiveRules((local, policy), frozenset({"public"}), ())
    assert eff.profiles(local) == {"domain", "private"}
    assert eff.profiles(policy) == set(PROFILES)
    assert effective_profiles(local, frozenset()) == set(PROFILES)
    assert eff.merge_note == " (Group Policy ignores local rules in the public profile(s): AllowLocalPolicyMerge = 0)"
    assert EffectiveRules((), frozenset(), ()).merge_note == ""


@pytest.mark.parametrize(
    ("status", "would"),
    [
        (Status.PASS, "would pass"),
        (Status.FAIL, "would fail"),
        (Status.WARNING, "would be a warning"),
    ],
)
def test_a_verdict_on_local_rules_alone_is_not_checked(status: Status, would: str) -> None:
    outcome = Outcome(status, "three rules", expected="x", actual="y")
    assert EffectiveRules((), frozenset(), ()).verdict(outcome) is outcome
    unread = EffectiveRules((), frozenset(), (), policy_unread="no such file", policy_hive="SOFTWARE")
    with pytest.raises(NotChecked) as raised:
        unread.verdict(outcome)
    got = raised.value
    assert got.message.startswith(f"local rules alone {would}: three rules; Group Policy could override them")
    assert got.reason == "Group Policy could override them, and SOFTWARE could not be read (no such file)"
    assert (got.expected, got.actual) == ("x", "y")
