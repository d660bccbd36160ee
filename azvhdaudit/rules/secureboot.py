"""Secure Boot readiness: what a Trusted Launch or Confidential VM needs of the image before it boots.

References (each rule cites its own in ``source`` and ``references``):

- "Trusted Launch for Azure virtual machines" (learn.microsoft.com/azure/virtual-machines/trusted-launch,
  ms.date 2025-04-21): Trusted Launch secures Generation 2 VMs and "is the default state for newly created Azure
  Gen2 VM and scale sets"; supported Windows: Windows 10 and 11 Pro, Enterprise, Enterprise multi-session,
  Windows Server 2016, 2019, 2022, 2022 Azure Edition, 2025, 2025 Azure Edition ("variations of this OS are
  supported"); with Secure Boot on, "all OS boot components (boot loader, kernel, kernel drivers) require trusted
  publishers signing" and an image that fails that check does not boot.
- "How to Test Preproduction Drivers with Secure Boot Enabled" (learn.microsoft.com/windows-hardware/drivers/
  install/preproduction-driver-signing-and-install, ms.date 2024-07-10): "TESTSIGNING requires disabling Secure
  Boot".
- KB5025885, KB5062713, KB5068202 and KB5085395 on the 2023 Secure Boot certificates: see
  :mod:`azvhdaudit.secureboot_facts`.

A rule is required (fail) when the target boots with Secure Boot (:meth:`AuditContext.secure_boot_required`:
Trusted Launch or Confidential VM, the default for Generation 2) and advice (warning) otherwise. Missing or
unreadable evidence is "not checked", never a pass.
"""

from __future__ import annotations

import re
from typing import Any

from azvhdaudit.bcd import WELL_KNOWN, BCDObject, BCDStore, Effective
from azvhdaudit.errors import AuditError, BCDError, NotApplicable, NotChecked
from azvhdaudit.facts import HOME_EDITIONS, PRO_ENTERPRISE_EDITIONS, WINDOWS_10_BUILD
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import PLATFORM_BASELINE, AuditContext, Group, rule
from azvhdaudit.rules.bcd import decoded_store
from azvhdaudit.rules.values import cmd_quoted, placeholder
from azvhdaudit.secureboot_facts import (
    BOOTMGR_PATH,
    PCA2011,
    SECUREBOOT_KEY,
    THIRD_PARTY_CAS,
    UEFICA2023,
    BootManager,
    ServicingState,
    boot_files,
    boot_manager,
    boot_manager_signers,
    esp_partition,
    servicing_state,
)

#: required (an unmet requirement fails) when the target boots with Secure Boot, advice (a warning) otherwise
SECUREBOOT = Group(area="secureboot", baselines=PLATFORM_BASELINE, required_for=AuditContext.secure_boot_required)

TL_DOC = "https://learn.microsoft.com/azure/virtual-machines/trusted-launch"
TL_SOURCE = "Trusted Launch for Azure virtual machines (learn.microsoft.com, ms.date 2025-04-21)"
GEN1_UPGRADE_DOC = "https://learn.microsoft.com/azure/virtual-machines/trusted-launch-existing-vm-gen-1"
TESTSIGN_DOC = "https://learn.microsoft.com/windows-hardware/drivers/install/preproduction-driver-signing-and-install"
KB5025885_URL = "https://support.microsoft.com/help/5025885"
KB5062713_URL = "https://support.microsoft.com/help/5062713"
KB5068202_URL = "https://support.microsoft.com/help/5068202"
KB5085395_URL = "https://support.microsoft.com/help/5085395"
KB5085046_URL = "https://support.microsoft.com/help/5085046"

