"""HTML renderer: self-contained, escaped, and its filters work in a real browser (headless Chromium).

Chromium is Debian's ``chromium`` package; the test fails (not skips) when it is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from reportkit import make_clean_report, make_report

from azvhdaudit.render import render
from azvhdaudit.report import Report, Status


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collector()
    parser.feed(text)
    return parser.tags


def test_page_is_self_contained(report: Report) -> None:
    page = render(report, "html")
    for tag, attrs in _tags(page):
        assert tag not in ("link", "img", "iframe", "object", "embed"), tag
        if tag == "script":
            assert "src" not in attrs
    assert "@import" not in page and "url(" not in page


def test_report_text_is_escaped(report: Report) -> None:
    page = render(report, "html")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1


def test_every_rule_has_a_row_with_evidence_and_fix(report: Report) -> None:
    page = render(report, "html")
    rows = [attrs for tag, attrs in _tags(page) if tag == "details" and "rule" in (attrs.get("class") or "")]
    assert len(rows) == len(report.results)
    assert {a["data-status"] for a in rows} == {r.status.value for r in report.results}
    assert "Terminal Server\\WinStations\\RDP-Tcp" in page
    assert "Set-ItemProperty -Path &#x27;HKLM:\\SYSTEM" in page


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed for this test: apt-get install -y chromium")


def _dump_dom(page: Path, fragment: str, profile: Path) -> str:
    proc = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stdout


def _shown(dom: str) -> list[str]:
    """Rule ids of the rows the script left visible."""
    return [
        m.group(2)
        for m in re.finditer(r'<details class="rule[^"]*"([^>]*)>.*?<code class="rule-id">([^<]+)</code>', dom)
        if "hidden" not in m.group(1)
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("", {r.rule_id for r in make_report().results if r.status not in (Status.PASS, Status.NOT_APPLICABLE)}),
        ("#status=fail", {r.rule_id for r in make_report().filter(status="fail")}),
        ("#status=fail,warning&area=bcd", {"bcd.recoveryenabled", "bcd.integrityservices"}),
        ("#status=pass", {"rdp.enabled", "time.w32time", "disk.partition-style"}),
    ],
    ids=["default", "failures", "bcd-problems", "passes"],
)
def test_filters_in_headless_chromium(tmp_path: Path, fragment: str, expected: set[str]) -> None:
    page = tmp_path / "report.html"
    page.write_text(render(make_report(), "html"), encoding="utf-8")
    dom = _dump_dom(page, fragment, tmp_path / "profile")
    assert 'data-filters-ready="true"' in dom, "the filter script did not run"
    assert set(_shown(dom)) == expected
    assert f"{len(expected)} of {len(make_report().results)} rules shown" in dom


def test_image_facts_are_shown(report: Report) -> None:
    page = render(report, "html")
    assert "<summary>Image facts</summary>" in page
    assert "<th>partition #1</th><td>Basic data (ntfs), 3,221,225,472 bytes at 105,906,176 — Windows</td>" in page
    assert "<th>hive SYSTEM</th><td>dirty, logs replayed</td>" in page


def test_clean_report_page(tmp_path: Path) -> None:
    page = render(make_clean_report(), "html")
    assert "COMPLIANT" in page and "NOT COMPLIANT" not in page
