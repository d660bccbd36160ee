"""Service start-type rules, including delayed start and the Server-only sacsvr."""

from __future__ import annotations

import pytest

from azvhdaudit.report import Status

from .guestkit import CLIENT, SVC, Case, check_case, params

P, F, W, NC, NA = Status.PASS, Status.FAIL, Status.WARNING, Status.NOT_CHECKED, Status.NOT_APPLICABLE

AUTO = {
    "services.bfe": "BFE",
    "services.dhcp": "Dhcp",
    "services.dnscache": "Dnscache",
    "services.ikeext": "IKEEXT",
    "services.iphlpsvc": "iphlpsvc",
    "services.nsi": "nsi",
    "services.mpssvc": "MpsSvc",
    "services.remoteregistry": "RemoteRegistry",
}
MANUAL = {"services.netlogon": "Netlogon", "services.netman": "Netman", "services.termservice": "TermService"}

CASES = []
for rule_id, name in AUTO.items():
    CASES += [
        Case(rule_id, "automatic", P, says="Automatic"),
        Case(rule_id, "delayed", P, system={rf"{SVC}\{name}": {"DelayedAutostart": 1}}, says="Delayed Start"),
        Case(
            rule_id,
            "manual-trigger",
            W,
            system={rf"{SVC}\{name}": {"Start": 3}, rf"{SVC}\{name}\TriggerInfo\0": {"Type": 1}},
            says="Trigger Start",
        ),
        Case(rule_id, "disabled", F, system={rf"{SVC}\{name}": {"Start": 4}}, says="Disabled"),
        Case(rule_id, "not-installed", F, system={rf"{SVC}\{name}": None}),
        Case(rule_id, "system-missing", NC, drop=("SYSTEM",)),
    ]
for rule_id, name in MANUAL.items():
    CASES += [
        Case(rule_id, "manual", P, says="Manual"),
        Case(rule_id, "automatic", W, system={rf"{SVC}\{name}": {"Start": 2}}),
        Case(rule_id, "disabled", F, system={rf"{SVC}\{name}": {"Start": 4}}),
        Case(rule_id, "start-missing", F, system={rf"{SVC}\{name}": {"Start": None}}, says="value Start is missing"),
        Case(rule_id, "system-missing", NC, drop=("SYSTEM",)),
    ]
CASES += [
    Case("services.bfe", "start-as-string", F, system={rf"{SVC}\BFE": {"Start": "2"}}, says="REG_SZ"),
    Case("services.sacsvr", "server-automatic", P),
    Case("services.sacsvr", "server-manual", W, system={rf"{SVC}\sacsvr": {"Start": 3}}),
    Case("services.sacsvr", "server-absent", W, system={rf"{SVC}\sacsvr": None}, says="not installed"),
    Case("services.sacsvr", "client", NA, os=CLIENT),
    Case("services.sacsvr", "unknown-edition", W, os=None, system={rf"{SVC}\sacsvr": None}),
    Case("services.sacsvr", "system-missing", NC, drop=("SYSTEM",)),
]


@pytest.mark.parametrize("case", params(CASES))
def test_services(case: Case) -> None:
    check_case(case)


def test_not_applicable_says_why() -> None:
    result = check_case(Case("services.sacsvr", "client", NA, os=CLIENT))
    assert "Server editions" in result.reason
