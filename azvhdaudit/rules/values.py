"""Registry-value rules as data, and the helpers every registry rule reads through.

References:
- Microsoft, "Prepare a Windows VHD or VHDX to upload to Azure" (current text, ms.date 2022-08-04,
  and the 2017 text), sections "Set Windows configurations for Azure", "Update remote desktop
  registry settings", "Configure Windows Firewall rules", "Verify the VM".
- winnt.h ``REG_*`` value types; Group Policy stores its values under ``HKLM\\SOFTWARE\\Policies``
  and a value set there wins over the local value the same setting writes elsewhere.

A :class:`ValueRule` is one row: id, title, severity, one or more :class:`Item` s (key, value name,
accepted registry types, expected value and comparison), the doc section, the baselines and the fix
line. References shared by an area live in its :class:`Group`. The verdict has three levels — the key
exists, the value exists, the value equals — and the message says which; a missing hive is never a
pass (:class:`~azvhdaudit.errors.HiveUnavailable`, a :class:`~azvhdaudit.errors.NotChecked`, is turned into
"not checked" by the engine).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from azvhdaudit.errors import HiveUnavailable
from azvhdaudit.registry.model import RegKey, RegType, RegValue
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, Rule, RuleMeta, register

__all__ = [
    "HiveUnavailable",
    "Read",
    "Group",
    "Item",
    "ValueRule",
    "COMPARES",
    "read_value",
    "open_key",
    "value_evidence",
    "key_evidence",
    "format_data",
    "plain",
    "cmd_quoted",
    "placeholder",
    "printable",
    "ps_arg",
    "ps_string",
    "sh_arg",
    "PS_DOUBLE_QUOTES",
    "PS_SINGLE_QUOTES",
    "mismatch_status",
    "worst",
    "evaluate_items",
    "value_rules",
    "register_values",
]

BOTH = ("azure-2022", "azure-2017")
CURRENT = ("azure-2022",)
Y2017 = ("azure-2017",)

#: comparisons a row may use (its ``compare``)
COMPARES = ("eq", "eq_ci", "in", "ne", "absent", "report")


@dataclass(frozen=True)
class Read:
    """One registry value as read, with where it was looked for."""

    hive: str
    #: ``HKLM\\SYSTEM\\ControlSet001\\...`` (CurrentControlSet resolved)
    key_path: str
    name: str
    key_exists: bool
    value: RegValue | None
    evidence: Evidence

    @property
    def present(self) -> bool:
        return self.value is not None

    @property
    def data(self) -> Any:
        return None if self.value is None else self.value.data


def _resolve(ctx: AuditContext, path: str) -> tuple[str, str]:
    """(hive, display path); raises :class:`HiveUnavailable` where the path cannot be read."""
    reg = ctx.registry
    resolved = reg.resolve(path)
    if resolved is None:
        hive = path.replace("/", "\\").split("\\")
        hive_name = next((p for p in hive if p and p.lower() not in ("hklm", "hkey_local_machine")), "")
        hive_name = hive_name.upper()
        if hive_name == "SYSTEM" and reg.has_hive("SYSTEM"):
            raise HiveUnavailable(
                "SYSTEM",
                "the current control set cannot be resolved: SYSTEM\\Select\\Current is missing and the "
                "hive holds more than one ControlSet00n",
            )
        raise HiveUnavailable(hive_name, reg.why_unavailable(hive_name))
    hive_name, _ = resolved
    if not reg.has_hive(hive_name):
        raise HiveUnavailable(hive_name, reg.why_unavailable(hive_name))
    return hive_name, reg.display_path(path)


def open_key(ctx: AuditContext, path: str) -> RegKey | None:
    """The key at ``path``, ``None`` when absent; raises :class:`HiveUnavailable` when unreadable."""
    _resolve(ctx, path)
    return ctx.registry.key(path)


def format_data(data: Any) -> str:
    """A value's data the way a person reads it in a message."""
    if isinstance(data, bool):
        return str(int(data))
    if isinstance(data, int):
        return f"{data} (0x{data:X})" if data > 0xFFFF else str(data)
    if isinstance(data, bytes):
        return data.hex() if len(data) <= 32 else data[:32].hex() + "..."
    if isinstance(data, str):
        return f"'{data}'"
    return plain(data)