#: the lines that start the rollover inside Windows: every step asked for (0x5944, KB5068202), then the servicing
#: task run at once (KB5025885's steps) instead of at the next startup or 12-hour run
ROLLOVER_LINES = (
    f'reg add "{SECUREBOOT_KEY}" /v AvailableUpdates /t REG_DWORD /d 0x5944 /f',
    'Start-ScheduledTask -TaskName "\\Microsoft\\Windows\\PI\\Secure-Boot-Update"  (then restart; inside the VM, '
    "running with Secure Boot; KB5068202, KB5025885)",
)
#: bcdboot copies the signed boot manager of C:\Windows\Boot\EFI to the EFI system partition
BCDBOOT_LINES = (
    "mountvol S: /s",
    "bcdboot C:\\Windows /s S: /f UEFI  (inside the VM; S: is the EFI system partition mounted by the line before)",
)
MBR2GPT_LINES = (
    "MBR2GPT.exe /validate /allowFullOS",
    "MBR2GPT.exe /convert /allowFullOS  (inside the VM; then create the Azure image with HyperVGeneration V2)",
)


def _script(*groups: tuple[str, ...] | list[str]) -> str:
    """The fix as a result's remediation: one statement a line."""
    return "\n".join(line for group in groups for line in group)


ROLLOVER_FIX = _script(ROLLOVER_LINES)


def _facts_evidence(key: str, actual: Any, note: str = "") -> Evidence:
    return Evidence(source="facts", key=key, actual=actual, present=actual is not None, note=note)


def _file_evidence(esp_index: int, bm: BootManager) -> Evidence:
    return Evidence(
        source="file",
        key=f"partition {esp_index} (EFI system): \\{bm.path}",
        actual=bm.to_dict(),
        present=bm.present,
        note=bm.error or "",
    )


def _target_words(ctx: AuditContext) -> str:
    kind = ctx.security_type()
    if ctx.secure_boot_required():
        return f"the target {kind} boots with Secure Boot"
    return f"advice: the target {kind} boots without Secure Boot; under TrustedLaunch or ConfidentialVM this fails"


# --- Generation 2 and the ESP ----------------------------------------------------------------------------


@rule(
    SECUREBOOT,
    id="secureboot.generation2",
    title="Generation 2: GPT with an EFI system partition holding \\EFI\\Microsoft\\Boot\\bootmgfw.efi",
    severity=Severity.REQUIRED,
    rationale="Trusted Launch and Confidential VMs are Generation 2 VMs: UEFI firmware starts Windows Boot "
    "Manager from \\EFI\\Microsoft\\Boot\\bootmgfw.efi on the GPT disk's EFI system partition. An MBR "
    "disk boots only as Generation 1, which has no Secure Boot. Required under Trusted Launch and "
    "Confidential VM (the default for Generation 2), advice otherwise.",
    source=f'{TL_SOURCE}: "Azure offers Trusted Launch as a seamless way to improve the security of Generation 2 '
    'virtual machines"; "Trusted Launch is the default state for newly created Azure Gen2 VM"',
    remediation=_script(MBR2GPT_LINES, BCDBOOT_LINES),
    references=(TL_DOC, GEN1_UPGRADE_DOC),
)
def check_generation2(ctx: AuditContext) -> Outcome:
    facts = ctx.facts
    style = facts.partition_style
    esp = esp_partition(facts)
    layout = {"partition_style": style, "generation": facts.generation, "esp": esp.index if esp else None}
    ev: tuple[Evidence, ...] = (_facts_evidence("partition table", layout),)
    expected = "GPT, an EFI system partition holding \\EFI\\Microsoft\\Boot\\bootmgfw.efi"
    if style is None:
        raise NotChecked(
            "no partition style in the image facts",
            "not checked: the partition table was not established",
            expected=expected,
            evidence=ev,
        )
    if style == "mbr":
        return Outcome(
            Status.FAIL,
            "MBR partition table: a Generation 1 image, which boots without "
            f"Secure Boot; Trusted Launch and Confidential VMs need Generation 2 ({_target_words(ctx)})",
            expected,
            "MBR (Generation 1)",
            ev,
            remediation=_script(MBR2GPT_LINES),
        )
    if style != "gpt":
        return Outcome(
            Status.FAIL,
            f"the disk has no partition table ({style}): it boots as neither generation",
            expected,
            style,
            ev,
        )
    if esp is None:
        return Outcome(
            Status.FAIL,
            f"GPT disk without an EFI system partition: UEFI firmware finds no boot manager ({_target_words(ctx)})",
            expected,
            "GPT without ESP",
            ev,
            remediation=_script(
                ["Create a FAT32 EFI system partition (diskpart: create partition efi)"], BCDBOOT_LINES
            ),
        )
    files, why = boot_files(ctx)
    if files is None:
        raise NotChecked(why, expected=expected, evidence=ev)
    try:
        bm = ctx.cached("secureboot.bootmgr", lambda: boot_manager(files))
    except AuditError as err:
        raise NotChecked(
            str(err), f"not checked: the EFI system partition cannot be read: {err}", expected=expected, evidence=ev
        ) from err
    ev += (_file_evidence(esp.index, bm),)
    where = f"the EFI system partition (partition {esp.index})"
    if not bm.present:
        return Outcome(
            Status.FAIL,
            f"{where} holds no \\{BOOTMGR_PATH}: UEFI firmware finds no Windows Boot Manager ({_target_words(ctx)})",
            expected,
            "no bootmgfw.efi",
            ev,
            remediation=_script(BCDBOOT_LINES),
        )
    if bm.error or bm.subsystem is None:
        what = bm.error or "a PE image that is not an EFI application"
        return Outcome(
            Status.FAIL,
            f"\\{BOOTMGR_PATH} on {where} is {what}",
            expected,
            what,
            ev,
            remediation=_script(BCDBOOT_LINES),
        )
    return Outcome(
        Status.PASS,
        f"GPT disk; {where} holds \\{BOOTMGR_PATH} ({bm.machine} {bm.subsystem}, "
        f"{bm.size:,} bytes): a Generation 2 image",
        expected,
        "GPT, ESP, bootmgfw.efi",
        ev,
    )


