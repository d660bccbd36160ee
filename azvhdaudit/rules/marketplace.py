"""Azure Marketplace pre-flight: what Microsoft's VM certification checks that can be read from the image offline.

Publishers of a VM offer pass a certification that runs a test tool against a live VM over WinRM. The profile
``azure-marketplace`` runs the ``azure-2022`` and ``azure-platform`` rules (RDP enabled, the VHD format rules: fixed,
the ``conectix`` footer, a whole number of MiB, file = size + 512, the first MiB before the first partition,
Sysprep ...) and the rules of this module: what certification asks beyond them.

References (each rule cites the ones it rests on):

- "Troubleshoot virtual machine certification" (``azure-vm-certification-faq.yml``, ms.date 2021-09-27,
  MicrosoftDocs/azure-docs articles/marketplace, commit 088db8b; published at learn.microsoft.com/partner-center/
  marketplace-offers/azure-vm-certification-faq): "Windows test cases" (1 OS architecture: "Azure supports only
  64-bit operating systems"; 3-16 the server roles and features "isn't yet supported"; 9 "BitLocker Drive
  Encryption isn't supported on the operating system hard disk, but it might be used on data disks"), "VHD
  specifications" ("The VHD's virtual size is at least 20 MB"), "Data disk size verification" ("Data disk requests
  with a size greater than 1023 gigabytes (GB) won't be approved"), "OS disk size validation" (Windows "30 GB to
  250 GB"), "WannaCry patch verification test for Windows" (srv.sys / srv2.sys minimum versions), "Software
  compliance for Windows" (no SQL Server installed from the publisher's own media; Visual Studio and Office need
  prior approval), "Default credentials".
  Copies disagree: the same page under its older file name ``azure-vm-create-certification-faq.yml`` (same
  ms.date, commit 11b2a37) and its 2020 form ``azure-vm-certification-issues-solutions.md`` (ms.date 2020-10-14) list
  17 Windows test cases, the 17th being "Hyper-V Server role isn't yet supported"; the copy under the file name
  the page is published at today lists 16, without Hyper-V, and is the one followed here. The numbers agree where
  the copies state them (64-bit; Windows 30 GB to 250 GB; 1023 GB; the four srv.sys versions; Windows Server 2019
  "NA"); the 20 MB minimum is in the two 2021 copies only, and the Linux OS disk row (1 GB or 30 GB to 1023 GB),
  not used here, differs.
- "Plan a virtual machine offer" (``marketplace-virtual-machines.md``, ms.date 2021-11-17, learn.microsoft.com/
  partner-center/marketplace-offers/marketplace-virtual-machines), "Technical requirements": "You can include up
  to 16 data disks".
- "Remote Desktop license server isn't available when you connect to an Azure VM" (learn.microsoft.com/
  troubleshoot/azure/virtual-machines/windows/troubleshoot-rdp-no-license-server, ms.date 2018-10-23; MicrosoftDocs/
  azure-docs articles/virtual-machines/troubleshooting/troubleshoot-rdp-no-license-server.md) reads a server role's
  state from ``HKLM\\SOFTWARE\\Microsoft\\ServerManager\\ServicingStorage\\ServerComponentCache\\<name>``
  ``InstallState``: 0 means the role is not installed; an installed one is 1. The names are those of
  ``Get-WindowsFeature``.

Gigabytes are read as GiB, the unit Azure sizes disks in (a 30 GiB "smalldisk" Marketplace image is 30 GB here).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from azvhdaudit import osinfo
from azvhdaudit.errors import NotApplicable, NotChecked
from azvhdaudit.facts import ContainerFacts, OSFacts, PartitionFacts
from azvhdaudit.pe import format_version
from azvhdaudit.registry.model import RegKey
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.manual import ManualStep, register_steps
from azvhdaudit.rules.os import build_name, os_of, sysprep_of
from azvhdaudit.rules.values import HiveUnavailable, key_evidence, open_key, printable, ps_arg, sh_arg
from azvhdaudit.rules.vm import VM_ROLE, VMContext

__all__ = [
    "CERT_FAQ",
    "PLAN_VM_OFFER",
    "MARKETPLACE",
    "GROUP",
    "OS_DISK_MIN",
    "OS_DISK_MAX",
    "DATA_DISK_MIN",
    "DATA_DISK_MAX",
    "MAX_DATA_DISKS",
    "SRV_MINIMUMS",
    "UNSUPPORTED_FEATURES",
    "ROLE_SERVICES",
    "SERVER_COMPONENT_CACHE",
    "SQL_INSTANCE_NAMES",
]

CERT_FAQ = "https://learn.microsoft.com/partner-center/marketplace-offers/azure-vm-certification-faq"
PLAN_VM_OFFER = "https://learn.microsoft.com/partner-center/marketplace-offers/marketplace-virtual-machines"
ROLE_STATE_DOC = (
    "https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/troubleshoot-rdp-no-license-server"
)
APPROVED_BASE = "https://learn.microsoft.com/partner-center/marketplace-offers/azure-vm-use-approved-base"

_FAQ = (
    "Troubleshoot virtual machine certification (learn.microsoft.com/partner-center/marketplace-offers/"
    "azure-vm-certification-faq, ms.date 2021-09-27)"
)
_PLAN = (
    "Plan a virtual machine offer (learn.microsoft.com/partner-center/marketplace-offers/"
    "marketplace-virtual-machines, ms.date 2021-11-17)"
)

#: the baseline this module's rules belong to
MARKETPLACE = ("azure-marketplace",)
#: the area's rules: the Marketplace baseline, the certification FAQ as their document
#: (:data:`azvhdaudit.rules.base.BASELINE_DOCUMENTS`)
GROUP = Group(area="marketplace", baselines=MARKETPLACE)

MiB = 1024 * 1024
GiB = 1024 * MiB
#: "OS disk size validation": Windows "30 GB to 250 GB"
OS_DISK_MIN = 30 * GiB
OS_DISK_MAX = 250 * GiB
#: "VHD specifications": "The VHD's virtual size is at least 20 MB"
DATA_DISK_MIN = 20 * MiB
#: "Data disk size verification": greater than 1023 GB "won't be approved"
DATA_DISK_MAX = 1023 * GiB
#: "Plan a virtual machine offer": "You can include up to 16 data disks"
MAX_DATA_DISKS = 16

#: "WannaCry patch verification test for Windows": build -> (the table's OS, the minimum srv.sys / srv2.sys
#: version, the March 2017 updates that carry it). Windows Server 2019 (17763) is "NA": no minimum.
SRV_MINIMUMS: dict[int, tuple[str, tuple[int, int, int, int], str]] = {
    7601: ("Windows Server 2008 R2", (6, 1, 7601, 23689), "KB4012212 or KB4012215"),
    9200: ("Windows Server 2012", (6, 2, 9200, 22099), "KB4012214 or KB4012217"),
    9600: ("Windows Server 2012 R2", (6, 3, 9600, 18604), "KB4012213 or KB4012216"),
    14393: ("Windows Server 2016", (10, 0, 14393, 953), "KB4013429"),
}
SRV_NO_MINIMUM_FROM = 17763
SRV_FILES = (r"Windows\System32\drivers\srv.sys", r"Windows\System32\drivers\srv2.sys")

#: the certification's Windows test cases 3-16 that name a server role or feature -> the ``Get-WindowsFeature``
#: names that install it (the role and its role services)
UNSUPPORTED_FEATURES: dict[str, tuple[str, ...]] = {
    "Failover cluster": ("Failover-Clustering",),
    "DHCP Server": ("DHCP",),
    "Remote Access (DirectAccess) Server": ("RemoteAccess", "DirectAccess-VPN"),
    "Rights Management Services": ("ADRMS", "ADRMS-Server"),
    "Windows Deployment Services": ("WDS", "WDS-Deployment", "WDS-Transport"),
    "Internet Storage Name Server": ("ISNS",),
    "Multipath I/O": ("Multipath-IO",),
    "Network Load Balancing": ("NLB",),
    "Peer Name Resolution Protocol": ("PNRP",),
    "SNMP Services": ("SNMP-Service",),
    "Windows Internet Name Service": ("WINS",),
    "Wireless LAN Service": ("Wireless-Networking",),
}
#: services that exist only once the role is installed: positive evidence where the Server Manager cache is absent
#: (never evidence of absence)
ROLE_SERVICES: dict[str, str] = {
    "ClusSvc": "Failover cluster",
    "DHCPServer": "DHCP Server",
    "RaMgmtSvc": "Remote Access (DirectAccess) Server",
    "WDSServer": "Windows Deployment Services",
    "SNMP": "SNMP Services",
    "WINS": "Windows Internet Name Service",
}
SERVER_COMPONENT_CACHE = r"SOFTWARE\Microsoft\ServerManager\ServicingStorage\ServerComponentCache"
#: ``InstallState`` of an installed component
INSTALLED = 1
#: the bound on the walk over the component cache's subkeys
_MAX_COMPONENTS = 4096

SQL_INSTANCE_NAMES = (
    r"SOFTWARE\Microsoft\Microsoft SQL Server\Instance Names",
    r"SOFTWARE\WOW6432Node\Microsoft\Microsoft SQL Server\Instance Names",
)
UNINSTALL_KEYS = (osinfo.UNINSTALL, r"SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall")
#: products the FAQ says need the support team's prior approval ("Visual Studio or any Office-licensed product")
_LICENSED = (
    r"^(Microsoft )?Visual Studio (Community|Professional|Enterprise|Team Explorer|Build Tools|\d{4}\b(?!.*"
    r"(Tools for|Redistributable|Runtime|Shell)))|^Microsoft (Office|365 Apps|Project|Visio)\b(?!.*(Runtime|"
    r"Redistributable|Interop|Language Pack|Proofing|Click-to-Run (Extensibility|Licensing|Localization)))"
)


@functools.cache
def _licensed() -> re.Pattern[str]:
    """:data:`_LICENSED`, compiled when the Marketplace profile first asks (not when the rules are loaded)."""
    return re.compile(_LICENSED, re.IGNORECASE)


_MAX_PRODUCTS = 10_000


# --- helpers ---------------------------------------------------------------------------------------------------


def _fmt(size: int) -> str:
    if size % GiB == 0:
        return f"{size // GiB} GiB"
    if size % MiB == 0:
        return f"{size // MiB} MiB"
    return f"{size / GiB:.3f} GiB"


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1] or "disk"


_QEMU = {"vhd": "vpc", "vhdx": "vhdx", "vmdk": "vmdk", "qcow2": "qcow2", "raw": "raw"}


def _grow(c: ContainerFacts, target: int) -> str:
    name = _name(c.path)
    if c.format in ("vhd", "vhdx"):
        return f"Resize-VHD -Path {ps_arg(name)} -SizeBytes {target}"
    return f"qemu-img resize -f {_QEMU.get(c.format, c.format)} {sh_arg(name)} {target}"


def _shrink(c: ContainerFacts, target: int) -> list[str]:
    """Shrink the container to ``target`` bytes: Resize-VHD shrinks only a VHDX, so a VHD goes through one."""
    name = _name(c.path)
    if c.format == "vhdx":
        return [f"Resize-VHD -Path {ps_arg(name)} -SizeBytes {target}"]
    if c.format == "vhd":
        stem = name.rsplit(".", 1)[0] if "." in name else name
        tmp, out = f"{stem}-shrink.vhdx", f"{stem}-{target // GiB}gib.vhd"
        return [
            f"Convert-VHD -Path {ps_arg(name)} -DestinationPath {ps_arg(tmp)}",
            f"Resize-VHD -Path {ps_arg(tmp)} -SizeBytes {target}",
            f"Convert-VHD -Path {ps_arg(tmp)} -DestinationPath {ps_arg(out)} -VHDType Fixed",
        ]
    return [f"qemu-img resize --shrink -f {_QEMU.get(c.format, c.format)} {sh_arg(name)} {target}"]


def _container_evidence(c: ContainerFacts, **actual: Any) -> Evidence:
    return Evidence(source="container", key=c.path, actual=dict(actual), present=True)


def _need_os(ctx: AuditContext) -> OSFacts:
    found = os_of(ctx)
    if found is None:
        raise NotChecked(ctx.registry.why_unavailable("SOFTWARE") or "the OS facts were not read")
    return found


def _software_verified(ctx: AuditContext) -> None:
    """Raise :class:`NotChecked` unless SOFTWARE is readable and is a SOFTWARE hive (it holds Windows NT\\
    CurrentVersion): the absence of a key in it is evidence only then."""
    try:
        key = open_key(ctx, osinfo.CURRENT_VERSION)
    except HiveUnavailable as err:
        raise NotChecked(err.reason) from err
    if key is None or (key.value("CurrentBuild") is None and key.value("CurrentBuildNumber") is None):
        raise NotChecked(
            "the SOFTWARE hive holds no Microsoft\\Windows NT\\CurrentVersion build: absent keys in it prove nothing"
        )


# --- 64-bit ----------------------------------------------------------------------------------------------------


@rule(
    GROUP,
    id="marketplace.os_64bit",
    title="Windows is 64-bit: the kernel's PE machine type is x64 or Arm64",
    severity=Severity.REQUIRED,
    rationale='Certification\'s Windows test case 1, "OS architecture": "Azure supports only 64-bit operating '
    'systems." The kernel itself decides, not PROCESSOR_ARCHITECTURE: the machine type in the file '
    "header of Windows\\System32\\ntoskrnl.exe (0x8664 x64, 0xAA64 Arm64). os.architecture_64bit only "
    "warns on a 32-bit Windows, which runs in Azure as a specialized disk; certification refuses it.",
    source=f"{_FAQ}: Toolkit test case execution failed > Windows test cases (1, OS architecture)",
    remediation="Build the offer's image on a 64-bit Windows (x64 or Arm64)",
)
def check_os_64bit(ctx: AuditContext) -> Outcome:
    kernel = ctx.facts.extra.get("kernel")
    if not isinstance(kernel, dict):
        # the data path left the kernel facts out (hives given directly): read the header now
        kernel = ctx.cached("osinfo.kernel", lambda: osinfo.kernel_facts(ctx.files))
    machine = kernel.get("machine")
    if machine is None:
        raise NotChecked(f"the kernel's machine type was not read: {kernel.get('error') or 'no kernel facts'}")
    value = kernel.get("machine_value")
    ev = (
        Evidence(
            source="file",
            key=str(kernel.get("path") or osinfo.KERNEL),
            value_name="FileHeader.Machine",
            actual=machine,
            raw=f"{value:04x}" if isinstance(value, int) else None,
            present=True,
            note="PE/COFF file header machine type",
        ),
    )
    if machine == "AMD64":
        return Outcome(
            Status.PASS, "the kernel is x64 (AMD64, machine 0x8664): a 64-bit Windows", "x64 or Arm64", machine, ev
        )
    if machine == "ARM64":
        return Outcome(
            Status.PASS,
            "the kernel is Arm64 (machine 0xAA64): a 64-bit Windows; the offer's plan runs on Arm64 VM sizes only",
            "x64 or Arm64",
            machine,
            ev,
        )
    return Outcome(
        Status.FAIL,
        f"the kernel is {machine}: certification accepts only 64-bit Windows (x64 or Arm64)",
        "x64 or Arm64",
        machine,
        ev,
    )


# --- generalized ------------------------------------------------------------------------------------------------


@rule(
    GROUP,
    id="marketplace.generalized",
    title="The image is generalized (Sysprep /generalize /oobe)",
    severity=Severity.REQUIRED,
    rationale='"VM not generalized": "If all images that are taken from Azure Marketplace are to be reused, the '
    'operating system VHD must be generalized" (for Windows, with Sysprep); a VM provisioning failure '
    '"Provisioning timeout or not properly generalized" rejects the image. sysprep.state of the '
    "azure-2022 baseline reports a specialized image as a pass, since Azure runs specialized disks; a "
    "Marketplace image must be generalized. The state is the registry's ImageState (SOFTWARE), with "
    "State.ini and SYSTEM\\Setup standing in only where ImageState is absent.",
    source=f"{_FAQ}: VM not generalized; VM provisioning issue",
    remediation=r"%windir%\System32\Sysprep\sysprep.exe /generalize /oobe /shutdown  (inside the VM), then capture "
    "the image without starting the VM again",
)
def check_generalized(ctx: AuditContext) -> Outcome:
    if not ctx.registry.has_hive("SOFTWARE"):
        raise NotChecked(f"ImageState not read: {ctx.registry.why_unavailable('SOFTWARE')}")
    facts = sysprep_of(ctx)
    state = facts.state or "unknown"
    why = "; ".join(str(e) for e in facts.evidence) or "no Sysprep evidence"
    ev = (
        Evidence(
            source="facts",
            key="sysprep",
            actual=state if state != "unknown" else None,
            present=state != "unknown",
            derived=True,
            note=why,
        ),
    )
    if state == "unknown":
        raise NotChecked("no ImageState, State.ini or SYSTEM\\Setup evidence of the Sysprep state")
    if ctx.options.image_type == "specialized":
        return Outcome(
            Status.FAIL,
            f"the image is to be uploaded specialized (the image_type option; the image is "
            f"{state}): a Marketplace image is published generalized",
            "generalized",
            state,
            ev,
        )
    if state == "generalized":
        return Outcome(Status.PASS, f"the image is generalized ({why})", "generalized", state, ev)
    if state == "undeployable":
        return Outcome(
            Status.FAIL,
            f"the image is in no deployable state ({why}): a sysprep run did not finish; run it again to completion",
            "generalized",
            state,
            ev,
        )
    return Outcome(
        Status.FAIL,
        f"the image is {state} ({why}): certification provisions a generalized image only",
        "generalized",
        state,
        ev,
    )


# --- BitLocker on the OS disk ----------------------------------------------------------------------------------


def _encrypted(parts: list[PartitionFacts]) -> list[PartitionFacts]:
    return [p for p in parts if p.encrypted or p.filesystem == "bitlocker"]


@rule(
    GROUP,
    id="marketplace.os_disk_not_encrypted",
    hives=(),
    needs_guest=False,
    title="No BitLocker-encrypted volume on the OS disk",
    severity=Severity.REQUIRED,
    rationale="Certification's Windows test case 9: \"BitLocker Drive Encryption isn't supported on the operating "
    'system hard disk, but it might be used on data disks." Every partition of the OS disk is judged by '
    "its BitLocker signature (-FVE-FS-), the system and recovery partitions too; data disks are not "
    "(disk.os_volume_not_bitlocker of the azure-2022 baseline fails them as well, for Sysprep).",
    source=f"{_FAQ}: Windows test cases (9, BitLocker Drive Encryption)",
    remediation="manage-bde -off C:  (inside the VM; wait until manage-bde -status shows Fully Decrypted), then "
    "generalize and capture the image again",
)
def check_os_disk_not_encrypted(ctx: AuditContext) -> Outcome:
    facts = ctx.facts
    if not facts.partitions:
        raise NotChecked("no partitions of the OS disk were read")
    enc = _encrypted(facts.partitions)
    actual = {"partitions": len(facts.partitions), "encrypted": [p.index for p in enc]}
    ev = (
        Evidence(
            source="facts",
            key="partitions",
            actual=actual,
            present=True,
            note="BitLocker signature -FVE-FS- in a volume boot sector",
        ),
    )
    if enc or facts.bitlocker:
        where = ", ".join(f"#{p.index} ({p.type_name}, offset {p.offset})" for p in enc) or "the Windows volume"
        windows = any(p.index == facts.windows_partition for p in enc) or facts.windows_partition is None
        fix = (
            "manage-bde -off C:  (inside the VM; wait for Fully Decrypted), then generalize and capture again"
            if windows
            else f"Decrypt partition {where} inside the VM (manage-bde -off <its drive letter>), then "
            "generalize and capture again"
        )
        return Outcome(
            Status.FAIL,
            f"BitLocker-encrypted partition on the OS disk: {where}; certification does not "
            "support an encrypted OS disk",
            "no encrypted partition",
            actual,
            ev,
            remediation=fix,
        )
    return Outcome(
        Status.PASS,
        f"none of the OS disk's {len(facts.partitions)} partitions carries the BitLocker signature",
        "no encrypted partition",
        actual,
        ev,
    )


# --- disk sizes --------------------------------------------------------------------------------------------------


def _disk_size(ctx: AuditContext, minimum: int, maximum: int) -> tuple[Any, int, int | None, tuple[Evidence], str]:
    """What a disk size rule judges: the container, its virtual size, where the partitions end, the evidence and
    the expected range; "not checked" when the size was not read."""
    c = ctx.facts.container
    size = c.virtual_size
    if size <= 0:
        raise NotChecked("the container's virtual size was not read")
    used = max((p.offset + p.size for p in ctx.facts.partitions), default=None)
    actual = {"virtual_size": size, "partitions_end": used}
    ev = (_container_evidence(c, **actual, minimum=minimum, maximum=maximum),)
    return c, size, used, ev, f"{minimum} <= size <= {maximum}"


@rule(
    GROUP,
    id="marketplace.os_disk_size",
    hives=(),
    needs_guest=False,
    title="OS disk virtual size from 30 GB to 250 GB (Windows)",
    severity=Severity.REQUIRED,
    rationale='"OS disk size validation": "verify that the OS disk size is within the limitation for Linux or '
    "Windows\"; Windows: 30 GB to 250 GB (read as GiB, the unit Azure sizes disks in; Microsoft's "
    '"smalldisk" images are 30 GiB). Larger disks need an exception from the support team. The '
    "azure-2022 rule disk.os_max_size allows up to 2 TiB and has no minimum.",
    source=f"{_FAQ}: OS disk size validation",
    remediation="Resize-VHD -Path <image> -SizeBytes <30-250 GiB>, then extend or shrink the Windows partition",
)
def check_os_disk_size(ctx: AuditContext) -> Outcome:
    c, size, used, ev, expected = _disk_size(ctx, OS_DISK_MIN, OS_DISK_MAX)
    if size < OS_DISK_MIN:
        fix = [
            _grow(c, OS_DISK_MIN),
            "then inside the VM: Resize-Partition -DriveLetter C -Size (Get-PartitionSupportedSize -DriveLetter C)"
            ".SizeMax",
        ]
        return Outcome(
            Status.FAIL,
            f"the OS disk is {_fmt(size)}, under the 30 GiB certification asks of a Windows OS disk; grow it to 30 GiB",
            expected,
            size,
            ev,
            remediation="\n".join(fix),
        )
    if size > OS_DISK_MAX:
        fix = []
        if used is not None and used > OS_DISK_MAX:
            fix.append(
                f"inside the VM: shrink the last partition so the partitions end by {OS_DISK_MAX} bytes "
                f"(they end at {used}): Resize-Partition -DriveLetter C -Size <its size minus "
                f"{used - OS_DISK_MAX} bytes or more>"
            )
        fix += _shrink(c, OS_DISK_MAX)
        return Outcome(
            Status.FAIL,
            f"the OS disk is {_fmt(size)}, over the 250 GiB certification allows a Windows OS "
            "disk without an exception from the support team",
            expected,
            size,
            ev,
            remediation="\n".join(fix),
        )
    return Outcome(Status.PASS, f"the OS disk is {_fmt(size)}, within 30-250 GiB", expected, size, ev)


@rule(
    GROUP,
    id="marketplace.data_disk_size",
    hives=(),
    needs_guest=False,
    title="Data disk virtual size from 20 MB to 1023 GB",
    severity=Severity.REQUIRED,
    rationale='"Data disk size verification": "Data disk requests with a size greater than 1023 gigabytes (GB) '
    'won\'t be approved"; "VHD specifications": "The VHD\'s virtual size is at least 20 MB" (read as '
    "GiB and MiB). The azure-2022 rule disk.data_max_size allows 32,767 GiB.",
    source=f"{_FAQ}: Data disk size verification; VHD specifications",
    remediation="Resize-VHD -Path <data disk> -SizeBytes <20 MiB-1023 GiB>",
    disk_roles=("data",),
)
def check_data_disk_size(ctx: AuditContext) -> Outcome:
    c, size, used, ev, expected = _disk_size(ctx, DATA_DISK_MIN, DATA_DISK_MAX)
    if size < DATA_DISK_MIN:
        return Outcome(
            Status.FAIL,
            f"the data disk is {_fmt(size)}, under the 20 MiB every certified VHD needs",
            expected,
            size,
            ev,
            remediation=_grow(c, DATA_DISK_MIN),
        )
    if size > DATA_DISK_MAX:
        fix = []
        if used is not None and used > DATA_DISK_MAX:
            fix.append(
                f"shrink the data volume so the partitions end by {DATA_DISK_MAX} bytes (they end at {used}), "
                "or split the data over more disks"
            )
        fix += _shrink(c, DATA_DISK_MAX)
        return Outcome(
            Status.FAIL,
            f"the data disk is {_fmt(size)}, over the 1023 GiB certification approves",
            expected,
            size,
            ev,
            remediation="\n".join(fix),
        )
    return Outcome(Status.PASS, f"the data disk is {_fmt(size)}, within 20 MiB-1023 GiB", expected, size, ev)


@rule(
    GROUP,
    id="marketplace.data_disk_count",
    hives=(),
    needs_guest=False,
    title="At most 16 data disks",
    severity=Severity.REQUIRED,
    rationale='"Plan a virtual machine offer", Technical requirements: "You can include up to 16 data disks" '
    "(one VHD per data disk, even a blank one). Counted over the data disks given with the OS disk.",
    source=f"{_PLAN}: Technical requirements",
    remediation="Publish at most 16 data disks with the image; customers can attach more after deployment",
    references=(PLAN_VM_OFFER,),
    disk_roles=(VM_ROLE,),
)
def check_data_disk_count(ctx: AuditContext) -> Outcome:
    if not isinstance(ctx, VMContext):
        raise NotApplicable("a check across the VM's disks; it runs when an OS disk is audited with its data disks")
    names = [d.name for d in ctx.data_disks]
    ev = (
        Evidence(
            source="facts",
            key="data disks",
            actual=names,
            present=True,
            derived=True,
            note=f"{len(names)} data disk(s) given",
        ),
    )
    if len(names) > MAX_DATA_DISKS:
        drop = names[MAX_DATA_DISKS:]
        return Outcome(
            Status.FAIL,
            f"{len(names)} data disks: a VM offer's image holds at most {MAX_DATA_DISKS}",
            f"<= {MAX_DATA_DISKS}",
            len(names),
            ev,
            remediation=f"Leave {len(drop)} data disk(s) out of the image ({printable(', '.join(drop))}), or merge "
            "their data onto the others",
        )
    return Outcome(
        Status.PASS, f"{len(names)} data disk(s), within {MAX_DATA_DISKS}", f"<= {MAX_DATA_DISKS}", len(names), ev
    )


# --- srv.sys / srv2.sys (WannaCry) ---------------------------------------------------------------------------------


@rule(
    GROUP,
    id="marketplace.srv_version",
    title="srv.sys / srv2.sys at or past the WannaCry (MS17-010) minimum for the Windows Server release",
    severity=Severity.REQUIRED,
    rationale='"WannaCry patch verification test for Windows": "ensure that all Windows image requests are '
    "updated with the latest patch. You can verify the image file version from "
    'C:\\windows\\system32\\drivers\\srv.sys or srv2.sys": Windows Server 2008 R2 6.1.7601.23689, 2012 '
    '6.2.9200.22099, 2012 R2 6.3.9600.18604, 2016 10.0.14393.953; Windows Server 2019 "NA" (no '
    "mandatory version). srv.sys (the SMBv1 server MS17-010 fixed) is judged where present, srv2.sys "
    "where SMBv1 was removed. The release is taken from the build (Windows 7 SP1 shares 7601).",
    source=f"{_FAQ}: WannaCry patch verification test for Windows",
    remediation="Install the latest cumulative update (or monthly rollup) for the Windows release, then generalize "
    "and capture the image again",
    references=("https://learn.microsoft.com/security-updates/securitybulletins/2017/ms17-010",),
)
def check_srv_version(ctx: AuditContext) -> Outcome:
    osf = _need_os(ctx)
    if osf.build is None:
        raise NotChecked("the Windows build is not in the SOFTWARE hive (CurrentBuild)")
    if osf.build >= SRV_NO_MINIMUM_FROM:
        raise NotApplicable(f"{build_name(osf.build)}: the table sets no minimum from Windows Server 2019 on (NA)")
    row = SRV_MINIMUMS.get(osf.build)
    if row is None:
        raise NotApplicable(
            f"{build_name(osf.build)} is none of the table's releases (Windows Server 2008 R2, 2012, "
            "2012 R2, 2016, 2019)"
        )
    release, minimum, kbs = row
    if ctx.files is None:
        raise NotChecked("the Windows volume's files were not read")
    found: list[tuple[str, tuple[int, int, int, int] | None]] = []
    ev: list[Evidence] = []
    for path in SRV_FILES:
        present = ctx.files.exists(path)
        version = ctx.files.file_version(path) if present else None
        ev.append(
            Evidence(
                source="file",
                key=path,
                value_name="FileVersion",
                actual=format_version(version) if version else None,
                present=present,
                note=(
                    "version resource not readable"
                    if present and version is None
                    else f"{release} minimum {format_version(minimum)}"
                ),
            )
        )
        if present:
            found.append((path, version))
    judged = next(((p, v) for p, v in found if v is not None), None)
    if judged is None:
        why = (
            "neither srv.sys nor srv2.sys exists in Windows\\System32\\drivers"
            if not found
            else "the version resource of " + " and ".join(_name(p) for p, _ in found) + " could not be read"
        )
        raise NotChecked(why)
    path, version = judged
    assert version is not None
    text = format_version(version)
    if version[:3] != minimum[:3]:
        raise NotChecked(
            f"{_name(path)} is {text}, not of the {format_version(minimum[:3])} line the table gives for "
            f"{release}: the file does not belong to this build"
        )
    if version < minimum:
        return Outcome(
            Status.FAIL,
            f"{_name(path)} is {text}, older than the {format_version(minimum)} certification "
            f"asks of {release}: the image lacks the WannaCry (MS17-010) fix",
            format_version(minimum),
            text,
            tuple(ev),
            remediation=f"Install the latest cumulative update for {release} (MS17-010 came with {kbs}; "
            "any later one carries it), then generalize and capture the image again",
        )
    return Outcome(
        Status.PASS,
        f"{_name(path)} is {text}, at or past {format_version(minimum)} ({release})",
        format_version(minimum),
        text,
        tuple(ev),
    )


# --- server roles and features -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Component:
    name: str
    install_state: Any


def _component_cache(ctx: AuditContext) -> RegKey | None:
    try:
        return open_key(ctx, SERVER_COMPONENT_CACHE)
    except HiveUnavailable as err:
        raise NotChecked(err.reason) from err


def _flagged(names: list[str]) -> list[tuple[str, str]]:
    """(test case, feature name) for each name the certification flags, in the table's order."""
    lower = {n.lower(): n for n in names}
    found = []
    for case, features in UNSUPPORTED_FEATURES.items():
        for feature in features:
            if feature.lower() in lower:
                found.append((case, lower[feature.lower()]))
    return found


