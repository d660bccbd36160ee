"""Shared wording for the renderers: status labels, evidence lines, the image's one-line identity.

Everything here reads a finished report; nothing evaluates a rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from enum import Enum
from typing import Any

from azvhdaudit.report import Evidence, Report, Result, Status

__all__ = [
    "UNSHOWN",
    "terminal_safe",
    "STATUS_ORDER",
    "STATUS_LABELS",
    "count_label",
    "describe_evidence",
    "evidence_location",
    "format_value",
    "identity",
    "group_by_area",
    "summary_line",
    "verdict",
]

#: characters a terminal acts on rather than shows: C0 controls but the line feed and the tab, DEL and C1 controls
#: (escape sequences move the cursor, clear the screen, recolour or retitle), and the bidirectional overrides and
#: isolates that reorder what follows them. What a report holds comes in part from the image (a hive's key names and
#: string values, a file's name): the text renderers write these characters as their escapes.
UNSHOWN = "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]"
_UNSHOWN_RE = re.compile(UNSHOWN)


def terminal_safe(text: str) -> str:
    """``text`` with every character a terminal would act on (:data:`UNSHOWN`) written as its escape (``\\x1b``)."""
    return _UNSHOWN_RE.sub(lambda m: repr(m.group())[1:-1], text)


#: the order statuses are shown in: problems first, then what was not established, then the rest
STATUS_ORDER: tuple[Status, ...] = (
    Status.FAIL,
    Status.ERROR,
    Status.WARNING,
    Status.NOT_CHECKED,
    Status.MANUAL,
    Status.WAIVED,
    Status.NOT_APPLICABLE,
    Status.PASS,
)

STATUS_LABELS: dict[Status, str] = {
    Status.PASS: "passed",
    Status.FAIL: "failed",
    Status.WARNING: "warnings",
    Status.NOT_APPLICABLE: "not applicable",
    Status.NOT_CHECKED: "not checked",
    Status.MANUAL: "manual",
    Status.ERROR: "errors",
    Status.WAIVED: "waived",
}


def count_label(status: Status, count: int) -> str:
    """``1 error``, ``2 errors``, ``3 not checked``."""
    label = STATUS_LABELS[status]
    if count == 1 and status in (Status.WARNING, Status.ERROR):
        label = label[:-1]
    return f"{count} {label}"


def baseline_states(report: Report) -> dict[tuple[str, str], str]:
    """(rule id, disk) -> ``"accepted"`` or ``"new"`` for the failures of a report judged against a golden
    baseline (``audit --baseline``: ``report.options["baseline"]``); empty without one."""
    judged = report.options.get("baseline") if isinstance(report.options, Mapping) else None
    if not isinstance(judged, Mapping):
        return {}
    states: dict[tuple[str, str], str] = {}
    for state in ("accepted", "new"):
        for item in judged.get(state) or ():
            if isinstance(item, Mapping):
                states[(str(item.get("rule_id")), str(item.get("disk") or "os"))] = state
    return states


def format_value(value: Any) -> str:
    """A value as a person reads it: ints also in hex when large, lists comma separated, mappings as
    ``name: value`` pairs, bytes in hex. Never a Python repr: a report is read by people and by tools that
    know nothing of Python."""
    return _format(value, nested=False)


def _format(value: Any, nested: bool) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, Enum):
        return _format(value.value, nested)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value} (0x{value:X})" if value > 9 else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{k}: {_format(v, True)}" for k, v in value.items())
        return f"({pairs})" if nested else pairs
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=str)
    if isinstance(value, (list, tuple)):
        sep = "; " if any(isinstance(v, Mapping) or is_dataclass(v) for v in value) else ", "
        return "[" + sep.join(_format(v, True) for v in value) + "]"
    return str(value)


def evidence_location(ev: Evidence) -> str:
    """Where the evidence is: ``HKLM\\SYSTEM\\ControlSet001\\...`` for a registry value (whether the key
    was recorded with the hive or as a full path), else the hive/store and key as recorded."""
    key = ev.key or ""
    if key.upper().startswith(("HKLM\\", "HKEY_LOCAL_MACHINE\\")) or not ev.hive:
        return key
    if key.upper().startswith(ev.hive.upper() + "\\") or key.upper() == ev.hive.upper():
        where = key
    else:
        where = "\\".join(p for p in (ev.hive, key) if p)
    if ev.source in ("registry", "policy"):
        return "HKLM\\" + where
    return where


def describe_evidence(ev: Evidence) -> str:
    """One line saying where a verdict's fact came from, and what is there.

    A registry value reads ``key  name  TYPE = data`` or ``key  name  (absent)``; a registry key (no value
    name) reads ``key  (key exists)`` or ``key  (key absent)``; a derived fact is marked ``(derived)``."""
    parts: list[str] = []
    if ev.source in ("registry", "policy"):
        where = evidence_location(ev)
        parts.append(("policy " if ev.source == "policy" else "") + where)
        if ev.value_name is None:
            parts.append("(key exists)" if ev.present else "(key absent)")
            if ev.actual is not None:
                parts.append(f"= {format_value(ev.actual)}")
        else:
            parts.append(ev.value_name or "(Default)")
            if ev.present:
                typed = f"{ev.type} " if ev.type else ""
                parts.append(f"{typed}= {format_value(ev.actual)}")
            else:
                parts.append("(absent)")
        if ev.control_set and ev.control_set.lower() not in where.lower():
            parts.append(f"[{ev.control_set}]")
        if ev.hive_dirty:
            parts.append("[hive dirty]")
    else:
        label = ev.source
        target = ev.key or ev.hive
        parts.append(f"{label}: {target}" if target else label)
        if ev.value_name:
            parts.append(ev.value_name)
        if ev.present or ev.actual is not None:
            parts.append(f"= {format_value(ev.actual)}")
        else:
            parts.append("(not found)")
    if ev.derived:
        parts.append("(derived)")
    line = "  ".join(parts)
    if ev.note:
        line += f"  ({ev.note})"
    return line


def identity(report: Report) -> str:
    """The image in one line: OS, build, architecture, generation, container."""
    facts = report.facts or {}
    bits: list[str] = []
    os_facts = facts.get("os") or {}
    name = os_facts.get("name") or os_facts.get("product_name")
    if name:
        build = os_facts.get("build")
        ubr = os_facts.get("ubr")
        detail = [f"build {build}" + (f".{ubr}" if ubr else "")] if build else []
        if os_facts.get("architecture"):
            detail.append(os_facts["architecture"])
        bits.append(name + (f" ({', '.join(detail)})" if detail else ""))
    if facts.get("generation"):
        bits.append(f"generation {facts['generation']}")
    container = facts.get("container") or {}
    if container.get("format"):
        bits.append(" ".join(str(x) for x in (container["format"].upper(), container.get("subtype")) if x))
    return ", ".join(bits)


def summary_line(report: Report) -> str:
    """``3 failed, 1 warning, 12 passed ...`` in the display order, zero counts left out."""
    counts = report.summary
    parts = [count_label(s, counts[s.value]) for s in STATUS_ORDER if counts.get(s.value)]
    return ", ".join(parts) if parts else "no rules evaluated"


def verdict(report: Report, fail_on: str = "fail") -> str:
    """``COMPLIANT`` or ``NOT COMPLIANT`` (as the exit code would say)."""
    return "NOT COMPLIANT" if report.exit_code(fail_on) else "COMPLIANT"


def group_by_area(results: Iterable[Result]) -> dict[str, list[Result]]:
    """Results grouped by area, areas sorted, results by id within each area."""
    groups: dict[str, list[Result]] = {}
    for result in results:
        groups.setdefault(result.area, []).append(result)
    return {area: sorted(groups[area], key=lambda r: (r.rule_id, r.disk)) for area in sorted(groups)}