def plain(data: Any) -> str:
    """Any value as words, never as a Python repr: ``None`` is ``(none)``, strings unquoted, lists
    ``[a, b]``, mappings ``name value, name value``."""
    if data is None:
        return "(none)"
    if isinstance(data, bool):
        return str(data).lower()
    if isinstance(data, int):
        return f"{data} (0x{data:X})" if data > 0xFFFF else str(data)
    if isinstance(data, (bytes, bytearray)):
        return bytes(data).hex() if len(data) <= 32 else bytes(data[:32]).hex() + "..."
    if isinstance(data, dict):
        return ", ".join(f"{k} {plain(v)}" for k, v in data.items())
    if isinstance(data, (list, tuple, set, frozenset)):
        return "[" + ", ".join(plain(x) for x in data) + "]"
    return str(data)


#: the characters PowerShell's tokenizer reads as a single quote (about_Quoting_Rules: the typographic ones too), and
#: as a double quote: a string read from the image may hold any of them
PS_SINGLE_QUOTES = "'\u2018\u2019\u201a\u201b"
PS_DOUBLE_QUOTES = '"\u201c\u201d\u201e'
#: the characters ``cmd.exe`` reads as operators, escapes or variable marks: a line cmd runs holds none of them
#: inside an argument read from the image
_CMD_SPECIAL = frozenset('"%!^&|<>\r\n')