def _uninstall_fix(ctx: AuditContext, features: list[str]) -> str:
    # the names as the image spells them: each a bare word or a quoted literal, never text PowerShell reads further
    names = ",".join(ps_arg(f) for f in dict.fromkeys(features))
    c = ctx.facts.container
    lines = [f"Uninstall-WindowsFeature -Name {names} -Remove  (inside the VM, then generalize and capture again)"]
    if c.format in ("vhd", "vhdx") and not c.is_differencing:
        lines.append(f"or offline, on the image: Uninstall-WindowsFeature -Name {names} -Vhd {ps_arg(_name(c.path))}")
    return "\n".join(lines)


def _installed_components(cache: RegKey) -> list[_Component]:
    wanted = {f.lower() for features in UNSUPPORTED_FEATURES.values() for f in features}
    subkeys = cache.subkeys()
    if len(subkeys) > _MAX_COMPONENTS:
        raise NotChecked(f"ServerComponentCache holds {len(subkeys)} subkeys, more than the {_MAX_COMPONENTS} read")
    return [
        _Component(k.name, state.data if (state := k.value("InstallState")) is not None else None)
        for k in subkeys
        if k.name.lower() in wanted
    ]


def _role_services(ctx: AuditContext) -> list[tuple[str, str]]:
    """(test case, service) for each role-only service registered in the current control set."""
    try:
        services = open_key(ctx, osinfo.SERVICES)
    except HiveUnavailable:
        return []
    if services is None:
        return []
    found = []
    for name, case in ROLE_SERVICES.items():
        if services.subkey(name) is not None:
            found.append((case, name))
    return found


