"""Doc steps that need a running VM: reported as "manual" so nobody takes them for checked.

References: "Prepare a Windows VHD or VHDX to upload to Azure" (https://learn.microsoft.com/azure/
virtual-machines/windows/prepare-for-upload-vhd-image, ms.date 2022-08-04; the 2017 text: MicrosoftDocs/azure-docs
articles/virtual-machines/windows/prepare-for-upload-vhd-image.md, ms.date 2017-08-01), sections "Verify the VM",
"Determine when to use Sysprep", "Convert the virtual disk": the steps among them that only a running VM can show.
"""

from __future__ import annotations

from dataclasses import dataclass

from azvhdaudit.errors import NotApplicable
from azvhdaudit.report import Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, Rule, register
from azvhdaudit.rules.values import BOTH, CURRENT, HiveUnavailable, read_value

MANUAL = Group(area="manual")


@dataclass(frozen=True)
class ManualStep:
    id: str
    title: str
    step: str
    why: str
    source: str
    baselines: tuple[str, ...] = BOTH
    severity: Severity = Severity.RECOMMENDED
    #: words of the source quoted after "Needs a running VM: <why>." in the rationale
    quote: str = ""


STEPS = (
    ManualStep(
        "manual.sfc",
        "System File Checker run before generalizing",
        "sfc.exe /scannow",
        "needs the running OS; nothing in the image records a clean scan",
        "Verify the VM",
        CURRENT,
    ),
    ManualStep(
        "manual.wmi_repository",
        "WMI repository consistent",
        "winmgmt /verifyrepository",
        "needs the WMI service; only the repository files could be seen offline",
        "Verify the VM",
    ),
    ManualStep(
        "manual.port_3389_free",
        "Only TermService listens on port 3389",
        "netstat.exe -anob",
        "runtime state; offline only the RDP listener's configured port is checked (rdp.port)",
        "Verify the VM",
    ),
    ManualStep(
        "manual.rdp_restart_test",
        "VM restarted on local Hyper-V and reachable over RDP",
        "Restart the VM and connect with RDP",
        "a runtime test",
        "Verify the VM",
    ),
    ManualStep(
        "manual.admin_password",
        "Built-in administrator password known (or reset)",
        "Reset the local administrator password and test an RDP logon with it",
        "a secret; rdp.builtin_admin_known reports only whether the account is enabled",
        "Verify the VM",
    ),
    ManualStep(
        "manual.dsrm_password",
        "DSRM password known (domain controller)",
        "Make sure the DSRM password is known (ntdsutil 'set dsrm password')",
        "a secret",
        "Verify the VM (domain controllers)",
    ),
    ManualStep(
        "manual.dism_optimize",
        "Optional: DISM /optimize-image /boot",
        "DISM /image:D:\\ /optimize-image /boot",
        "leaves no reliable marker in the image",
        "Verify the VM (optional)",
        CURRENT,
        Severity.ADVISORY,
    ),
    ManualStep(
        "manual.backup",
        "VM backed up before conversion",
        "Back up the VM before converting the disk",
        "a process step outside the image",
        "Convert the virtual disk",
    ),
)


def _is_dc(ctx: AuditContext) -> bool | None:
    try:
        read = read_value(ctx, r"HKLM\SYSTEM\CurrentControlSet\Control\ProductOptions", "ProductType")
    except HiveUnavailable:
        return None
    if not read.present:
        return None
    return str(read.data).lower() == "lanmannt"


#: the ids of every rule declared as a step for the running VM, in any area (they report manual, always)
MANUAL_STEP_IDS: set[str] = set()


def _make(group: Group, step: ManualStep) -> Rule:
    def check(ctx: AuditContext) -> Outcome:
        if step.id == "manual.dsrm_password" and _is_dc(ctx) is False:
            raise NotApplicable("the image is not a domain controller (ProductType is not LanmanNT)")
        return Outcome(
            Status.MANUAL, f"not checked offline ({step.why}); do it on the running VM: {step.step}", reason=step.why
        )

    meta = group.meta(
        id=step.id,
        title=step.title,
        severity=step.severity,
        rationale=f"Needs a running VM: {step.why}." + (f" {step.quote}" if step.quote else ""),
        source=step.source,
        baselines=step.baselines,
        remediation=step.step,
    )
    return Rule(meta, check)


def register_steps(group: Group, steps: tuple[ManualStep, ...]) -> None:
    """Declare each step as a rule of ``group`` that reports manual, with the step as its fix."""
    for step in steps:
        register(_make(group, step))
        MANUAL_STEP_IDS.add(step.id)


register_steps(MANUAL, STEPS)