# --- the OS ----------------------------------------------------------------------------------------------

#: trusted-launch.md names the Pro, Enterprise and Enterprise multi-session editions (facts.PRO_ENTERPRISE_EDITIONS);
#: the Home editions are not in its list
SERVER_2016_BUILD = 14393


def _cvm_note(ctx: AuditContext) -> str:
    if ctx.security_type() != "ConfidentialVM":
        return ""
    return (
        "; the target ConfidentialVM supports fewer Windows versions than Trusted Launch (see Azure's "
        "Confidential VM documentation), which this rule does not judge"
    )


@rule(
    SECUREBOOT,
    id="secureboot.os_supported",
    title="An OS that Trusted Launch supports (Windows 10/11 Pro, Enterprise, multi-session; Server 2016+)",
    severity=Severity.REQUIRED,
    rationale="Trusted Launch lists the Windows versions it supports: Windows 10 and 11 Pro, Enterprise and "
    "Enterprise multi-session, Windows Server 2016, 2019, 2022 (and Azure Edition), 2025 (and Azure "
    "Edition), and says variations of these are supported. Older Windows (Server 2012 R2, Windows 8.1 "
    "and before), Home editions and 32-bit Windows are not. Judged from the build (CurrentBuild), the "
    "edition (EditionID), the installation type and the architecture.",
    source=f'{TL_SOURCE}, "Operating systems supported"',
    remediation="Use Windows Server 2016 or later, or Windows 10/11 Pro, Enterprise or Enterprise multi-session "
    "(64-bit); or deploy with --security-type Standard",
    references=(TL_DOC,),
)
def check_os_supported(ctx: AuditContext) -> Outcome:
    os_facts = ctx.facts.os
    expected = "Windows 10/11 Pro, Enterprise or Enterprise multi-session, or Windows Server 2016 or later (64-bit)"
    if os_facts is None:
        why = ctx.registry.why_unavailable("SOFTWARE") or "the OS facts were not established"
        raise NotChecked(why, expected=expected)
    if not ctx.registry.has_hive("SOFTWARE"):
        why = ctx.registry.why_unavailable("SOFTWARE")
        raise NotChecked(why, expected=expected)
    shown = os_facts.to_dict()
    ev = (
        _facts_evidence(
            "os", shown, note="SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion, SYSTEM\\...\\ProductOptions ProductType"
        ),
    )
    name = os_facts.name or "Windows"
    build = os_facts.build
    if build is None:
        raise NotChecked(
            "no CurrentBuild",
            "not checked: the SOFTWARE hive gives no build number (CurrentBuild)",
            expected=expected,
            evidence=ev,
        )
    found = f"{name} (build {build}, EditionID {os_facts.edition_id or 'not set'})"
    if os_facts.architecture and os_facts.architecture.upper() not in ("AMD64", "ARM64"):
        return Outcome(
            Status.FAIL,
            f"{found} is {os_facts.architecture}: Trusted Launch VMs are "
            f"64-bit Generation 2 VMs ({_target_words(ctx)})",
            expected,
            found,
            ev,
        )
    server = os_facts.is_server
    if server is None:
        raise NotChecked(
            "no InstallationType / ProductType",
            f"not checked: {found}: neither InstallationType nor ProductType says whether it is a server",
            expected=expected,
            actual=found,
            evidence=ev,
        )
    if server:
        if build >= SERVER_2016_BUILD:
            return Outcome(
                Status.PASS,
                f"{found}: Windows Server 2016 or later, which Trusted Launch supports{_cvm_note(ctx)}",
                expected,
                found,
                ev,
            )
        return Outcome(
            Status.FAIL,
            f"{found}: older than Windows Server 2016 (build "
            f"{SERVER_2016_BUILD}), which Trusted Launch does not support ({_target_words(ctx)})",
            expected,
            found,
            ev,
        )
    if build < WINDOWS_10_BUILD:
        return Outcome(
            Status.FAIL,
            f"{found}: older than Windows 10, which Trusted Launch does not support ({_target_words(ctx)})",
            expected,
            found,
            ev,
        )
    edition = (os_facts.edition_id or "").strip()
    if not edition:
        raise NotChecked(
            "no EditionID",
            f"not checked: {found}: no EditionID, so the edition is not known",
            expected=expected,
            actual=found,
            evidence=ev,
        )
    key = edition.lower()
    if key in PRO_ENTERPRISE_EDITIONS:
        return Outcome(
            Status.PASS,
            f"{found}: {PRO_ENTERPRISE_EDITIONS[key]}, an edition Trusted Launch supports{_cvm_note(ctx)}",
            expected,
            found,
            ev,
        )
    if key in HOME_EDITIONS:
        return Outcome(
            Status.FAIL,
            f"{found}: a Home edition, which Trusted Launch does not list ({_target_words(ctx)})",
            expected,
            found,
            ev,
        )
    return Outcome(
        Status.WARNING,
        f"{found}: an edition the Trusted Launch list does not name (it names Pro, "
        "Enterprise and Enterprise multi-session, and says variations are supported)",
        expected,
        found,
        ev,
    )


