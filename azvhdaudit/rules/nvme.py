"""NVMe disk controller readiness: will the image boot when Azure attaches its disks over NVMe?

References (each rule cites the ones it rests on):

- "Automate SCSI-to-NVMe conversion for Linux and Windows VMs", learn.microsoft.com/azure/virtual-machines/
  converting-scsi-to-nvme-storage, ms.date 2026-05-26: a Windows VM whose ``stornvme`` is not boot-start does not
  boot after conversion (``sc.exe config stornvme start=boot``); a v6 VM's temporary disks are all RAW.
- Azure's own checker and fixer, ``Azure-NVMe-Utils/Azure-NVMe-Conversion.ps1`` and
  ``windows-manual-nvme-prepare.ps1`` in github.com/Azure/SAP-on-Azure-Scripts-and-Utilities (version.json
  2026070101, commit 56cd4f4 of 2026-07-01): in EVERY ``ControlSet00n`` (current and LastKnownGood)
  ``Services\\stornvme`` Start = 0 and no ``StartOverride`` subkey (Windows writes ``StartOverride\\0 = 3`` on a
  SCSI boot, which overrides Start with demand-start and stops the boot with INACCESSIBLE_BOOT_DEVICE),
  ``Services\\pci`` the same, the boot chain ``partmgr disk volmgr volume volsnap mountmgr`` boot-start,
  ``System32\\drivers\\stornvme.sys`` present, Generation 2, Windows Server 2019 / Windows 10 1809 or later.
  The script's later in-guest preparation also removes ``Services\\vpci\\StartOverride`` (vpci, the Hyper-V
  virtual PCI bus, carries Azure's virtual NVMe controller).
- "NVMe overview", learn.microsoft.com/azure/virtual-machines/nvme-overview, ms.date 2024-07-31: "We currently do
  not support NVMe disks on Generation 1 VMs"; "Supported OS images for remote NVMe",
  learn.microsoft.com/azure/virtual-machines/enable-nvme-interface, ms.date 2026-06-18: Windows Server 2019,
  2022, 2025, Windows 10 and 11, Generation 2 images only.

Service start values: 0 Boot, 1 System, 2 Automatic, 3 Manual, 4 Disabled. A ``StartOverride`` subkey holds
DWORD values named ``0``, ``1`` ... whose data replaces Start for a boot configuration; a value of 0 (boot) does
no harm, any other value does.

Under the target's NVMe disk controller a finding fails; under SCSI it is a warning: the image boots on SCSI
sizes but will not boot on NVMe-only sizes (v6, Azure Boost).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from azvhdaudit.errors import NotChecked
from azvhdaudit.registry.model import RegKey
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import PLATFORM_BASELINE, AuditContext, Group, rule
from azvhdaudit.rules.os import build_name, os_of
from azvhdaudit.rules.values import HiveUnavailable, open_key, plain, printable, ps_string, read_value, value_evidence

__all__ = [
    "CONVERSION_DOC",
    "CONVERSION_SCRIPT",
    "ControlSet",
    "control_sets",
    "override_values",
    "BOOT_CHAIN",
    "MIN_BUILD",
]

CONVERSION_DOC = "https://learn.microsoft.com/azure/virtual-machines/converting-scsi-to-nvme-storage"
CONVERSION_SCRIPT = (
    "https://github.com/Azure/SAP-on-Azure-Scripts-and-Utilities/blob/main/Azure-NVMe-Utils/Azure-NVMe-Conversion.ps1"
)
PREPARE_SCRIPT = (
    "https://github.com/Azure/SAP-on-Azure-Scripts-and-Utilities/blob/main/Azure-NVMe-Utils/"
    "windows-manual-nvme-prepare.ps1"
)
NVME_OVERVIEW = "https://learn.microsoft.com/azure/virtual-machines/nvme-overview"
NVME_IMAGES = "https://learn.microsoft.com/azure/virtual-machines/enable-nvme-interface"

#: required when the target's disk controller is NVMe, advice (a warning) under SCSI
NVME = Group(area="nvme", baselines=PLATFORM_BASELINE, required_for=AuditContext.nvme_required)

_DOC = (
    "Automate SCSI-to-NVMe conversion for Linux and Windows VMs (learn.microsoft.com/azure/virtual-machines/"
    "converting-scsi-to-nvme-storage, ms.date 2026-05-26)"
)
_SCRIPT = (
    "Azure-NVMe-Conversion.ps1 and windows-manual-nvme-prepare.ps1 (github.com/Azure/SAP-on-Azure-Scripts-"
    "and-Utilities, Azure-NVMe-Utils, version 2026070101, 2026-07-01)"
)
_OVERVIEW = "NVMe overview (learn.microsoft.com/azure/virtual-machines/nvme-overview, ms.date 2024-07-31)"
_IMAGES = (
    "Supported OS images for remote NVMe (learn.microsoft.com/azure/virtual-machines/enable-nvme-interface, "
    "ms.date 2026-06-18)"
)

#: the storage boot chain Azure's checker wants boot-start besides pci and stornvme
BOOT_CHAIN: tuple[str, ...] = ("partmgr", "disk", "volmgr", "volume", "volsnap", "mountmgr")
#: Windows Server 2019 / Windows 10 1809
MIN_BUILD = 17763
#: ``ControlSet001`` ... ; more than this many control sets is not a SYSTEM hive Windows wrote
_MAX_CONTROL_SETS = 32
_CONTROL_SET = re.compile(r"^ControlSet(\d{3})$", re.IGNORECASE)
#: the mount point the offline fix lines load the image's SYSTEM hive at
OFFLINE_MOUNT = r"HKLM\IMG_SYSTEM"
_OFFLINE_LOAD = rf"reg load {OFFLINE_MOUNT} <Windows volume>\Windows\System32\config\SYSTEM"

_SERVICES_RATIONALE = (
    "On an NVMe controller Windows finds its boot disk only through stornvme (the NVMe storage driver) on the "
    "PCI bus; a driver that does not start at boot stops Windows with 0x7B INACCESSIBLE_BOOT_DEVICE. Windows "
    "writes Services\\<driver>\\StartOverride\\0 = 3 on a SCSI boot, which overrides Start = 0 with demand-start, "
    "and it may boot from any control set (LastKnownGood after a failed first boot), so every ControlSet00n must "
    "be right, not only the current one. Azure's conversion script checks exactly this, but only inside a "
    "running VM."
)


@dataclass(frozen=True)
class ControlSet:
    """One ``ControlSet00n`` of the SYSTEM hive and what ``SYSTEM\\Select`` makes of it."""

    name: str
    roles: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name} ({', '.join(self.roles)})" if self.roles else self.name

    def path(self, *parts: str) -> str:
        return "\\".join(("HKLM\\SYSTEM", self.name, *parts))


def control_sets(ctx: AuditContext) -> list[ControlSet]:
    """Every ``ControlSet00n`` the SYSTEM hive holds, with its roles (current, default, LastKnownGood, failed).

    Raises :class:`HiveUnavailable` when SYSTEM cannot be read or holds no control set.
    """
    system = ctx.registry.hive("SYSTEM")
    if system is None:
        raise HiveUnavailable("SYSTEM", ctx.registry.why_unavailable("SYSTEM"))

    def make() -> list[ControlSet]:
        select = system.key("Select")
        roles: dict[int, list[str]] = {}
        for value_name, role in (
            ("Current", "current"),
            ("Default", "default"),
            ("LastKnownGood", "LastKnownGood"),
            ("Failed", "failed"),
        ):
            value = select.value(value_name) if select is not None else None
            if value is not None and isinstance(value.data, int) and value.data > 0:
                roles.setdefault(value.data, []).append(role)
        found = []
        for name in system.root().subkey_names():
            match = _CONTROL_SET.match(name)
            if match:
                found.append(ControlSet(name, tuple(roles.get(int(match.group(1)), ()))))
            if len(found) > _MAX_CONTROL_SETS:
                break
        return sorted(found, key=lambda c: c.name.lower())

    sets: list[ControlSet] = ctx.cached("nvme.control_sets", make)
    if not sets:
        raise HiveUnavailable("SYSTEM", "the SYSTEM hive holds no ControlSet00n key")
    if len(sets) > _MAX_CONTROL_SETS:
        raise HiveUnavailable(
            "SYSTEM",
            f"the SYSTEM hive holds more than {_MAX_CONTROL_SETS} ControlSet00n keys; not a hive Windows wrote",
        )
    return sets


def override_values(key: RegKey | None) -> dict[str, Any]:
    """The values of a ``StartOverride`` subkey (name -> data); empty when the subkey is absent or empty."""
    if key is None:
        return {}
    return {v.name: v.data for v in key.values()}


def _bad_overrides(values: dict[str, Any]) -> dict[str, Any]:
    """The override values that keep the driver from starting at boot: any but a DWORD 0."""
    return {name: data for name, data in values.items() if not (isinstance(data, int) and data == 0)}


def _target_words(ctx: AuditContext) -> str:
    if ctx.nvme_required():
        return "the target's disk controller is NVMe"
    return "the target's disk controller is SCSI: the image boots there, but will not boot on NVMe-only sizes"


def _remediation(inside: list[str], offline: list[str], absent: list[str]) -> str:
    """The finding's fix, one step a line: the statements to run inside the VM (what ``azvhdaudit fix`` scripts),
    the same change made offline on the image's SYSTEM hive (one line of its own, which ``azvhdaudit fix`` leaves
    to do by hand: it is not run inside the VM), and for services that are not registered at all (no key to set)
    the repair of the inbox drivers."""
    lines = list(dict.fromkeys(inside))
    if inside:
        # said so it reads right both after the lines (the text report) and before them (the fix script's notes)
        cmdlets = " and ".join(sorted({line.split()[0] for line in lines}))
        lines.append(
            f"Inside the VM (PowerShell, as administrator): the {cmdlets} lines; then shut down and capture the "
            "image without booting it on SCSI again (each SCSI boot writes StartOverride back)."
        )
        lines.append(
            f"Or offline, on the image's hive: {_OFFLINE_LOAD}; {'; '.join(dict.fromkeys(offline))}; "
            f"reg unload {OFFLINE_MOUNT}"
        )
    if absent:
        names = sorted(set(absent))
        # the remark (after two spaces) is a note to ``azvhdaudit fix``, the statement before it is scripted
        lines += [
            "DISM /Online /Cleanup-Image /RestoreHealth  (repair the inbox drivers inside the VM; the driver "
            f"service{'s' if len(names) > 1 else ''} {', '.join(names)} {'are' if len(names) > 1 else 'is'} not "
            "registered)",
            "sfc /scannow",
        ]
    return "\n".join(lines)


def _ps_path(cs: ControlSet, *parts: str) -> str:
    return "HKLM:\\SYSTEM\\" + "\\".join((cs.name, *parts))


def _offline_path(cs: ControlSet, *parts: str) -> str:
    return "\\".join((OFFLINE_MOUNT, cs.name, *parts))


def _fix_start(cs: ControlSet, service: str) -> tuple[str, str]:
    # the control set's name is a key name read from the hive: quoted (or a placeholder), never bare text
    return (
        f"Set-ItemProperty -Path {ps_string(_ps_path(cs, 'Services', service))} -Name Start -Value 0 -Type DWord",
        f'reg add "{printable(_offline_path(cs, "Services", service))}" /v Start /t REG_DWORD /d 0 /f',
    )


def _fix_override(cs: ControlSet, service: str) -> tuple[str, str]:
    # -ErrorAction SilentlyContinue: the line may run again after the key is gone
    return (
        f"Remove-Item -Path {ps_string(_ps_path(cs, 'Services', service, 'StartOverride'))} -Recurse -Force "
        "-ErrorAction SilentlyContinue",
        f'reg delete "{printable(_offline_path(cs, "Services", service, "StartOverride"))}" /f',
    )


def _evidence(ctx: AuditContext, cs: ControlSet, path: str, name: str | None, value: Any, note: str = "") -> Evidence:
    return replace(value_evidence(ctx, path, name, value, "registry", note=note), control_set=cs.name)


def _service_outcome(ctx: AuditContext, service: str, need_start: bool) -> Outcome:
    """Every control set: ``service`` Start = 0 (when ``need_start``) and no StartOverride holding non-zero."""
    problems: list[str] = []
    inside: list[str] = []
    offline: list[str] = []
    absent: list[str] = []
    evidence: list[Evidence] = []
    found: dict[str, Any] = {}
    sets = control_sets(ctx)
    for cs in sets:
        path = cs.path("Services", service)
        key = open_key(ctx, path)
        if key is None:
            evidence.append(_evidence(ctx, cs, path, "Start", None, note="service key absent"))
            problems.append(f"{cs.label}: Services\\{service} does not exist")
            found[cs.name] = "service absent"
            absent.append(service)
            continue
        start = key.value("Start")
        evidence.append(_evidence(ctx, cs, path, "Start", start))
        start_data = start.data if start is not None else None
        override_key = key.subkey("StartOverride")
        overrides = override_values(override_key)
        override_path = f"{path}\\StartOverride"
        for value in override_key.values() if override_key is not None else ():
            evidence.append(_evidence(ctx, cs, override_path, value.name, value))
        if override_key is not None and not overrides:
            evidence.append(_evidence(ctx, cs, override_path, None, None, note="StartOverride subkey with no values"))
        found[cs.name] = {"Start": start_data, "StartOverride": overrides or None}
        if need_start and start_data != 0:
            shown = "missing" if start is None else f"{start.type_name} {plain(start_data)}"
            problems.append(f"{cs.label}: Services\\{service}\\Start is {shown}, not 0 (boot)")
            ps, reg = _fix_start(cs, service)
            inside.append(ps)
            offline.append(reg)
        bad = _bad_overrides(overrides)
        if bad:
            shown = ", ".join(f"{n} = {plain(d)}" for n, d in sorted(bad.items()))
            problems.append(
                f"{cs.label}: Services\\{service}\\StartOverride holds {shown}, which overrides the boot start"
            )
            ps, reg = _fix_override(cs, service)
            inside.append(ps)
            offline.append(reg)
    expected = (
        "Start = 0 and no StartOverride holding a non-zero value"
        if need_start
        else "no StartOverride holding a non-zero value"
    )
    expected += f" in every control set ({', '.join(c.name for c in sets)})"
    if problems:
        return Outcome(
            Status.FAIL,
            f"{'; '.join(problems)} ({_target_words(ctx)})",
            expected=expected,
            actual=found,
            evidence=tuple(evidence),
            remediation=_remediation(inside, offline, absent),
        )
    what = "Start = 0 and no blocking StartOverride" if need_start else "no blocking StartOverride"
    return Outcome(
        Status.PASS,
        f"{service}: {what} in {', '.join(c.label for c in sets)}",
        expected=expected,
        actual=found,
        evidence=tuple(evidence),
    )


_OVERRIDE_FIX = (
    "For each control set named in the finding, inside the VM: Remove-Item -Path 'HKLM:\\SYSTEM\\ControlSet00n\\"
    "Services\\<driver>\\StartOverride' -Recurse -Force and Set-ItemProperty ... -Name Start -Value 0 -Type DWord "
    "(or sc.exe config <driver> start=boot for the current set), then shut down without another SCSI boot; "
    'offline: reg delete "HKLM\\<loaded hive>\\ControlSet00n\\Services\\<driver>\\StartOverride" /f. The '
    "finding's remediation gives the exact lines."
)


@rule(
    NVME,
    id="nvme.stornvme_boot_start",
    title="stornvme (the NVMe storage driver) starts at boot in every control set, with no StartOverride",
    severity=Severity.REQUIRED,
    rationale=_SERVICES_RATIONALE,
    source=f'{_DOC}: "Windows VM doesn\'t boot after conversion"; {_SCRIPT}: stornvme Start and StartOverride '
    "checks over all ControlSets",
    remediation=_OVERRIDE_FIX,
    references=(CONVERSION_DOC, CONVERSION_SCRIPT, PREPARE_SCRIPT),
)
def check_stornvme(ctx: AuditContext) -> Outcome:
    return _service_outcome(ctx, "stornvme", need_start=True)


@rule(
    NVME,
    id="nvme.pci_boot_start",
    title="pci (the PCI bus driver) starts at boot in every control set, with no StartOverride",
    severity=Severity.REQUIRED,
    rationale=_SERVICES_RATIONALE + " The NVMe controller sits on the PCI bus: Azure's checker requires pci "
    "Start = 0 and fails a pci StartOverride in every control set.",
    source=f"{_SCRIPT}: pci Start and pci StartOverride checks over all ControlSets",
    remediation=_OVERRIDE_FIX,
    references=(CONVERSION_SCRIPT, PREPARE_SCRIPT),
)
def check_pci(ctx: AuditContext) -> Outcome:
    return _service_outcome(ctx, "pci", need_start=True)


@rule(
    NVME,
    id="nvme.vpci_no_override",
    title="vpci (the Hyper-V virtual PCI bus) has no StartOverride in any control set",
    severity=Severity.REQUIRED,
    rationale=_SERVICES_RATIONALE + " vpci is the Hyper-V virtual PCI bus that exposes Azure's virtual NVMe "
    "controller; on a SCSI-only VM Windows may write vpci\\StartOverride = 3 because no virtual PCI device is "
    "present, and the controller is then not enumerated at boot.",
    source=f"{_SCRIPT}: the in-guest preparation removes vpci\\StartOverride in every ControlSet",
    remediation=_OVERRIDE_FIX,
    references=(PREPARE_SCRIPT, CONVERSION_SCRIPT),
)
def check_vpci(ctx: AuditContext) -> Outcome:
    return _service_outcome(ctx, "vpci", need_start=False)


@rule(
    NVME,
    id="nvme.storage_boot_chain",
    title="The storage boot chain (partmgr, disk, volmgr, volume, volsnap, mountmgr) starts at boot in every "
    "control set",
    severity=Severity.REQUIRED,
    rationale="Below stornvme, the partition manager, disk class driver, volume manager, volume, snapshot and "
    "mount manager drivers must load at boot to reach the Windows volume; Azure's checker lists them with pci and "
    "stornvme as the boot drivers an NVMe boot needs.",
    source=f"{_SCRIPT}: boot driver check (pci, stornvme, partmgr, disk, volmgr, volume, volsnap, mountmgr)",
    remediation="For each driver and control set named in the finding: Set-ItemProperty -Path 'HKLM:\\SYSTEM\\"
    "ControlSet00n\\Services\\<driver>' -Name Start -Value 0 -Type DWord (inside the VM), or reg add "
    '"HKLM\\<loaded hive>\\ControlSet00n\\Services\\<driver>" /v Start /t REG_DWORD /d 0 /f (offline).',
    references=(CONVERSION_SCRIPT,),
)
def check_boot_chain(ctx: AuditContext) -> Outcome:
    sets = control_sets(ctx)
    problems: list[str] = []
    inside: list[str] = []
    offline: list[str] = []
    absent: list[str] = []
    evidence: list[Evidence] = []
    found: dict[str, dict[str, Any]] = {}
    for cs in sets:
        found[cs.name] = {}
        for driver in BOOT_CHAIN:
            path = cs.path("Services", driver)
            key = open_key(ctx, path)
            start = key.value("Start") if key is not None else None
            evidence.append(_evidence(ctx, cs, path, "Start", start, note="" if key is not None else "key absent"))
            data = start.data if start is not None else None
            found[cs.name][driver] = data
            if key is None:
                problems.append(f"{cs.label} {driver} not registered (no Services\\{driver} key)")
                absent.append(driver)
            elif data != 0:
                problems.append(f"{cs.label} {driver} Start {'missing' if start is None else repr(data)}")
                ps, reg = _fix_start(cs, driver)
                inside.append(ps)
                offline.append(reg)
    expected = {"Start": 0, "drivers": list(BOOT_CHAIN), "control_sets": [c.name for c in sets]}
    if problems:
        return Outcome(
            Status.FAIL,
            f"not boot-start: {'; '.join(problems)} ({_target_words(ctx)})",
            expected=expected,
            actual=found,
            evidence=tuple(evidence),
            remediation=_remediation(inside, offline, absent),
        )
    return Outcome(
        Status.PASS,
        f"{', '.join(BOOT_CHAIN)} start at boot (0) in {', '.join(c.label for c in sets)}",
        expected=expected,
        actual=found,
        evidence=tuple(evidence),
    )


@rule(
    NVME,
    id="nvme.stornvme_driver_file",
    title="The NVMe storage driver file System32\\drivers\\stornvme.sys is present",
    severity=Severity.REQUIRED,
    rationale="Start = 0 loads nothing without the driver file: Azure's checker blocks the conversion when "
    "stornvme.sys is missing.",
    source=f"{_SCRIPT}: stornvme.sys driver binary check",
    remediation="Restore the inbox driver (DISM /Online /Cleanup-Image /RestoreHealth, or sfc /scannow inside the "
    "VM), or use a Windows release that carries stornvme.sys (Windows Server 2019 / Windows 10 1809 or later).",
    references=(CONVERSION_SCRIPT, PREPARE_SCRIPT),
)
def check_driver_file(ctx: AuditContext) -> Outcome:
    path = "Windows\\System32\\drivers\\stornvme.sys"
    if ctx.files is None:
        why = "the Windows volume's files cannot be read"
        raise NotChecked(why)
    present = ctx.files.exists(path)
    version = ctx.files.file_version(path) if present else None
    shown = ".".join(map(str, version)) if version else None
    ev = Evidence(
        source="file",
        key=path,
        present=present,
        actual=shown if present else None,
        value_name="FileVersion" if present else None,
    )
    if present:
        return Outcome(
            Status.PASS,
            f"{path} is present" + (f", version {shown}" if shown else ""),
            expected="present",
            actual=shown or "present",
            evidence=(ev,),
        )
    return Outcome(
        Status.FAIL,
        f"{path} is not on the Windows volume: no driver can reach an NVMe boot disk ({_target_words(ctx)})",
        expected="present",
        actual="absent",
        evidence=(ev,),
    )


@rule(
    NVME,
    id="nvme.generation_and_build",
    title="Generation 2 and Windows build 17763 (Windows Server 2019 / Windows 10 1809) or later for NVMe",
    severity=Severity.REQUIRED,
    rationale="Azure attaches NVMe disks only to Generation 2 VMs, and tags only Windows Server 2019 and later, "
    "Windows 10 and Windows 11 images as NVMe-capable; Azure's conversion script requires Windows Server 2019 or "
    "Windows 10 1809 (build 17763) or later.",
    source=f'{_OVERVIEW}: "We currently do not support NVMe disks on Generation 1 VMs"; {_IMAGES}; {_SCRIPT}: '
    "Windows version and Generation checks",
    remediation="Generation 1: convert the disk to GPT (MBR2GPT.exe /convert /allowFullOS inside the VM) and "
    "create the image with HyperVGeneration V2. Older Windows: upgrade to Windows Server 2019 / Windows 10 1809 or "
    "later, or deploy on sizes with a SCSI controller.",
    references=(NVME_OVERVIEW, NVME_IMAGES, CONVERSION_SCRIPT),
)
def check_generation_build(ctx: AuditContext) -> Outcome:
    generation = ctx.facts.generation
    osf = os_of(ctx)
    build = osf.build if osf is not None else None
    evidence = (
        Evidence(source="facts", key="generation", actual=generation, present=generation is not None),
        Evidence(source="facts", key="os.build", actual=build, present=build is not None),
    )
    actual = {"generation": generation, "build": build}
    expected = {"generation": 2, "build": f">= {MIN_BUILD}"}
    problems = []
    if generation is not None and generation != 2:
        problems.append(f"Generation {generation}: Azure attaches NVMe disks to Generation 2 VMs only")
    if build is not None and build < MIN_BUILD:
        problems.append(f"{build_name(build)} is older than {MIN_BUILD} (Windows Server 2019 / Windows 10 1809)")
    if problems:
        return Outcome(
            Status.FAIL,
            f"{'; '.join(problems)} ({_target_words(ctx)})",
            expected=expected,
            actual=actual,
            evidence=evidence,
        )
    missing = [name for name, v in (("the generation", generation), ("the OS build", build)) if v is None]
    if missing:
        why = f"{' and '.join(missing)} could not be established"
        raise NotChecked(why, expected=expected, actual=actual, evidence=evidence)
    return Outcome(
        Status.PASS, f"Generation 2, {build_name(build)}", expected=expected, actual=actual, evidence=evidence
    )


_MM = r"HKLM\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management"


@rule(
    NVME,
    id="nvme.pagefile_not_on_temp_disk",
    title="No page file on D: (an NVMe temporary disk comes up raw, unformatted)",
    severity=Severity.ADVISORY,
    rationale="On v6 and other NVMe sizes the local temporary disks come up RAW on every start (up to four of "
    "them) and get no drive letter until something formats them; a page file set on D: then has no volume. "
    "Azure's conversion script tells Windows users to adjust the page file when the temporary disk changes.",
    source=f'{_DOC}: "When running a v6 VM, you can have up to four temp disks. All of them are RAW"; {_SCRIPT}: '
    '"adjust your swap space / pagefile configuration"',
    remediation="Before capturing, take the page file off the D: drive inside the VM (set PagingFiles under "
    "'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Memory Management' to the entries on other "
    "drives, or to '?:\\pagefile.sys' (system managed: Windows picks the drive) when none is left; the finding's "
    "fix gives the exact line). Or format the temporary disk at each start, before Windows uses it.",
    references=(CONVERSION_DOC, CONVERSION_SCRIPT),
)
def check_pagefile(ctx: AuditContext) -> Outcome:
    read = read_value(ctx, _MM, "PagingFiles")
    data = read.data
    entries = (
        [e for e in data if isinstance(e, str)] if isinstance(data, list) else ([data] if isinstance(data, str) else [])
    )
    on_d = [e for e in entries if e.strip().upper().startswith("D:")]
    if not on_d:
        shown = ", ".join(entries) if entries else "no PagingFiles value"
        return Outcome(
            Status.PASS,
            f"no page file on D: ({shown} under {read.key_path})",
            expected="not on D:",
            actual=entries or None,
            evidence=(read.evidence,),
        )
    return Outcome(
        Status.WARNING,
        f"PagingFiles puts a page file on D: ({', '.join(on_d)}); on sizes with an NVMe temporary "
        f"disk D: comes up raw and unformatted (target disk controller {ctx.disk_controller()})",
        expected="not on D:",
        actual=entries,
        evidence=(read.evidence,),
        remediation=_pagefile_fix([e for e in entries if e not in on_d]),
    )


def _pagefile_fix(kept: list[str]) -> str:
    """The PagingFiles value without its entries on D: (the others as they are; system managed when none is
    left), as the line that sets it inside the VM, and the alternative."""
    if kept:
        value = ps_string(kept[0]) if len(kept) == 1 else "@(" + ", ".join(ps_string(e) for e in kept) + ")"
        why = "the entries on other drives kept as they are" if len(kept) > 1 else "the entry on another drive kept"
    else:
        value, why = ps_string("?:\\pagefile.sys"), "system managed: Windows picks the drive"
    path = "HKLM:" + _MM[len("HKLM") :]  # the running system's current control set, which the rule read
    return (
        f"Set-ItemProperty -Path {ps_string(path)} -Name PagingFiles -Value {value} -Type MultiString  "
        f"(inside the VM, before capturing: {why})\n"
        "Or format the temporary disk at each start, before Windows uses it."
    )
