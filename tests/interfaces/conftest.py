"""Fixtures for the interface tests (the reports come from :mod:`reportkit`)."""

from __future__ import annotations

import pytest
from reportkit import make_clean_report, make_report

from azvhdaudit.report import Report


@pytest.fixture
def report() -> Report:
    """A report with every status: failures (registry, BCD), an error, warnings, not checked, manual,
    waived, not applicable, and a data-disk result."""
    return make_report()


@pytest.fixture
def clean_report() -> Report:
    """A report with only passes and not-applicable results."""
    return make_clean_report()
