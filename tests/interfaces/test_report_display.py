"""Report._repr_html_ and Report.to_dataframe delegate to the renderers."""

from __future__ import annotations

import sys

import pytest

from azvhdaudit.render.dataframe import COLUMNS
from azvhdaudit.report import Report


def test_repr_html_is_a_fragment(report: Report) -> None:
    fragment = report._repr_html_()
    assert fragment.startswith("<div class=azvhdaudit>")
    assert "<script" not in fragment and "<html" not in fragment
    assert "rdp.port" in fragment


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
