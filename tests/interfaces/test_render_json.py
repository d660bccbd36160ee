"""JSON renderer: the report as Report.to_dict(), validated against the shipped JSON Schema."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
from reportkit import make_clean_report, make_report

from azvhdaudit.render import render
from azvhdaudit.render.json import load_schema, to_jsonable
from azvhdaudit.report import SCHEMA_VERSION, Evidence, Report, Result, Severity, Status


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize(
    "reports",
    [
        make_report(),
        make_clean_report(),
        [make_report("a.vhd"), make_clean_report("b.vhdx")],
        Report(source="empty.vhd", profile="azure-2017"),
    ],
    ids=["mixed", "clean", "two-images", "empty"],
)
def test_every_report_validates(reports: object, validator: jsonschema.Draft202012Validator) -> None:
    data = json.loads(render(reports, "json"))  # type: ignore[arg-type]
    validator.validate(data)
    assert data["schema_version"] == SCHEMA_VERSION


def test_single_report_is_to_dict(report: Report) -> None:
    data = json.loads(render(report, "json"))
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["summary"]["fail"] == 5
    assert data["results"][0]["evidence"][0]["hive_dirty"] is True


def test_several_reports_are_listed() -> None:
    data = json.loads(render([make_report("a.vhd"), make_report("b.vhd")], "json"))
    assert [r["source"] for r in data["reports"]] == ["a.vhd", "b.vhd"]


def test_values_that_json_cannot_hold_are_converted(validator: jsonschema.Draft202012Validator) -> None:
    result = Result(
        rule_id="x.bytes",
        title="bytes",
        area="x",
        severity=Severity.ADVISORY,
        status=Status.FAIL,
        message="m",
        expected=b"\x01\x02",
        actual={3, 1},
        evidence=(Evidence(source="file", key="Windows\\x", actual=Status.PASS),),
    )
    data = to_jsonable(Report(source="s", profile="azure", results=[result]))
    validator.validate(data)
    assert data["results"][0]["expected"] == "0102"
    assert data["results"][0]["actual"] == [1, 3]
    assert data["results"][0]["evidence"][0]["actual"] == "pass"


@pytest.mark.parametrize("several", [False, True], ids=["one", "two"])
def test_text_encoded_once_equals_the_jsonable_structure(several: bool) -> None:
    """render() encodes the report once; the text is the one of the JSON-safe structure to_jsonable() gives."""
    result = Result(
        rule_id="x.bytes",
        title="bytes \u00e9",
        area="x",
        severity=Severity.ADVISORY,
        status=Status.FAIL,
        message="m",
        expected=b"\x01\x02",
        actual={"b", "a"},
        evidence=(Evidence(source="file", key="Windows\\x", actual=Status.PASS),),
    )
    one = Report(source="s", profile="azure", results=[result])
    reports: Report | list[Report] = [one, make_report("b.vhd")] if several else one
    assert render(reports, "json") == json.dumps(to_jsonable(reports), indent=2, ensure_ascii=False) + "\n"


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("results", 0, "status"), "passed"),
        (("results", 0, "severity"), "critical"),
        (("summary", "fail"), -1),
        (("results", 0, "evidence", 0, "raw"), "xyz"),
        (("schema_version",), "2.0"),
    ],
)
def test_schema_rejects_broken_reports(
    report: Report, validator: jsonschema.Draft202012Validator, path: tuple, bad: object
) -> None:
    data = copy.deepcopy(to_jsonable(report))
    node = data
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = bad
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(data)


def test_waived_result_keeps_its_previous_status(report: Report) -> None:
    data = to_jsonable(report)
    waived = [r for r in data["results"] if r["status"] == "waived"]
    assert waived and all(r["waived_status"] == "fail" for r in waived)


def test_every_catalogue_rule_fits_the_schema(validator: jsonschema.Draft202012Validator) -> None:
    """A result for each rule of the catalogue validates: ids, areas and severities are all in range."""
    from azvhdaudit.engine import catalogue

    results = [
        Result(
            rule_id=r.id,
            title=r.meta.title,
            area=r.meta.area,
            severity=r.meta.severity,
            status=Status.PASS,
            message="",
            source=r.meta.source,
            baselines=r.meta.baselines,
            references=r.meta.references,
            remediation=r.meta.remediation,
            rationale=r.meta.rationale,
        )
        for r in catalogue()
    ]
    assert results
    validator.validate(to_jsonable(Report(source="all.vhd", profile="azure", results=results)))
