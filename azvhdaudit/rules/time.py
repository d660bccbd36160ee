"""Time: the hardware clock read as UTC, and the Windows Time service running.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Set Windows configurations
for Azure" (``RealTimeIsUniversal`` and ``Set-Service -Name w32time -StartupType Automatic``).
``SYSTEM\\CurrentControlSet\\Control\\TimeZoneInformation\\RealTimeIsUniversal``: Hyper-V in Azure
presents the real-time clock in UTC.
"""

from __future__ import annotations

from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Outcome, Severity
from azvhdaudit.rules.base import AuditContext, rule
from azvhdaudit.rules.services import service_outcome
from azvhdaudit.rules.values import BOTH, Group, Item, ValueRule, register_values

TIME = Group(area="time", source="Set Windows configurations for Azure")

register_values(
    (
        ValueRule(
            id="time.utc",
            title="Hardware clock interpreted as UTC (RealTimeIsUniversal = 1)",
            group=TIME,
            severity=Severity.REQUIRED,
            items=(
                Item(
                    r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation",
                    "RealTimeIsUniversal",
                    1,
                    types=(RegType.DWORD, RegType.QWORD),
                ),
            ),
            remediation="Set-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Control\\TimeZoneInformation "
            "-Name RealTimeIsUniversal -Value 1 -Type DWord -Force",
            rationale="Azure's host clock is UTC; without RealTimeIsUniversal Windows reads it as local time and "
            "the guest clock is off by the time-zone bias. A REG_QWORD 1 is read the same way and accepted.",
        ),
    )
)


@rule(
    TIME,
    id="time.w32time_auto",
    title="Windows Time (W32Time) start type Automatic",
    severity=Severity.REQUIRED,
    rationale="Keeps the clock synchronised with the host. Disabled fails; Manual (Trigger Start, the "
    "default on machines outside a domain) is a warning.",
    baselines=BOTH,
    remediation="Set-Service -Name w32time -StartupType Automatic",
)
def check_w32time(ctx: AuditContext) -> Outcome:
    return service_outcome(ctx, "W32Time", 2, Severity.REQUIRED)
