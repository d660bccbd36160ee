"""Windows Firewall rules as the registry stores them: the rule-string grammar, the effective rule set, matchers.

References:
- [MS-GPFAS] "Group Policy: Firewall and Advanced Security Data Structure", section 2.2.2.19 "Firewall Rule and
  the Firewall Rule Grammar Rule" (https://learn.microsoft.com/openspecs/windows_protocols/ms-gpfas/
  2efe0b76-7b4a-41ff-9050-1023f8196d16): each value under ``...\\FirewallRules`` is one rule, its name the rule
  id, its REG_SZ data ``RULE = "v" VERSION "|" 1*FIELD`` with ``FIELD = TYPE-VALUE "|"`` (``Action=``,
  ``Active=``, ``Dir=``, ``Profile=``, ``Protocol=``, ``LPort=``, ``RA4=`` ...; a type may repeat). The grammar
  is the same for the local store (``SYSTEM\\CurrentControlSet\\Services\\SharedAccess\\Parameters\\
  FirewallPolicy\\FirewallRules``) and the Group Policy store (``SOFTWARE\\Policies\\Microsoft\\
  WindowsFirewall\\FirewallRules``).
- [MS-GPFAS] section 2.2.3.13 "Allow Local Firewall Rule Policy Merge" (https://learn.microsoft.com/openspecs/
  windows_protocols/ms-gpfas/2c979624-900a-4b6e-b4ef-09b387cd62ab): ``AllowLocalPolicyMerge`` (REG_DWORD) = 0
  under ``...\\WindowsFirewall\\DomainProfile``, ``PrivateProfile`` or ``PublicProfile`` makes the local rules
  not apply in that profile. The section says the value must not be under the legacy ``StandardProfile`` key;
  where ``PrivateProfile`` has none, a ``StandardProfile`` value is still read for the Private profile, as the
  legacy policy names it (:data:`POLICY_PROFILE_KEYS`).
- [MS-FASP] section 2.2.37 ``FW_RULE`` (the fields the tokens stand for).

Indirect display strings (``@FirewallAPI.dll,-28752``) are matched rather than English names, which are
localised. The firewall rules open the stores' keys (with the evidence of what they read) and hand them here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from azvhdaudit.errors import NotChecked
from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Evidence, Outcome, Status

if TYPE_CHECKING:
    from azvhdaudit.registry.model import RegKey

__all__ = [
    "FW",
    "LOCAL_RULES",
    "POLICY",
    "POLICY_RULES",
    "PROFILES",
    "POLICY_PROFILE_KEYS",
    "FirewallRule",
    "parse_rule",
    "store_rules",
    "may_hold",
    "EffectiveRules",
    "effective_profiles",
    "address_covers",
    "port_covers",
    "any_covers",
]

FW = r"HKLM\SYSTEM\CurrentControlSet\Services\SharedAccess\Parameters\FirewallPolicy"
LOCAL_RULES = FW + r"\FirewallRules"
POLICY = r"HKLM\SOFTWARE\Policies\Microsoft\WindowsFirewall"
POLICY_RULES = POLICY + r"\FirewallRules"
PROFILES = ("domain", "private", "public")
#: profile -> the Group Policy profile keys that hold its settings, the first present one applying
POLICY_PROFILE_KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("domain", ("DomainProfile",)),
    ("private", ("PrivateProfile", "StandardProfile")),
    ("public", ("PublicProfile",)),
)


# --- the rule-string parser --------------------------------------------------------------------


@dataclass(frozen=True)
class FirewallRule:
    """One rule string, parsed. Keys keep every occurrence (``Profile``, ``RA4`` repeat)."""

    id: str
    version: str
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    store: str = "local"
    raw: str = ""

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self.fields.get(key.lower())
        return values[0] if values else default

    def all(self, key: str) -> tuple[str, ...]:
        return self.fields.get(key.lower(), ())

    @property
    def active(self) -> bool:
        return (self.get("Active") or "").upper() == "TRUE"

    @property
    def action(self) -> str:
        return (self.get("Action") or "").lower()

    @property
    def direction(self) -> str:
        return (self.get("Dir") or "").lower()

    @property
    def profiles(self) -> frozenset[str]:
        """The profiles the rule applies to; no Profile token means all of them."""
        names = {p.strip().lower() for p in self.all("Profile")}
        return frozenset(PROFILES) if not names else frozenset(names)

    @property
    def enabled_allow(self) -> bool:
        return self.active and self.action == "allow"

    def describe(self) -> str:
        return (
            f"{self.id} ({self.store}: Active={self.get('Active')}, Action={self.get('Action')}, "
            f"profiles={'/'.join(sorted(self.profiles))})"
        )


#: the keys of the rule grammar as Windows writes them, with their lower-case form: a store holds
#: thousands of tokens, and most keys are among these (others are normalized as they come)
_KEYS = {
    key: key.lower()
    for key in (
        "Action",
        "Active",
        "Dir",
        "Protocol",
        "LPort",
        "LPort2_10",
        "RPort",
        "RPort2_10",
        "LA4",
        "LA6",
        "RA4",
        "RA6",
        "App",
        "Svc",
        "Name",
        "Desc",
        "EmbedCtxt",
        "Profile",
        "Edge",
        "Defer",
        "ICMP4",
        "ICMP6",
        "PFN",
        "LUAuth",
        "RUAuth",
        "LUOwn",
        "Security",
        "IF",
        "IFType",
        "RMauth",
        "TTK",
        "TTK2_22",
        "TTK2_27",
        "TTK2_28",
        "Platform",
        "Platform2",
        "AuthByPassOut",
    )
}


def parse_rule(rule_id: str, text: str, store: str = "local") -> FirewallRule:
    """Parse ``v2.NN|Key=Value|...|``; repeated keys accumulate, key names are case-insensitive.

    Never raises: a token without ``=`` is kept under its own name with an empty value, so a damaged
    string still yields what it holds.
    """
    tokens = text.split("|")
    fields: dict[str, tuple[str, ...]] = {}
    known = _KEYS.get
    for token in tokens[1:]:
        if not token:
            continue
        key, _, value = token.partition("=")
        key = known(key) or key.strip().lower()
        if key in fields:
            fields[key] += (value,)
        else:
            fields[key] = (value,)
    return FirewallRule(rule_id, tokens[0].strip(), fields, store, text)


class _StoredRule(FirewallRule):
    """A rule of a store, its string parsed (by :func:`parse_rule`) when its fields are first asked for.

    A store holds hundreds of rules and the checks look into a few: those asked for by id, and those
    whose string holds the words a check needs (:func:`may_hold`). Parsing every rule cost more than
    the checks themselves.
    """

    def __init__(self, rule_id: str, text: str, store: str) -> None:
        object.__setattr__(self, "id", rule_id)
        object.__setattr__(self, "store", store)
        object.__setattr__(self, "raw", text)
        object.__setattr__(self, "lowered", text.lower())

    def __getattr__(self, name: str) -> Any:
        # called only for what is not set yet: the parsed version and fields
        if name not in ("version", "fields"):
            raise AttributeError(name)
        parsed = parse_rule(self.id, self.raw, self.store)
        object.__setattr__(self, "version", parsed.version)
        object.__setattr__(self, "fields", parsed.fields)
        return getattr(parsed, name)

    def get(self, key: str, default: str | None = None) -> str | None:
        if "fields" in self.__dict__:
            return super().get(key, default)
        # One key of a rule not parsed yet (a check that tests every rule's Name): the string is read up
        # to the first token of that key, the value parse_rule would list first.
        wanted = key.lower()
        known = _KEYS.get
        for token in self.raw.split("|")[1:]:
            if token:
                name, _, value = token.partition("=")
                if (known(name) or name.strip().lower()) == wanted:
                    return value
        return default


def may_hold(rule: FirewallRule, *words: str) -> bool:
    """False only when ``rule`` cannot match: one of ``words`` (lower case) is not in its lower-cased
    string. The checks that use this look for a key among ``words`` (``RA4``), or compare a value
    lower-cased to one of them (``Action``, ``EmbedCtxt``) or upper-cased to ``TRUE`` (``Active``: no
    character but the ASCII letters upper-cases to T, R, U or E). A key's or a value's lower-cased
    form lies within the lower-cased string, so a rule left out here would not have matched."""
    if not isinstance(rule, _StoredRule):
        return True
    lowered: str = rule.lowered
    for word in words:
        if word not in lowered:
            return False
    return True


def store_rules(key: RegKey | None, store: str) -> list[FirewallRule]:
    """The rules of one store's key (``[]`` when the key is absent): one per string value, named by the value,
    each string parsed when a check first looks into it. Values of another type are not rules."""
    rules: list[FirewallRule] = []
    if key is not None:
        for value in key.values():
            if value.type in (RegType.SZ, RegType.EXPAND_SZ) and isinstance(value.data, str):
                rules.append(_StoredRule(value.name, value.data, store))
    return rules


# --- the effective rule set ----------------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveRules:
    """The firewall rules that apply: the local store and the Group Policy store together, with the
    profiles where Group Policy switches the local rules off (AllowLocalPolicyMerge = 0).

    When SOFTWARE cannot be read, ``rules`` holds the local rules alone and ``policy_unread`` says why:
    a Group Policy rule can block what the local rules allow, allow what they lack, or switch the local
    rules off, so a verdict on the local rules alone is "not checked" (:meth:`verdict`)."""

    rules: tuple[FirewallRule, ...]
    merge_off: frozenset[str]
    evidence: tuple[Evidence, ...]
    #: why the Group Policy store could not be read ("" when it was)
    policy_unread: str = ""
    #: the hive that could not be read
    policy_hive: str = ""

    @property
    def merge_note(self) -> str:
        if not self.merge_off:
            return ""
        return (
            f" (Group Policy ignores local rules in the {'/'.join(sorted(self.merge_off))} profile(s): "
            "AllowLocalPolicyMerge = 0)"
        )

    def profiles(self, rule: FirewallRule) -> frozenset[str]:
        """The profiles ``rule`` really applies to."""
        return effective_profiles(rule, self.merge_off)

    def verdict(self, outcome: Outcome) -> Outcome:
        """``outcome`` when Group Policy was read; else raises :class:`~azvhdaudit.errors.NotChecked`, the message
        giving what the local rules alone would give."""
        if not self.policy_unread:
            return outcome
        would = {Status.PASS: "would pass", Status.FAIL: "would fail", Status.WARNING: "would be a warning"}.get(
            outcome.status, f"would be {outcome.status.value}"
        )
        hive = self.policy_hive or "SOFTWARE"
        reason = f"Group Policy could override them, and {hive} could not be read ({self.policy_unread})"
        raise NotChecked(
            reason,
            f"local rules alone {would}: {outcome.message}; {reason}",
            expected=outcome.expected,
            actual=outcome.actual,
            evidence=outcome.evidence,
        )


def effective_profiles(rule: FirewallRule, merge_off: frozenset[str]) -> frozenset[str]:
    """The profiles a rule really applies to: a local rule does not where local merge is off."""
    return rule.profiles - merge_off if rule.store == "local" else rule.profiles


def address_covers(spec: str, address: str) -> bool:
    """Whether an RA4/LA4 token (``a.b.c.d``, ``a.b.c.d/nn``, ``a.b.c.d/mask``, ``a-b``, ``*``) covers
    ``address``. Keywords (LocalSubnet, DNS, DHCP, DefaultGateway ...) are host-dependent and are
    taken as not covering a fixed public address."""
    target = ipaddress.ip_address(address)
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        if part in ("*", "Any"):
            return True
        try:
            if "-" in part:
                low, high = (ipaddress.ip_address(x.strip()) for x in part.split("-", 1))
                if type(low) is type(target) and low <= target <= high:  # type: ignore[operator]
                    return True
            elif target in ipaddress.ip_network(part, strict=False):
                return True
        except ValueError:
            continue
    return False


def port_covers(spec: str, port: int) -> bool:
    """Whether an LPort/RPort token (``80``, ``80-90``, ``80,443``) covers ``port``; keywords do not."""
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            low, _, high = part.partition("-")
            if low.isdigit() and high.isdigit() and int(low) <= port <= int(high):
                return True
        elif part.isdigit() and int(part) == port:
            return True
    return False


def any_covers(specs: Iterable[str], address: str) -> bool:
    """Whether one of a rule's address tokens (its ``RA4`` values, say) covers ``address``."""
    return any(address_covers(s, address) for s in specs)
