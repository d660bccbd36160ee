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


# what a terminal acts on instead of showing: clear the screen, move the cursor back over "FAIL", retitle the window,
# a carriage return that overwrites the line, a right-to-left override, a C1 control
HOSTILE = "x\x1b[2J\x1b[1A\x1b[32mok\x1b]0;owned\x07\rPASS\u202etxt.exe\x9b31m"


@pytest.mark.parametrize("color", [False, True])
def test_text_read_from_the_image_cannot_drive_the_terminal(color: bool) -> None:
    import dataclasses

    from azvhdaudit.report import Evidence, Status

    base = make_report()
    results = [
        dataclasses.replace(
            r,
            message=f"ImagePath {HOSTILE}",
            reason=HOSTILE,
            remediation=f"Set-ItemProperty -Path {HOSTILE}",
            evidence=(Evidence(source="registry", hive="SYSTEM", key=HOSTILE, value_name=HOSTILE, actual=HOSTILE),),
        )
        for r in base.results
        if r.status in (Status.FAIL, Status.NOT_CHECKED)
    ]
    text = render(make_report(source=f"img{HOSTILE}.vhd", results=results), "text", color=color)
    ours = ("\033[0m", "\033[1m", "\033[2m", "\033[1;31m", "\033[1;35m", "\033[33m", "\033[36m", "\033[32m")
    stripped = text
    for code in ours:
        stripped = stripped.replace(code, "")
    # no character a terminal acts on is left, but the renderer's own colours (when asked) and line feeds
    assert not any(c in stripped for c in "\x1b\x07\r\x9b\u202e"), [c for c in stripped if not c.isprintable()][:5]
    assert all(c.isprintable() or c == "\n" for c in stripped)
    # what was there is still shown, escaped
    assert "x\\x1b[2J\\x1b[1A\\x1b[32mok\\x1b]0;owned\\x07\\rPASS\\u202etxt.exe\\x9b31m" in stripped
    assert ("\033[1;31m" in text) is color


def test_every_text_renderer_writes_terminal_controls_as_escapes() -> None:
    from azvhdaudit.render._common import terminal_safe
    from azvhdaudit.render.info import render_letters

    assert terminal_safe(HOSTILE) == "x\\x1b[2J\\x1b[1A\\x1b[32mok\\x1b]0;owned\\x07\\rPASS\\u202etxt.exe\\x9b31m"
    assert terminal_safe(terminal_safe(HOSTILE)) == terminal_safe(HOSTILE)
    assert terminal_safe("tab\tand\nline feed stay") == "tab\tand\nline feed stay"
    # a drive letter's disk name comes from the command line or a hive
    text = render_letters({"E:": {"disk": f"data{HOSTILE}.vhd", "partition": 1}})
    assert "\x1b" not in text and "\r" not in text and "data x\\x1b[2J" not in text
    assert f"data{terminal_safe(HOSTILE)}.vhd partition #1" in text
