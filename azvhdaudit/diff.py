"""What changed between two audits of an image: verdicts, facts and the registry evidence behind them.

    >>> import azvhdaudit
    >>> d = azvhdaudit.diff("last-week.json", "build/os.vhd")        # doctest: +SKIP
    >>> [c.rule_id for c in d.new_failures], d.exit_code()           # doctest: +SKIP

Each side is an image (audited now), a JSON report written by ``azvhdaudit audit --format json`` (read
with :func:`load_report`), a :class:`~azvhdaudit.report.Report`, or a report's ``to_dict()`` mapping.
Nothing is judged again: the diff compares what the two reports say.

- **Verdicts**: per rule (and disk), the status on each side. A rule that fails or errors now and did not
  before is a *new failure*; one that failed before and passes (or no longer applies) is *fixed*; one whose
  evidence could be read before and cannot now is *newly not checked* — what was known is no longer known.
  These three, and new warnings with ``fail_on="warning"``, are regressions: :meth:`Diff.exit_code` is 1.
- **Facts**: the image's identity that moves build by build — OS build and UBR, generation, container,
  Sysprep state, agent version — and, from the evidence of the rules, the version of every binary read
  and every BCD element read.
- **Evidence**: every registry (and Group Policy) value a rule read whose type, presence or data changed,
  with both values. Keys are compared with the control set folded to ``CurrentControlSet``, so an image
  whose current set moved from ControlSet001 to ControlSet002 still pairs its values.

Reports are read back by :func:`load_report`: schema 1.x (every version this package has written) is
read, fields added later taking their defaults; any other ``schema_version`` is refused with
:class:`ReportFormatError` naming it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azvhdaudit.errors import AuditError
from azvhdaudit.report import SCHEMA_VERSION, Evidence, Report, Result, Severity, Status

__all__ = [
    "ReportFormatError",
    "VerdictChange",
    "FactChange",
    "EvidenceChange",
    "Diff",
    "diff",
    "load_report",
    "load_reports",
    "report_from_dict",
    "as_report",
    "compare",
    "is_json_file",
    "SUPPORTED_SCHEMA",
]

#: the major version of the report schema this package reads
SUPPORTED_SCHEMA = SCHEMA_VERSION.split(".", 1)[0]

#: verdicts that fail a run (``fail_on="fail"``)
_FAILING = {Status.FAIL, Status.ERROR}
#: verdicts that rest on evidence read (a rule that was judged)
_JUDGED = {Status.PASS, Status.FAIL, Status.WARNING, Status.ERROR}

_CONTROL_SET = re.compile(r"\\ControlSet\d{3}(?=\\|$)", re.IGNORECASE)


class ReportFormatError(AuditError, ValueError):
    """A JSON report that cannot be read back: not JSON, not a report, or a schema version this package
    does not know (the message names the file and the ``schema_version``)."""


# --- reading reports back ---------------------------------------------------------------------------


def _status(value: Any, where: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise ReportFormatError(f"{where}: unknown status {value!r}") from None


def _severity(value: Any, where: str) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        raise ReportFormatError(f"{where}: unknown severity {value!r}") from None


def _read_evidence(item: Mapping[str, Any]) -> Evidence:
    names = Evidence.__dataclass_fields__
    return Evidence(**{k: v for k, v in item.items() if k in names})


def report_from_dict(data: Mapping[str, Any], where: str = "report") -> Report:
    """A :class:`Report` from :meth:`Report.to_dict`'s structure (schema 1.x); ``where`` names it in errors."""
    import datetime as _dt

    if not isinstance(data, Mapping):
        raise ReportFormatError(f"{where}: not an azvhdaudit report (a JSON object was expected)")
    version = data.get("schema_version")
    if version is None:
        raise ReportFormatError(f"{where}: not an azvhdaudit report (no schema_version)")
    if str(version).split(".", 1)[0] != SUPPORTED_SCHEMA:
        raise ReportFormatError(
            f"{where}: schema_version {version!r} is not supported: this azvhdaudit reads "
            f"{SUPPORTED_SCHEMA}.x reports (it writes {SCHEMA_VERSION}); audit the image again with this version"
        )
    if "reports" in data and "results" not in data:
        raise ReportFormatError(
            f"{where}: holds {len(data['reports'])} reports; give a report of one image (load_reports reads all)"
        )
    results_data = data.get("results")
    if not isinstance(results_data, list):
        raise ReportFormatError(f"{where}: schema_version {version!r} report without a 'results' list")
    results = []
    names = Result.__dataclass_fields__
    for n, item in enumerate(results_data):
        if not isinstance(item, Mapping) or "rule_id" not in item or "status" not in item:
            raise ReportFormatError(f"{where}: results[{n}] is not a result (rule_id and status needed)")
        fields = {k: v for k, v in item.items() if k in names}
        fields["status"] = _status(item["status"], f"{where}: results[{n}]")
        fields["severity"] = _severity(item.get("severity", "advisory"), f"{where}: results[{n}]")
        fields["waived_status"] = _status(item["waived_status"], where) if item.get("waived_status") else None
        fields["evidence"] = tuple(_read_evidence(e) for e in item.get("evidence") or () if isinstance(e, Mapping))
        fields["baselines"] = tuple(item.get("baselines") or ())
        fields["references"] = tuple(item.get("references") or ())
        fields.setdefault("title", item["rule_id"])
        fields.setdefault("area", item["rule_id"].split(".", 1)[0])
        fields.setdefault("message", "")
        results.append(Result(**fields))
    started = _dt.datetime.now(_dt.timezone.utc)
    if isinstance(data.get("started"), str):
        try:
            started = _dt.datetime.fromisoformat(data["started"])
        except ValueError:
            pass
    tool = data.get("tool")
    if not isinstance(tool, Mapping):
        tool = {}
    return Report(
        source=str(data.get("source", where)),
        profile=str(data.get("profile", "azure")),
        results=results,
        facts=dict(data.get("facts") or {}),
        timings_ms=dict(data.get("timings_ms") or {}),
        tool_version=str(tool.get("version", "")),
        started=started,
        options=dict(data.get("options") or {}),
        disks=dict(data.get("disks") or {}),
    )


