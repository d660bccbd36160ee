"""JUnit XML: one ``<testsuite>`` per image and disk, one ``<testcase>`` per rule.

fail -> ``<failure>``, error -> ``<error>``, not applicable / not checked / manual / waived -> ``<skipped>``
with the reason (a skipped not-checked rule is not a pass), warning -> passed with the message in
``<system-out>``. Judged against a golden baseline (``audit --baseline``), a failure the baseline accepts is
``<skipped>`` "accepted by the baseline" with its details in ``<system-out>`` (as pytest writes an xfail), so a CI
test view fails on what got worse only. The shape is the one Jenkins, GitLab and Azure DevOps read (the "JUnit
10" schema that junitparser follows).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from azvhdaudit.render import as_reports
from azvhdaudit.render._common import baseline_states, describe_evidence, format_value
from azvhdaudit.report import Report, Result, Status

__all__ = ["render"]

_SKIP_PREFIX = {
    Status.NOT_APPLICABLE: "not applicable",
    Status.NOT_CHECKED: "not checked (not a pass)",
    Status.MANUAL: "manual (needs a running VM)",
    Status.WAIVED: "waived",
}


def _details(result: Result) -> str:
    lines = [result.message] if result.message else []
    if result.expected is not None or result.actual is not None:
        lines.append(f"expected: {format_value(result.expected)}")
        lines.append(f"actual:   {format_value(result.actual)}")
    lines.extend(f"evidence: {describe_evidence(ev)}" for ev in result.evidence)
    if result.remediation:
        lines.append("fix:")
        lines.extend("  " + line for line in result.remediation.strip().splitlines())
    if result.source:
        lines.append(f"see: {result.source}")
    return "\n".join(lines)


def _testcase(report: Report, result: Result, accepted: bool = False) -> ET.Element:
    case = ET.Element(
        "testcase",
        {
            "name": result.rule_id,
            "classname": f"azvhdaudit.{result.area}",
            "time": f"{result.duration_ms / 1000:.6f}",
            "file": report.source,
        },
    )
    status = result.status
    if accepted:
        baseline = report.options.get("baseline") or {}
        ET.SubElement(
            case,
            "skipped",
            {
                "message": f"accepted by the baseline {baseline.get('file', '')}: {status.value} there too: "
                f"{result.message or result.title}",
                "type": "baseline",
            },
        )
        ET.SubElement(case, "system-out").text = f"{status.value.upper()} (accepted by the baseline): " + _details(
            result
        )
    elif status is Status.FAIL:
        node = ET.SubElement(case, "failure", {"message": result.message or result.title, "type": "fail"})
        node.text = _details(result)
    elif status is Status.ERROR:
        node = ET.SubElement(case, "error", {"message": result.message or result.title, "type": "error"})
        node.text = _details(result)
    elif status in _SKIP_PREFIX:
        why = result.reason or result.message
        if status is Status.WAIVED and result.waived_status is not None:
            why = f"{why} (was {result.waived_status.value})"
        ET.SubElement(case, "skipped", {"message": f"{_SKIP_PREFIX[status]}: {why}"})
    if status is Status.WARNING or (status is Status.PASS and result.message):
        out = ET.SubElement(case, "system-out")
        out.text = (f"WARNING ({result.severity.value}): " if status is Status.WARNING else "") + _details(result)
    return case


def render(reports: Report | Sequence[Report]) -> str:
    """The report(s) as a JUnit XML document (``<testsuites>``)."""
    root = ET.Element("testsuites", {"name": "azvhdaudit"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for report in as_reports(reports):
        judged = baseline_states(report)
        disks: dict[str, list[Result]] = {}
        for result in report.results:
            disks.setdefault(result.disk, []).append(result)
        for disk, results in disks.items():
            name = report.source if disk == "os" else f"{report.source} [{disk}]"
            accepted = {id(r) for r in results if judged.get((r.rule_id, r.disk)) == "accepted"}
            counts = {
                "tests": len(results),
                "failures": sum(r.status is Status.FAIL and id(r) not in accepted for r in results),
                "errors": sum(r.status is Status.ERROR and id(r) not in accepted for r in results),
                "skipped": sum(r.status in _SKIP_PREFIX or id(r) in accepted for r in results),
            }
            suite = ET.SubElement(
                root,
                "testsuite",
                {
                    "name": name,
                    **{k: str(v) for k, v in counts.items()},
                    "time": f"{sum(r.duration_ms for r in results) / 1000:.6f}",
                    "timestamp": report.started.replace(microsecond=0).isoformat(),
                },
            )
            props = ET.SubElement(suite, "properties")
            role = "vm" if disk == "vm" else str(report.disks.get(disk, {}).get("role") or "")
            for prop, text in (
                ("profile", report.profile),
                ("disk", disk),
                ("role", role),
                ("tool_version", report.tool_version),
                ("security_type", str(report.target.get("effective_security_type") or "")),
                ("disk_controller", str(report.target.get("effective_disk_controller") or "")),
            ):
                ET.SubElement(props, "property", {"name": prop, "value": text})
            if report.options.get("baseline"):
                ET.SubElement(
                    props, "property", {"name": "baseline", "value": str(report.options["baseline"].get("file") or "")}
                )
            for result in results:
                suite.append(_testcase(report, result, id(result) in accepted))
            for key, value in counts.items():
                totals[key] += value
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
