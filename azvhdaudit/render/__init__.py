"""Renderers: a finished :class:`~azvhdaudit.report.Report` (or several) turned into text.

One module per format, each a pure function ``render(reports) -> str`` that reads the report and never
evaluates anything. ``reports`` is one report or a sequence of them (one per image audited in one call).

References: JSON Schema 2020-12 (``schemas/report.schema.json``); JUnit XML as read by Jenkins and
junitparser; SARIF 2.1.0 (OASIS); CommonMark/GitHub Flavored Markdown.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from azvhdaudit.report import Report

__all__ = ["FORMATS", "render", "as_reports"]

#: format name -> module under ``azvhdaudit.render``
FORMATS: dict[str, str] = {
    "text": "text",
    "json": "json",
    "junit": "junit",
    "sarif": "sarif",
    "html": "html",
    "markdown": "markdown",
}


def as_reports(reports: Report | Sequence[Report]) -> list[Report]:
    """One report or several, as a list."""
    if isinstance(reports, Report):
        return [reports]
    return list(reports)


def render(reports: Report | Sequence[Report], fmt: str = "text", **options: Any) -> str:
    """Render ``reports`` in ``fmt`` (one of :data:`FORMATS`); options go to the format's renderer."""
    try:
        module_name = FORMATS[fmt]
    except KeyError:
        from azvhdaudit.errors import ProfileError

        raise ProfileError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}") from None
    module = importlib.import_module(f"azvhdaudit.render.{module_name}")
    result: str = module.render(reports, **options)
    return result
