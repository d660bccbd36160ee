"""The page file: the doc's recommendation to move it to the temporary disk (D:).

References: "Prepare a Windows VHD or VHDX to upload to Azure", section "Complete the recommended
configurations": "After the VM is created in Azure, we recommend that you put the pagefile on the
temporary drive volume" — 2017: ``-name "PagingFiles" -Value "D:\\pagefile"`` (no type: REG_SZ
when the value is new); current: ``-Value 'D:\\pagefile.sys' -Type MultiString``.
``SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Memory Management\\PagingFiles`` is a
REG_MULTI_SZ of "path [min max]" entries; ``?:\\pagefile.sys`` means system-managed on any drive.
"""

from __future__ import annotations

from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.values import BOTH, format_data, plain, read_value

PAGEFILE = Group(area="pagefile", source="Complete the recommended configurations")

MM = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management"


@rule(
    PAGEFILE,
    id="pagefile.temp_drive",
    title="Page file location reported (the doc moves it to the temporary disk D: after the VM exists)",
    severity=Severity.INFORMATIONAL,
    rationale="The doc makes this a step for AFTER the VM is created in Azure, so an image is never "
    "failed for it: the value is reported. Putting the page file on D: before upload is not what the doc "
    "says and can misfire (a size without a temporary disk, or a data disk that takes the letter D:), so "
    "it is noted. The 2017 line wrote a REG_SZ 'D:\\pagefile' (no .sys, wrong type) — flagged as a "
    "warning when found, because Windows reads PagingFiles as REG_MULTI_SZ entries.",
    baselines=BOTH,
    remediation="After the VM is created in Azure: Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\"
    "Control\\Session Manager\\Memory Management' -Name PagingFiles -Value 'D:\\pagefile.sys' -Type "
    "MultiString -Force",
)
def check_pagefile(ctx: AuditContext) -> Outcome:
    read = read_value(ctx, MM, "PagingFiles")
    if read.value is None:
        return Outcome(
            Status.PASS,
            f"PagingFiles is not set under {read.key_path} (no page file configured)",
            evidence=(read.evidence,),
        )
    value = read.value
    if value.type != RegType.MULTI_SZ:
        return Outcome(
            Status.WARNING,
            f"PagingFiles is {value.type_name} {format_data(value.data)}; Windows expects REG_MULTI_SZ entries such as "
            "'D:\\pagefile.sys' (the 2017 doc's line wrote this form)",
            expected="REG_MULTI_SZ",
            actual=value.data,
            evidence=(read.evidence,),
        )
    entries = [e for e in value.data if isinstance(e, str)] if isinstance(value.data, list) else []
    drives = sorted({e.strip()[:2].upper() for e in entries if e.strip()})
    if drives == ["D:"]:
        note = "already on D: — fine once the VM runs in Azure; before that D: may be another disk"
    elif "?:" in drives:
        note = "system-managed on any drive; move it to D: after the VM is created in Azure"
    else:
        note = "move it to D: after the VM is created in Azure"
    return Outcome(Status.PASS, f"PagingFiles is {plain(entries)}: {note}", actual=entries, evidence=(read.evidence,))