@rule(
    GROUP,
    id="marketplace.unsupported_roles",
    title="No server role or feature certification flags as unsupported is installed",
    severity=Severity.REQUIRED,
    rationale="Certification's Windows test cases 3-16 name roles and features that \"isn't yet supported\" "
    "(the application must not depend on them): Failover Clustering, the DHCP Server role, Remote "
    "Access (DirectAccess), Rights Management Services, Windows Deployment Services, Internet Storage "
    "Name Server, Multipath I/O, Network Load Balancing, Peer Name Resolution Protocol, SNMP Services, "
    "WINS, Wireless LAN Service (IPv6, test case 4, is part of every Windows: see "
    "marketplace.application_dependencies). The older copies of the page also list the Hyper-V role; "
    "the later one does not, and neither does this rule. Installed means InstallState = 1 under Server "
    "Manager's ServerComponentCache; without that cache, a service only the role installs (ClusSvc, "
    "DHCPServer, RaMgmtSvc, WDSServer, SNMP, WINS) shows it, but its absence proves nothing.",
    source=f"{_FAQ}: Windows test cases (3-16)",
    remediation="Uninstall-WindowsFeature -Name <the features found> -Remove (inside the VM), then generalize again",
    references=(ROLE_STATE_DOC,),
)
def check_unsupported_roles(ctx: AuditContext) -> Outcome:
    cache = _component_cache(ctx)
    services = _role_services(ctx)
    if cache is not None:
        components = _installed_components(cache)
        installed = [c.name for c in components if c.install_state == INSTALLED]
        states = {c.name: c.install_state for c in components}
        ev: list[Evidence] = [
            key_evidence(
                ctx,
                SERVER_COMPONENT_CACHE,
                cache,
                actual=states,
                derived=True,
                note=f"InstallState of the {len(states)} flagged component(s) listed",
            )
        ]
        flagged = _flagged(installed)
        if flagged:
            words = "; ".join(f"{case} ({feature})" for case, feature in flagged)
            return Outcome(
                Status.FAIL,
                f"installed: {words}; certification does not support them",
                "none installed",
                [f for _, f in flagged],
                tuple(ev),
                remediation=_uninstall_fix(ctx, [f for _, f in flagged]),
            )
        if services:
            # the cache says not installed, yet a role's service is registered: the two disagree
            words = ", ".join(f"{svc} ({case})" for case, svc in services)
            ev.append(
                key_evidence(
                    ctx,
                    osinfo.SERVICES,
                    None,
                    actual=[s for _, s in services],
                    derived=True,
                    note="role-only services registered",
                )
            )
            return Outcome(
                Status.WARNING,
                f"ServerComponentCache records none of the flagged roles as installed, "
                f"but their services are registered: {words}; check with Get-WindowsFeature on the VM",
                "none installed",
                [s for _, s in services],
                tuple(ev),
            )
        return Outcome(
            Status.PASS,
            f"ServerComponentCache lists {len(states)} of the flagged components, none installed (InstallState 1)",
            "none installed",
            [],
            tuple(ev),
        )
    if services:
        words = ", ".join(f"{svc} ({case})" for case, svc in services)
        ev = [
            key_evidence(
                ctx,
                osinfo.SERVICES + "\\" + svc,
                ctx.registry.key(osinfo.SERVICES + "\\" + svc),
                note=f"the service of {case}",
            )
            for case, svc in services
        ]
        features = [UNSUPPORTED_FEATURES[case][0] for case, _ in services]
        return Outcome(
            Status.FAIL,
            f"role services registered: {words}; certification does not support these roles",
            "none installed",
            [s for _, s in services],
            tuple(ev),
            remediation=_uninstall_fix(ctx, features),
        )
    osf = os_of(ctx)
    if osf is not None and osf.is_server is False:
        raise NotApplicable("a client edition of Windows: the roles are Windows Server's")
    raise NotChecked(
        "Server Manager's ServerComponentCache is not in the SOFTWARE hive and no role-only service "
        "is registered; the absence of services does not prove the roles absent"
    )