def _read_json(path: str | os.PathLike[str]) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ReportFormatError(f"{os.fspath(path)}: not a JSON report (not UTF-8 text: {err.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ReportFormatError(
            f"{os.fspath(path)}: not a JSON report (line {err.lineno} column {err.colno}: {err.msg})"
        ) from None


def load_reports(path: str | os.PathLike[str]) -> list[Report]:
    """Every report a JSON file holds (one report, or ``{"schema_version", "reports": [...]}``)."""
    data = _read_json(path)
    where = os.fspath(path)
    if isinstance(data, Mapping) and "reports" in data and "results" not in data:
        report_from_dict({"schema_version": data.get("schema_version"), "results": []}, where)  # version check
        items = data["reports"]
        if not isinstance(items, list):
            raise ReportFormatError(f"{where}: 'reports' is not a list")
        return [report_from_dict(item, f"{where} reports[{n}]") for n, item in enumerate(items)]
    return [report_from_dict(data, where)]


def load_report(path: str | os.PathLike[str]) -> Report:
    """The one report a JSON file holds (see :func:`report_from_dict`)."""
    return report_from_dict(_read_json(path), os.fspath(path))


def is_json_file(path: str) -> bool:
    if path.lower().endswith(".json"):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(64).lstrip()
    except OSError:
        return False
    return head.startswith(b"{")


