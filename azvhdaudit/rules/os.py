"""OS rules: which Windows is in the image, and whether Azure runs it as prepared.

References: "Prepare a Windows VHD or VHDX to upload to Azure" (current and 2017): the introduction
(64-bit Windows Server 2008 R2 and later; generation 1 and 2), "Determine when to use Sysprep", the domain
controller note (https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image,
ms.date 2022-08-04; the 2017 text: MicrosoftDocs/azure-docs articles/virtual-machines/windows/
prepare-for-upload-vhd-image.md, ms.date 2017-08-01); KB4021388 "Support for 32-bit operating systems in Azure
virtual machines" (https://support.microsoft.com/help/4021388, 2019-09-18: only specialized 32-bit VHDs work,
1 GB of usable memory on client SKUs); "Support for generation 2 VMs on Azure" (generation-2.md: generation 2
needs a 64-bit Windows Server 2012 / Windows 8 or later).

This module also holds the helpers the other image rules share: :func:`image_state`, and :func:`os_of` /
:func:`sysprep_of` (from :mod:`azvhdaudit.osinfo`: the facts as ``ctx.facts`` holds them).
"""

from __future__ import annotations

from typing import Any

from azvhdaudit import osinfo
from azvhdaudit.errors import HiveUnavailable, NotApplicable, NotChecked
from azvhdaudit.facts import OSFacts
from azvhdaudit.osinfo import os_of, sysprep_of
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.values import key_evidence, read_value

__all__ = ["OS", "os_of", "image_state", "sysprep_of", "BUILD_NAMES", "build_name"]

KB4021388 = "https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/support-32-bit-operating-systems-virtual-machines"
GEN2_DOC = "https://learn.microsoft.com/azure/virtual-machines/generation-2"
KB2904015 = "https://support.microsoft.com/kb/2904015"

OS = Group(area="os", source="intro")

#: build -> the Windows releases with that build (Microsoft's "Windows Server release information" and
#: "Windows 10 release information" pages, learn.microsoft.com/windows/release-health)
BUILD_NAMES: dict[int, str] = {
    6001: "Windows Server 2008 / Vista SP1",
    6002: "Windows Server 2008 SP2 / Vista SP2",
    6003: "Windows Server 2008 SP2 / Vista SP2",
    7600: "Windows 7 / Server 2008 R2 RTM (no SP1)",
    7601: "Windows 7 SP1 / Server 2008 R2 SP1",
    9200: "Windows 8 / Server 2012",
    9600: "Windows 8.1 / Server 2012 R2",
    10240: "Windows 10 1507",
    10586: "Windows 10 1511",
    14393: "Windows 10 1607 / Server 2016",
    15063: "Windows 10 1703",
    16299: "Windows 10 1709 / Server 1709",
    17134: "Windows 10 1803 / Server 1803",
    17763: "Windows 10 1809 / Server 2019",
    20348: "Server 2022",
    22000: "Windows 11 21H2",
    26100: "Windows 11 24H2 / Server 2025",
}


def build_name(build: int | None) -> str:
    if build is None:
        return "unknown build"
    name = BUILD_NAMES.get(build)
    return f"build {build} ({name})" if name else f"build {build}"


def image_state(ctx: AuditContext) -> tuple[str, str]:
    """(``generalized`` / ``specialized`` / ``undeployable`` / ``unknown``, where that came from).

    The user's ``image_type`` option wins: it says how the image will be uploaded."""
    if ctx.options.image_type in ("generalized", "specialized"):
        return ctx.options.image_type, "the image_type option"
    return sysprep_of(ctx).state or "unknown", "the image's Sysprep state"


def os_evidence(
    ctx: AuditContext, name: str, value: Any, hive: str = "SOFTWARE", key: str = osinfo.CURRENT_VERSION
) -> Evidence:
    """The registry value an OS fact came from, as stored: its own name, type and data. The build comes from
    CurrentBuild, or CurrentBuildNumber where CurrentBuild is absent (as :mod:`azvhdaudit.osinfo` reads it)."""
    names = ("CurrentBuild", "CurrentBuildNumber") if name == "CurrentBuild" else (name,)
    try:
        reads = [read_value(ctx, key, n) for n in names]
    except HiveUnavailable as err:
        return Evidence(
            source="registry",
            hive=hive,
            key=ctx.registry.display_path(key),
            value_name=name,
            note=f"not read: {err.reason}",
        )
    return next((r for r in reads if r.present), reads[0]).evidence


