"""Short reprs and notebook tables for the objects a notebook user touches: a report, a result, its evidence,
an image's facts. ``repr()`` is one line (a REPL or a log stays readable); ``_repr_html_`` is a table where
one helps (Jupyter shows it in place of the repr).

Everything here reads finished objects; nothing evaluates a rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azvhdaudit.render._common import describe_evidence, format_value, identity, verdict
from azvhdaudit.render._lead import headline

if TYPE_CHECKING:
    from azvhdaudit.facts import ImageFacts
    from azvhdaudit.report import Evidence, Report, Result

__all__ = ["report_repr", "result_repr", "evidence_repr", "result_html", "facts_repr", "facts_html"]

_MAX = 160  # characters of a message in a one-line repr


def _short(text: str, limit: int = _MAX) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def report_repr(report: Report) -> str:
    ident = identity(report)
    what = f" ({ident})" if ident else ""
    return (
        f"<Report {report.source!r}{what}, profile {report.profile}: {verdict(report)}, "
        f"{headline(report)}; {len(report.results)} results>"
    )


def result_repr(result: Result) -> str:
    disk = f" [{result.disk}]" if result.disk != "os" else ""
    found = ""
    if result.expected is not None or result.actual is not None:
        found = (
            f"; found {_short(format_value(result.actual), 60)}, expected {_short(format_value(result.expected), 60)}"
        )
    return (
        f"<Result {result.rule_id}{disk} {result.status.value} ({result.severity.value}): "
        f"{_short(result.reason or result.message or result.title)}{found}>"
    )


def evidence_repr(evidence: Evidence) -> str:
    return f"<Evidence {_short(describe_evidence(evidence), 240)}>"


def result_html(result: Result) -> str:
    """One result as the HTML report shows it, opened, with the report's style scoped to it."""
    from azvhdaudit.render.html import _REPORT_CSS, _rule, _scoped

    row = _rule(result).replace("<details class=", "<details open class=", 1)
    return f"<div class=azvhdaudit><style>{_scoped(_REPORT_CSS, '.azvhdaudit')}</style>{row}</div>"


def facts_repr(facts: ImageFacts) -> str:
    os_name = facts.os.name if facts.os is not None else None
    bits = [os_name or "no Windows found"]
    if facts.generation:
        bits.append(f"generation {facts.generation}")
    bits.append(f"{facts.container.format} {facts.container.subtype or ''}".strip())
    bits.append(
        f"{len(facts.partitions)} partition{'s' if len(facts.partitions) != 1 else ''}"
        + (f" ({facts.partition_style})" if facts.partition_style else "")
    )
    return f"<ImageFacts {facts.source!r}: {', '.join(bits)}>"


def facts_html(facts: ImageFacts) -> str:
    """The facts as the HTML report's "Image facts" table (hives never read say so)."""
    from html import escape

    from azvhdaudit.render.html import _REPORT_CSS, _facts, _scoped
    from azvhdaudit.report import Report

    shell: Any = Report(source=facts.source, profile="", facts=facts.to_dict())
    table = _facts(shell).replace("<details class=facts>", "<details open class=facts>", 1)
    return (
        f"<div class=azvhdaudit><style>{_scoped(_REPORT_CSS, '.azvhdaudit')}</style>"
        f"<p class=ident>{escape(facts_repr(facts))}</p>{table}</div>"
    )
