"""A golden baseline: judge an audit by what got worse since a recorded report, the way ruff and mypy
baselines work.

    azvhdaudit audit build/os.vhd --baseline golden.json --update-baseline   # record (exit 0)
    azvhdaudit audit build/os.vhd --baseline golden.json                     # exit 1 only on what got worse

The baseline file is an ordinary JSON report (``azvhdaudit audit --format json``): one image's, or several
under ``"reports"``. A failure of the new audit is *accepted* when the baseline's report of the same image
has the same rule (on the same disk) failing at least as badly: a rule that failed before and fails now
is accepted; one that warned before and fails now is not. Accepted failures stay in the report with their
status and evidence — nothing is hidden — but do not fail the run. Baseline failures that no longer fail
are listed as *fixed*, so the baseline can be recorded again.

Which baseline report judges an image: the one with the same ``source``, else the same file name, else —
when the baseline holds exactly one report — that one (a pipeline's image path changes build by build).
An image with no baseline report has every failure new.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azvhdaudit.errors import AuditError
from azvhdaudit.report import Report, Result, Status

__all__ = [
    "BaselineNotFoundError",
    "Baseline",
    "Judgement",
    "load_baseline",
    "record_baseline",
    "judge",
    "failing",
]


class BaselineNotFoundError(AuditError, FileNotFoundError):
    """The baseline file does not exist (record one with ``--update-baseline`` / :func:`record_baseline`)."""


def _rank(status: Status, fail_on: str) -> int:
    """How bad a verdict is for the run: 2 fails it, 1 fails it with ``fail_on="warning"``, 0 never."""
    if status in (Status.FAIL, Status.ERROR):
        return 2
    if status is Status.WARNING:
        return 1 if fail_on == "warning" else 0
    return 0


def failing(report: Report, fail_on: str = "fail") -> list[Result]:
    """The results that make :meth:`Report.exit_code` 1."""
    return [r for r in report.results if _rank(r.status, fail_on)]


@dataclass
class Judgement:
    """One image's audit judged against its baseline report."""

    source: str
    #: the baseline report's source, or ``None`` when the baseline has no report of this image
    baseline_source: str | None
    baseline_file: str
    #: failing now and failing at least as badly in the baseline
    accepted: list[Result] = field(default_factory=list)
    #: failing now and not accepted: these fail the run
    new: list[Result] = field(default_factory=list)
    #: rule ids (with their disk) failing in the baseline and not now
    fixed: list[tuple[str, str]] = field(default_factory=list)

    def exit_code(self) -> int:
        """1 when something got worse than the baseline, else 0."""
        return 1 if self.new else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.baseline_file,
            "baseline_source": self.baseline_source,
            "accepted": [{"rule_id": r.rule_id, "disk": r.disk, "status": r.status.value} for r in self.accepted],
            "new": [{"rule_id": r.rule_id, "disk": r.disk, "status": r.status.value} for r in self.new],
            "fixed": [{"rule_id": rule, "disk": disk} for rule, disk in self.fixed],
            "exit_code": self.exit_code(),
        }

    def summary(self) -> str:
        """The judgement in a few lines, for a terminal or a log."""
        where = f"baseline {self.baseline_file}"
        if self.baseline_source is None:
            head = f"{where}: no report of {self.source} in it; every failure is new"
        else:
            head = f"{where} ({os.path.basename(self.baseline_source)}) judging {self.source}"
        lines = [head]

        def ids(items: Iterable[Result]) -> str:
            return ", ".join(r.rule_id + (f" [{r.disk}]" if r.disk != "os" else "") for r in items)

        if self.accepted:
            lines.append(
                f"  accepted  {len(self.accepted)} failing in the baseline too (not failing the run): "
                f"{ids(self.accepted)}"
            )
        for r in self.new:
            lines.append(
                f"  NEW       {r.rule_id}{f' [{r.disk}]' if r.disk != 'os' else ''} ({r.status.value}): {r.message}"
            )
        if self.fixed:
            lines.append(
                f"  fixed     {len(self.fixed)} baseline failures no longer fail: "
                + ", ".join(rule for rule, _ in self.fixed)
                + " (record the baseline again)"
            )
        verdict = (
            f"{len(self.new)} new failure{'s' if len(self.new) != 1 else ''} against the baseline"
            if self.new
            else "nothing got worse than the baseline"
        )
        lines.append(f"  result    {verdict}")
        return "\n".join(lines) + "\n"


@dataclass
class Baseline:
    """The recorded reports a run is judged against."""

    path: str
    reports: list[Report]

    def report_for(self, report: Report) -> Report | None:
        """The baseline report of ``report``'s image (see the module's documentation)."""
        for candidate in self.reports:
            if candidate.source == report.source:
                return candidate
        name = os.path.basename(report.source)
        named = [c for c in self.reports if os.path.basename(c.source) == name]
        if len(named) == 1:
            return named[0]
        if len(self.reports) == 1:
            return self.reports[0]
        return None

    def judge(self, report: Report, fail_on: str = "fail") -> Judgement:
        return judge(report, self.report_for(report), fail_on, baseline_file=self.path)


def judge(report: Report, baseline: Report | None, fail_on: str = "fail", *, baseline_file: str = "") -> Judgement:
    """Judge ``report`` against one baseline report (``None``: nothing recorded, every failure is new)."""
    before = {(r.rule_id, r.disk): _rank(r.status, fail_on) for r in (baseline.results if baseline else [])}
    judgement = Judgement(
        source=report.source, baseline_source=baseline.source if baseline else None, baseline_file=baseline_file
    )
    now: set[tuple[str, str]] = set()
    for result in failing(report, fail_on):
        key = (result.rule_id, result.disk)
        now.add(key)
        if before.get(key, 0) >= _rank(result.status, fail_on):
            judgement.accepted.append(result)
        else:
            judgement.new.append(result)
    judgement.fixed = sorted(key for key, rank in before.items() if rank and key not in now)
    return judgement


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline file (a JSON report, or several); :class:`BaselineNotFoundError` when it is missing."""
    from azvhdaudit.diff import load_reports

    name = os.fspath(path)
    if not Path(name).is_file():
        raise BaselineNotFoundError(f"{name}: no baseline file there (record one with --update-baseline)")
    return Baseline(path=name, reports=load_reports(name))


def record_baseline(reports: Report | Sequence[Report], path: str | os.PathLike[str]) -> Path:
    """Write ``reports`` as the baseline file ``path`` (JSON, replacing what was there); returns the path."""
    from azvhdaudit.render.json import render

    items = [reports] if isinstance(reports, Report) else list(reports)
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(render(items[0] if len(items) == 1 else items), encoding="utf-8")
    tmp.replace(target)
    return target
