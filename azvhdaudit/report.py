"""Results and reports: what an audit produces, in one stable shape.

States follow the XCCDF idea of a small closed set, each with a one-line meaning. The engine — not
the rule — decides waived / not selected / error; a rule decides pass / fail / warning / not applicable /
not checked / manual.
"""

from __future__ import annotations

import copy
import datetime as _dt
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azvhdaudit.capabilities import Capabilities

__all__ = [
    "Status",
    "Severity",
    "Evidence",
    "Outcome",
    "Result",
    "Report",
    "SCHEMA_VERSION",
]

#: version of the structure :meth:`Report.to_dict` returns; bumped on any incompatible change
SCHEMA_VERSION = "1.1"


class Status(str, Enum):
    """The verdict of one rule on one image."""

    PASS = "pass"
    FAIL = "fail"
    WARNING = "warning"
    NOT_APPLICABLE = "not_applicable"
    NOT_CHECKED = "not_checked"
    MANUAL = "manual"
    ERROR = "error"
    WAIVED = "waived"

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]

    @property
    def is_problem(self) -> bool:
        """Fail, warning and error are problems; everything else is not."""
        return self in (Status.FAIL, Status.WARNING, Status.ERROR)

    def __str__(self) -> str:
        return self.value


_MEANINGS = {
    Status.PASS: "the image meets the requirement, shown by the evidence",
    Status.FAIL: "the image does not meet a required setting",
    Status.WARNING: "a recommended setting is not met",
    Status.NOT_APPLICABLE: "the requirement does not apply to this image (the reason says why)",
    Status.NOT_CHECKED: "the evidence could not be read (hive missing, volume encrypted) — not a pass",
    Status.MANUAL: "the step needs a running VM; it was not and cannot be checked offline",
    Status.ERROR: "the rule itself failed on this image; the audit went on",
    Status.WAIVED: "the rule's result is set aside by a waiver (with its reason)",
}


class Severity(str, Enum):
    """How much a rule matters for the VM working in Azure."""

    REQUIRED = "required"  #: a step of the doc's main preparation sections
    RECOMMENDED = "recommended"  #: the doc's recommended configurations, or a diagnostic aid
    ADVISORY = "advisory"  #: a judgement call or a heuristic
    INFORMATIONAL = "informational"  #: data collection only, never a problem

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Evidence:
    """Where a verdict's facts came from.

    For a registry value: the hive, the resolved key path, the value name, its type, the raw and the
    decoded data, the control set used and whether the hive was dirty. For a registry key
    (``value_name`` is ``None``) ``present`` says whether the key exists and ``note`` what it holds. For
    other sources (the container, a file, the BCD store) ``hive`` is empty and ``source`` names it.

    ``derived`` marks a fact computed from what was read (a count, a summary over several keys, a
    decoded blob) rather than one value as stored: ``actual`` is then the computed fact, and ``type`` and
    ``raw`` stay empty.
    """

    #: ``registry`` (local value), ``policy`` (Group Policy value), ``container``, ``file``, ``bcd``, ``facts``
    source: str
    hive: str = ""
    key: str = ""
    value_name: str | None = None
    type: str | None = None
    raw: str | None = None  # hex of the raw bytes, so the structure stays JSON-friendly
    actual: Any = None
    present: bool = False
    control_set: str | None = None
    hive_dirty: bool | None = None
    note: str = ""
    derived: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Every field, as :func:`dataclasses.asdict` gives them (values deep-copied)."""
        return {name: _plain(getattr(self, name)) for name in _EVIDENCE_FIELDS}


@dataclass(frozen=True)
class Outcome:
    """What a rule's check returns; the engine adds the rule's metadata to make a :class:`Result`."""

    status: Status
    message: str
    expected: Any = None
    actual: Any = None
    evidence: tuple[Evidence, ...] = ()
    #: for not applicable / not checked: why
    reason: str = ""
    #: the fix computed from this finding (a command naming this image and the size it needs); empty: the
    #: rule's own fix line applies
    remediation: str = ""
    #: for a FAIL ("the requirement is not met"): whether the deployment target requires it; ``None``: as the
    #: rule's group declares (:attr:`~azvhdaudit.rules.base.RuleMeta.required_for`). The engine makes the status.
    required: bool | None = None


@dataclass(frozen=True)
class Result:
    """The verdict of one rule, with everything needed to understand and fix it."""

    rule_id: str
    title: str
    area: str
    severity: Severity
    status: Status
    message: str
    expected: Any = None
    actual: Any = None
    evidence: tuple[Evidence, ...] = ()
    reason: str = ""
    remediation: str = ""
    rationale: str = ""
    source: str = ""
    baselines: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    #: the disk this result is about (``os`` or a data disk's name)
    disk: str = "os"
    duration_ms: float = 0.0
    #: the status before a waiver replaced it
    waived_status: Status | None = None

    def to_dict(self) -> dict[str, Any]:
        """Every field in order, values deep-copied as :func:`dataclasses.asdict` does; the states as their
        values, the evidence as dicts, baselines and references as lists."""
        data = {name: None if name == "evidence" else _plain(getattr(self, name)) for name in _RESULT_FIELDS}
        data["severity"] = self.severity.value
        data["status"] = self.status.value
        data["waived_status"] = self.waived_status.value if self.waived_status else None
        data["evidence"] = [e.to_dict() for e in self.evidence]
        data["baselines"] = list(self.baselines)
        data["references"] = list(self.references)
        return data

    def __repr__(self) -> str:
        from azvhdaudit.render.display import result_repr

        return result_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter display: the result as the HTML report's row, opened."""
        from azvhdaudit.render.display import result_html

        return result_html(self)


