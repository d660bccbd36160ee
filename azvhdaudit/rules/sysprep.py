"""Sysprep rules: is the image generalized or specialized, and was it generalized the way Azure needs.

References: "Prepare a Windows VHD or VHDX to upload to Azure": "Determine when to use Sysprep", "Generalize
a VHD" (delete C:\\Windows\\Panther first; OOBE, Generalize, Shutdown; a custom unattend.xml is not supported;
remove VM extensions of an image captured from Azure) — https://learn.microsoft.com/azure/virtual-machines/
windows/prepare-for-upload-vhd-image, ms.date 2022-08-04; the 2017 "Sysprep" section (MicrosoftDocs/azure-docs
articles/virtual-machines/windows/prepare-for-upload-vhd-image.md, ms.date 2017-08-01: "If you want to create a
generalized image, you need to run sysprep"; a machine translation of it inverts that sentence). "Windows Setup
States" (ImageState values); "Sysprep Support for Server Roles".

The ``image_type`` option (``generalized`` / ``specialized``) says how the image will be uploaded
(``--os-state``); without it the rules judge the image by its own Sysprep state.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from azvhdaudit import osinfo
from azvhdaudit.errors import NotApplicable, NotChecked
from azvhdaudit.facts import SysprepFacts
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.os import image_state, sysprep_of
from azvhdaudit.rules.values import HiveUnavailable, Read, key_evidence, read_value

GENERALIZE = "Generalize a VHD"
SYSPREP = Group(area="sysprep", source=GENERALIZE)
HIBER_KEY = r"SYSTEM\CurrentControlSet\Control\Session Manager\Power"
CURRENT_ONLY = ("azure-2022",)
ROLES_DOC = "https://learn.microsoft.com/windows-hardware/manufacture/desktop/sysprep-support-for-server-roles"

#: services of server roles Sysprep cannot generalize (Sysprep Support for Server Roles)
UNSUPPORTED_ROLE_SERVICES = {
    "NTDS": "Active Directory Domain Services",
    "CertSvc": "Active Directory Certificate Services",
    "DHCPServer": "DHCP Server",
    "DNS": "DNS Server",
    "adfssrv": "AD Federation Services",
    "WDSServer": "Windows Deployment Services",
    "ClusSvc": "Failover Clustering",
}


def _from_setup(facts: SysprepFacts) -> bool:
    """Whether the state was decided by SYSTEM\\Setup (no ImageState in the registry, no State.ini)."""
    return not facts.image_state and not facts.state_ini and facts.setup_type is not None


def _stored(ctx: AuditContext, path: str, name: str, fallback: Any, hive: str) -> Evidence:
    """The value as stored where its hive can be read; else what the image facts recorded of it."""
    if ctx.registry.has_hive(hive):
        return read_value(ctx, path, name).evidence
    return Evidence(
        source="registry",
        hive=hive,
        key="HKLM\\" + path,
        value_name=name,
        actual=fallback,
        present=fallback is not None,
        note="as recorded in the image facts",
        derived=fallback is not None,
    )


def _sysprep_evidence(ctx: AuditContext, facts: SysprepFacts, setup: bool = False) -> tuple[Evidence, ...]:
    """The evidence a verdict stands on: ImageState (only where SOFTWARE was read: an unread hive is not an
    absent value), State.ini, and ``SYSTEM\\Setup`` only where ``setup`` says it decided the verdict."""
    ev = []
    if "SOFTWARE" not in facts.missing_hives:
        ev.append(_stored(ctx, osinfo.SETUP_STATE, "ImageState", facts.image_state, "SOFTWARE"))
    if facts.state_ini is not None:
        ev.append(
            Evidence(source="file", key=osinfo.STATE_INI, value_name="ImageState", actual=facts.state_ini, present=True)
        )
    if setup and (facts.setup_type is not None or facts.cmdline is not None):
        ev.append(_stored(ctx, r"SYSTEM\Setup", "SetupType", facts.setup_type, "SYSTEM"))
        ev.append(_stored(ctx, r"SYSTEM\Setup", "CmdLine", facts.cmdline, "SYSTEM"))
    if facts.sysprep_succeeded_tag is not None:
        tag = bool(facts.sysprep_succeeded_tag)
        ev.append(Evidence(source="file", key=osinfo.SYSPREP_TAG, actual=True if tag else None, present=tag))
    return tuple(ev)


def _software_unread(ctx: AuditContext, facts: SysprepFacts) -> str:
    """Why ImageState could not be read (the SOFTWARE hive is unreadable), or "" when it was read."""
    if "SOFTWARE" not in facts.missing_hives:
        return ""
    return ctx.registry.why_unavailable("SOFTWARE") or "the SOFTWARE hive could not be read"


def _generalized_only(ctx: AuditContext) -> tuple[str, str]:
    state, origin = image_state(ctx)
    if state == "specialized":
        raise NotApplicable(f"the image is specialized ({origin}); the step is part of generalizing")
    return state, origin


@rule(
    SYSPREP,
    id="sysprep.state",
    title="Classify image as generalized vs specialized (and report it)",
    severity=Severity.REQUIRED,
    rationale="A generalized image (sysprep /generalize /oobe) is uploaded with --os-state Generalized and "
    "provisioned by Azure; a specialized one is used as is. Uploading with the wrong state leaves the "
    "VM stuck at OOBE or failing provisioning. ImageState is the primary evidence, State.ini and "
    "SYSTEM\\Setup the cross-checks (GeneralizationState is community knowledge only). They stand in "
    "for ImageState only where the registry holds none: State.ini can disagree with it, so with the "
    "SOFTWARE hive unreadable the state is shown but not checked.",
    source="Determine when to use Sysprep",
    remediation=r"%windir%\System32\Sysprep\sysprep.exe /generalize /oobe /shutdown  (for a generalized image)",
)
def check_state(ctx: AuditContext) -> Outcome:
    facts = sysprep_of(ctx)
    state = facts.state or "unknown"
    ev = _sysprep_evidence(ctx, facts, setup=_from_setup(facts))
    why = "; ".join(facts.evidence) or "no Sysprep evidence"
    wanted = ctx.options.image_type
    unread = _software_unread(ctx, facts)
    if unread and state != "unknown":
        # ImageState is what the state is read from; State.ini and SYSTEM\Setup stand in for it only where the
        # registry holds no ImageState, and can disagree with it. With SOFTWARE unread they show, not decide.
        reason = f"ImageState not read: {unread}"
        raise NotChecked(
            reason,
            f"{why}; not checked, the registry's ImageState could not be read ({unread})",
            expected=wanted,
            evidence=ev,
        )
    if state == "unknown":
        missing = facts.missing_hives
        reason = (
            f"hives not readable: {', '.join(missing)}"
            if missing
            else "no ImageState, State.ini or SYSTEM\\Setup evidence"
        )
        raise NotChecked(reason, f"the Sysprep state could not be established ({reason})", expected=wanted, evidence=ev)
    if state == "undeployable":
        return Outcome(
            Status.WARNING,
            f"the image is in no deployable state ({why}): a setup pass or sysprep did "
            r"not finish (see Windows\System32\Sysprep\Panther\setuperr.log)",
            wanted,
            state,
            ev,
        )
    if wanted is None:
        return Outcome(Status.PASS, f"the image is {state} ({why})", None, state, ev)
    if wanted == state:
        return Outcome(Status.PASS, f"the image is {state}, as stated ({why})", wanted, state, ev)
    if wanted == "generalized":
        return Outcome(
            Status.FAIL,
            f"stated generalized, but the image is {state} ({why}): run sysprep "
            "/generalize /oobe /shutdown, or upload it as specialized",
            wanted,
            state,
            ev,
        )
    return Outcome(
        Status.FAIL,
        f"stated specialized, but the image is {state} ({why}): it would start in OOBE; upload it as generalized",
        wanted,
        state,
        ev,
    )


@rule(
    SYSPREP,
    id="sysprep.oobe_shutdown_not_audit",
    title="Generalized image was resealed to OOBE (not Audit mode)",
    severity=Severity.REQUIRED,
    rationale="Azure provisions a generalized image through OOBE; an image resealed to Audit mode, or left "
    "UNDEPLOYABLE by an interrupted sysprep, does not provision.",
    remediation=r"%windir%\System32\Sysprep\sysprep.exe /generalize /oobe /shutdown",
)
def check_oobe(ctx: AuditContext) -> Outcome:
    _generalized_only(ctx)
    facts = sysprep_of(ctx)
    value = facts.image_state or facts.state_ini
    ev = _sysprep_evidence(ctx, facts)
    expected = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
    unread = _software_unread(ctx, facts)
    if unread:
        # State.ini stands in for ImageState only where the registry holds none (see check_state).
        shown = f"State.ini says ImageState = {facts.state_ini}" if facts.state_ini else "no State.ini"
        raise NotChecked(
            f"ImageState not read: {unread}",
            f"{shown}; not checked, the registry's ImageState could not be read ({unread})",
            expected=expected,
            evidence=ev,
        )
    if value is None:
        raise NotChecked(
            "ImageState absent", "ImageState is in neither the registry nor State.ini", expected=expected, evidence=ev
        )
    value = str(value).upper()
    if value == expected:
        return Outcome(Status.PASS, "generalized and resealed to OOBE", expected, value, ev)
    if value.endswith("_TO_AUDIT"):
        return Outcome(
            Status.FAIL, f"ImageState {value}: resealed to Audit mode; run sysprep with /oobe", expected, value, ev
        )
    if value == "IMAGE_STATE_UNDEPLOYABLE":
        return Outcome(
            Status.FAIL,
            "ImageState IMAGE_STATE_UNDEPLOYABLE: sysprep did not finish (see "
            r"Windows\System32\Sysprep\Panther\setuperr.log)",
            expected,
            value,
            ev,
        )
    return Outcome(Status.FAIL, f"ImageState {value}: the image is not generalized", expected, value, ev)


@rule(
    SYSPREP,
    id="sysprep.no_custom_unattend",
    title="No custom unattend.xml that Windows Setup would pick up",
    severity=Severity.REQUIRED,
    rationale="Azure provisions a generalized image with its own answer file; a custom unattend.xml left in the "
    "image is not supported (only additionalUnattendContent through the API).",
    source=GENERALIZE + " (NOTE: A custom unattend.xml file is not supported)",
    baselines=CURRENT_ONLY,
    remediation=r"Delete the unattend files (C:\Windows\Panther\Unattend.xml ...) and the SYSTEM\Setup "
    "UnattendFile value before sysprep",
)
def check_unattend(ctx: AuditContext) -> Outcome:
    state, origin = _generalized_only(ctx)
    if ctx.files is None:
        raise NotChecked(
            "no guest file access", "the Windows volume's files cannot be read", expected="no unattend file"
        )
    facts = sysprep_of(ctx)
    found = list(facts.unattend_files)
    if facts.unattend_value:
        found.append(f"HKLM\\SYSTEM\\Setup UnattendFile = {facts.unattend_value}")
    ev = tuple(Evidence(source="file", key=p, present=p in found) for p in osinfo.UNATTEND_FILES)
    if found:
        status = Status.FAIL if state == "generalized" else Status.WARNING
        return Outcome(
            status,
            f"custom unattend files present ({'; '.join(found)}); Sysprep state: {state}, from {origin}",
            "none",
            found,
            ev,
        )
    return Outcome(Status.PASS, "no unattend.xml where Windows Setup looks for one", "none", [], ev)


@rule(
    SYSPREP,
    id="sysprep.panther_deleted",
    title="C:\\Windows\\Panther deleted before generalization",
    severity=Severity.RECOMMENDED,
    rationale="Old setup logs and answer files in Panther can be picked up again by setup. The folder should be "
    "deleted before sysprep; the files sysprep writes itself go to System32\\Sysprep\\Panther. File "
    "times are not compared offline, so what is left is listed for a person to judge.",
    source=GENERALIZE + " step 3",
    baselines=CURRENT_ONLY,
    remediation=r"Delete the panther directory (C:\Windows\Panther) before running sysprep.exe",
)
def check_panther(ctx: AuditContext) -> Outcome:
    state, origin = _generalized_only(ctx)
    if ctx.files is None:
        raise NotChecked("no guest file access", "the Windows volume's files cannot be read", expected="absent")
    entries = ctx.files.listdir(osinfo.PANTHER)
    ev = (Evidence(source="file", key=osinfo.PANTHER, actual=entries, present=entries is not None),)
    if not entries:
        return Outcome(Status.PASS, "C:\\Windows\\Panther is absent or empty", "absent", entries, ev)
    shown = ", ".join(entries[:10]) + (" ..." if len(entries) > 10 else "")
    return Outcome(
        Status.WARNING,
        f"C:\\Windows\\Panther holds {len(entries)} entries ({shown}); delete the folder "
        f"before sysprep (Sysprep state: {state}, from {origin})",
        "absent",
        entries,
        ev,
    )


@rule(
    SYSPREP,
    id="sysprep.extensions_removed",
    title="Azure VM extensions removed (image captured from an existing Azure VM)",
    severity=Severity.RECOMMENDED,
    rationale="Extensions installed in the source VM (C:\\Packages\\Plugins) run again, with stale settings, on "
    "every VM made from the image.",
    baselines=CURRENT_ONLY,
    remediation="Remove the VM extensions (Remove-AzVMExtension) and delete C:\\Packages\\Plugins before sysprep",
)
def check_extensions(ctx: AuditContext) -> Outcome:
    state, origin = _generalized_only(ctx)
    if ctx.files is None:
        raise NotChecked("no guest file access", "the Windows volume's files cannot be read", expected="absent")
    entries = ctx.files.listdir(osinfo.PLUGINS)
    ev = (Evidence(source="file", key=osinfo.PLUGINS, actual=entries, present=entries is not None),)
    if entries:
        return Outcome(
            Status.WARNING,
            f"extension plug-ins left in C:\\Packages\\Plugins: {', '.join(entries)}",
            "absent",
            entries,
            ev,
        )
    return Outcome(Status.PASS, "no extension plug-ins in C:\\Packages\\Plugins", "absent", entries, ev)


@rule(
    SYSPREP,
    id="sysprep.role_supported",
    title="Installed server roles support Sysprep",
    severity=Severity.ADVISORY,
    rationale="Sysprep does not generalize every server role; a generalized image with such a role is broken. "
    "The role list is a heuristic on the roles' services (Sysprep Support for Server Roles).",
    source="Determine when to use Sysprep",
    remediation="Remove the role before generalizing, or upload the disk as specialized",
    references=(ROLES_DOC,),
)
def check_roles(ctx: AuditContext) -> Outcome:
    state, origin = _generalized_only(ctx)
    if not ctx.registry.has_hive("SYSTEM"):
        why = ctx.registry.why_unavailable("SYSTEM")
        raise NotChecked(why)
    found = {}
    for name, role in UNSUPPORTED_ROLE_SERVICES.items():
        if name == "NTDS":
            # every Windows has an NTDS key (RID Values); a domain controller has its Parameters
            if ctx.registry.key(f"{osinfo.SERVICES}\\NTDS\\Parameters") is not None:
                found[name] = role
            continue
        exists, start, image = osinfo.service_start(ctx.registry, name)
        if exists and image is not None and start is not None and start != 4:
            found[name] = role
    ev = tuple(
        replace(read_value(ctx, f"{osinfo.SERVICES}\\{n}", "Start").evidence, note=f"role: {r}")
        for n, r in found.items()
        if n != "NTDS"
    )
    if "NTDS" in found:
        path = f"{osinfo.SERVICES}\\NTDS\\Parameters"
        ev += (key_evidence(ctx, path, ctx.registry.key(path), note=f"role: {found['NTDS']}"),)
    if found:
        return Outcome(
            Status.WARNING,
            "server roles that Sysprep does not generalize: "
            + ", ".join(sorted(set(found.values())))
            + f" (Sysprep state: {state}, from {origin})",
            "none",
            sorted(found),
            ev,
        )
    return Outcome(Status.PASS, "no role Sysprep cannot generalize was found", "none", [], ev)


@rule(
    SYSPREP,
    id="sysprep.hibernation_off",
    title="Hibernation and Fast Startup off (no hiberfil.sys)",
    severity=Severity.RECOMMENDED,
    rationale="A VM shut down with Fast Startup (HiberbootEnabled) resumes a hibernated kernel on its first "
    "boot in Azure, on different hardware; hiberfil.sys also wastes space on the OS disk. Derived "
    "from the doc's clean-shutdown steps, not a line of it.",
    source="derived (Generalize a VHD: shut down, do not restart)",
    baselines=CURRENT_ONLY,
    remediation="powercfg.exe /hibernate off",
)
def check_hibernation(ctx: AuditContext) -> Outcome:
    try:
        read: Read | None = read_value(ctx, HIBER_KEY, "HiberbootEnabled")
        system_why = ""
    except HiveUnavailable as err:
        read, system_why = None, err.reason
    hiber = read.value if read is not None else None
    present = ctx.facts.hiberfil_present
    if present is None and ctx.files is not None:
        present = ctx.files.exists("hiberfil.sys")
    # an unread hive or file is not evidence of absence: only what was read is shown
    ev: list[Evidence] = [read.evidence] if read is not None else []
    if present is not None:
        ev.append(Evidence(source="file", key="hiberfil.sys", actual=True if present else None, present=bool(present)))
    problems = []
    if hiber is not None and hiber.data == 1:
        problems.append("Fast Startup is on (HiberbootEnabled = 1)")
    if present:
        problems.append("hiberfil.sys is present")
    if problems:
        return Outcome(
            Status.WARNING,
            "; ".join(problems),
            "off",
            {"HiberbootEnabled": hiber.data if hiber else None, "hiberfil.sys": present},
            tuple(ev),
        )
    unknown = []
    if system_why:
        unknown.append(f"HiberbootEnabled not read ({system_why})")
    if present is None:
        unknown.append("hiberfil.sys not looked for (the Windows volume's files cannot be read)")
    if unknown:
        seen = "no Fast Startup" if read is not None else "no hiberfil.sys" if present is False else "nothing read"
        reason = "; ".join(unknown)
        raise NotChecked(reason, f"{seen}; not checked: {reason}", expected="off", evidence=tuple(ev))
    return Outcome(Status.PASS, "no Fast Startup and no hiberfil.sys", "off", None, tuple(ev))
