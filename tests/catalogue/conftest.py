"""Records the status of every rule evaluation the test session makes, and runs the rule catalogue's tests last.

Every rule outcome, in an audit or a single-rule run, passes :func:`azvhdaudit.engine.judged`; wrapping it here
(when pytest collects this directory, before any test runs) records ``(rule id, status)`` for the whole session.
:mod:`tests.catalogue.test_rule_catalogue` then asks whether every rule was seen passing, with a problem and not
checked. The items of this directory are moved to the end of the run, and the session notes whether it is the
whole suite (nothing deselected, every test path collected): only then is the coverage judged.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import azvhdaudit.engine as engine
from azvhdaudit.report import Outcome, Status
from azvhdaudit.rules.base import AuditContext, Rule

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent

#: rule id -> the statuses the session's evaluations gave it
SEEN: dict[str, set[Status]] = defaultdict(set)
#: why this session is not the whole suite ("" when it is)
PARTIAL: list[str] = []

_judged = engine.judged


def _recording(rule: Rule, outcome: Outcome, ctx: AuditContext) -> Outcome:
    judged = _judged(rule, outcome, ctx)
    SEEN[rule.id].add(judged.status)
    return judged


engine.judged = _recording


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        PARTIAL.append(f"{len(items)} test(s) deselected (-m / -k)")


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[Any]) -> None:
    mine = [i for i in items if HERE in Path(str(i.path)).parents]
    others = [i for i in items if HERE not in Path(str(i.path)).parents]
    items[:] = others + mine
    asked = [Path(str(a).split("::")[0]).resolve() for a in config.args]
    if not any(a == TESTS or a in TESTS.parents for a in asked):
        PARTIAL.append(f"only {', '.join(str(a) for a in config.args)} collected, not the whole {TESTS.name}/")