# --- BCD -------------------------------------------------------------------------------------------------

TESTSIGNING = 0x16000049
NOINTEGRITYCHECKS = 0x16000048
LOADOPTIONS = 0x12000030
DISABLE_INTEGRITY = "DISABLE_INTEGRITY_CHECKS"


def _store(ctx: AuditContext) -> tuple[BCDStore | None, str]:
    # the same decoded store (and cache entry) the bcd.* rules use: decoded once per audit
    return decoded_store(ctx)


_GUID_RE = re.compile(r"\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}")


def _alias(obj: BCDObject, loader: BCDObject) -> str:
    """How a bcdedit line names ``obj``: ``{default}``, a well-known alias or its GUID. The GUID is the name of a key
    in the store: anything else there is a placeholder, never text a line cmd.exe runs would carry."""
    if obj is loader:
        return "{default}"
    name = WELL_KNOWN.get(obj.guid) or obj.guid
    if name in WELL_KNOWN.values() or _GUID_RE.fullmatch(name):
        return name
    return placeholder(name, "a BCD object named by no GUID")


def _bcd_evidence(ctx: AuditContext, obj: BCDObject, eid: int, eff: Effective | None, note: str = "") -> Evidence:
    holder = eff.holder if eff is not None else obj
    inherited = f"inherited from {holder.label}" if eff is not None and eff.inherited else ""
    value: Any = None
    if eff is not None:
        value = eff.element.display()
    return Evidence(
        source="bcd",
        hive="BCD",
        key=f"{ctx.facts.bcd_path or 'BCD'}: Objects\\{holder.guid}\\Elements\\{eid:08X}",
        value_name="Element",
        type=None if eff is None else eff.element.format,
        raw=None if eff is None else eff.element.raw.hex(),
        actual=value,
        present=eff is not None,
        note="; ".join(n for n in (inherited, note) if n),
    )