#: the fields to_dict lists, in order (a result's evidence is converted item by item, with Evidence.to_dict)
_EVIDENCE_FIELDS = tuple(f.name for f in fields(Evidence))
_RESULT_FIELDS = tuple(f.name for f in fields(Result))
#: values that dataclasses.asdict's deep copy returns as they are
_ATOMIC = frozenset({str, int, float, bool, type(None), bytes})


def _plain(value: Any) -> Any:
    """What :func:`dataclasses.asdict` makes of a field's value (a deep copy, dataclasses as dicts, containers of
    the same type), without its per-value ``deepcopy`` calls for the strings, numbers and enums reports hold:
    building a report's dict is most of rendering it."""
    kind = type(value)
    if kind in _ATOMIC or isinstance(value, Enum):
        return value
    if kind is list:
        return [_plain(item) for item in value]
    if kind is dict:
        return {_plain(key): _plain(item) for key, item in value.items()}
    if kind is tuple:
        return tuple(_plain(item) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple, as asdict rebuilds it
        return kind(*[_plain(item) for item in value])
    if isinstance(value, (list, tuple)):
        return kind(_plain(item) for item in value)
    if isinstance(value, dict):
        return kind((_plain(key), _plain(item)) for key, item in value.items())
    return copy.deepcopy(value)


@dataclass
class Report:
    """The audit of one image (or one VM's set of disks)."""

    source: str
    profile: str
    results: list[Result] = field(default_factory=list)
    #: image facts as a JSON-friendly mapping (see :class:`azvhdaudit.facts.ImageFacts`)
    facts: dict[str, Any] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    tool_version: str = ""
    started: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc))
    options: dict[str, Any] = field(default_factory=dict)
    #: per disk, by the name results carry (``os``, ``data1:<file>`` ...): ``role``, ``source``, ``windows``,
    #: ``drive_letters`` (the letters the OS disk's Windows gives it; ``None`` when not read), ``summary``
    #: (counts of its results) and, for a data disk, its ``facts``; the OS disk's entry also holds the VM's
    #: ``drive_letter_map`` (letter -> disk and partition, from ``SYSTEM\\MountedDevices``)
    disks: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: where the VM is to run, as given and resolved for the image (``security_type``, ``disk_controller``,
    #: ``effective_security_type``, ``effective_disk_controller``); empty when no image was audited
    target: dict[str, Any] = field(default_factory=dict)

    @property
    def target_text(self) -> str:
        """The target in words (``TrustedLaunch (default for Generation 2), SCSI disk controller (default)``);
        empty when no image was audited."""
        if not self.target:
            return ""
        generation = (self.facts or {}).get("generation")
        security = self.target.get("effective_security_type") or "?"
        if not self.target.get("security_type"):
            security += f" (default for Generation {generation})" if generation else " (default)"
        controller = f"{self.target.get('effective_disk_controller') or '?'} disk controller"
        if not self.target.get("disk_controller"):
            controller += " (default)"
        return f"{security}, {controller}"

    @property
    def capabilities(self) -> Capabilities:
        """What the image can run as in Azure (:class:`azvhdaudit.capabilities.Capabilities`), derived from
        this report's facts and results; the image is not read again."""
        from azvhdaudit.capabilities import derive_capabilities

        return derive_capabilities(self)

    # --- querying -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Result]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, rule_id: str) -> Result:
        for result in self.results:
            if result.rule_id == rule_id:
                return result
        raise KeyError(rule_id)

    def get(self, rule_id: str, disk: str = "os") -> Result | None:
        for result in self.results:
            if result.rule_id == rule_id and result.disk == disk:
                return result
        return None

    def filter(
        self,
        status: Status | str | Iterable[Status | str] | None = None,
        area: str | Iterable[str] | None = None,
        severity: Severity | str | Iterable[Severity | str] | None = None,
        disk: str | None = None,
    ) -> list[Result]:
        """Results matching every criterion given (each a value or several)."""

        def norm(v: Any) -> set[str] | None:
            if v is None:
                return None
            if isinstance(v, (str, Enum)):
                v = [v]
            return {x.value if isinstance(x, Enum) else str(x) for x in v}

        statuses, areas, severities = norm(status), norm(area), norm(severity)
        return [
            r
            for r in self.results
            if (statuses is None or r.status.value in statuses)
            and (areas is None or r.area in areas)
            and (severities is None or r.severity.value in severities)
            and (disk is None or r.disk == disk)
        ]

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(r.status.value for r in self.results)
        return {s.value: counts.get(s.value, 0) for s in Status}

    def disk_summary(self, disk: str) -> dict[str, int]:
        """:attr:`summary` for one disk's results (``os``, ``vm`` or a data disk's name)."""
        counts = Counter(r.status.value for r in self.results if r.disk == disk)
        return {s.value: counts.get(s.value, 0) for s in Status}

    @property
    def failed(self) -> list[Result]:
        return self.filter(status=(Status.FAIL, Status.ERROR))

    @property
    def passed(self) -> bool:
        """True when no rule failed or errored (warnings allowed)."""
        return not self.failed

    def exit_code(self, fail_on: str = "fail") -> int:
        """0 compliant, 1 rules failed (or warned, with ``fail_on="warning"``)."""
        bad = {Status.FAIL, Status.ERROR}
        if fail_on == "warning":
            bad.add(Status.WARNING)
        return 1 if any(r.status in bad for r in self.results) else 0

    # --- serialising --------------------------------------------------------------------------

    def __repr__(self) -> str:
        """One line: the image, the verdict and the counts (the results are in ``.results``)."""
        from azvhdaudit.render.display import report_repr

        return report_repr(self)

    def _repr_html_(self) -> str:
        """Jupyter display: the HTML report's look, with a filter that needs no script."""
        from azvhdaudit.render.html import render_fragment

        return render_fragment(self)

    def to_dataframe(self) -> Any:
        """One row per result as a ``pandas.DataFrame`` (needs the ``pandas`` extra)."""
        from azvhdaudit.render.dataframe import to_dataframe

        return to_dataframe(self)

    def to_dict(self) -> dict[str, Any]:
        """A stable, versioned structure (``schema_version``) of the whole report (``capabilities`` only when an
        image was audited)."""
        data = {
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "azvhdaudit", "version": self.tool_version},
            "source": self.source,
            "profile": self.profile,
            "started": self.started.isoformat(),
            "options": dict(self.options),
            "target": dict(self.target),
            "facts": self.facts,
            "disks": self.disks,
            "summary": self.summary,
            "timings_ms": dict(self.timings_ms),
            "results": [r.to_dict() for r in self.results],
        }
        if self.facts:
            data["capabilities"] = self.capabilities.to_dict()
        return data


def _evidence_repr(self: Evidence) -> str:
    """One line saying where the fact came from (the dataclass's repr lists every field)."""
    from azvhdaudit.render.display import evidence_repr

    return evidence_repr(self)


Evidence.__repr__ = _evidence_repr  # type: ignore[method-assign,assignment]
