"""Windows services Azure connectivity depends on, and their start types.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Check the Windows services"
(current: ``Get-Service ... | Set-Service -StartupType Automatic/Manual``; 2017: one ``Set-Service``
line per service) and the NOTE on the Special Administration Console (sacsvr). Service start values:
``SYSTEM\\CurrentControlSet\\Services\\<name>\\Start`` 0 Boot, 1 System, 2 Automatic, 3 Manual,
4 Disabled; ``DelayedAutostart`` = 1 with Start = 2 is "Automatic (Delayed Start)"; a ``TriggerInfo``
subkey makes it "(Trigger Start)".
"""

from __future__ import annotations

from dataclasses import dataclass

from azvhdaudit.errors import NotApplicable
from azvhdaudit.report import Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, Rule, register
from azvhdaudit.rules.values import BOTH, CURRENT, format_data, mismatch_status, open_key, value_evidence

__all__ = ["ServiceRow", "START_NAMES", "service_outcome", "ROWS"]

SERVICE_GROUP = Group(area="services", source="Check the Windows services")

SERVICES = r"HKLM\SYSTEM\CurrentControlSet\Services"
START_NAMES = {0: "Boot", 1: "System", 2: "Automatic", 3: "Manual", 4: "Disabled"}
_AUTO_LINE = (
    "Get-Service -Name BFE, Dhcp, Dnscache, IKEEXT, iphlpsvc, nsi, mpssvc, RemoteRegistry | "
    "Where-Object StartType -ne Automatic | Set-Service -StartupType Automatic"
)
_MANUAL_LINE = (
    "Get-Service -Name Netlogon, Netman, TermService | Where-Object StartType -ne Manual | "
    "Set-Service -StartupType Manual"
)


def start_text(start: int | None, delayed: bool, trigger: bool) -> str:
    name = START_NAMES.get(start, f"unknown ({start})") if start is not None else "missing"
    if start == 2 and delayed:
        name += " (Delayed Start)"
    if trigger:
        name += " (Trigger Start)"
    return name


def service_outcome(
    ctx: AuditContext, service: str, expected: int, severity: Severity, accept: tuple[int, ...] = ()
) -> Outcome:
    """Judge a service's start type: expected (or ``accept``-ed) passes, Disabled gets the severity's
    status, any other start type is a warning (this project's reading: the doc resets them to the Windows
    defaults, but only Disabled stops the service for sure). A missing service key fails."""
    path = f"{SERVICES}\\{service}"
    key = open_key(ctx, path)
    if key is None:
        ev = value_evidence(ctx, path, "Start", None, "registry", note="service key absent")
        return Outcome(
            mismatch_status(severity),
            f"service {service} is not installed (key {ctx.registry.display_path(path)} does not exist)",
            expected=START_NAMES[expected],
            actual=None,
            evidence=(ev,),
        )
    start_value = key.value("Start")
    delayed_value = key.value("DelayedAutostart")
    trigger = key.subkey("TriggerInfo") is not None
    evidence = (
        value_evidence(ctx, path, "Start", start_value, "registry"),
        value_evidence(
            ctx,
            path,
            "DelayedAutostart",
            delayed_value,
            "registry",
            note="TriggerInfo subkey present" if trigger else "",
        ),
    )
    start = start_value.data if start_value is not None and isinstance(start_value.data, int) else None
    delayed = bool(delayed_value is not None and delayed_value.data == 1)
    shown = start_text(start, delayed, trigger)
    if start_value is not None and start is None:
        return Outcome(
            mismatch_status(severity),
            f"Start is {start_value.type_name} {format_data(start_value.data)} under "
            f"{ctx.registry.display_path(path)}; "
            "Windows reads a REG_DWORD",
            expected=START_NAMES[expected],
            actual=start_value.data,
            evidence=evidence,
        )
    if start_value is None:
        return Outcome(
            mismatch_status(severity),
            f"value Start is missing under {ctx.registry.display_path(path)}",
            expected=START_NAMES[expected],
            actual=None,
            evidence=evidence,
        )
    if start == expected or start in accept:
        return Outcome(
            Status.PASS, f"{service} starts {shown}", expected=START_NAMES[expected], actual=shown, evidence=evidence
        )
    status = mismatch_status(severity) if start == 4 else Status.WARNING
    if status is Status.PASS:
        status = Status.WARNING
    return Outcome(
        status,
        f"{service} starts {shown}, Azure expects {START_NAMES[expected]}",
        expected=START_NAMES[expected],
        actual=shown,
        evidence=evidence,
    )


