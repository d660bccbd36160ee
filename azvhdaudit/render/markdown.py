"""Markdown: a short summary for a pull-request comment (GitHub Flavored Markdown tables).

Problems are listed one line each; the not-checked and manual counts are stated, since neither is a pass.
Text from the image is escaped (CommonMark backslash escapes): GitHub drops what looks like an HTML tag
(``<local>`` in a proxy bypass list) and reads ``*``, ``_`` and ``\\{`` as markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from azvhdaudit.render import as_reports
from azvhdaudit.render._common import describe_evidence, format_value, identity, verdict
from azvhdaudit.render._lead import headline, no_windows
from azvhdaudit.report import Report, Result, Status

__all__ = ["render"]

_ICON = {Status.FAIL: "❌", Status.ERROR: "💥", Status.WARNING: "⚠️"}


#: ASCII punctuation that Markdown (or GitHub's HTML filter) would read as markup
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&#!])")


def escape(text: str) -> str:
    """``text`` as literal Markdown: every markup character backslash-escaped, newlines as spaces."""
    return _MARKUP.sub(r"\\\1", text.replace("\n", " ")).strip()


def _code(text: str) -> str:
    """``text`` in a code span: literal, except that a table needs its pipes escaped even there, and the
    fence is longer than any run of backticks inside."""
    text = text.replace("\n", " ").replace("|", "\\|")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    return escape(text)


def _row(result: Result) -> str:
    found = ""
    if result.expected is not None or result.actual is not None:
        found = f"expected {_code(format_value(result.expected))}, found {_code(format_value(result.actual))}"
    what = _cell(result.message or result.title)
    disk = f" ({escape(result.disk)})" if result.disk != "os" else ""
    return f"| {_ICON[result.status]} | `{result.rule_id}`{disk} | {_cell(result.area)} | {what} | {found} |"


def _one(report: Report, fail_on: str, max_rows: int) -> list[str]:
    word = verdict(report, fail_on)
    icon = "❌" if report.exit_code(fail_on) else "✅"
    lines = [f"### {icon} {_code(report.source)} — {word}", ""]
    ident = identity(report)
    target = f" · target {escape(report.target_text)}" if report.target_text else ""
    if ident or target:
        lines += [f"{escape(ident) if ident else ''} · profile `{report.profile}`{target}".lstrip(" ·"), ""]
    lead = no_windows(report)
    if lead:
        lines += [f"> **{escape(lead)}**", ""]
    lines += [f"**{escape(headline(report))}**", ""]
    if report.facts:  # the table with its blocking rules: azvhdaudit capabilities --format markdown
        from azvhdaudit.render.capabilities import summary_text

        lines += [f"Runs as: {escape(summary_text(report.capabilities))}", ""]
    problems = sorted(
        (r for r in report.results if r.status in _ICON),
        key=lambda r: ([Status.FAIL, Status.ERROR, Status.WARNING].index(r.status), r.area, r.rule_id),
    )
    if problems:
        lines += ["| | Rule | Area | Finding | Evidence |", "|---|---|---|---|---|"]
        lines += [_row(r) for r in problems[:max_rows]]
        if len(problems) > max_rows:
            lines.append(f"| | … | | {len(problems) - max_rows} more | |")
        lines.append("")
        evidence = [(r, ev) for r in problems[:max_rows] for ev in r.evidence]
        if evidence:
            lines += ["<details><summary>Evidence</summary>", ""]
            lines += [f"- `{r.rule_id}`: {escape(describe_evidence(ev))}" for r, ev in evidence]
            lines += ["", "</details>", ""]
    not_checked = report.filter(status=Status.NOT_CHECKED)
    manual = report.filter(status=Status.MANUAL)
    if not_checked:
        ids = ", ".join(f"`{r.rule_id}`" for r in not_checked)
        lines += [f"{len(not_checked)} not checked (the evidence could not be read — not a pass): {ids}", ""]
    if manual:
        lines += [
            f"{len(manual)} to check by hand on the running VM: " + ", ".join(f"`{r.rule_id}`" for r in manual),
            "",
        ]
    fixes = [r for r in problems if r.remediation and r.status is not Status.ERROR]
    if fixes:
        lines += ["<details><summary>Fixes</summary>", "", "```powershell"]
        for r in fixes[:max_rows]:
            lines.append(f"# {r.rule_id}")
            lines.extend(r.remediation.strip().splitlines())
        lines += ["```", "", "</details>", ""]
    return lines


def render(reports: Report | Sequence[Report], *, fail_on: str = "fail", max_rows: int = 50) -> str:
    """The report(s) as a short Markdown comment."""
    lines: list[str] = []
    for report in as_reports(reports):
        lines += _one(report, fail_on, max_rows)
    return "\n".join(lines).rstrip() + "\n"
