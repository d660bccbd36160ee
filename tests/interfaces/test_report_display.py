"""What a notebook or a REPL shows: Report._repr_html_ (the HTML report's look, scoped), short reprs of
reports, results, evidence and image facts, and Report.to_dataframe."""

from __future__ import annotations

import sys

import pytest
from reportkit import make_facts

from azvhdaudit.render.dataframe import COLUMNS
from azvhdaudit.report import Report


def test_repr_html_is_a_fragment(report: Report) -> None:
    fragment = report._repr_html_()
    assert fragment.startswith("<div class=azvhdaudit><style>.azvhdaudit ")  # its style, scoped to it
    assert "<script" not in fragment and "<html" not in fragment
    assert "rdp.port" in fragment
    assert fragment.count("<input type=checkbox") == len([s for s in report.summary.values() if s])


def test_repr_of_a_report_is_one_short_line(report: Report) -> None:
    text = repr(report)
    assert text == (
        "<Report 'gen2-sample.vhdx' (Windows Server 2019 Datacenter (build 17763.3650, AMD64), "
        "generation 2, VHDX dynamic), profile azure: NOT COMPLIANT, 5 failed, 1 error, 2 warnings, "
        "1 not checked, 1 manual, 1 waived, 1 not applicable, 3 passed; 15 results>"
    )
    big = Report(source="x.vhd", profile="azure", results=report.results * 40, facts=report.facts)
    assert len(repr(big)) < 300 and "\n" not in repr(big)


def test_repr_of_a_result_and_its_evidence(report: Report) -> None:
    port = report["rdp.port"]
    assert repr(port) == (
        "<Result rdp.port fail (required): PortNumber is 3390, Azure's RDP endpoint expects 3389; "
        "found 3390 (0xD3E), expected 3389 (0xD3D)>"
    )
    assert repr(port.evidence[0]) == (
        "<Evidence HKLM\\SYSTEM\\ControlSet001\\Control\\Terminal Server\\WinStations"
        "\\RDP-Tcp PortNumber REG_DWORD = 3390 (0xD3E) [hive dirty]>"
    )
    html = port._repr_html_()
    assert "<details open class=" in html and "found <code>3390 (0xD3E)</code>" in html


def test_repr_of_image_facts() -> None:
    facts = make_facts()
    assert repr(facts) == (
        "<ImageFacts 'gen2-sample.vhdx': Windows Server 2019 Datacenter, generation 2, "
        "vhdx dynamic, 2 partitions (gpt)>"
    )
    html = facts._repr_html_()
    assert "<th>hive SYSTEM</th><td>dirty, logs replayed</td>" in html and "<details open class=facts>" in html


def test_to_dataframe(report: Report) -> None:
    frame = report.to_dataframe()
    assert list(frame.columns) == list(COLUMNS)
    assert len(frame) == len(report.results)
    fails = frame[frame["status"] == "fail"]
    assert sorted(fails["rule_id"]) == sorted(r.rule_id for r in report.filter(status="fail"))
    assert "PortNumber" in frame.set_index("rule_id").loc["rdp.port", "evidence"]


def test_to_dataframe_without_pandas(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"pip install 'azvhdaudit\[pandas\]'"):
        report.to_dataframe()
