"""Crash dumps: kernel dump, NMI dump, WER local dumps — what support needs when a VM hangs.

References: "Prepare a Windows VHD or VHDX to upload to Azure": current text "Verify the VM" (the
dump block moved there in 2018), 2017 text "Complete the recommended configurations". CrashControl:
``SYSTEM\\CurrentControlSet\\Control\\CrashControl`` (CrashDumpEnabled 0 none, 1 complete, 2 kernel,
3 small, 7 automatic); WER user-mode dumps: ``SOFTWARE\\Microsoft\\Windows\\Windows Error Reporting\\
LocalDumps`` (DumpFolder, DumpCount, DumpType 0 custom / 1 mini / 2 full — "Collecting User-Mode
Dumps", learn.microsoft.com).
"""

from __future__ import annotations

from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, rule
from azvhdaudit.rules.services import service_outcome
from azvhdaudit.rules.values import (
    BOTH,
    CURRENT,
    Y2017,
    Group,
    Item,
    ValueRule,
    evaluate_items,
    format_data,
    read_value,
    register_values,
)

CC = r"HKLM\SYSTEM\CurrentControlSet\Control\CrashControl"
LOCALDUMPS = r"HKLM\SOFTWARE\Microsoft\Windows\Windows Error Reporting\LocalDumps"
DUMP_TYPES = {0: "none", 1: "complete", 2: "kernel", 3: "small", 7: "automatic"}
_SET_CC = "Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\CrashControl'"

CRASH = Group(
    area="crashdump",
    source="Verify the VM (2017: Complete the recommended configurations)",
    rationale="A memory dump is what support asks for when a VM stops responding in Azure.",
)

register_values(
    (
        ValueRule(
            id="crashdump.kernel_dump",
            title="Kernel memory dump enabled (CrashDumpEnabled = 2)",
            group=CRASH,
            severity=Severity.RECOMMENDED,
            items=(Item(CC, "CrashDumpEnabled", 2, if_absent="warn"),),
            baselines=CURRENT,
            remediation=_SET_CC + " -Name CrashDumpEnabled -Type DWord -Force -Value 2",
            rationale="7 (automatic, the Windows 8+ default — seen on the Windows 10 1709 hive) also writes a "
            "kernel dump but sizes the page file itself; it is a warning as the doc asks for 2.",
        ),
        ValueRule(
            id="crashdump.dump_file",
            title="DumpFile = %SystemRoot%\\MEMORY.DMP",
            group=CRASH,
            severity=Severity.RECOMMENDED,
            items=(
                Item(
                    CC,
                    "DumpFile",
                    "%SystemRoot%\\MEMORY.DMP",
                    compare="eq_ci",
                    types=(RegType.EXPAND_SZ,),
                    if_absent="warn",
                ),
            ),
            remediation=_SET_CC + ' -Name DumpFile -Type ExpandString -Force -Value "%SystemRoot%\\MEMORY.DMP"',
        ),
        ValueRule(
            id="crashdump.nmi",
            title="An NMI triggers a crash dump (NMICrashDump = 1)",
            group=CRASH,
            severity=Severity.RECOMMENDED,
            items=(Item(CC, "NMICrashDump", 1, if_absent="warn"),),
            baselines=CURRENT,
            remediation=_SET_CC + " -Name NMICrashDump -Type DWord -Force -Value 1",
            rationale="The Azure serial console can send an NMI to a hung VM; this makes it write a dump.",
        ),
        ValueRule(
            id="crashdump.autoreboot",
            title="AutoReboot after a bugcheck reported (the 2017 text set 0)",
            group=CRASH,
            severity=Severity.INFORMATIONAL,
            items=(Item(CC, "AutoReboot", 0, compare="report", if_absent="pass"),),
            baselines=Y2017,
            remediation="Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\CrashControl' -name "
            '"AutoReboot" -Value 0 -Type DWord',
            rationale="Reported, never enforced: with AutoReboot = 0 an Azure VM stays on the blue screen until "
            "someone restarts it, and the current text dropped the line.",
        ),
    )
)


