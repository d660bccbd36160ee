"""Steps that need a running VM are reported as manual, never as passed."""

from __future__ import annotations

import pytest

from azvhdaudit.report import Status
from azvhdaudit.rules.manual import STEPS

from .guestkit import CCS, Case, check_case, params

M, NA = Status.MANUAL, Status.NOT_APPLICABLE

CASES = [Case(step.id, "manual", M, profile=step.baselines[0]) for step in STEPS] + [
    Case(
        "manual.dsrm_password", "not-a-dc", NA, system={rf"{CCS}\Control\ProductOptions": {"ProductType": "ServerNT"}}
    ),
    Case("manual.dsrm_password", "dc", M, system={rf"{CCS}\Control\ProductOptions": {"ProductType": "LanmanNT"}}),
    Case("manual.dsrm_password", "unknown-without-system", M, drop=("SYSTEM",)),
]
# the generic row above runs on the compliant (member server) hive: the DC step does not apply there
CASES = [c for c in CASES if not (c.rule == "manual.dsrm_password" and c.name == "manual")]


@pytest.mark.parametrize("case", params(CASES))
def test_manual(case: Case) -> None:
    result = check_case(case)
    if case.status is M:
        assert "not checked offline" in result.message
