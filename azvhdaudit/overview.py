"""A fleet at a glance: many reports as one matrix of images × areas, per-rule failure counts, and the
identities the images share.

    >>> from azvhdaudit.overview import fleet_report
    >>> fleet = fleet_report(azvhdaudit.audit_many(paths, workers=4))        # doctest: +SKIP
    >>> open("fleet.html", "w").write(fleet.to_html())                       # doctest: +SKIP
    >>> fleet.duplicates                                                     # doctest: +SKIP

- The matrix: per image and area, the worst status of the area's results (in the order of
  :data:`azvhdaudit.render._common.STATUS_ORDER`: fail, error, warning, not checked, manual, waived, not
  applicable, pass) with the counts behind it.
- Per rule: how many images fail it (fail or error) and how many warn.
- Duplicate identities: images that are **not generalized** (their Sysprep state is anything but
  ``generalized``) and share a ComputerName (``SYSTEM\\CurrentControlSet\\Control\\ComputerName\\ComputerName``),
  a ``SOFTWARE\\Microsoft\\Cryptography\\MachineGuid`` or — read only with ``with_lsa`` — a machine SID
  (the account domain SID in ``SECURITY\\Policy\\PolAcDmS``). Such clones collide in a domain. Generalized
  images are left out: they take a new computer name and SID when deployed. An identity that could not be
  read is compared with nothing.

The identity is recorded in ``Report.facts["extra"]["identity"]`` by :func:`record_identity`, which
:func:`audit_with_identity` (the command line's audit) and :func:`azvhdaudit.fleet.audit_many` call while
the image is open (with ``identity=True``). Reports without it (older JSON reports, plain
:func:`~azvhdaudit.engine.audit`) have no identity to compare; the fleet's notes say how many.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azvhdaudit.identity import (  # the identity half, re-exported: the fleet view compares what it records
    COMPUTER_NAME_KEY,
    MACHINE_GUID_KEY,
    MACHINE_SID_KEY,
    audit_with_identity,
    identity_facts,
    machine_sid,
    record_identity,
)
from azvhdaudit.render._common import STATUS_ORDER
from azvhdaudit.report import Report, Status

__all__ = [
    "COMPUTER_NAME_KEY",
    "MACHINE_GUID_KEY",
    "MACHINE_SID_KEY",
    "identity_facts",
    "record_identity",
    "machine_sid",
    "audit_with_identity",
    "ImageRow",
    "RuleCount",
    "DuplicateIdentity",
    "FleetReport",
    "fleet_report",
]

# --- the fleet ----------------------------------------------------------------------------------------

_ORDER = {s.value: i for i, s in enumerate(STATUS_ORDER)}


def worst(statuses: Iterable[str]) -> str | None:
    """The worst of ``statuses`` in display order (fail first), ``None`` for none."""
    items = list(statuses)
    return min(items, key=lambda s: _ORDER.get(s, 99)) if items else None


@dataclass
class ImageRow:
    """One image of the fleet."""

    index: int
    source: str
    name: str
    #: ``compliant``, ``failing`` or ``unreadable`` (the image could not be audited)
    verdict: str
    summary: dict[str, int]
    identity: str
    sysprep_state: str | None
    #: area -> {"worst": status, "counts": {status: n}}
    areas: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: rule ids (with ``[disk]`` off the OS disk) that fail or error
    failing: list[str] = field(default_factory=list)
    warning: list[str] = field(default_factory=list)
    computer_name: str | None = None
    machine_guid: str | None = None
    machine_sid: str | None = None
    #: whether the report holds the image's identity at all (``facts["extra"]["identity"]``)
    identity_recorded: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class RuleCount:
    """How many images fail (or warn on) one rule."""

    rule_id: str
    title: str
    area: str
    severity: str
    failing: int
    warning: int
    #: the indexes (:attr:`ImageRow.index`) of the images failing it
    images: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class DuplicateIdentity:
    """An identity shared by images that are not generalized."""

    #: ``computer_name``, ``machine_guid`` or ``machine_sid``
    kind: str
    value: str
    images: list[str]
    #: each image's Sysprep state, in the order of ``images``
    states: list[str | None] = field(default_factory=list)

    @property
    def message(self) -> str:
        label = {"computer_name": "ComputerName", "machine_guid": "MachineGuid", "machine_sid": "machine SID"}
        return (
            f"{len(self.images)} images not generalized share the {label[self.kind]} {self.value}: "
            + ", ".join(self.images)
            + " — clones that will collide in a domain"
        )

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["message"] = self.message
        return data


@dataclass
class FleetReport:
    """Many reports at a glance (see the module's documentation)."""

    images: list[ImageRow]
    areas: list[str]
    rules: list[RuleCount]
    duplicates: list[DuplicateIdentity]
    notes: list[str] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list, repr=False)
    tool_version: str = ""

    @property
    def warnings(self) -> list[str]:
        """The fleet-level warnings, in words."""
        return [d.message for d in self.duplicates]

    @property
    def summary(self) -> dict[str, int]:
        counts = {"images": len(self.images), "compliant": 0, "failing": 0, "unreadable": 0}
        for row in self.images:
            counts[row.verdict] += 1
        counts["duplicate_identities"] = len(self.duplicates)
        return counts

    def exit_code(self) -> int:
        return 1 if any(row.verdict != "compliant" for row in self.images) else 0

    def to_dict(self) -> dict[str, Any]:
        """The structure of ``schemas/fleet.schema.json``."""
        return {
            "schema_version": FLEET_SCHEMA_VERSION,
            "kind": "azvhdaudit-fleet",
            "tool": {"name": "azvhdaudit", "version": self.tool_version},
            "summary": self.summary,
            "areas": list(self.areas),
            "images": [row.to_dict() for row in self.images],
            "rules": [rule.to_dict() for rule in self.rules],
            "duplicates": [d.to_dict() for d in self.duplicates],
            "notes": list(self.notes),
        }

    def to_html(self, **options: Any) -> str:
        from azvhdaudit.render.fleet import render_html

        return render_html(self, **options)

    def to_json(self) -> str:
        from azvhdaudit.render.fleet import render_json

        return render_json(self)

    def to_csv(self) -> str:
        from azvhdaudit.render.fleet import render_csv

        return render_csv(self)

    def to_dataframe(self) -> Any:
        """Every result of every image as one long ``pandas.DataFrame`` (one row per image and rule)."""
        from azvhdaudit.render.dataframe import to_dataframe

        return to_dataframe(self.reports)