def _need_os(ctx: AuditContext, expected: Any = None) -> OSFacts:
    """The OS facts; raises :class:`NotChecked` when neither SOFTWARE nor SYSTEM can be read."""
    found = os_of(ctx)
    if found is None:
        raise NotChecked(ctx.registry.why_unavailable("SOFTWARE") or "the OS facts were not read", expected=expected)
    return found


def _software_missing(ctx: AuditContext) -> str:
    """Why the SOFTWARE hive cannot be read, or "" when it can."""
    return "" if ctx.registry.has_hive("SOFTWARE") else ctx.registry.why_unavailable("SOFTWARE")


@rule(
    OS,
    id="os.identify",
    title="Identify OS version / edition / build (drives all version-dependent checks)",
    severity=Severity.INFORMATIONAL,
    rationale="Which rules apply, and which column of the update table, depends on the Windows release. "
    'Windows 11 still says "Windows 10" in ProductName; the build (>= 22000) tells them apart.',
)
def check_identify(ctx: AuditContext) -> Outcome:
    osf = _need_os(ctx)
    if osf.product_name is None and osf.build is None:
        raise NotChecked(_software_missing(ctx) or "ProductName and CurrentBuild are not in the SOFTWARE hive")
    ubr = f".{osf.ubr}" if osf.ubr is not None else ""
    parts = [osf.name or "Windows (no ProductName)", f"{osf.current_version or '?'}.{osf.build}{ubr}"]
    if osf.display_version:
        parts.append(osf.display_version)
    parts.append(osf.architecture or "architecture unknown")
    parts.append(osf.installation_type or osf.product_type or "type unknown")
    ev = tuple(
        os_evidence(ctx, n, v)
        for n, v in (
            ("ProductName", osf.product_name),
            ("CurrentBuild", osf.build),
            ("UBR", osf.ubr),
            ("EditionID", osf.edition_id),
        )
    )
    return Outcome(Status.PASS, ", ".join(parts), None, osf.to_dict(), ev)


@rule(
    OS,
    id="os.architecture_64bit",
    title="OS is 64-bit (x64)",
    severity=Severity.REQUIRED,
    rationale="The doc's procedure is for 64-bit Windows. A 32-bit Windows runs in Azure only as a specialized "
    "disk (KB4021388, see os.x86_specialized_only), so x86 is a warning here, not a failure.",
    remediation="Migrate to a 64-bit Windows version",
    references=(KB4021388,),
)
def check_architecture(ctx: AuditContext) -> Outcome:
    osf = _need_os(ctx, "AMD64")
    arch = osf.architecture
    ev: tuple[Evidence, ...] = (os_evidence(ctx, "PROCESSOR_ARCHITECTURE", arch, "SYSTEM", osinfo.ENVIRONMENT),)
    if arch is None:
        wow64 = ctx.files is not None and ctx.files.is_dir(r"Windows\SysWOW64")
        wow_ev = Evidence(
            source="file",
            key=r"Windows\SysWOW64",
            actual=True if wow64 else None,
            present=wow64,
            note="only 64-bit Windows has a 32-bit subsystem folder",
        )
        try:
            read_value(ctx, osinfo.ENVIRONMENT, "PROCESSOR_ARCHITECTURE")
        except HiveUnavailable as err:
            # SYSTEM unread: PROCESSOR_ARCHITECTURE is unknown, not absent. SysWOW64 shows a 64-bit Windows,
            # but Arm64 Windows has one too, and Arm64 is not the x64 this rule asks for.
            seen = "Windows\\SysWOW64 exists (64-bit, x64 or Arm64)" if wow64 else "no Windows\\SysWOW64 seen"
            raise NotChecked(
                err.reason,
                f"{seen}; not checked, PROCESSOR_ARCHITECTURE could not be read: {err.reason}",
                expected="AMD64",
                evidence=(wow_ev,) if wow64 else (),
            ) from err
        if wow64:
            return Outcome(
                Status.PASS,
                "64-bit Windows (PROCESSOR_ARCHITECTURE is not set, but Windows\\SysWOW64 exists)",
                "AMD64",
                "64-bit",
                (*ev, wow_ev),
            )
        raise NotChecked(
            "PROCESSOR_ARCHITECTURE absent",
            "PROCESSOR_ARCHITECTURE is not set in Session Manager\\Environment",
            expected="AMD64",
            evidence=ev,
        )
    if arch.upper() == "AMD64":
        return Outcome(Status.PASS, "64-bit Windows (AMD64)", "AMD64", arch, ev)
    if arch.upper() == "X86":
        return Outcome(
            Status.WARNING,
            "32-bit Windows (x86): supported only as a specialized disk, with 1 GB of "
            "usable memory on client editions (see os.x86_specialized_only)",
            "AMD64",
            arch,
            ev,
        )
    return Outcome(
        Status.WARNING,
        f"{arch} Windows: the doc covers x64 only; Arm64 runs only on Arm64 VM sizes (generation 2)",
        "AMD64",
        arch,
        ev,
    )


