"""A report as a pandas DataFrame, one row per result (pandas is the optional ``pandas`` extra).

Columns: source, disk, rule_id, area, severity, status, title, message, expected, actual, reason,
remediation, source_section, evidence (one line per item), duration_ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from azvhdaudit.render import as_reports
from azvhdaudit.render._common import describe_evidence
from azvhdaudit.report import Report

__all__ = ["to_records", "to_dataframe", "COLUMNS"]

COLUMNS = (
    "source",
    "disk",
    "rule_id",
    "area",
    "severity",
    "status",
    "title",
    "message",
    "expected",
    "actual",
    "reason",
    "remediation",
    "source_section",
    "evidence",
    "duration_ms",
)


def to_records(reports: Report | Sequence[Report]) -> list[dict[str, Any]]:
    """One plain dict per result, with the columns of :data:`COLUMNS`."""
    rows = []
    for report in as_reports(reports):
        for r in report.results:
            rows.append(
                {
                    "source": report.source,
                    "disk": r.disk,
                    "rule_id": r.rule_id,
                    "area": r.area,
                    "severity": r.severity.value,
                    "status": r.status.value,
                    "title": r.title,
                    "message": r.message,
                    "expected": r.expected,
                    "actual": r.actual,
                    "reason": r.reason,
                    "remediation": r.remediation,
                    "source_section": r.source,
                    "evidence": "\n".join(describe_evidence(ev) for ev in r.evidence),
                    "duration_ms": r.duration_ms,
                }
            )
    return rows


def to_dataframe(reports: Report | Sequence[Report]) -> Any:
    """The results as a ``pandas.DataFrame``; raises ImportError with the install hint without pandas."""
    try:
        import pandas as pd
    except ImportError as err:
        raise ImportError("Report.to_dataframe() needs pandas: pip install 'azvhdaudit[pandas]'") from err
    frame = pd.DataFrame.from_records(to_records(reports), columns=list(COLUMNS))
    for column in ("severity", "status", "area"):
        frame[column] = frame[column].astype("category")
    return frame