#: version of :meth:`FleetReport.to_dict`'s structure
FLEET_SCHEMA_VERSION = "1.0"


def _display_names(reports: list[Report]) -> list[str]:
    """File names, or the path as given where two images share a name."""
    names = [os.path.basename(r.source.rstrip("/\\")) or r.source for r in reports]
    return [name if names.count(name) == 1 else r.source for name, r in zip(names, reports, strict=True)]


def _row(index: int, report: Report, name: str) -> ImageRow:
    from azvhdaudit.fleet import UNREADABLE_ID
    from azvhdaudit.render._common import identity

    unreadable = report.get(UNREADABLE_ID) is not None
    verdict = "unreadable" if unreadable else ("failing" if report.exit_code() else "compliant")
    areas: dict[str, dict[str, Any]] = {}
    failing, warning = [], []
    for result in report.results:
        entry = areas.setdefault(result.area, {"worst": None, "counts": {}})
        entry["counts"][result.status.value] = entry["counts"].get(result.status.value, 0) + 1
        label = result.rule_id + (f" [{result.disk}]" if result.disk != "os" else "")
        if result.status in (Status.FAIL, Status.ERROR):
            failing.append(label)
        elif result.status is Status.WARNING:
            warning.append(label)
    for entry in areas.values():
        entry["worst"] = worst(entry["counts"])
    extra = (report.facts or {}).get("extra") or {}
    ident = extra.get("identity") or {}
    sysprep = extra.get("sysprep") or {}
    return ImageRow(
        index=index,
        source=report.source,
        name=name,
        verdict=verdict,
        summary=report.summary,
        identity=identity(report),
        sysprep_state=sysprep.get("state"),
        areas=areas,
        failing=failing,
        warning=warning,
        computer_name=ident.get("computer_name"),
        machine_guid=ident.get("machine_guid"),
        machine_sid=ident.get("machine_sid"),
        identity_recorded="identity" in extra,
    )


def _rules(reports: list[Report]) -> list[RuleCount]:
    counts: dict[str, RuleCount] = {}
    for index, report in enumerate(reports):
        for result in report.results:
            rule = counts.get(result.rule_id)
            if rule is None:
                rule = counts[result.rule_id] = RuleCount(
                    result.rule_id, result.title, result.area, result.severity.value, 0, 0
                )
            if result.status in (Status.FAIL, Status.ERROR):
                if index not in rule.images:
                    rule.failing += 1
                    rule.images.append(index)
            elif result.status is Status.WARNING:
                rule.warning += 1
    return sorted(counts.values(), key=lambda r: (-r.failing, -r.warning, r.rule_id))


def _duplicates(rows: list[ImageRow]) -> tuple[list[DuplicateIdentity], list[str]]:
    notes = []
    candidates = [row for row in rows if row.verdict != "unreadable" and row.sysprep_state != "generalized"]
    skipped = sum(1 for row in rows if row.sysprep_state == "generalized")
    if skipped:
        notes.append(
            f"{skipped} generalized image{'s' if skipped != 1 else ''} not compared for duplicate "
            "identities: a generalized image takes a new computer name and SID when deployed"
        )
    if any(row.identity_recorded and row.machine_sid is None for row in candidates) and len(candidates) > 1:
        notes.append("machine SIDs are compared only where the SECURITY hive was read (audit with --with-lsa)")
    unrecorded = [row for row in candidates if not row.identity_recorded]
    if unrecorded:
        notes.append(
            f"{len(unrecorded)} image{'s' if len(unrecorded) != 1 else ''} without a recorded identity, "
            "not compared for duplicates (audit with the command line, audit_many(..., identity=True) or "
            "azvhdaudit.overview.audit_with_identity)"
        )
    found = []
    for kind in ("computer_name", "machine_guid", "machine_sid"):
        groups: dict[str, list[ImageRow]] = {}
        for row in candidates:
            value = getattr(row, kind)
            if value:
                groups.setdefault(value.upper() if kind == "computer_name" else value, []).append(row)
        for _key, members in sorted(groups.items()):
            if len(members) > 1:
                found.append(
                    DuplicateIdentity(
                        kind, getattr(members[0], kind), [m.name for m in members], [m.sysprep_state for m in members]
                    )
                )
    return found, notes


def fleet_report(reports: Iterable[Report | Mapping[str, Any]]) -> FleetReport:
    """The fleet view of ``reports`` (Report objects, or their ``to_dict()`` mappings), in the order given."""
    from azvhdaudit.diff import as_report

    items = [as_report(r) for r in reports]
    names = _display_names(items)
    rows = [_row(i, report, name) for i, (report, name) in enumerate(zip(items, names, strict=True))]
    areas = sorted({area for row in rows for area in row.areas})
    duplicates, notes = _duplicates(rows)
    version = items[0].tool_version if items else ""
    return FleetReport(
        images=rows,
        areas=areas,
        rules=_rules(items),
        duplicates=duplicates,
        notes=notes,
        reports=items,
        tool_version=version,
    )