@rule(
    CRASH,
    id="crashdump.kernel_dump_2017",
    title="Kernel memory dump enabled, as the 2017 text wrote it (CrashDumpEnable = 2)",
    severity=Severity.RECOMMENDED,
    rationale="The 2017 text's line sets 'CrashDumpEnable' (no d), a value Windows never reads; the real "
    "value is CrashDumpEnabled. An image prepared by that line has CrashDumpEnable = 2 and whatever "
    "CrashDumpEnabled it had: it passes only when CrashDumpEnabled = 2, and the typo value is reported.",
    source="Complete the recommended configurations",
    baselines=Y2017,
    remediation="Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\CrashControl' -name "
    '"CrashDumpEnable" -Value "2" -Type DWord  (the value Windows reads is CrashDumpEnabled)',
)
def check_kernel_dump_2017(ctx: AuditContext) -> Outcome:
    real = read_value(ctx, CC, "CrashDumpEnabled")
    typo = read_value(ctx, CC, "CrashDumpEnable")
    evidence = (real.evidence, typo.evidence)
    typo_note = (
        f"; CrashDumpEnable (the 2017 typo) is {format_data(typo.data)}, which Windows ignores" if typo.present else ""
    )
    if isinstance(real.data, int) and real.value is not None and real.value.type == RegType.DWORD:
        kind = DUMP_TYPES.get(real.data, "unknown")
        if real.data == 2:
            return Outcome(
                Status.PASS, f"CrashDumpEnabled is 2 (kernel){typo_note}", expected=2, actual=2, evidence=evidence
            )
        return Outcome(
            Status.WARNING,
            f"CrashDumpEnabled is {real.data} ({kind}), the doc wants 2 (kernel){typo_note}",
            expected=2,
            actual=real.data,
            evidence=evidence,
        )
    return Outcome(
        Status.WARNING,
        f"CrashDumpEnabled is missing or not a REG_DWORD under {real.key_path}{typo_note}",
        expected=2,
        actual=real.data,
        evidence=evidence,
    )


@rule(
    CRASH,
    id="crashdump.wer_localdumps",
    title="WER user-mode local dumps configured (C:\\CrashDumps, 10 dumps, full dumps)",
    severity=Severity.RECOMMENDED,
    rationale="The current text writes 'CrashCount' where WER documents 'DumpCount' (the 2017 text); "
    "either one set to 10 passes. DumpFolder is accepted as REG_SZ (2017 line) or REG_EXPAND_SZ (current).",
    source="Verify the VM (2017: Complete the recommended configurations)",
    baselines=BOTH,
    remediation="$key = 'HKLM:\\SOFTWARE\\Microsoft\\Windows\\Windows Error Reporting\\LocalDumps'; "
    "New-ItemProperty -Path $key -Name DumpFolder -Type ExpandString -Force -Value 'C:\\CrashDumps'; "
    "New-ItemProperty -Path $key -Name CrashCount -Type DWord -Force -Value 10; New-ItemProperty -Path $key "
    "-Name DumpType -Type DWord -Force -Value 2",
)
def check_localdumps(ctx: AuditContext) -> Outcome:
    count_name = "DumpCount"
    dump_count = read_value(ctx, LOCALDUMPS, "DumpCount")
    if not dump_count.present and read_value(ctx, LOCALDUMPS, "CrashCount").present:
        count_name = "CrashCount"
    items = (
        Item(
            LOCALDUMPS,
            "DumpFolder",
            "C:\\CrashDumps",
            compare="eq_ci",
            types=(RegType.SZ, RegType.EXPAND_SZ),
            if_absent="warn",
        ),
        Item(LOCALDUMPS, count_name, 10, if_absent="warn"),
        Item(LOCALDUMPS, "DumpType", 2, if_absent="warn"),
    )
    return evaluate_items(ctx, items, Severity.RECOMMENDED)


@rule(
    CRASH,
    id="crashdump.wersvc_manual",
    title="Windows Error Reporting service (WerSvc) Manual",
    severity=Severity.RECOMMENDED,
    source="Verify the VM (2017: Complete the recommended configurations)",
    baselines=BOTH,
    remediation="Set-Service -Name WerSvc -StartupType Manual",
    rationale="The doc sets the Windows Error Reporting service to Manual (start on demand, the Windows default): "
    "Windows starts it when a program fails, so the failure is reported and its dump kept for troubleshooting; "
    "it does not run otherwise.",
)
def check_wersvc(ctx: AuditContext) -> Outcome:
    return service_outcome(ctx, "WerSvc", 3, Severity.RECOMMENDED)
