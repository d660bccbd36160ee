"""SARIF renderer: validated against the official SARIF 2.1.0 schema (tests/interfaces/data)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import pytest
from reportkit import make_clean_report, make_report

from azvhdaudit.render import render
from azvhdaudit.render.sarif import to_sarif
from azvhdaudit.report import Report, Status

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema)


@pytest.mark.parametrize(
    "reports",
    [
        make_report(),
        make_clean_report(),
        [make_report("dir/a b.vhd"), make_report("/abs/b.vhdx")],
        make_report("C:\\images\\win.vhd"),
    ],
    ids=["mixed", "clean", "two", "windows-path"],
)
def test_sarif_validates(reports: object, validator: jsonschema.Draft4Validator) -> None:
    data = json.loads(render(reports, "sarif"))  # type: ignore[arg-type]
    validator.validate(data)
    assert data["version"] == "2.1.0"


def test_failures_warnings_and_not_checked_are_results_by_default(report: Report) -> None:
    run = to_sarif(report)["runs"][0]
    got = sorted(r["ruleId"] for r in run["results"])
    wanted = report.filter(status=(Status.FAIL, Status.WARNING, Status.NOT_CHECKED))
    assert got == sorted(r.rule_id for r in wanted)
    assert {r.status for r in wanted} == {Status.FAIL, Status.WARNING, Status.NOT_CHECKED}
    assert not {r.rule_id for r in report.filter(status=(Status.PASS, Status.NOT_APPLICABLE))} & set(got)
    for result in run["results"]:
        if result["properties"]["status"] == "not_checked":
            assert result["message"]["text"].startswith("not checked (the evidence could not be read")
            assert result["level"] in ("warning", "note") and result["kind"] == "fail"


def test_include_widens_the_results(report: Report, validator: jsonschema.Draft4Validator) -> None:
    data = to_sarif(report, include=list(Status))
    validator.validate(json.loads(json.dumps(data, default=str)))
    assert len(data["runs"][0]["results"]) == len(report.results)
    waived = [r for r in data["runs"][0]["results"] if r["ruleId"] == "sysprep.generalized"]
    assert waived[0]["suppressions"][0]["justification"].startswith("specialized image")


@pytest.mark.parametrize(
    ("rule_id", "level"),
    [
        ("rdp.port", "error"),
        ("bcd.integrityservices", "warning"),
        ("environment.temp", "warning"),
        ("services.ikeext", "warning"),
    ],
)
def test_level_follows_severity(report: Report, rule_id: str, level: str) -> None:
    # services.ikeext: a required rule whose status is only a warning stays a warning
    ikeext = dataclasses.replace(report["services.termservice"], rule_id="services.ikeext", status=Status.WARNING)
    report.results.append(ikeext)
    run = to_sarif(report, include=("fail", "warning"))["runs"][0]
    result = next(r for r in run["results"] if r["ruleId"] == rule_id)
    assert result["level"] == level
    assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == rule_id


def test_rules_metadata_and_locations(report: Report) -> None:
    run = to_sarif(report)["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules) == {r.rule_id for r in report.results}
    assert rules["rdp.port"]["helpUri"].startswith("https://learn.microsoft.com/")
    assert "Set-ItemProperty" in rules["rdp.port"]["help"]["text"]
    port = next(r for r in run["results"] if r["ruleId"] == "rdp.port")
    assert port["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "gen2-sample.vhdx"
    names = [loc["fullyQualifiedName"] for loc in port["locations"][0]["logicalLocations"]]
    assert names == ["HKLM\\SYSTEM\\ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp\\PortNumber"]
    time_utc = next(r for r in run["results"] if r["ruleId"] == "time.utc")
    names = [loc["fullyQualifiedName"] for loc in time_utc["locations"][0]["logicalLocations"]]
    assert names == ["HKLM\\SYSTEM\\ControlSet001\\Control\\TimeZoneInformation\\RealTimeIsUniversal"]


def test_rule_errors_are_notifications(report: Report) -> None:
    invocation = to_sarif(report)["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert [n["associatedRule"]["id"] for n in invocation["toolExecutionNotifications"]] == ["disk.format"]