def printable(text: str) -> str:
    """``text`` read from the image as words of a fix line: one line, every character that is not printable (a line
    break, another control character, a format or separator character) written as its escape (``\\n``,
    ``\\x07``, ``\\u202e``), so nothing read can start a line of its own or hide what follows it."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def placeholder(text: str, why: str) -> str:
    """A ``<...>`` placeholder standing for ``text``: it makes the line a step by hand (``azvhdaudit fix`` never
    runs a line with one)."""
    shown = printable(text).replace("<", "\\x3c").replace(">", "\\x3e")
    return f"<{shown} ({why})>"


def ps_string(text: str) -> str:
    """``text`` as a PowerShell single-quoted string literal: nothing in it is expanded, and every character
    PowerShell reads as a single quote (``'`` and the typographic ``\u2018 \u2019 \u201a \u201b``) is doubled.

    Text that is not one printable line (a line break, another control character) has no literal a fix line can
    hold: it comes back as a ``<...>`` placeholder, which makes the line a step by hand."""
    if not text.isprintable():
        return placeholder(text, "not one printable line: no fix line holds it")
    return "'" + "".join(c + c if c in PS_SINGLE_QUOTES else c for c in text) + "'"


def ps_arg(text: str) -> str:
    """``text`` as a PowerShell argument: a bare word when it is one (a file name, a drive path: ASCII letters,
    digits, ``_ . : \\ -``, starting with a letter, so PowerShell reads neither a parameter nor a number in it),
    else a single-quoted literal (:func:`ps_string`)."""
    return text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.:\\-]*", text) else ps_string(text)


def sh_arg(text: str) -> str:
    """``text`` as one argument of a POSIX shell line (a host-side ``qemu-img`` step), or a ``<...>`` placeholder
    when it is not one printable line."""
    if not text.isprintable():
        return placeholder(text, "not one printable line: no fix line holds it")
    return shlex.quote(text)


def cmd_quoted(text: str) -> str:
    """``text`` as a double-quoted argument of a line ``cmd.exe`` runs (``bcdedit``), or a ``<...>`` placeholder
    when cmd would read something in it (``" % ! ^ & | < >``), it is not printable ASCII, or it ends in a backslash
    (which would escape the closing quote)."""
    if not text.isascii() or not text.isprintable() or _CMD_SPECIAL & set(text) or text.endswith("\\"):
        return placeholder(text, "not text cmd.exe takes as it is: no fix line holds it")
    return f'"{text}"'


def value_evidence(
    ctx: AuditContext, path: str, name: str | None, value: RegValue | None, source: str, note: str = ""
) -> Evidence:
    """Evidence for one value looked up at ``path`` (present or not)."""
    reg = ctx.registry
    resolved = reg.resolve(path)
    hive_name = resolved[0] if resolved else ""
    hive = reg.hive(hive_name) if hive_name else None
    uses_ccs = "currentcontrolset" in path.lower()
    return Evidence(
        source=source,
        hive=hive_name,
        key=reg.display_path(path),
        value_name=name,
        type=value.type_name if value is not None else None,
        raw=value.raw.hex() if value is not None else None,
        actual=value.data if value is not None else None,
        present=value is not None,
        control_set=reg.control_set_name if uses_ccs else None,
        hive_dirty=hive.state.dirty if hive is not None else None,
        note=note,
    )


def key_evidence(
    ctx: AuditContext,
    path: str,
    key: RegKey | None,
    source: str = "registry",
    note: str = "",
    actual: Any = None,
    derived: bool = False,
) -> Evidence:
    """Evidence for a registry key (no value): ``present`` says whether it exists, ``note`` what it holds
    (``480 rule(s)``). ``actual`` is only given for a fact computed from the key (``derived``)."""
    reg = ctx.registry
    resolved = reg.resolve(path)
    hive_name = resolved[0] if resolved else ""
    hive = reg.hive(hive_name) if hive_name else None
    return Evidence(
        source=source,
        hive=hive_name,
        key=reg.display_path(path),
        value_name=None,
        actual=actual,
        present=key is not None,
        control_set=reg.control_set_name if "currentcontrolset" in path.lower() else None,
        hive_dirty=hive.state.dirty if hive is not None else None,
        note=note,
        derived=derived,
    )


def read_value(ctx: AuditContext, path: str, name: str, source: str = "registry") -> Read:
    """Read value ``name`` under ``path``; raises :class:`HiveUnavailable` when the hive is missing."""
    hive_name, display = _resolve(ctx, path)
    key = ctx.registry.key(path)
    value = key.value(name) if key is not None else None
    return Read(
        hive=hive_name,
        key_path=display,
        name=name,
        key_exists=key is not None,
        value=value,
        evidence=value_evidence(ctx, path, name, value, source),
    )


def mismatch_status(severity: Severity) -> Status:
    """What a setting that is not as expected means at this severity."""
    if severity is Severity.REQUIRED:
        return Status.FAIL
    if severity is Severity.INFORMATIONAL:
        return Status.PASS
    return Status.WARNING


_RANK = {Status.FAIL: 5, Status.WARNING: 4, Status.NOT_CHECKED: 3, Status.PASS: 1}


def worst(statuses: Iterable[Status]) -> Status:
    """The status that decides a rule made of several items: fail > warning > not checked > pass."""
    found = list(statuses)
    return max(found, key=lambda s: _RANK.get(s, 0)) if found else Status.PASS


# --- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One value a row looks at.

    ``if_absent`` says what a missing value means: ``"fail"`` (a problem, at the rule's severity),
    ``"warn"`` (a warning) or ``"pass"`` (e.g. a Group Policy value that is not configured).
    ``policy`` names Group Policy keys (first set wins) whose value of the same name overrides the
    local one.
    """

    key: str
    value: str
    expected: Any = None
    compare: str = "eq"
    types: tuple[int, ...] = (RegType.DWORD,)
    if_absent: str = "fail"
    policy: tuple[str, ...] = ()
    #: the status a present-but-different value gets instead of the severity's (``None`` = severity)
    on_mismatch: Status | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.compare not in COMPARES:
            raise ValueError(f"unknown comparison {self.compare!r} for {self.key}\\{self.value}")
        if self.if_absent not in ("fail", "warn", "pass"):
            raise ValueError(f"unknown if_absent {self.if_absent!r} for {self.key}\\{self.value}")

    @property
    def is_policy(self) -> bool:
        return "\\policies\\" in self.key.lower().replace("/", "\\")


@dataclass(frozen=True)
class ItemVerdict:
    status: Status
    message: str
    evidence: tuple[Evidence, ...]
    actual: Any = None
    #: what the item expects, when it must be said differently from ``Item.expected`` (with its type)
    expected: Any = None
    #: for not checked: why
    reason: str = ""
    #: where Group Policy set the effective value ("" when the local value applies)
    policy_key: str = ""


def _type_names(types: Sequence[int]) -> str:
    return " or ".join(RegType.name_of(t) for t in types)


def _expected_text(item: Item) -> str:
    if item.compare == "absent":
        return "no value"
    if item.compare == "ne":
        return f"anything but {format_data(item.expected)}"
    if item.compare == "in":
        return " or ".join(format_data(x) for x in item.expected)
    return format_data(item.expected)


def _matches(item: Item, data: Any) -> bool:
    if item.compare == "report":
        return True
    if item.compare == "eq":
        return bool(data == item.expected)
    if item.compare == "eq_ci":
        return isinstance(data, str) and data.strip().lower() == str(item.expected).lower()
    if item.compare == "in":
        return data in item.expected
    if item.compare == "ne":
        return bool(data != item.expected)
    return False  # "absent" never matches a present value


def _absent_status(item: Item, severity: Severity) -> Status:
    if item.if_absent == "pass":
        return Status.PASS
    if item.if_absent == "warn":
        return Status.WARNING if mismatch_status(severity) is not Status.PASS else Status.PASS
    return mismatch_status(severity)


def judge(item: Item, read: Read, severity: Severity, where: str = "") -> tuple[Status, str]:
    """The three-level verdict on one read value: key exists -> value exists -> value equals."""
    name = item.value or "(default)"
    if read.value is None:
        if item.compare == "absent":
            return Status.PASS, f"value {name} is absent under {read.key_path}{where}"
        status = _absent_status(item, severity)
        if item.is_policy and item.if_absent == "pass":
            return status, f"{name} is not configured by Group Policy (no value under {read.key_path})"
        if not read.key_exists:
            return status, f"key {read.key_path} does not exist (value {name} missing){where}"
        return status, f"value {name} is missing under {read.key_path}{where}"
    value = read.value
    shown = format_data(value.data)
    if item.compare == "absent":
        return (
            item.on_mismatch or mismatch_status(severity),
            f"{name} is present ({value.type_name} {shown}) under {read.key_path}; Azure expects it absent",
        )
    if item.compare == "report":
        return Status.PASS, f"{name} is {value.type_name} {shown}{where}"
    if value.type not in item.types:
        return (
            item.on_mismatch or mismatch_status(severity),
            f"{name} is {value.type_name} {shown}, Azure expects {_type_names(item.types)} "
            f"{_expected_text(item)} (Windows reads the value by its type; a different type is "
            f"not the same setting){where}",
        )
    if _matches(item, value.data):
        return Status.PASS, f"{name} is {shown}{where}"
    return (
        item.on_mismatch or mismatch_status(severity),
        f"{name} is {shown}, Azure expects {_expected_text(item)}{where}",
    )


_WOULD = {Status.PASS: "would pass", Status.FAIL: "would fail", Status.WARNING: "would be a warning"}


def _typed(item: Item, read: Read) -> tuple[Any, Any]:
    """(actual, expected) as a verdict shows them: the data alone, or — when the value's registry type is
    not one the item accepts — each with its type, so the two never read the same while they differ."""
    value = read.value
    if value is None or item.compare in ("absent", "report") or value.type in item.types:
        return read.data, None
    return f"{value.type_name} {format_data(value.data)}", f"{_type_names(item.types)} {_expected_text(item)}"


def unread_policy_message(name: str, local: Read, status: Status, hive: str, reason: str) -> str:
    """The not-checked message of a local value that Group Policy could override, its policy hive unread:
    ``local fDenyTSConnections = 1 would fail; Group Policy could override it, and SOFTWARE could not be
    read (...)``."""
    if local.value is not None:
        shown = f"local {name} = {format_data(local.value.data)}"
    elif local.key_exists:
        shown = f"local {name} (absent)"
    else:
        shown = f"local {name} (absent, key {local.key_path} does not exist)"
    would = _WOULD.get(status, f"would be {status.value}")
    return f"{shown} {would}; Group Policy could override it, and {hive or 'SOFTWARE'} could not be read ({reason})"


def evaluate_item(ctx: AuditContext, item: Item, severity: Severity) -> ItemVerdict:
    """Evaluate one item, Group Policy first where the item has a policy twin."""
    label = f" ({item.label})" if item.label else ""
    source = "policy" if item.is_policy else "registry"
    try:
        local = read_value(ctx, item.key, item.value, source=source)
    except HiveUnavailable as err:
        return ItemVerdict(Status.NOT_CHECKED, f"{item.value}{label}: not checked, {err.reason}", (), reason=err.reason)
    if not item.policy:
        status, message = judge(item, local, severity, label)
        actual, expected = _typed(item, local)
        return ItemVerdict(status, message, (local.evidence,), actual, expected)

    # Group Policy wins: the first policy key that sets the value is the effective value.
    policy_reads: list[Read] = []
    unread: HiveUnavailable | None = None
    for policy_key in item.policy:
        try:
            policy_reads.append(read_value(ctx, policy_key, item.value, source="policy"))
        except HiveUnavailable as err:
            unread = err
            break
    effective = next((r for r in policy_reads if r.present), None)
    evidence = tuple(r.evidence for r in policy_reads) + (local.evidence,)
    if effective is None:
        status, message = judge(item, local, severity, label)
        actual, expected = _typed(item, local)
        if unread is not None:
            # Group Policy wins, and it could not be read: the local value alone does not decide the
            # effective setting, so neither a pass nor a fail is earned.
            text = unread_policy_message(item.value or "(default)", local, status, unread.hive, unread.reason)
            return ItemVerdict(Status.NOT_CHECKED, text + label, evidence, actual, expected, reason=text)
        return ItemVerdict(status, f"{message} (local value; no Group Policy override)", evidence, actual, expected)
    status, message = judge(item, effective, severity, label)
    actual, expected = _typed(item, effective)
    local_text = (
        f"local value {format_data(local.data)} at {local.key_path} is overridden"
        if local.present
        else f"no local value at {local.key_path}"
    )
    return ItemVerdict(
        status,
        f"{message} (effective value set by Group Policy at {effective.key_path}; {local_text})",
        evidence,
        actual,
        expected,
        policy_key=effective.key_path,
    )


def evaluate_items(ctx: AuditContext, items: Sequence[Item], severity: Severity, expected: Any = None) -> Outcome:
    """The verdict of a row: every item evaluated, the worst status wins, every message kept."""
    return _evaluate(ctx, items, severity, expected)[0]


def _policy_fix(key_path: str, item: Item) -> str | None:
    """The line that sets a Group Policy value to what Azure expects (the local fix would change nothing
    while the policy wins); ``None`` when the expected value is not one DWORD."""
    if item.compare != "eq" or not isinstance(item.expected, int) or isinstance(item.expected, bool):
        return None
    if tuple(item.types) != (RegType.DWORD,):
        return None
    path = key_path.replace("HKLM\\", "HKLM:\\", 1)
    name = ps_arg(item.value)
    return f"Set-ItemProperty -Path {ps_string(path)} -Name {name} -Value {item.expected} -Type DWord -Force"


def _evaluate(
    ctx: AuditContext, items: Sequence[Item], severity: Severity, expected: Any = None
) -> tuple[Outcome, list[ItemVerdict]]:
    verdicts = [evaluate_item(ctx, item, severity) for item in items]
    return _outcome(verdicts, items, expected), verdicts


def _outcome(verdicts: list[ItemVerdict], items: Sequence[Item], expected: Any) -> Outcome:
    status = worst(v.status for v in verdicts)
    if all(v.status is Status.NOT_CHECKED for v in verdicts):
        reason = verdicts[0].reason or verdicts[0].message
        evidence = tuple(e for v in verdicts for e in v.evidence)
        if evidence:
            # Something was read (a local value) but it does not decide the verdict: show it.
            return Outcome(
                Status.NOT_CHECKED,
                "; ".join(v.message for v in verdicts),
                actual=verdicts[0].actual if len(verdicts) == 1 else None,
                evidence=evidence,
                reason=reason,
            )
        return Outcome(Status.NOT_CHECKED, f"not checked: {reason}", reason=reason)
    if len(items) == 1:
        actual: Any = verdicts[0].actual
        exp = (
            expected
            if expected is not None
            else (verdicts[0].expected if verdicts[0].expected is not None else items[0].expected)
        )
    else:
        actual = {(i.label or i.value): v.actual for i, v in zip(items, verdicts, strict=True)}
        exp = (
            expected
            if expected is not None
            else {
                (i.label or i.value): (v.expected if v.expected is not None else i.expected)
                for i, v in zip(items, verdicts, strict=True)
            }
        )
    reason = "; ".join(v.reason or v.message for v in verdicts if v.status is Status.NOT_CHECKED)
    # A verdict names what decided it: the items that are not as expected, or every item when all pass.
    shown = [v for v in verdicts if v.status is not Status.PASS] or verdicts
    return Outcome(
        status=status,
        message="; ".join(v.message for v in shown),
        expected=exp,
        actual=actual,
        evidence=tuple(e for v in verdicts for e in v.evidence),
        reason=reason,
    )


@dataclass(frozen=True)
class ValueRule:
    """One data row: a rule made of registry values only."""

    id: str
    title: str
    group: Group
    severity: Severity
    items: tuple[Item, ...]
    remediation: str
    baselines: tuple[str, ...] = BOTH
    rationale: str = ""
    #: the doc section, when it differs from the group's
    source: str = ""
    expected: Any = None
    #: documents the row cites beyond its baselines' and its group's
    references: tuple[str, ...] = field(default=())
    #: the hives the row reads, when not its group's
    hives: tuple[str, ...] | None = None

    def meta(self) -> RuleMeta:
        """The row's metadata: area, section and references derived from its group and baselines."""
        return self.group.meta(
            id=self.id,
            title=self.title,
            severity=self.severity,
            rationale=self.rationale,
            source=self.source,
            baselines=self.baselines,
            remediation=self.remediation,
            references=self.references,
            hives=self.hives,
        )

    def check(self, ctx: AuditContext) -> Outcome:
        outcome, verdicts = _evaluate(ctx, self.items, self.severity, self.expected)
        if outcome.status not in (Status.FAIL, Status.WARNING):
            return outcome
        bad = [(i, v) for i, v in zip(self.items, verdicts, strict=True) if v.status in (Status.FAIL, Status.WARNING)]
        if not any(v.policy_key for _, v in bad):
            return outcome
        # Group Policy sets the value that fails: the fix is the policy's, not the local line of the doc
        lines = [_policy_fix(v.policy_key, i) for i, v in bad if v.policy_key]
        if any(line is None for line in lines):
            return outcome
        if any(not v.policy_key for _, v in bad):
            lines.append(self.remediation)
        return replace(outcome, remediation="\n".join(dict.fromkeys(str(line) for line in lines)))


_VALUE_RULES: dict[str, ValueRule] = {}


def register_values(rows: Iterable[ValueRule]) -> list[Rule]:
    """Register data rows as rules (each row's check is :func:`evaluate_items` on its items)."""
    rules = []
    for row in rows:
        check: Callable[[AuditContext], Outcome] = row.check
        rules.append(register(Rule(row.meta(), check)))
        _VALUE_RULES[row.id] = row
    return rules


def value_rules() -> dict[str, ValueRule]:
    """Every data row registered so far, by rule id."""
    return dict(_VALUE_RULES)