def as_report(side: Report | Mapping[str, Any] | str | os.PathLike[str], **audit_kwargs: Any) -> Report:
    """A report from any of what :func:`diff` takes: a Report, a mapping, a JSON file, or an image to audit."""
    if isinstance(side, Report):
        return side
    if isinstance(side, Mapping):
        return report_from_dict(side)
    path = os.fspath(side)
    if "://" not in path and is_json_file(path):
        return load_report(path)
    from azvhdaudit.engine import audit

    return audit(path, **audit_kwargs)


# --- the diff -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerdictChange:
    """One rule whose status differs between the two reports (``None``: the rule is not in that report)."""

    rule_id: str
    disk: str
    title: str
    area: str
    severity: str
    old: str | None
    new: str | None
    #: ``new_failure``, ``fixed``, ``newly_not_checked``, ``new_warning``, ``improved``, ``changed``,
    #: ``added`` or ``removed``
    kind: str
    old_message: str = ""
    new_message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FactChange:
    """A fact about the image with a different value (``None``: unknown or absent on that side)."""

    #: a dotted name: ``os.build``, ``sysprep.state``, ``file:Windows\\System32\\drivers\\storport.sys``,
    #: ``bcd:{default}\\bootstatuspolicy`` ...
    name: str
    #: ``os``, ``image``, ``sysprep``, ``agent``, ``identity``, ``binary`` or ``bcd``
    group: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class EvidenceChange:
    """A registry value a rule read, different between the two images (both values, as read)."""

    hive: str
    #: the key with the control set folded to CurrentControlSet
    key: str
    value_name: str | None
    old_type: str | None
    new_type: str | None
    old: Any
    new: Any
    old_present: bool
    new_present: bool
    #: the keys as read on each side (the control set each used)
    old_key: str = ""
    new_key: str = ""
    source: str = "registry"
    #: the rules that read this value
    rules: tuple[str, ...] = ()

    @property
    def location(self) -> str:
        name = self.value_name if self.value_name is not None else ""
        return f"{self.key}\\{name or '(Default)'}"

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["rules"] = list(self.rules)
        data["location"] = self.location
        return data


_REGRESSIONS = ("new_failure", "newly_not_checked")


@dataclass
class Diff:
    """The difference between an old and a new report."""

    old_source: str
    new_source: str
    verdicts: list[VerdictChange] = field(default_factory=list)
    facts: list[FactChange] = field(default_factory=list)
    evidence: list[EvidenceChange] = field(default_factory=list)
    old_tool_version: str = ""
    new_tool_version: str = ""
    old_summary: dict[str, int] = field(default_factory=dict)
    new_summary: dict[str, int] = field(default_factory=dict)
    #: notes on what could not be compared (profiles differ, options differ)
    notes: list[str] = field(default_factory=list)

    def _kind(self, *kinds: str) -> list[VerdictChange]:
        return [v for v in self.verdicts if v.kind in kinds]

    @property
    def new_failures(self) -> list[VerdictChange]:
        return self._kind("new_failure")

    @property
    def fixed(self) -> list[VerdictChange]:
        return self._kind("fixed")

    @property
    def newly_not_checked(self) -> list[VerdictChange]:
        return self._kind("newly_not_checked")

    @property
    def new_warnings(self) -> list[VerdictChange]:
        return self._kind("new_warning")

    def regressions(self, fail_on: str = "fail") -> list[VerdictChange]:
        """New failures and newly not checked rules (and new warnings with ``fail_on="warning"``)."""
        kinds = _REGRESSIONS + (("new_warning",) if fail_on == "warning" else ())
        return self._kind(*kinds)

    def regressed(self, fail_on: str = "fail") -> bool:
        return bool(self.regressions(fail_on))

    def exit_code(self, fail_on: str = "fail") -> int:
        """1 when anything regressed, else 0."""
        return 1 if self.regressed(fail_on) else 0

    @property
    def changed(self) -> bool:
        """True when anything at all differs."""
        return bool(self.verdicts or self.facts or self.evidence)

    def to_dict(self, fail_on: str = "fail") -> dict[str, Any]:
        """The structure of ``schemas/diff.schema.json``."""
        return {
            "schema_version": DIFF_SCHEMA_VERSION,
            "kind": "azvhdaudit-diff",
            "old": {"source": self.old_source, "tool_version": self.old_tool_version, "summary": self.old_summary},
            "new": {"source": self.new_source, "tool_version": self.new_tool_version, "summary": self.new_summary},
            "regressed": self.regressed(fail_on),
            "counts": {
                "new_failures": len(self.new_failures),
                "fixed": len(self.fixed),
                "newly_not_checked": len(self.newly_not_checked),
                "new_warnings": len(self.new_warnings),
                "verdicts": len(self.verdicts),
                "facts": len(self.facts),
                "evidence": len(self.evidence),
            },
            "verdicts": [v.to_dict() for v in self.verdicts],
            "facts": [f.to_dict() for f in self.facts],
            "evidence": [e.to_dict() for e in self.evidence],
            "notes": list(self.notes),
        }


