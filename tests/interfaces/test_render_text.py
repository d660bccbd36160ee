"""Text renderer: summary first, problems by area with evidence and fix; colour only when asked."""

from __future__ import annotations

import pytest
from reportkit import make_clean_report, make_report

from azvhdaudit.render import render
from azvhdaudit.report import Report


def test_summary_comes_first(report: Report) -> None:
    lines = render(report, "text").splitlines()
    assert lines[0].startswith("gen2-sample.vhdx")
    assert "Windows Server 2019 Datacenter (build 17763.3650, AMD64), generation 2, VHDX dynamic" in lines[1]
    assert lines[2].strip().startswith("NOT COMPLIANT: 5 failed, 1 error, 2 warnings, 1 not checked")


def test_problems_grouped_by_area_with_evidence_and_fix(report: Report) -> None:
    text = render(report, "text")
    problems = text[text.index("Problems, by area") : text.index("Not checked")]
    headings = [
        line.strip()
        for line in problems.splitlines()
        if line.startswith("  ") and not line.startswith("   ") and line.strip()
    ]
    assert headings == ["bcd (2)", "disk (1)", "environment (1)", "firewall (1)", "rdp (1)", "services (1)", "time (1)"]
    block = text[text.index("rdp.port") : text.index("services.termservice")]
    assert "expected 3389 (0xD3D), found 3390 (0xD3E)" in block
    assert "PortNumber  REG_DWORD = 3390 (0xD3E)  [hive dirty]" in block
    assert "Set-ItemProperty" in block


def test_not_checked_is_said_not_to_be_a_pass(report: Report) -> None:
    assert "these are NOT passes" in render(report, "text")


@pytest.mark.parametrize(("color", "has_escape"), [(False, False), (True, True)])
def test_colour_only_when_asked(report: Report, color: bool, has_escape: bool) -> None:
    assert ("\033[" in render(report, "text", color=color)) is has_escape


def test_passes_hidden_unless_asked(report: Report) -> None:
    assert "rdp.enabled" not in render(report, "text")
    assert "rdp.enabled" in render(report, "text", show_passed=True)


def test_several_images_end_with_a_tally() -> None:
    text = render([make_report("a.vhd"), make_clean_report("b.vhd")], "text")
    assert text.rstrip().endswith("2 images: 1 compliant, 1 not compliant")


def test_fail_on_warning_changes_the_verdict() -> None:
    from azvhdaudit.report import Status

    warn_only = make_report(results=[r for r in make_report().results if r.status in (Status.PASS, Status.WARNING)])
    assert "  COMPLIANT" in render(warn_only, "text")
    assert "NOT COMPLIANT" in render(warn_only, "text", fail_on="warning")