def _without_option(options: str) -> str:
    """``loadoptions`` with every DISABLE_INTEGRITY_CHECKS word taken out."""
    return " ".join(w for w in options.split() if DISABLE_INTEGRITY not in w.upper())


@rule(
    SECUREBOOT,
    id="secureboot.bcd_integrity",
    title="{default} loader: no testsigning, nointegritychecks or loadoptions DISABLE_INTEGRITY_CHECKS",
    severity=Severity.REQUIRED,
    rationale="Test signing and disabled integrity checks are incompatible with Secure Boot: Microsoft's driver "
    "documentation says TESTSIGNING requires disabling Secure Boot, and a Trusted Launch VM boots only "
    "components signed by trusted publishers. Effective values on the default OS loader are judged "
    "(an element not set on the loader is inherited from the objects it inherits from, as the boot "
    "manager does).",
    source="How to Test Preproduction Drivers with Secure Boot Enabled (learn.microsoft.com, ms.date 2024-07-10): "
    f'"TESTSIGNING requires disabling Secure Boot"; {TL_SOURCE}, "Secure Boot"',
    remediation='bcdedit /set "{default}" testsigning off; bcdedit /set "{default}" nointegritychecks off; '
    'bcdedit /deletevalue "{default}" loadoptions',
    references=(TESTSIGN_DOC, TL_DOC),
)
def check_bcd_integrity(ctx: AuditContext) -> Outcome:
    expected = "testsigning and nointegritychecks off or unset; loadoptions without DISABLE_INTEGRITY_CHECKS"
    store, why = _store(ctx)
    if store is None:
        raise NotChecked(why, expected=expected)
    try:
        loader = store.default_loader
        if loader is None:
            why = "the BCD store has no {bootmgr} default OS loader (see bcd.store_present)"
            raise NotChecked(why, expected=expected)
        found: list[str] = []
        fixes: list[str] = []
        evidence: list[Evidence] = []
        for name, eid in (("testsigning", TESTSIGNING), ("nointegritychecks", NOINTEGRITYCHECKS)):
            eff = store.effective(loader, eid)
            evidence.append(_bcd_evidence(ctx, loader, eid, eff))
            if eff is not None and eff.value:
                holder = _alias(eff.holder, loader)
                src = f" (inherited from {eff.holder.label})" if eff.inherited else ""
                found.append(f"{name} Yes{src}")
                fixes.append(f'bcdedit /set "{holder}" {name} off')
        eff = store.effective(loader, LOADOPTIONS)
        evidence.append(_bcd_evidence(ctx, loader, LOADOPTIONS, eff))
        if eff is not None and DISABLE_INTEGRITY in str(eff.value).upper():
            holder = _alias(eff.holder, loader)
            src = f" (inherited from {eff.holder.label})" if eff.inherited else ""
            found.append(f"loadoptions '{eff.value}'{src}")
            rest = _without_option(str(eff.value))
            # the options kept are read from the store, and the line runs through cmd.exe: quoted for cmd, or a
            # placeholder when cmd would read part of them as a command
            fixes.append(
                f'bcdedit /set "{holder}" loadoptions {cmd_quoted(rest)}'
                if rest
                else f'bcdedit /deletevalue "{holder}" loadoptions'
            )
    except BCDError as err:
        raise NotChecked(str(err), f"not checked: malformed BCD data: {err}", expected=expected) from err
    where = f"{{default}} ({loader.label})"
    if not found:
        return Outcome(
            Status.PASS,
            f"{where}: testsigning and nointegritychecks not set to Yes, loadoptions without {DISABLE_INTEGRITY}",
            expected,
            "none set",
            tuple(evidence),
        )
    return Outcome(
        Status.FAIL,
        f"{where}: {', '.join(found)}: Windows Boot Manager does not boot "
        f"this under Secure Boot ({_target_words(ctx)})",
        expected,
        found,
        tuple(evidence),
        remediation=_script(fixes),
    )