# --- software compliance -------------------------------------------------------------------------------------------


@rule(
    GROUP,
    id="marketplace.sql_server",
    title="SQL Server installed: it must come from an approved SQL Server base image (review)",
    severity=Severity.REQUIRED,
    rationale='"Software compliance for Windows": "Don\'t create your own Windows image with SQL Server installed '
    'in it. Use the approved SQL Server base images (Enterprise/Standard/web) from Azure Marketplace." '
    "The instances are listed under Microsoft SQL Server\\Instance Names (SQL, OLAP, RS; and under "
    "WOW6432Node for a 32-bit SQL Server). Whether the image was built from an approved base cannot be "
    "read offline: an instance makes the rule manual, for review.",
    source=f"{_FAQ}: Software compliance for Windows",
    remediation="Build the image on the approved SQL Server base image from Azure Marketplace, or uninstall SQL Server",
    references=(APPROVED_BASE,),
)
def check_sql_server(ctx: AuditContext) -> Outcome:
    _software_verified(ctx)
    instances: dict[str, str] = {}
    ev = []
    for path in SQL_INSTANCE_NAMES:
        key = open_key(ctx, path)
        found = {}
        for kind in key.subkeys() if key is not None else []:
            for value in kind.values():
                found[f"{kind.name}\\{value.name}"] = str(value.data)
        instances.update(found)
        ev.append(
            key_evidence(
                ctx,
                path,
                key,
                actual=found or None,
                derived=bool(found),
                note=f"{len(found)} instance(s)" if key is not None else "",
            )
        )
    if instances:
        names = ", ".join(f"{k} = {v}" for k, v in instances.items())
        return Outcome(
            Status.MANUAL,
            f"SQL Server instances installed ({names}): certification rejects SQL Server "
            "installed from the publisher's own media; confirm the image is built on an approved SQL "
            "Server base image",
            "no SQL Server, or an approved SQL Server base",
            instances,
            tuple(ev),
            reason="whether the image comes from an approved SQL Server base image is not recorded in it",
        )
    return Outcome(
        Status.PASS,
        "no SQL Server instance is registered (Instance Names absent)",
        "no SQL Server, or an approved SQL Server base",
        {},
        tuple(ev),
    )