@dataclass(frozen=True)
class ServiceRow:
    id: str
    service: str
    expected: int
    remediation_line: str
    severity: Severity = Severity.REQUIRED
    baselines: tuple[str, ...] = BOTH
    rationale: str = ""

    def rule(self) -> Rule:
        meta = SERVICE_GROUP.meta(
            id=self.id,
            title=f"{self.service} start type {START_NAMES[self.expected]}",
            severity=self.severity,
            rationale=self.rationale
            or "One of the services the doc resets so the VM has network connectivity. Disabled fails; another "
            "start type than the doc's is a warning (the service can still run).",
            baselines=self.baselines,
            remediation=self.remediation_line,
        )

        def check(ctx: AuditContext) -> Outcome:
            return service_outcome(ctx, self.service, self.expected, self.severity)

        return Rule(meta, check)


ROWS = (
    ServiceRow("services.bfe", "BFE", 2, _AUTO_LINE),
    ServiceRow("services.dhcp", "Dhcp", 2, _AUTO_LINE),
    ServiceRow("services.dnscache", "Dnscache", 2, _AUTO_LINE),
    ServiceRow(
        "services.ikeext",
        "IKEEXT",
        2,
        _AUTO_LINE,
        rationale="The doc sets Automatic; the Windows default on clients (and on the Windows 7 hive in the "
        "tests) is Manual (Trigger Start), which is a warning, not a failure.",
    ),
    ServiceRow("services.iphlpsvc", "iphlpsvc", 2, _AUTO_LINE),
    ServiceRow("services.nsi", "nsi", 2, _AUTO_LINE),
    ServiceRow("services.mpssvc", "MpsSvc", 2, _AUTO_LINE),
    ServiceRow(
        "services.remoteregistry",
        "RemoteRegistry",
        2,
        _AUTO_LINE,
        rationale="The doc forces Automatic although client editions since Windows 8 ship it Disabled "
        "(the Windows 10 1709 hive in the tests has Start = 4): such an image fails as the doc is written.",
    ),
    ServiceRow(
        "services.netlogon",
        "Netlogon",
        3,
        _MANUAL_LINE,
        rationale="Windows default Manual; domain-joined machines have Automatic (a warning: harmless, but not "
        "what the doc sets).",
    ),
    ServiceRow("services.netman", "Netman", 3, _MANUAL_LINE),
    ServiceRow("services.termservice", "TermService", 3, _MANUAL_LINE),
)

for _row in ROWS:
    register(_row.rule())


def _sacsvr(ctx: AuditContext) -> Outcome:
    os_facts = ctx.facts.os
    is_server = os_facts.is_server if os_facts is not None else None
    if is_server is False:
        raise NotApplicable(
            "sacsvr ships with Server editions only; on a client edition the EMS-SAC capability must be "
            'added first (Add-WindowsCapability -Online -Name "Windows.Desktop.EMS-SAC.Tools~~~~0.0.1.0")'
        )
    return service_outcome(ctx, "sacsvr", 2, Severity.RECOMMENDED)


register(
    Rule(
        SERVICE_GROUP.meta(
            id="services.sacsvr",
            title="Special Administration Console Helper (sacsvr) Automatic (serial console SAC)",
            severity=Severity.RECOMMENDED,
            rationale="The Azure serial console's SAC needs sacsvr running. The doc: 'At Windows Server Edition "
            "the service's startup configuration has to be changed to Automatic.' When the edition is unknown "
            "the rule is evaluated.",
            source="Verify the VM (NOTE after the BCD settings)",
            baselines=CURRENT,
            remediation="Set-Service -Name sacsvr -StartupType Automatic",
        ),
        _sacsvr,
    )
)
