"""Markdown: a short summary for a pull-request comment (GitHub Flavored Markdown tables).

Problems are listed one line each; the not-checked and manual counts are stated, since neither is a pass.
"""

from __future__ import annotations

from collections.abc import Sequence

from azvhdaudit.render import as_reports
from azvhdaudit.render._common import format_value, identity, summary_line, verdict
from azvhdaudit.report import Report, Result, Status

__all__ = ["render"]

_ICON = {Status.FAIL: "❌", Status.ERROR: "💥", Status.WARNING: "⚠️"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _row(result: Result) -> str:
    found = ""
    if result.expected is not None or result.actual is not None:
        found = f"expected `{format_value(result.expected)}`, found `{format_value(result.actual)}`"
    what = _cell(result.message or result.title)
    disk = f" ({result.disk})" if result.disk != "os" else ""
    return (
        f"| {_ICON[result.status]} | `{result.rule_id}`{disk} | {_cell(result.area)} | {what} "
        f"| {_cell(found)} |"
    )


def _one(report: Report, fail_on: str, max_rows: int) -> list[str]:
    word = verdict(report, fail_on)
    icon = "❌" if report.exit_code(fail_on) else "✅"
    lines = [f"### {icon} `{report.source}` — {word}", ""]
    ident = identity(report)
    target = f" · target {report.target_text}" if report.target_text else ""
    if ident or target:
        lines += [f"{ident} · profile `{report.profile}`{target}".lstrip(" ·"), ""]
    lines += [f"**{summary_line(report)}**", ""]
    if report.facts:  # the table with its blocking rules: azvhdaudit capabilities --format markdown
        from azvhdaudit.render.capabilities import summary_text

        lines += [f"Runs as: {summary_text(report.capabilities)}", ""]
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
    not_checked = report.filter(status=Status.NOT_CHECKED)
    manual = report.filter(status=Status.MANUAL)
    if not_checked:
        ids = ", ".join(f"`{r.rule_id}`" for r in not_checked)
        lines += [f"{len(not_checked)} not checked (the evidence could not be read — not a pass): {ids}", ""]
    if manual:
        lines += [f"{len(manual)} to check by hand on the running VM: "
                  + ", ".join(f"`{r.rule_id}`" for r in manual), ""]
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