#: version of :meth:`Diff.to_dict`'s structure
DIFF_SCHEMA_VERSION = "1.0"


def classify(old: Status | None, new: Status | None) -> str:
    """The kind of a verdict change (see :class:`VerdictChange`)."""
    if old is None:
        if new in _FAILING:
            return "new_failure"
        return "new_warning" if new is Status.WARNING else "added"
    if new is None:
        return "removed"
    if new in _FAILING and old not in _FAILING:
        return "new_failure"
    if old in _FAILING and new not in _FAILING:
        if new is Status.NOT_CHECKED:
            return "newly_not_checked"
        if new is Status.WAIVED:  # set aside by a waiver, not repaired
            return "changed"
        return "fixed"
    if new is Status.NOT_CHECKED and old in _JUDGED:
        return "newly_not_checked"
    if new is Status.WARNING and old is not Status.WARNING and old not in _FAILING:
        return "new_warning"
    if old is Status.WARNING and new in (Status.PASS, Status.NOT_APPLICABLE):
        return "improved"
    if old is Status.NOT_CHECKED and new in _JUDGED:
        return "improved"
    return "changed"


def _verdicts(old: Report, new: Report) -> list[VerdictChange]:
    before = {(r.rule_id, r.disk): r for r in old.results}
    after = {(r.rule_id, r.disk): r for r in new.results}
    changes = []
    for key in sorted(set(before) | set(after), key=lambda k: (k[1] != "os", k[1], k[0])):
        a, b = before.get(key), after.get(key)
        sa, sb = (a.status if a else None), (b.status if b else None)
        if sa is sb:
            continue
        ref = b or a
        assert ref is not None
        changes.append(
            VerdictChange(
                rule_id=key[0],
                disk=key[1],
                title=ref.title,
                area=ref.area,
                severity=ref.severity.value,
                old=sa.value if sa else None,
                new=sb.value if sb else None,
                kind=classify(sa, sb),
                old_message=a.message if a else "",
                new_message=b.message if b else "",
            )
        )
    order = {
        "new_failure": 0,
        "newly_not_checked": 1,
        "new_warning": 2,
        "fixed": 3,
        "improved": 4,
        "changed": 5,
        "added": 6,
        "removed": 7,
    }
    return sorted(changes, key=lambda c: order.get(c.kind, 9))


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


