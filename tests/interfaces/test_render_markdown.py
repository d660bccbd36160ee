"""Markdown renderer: a short pull-request comment."""

from __future__ import annotations

import dataclasses
import re

from reportkit import make_clean_report, make_report

from azvhdaudit.render import render
from azvhdaudit.report import Report


def test_problems_table_lists_each_problem_once(report: Report) -> None:
    text = render(report, "markdown")
    rows = [
        line
        for line in text.splitlines()
        if line.startswith("| ❌") or line.startswith("| 💥") or line.startswith("| ⚠️")
    ]
    assert len(rows) == len(report.filter(status=("fail", "error", "warning")))
    assert rows[0].startswith("| ❌")
    assert "NOT COMPLIANT" in text.splitlines()[0]


def test_not_checked_and_manual_are_stated(report: Report) -> None:
    text = render(report, "markdown")
    assert "1 not checked (the evidence could not be read — not a pass): `winrm.listener`" in text
    assert "`agent.installed`" in text


def test_pipes_in_findings_are_escaped(report: Report) -> None:
    rule = dataclasses.replace(report["firewall.rdp-in"], message="v2.30|Action=Allow|Active=FALSE|")
    text = render(make_report(results=[rule]), "markdown")
    line = next(line for line in text.splitlines() if "`firewall.rdp-in`" in line)
    assert "v2.30\\|Action=Allow\\|Active=FALSE\\|" in line
    assert len(re.split(r"(?<!\\)\|", line)) == 7  # six cells, the finding's pipes escaped


def test_row_limit() -> None:
    text = render(make_report(), "markdown", max_rows=2)
    assert "6 more" in text


def test_clean_report_is_short() -> None:
    text = render(make_clean_report(), "markdown")
    assert text.startswith("### ✅ `clean.vhd` — COMPLIANT")
    assert "| Rule |" not in text
    assert len(text.splitlines()) < 8