@rule(
    OS,
    id="os.x86_specialized_only",
    title="32-bit Windows: only specialized VHDs are supported; 1 GB usable-memory limitation",
    severity=Severity.REQUIRED,
    rationale="KB4021388: only specialized 32-bit VHDs are supported, generalized images do not work in Azure; "
    "the platform makes only 1 GB of memory available to a 32-bit guest, notably client SKUs "
    "(Windows 7, Windows 10).",
    source="KB4021388, Support for 32-bit operating systems in Azure virtual machines (ms.date 2019-09-18)",
    remediation="Upload the 32-bit disk as a specialized OS disk (no sysprep), or migrate to a 64-bit Windows",
    references=(KB4021388,),
)
def check_x86_specialized(ctx: AuditContext) -> Outcome:
    osf = _need_os(ctx)
    if osf.architecture is None:
        raise NotChecked(
            "PROCESSOR_ARCHITECTURE absent", "PROCESSOR_ARCHITECTURE is not set", expected="x86 -> specialized"
        )
    if osf.architecture.upper() != "X86":
        raise NotApplicable(f"the OS is {osf.architecture}, not 32-bit")
    state, origin = image_state(ctx)
    facts = sysprep_of(ctx)
    ev = (
        Evidence(
            source="facts",
            key="sysprep",
            actual=state if state != "unknown" else None,
            present=state != "unknown",
            note="; ".join(facts.evidence) or origin,
        ),
        os_evidence(ctx, "PROCESSOR_ARCHITECTURE", osf.architecture, "SYSTEM", osinfo.ENVIRONMENT),
    )
    client = osf.is_server is False
    memory = (
        " On this client edition Azure makes only 1 GB of memory usable; the rest shows as reserved." if client else ""
    )
    if state == "generalized":
        return Outcome(
            Status.FAIL,
            f"a generalized 32-bit image ({origin}): Azure supports 32-bit Windows only as a specialized disk.{memory}",
            "specialized",
            state,
            ev,
        )
    if state == "specialized":
        if client:
            return Outcome(Status.WARNING, f"specialized 32-bit image, supported.{memory}", "specialized", state, ev)
        return Outcome(Status.PASS, "specialized 32-bit image, supported (specialized only)", "specialized", state, ev)
    return Outcome(
        Status.WARNING,
        f"32-bit image whose Sysprep state is {state}: upload it only as a specialized disk.{memory}",
        "specialized",
        state,
        ev,
    )


@rule(
    OS,
    id="os.min_version",
    title="OS is Windows Server 2008 R2 SP1 / Windows 7 SP1 or later",
    severity=Severity.REQUIRED,
    rationale="The doc covers Windows Server 2008 R2 and later; the update table's oldest column is SP1 "
    "(build 7601). Windows Server 2008 (6.0) runs only as a specialized image (KB4021388 links).",
    remediation="Install Service Pack 1 (build 7601), or upgrade the OS",
)
def check_min_version(ctx: AuditContext) -> Outcome:
    osf = _need_os(ctx, ">= 7601")
    build = osf.build
    ev = (os_evidence(ctx, "CurrentBuild", build),)
    if build is None:
        why = _software_missing(ctx) or "CurrentBuild is not in the SOFTWARE hive"
        raise NotChecked(why, expected=">= 7601", evidence=ev)
    if build >= 7601:
        return Outcome(Status.PASS, f"{build_name(build)}", ">= 7601", build, ev)
    if build == 7600:
        return Outcome(
            Status.FAIL,
            "Windows 7 / Server 2008 R2 without Service Pack 1 (build 7600): install SP1",
            ">= 7601",
            build,
            ev,
        )
    if 6000 <= build <= 6003:
        return Outcome(
            Status.WARNING,
            f"{build_name(build)}: supported only as a specialized image, out of support",
            ">= 7601",
            build,
            ev,
        )
    return Outcome(Status.FAIL, f"{build_name(build)} is older than anything Azure runs", ">= 7601", build, ev)


