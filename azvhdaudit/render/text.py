"""Terminal text: summary first, then problems grouped by area with evidence and fix under each.

Colour (ANSI SGR) only when the caller asks for it; the CLI asks only on a terminal without ``NO_COLOR``
(https://no-color.org).
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from azvhdaudit.render import as_reports
from azvhdaudit.render._common import (
    STATUS_LABELS,
    UNSHOWN,
    describe_evidence,
    format_value,
    group_by_area,
    identity,
    verdict,
)
from azvhdaudit.render._lead import Group, groups, headline, no_windows
from azvhdaudit.report import Report, Result, Status

__all__ = ["render", "MARKS"]

_RESET = "\033[0m"
_STYLE = {
    Status.PASS: "\033[32m",
    Status.FAIL: "\033[1;31m",
    Status.ERROR: "\033[1;35m",
    Status.WARNING: "\033[33m",
    Status.NOT_CHECKED: "\033[36m",
    Status.MANUAL: "\033[34m",
    Status.WAIVED: "\033[2m",
    Status.NOT_APPLICABLE: "\033[2m",
}
_BOLD = "\033[1m"
_DIM = "\033[2m"

#: the mark printed before a rule id, per status
MARKS: dict[Status, str] = {
    Status.PASS: "ok",
    Status.FAIL: "FAIL",
    Status.ERROR: "ERROR",
    Status.WARNING: "WARN",
    Status.NOT_CHECKED: "n/c",
    Status.MANUAL: "manual",
    Status.WAIVED: "waived",
    Status.NOT_APPLICABLE: "n/a",
}

#: sections after the problems, each with the line that explains it
_SECTIONS: tuple[tuple[Status, str], ...] = (
    (Status.NOT_CHECKED, "Not checked — the evidence could not be read; these are NOT passes"),
    (Status.MANUAL, "Manual — need a running VM; check them before upload"),
    (Status.WAIVED, "Waived"),
)


class _Painter:
    """Colours the renderer's own words; :meth:`finish` makes everything else in the text inert.

    What a report holds comes in part from the image (a hive's key names and string values, a file's name), and a
    terminal acts on some characters instead of showing them: an escape sequence in a service's ImagePath could
    clear the screen or repaint "FAIL" as "ok". While the text is built, a colour is a marker holding a nonce made
    for this rendering, which nothing read from the image can know; :meth:`finish` writes every other character a
    terminal would act on as its escape (``\\x1b``), then turns the markers into the colour codes."""

    def __init__(self, color: bool) -> None:
        self.color = color
        self._nonce = os.urandom(8).hex()
        self._styles: list[str] = []
        self._pattern = re.compile(f"\x00{self._nonce}:(\\d+)\x00|{UNSHOWN}")

    def __call__(self, text: str, style: str) -> str:
        if not (self.color and style):
            return text
        return f"{self._mark(style)}{text}{self._mark(_RESET)}"

    def _mark(self, style: str) -> str:
        self._styles.append(style)
        return f"\x00{self._nonce}:{len(self._styles) - 1}\x00"

    def finish(self, text: str) -> str:
        def replace(match: Any) -> str:
            if match.group(1) is not None:
                return self._styles[int(match.group(1))]
            return repr(match.group())[1:-1]

        return self._pattern.sub(replace, text)


def _indent(text: str, prefix: str) -> str:
    return textwrap.indent(text, prefix, lambda line: True)


def _problem(result: Result, paint: _Painter, width: int) -> list[str]:
    disk = f" [{result.disk}]" if result.disk != "os" else ""
    mark = paint(f"{MARKS[result.status]:<5}", _STYLE[result.status])
    lines = [f"    {mark} {paint(result.rule_id, _BOLD)}{disk}  {result.title}  ({result.severity.value})"]
    pad = " " * 10
    if result.message:
        lines.extend(textwrap.wrap(result.message, width - 10, initial_indent=pad, subsequent_indent=pad))
    if result.expected is not None or result.actual is not None:
        lines.append(f"{pad}expected {format_value(result.expected)}, found {format_value(result.actual)}")
    if result.reason:
        lines.append(f"{pad}reason: {result.reason}")
    for ev in result.evidence:
        lines.append(f"{pad}evidence: {describe_evidence(ev)}")
    if result.remediation:
        lines.append(f"{pad}fix:")
        lines.append(paint(_indent(result.remediation.strip(), pad + "  "), _DIM))
    if result.source:
        lines.append(f"{pad}see: {result.source}")
    return lines


def _one(report: Report, paint: _Painter, fail_on: str, width: int, show_passed: bool) -> list[str]:
    tool = f"azvhdaudit {report.tool_version}".strip()
    lines = [paint(f"{report.source}", _BOLD) + f"  — {tool}, profile {report.profile}"]
    ident = identity(report)
    if ident:
        lines.append(f"  {ident}")
    word = verdict(report, fail_on)
    style = _STYLE[Status.FAIL] if report.exit_code(fail_on) else _STYLE[Status.PASS]
    lines.append(f"  {paint(word, style)}: {headline(report)}")
    lead = no_windows(report)
    if lead:
        lines.extend(textwrap.wrap(lead, width, initial_indent="  ", subsequent_indent="  "))
    if report.target_text:
        lines.append(f"  target: {report.target_text}")
    if report.facts:
        from azvhdaudit.render.capabilities import summary_text

        lines.append(f"  runs as: {summary_text(report.capabilities)} (azvhdaudit capabilities for why)")

    problems = [r for r in report.results if r.status in (Status.FAIL, Status.ERROR, Status.WARNING)]
    if problems:
        lines.append("")
        lines.append(paint("  Problems, by area", _BOLD))
        order = {Status.FAIL: 0, Status.ERROR: 1, Status.WARNING: 2}
        for area, results in group_by_area(problems).items():
            lines.append(f"  {area} ({len(results)})")
            for result in sorted(results, key=lambda r: (order[r.status], r.rule_id)):
                lines.extend(_problem(result, paint, width))
    for status, heading in _SECTIONS:
        results = report.filter(status=status)
        if not results:
            continue
        lines.append("")
        lines.append(paint(f"  {heading} ({len(results)})", _BOLD))
        for item in groups(sorted(results, key=lambda r: (r.area, r.rule_id))):
            if isinstance(item, Group):  # many rules left unchecked for one reason: one entry
                mark = paint(f"{MARKS[status]:<6}", _STYLE[status])
                lines.append(f"    {mark} {len(item.results)} rules: {item.reason}")
                lines.extend(
                    textwrap.wrap(", ".join(item.rule_ids), width, initial_indent=" " * 11, subsequent_indent=" " * 11)
                )
                continue
            result = item
            why = result.reason or result.message
            if status is Status.WAIVED and result.waived_status is not None:
                why = f"was {result.waived_status.value}: {why}"
            mark = paint(f"{MARKS[status]:<6}", _STYLE[status])
            lines.append(f"    {mark} {result.rule_id}  {why}")
    if show_passed:
        for status in (Status.PASS, Status.NOT_APPLICABLE):
            results = report.filter(status=status)
            if results:
                lines.append("")
                lines.append(paint(f"  {STATUS_LABELS[status].capitalize()} ({len(results)})", _BOLD))
                for result in sorted(results, key=lambda r: (r.area, r.rule_id)):
                    extra = f"  {result.reason}" if result.reason else ""
                    lines.append(f"    {paint(MARKS[status], _STYLE[status]):<6} {result.rule_id}{extra}")
    return lines


def render(
    reports: Report | Sequence[Report],
    *,
    color: bool = False,
    fail_on: str = "fail",
    width: int = 100,
    show_passed: bool = False,
) -> str:
    """The report(s) for a person at a terminal; ``color`` adds ANSI colours."""
    paint = _Painter(color)
    items = as_reports(reports)
    blocks = ["\n".join(_one(r, paint, fail_on, width, show_passed)) for r in items]
    if len(items) > 1:
        bad = sum(1 for r in items if r.exit_code(fail_on))
        blocks.append(f"{len(items)} images: {len(items) - bad} compliant, {bad} not compliant")
    return paint.finish("\n\n".join(blocks) + "\n")