#: (group, name, path in Report.facts)
_FACTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("os", "os.product_name", ("os", "product_name")),
    ("os", "os.edition_id", ("os", "edition_id")),
    ("os", "os.display_version", ("os", "display_version")),
    ("os", "os.build", ("os", "build")),
    ("os", "os.ubr", ("os", "ubr")),
    ("os", "os.architecture", ("os", "architecture")),
    ("os", "os.installation_type", ("os", "installation_type")),
    ("image", "generation", ("generation",)),
    ("image", "partition_style", ("partition_style",)),
    ("image", "container.format", ("container", "format")),
    ("image", "container.subtype", ("container", "subtype")),
    ("image", "container.virtual_size", ("container", "virtual_size")),
    ("image", "container.parents", ("container", "parents")),
    ("image", "current_control_set", ("current_control_set",)),
    ("sysprep", "sysprep.state", ("extra", "sysprep", "state")),
    ("sysprep", "sysprep.image_state", ("extra", "sysprep", "image_state")),
    ("sysprep", "sysprep.generalization_state", ("extra", "sysprep", "generalization_state")),
    ("sysprep", "pending_reboot", ("extra", "pending_reboot", "pending")),
    ("agent", "agent.version", ("extra", "agent", "version")),
    ("identity", "identity.computer_name", ("extra", "identity", "computer_name")),
    ("identity", "identity.machine_guid", ("extra", "identity", "machine_guid")),
    ("identity", "identity.machine_sid", ("extra", "identity", "machine_sid")),
)


def _parents(value: Any) -> Any:
    """A parent chain as the list of its file names (paths differ between machines, names do not)."""
    if not isinstance(value, (list, tuple)):
        return value
    return [os.path.basename(str(p.get("path", ""))) if isinstance(p, Mapping) else str(p) for p in value]


def _bcd_name(ev: Evidence, rules: Iterable[str]) -> str:
    # The element's key: "Boot\\BCD: Objects\\{guid}\\Elements\\16000009". Object GUIDs differ between
    # stores, the element type does not; the rule names which object ({bootmgr}, {default} ...).
    element = ev.key.rsplit("\\", 1)[-1]
    owner = sorted(rules)[0] if rules else ev.key
    return f"bcd:{owner}:{element}"


def _bcd_value(actual: Any) -> Any:
    if isinstance(actual, Mapping) and "description" in actual:
        return actual["description"]
    return actual


def _evidence_facts(report: Report) -> dict[str, tuple[str, Any]]:
    """Binary versions and BCD elements read by the rules: name -> (group, value)."""
    out: dict[str, tuple[str, Any]] = {}
    bcd_rules: dict[tuple[str, str], set[str]] = {}
    for result in report.results:
        for ev in result.evidence:
            if ev.source == "bcd":
                bcd_rules.setdefault((result.disk, ev.key), set()).add(result.rule_id)
    for result in report.results:
        prefix = "" if result.disk == "os" else f"{result.disk}:"
        for ev in result.evidence:
            if ev.source == "file" and (ev.value_name or "").lower() in ("fileversion", "productversion"):
                out[f"{prefix}file:{ev.key}"] = ("binary", ev.actual if ev.present else None)
            elif ev.source == "bcd" and ev.key:
                rules = bcd_rules.get((result.disk, ev.key), set())
                out[prefix + _bcd_name(ev, rules)] = ("bcd", _bcd_value(ev.actual) if ev.present else None)
    return out


def _facts(old: Report, new: Report) -> list[FactChange]:
    changes = []
    for group, name, path in _FACTS:
        a, b = _get(old.facts, *path), _get(new.facts, *path)
        if name == "container.parents":
            a, b = _parents(a), _parents(b)
        if a != b:
            changes.append(FactChange(name=name, group=group, old=a, new=b))
    # A binary or BCD element read on one side only was not looked at on the other (the rules read what
    # applies to each OS): nothing is known to have changed. One read on both sides and absent on one is.
    before, after = _evidence_facts(old), _evidence_facts(new)
    for name in sorted(set(before) & set(after)):
        (group, va), (_, vb) = before[name], after[name]
        if va != vb:
            changes.append(FactChange(name=name, group=group, old=va, new=vb))
    return changes


def _registry_key(ev: Evidence) -> tuple[str, str, str | None]:
    from azvhdaudit.render._common import evidence_location

    where = evidence_location(ev)
    folded = _CONTROL_SET.sub(r"\\CurrentControlSet", where)
    return (ev.source, folded.lower(), (ev.value_name or "").lower() if ev.value_name is not None else None)