@rule(
    GROUP,
    id="marketplace.licensed_products",
    title="Visual Studio or Office installed: needs the support team's prior approval (review)",
    severity=Severity.RECOMMENDED,
    rationale='"Software compliance for Windows": "If you\'re trying to install Visual Studio or any '
    'Office-licensed product, contact the Support team for prior approval." Read from the Programs and '
    "Features list (the Uninstall keys, 64- and 32-bit); redistributables and runtimes are not products "
    "that need approval.",
    source=f"{_FAQ}: Software compliance for Windows",
    remediation="Ask the Partner Center support team for approval before submitting, or uninstall the product",
)
def check_licensed_products(ctx: AuditContext) -> Outcome:
    _software_verified(ctx)
    matches: list[str] = []
    ev = []
    seen_keys = 0
    for path in UNINSTALL_KEYS:
        key = open_key(ctx, path)
        count = 0
        for sub in key.subkeys()[:_MAX_PRODUCTS] if key is not None else []:
            count += 1
            display = sub.value("DisplayName")
            if display is not None and isinstance(display.data, str) and _licensed().search(display.data.strip()):
                version = osinfo.display_version(sub)
                matches.append(display.data.strip() + (f" {version}" if version else ""))
        seen_keys += key is not None
        ev.append(key_evidence(ctx, path, key, note=f"{count} product(s)" if key is not None else ""))
    if not seen_keys:
        raise NotChecked("no Uninstall key (Programs and Features) in the SOFTWARE hive")
    products = sorted(set(matches))
    if products:
        return Outcome(
            Status.MANUAL,
            f"installed: {', '.join(products)}; certification needs the support team's prior "
            "approval for Visual Studio and Office-licensed products",
            "none, or approved",
            products,
            tuple(ev),
            reason="an approval is not recorded in the image",
        )
    return Outcome(
        Status.PASS, "no Visual Studio or Office product in Programs and Features", "none, or approved", [], tuple(ev)
    )


