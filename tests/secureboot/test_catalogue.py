"""The secureboot.* rules as a catalogue: metadata complete, platform baseline only, sources dated, all tested."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import azvhdaudit.rules  # registers the rules
from azvhdaudit.report import Severity
from azvhdaudit.rules.base import BASELINES, PROFILES, all_rules

HERE = Path(__file__).resolve().parent
MINE = [r for r in all_rules() if r.id.startswith("secureboot.")]


def test_the_module_is_loaded() -> None:
    assert "secureboot" in azvhdaudit.rules.loaded_modules()
    assert {r.id for r in MINE} == {
        "secureboot.generation2", "secureboot.os_supported", "secureboot.bcd_integrity",
        "secureboot.bootmgr_signature", "secureboot.uefica2023_servicing",
    }


@pytest.mark.parametrize("r", MINE, ids=lambda r: r.id)
def test_metadata(r: azvhdaudit.rules.Rule) -> None:
    meta = r.meta
    assert re.fullmatch(r"secureboot\.[a-z0-9_]+", meta.id)
    assert meta.area == "secureboot" and meta.title and meta.rationale and meta.remediation
    assert meta.baselines == ("azure-platform",) and set(meta.baselines) <= set(BASELINES)
    assert "azure-platform" in PROFILES["azure"] and "azure-platform" not in PROFILES["azure-2022"]
    # every rule names its Microsoft document with a date, and links it
    assert re.search(r"20\d\d-\d\d-\d\d", meta.source), meta.source
    assert meta.references and all(ref.startswith("https://") for ref in meta.references)
    assert meta.severity in (Severity.REQUIRED, Severity.RECOMMENDED)


def test_every_rule_is_tested() -> None:
    text = "".join(p.read_text() for p in HERE.glob("test_*.py") if p.name != "test_catalogue.py")
    assert not [r.id for r in MINE if f'"{r.id}"' not in text]