def _registry(report: Report) -> dict[tuple[str, str, str | None], tuple[Evidence, str, set[str]]]:
    from azvhdaudit.render._common import evidence_location

    out: dict[tuple[str, str, str | None], tuple[Evidence, str, set[str]]] = {}
    for result in report.results:
        for ev in result.evidence:
            if ev.source not in ("registry", "policy"):
                continue
            key = _registry_key(ev)
            if key in out:
                out[key][2].add(result.rule_id)
            else:
                out[key] = (ev, evidence_location(ev), {result.rule_id})
    return out


def _evidence(old: Report, new: Report) -> list[EvidenceChange]:
    before, after = _registry(old), _registry(new)
    changes = []
    for key in sorted(set(before) & set(after)):
        (a, where_a, rules_a), (b, where_b, rules_b) = before[key], after[key]
        if (a.present, a.type, a.actual) == (b.present, b.type, b.actual):
            continue
        folded = _CONTROL_SET.sub(r"\\CurrentControlSet", where_b)
        changes.append(
            EvidenceChange(
                hive=b.hive or a.hive,
                key=folded,
                value_name=b.value_name,
                old_type=a.type,
                new_type=b.type,
                old=a.actual,
                new=b.actual,
                old_present=a.present,
                new_present=b.present,
                old_key=where_a,
                new_key=where_b,
                source=b.source,
                rules=tuple(sorted(rules_a | rules_b)),
            )
        )
    return changes


def _plain(report: Report) -> Report:
    """The report as its JSON says it: a live report and one read back compare alike (tuples are lists)."""
    from azvhdaudit.render.json import to_jsonable

    return report_from_dict(to_jsonable(report), report.source)


def compare(old: Report, new: Report) -> Diff:
    """The :class:`Diff` of two finished reports."""
    old, new = _plain(old), _plain(new)
    notes = []
    if old.profile != new.profile:
        notes.append(f"the reports were judged against different profiles: {old.profile} and {new.profile}")
    for option in ("select", "ignore", "image_type", "role", "with_lsa"):
        a, b = old.options.get(option), new.options.get(option)
        if a != b and (a or b):
            notes.append(f"the audits differ in option {option}: {a!r} and {b!r}")
    return Diff(
        old_source=old.source,
        new_source=new.source,
        verdicts=_verdicts(old, new),
        facts=_facts(old, new),
        evidence=_evidence(old, new),
        old_tool_version=old.tool_version,
        new_tool_version=new.tool_version,
        old_summary=old.summary,
        new_summary=new.summary,
        notes=notes,
    )


def diff(
    old: Report | Mapping[str, Any] | str | os.PathLike[str],
    new: Report | Mapping[str, Any] | str | os.PathLike[str],
    **audit_kwargs: Any,
) -> Diff:
    """What changed from ``old`` to ``new``: each a Report, a report mapping, a JSON report file, or an image.

    Images are audited with ``audit_kwargs`` (those of :func:`azvhdaudit.engine.audit`); JSON reports are
    read as they were written. Raises :class:`ReportFormatError` for a JSON file that is not a readable report.
    """
    return compare(as_report(old, **audit_kwargs), as_report(new, **audit_kwargs))


class _CallableModule(types.ModuleType):
    """``azvhdaudit.diff`` is this module once it is imported; calling it calls :func:`diff`, so
    ``azvhdaudit.diff(old, new)`` works whether or not the module was imported first."""

    def __call__(
        self,
        old: Report | Mapping[str, Any] | str | os.PathLike[str],
        new: Report | Mapping[str, Any] | str | os.PathLike[str],
        **audit_kwargs: Any,
    ) -> Diff:
        return diff(old, new, **audit_kwargs)


sys.modules[__name__].__class__ = _CallableModule
