"""SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format) for code-scanning dashboards.

Every failure, warning and not-checked result is listed (``include`` changes the set; what fails a CI run
is the exit code's business, not the log's). The level says how much each matters: a failure takes its
rule's severity (required -> ``error``, recommended -> ``warning``, advisory/informational -> ``note``); a
warning is never above ``warning``; a rule whose evidence could not be read (``not_checked``) is a
``warning`` when the rule is required, else a ``note``, its message starting "not checked". A rule that
itself failed (status ``error``) is a ``toolExecutionNotification``, not a finding. Every rule seen is
described in ``tool.driver.rules``.
The image is the artifact; the registry key or structure is a logical location.

Reference: SARIF v2.1.0 Plus Errata 01, OASIS Standard (sections 3.13 run, 3.19 toolComponent,
3.27 result, 3.33 logicalLocation, 3.49 reportingDescriptor, 3.58 notification).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from azvhdaudit.render import as_reports
from azvhdaudit.render._common import baseline_states, describe_evidence, evidence_location, format_value
from azvhdaudit.render._lead import WINDOWS_VOLUME_ID, Group, groups, no_windows
from azvhdaudit.report import Report, Result, Severity, Status

__all__ = ["render", "to_sarif", "LEVELS", "SARIF_SCHEMA"]

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
INFORMATION_URI = "https://github.com/azvhdaudit/azvhdaudit"

LEVELS: dict[Severity, str] = {
    Severity.REQUIRED: "error",
    Severity.RECOMMENDED: "warning",
    Severity.ADVISORY: "note",
    Severity.INFORMATIONAL: "note",
}

_DEFAULT_INCLUDE = (Status.FAIL, Status.WARNING, Status.NOT_CHECKED)


def _uri(source: str) -> str:
    """The image path as a URI reference (relative paths stay relative; backslashes become slashes)."""
    path = source.replace("\\", "/")
    if "://" in path:
        return path
    if len(path) > 1 and path[1] == ":":  # a Windows drive path
        return "file:///" + quote(path)
    if path.startswith("/"):
        return "file://" + quote(path)
    return quote(str(PurePosixPath(path)))


def _rule_descriptor(result: Result) -> dict[str, Any]:
    help_lines = [result.rationale] if result.rationale else []
    if result.remediation:
        help_lines.append("Fix:\n" + result.remediation.strip())
    if result.source:
        help_lines.append(f"Doc section: {result.source}")
    descriptor: dict[str, Any] = {
        "id": result.rule_id,
        "name": "".join(part.capitalize() for part in result.rule_id.replace("-", ".").split(".")),
        "shortDescription": {"text": result.title},
        "fullDescription": {"text": result.rationale or result.title},
        "defaultConfiguration": {"level": LEVELS[result.severity]},
        "properties": {
            "area": result.area,
            "severity": result.severity.value,
            "baselines": list(result.baselines),
            "tags": [result.area, result.severity.value, *result.baselines],
        },
    }
    if help_lines:
        descriptor["help"] = {"text": "\n\n".join(help_lines)}
    if result.references:
        descriptor["helpUri"] = result.references[0]
    return descriptor


def _level(result: Result) -> str:
    level = LEVELS[result.severity]
    if result.status is Status.NOT_CHECKED:
        return "warning" if result.severity is Severity.REQUIRED else "note"
    if result.status is not Status.FAIL and level == "error":
        return "warning"
    return level


def _message(result: Result) -> str:
    text = f"{result.title}: {result.message}" if result.message else result.title
    if result.status is Status.NOT_CHECKED:
        text = f"not checked (the evidence could not be read, this is not a pass): {text}"
    if result.expected is not None or result.actual is not None:
        text += f" (expected {format_value(result.expected)}, found {format_value(result.actual)})"
    return text


#: a failure judged against a golden baseline -> SARIF's ``baselineState`` (SARIF 2.1.0, 3.27.24)
_BASELINE_STATE = {"accepted": "unchanged", "new": "new"}


def _result(
    result: Result, rule_index: int, artifact_index: int, source: str, baseline: str | None = None
) -> dict[str, Any]:
    location: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": _uri(source), "index": artifact_index}},
    }
    logical = []
    for ev in result.evidence:
        where = evidence_location(ev)
        if where:
            name = where
            if ev.value_name:
                # a value name may itself start with a backslash (MountedDevices' \DosDevices\C:): never doubled
                vn = ev.value_name
                name = f"{where} (value {vn})" if vn.startswith("\\") else f"{where}\\{vn}"
            logical.append({"fullyQualifiedName": name, "kind": "resource" if ev.hive else "object"})
    if logical:
        location["logicalLocations"] = logical
    data: dict[str, Any] = {
        "ruleId": result.rule_id,
        "ruleIndex": rule_index,
        "level": _level(result),
        "kind": "fail",
        "message": {"text": _message(result)},
        "locations": [location],
        "properties": {
            "status": result.status.value,
            "disk": result.disk,
            "expected": result.expected,
            "actual": result.actual,
            "evidence": [describe_evidence(ev) for ev in result.evidence],
        },
    }
    if result.remediation:
        data["properties"]["remediation"] = result.remediation
    if baseline is not None:
        data["baselineState"] = _BASELINE_STATE[baseline]
        data["properties"]["baseline"] = baseline
    if result.status is Status.WAIVED:
        data["suppressions"] = [{"kind": "external", "justification": result.reason or "waived"}]
    return data


def to_sarif(
    reports: Report | Sequence[Report],
    *,
    include: Iterable[Status | str] = _DEFAULT_INCLUDE,
) -> dict[str, Any]:
    """The SARIF log as a dict: one run, every image an artifact."""
    wanted = {Status(s) for s in include}
    items = as_reports(reports)
    rules: dict[str, int] = {}
    descriptors: list[dict[str, Any]] = []
    artifacts: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []
    for artifact_index, report in enumerate(items):
        artifacts.append(
            {
                "location": {"uri": _uri(report.source)},
                "description": {
                    "text": f"disk image audited with profile {report.profile}"
                    + (f", target {report.target_text}" if report.target_text else "")
                },
            }
        )
        # a disk without Windows audited as an OS disk: the rules it leaves unchecked for that one reason are
        # named by the disk.windows_volume result, not listed one by one
        folded: dict[int, Result] = {}
        unread: list[str] = []
        judged = baseline_states(report)
        if no_windows(report):
            for item in groups(report.filter(status=Status.NOT_CHECKED, disk="os")):
                if isinstance(item, Group):
                    folded.update((id(r), r) for r in item.results)
                    unread += item.rule_ids
        for result in report.results:
            if id(result) in folded:
                continue
            if result.rule_id not in rules:
                rules[result.rule_id] = len(descriptors)
                descriptors.append(_rule_descriptor(result))
            if result.status is Status.ERROR:
                notifications.append(
                    {
                        "level": "error",
                        "message": {"text": f"{report.source}: rule {result.rule_id} failed: {result.message}"},
                        "associatedRule": {"id": result.rule_id, "index": rules[result.rule_id]},
                    }
                )
            if result.status in wanted:
                entry = _result(
                    result,
                    rules[result.rule_id],
                    artifact_index,
                    report.source,
                    judged.get((result.rule_id, result.disk)),
                )
                if result.rule_id == WINDOWS_VOLUME_ID and unread:
                    entry["message"]["text"] += f" ({len(unread)} rules not checked for want of Windows)"
                    entry["properties"]["notChecked"] = unread
                results.append(entry)
    version = items[0].tool_version if items else ""
    driver: dict[str, Any] = {
        "name": "azvhdaudit",
        "informationUri": INFORMATION_URI,
        "rules": descriptors,
    }
    if version:
        driver["version"] = version
        driver["semanticVersion"] = version
    invocation: dict[str, Any] = {
        "executionSuccessful": not notifications,
        "toolExecutionNotifications": notifications,
    }
    if items:
        invocation["startTimeUtc"] = items[0].started.isoformat().replace("+00:00", "Z")
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {"driver": driver},
                "invocations": [invocation],
                "artifacts": artifacts,
                "results": results,
                "properties": {
                    "profiles": sorted({r.profile for r in items}),
                    "targets": [dict(r.target) for r in items],
                },
            }
        ],
    }


def render(reports: Report | Sequence[Report], *, include: Iterable[Status | str] = _DEFAULT_INCLUDE) -> str:
    """The SARIF log as JSON text."""
    return json.dumps(to_sarif(reports, include=include), indent=2, default=str, ensure_ascii=False) + "\n"
