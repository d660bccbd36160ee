"""Time, power, storage, environment, crash dump and page file rules."""

from __future__ import annotations

import pytest

from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Status

from .guestkit import (
    BALANCED,
    CC,
    CCS,
    ENV,
    HIGH,
    LOCALDUMPS,
    POWER,
    SUB_VIDEO,
    SVC,
    VIDEOIDLE,
    Case,
    check_case,
    params,
)

P, F, W, NC = Status.PASS, Status.FAIL, Status.WARNING, Status.NOT_CHECKED
TZ = rf"{CCS}\Control\TimeZoneInformation"
MM = rf"{CCS}\Control\Session Manager\Memory Management"
SCHEMES = POWER + r"\User\PowerSchemes"
PPOLICY = r"Policies\Microsoft\Power\PowerSettings"
DVD_POLICY = r"Policies\Microsoft\Windows\RemovableStorageDevices"

CASES = [
    Case("time.utc", "compliant", P),
    Case("time.utc", "qword", P, system={TZ: {"RealTimeIsUniversal": (RegType.QWORD, 1)}}),
    Case(
        "time.utc",
        "missing",
        F,
        system={TZ: {"RealTimeIsUniversal": None}},
        says="value RealTimeIsUniversal is missing",
    ),
    Case(
        "time.utc", "string", F, system={TZ: {"RealTimeIsUniversal": "1"}}, says="REG_SZ '1', Azure expects REG_DWORD"
    ),
    Case("time.utc", "system-missing", NC, drop=("SYSTEM",)),
    Case("time.w32time_auto", "automatic", P),
    Case("time.w32time_auto", "manual", W, system={rf"{SVC}\W32Time": {"Start": 3}}),
    Case("time.w32time_auto", "disabled", F, system={rf"{SVC}\W32Time": {"Start": 4}}),
    Case("time.w32time_auto", "system-missing", NC, drop=("SYSTEM",)),
    Case("power.high_performance", "compliant", P, says="High performance"),
    Case(
        "power.high_performance", "braces-upper", P, system={SCHEMES: {"ActivePowerScheme": "{" + HIGH.upper() + "}"}}
    ),
    Case("power.high_performance", "balanced", F, system={SCHEMES: {"ActivePowerScheme": BALANCED}}, says="Balanced"),
    Case(
        "power.high_performance",
        "policy-balanced",
        F,
        software={PPOLICY: {"ActivePowerScheme": BALANCED}},
        says="Group Policy",
    ),
    Case("power.high_performance", "missing", F, system={SCHEMES: {"ActivePowerScheme": None}}),
    Case("power.high_performance", "system-missing", NC, drop=("SYSTEM",)),
    # the local scheme is High performance; Group Policy could select another one
    Case("power.high_performance", "software-missing", NC, drop=("SOFTWARE",), says="effective scheme is unknown"),
    Case("power.display_idle_never", "compliant", P, says="never"),
    Case(
        "power.display_idle_never",
        "factory-default",
        W,
        system={SCHEMES + rf"\{HIGH}\{SUB_VIDEO}\{VIDEOIDLE}": {"ACSettingIndex": None}},
        says="factory default",
    ),
    Case(
        "power.display_idle_never",
        "oem-default",
        P,
        system={
            SCHEMES + rf"\{HIGH}\{SUB_VIDEO}\{VIDEOIDLE}": {"ACSettingIndex": None},
            POWER + rf"\User\Default\PowerSchemes\{HIGH}\{SUB_VIDEO}\{VIDEOIDLE}": {"ACSettingIndex": 0},
        },
    ),
    Case(
        "power.display_idle_never",
        "policy-600",
        W,
        software={PPOLICY + "\\" + VIDEOIDLE.upper(): {"ACSettingIndex": 600}},
        says="Group Policy",
    ),
    Case(
        "power.display_idle_never",
        "nowhere",
        NC,
        system={
            SCHEMES + rf"\{HIGH}\{SUB_VIDEO}\{VIDEOIDLE}": {"ACSettingIndex": None},
            POWER + rf"\PowerSettings\{SUB_VIDEO}\{VIDEOIDLE}\DefaultPowerSchemeValues\{HIGH}": None,
        },
    ),
    Case("power.display_idle_never", "system-missing", NC, drop=("SYSTEM",)),
    # the local timeout is never; Group Policy could set another one
    Case("power.display_idle_never", "software-missing", NC, drop=("SOFTWARE",), says="the local value is 0"),
    Case("san.policy_onlineall", "compliant", P),
    Case("san.policy_onlineall", "offline-shared", F, system={rf"{SVC}\partmgr\Parameters": {"SanPolicy": 2}}),
    Case("san.policy_onlineall", "absent", W, system={rf"{SVC}\partmgr\Parameters": {"SanPolicy": None}}),
    Case("san.policy_onlineall", "system-missing", NC, drop=("SYSTEM",)),
    Case("os.dvd_rom_enabled", "compliant", P),
    Case("os.dvd_rom_enabled", "driver-disabled", F, system={rf"{SVC}\cdrom": {"Start": 4}}, says="anything but 4"),
    Case(
        "os.dvd_rom_enabled",
        "driver-disabled-specialized",
        W,
        image_type="specialized",
        system={rf"{SVC}\cdrom": {"Start": 4}},
        says="specialized",
    ),
    Case(
        "os.dvd_rom_enabled",
        "policy-deny-read",
        F,
        software={DVD_POLICY + r"\{53f56308-b6bf-11d0-94f2-00a0c91efb8b}": {"Deny_Read": 1}},
    ),
    Case("os.dvd_rom_enabled", "system-missing", NC, drop=("SYSTEM",)),
    Case("os.temp_tmp_default", "compliant", P),
    Case("os.temp_tmp_default", "moved", F, system={ENV: {"TMP": (RegType.EXPAND_SZ, r"D:\Temp")}}, says="(TMP)"),
    Case("os.temp_tmp_default", "reg-sz", F, system={ENV: {"TEMP": r"%SystemRoot%\TEMP"}}, says="REG_SZ"),
    Case(
        "os.temp_tmp_default", "case-insensitive", P, system={ENV: {"TEMP": (RegType.EXPAND_SZ, r"%systemroot%\temp")}}
    ),
    Case("os.temp_tmp_default", "system-missing", NC, drop=("SYSTEM",)),
    Case("crashdump.kernel_dump", "compliant", P),
    Case("crashdump.kernel_dump", "automatic", W, system={CC: {"CrashDumpEnabled": 7}}),
    Case("crashdump.kernel_dump", "missing", W, system={CC: {"CrashDumpEnabled": None}}),
    Case("crashdump.kernel_dump", "system-missing", NC, drop=("SYSTEM",)),
    Case("crashdump.kernel_dump_2017", "compliant", P, profile="azure-2017"),
    Case(
        "crashdump.kernel_dump_2017",
        "typo-only",
        W,
        profile="azure-2017",
        system={CC: {"CrashDumpEnabled": 0, "CrashDumpEnable": 2}},
        says="Windows ignores",
    ),
    Case("crashdump.kernel_dump_2017", "system-missing", NC, profile="azure-2017", drop=("SYSTEM",)),
    Case("crashdump.dump_file", "compliant", P),
    Case("crashdump.dump_file", "elsewhere", W, system={CC: {"DumpFile": (RegType.EXPAND_SZ, r"D:\MEMORY.DMP")}}),
    Case("crashdump.dump_file", "system-missing", NC, drop=("SYSTEM",)),
    Case("crashdump.nmi", "compliant", P),
    Case("crashdump.nmi", "missing", W, system={CC: {"NMICrashDump": None}}),
    Case("crashdump.nmi", "system-missing", NC, drop=("SYSTEM",)),
    Case("crashdump.autoreboot", "reported", P, profile="azure-2017", says="AutoReboot is REG_DWORD 0"),
    Case("crashdump.autoreboot", "one-still-passes", P, profile="azure-2017", system={CC: {"AutoReboot": 1}}),
    Case("crashdump.autoreboot", "system-missing", NC, profile="azure-2017", drop=("SYSTEM",)),
    Case("crashdump.wer_localdumps", "compliant", P),
    Case(
        "crashdump.wer_localdumps",
        "crashcount",
        P,
        software={LOCALDUMPS: {"DumpCount": None, "CrashCount": 10}},
        says="CrashCount",
    ),
    Case("crashdump.wer_localdumps", "reg-sz-folder", P, software={LOCALDUMPS: {"DumpFolder": r"c:\CrashDumps"}}),
    Case("crashdump.wer_localdumps", "mini", W, software={LOCALDUMPS: {"DumpType": 1}}),
    Case("crashdump.wer_localdumps", "absent", W, software={LOCALDUMPS: None}),
    Case("crashdump.wer_localdumps", "software-missing", NC, drop=("SOFTWARE",)),
    Case("crashdump.wersvc_manual", "manual", P),
    Case("crashdump.wersvc_manual", "disabled", W, system={rf"{SVC}\WerSvc": {"Start": 4}}),
    Case("crashdump.wersvc_manual", "system-missing", NC, drop=("SYSTEM",)),
    Case("pagefile.temp_drive", "system-managed", P, says="after the VM is created"),
    Case(
        "pagefile.temp_drive", "on-d", P, system={MM: {"PagingFiles": [r"D:\pagefile.sys 0 0"]}}, says="already on D:"
    ),
    Case(
        "pagefile.temp_drive",
        "2017-reg-sz",
        W,
        profile="azure-2017",
        system={MM: {"PagingFiles": r"D:\pagefile"}},
        says="REG_SZ",
    ),
    Case("pagefile.temp_drive", "system-missing", NC, drop=("SYSTEM",)),
]


@pytest.mark.parametrize("case", params(CASES))
def test_config(case: Case) -> None:
    check_case(case)


def test_dvd_disabled_on_an_image_found_specialized() -> None:
    from azvhdaudit.engine import audit_context
    from azvhdaudit.facts import SysprepFacts
    from azvhdaudit.rules.base import AuditContext

    from .guestkit import build_view, facts

    image_facts = facts()
    image_facts.sysprep = SysprepFacts(state="specialized")
    ctx = AuditContext(registry=build_view({"SYSTEM": {rf"{SVC}\cdrom": {"Start": 4}}}), facts=image_facts)
    [result] = audit_context(ctx, "azure", select=["os.dvd_rom_enabled"])
    assert result.status is Status.WARNING
    image_facts.sysprep = SysprepFacts(state="generalized")
    [result] = audit_context(ctx, "azure", select=["os.dvd_rom_enabled"])
    assert result.status is Status.FAIL