@rule(
    OS,
    id="os.gen2_prerequisites",
    title="Gen2 (GPT/UEFI) image runs a Gen2-capable OS",
    severity=Severity.REQUIRED,
    rationale="Generation 2 VMs boot UEFI, which Windows supports from Windows Server 2012 / Windows 8 (build "
    "9200), 64-bit only (generation-2.md).",
    source="intro (Azure supports generation 1 and generation 2)",
    baselines=("azure-2022",),
    remediation="Upload as generation 1 from an MBR disk, or upgrade to a 64-bit Windows Server 2012 or later",
    references=(GEN2_DOC,),
)
def check_gen2(ctx: AuditContext) -> Outcome:
    if ctx.facts.generation != 2:
        raise NotApplicable(f"the image is generation {ctx.facts.generation or 'unknown'}, not 2")
    osf = _need_os(ctx)
    ev = (
        os_evidence(ctx, "CurrentBuild", osf.build),
        os_evidence(ctx, "PROCESSOR_ARCHITECTURE", osf.architecture, "SYSTEM", osinfo.ENVIRONMENT),
    )
    problems = []
    if osf.is_64bit is False:
        problems.append(f"{osf.architecture} is not 64-bit")
    if osf.build is not None and osf.build < 9200:
        problems.append(f"{build_name(osf.build)} predates UEFI boot support (9200)")
    if problems:
        return Outcome(
            Status.FAIL,
            "a generation 2 image, but " + "; ".join(problems),
            "64-bit, build >= 9200",
            {"architecture": osf.architecture, "build": osf.build},
            ev,
        )
    if osf.is_64bit is None or osf.build is None:
        raise NotChecked(
            "architecture or build not read",
            "the architecture or build is unknown",
            expected="64-bit, build >= 9200",
            evidence=ev,
        )
    return Outcome(
        Status.PASS,
        f"64-bit {build_name(osf.build)} boots as generation 2",
        "64-bit, build >= 9200",
        {"architecture": osf.architecture, "build": osf.build},
        ev,
    )


@rule(
    OS,
    id="os.domain_controller",
    title="Domain controller image: extra preparation needed",
    severity=Severity.ADVISORY,
    rationale="A domain controller needs the DC-specific steps (KB2904015) and a known DSRM password; it cannot "
    "be generalized (Sysprep does not support the AD DS role).",
    source="intro (domain controller note)",
    remediation="Follow KB2904015's extra steps; make sure the DSRM password is known",
    references=(KB2904015,),
)
def check_domain_controller(ctx: AuditContext) -> Outcome:
    if not ctx.registry.has_hive("SYSTEM"):
        raise NotChecked(ctx.registry.why_unavailable("SYSTEM"))
    read = read_value(ctx, osinfo.PRODUCT_OPTIONS, "ProductType")
    ptype = read.value
    ntds = ctx.registry.key(osinfo.SERVICES + r"\NTDS\Parameters")
    ev = (
        read.evidence,
        key_evidence(
            ctx,
            osinfo.SERVICES + r"\NTDS\Parameters",
            ntds,
            note="the NTDS service has parameters" if ntds is not None else "",
        ),
    )
    is_dc = (isinstance(ptype.data, str) and ptype.data.lower() == "lanmannt") if ptype else False
    if is_dc or ntds is not None:
        why = "ProductType is LanmanNT" if is_dc else "the NTDS service has Parameters"
        state, _ = image_state(ctx)
        extra = " It must not be generalized." if state == "generalized" else ""
        return Outcome(
            Status.MANUAL,
            f"a domain controller ({why}): follow the DC steps of KB2904015 and make sure "
            f"the DSRM password is known.{extra}",
            "not a DC, or the DC steps done",
            "domain controller",
            ev,
        )
    if ptype is None:
        raise NotChecked("ProductType absent", "ProductType is not set", expected="not a DC", evidence=ev)
    return Outcome(
        Status.PASS,
        f"not a domain controller (ProductType {ptype.data!s}, no NTDS parameters)",
        "not a DC",
        ptype.data,
        ev,
    )