# --- the boot manager's signatures and the 2023 rollover ---------------------------------------------------


def _rollover_lines(state: ServicingState) -> tuple[str, ...]:
    """What to run for the rollover, from where it stands: a request already made needs only the task."""
    requested = any(bit in (0x0040, 0x0100) for bit, _ in state.pending_steps)
    if requested and not state.error:
        return ROLLOVER_LINES[1:]
    return ROLLOVER_LINES


def _servicing(ctx: AuditContext) -> ServicingState:
    return ctx.cached("secureboot.servicing", lambda: servicing_state(ctx.registry))  # type: ignore[no-any-return]


@rule(
    SECUREBOOT,
    id="secureboot.bootmgr_signature",
    title="The boot manager on the ESP is signed, and by which CA: Windows Production PCA 2011 or Windows UEFI CA 2023",
    severity=Severity.REQUIRED,
    rationale="Under Secure Boot the firmware starts \\EFI\\Microsoft\\Boot\\bootmgfw.efi only when its "
    "Authenticode signature chains to a certificate in the DB. Windows shipped a boot manager signed "
    "through Microsoft Windows Production PCA 2011 (expiring October 2026) and, since the 2023 "
    "rollover, one signed through Windows UEFI CA 2023. A VM on the 2011 chain keeps booting but gets "
    "no new boot manager, DB/DBX or early-boot protections (KB5085395); an unsigned boot manager, or one "
    "chained to neither, does not boot under Secure Boot. The result also says where the image's "
    "Windows stands in the rollover (the servicing values, see secureboot.uefica2023_servicing).",
    source="KB5085395 Secure Boot update from 2011 to 2023 certificates: Trusted Launch VMs and Confidential VMs "
    "(2026-05-13); KB5025885 (2023-05-09); KB5062713 (2025-06-26); KB5068202 (2025-10-14); "
    f'{TL_SOURCE}, "Secure Boot"',
    remediation=_script(BCDBOOT_LINES, ROLLOVER_LINES),
    references=(KB5085395_URL, KB5025885_URL, KB5062713_URL, KB5068202_URL, TL_DOC),
)
def check_bootmgr_signature(ctx: AuditContext) -> Outcome:
    expected = "signed, chaining to Windows UEFI CA 2023 (or Microsoft Windows Production PCA 2011 until the rollover)"
    esp = esp_partition(ctx.facts)
    if esp is None:
        raise NotApplicable(
            "the disk has no EFI system partition, so no UEFI boot manager to check (see secureboot.generation2)"
        )
    files, why = boot_files(ctx)
    if files is None:
        raise NotChecked(why, expected=expected)
    try:
        bm = ctx.cached("secureboot.bootmgr", lambda: boot_manager(files))
    except AuditError as err:
        raise NotChecked(
            str(err), f"not checked: the EFI system partition cannot be read: {err}", expected=expected
        ) from err
    state = _servicing(ctx)
    ev: tuple[Evidence, ...] = (_file_evidence(esp.index, bm), *state.evidence)
    rollover = state.summary()
    if not bm.present:
        raise NotApplicable(
            f"the EFI system partition holds no \\{BOOTMGR_PATH} whose signatures could be checked "
            "(see secureboot.generation2)"
        )
    if bm.error or bm.subsystem is None:
        raise NotApplicable(
            f"\\{BOOTMGR_PATH} is {bm.error or 'not an EFI application'}, not a boot manager whose "
            "signatures could be checked (see secureboot.generation2)"
        )
    if not bm.signed:
        return Outcome(
            Status.FAIL,
            f"\\{BOOTMGR_PATH} carries no Authenticode signature (no "
            f"certificate table): UEFI Secure Boot does not start it ({_target_words(ctx)})",
            expected,
            "unsigned",
            ev,
            remediation=_script(BCDBOOT_LINES),
        )
    answer = ctx.cached(
        "secureboot.bootmgr_signers", lambda: boot_manager_signers(files, verify=ctx.options.verify_signatures)
    )
    table = f"a {bm.cert_table_size:,}-byte certificate table"
    if answer.signers is None:
        raise NotChecked(
            answer.why,
            f"not checked: \\{BOOTMGR_PATH} carries {table}; which CA it chains to "
            f"is not known: {answer.why}. Servicing: {rollover}",
            expected=expected,
            evidence=ev,
        )
    signers = answer.signers
    shown = [{"subject": s.subject, "ca": s.ca, "verified": s.verified, "why": s.why} for s in signers]
    described = "; ".join(s.describe() for s in signers) or "no signature in the table"
    mode = (
        "the file's Authenticode digest compared"
        if ctx.options.verify_signatures
        else "signatures and chains checked, the file's digest not compared (verify_signatures=True compares it)"
    )
    cas = answer.cas
    if UEFICA2023 in cas:
        also = " and Microsoft Windows Production PCA 2011" if PCA2011 in cas else ""
        return Outcome(
            Status.PASS,
            f"\\{BOOTMGR_PATH} chains to {UEFICA2023}{also} ({described}; {mode}): the 2023 "
            "boot manager; it boots where the VM's firmware DB holds Windows UEFI CA 2023 (KB5085395). "
            f"Servicing: {rollover}",
            expected,
            shown,
            ev,
        )
    if PCA2011 in cas:
        stale = ""
        if state.status and state.status.lower() == "updated":
            stale = " (UEFICA2023Status says Updated, yet the ESP holds the 2011-signed boot manager)"
        return Outcome(
            Status.WARNING,
            f"\\{BOOTMGR_PATH} chains to {PCA2011} only ({described}; {mode}){stale}: it "
            "boots, but the 2011 CA expires in October 2026 and the VM then gets no new boot manager or "
            f"DB/DBX protections (KB5085395). Servicing: {rollover}",
            expected,
            shown,
            ev,
            remediation=_script(_rollover_lines(state)),
        )
    third = cas & THIRD_PARTY_CAS
    if third:
        return Outcome(
            Status.WARNING,
            f"\\{BOOTMGR_PATH} chains to {', '.join(sorted(third))} ({described}; {mode}), "
            "Microsoft's CA for third-party UEFI software: firmware that trusts it starts the file, but it "
            "is not Windows Boot Manager as Microsoft signs it (Windows Production PCA 2011 or Windows UEFI "
            "CA 2023)",
            expected,
            shown,
            ev,
            remediation=_script(BCDBOOT_LINES),
        )
    return Outcome(
        Status.FAIL,
        f"\\{BOOTMGR_PATH} chains to neither {PCA2011} nor {UEFICA2023} "
        f"({described}; {mode}): Secure Boot does not start it ({_target_words(ctx)})",
        expected,
        shown,
        ev,
        remediation=_script(BCDBOOT_LINES),
    )


