"""The secureboot.* rules are loaded (their metadata, references and cases: tests/catalogue/test_rule_catalogue.py)."""

from __future__ import annotations

from pathlib import Path

import azvhdaudit.rules  # registers the rules
from azvhdaudit.rules.base import all_rules

HERE = Path(__file__).resolve().parent
MINE = [r for r in all_rules() if r.id.startswith("secureboot.")]


def test_the_module_is_loaded() -> None:
    assert "secureboot" in azvhdaudit.rules.loaded_modules()
    assert {r.id for r in MINE} == {
        "secureboot.generation2",
        "secureboot.os_supported",
        "secureboot.bcd_integrity",
        "secureboot.bootmgr_signature",
        "secureboot.uefica2023_servicing",
    }
