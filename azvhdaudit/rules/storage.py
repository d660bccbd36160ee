"""Storage: the SAN policy that brings every disk online, and the DVD drive Azure provisions through.

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Set Windows configurations
for Azure" (``diskpart`` ``san policy=onlineall``) and its NOTE on the CD/DVD-ROM (current text).
VDS_SAN_POLICY: 1 OnlineAll, 2 OfflineShared, 3 OfflineAll, 4 OfflineInternal; diskpart stores it in
``SYSTEM\\CurrentControlSet\\Services\\partmgr\\Parameters\\SanPolicy``. Removable-storage policies:
``SOFTWARE\\Policies\\Microsoft\\Windows\\RemovableStorageDevices`` (CD/DVD class
{53f56308-b6bf-11d0-94f2-00a0c91efb8b}).
"""

from __future__ import annotations

from azvhdaudit.report import Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, rule
from azvhdaudit.rules.os import OS
from azvhdaudit.rules.values import CURRENT, Group, Item, ValueRule, evaluate_items, register_values

SAN_VALUES = {1: "OnlineAll", 2: "OfflineShared", 3: "OfflineAll", 4: "OfflineInternal"}

register_values(
    (
        ValueRule(
            id="san.policy_onlineall",
            title="Disk SAN policy = OnlineAll (SanPolicy = 1)",
            group=Group(area="storage", source="Set Windows configurations for Azure"),
            severity=Severity.REQUIRED,
            items=(
                Item(r"HKLM\SYSTEM\CurrentControlSet\Services\partmgr\Parameters", "SanPolicy", 1, if_absent="warn"),
            ),
            remediation="diskpart.exe  ->  DISKPART> san policy=onlineall  ->  DISKPART> exit",
            rationale="With an Offline policy, data disks attached in Azure stay offline. When the value is "
            "absent the edition's default applies (OfflineShared on some Server editions), so absence is a "
            "warning. 2 = OfflineShared, 3 = OfflineAll, 4 = OfflineInternal.",
        ),
    )
)

CDROM_ITEMS = (
    Item(r"HKLM\SYSTEM\CurrentControlSet\Services\cdrom", "Start", 4, compare="ne", label="cdrom driver"),
    Item(
        r"HKLM\SOFTWARE\Policies\Microsoft\Windows\RemovableStorageDevices",
        "Deny_All",
        0,
        if_absent="pass",
        label="deny all removable storage",
    ),
    Item(
        r"HKLM\SOFTWARE\Policies\Microsoft\Windows\RemovableStorageDevices\{53f56308-b6bf-11d0-94f2-00a0c91efb8b}",
        "Deny_Read",
        0,
        if_absent="pass",
        label="deny CD/DVD read",
    ),
)


def _specialized(ctx: AuditContext) -> bool:
    """The image type the user stated, else the one the Sysprep facts found."""
    found = ctx.facts.sysprep.state if ctx.facts.sysprep is not None else None
    return (ctx.options.image_type or found) == "specialized"


@rule(
    OS,
    id="os.dvd_rom_enabled",
    title="CD/DVD-ROM not disabled (Azure attaches the provisioning media to generalized images)",
    severity=Severity.REQUIRED,
    rationale="A generalized VM whose DVD drive is disabled stays stuck at OOBE: Azure hands the "
    "provisioning data over on a virtual DVD. For a specialized image a disabled drive is a warning. "
    "Checked: the cdrom driver's Start (4 = disabled) and the removable-storage deny policies; a single "
    "device disabled in Device Manager is not visible here.",
    source="Set Windows configurations for Azure (NOTE)",
    baselines=CURRENT,
    remediation="Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\cdrom' -Name Start "
    "-Value 1 -Type DWord -Force  (and remove the 'Deny' removable-storage policies)",
)
def check_dvd(ctx: AuditContext) -> Outcome:
    outcome = evaluate_items(ctx, CDROM_ITEMS, Severity.REQUIRED)
    if outcome.status is Status.FAIL and _specialized(ctx):
        return Outcome(
            Status.WARNING,
            outcome.message + " (specialized image: a warning only)",
            outcome.expected,
            outcome.actual,
            outcome.evidence,
            outcome.reason,
        )
    return outcome
