"""WinRM rules: service start type, HTTP listener, HTTP-In firewall rules."""

from __future__ import annotations

import pytest

from azvhdaudit.report import Status

from .guestkit import FW_RULES, RULES_OK, SVC, WSMAN, Case, check_case, params

P, F, W, NC = Status.PASS, Status.FAIL, Status.WARNING, Status.NOT_CHECKED

CASES = [
    Case("winrm.service_auto", "delayed-auto", P, says="Delayed Start"),
    Case(
        "winrm.service_auto",
        "manual",
        F,
        system={rf"{SVC}\WinRM": {"Start": 3, "DelayedAutostart": None}},
        says="not enabled",
    ),
    Case("winrm.service_auto", "disabled", F, system={rf"{SVC}\WinRM": {"Start": 4}}),
    Case("winrm.service_auto", "not-installed", F, system={rf"{SVC}\WinRM": None}, says="not installed"),
    Case("winrm.service_auto", "system-missing", NC, drop=("SYSTEM",)),
    Case("winrm.listener_http", "compliant", P),
    Case("winrm.listener_http", "no-listener", W, software={WSMAN + r"\Listener\*+HTTP": None}, says="no *+HTTP"),
    Case(
        "winrm.listener_http",
        "policy-off",
        W,
        software={r"Policies\Microsoft\Windows\WinRM\Service": {"AllowAutoConfig": 0}},
    ),
    Case("winrm.listener_http", "software-missing", NC, drop=("SOFTWARE",)),
    Case("winrm.firewall_http_in", "compliant", P, says="scoped"),
    Case(
        "winrm.firewall_http_in",
        "public-off",
        F,
        system={FW_RULES: {"WINRM-HTTP-In-TCP": RULES_OK["WINRM-HTTP-In-TCP"].replace("Active=TRUE", "Active=FALSE")}},
        says="public",
    ),
    Case(
        "winrm.firewall_http_in",
        "absent",
        F,
        system={FW_RULES: {"WINRM-HTTP-In-TCP": None, "WINRM-HTTP-In-TCP-NoScope": None}},
        says="no 'Windows",
    ),
    Case(
        "winrm.firewall_http_in",
        "other-ids-same-name",
        P,
        system={
            FW_RULES: {
                "WINRM-HTTP-In-TCP": None,
                "WINRM-HTTP-In-TCP-NoScope": None,
                "custom": "v2.10|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=5985|Name=@FirewallAPI.dll,-30253|",
            }
        },
    ),
    Case("winrm.firewall_http_in", "system-missing", NC, drop=("SYSTEM",)),
]


@pytest.mark.parametrize("case", params(CASES))
def test_winrm(case: Case) -> None:
    check_case(case)