# --- what needs the running VM -----------------------------------------------------------------------------------


#: what certification asks that only a running VM shows: rules that report manual, the step as their fix
LIVE_VM_STEPS = (
    ManualStep(
        "marketplace.certification_test_tool",
        "Certification Test Tool for Azure VMs run on a VM deployed from the image",
        step="Deploy a VM from the image and run the Certification Test Tool for Azure VMs "
        "(aka.ms/AzureCertificationTestTool) against it over WinRM; attach its report to the submission",
        why="the tool tests a running VM over WinRM (provisioning, extensions, the Windows test cases)",
        source=f"{_FAQ}: Toolkit test case execution failed; VM access denied",
        baselines=MARKETPLACE,
        severity=Severity.REQUIRED,
    ),
    ManualStep(
        "marketplace.application_dependencies",
        "The application depends neither on the administrator account nor on IPv6",
        step="Check on the running VM that the application works without the built-in administrator account and "
        "with IPv4 only",
        why="Windows test cases 2 (user account dependency) and 4 (IPv6) are about the application's behaviour",
        source=f"{_FAQ}: Windows test cases (2, 4)",
        baselines=MARKETPLACE,
        severity=Severity.REQUIRED,
    ),
    ManualStep(
        "marketplace.no_default_credentials",
        "No default credentials shipped in the image",
        step="Remove every account and password the application ships with; let the customer set the credentials "
        "at deployment",
        why="passwords cannot be read offline, and the application's own accounts are not Windows'",
        source=f"{_FAQ}: Default credentials",
        baselines=MARKETPLACE,
        severity=Severity.REQUIRED,
        quote='"Never send default credentials with the submitted VHD."',
    ),
)
register_steps(GROUP, LIVE_VM_STEPS)
