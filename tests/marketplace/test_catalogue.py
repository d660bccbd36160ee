"""The azure-marketplace rules: one id per certification check this module implements, metadata complete (each
cites its document with its date), every rule tested."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from azvhdaudit.engine import catalogue
from azvhdaudit.report import Severity
from azvhdaudit.rules.base import Rule

HERE = Path(__file__).resolve().parent
MINE = [r for r in catalogue() if r.id.startswith("marketplace.")]

#: the certification's checks, one id each (see azvhdaudit/rules/marketplace.py for the sections)
CATALOGUE_IDS = {
    "marketplace.os_64bit",
    "marketplace.generalized",
    "marketplace.os_disk_not_encrypted",
    "marketplace.os_disk_size",
    "marketplace.data_disk_size",
    "marketplace.data_disk_count",
    "marketplace.srv_version",
    "marketplace.unsupported_roles",
    "marketplace.sql_server",
    "marketplace.licensed_products",
    "marketplace.certification_test_tool",
    "marketplace.application_dependencies",
    "marketplace.no_default_credentials",
}


def test_the_catalogue_is_implemented_and_nothing_else() -> None:
    assert {r.id for r in MINE} == CATALOGUE_IDS


@pytest.mark.parametrize("rule", MINE, ids=lambda r: r.id)
def test_metadata(rule: Rule) -> None:
    meta = rule.meta
    assert re.fullmatch(r"marketplace\.[a-z0-9_]+", meta.id) and meta.area == "marketplace"
    assert meta.baselines == ("azure-marketplace",)
    assert meta.title and meta.rationale and meta.remediation and meta.references
    assert re.search(r"\(learn\.microsoft\.com/[^)]*, ms\.date 20\d\d-\d\d-\d\d\)", meta.source), meta.source
    assert all(ref.startswith("https://") for ref in meta.references)
    assert isinstance(meta.severity, Severity) and meta.severity is not Severity.INFORMATIONAL


def test_every_rule_is_tested() -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in HERE.glob("test_*.py") if p.name != "test_catalogue.py")
    assert not [r.id for r in MINE if f'"{r.id}"' not in text]