@rule(
    SECUREBOOT,
    id="secureboot.uefica2023_servicing",
    title="The 2023 Secure Boot certificate servicing state (UEFICA2023Status, AvailableUpdates)",
    severity=Severity.RECOMMENDED,
    rationale="Windows moves a Secure Boot device from the 2011 to the 2023 certificates through the servicing "
    "values under SYSTEM\\CurrentControlSet\\Control\\SecureBoot\\Servicing: AvailableUpdates asks for "
    "the steps (0x5944 for all of them), the Secure-Boot-Update task clears each bit when its step is "
    "done, UEFICA2023Status goes NotStarted -> InProgress -> Updated and UEFICA2023Error holds the last "
    "failure. An image that has not finished keeps the 2011 chain, which boots but gets no new "
    "early-boot protections once the 2011 certificates expire (June and October 2026). A warning, "
    "never a failure: the VM boots either way. Not applicable when the target boots without Secure Boot.",
    source="KB5068202 Registry key updates for Secure Boot: Windows devices with IT-managed updates (2025-10-14); "
    "KB5025885 (2023-05-09, WindowsUEFICA2023Capable); KB5062713 Windows devices with IT-managed updates "
    "(2025-06-26); KB5085395 Trusted Launch VMs and Confidential VMs (2026-05-13)",
    remediation=ROLLOVER_FIX,
    references=(KB5068202_URL, KB5025885_URL, KB5062713_URL, KB5085395_URL, KB5085046_URL),
)
def check_servicing(ctx: AuditContext) -> Outcome:
    expected = "UEFICA2023Status Updated"
    if not ctx.secure_boot_required():
        raise NotApplicable(
            f"the target {ctx.security_type()} boots without Secure Boot: the Secure Boot certificates do not apply"
        )
    state = _servicing(ctx)
    ev = state.evidence
    if not state.readable:
        raise NotChecked(state.why, expected=expected)
    if state.mistyped:
        wrong = ", ".join(f"{name} is {kind}" for name, kind in state.mistyped.items())
        why = (
            f"servicing values of an undocumented type ({wrong}; KB5068202: AvailableUpdates REG_DWORD, "
            "UEFICA2023Status REG_SZ, UEFICA2023Error REG_DWORD)"
        )
        raise NotChecked(why, expected=expected, actual=state.to_dict(), evidence=ev)
    summary = state.summary()
    if state.error:
        return Outcome(
            Status.WARNING,
            f"the last servicing step failed ({summary})",
            expected,
            state.to_dict(),
            ev,
            remediation=_script(
                [f"Look up UEFICA2023Error 0x{state.error:08X} in KB5085046 (Secure Boot troubleshooting), then:"],
                ROLLOVER_LINES,
            ),
        )
    status = (state.status or "").lower()
    pending = state.pending_steps
    if status == "updated":
        return Outcome(Status.PASS, f"the 2023 certificate rollover is done: {summary}", expected, state.to_dict(), ev)
    if status == "inprogress":
        return Outcome(
            Status.WARNING,
            f"the rollover was under way when the image was captured: {summary}; Windows "
            "goes on with the pending steps on the firmware it boots on (the Secure-Boot-Update task runs "
            "at startup and every 12 hours)",
            expected,
            state.to_dict(),
            ev,
            remediation=_script(ROLLOVER_LINES[1:]),
        )
    if pending:
        return Outcome(
            Status.WARNING,
            f"the rollover is requested but not started: {summary}; it runs once the VM "
            "boots with Secure Boot (the Secure-Boot-Update task)",
            expected,
            state.to_dict(),
            ev,
            remediation=_script(ROLLOVER_LINES[1:]),
        )
    if state.status is None and state.capable == 2:
        return Outcome(
            Status.WARNING,
            f"the DB and the boot manager are on the 2023 chain, but there is no "
            f"UEFICA2023Status ({summary}): this Windows predates the servicing of KB5068202, which also "
            "brings the 2023 KEK",
            expected,
            state.to_dict(),
            ev,
            remediation=_script(["Install the latest cumulative update (KB5068202), then:"], ROLLOVER_LINES),
        )
    if state.status is None and state.capable is None:
        # AvailableUpdates alone is older than the 2023 servicing (real Windows 10 1709 hives hold it, = 0)
        found = f" ({summary})" if state.has_any else ""
        return Outcome(
            Status.WARNING,
            "no 2023 certificate servicing values under SecureBoot\\Servicing"
            f"{found}: this Windows has not installed an update that carries them (KB5068202: updates from "
            "2025-10-14, and 2025-11-11 for the other supported versions)",
            expected,
            state.to_dict() if found else None,
            ev,
            remediation=_script(["Install the latest cumulative update (KB5068202), then:"], ROLLOVER_LINES),
        )
    if status and status not in ("notstarted",):
        return Outcome(
            Status.WARNING,
            f"UEFICA2023Status '{state.status}' is not a value KB5068202 lists ({summary})",
            expected,
            state.to_dict(),
            ev,
        )
    return Outcome(
        Status.WARNING,
        f"the 2023 certificate rollover has not started: {summary}",
        expected,
        state.to_dict(),
        ev,
        remediation=ROLLOVER_FIX,
    )
