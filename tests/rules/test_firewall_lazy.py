"""The rule strings of a store are parsed when a check looks into them, and answer as parsed ones do.

Property tests: a stored rule reads exactly as :func:`parse_rule` parses its string, and
:func:`parse_rule` as the plain reading of the grammar (split on ``|``, the key before the first
``=``, stripped and lower-cased). The substring test that lets a check skip a rule never skips one
the check would have matched, whatever the characters (the Kelvin sign lower-cases to ``k``, the
dotted capital I to two characters, a final sigma depends on what follows it). Counted: on a store
of hundreds of rules the Remote Desktop check parses none but the rules of its group.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azvhdaudit import firewall_facts
from azvhdaudit.report import Status
from azvhdaudit.rules import firewall
from azvhdaudit.rules.firewall import RDP_GROUP, WIRESERVER, parse_rule

from .guestkit import FW_RULES, RULES_OK, Case, run_case

#: letters of the words the checks look for, their other cases, and characters that case-map oddly
_TRICKY = "|= \t\u00a0blockBLOCKallowALLOWtrueTRUEra4RA4@firewalpi.dl,-28752\u212a\u0130\u0131\u03a3\u017f\ufb05"
_words = st.text(alphabet=_TRICKY, max_size=40)
_key = st.sampled_from(
    [
        "Action",
        "Active",
        "Dir",
        "Protocol",
        "LPort",
        "RA4",
        "ra4 ",
        " Ra4",
        "EmbedCtxt",
        "App",
        "Svc",
        "Profile",
        "Edge",
        "Name",
        "R\u0391" + "4",
        "Act\u0130ve",
        "RPort",
        "",
    ]
)
_value = st.one_of(
    st.sampled_from(
        [
            "Allow",
            "Block",
            "BLOC\u212a",
            "TRUE",
            "true",
            "In",
            "Out",
            "6",
            "3389",
            "*",
            WIRESERVER,
            "@FirewallAPI.dll,-28752",
            "@FIREWALLAPI.DLL,-28752",
            "@F\u0130rewallAPI.dll,-28752",
        ]
    ),
    _words,
)
_pairs = st.lists(st.tuples(_key, _value), max_size=10)
#: what the checks look at, in every spelling, among other pairs
_rules = st.tuples(
    st.sampled_from(["Action", "ACTION", " action"]),
    st.sampled_from(["Allow", "ALLOW", "Block", "block", "BLOC\u212a"]),
    st.sampled_from(["Active", "active "]),
    st.sampled_from(["TRUE", "True", "FALSE", "tru\u0130"]),
    st.sampled_from(["RA4", "ra4", "Ra4 ", "RA6"]),
    st.sampled_from(["*", WIRESERVER, "LocalSubnet", "168.0.0.0/8"]),
    st.sampled_from(["Dir=In", "Dir=Out", "DIR=IN", "Edge=TRUE|Dir=In"]),
    st.sampled_from(["EmbedCtxt=@FirewallAPI.dll,-28752", "EMBEDCTXT=@FIREWALLAPI.DLL,-28752", "EmbedCtxt=x"]),
    _pairs,
).map(
    lambda t: f"v2.10|{t[0]}={t[1]}|{t[2]}={t[3]}|{t[4]}={t[5]}|{t[6]}|{t[7]}|" + "".join(f"{k}={v}|" for k, v in t[8])
)
_strings = st.one_of(
    st.text(max_size=200),
    _words,
    _pairs.map(lambda pairs: "v2.10|" + "".join(f"{k}={v}|" for k, v in pairs)),
    _rules,
)


def _reference(text: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    tokens = text.split("|")
    fields: dict[str, list[str]] = {}
    for token in tokens[1:]:
        if token:
            key, _, value = token.partition("=")
            fields.setdefault(key.strip().lower(), []).append(value)
    return tokens[0].strip(), {k: tuple(v) for k, v in fields.items()}


@given(_strings)
def test_parse_reads_the_grammar(text: str) -> None:
    rule = parse_rule("x", text)
    assert (rule.version, rule.fields) == _reference(text)


@given(_strings)
def test_a_stored_rule_reads_as_parsed(text: str) -> None:
    parsed = parse_rule("x", text, "policy")
    keys = ("Action", "Active", "Dir", "RA4", "ra4", "EmbedCtxt", "Profile", "Nothing", "")
    for key in keys:  # before the string is parsed
        assert firewall_facts._StoredRule("x", text, "policy").get(key, "-") == parsed.get(key, "-")
    stored = firewall_facts._StoredRule("x", text, "policy")
    assert (stored.id, stored.store, stored.raw) == (parsed.id, parsed.store, parsed.raw)
    for key in keys:
        assert stored.all(key) == parsed.all(key)
        assert stored.get(key) == parsed.get(key)
    assert (stored.active, stored.action, stored.direction, stored.profiles, stored.enabled_allow) == (
        parsed.active,
        parsed.action,
        parsed.direction,
        parsed.profiles,
        parsed.enabled_allow,
    )
    assert stored.describe() == parsed.describe()
    assert (stored.version, stored.fields) == (parsed.version, parsed.fields)


@given(_strings)
def test_the_substring_test_skips_no_match(text: str) -> None:
    stored = firewall_facts._StoredRule("x", text, "local")
    rule = parse_rule("x", text)
    if (rule.get("EmbedCtxt") or "").lower() == RDP_GROUP:
        assert firewall.may_hold(stored, RDP_GROUP)
    if rule.active and rule.action == "block":
        assert firewall.may_hold(stored, "block")
    if rule.enabled_allow and rule.all("RA4"):
        assert firewall.may_hold(stored, "allow", "ra4", "true")
    for direction in ("in", "out"):
        assert firewall._platform_rule(stored, direction) == firewall._platform_rule(rule, direction)
    assert firewall._blocks_wireserver(stored) == firewall._blocks_wireserver(rule)
    assert firewall._blocking_inbound_port([stored], 3389) == [stored] * len(
        firewall._blocking_inbound_port([rule], 3389)
    )


def _filler(count: int) -> dict[str, str]:
    """Rules of other groups, as a Windows store holds hundreds of them."""
    return {
        f"Other-{n}": f"v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort={1000 + n}|App=System|"
        f"Name=@FirewallAPI.dll,-{30000 + n}|EmbedCtxt=@FirewallAPI.dll,-{31000 + n}|"
        for n in range(count)
    }


def test_the_rdp_check_parses_only_the_rules_it_can_match(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[str] = []
    original = firewall_facts.parse_rule

    def counting(rule_id: str, text: str, store: str = "local") -> firewall_facts.FirewallRule:
        parsed.append(rule_id)
        return original(rule_id, text, store)

    monkeypatch.setattr(firewall_facts, "parse_rule", counting)
    result = run_case(Case("firewall.rdp_rules_enabled", "many rules", Status.PASS, system={FW_RULES: _filler(300)}))
    assert result.status is Status.PASS
    group = {rule_id for rule_id, text in RULES_OK.items() if RDP_GROUP in text.lower()}
    assert parsed and set(parsed) <= group


def test_the_rdp_verdict_is_the_same_on_every_rule_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    case = Case(
        "firewall.rdp_rules_enabled",
        "many rules",
        Status.PASS,
        system={
            FW_RULES: {
                **_filler(50),
                **{k: v.replace("Active=TRUE", "Active=FALSE") for k, v in RULES_OK.items() if "28752" in v},
            }
        },
    )
    lazy = run_case(case)
    monkeypatch.setattr(firewall, "may_hold", lambda rule, *words: True)
    eager = run_case(case)
    assert lazy.status is Status.FAIL
    assert (lazy.status, lazy.message, lazy.actual, lazy.evidence) == (
        eager.status,
        eager.message,
        eager.actual,
        eager.evidence,
    )
