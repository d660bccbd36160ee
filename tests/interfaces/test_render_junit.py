"""JUnit renderer: parsed back with junitparser, one testsuite per disk, one testcase per rule."""

from __future__ import annotations

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped
from reportkit import make_clean_report, make_report

from azvhdaudit.render import render
from azvhdaudit.report import Report, Status


def _parse(text: str, tmp_path) -> JUnitXml:  # type: ignore[no-untyped-def]
    path = tmp_path / "junit.xml"
    path.write_text(text, encoding="utf-8")
    return JUnitXml.fromfile(str(path))


def _cases(xml: JUnitXml) -> dict[tuple[str, str], object]:
    return {(suite.name, case.name): case for suite in xml for case in suite}


def test_one_suite_per_disk_and_one_case_per_rule(report: Report, tmp_path) -> None:  # type: ignore[no-untyped-def]
    xml = _parse(render(report, "junit"), tmp_path)
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"gen2-sample.vhdx", "gen2-sample.vhdx [data1]"}
    assert sum(suite.tests for suite in xml) == len(report.results)
    os_suite = suites["gen2-sample.vhdx"]
    assert os_suite.failures == len(report.filter(status="fail"))
    assert os_suite.errors == len(report.filter(status="error"))
    assert os_suite.skipped == len(
        report.filter(status=("not_applicable", "not_checked", "manual", "waived"), disk="os")
    )


@pytest.mark.parametrize(
    ("rule_id", "kind", "text"),
    [
        ("rdp.port", Failure, "PortNumber is 3390"),
        ("disk.format", Error, "KeyError"),
        ("winrm.listener", Skipped, "not checked (not a pass): the SOFTWARE hive"),
        ("agent.installed", Skipped, "manual (needs a running VM)"),
        ("sysprep.generalized", Skipped, "waived: specialized image for migration, ticket OPS-1234 (was fail)"),
        ("storage.san-policy", Skipped, "not applicable: only for Windows Server 2008 R2"),
    ],
)
def test_status_maps_to_junit_outcome(report: Report, tmp_path, rule_id: str, kind: type, text: str) -> None:  # type: ignore[no-untyped-def]
    case = _cases(_parse(render(report, "junit"), tmp_path))[("gen2-sample.vhdx", rule_id)]
    outcomes = case.result  # type: ignore[attr-defined]
    assert len(outcomes) == 1 and isinstance(outcomes[0], kind)
    assert text in outcomes[0].message


def test_failure_body_has_expected_actual_evidence_and_fix(report: Report, tmp_path) -> None:  # type: ignore[no-untyped-def]
    case = _cases(_parse(render(report, "junit"), tmp_path))[("gen2-sample.vhdx", "rdp.port")]
    body = case.result[0].text  # type: ignore[attr-defined]
    assert "expected: 3389" in body and "actual:   3390" in body
    assert "PortNumber" in body and "[hive dirty]" in body
    assert "Set-ItemProperty" in body


@pytest.mark.parametrize("status", [Status.PASS, Status.WARNING])
def test_pass_and_warning_are_passed_cases(report: Report, tmp_path, status: Status) -> None:  # type: ignore[no-untyped-def]
    cases = _cases(_parse(render(report, "junit"), tmp_path))
    for result in report.filter(status=status, disk="os"):
        assert cases[("gen2-sample.vhdx", result.rule_id)].is_passed  # type: ignore[attr-defined]


def test_several_images_give_several_suites(tmp_path) -> None:  # type: ignore[no-untyped-def]
    xml = _parse(render([make_report("a.vhd"), make_clean_report("b.vhd")], "junit"), tmp_path)
    names = [suite.name for suite in xml]
    assert "a.vhd" in names and "b.vhd" in names
    b = next(s for s in xml if s.name == "b.vhd")
    assert b.failures == 0 and b.errors == 0
