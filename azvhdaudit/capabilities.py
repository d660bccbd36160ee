"""What an audited image can run as in Azure: the capability manifest, derived from a finished report.

Nothing here opens the image again: every value comes from the report's facts and the verdicts of the rules
that decide it. A capability is ``supported`` only when every deciding rule was judged and none stood in the way;
a rule that failed or warned ``blocks`` it (its id and message are kept); a rule that was not run, not checked,
needs a running VM or errored leaves it ``unknown``, never supported.

References:
- "Create an image definition and an image version" (learn.microsoft.com/azure/virtual-machines/image-version)
  and the ``az sig image-definition create`` reference: ``--os-state Generalized|Specialized``,
  ``--hyper-v-generation V1|V2``, ``--architecture x64|Arm64``, ``--features`` with ``SecurityType``,
  ``DiskControllerTypes`` and ``IsAcceleratedNetworkSupported``.
- "Trusted Launch for Azure virtual machines" (learn.microsoft.com/azure/virtual-machines/trusted-launch):
  Trusted Launch and Confidential VM need Generation 2.
- "Azure confidential VMs" (learn.microsoft.com/azure/confidential-computing/confidential-vm-overview): an OS disk
  encrypted before upload (confidential OS disk encryption) is uploaded as a specialized disk with its VM guest
  state; a generalized image cannot carry it.
- "Learn about hibernating your Windows virtual machine" (learn.microsoft.com/azure/virtual-machines/windows/
  hibernate-resume-windows, ms.date 2024-04-09), "Supported Windows versions": Windows Server 2022 and 2019,
  Windows 11 and Windows 10 Pro, Enterprise and Enterprise multi-session; "Prerequisites": the page file can't be on
  the temp disk. "Hibernation overview" (learn.microsoft.com/azure/virtual-machines/hibernate-resume, ms.date
  2025-10-24): a VM created from an OS disk or a gallery image hibernates only when the disk
  (``supportsHibernation``) or the image definition (feature ``IsHibernateSupported``) says it supports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from azvhdaudit.facts import HOME_EDITIONS, PRO_ENTERPRISE_EDITIONS, WINDOWS_10_BUILD, WINDOWS_11_BUILD, OSFacts
from azvhdaudit.report import Status

if TYPE_CHECKING:
    from azvhdaudit.report import Report, Result

__all__ = [
    "SUPPORTED",
    "UNSUPPORTED",
    "UNKNOWN",
    "Blocker",
    "Capability",
    "Capabilities",
    "derive_capabilities",
    "SECURITY_RULES",
    "NVME_RULES",
    "ACCELERATED_NETWORKING_RULES",
    "HIBERNATION_RULES",
]

SUPPORTED = "supported"
UNSUPPORTED = "unsupported"
UNKNOWN = "unknown"

#: rules whose failure or warning means Secure Boot (Trusted Launch, Confidential VM) does not boot the image
SECURITY_RULES = (
    "secureboot.generation2",
    "secureboot.os_supported",
    "secureboot.bcd_integrity",
    "secureboot.bootmgr_signature",
    "signing.boot_drivers",
)
#: judged with Secure Boot but never in the way: the VM boots either way (reported as a note)
SECURITY_ADVISORY = ("secureboot.uefica2023_servicing",)
#: rules whose failure or warning means Windows does not boot from an NVMe OS disk
NVME_RULES = (
    "nvme.generation_and_build",
    "nvme.stornvme_driver_file",
    "nvme.stornvme_boot_start",
    "nvme.pci_boot_start",
    "nvme.vpci_no_override",
    "nvme.storage_boot_chain",
)
#: an NVMe temporary disk comes up raw; the OS disk boots (a note)
NVME_ADVISORY = ("nvme.pagefile_not_on_temp_disk",)
#: the Hyper-V synthetic storage and network drivers a SCSI (storvsc) OS disk boots through
SCSI_RULES = ("os.hyperv_drivers_enabled",)
#: the virtual-function drivers: MANA for Azure Boost sizes, Mellanox ConnectX for the others
ACCELERATED_NETWORKING_RULES = ("platform_net.mana_driver", "platform_net.mellanox_driver")
GENERATION2_RULES = ("os.gen2_prerequisites",)
ARCHITECTURE_RULES = ("os.architecture_64bit",)
GENERALIZED_RULES = ("sysprep.oobe_shutdown_not_audit",)
#: hibernation's prerequisite that a rule judges: no page file on the temporary disk
HIBERNATION_RULES = ("nvme.pagefile_not_on_temp_disk",)
HIBERNATION_DOC = (
    '"Learn about hibernating your Windows virtual machine" (learn.microsoft.com/azure/'
    "virtual-machines/windows/hibernate-resume-windows, ms.date 2024-04-09)"
)
#: Windows Server builds the hibernation list names: 2019 and 2022
_HIBERNATION_SERVER_BUILDS = {17763: "Windows Server 2019", 20348: "Windows Server 2022"}

#: the image definition's ``SecurityType`` feature for the set of security types the image supports
GALLERY_SECURITY_TYPES = {
    frozenset({"Standard"}): "Standard",
    frozenset({"Standard", "TrustedLaunch"}): "TrustedLaunchSupported",
    frozenset({"Standard", "ConfidentialVM"}): "ConfidentialVMSupported",
    frozenset({"Standard", "TrustedLaunch", "ConfidentialVM"}): "TrustedLaunchAndConfidentialVmSupported",
}
_ARCHITECTURES = {"AMD64": "x64", "ARM64": "Arm64"}
_JUDGED = (Status.PASS, Status.NOT_APPLICABLE)
_BLOCKING = (Status.FAIL, Status.WARNING)


@dataclass(frozen=True)
class Blocker:
    """A rule that stands in the way of a capability (``fail``/``warning``) or left it undecided."""

    rule_id: str
    #: the rule's status (``fail``, ``warning``, ``not_checked``, ``manual``, ``error``), or ``not_run`` when the
    #: audit's profile did not run it
    status: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "status": self.status, "message": self.message}


@dataclass(frozen=True)
class Capability:
    """One thing the image may run as: its derived value, whether it is supported, and why not."""

    name: str
    #: the value Azure is told (``V2``, ``Generalized``, ``x64``, ``TrustedLaunch``, ``NVMe``, ``True``), or
    #: ``None`` when it could not be derived
    value: Any
    status: str
    #: rules that failed or warned: they block the capability
    blocking: tuple[Blocker, ...] = ()
    #: rules that were not judged: they leave the capability unknown
    undecided: tuple[Blocker, ...] = ()
    #: words: where the value came from, advisory findings, refused combinations
    notes: tuple[str, ...] = ()

    @property
    def supported(self) -> bool:
        return self.status == SUPPORTED

    @property
    def blocking_rules(self) -> tuple[str, ...]:
        return tuple(b.rule_id for b in self.blocking)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "status": self.status,
            "blocking": [b.to_dict() for b in self.blocking],
            "undecided": [b.to_dict() for b in self.undecided],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Capabilities:
    """The capability manifest of one audited image (see :func:`derive_capabilities`)."""

    source: str
    profile: str
    hyper_v_generation: Capability
    os_state: Capability
    architecture: Capability
    #: Standard, TrustedLaunch, ConfidentialVM
    security: tuple[Capability, ...]
    #: SCSI, NVMe
    controllers: tuple[Capability, ...]
    accelerated_networking: Capability
    hibernation: Capability
    #: combinations Azure refuses, in words; they are reported and never emitted
    refused: tuple[str, ...] = field(default=())

    @property
    def security_types(self) -> frozenset[str]:
        """The VM security types the image supports (``Standard``, ``TrustedLaunch``, ``ConfidentialVM``)."""
        return frozenset(c.name.split(":", 1)[1] for c in self.security if c.supported)

    @property
    def disk_controllers(self) -> frozenset[str]:
        """The OS disk controllers the image supports (``SCSI``, ``NVMe``)."""
        return frozenset(c.name.split(":", 1)[1] for c in self.controllers if c.supported)

    @property
    def gallery_security_type(self) -> str | None:
        """The image definition's ``SecurityType`` feature; ``None`` when not even Standard is established."""
        return GALLERY_SECURITY_TYPES.get(self.security_types)

    @property
    def all(self) -> tuple[Capability, ...]:
        return (
            self.hyper_v_generation,
            self.os_state,
            self.architecture,
            *self.security,
            *self.controllers,
            self.accelerated_networking,
            self.hibernation,
        )

    def __getitem__(self, name: str) -> Capability:
        for cap in self.all:
            if cap.name == name:
                return cap
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "hyper_v_generation": self.hyper_v_generation.value,
            "os_state": self.os_state.value,
            "architecture": self.architecture.value,
            "security_types": sorted(self.security_types),
            "gallery_security_type": self.gallery_security_type,
            "disk_controllers": sorted(self.disk_controllers, key=("SCSI", "NVMe").index),
            "accelerated_networking": self.accelerated_networking.value,
            "hibernation": self.hibernation.value,
            "capabilities": [c.to_dict() for c in self.all],
            "refused": list(self.refused),
        }


# --- derivation ------------------------------------------------------------------------------------------------


def _os_result(report: Report, rule_id: str) -> Result | None:
    return report.get(rule_id, "os")


def _status_of(result: Result) -> Status:
    # a waiver sets a finding aside for the audit; the image still is what the rule found
    return result.waived_status if result.status == Status.WAIVED and result.waived_status else result.status


def _judge(
    report: Report, rule_ids: tuple[str, ...], advisory: list[str] | None = None
) -> tuple[list[Blocker], list[Blocker]]:
    """The rules that block and those that left the capability undecided. With ``advisory`` (a list to fill), the
    audit's target required these rules: a problem that blocks was a failure there, so a warning is advice only."""
    blocking: list[Blocker] = []
    undecided: list[Blocker] = []
    for rule_id in rule_ids:
        result = _os_result(report, rule_id)
        if result is None:
            undecided.append(Blocker(rule_id, "not_run", f"the profile {report.profile!r} did not run this rule"))
            continue
        status = _status_of(result)
        if status == Status.WARNING and advisory is not None:
            advisory.append(f"{rule_id} (warning under the audited target, does not block): {result.message}")
        elif status in _BLOCKING:
            blocking.append(Blocker(rule_id, status.value, result.message))
        elif status not in _JUDGED:
            undecided.append(Blocker(rule_id, status.value, result.reason or result.message))
    return blocking, undecided


def _advice(report: Report, rule_ids: tuple[str, ...]) -> list[str]:
    notes = []
    for rule_id in rule_ids:
        result = _os_result(report, rule_id)
        if result is not None and _status_of(result) in _BLOCKING:
            notes.append(f"{rule_id} ({_status_of(result).value}, does not block): {result.message}")
    return notes


def _capability(
    name: str,
    value: Any,
    report: Report,
    rule_ids: tuple[str, ...],
    *,
    known: bool = True,
    why_unknown: str = "",
    notes: list[str] | None = None,
    extra_blockers: list[Blocker] | None = None,
    required: bool = False,
) -> Capability:
    advisory: list[str] = []
    blocking, undecided = _judge(report, rule_ids, advisory if required else None)
    blocking = list(extra_blockers or []) + blocking
    notes = list(notes or []) + advisory
    if not known and why_unknown:
        notes.insert(0, why_unknown)
    if blocking:
        status = UNSUPPORTED
    elif undecided or not known:
        status = UNKNOWN
    else:
        status = SUPPORTED
    return Capability(name, value, status, tuple(blocking), tuple(undecided), tuple(notes))


def _target(report: Report, field: str) -> str | None:
    """The audit's effective target field (``security_type``, ``disk_controller``), as the rules judged it."""
    value = (report.target or {}).get(f"effective_{field}")
    return value if isinstance(value, str) else None


def _generation(report: Report) -> tuple[int | None, Capability]:
    facts = report.facts or {}
    generation = facts.get("generation")
    style = facts.get("partition_style")
    value = {1: "V1", 2: "V2"}.get(generation) if isinstance(generation, int) else None
    where = f"generation {generation} from the {style or 'unknown'} partition table and where the boot files are"
    rules = GENERATION2_RULES if value == "V2" else ()
    cap = _capability(
        "hyper_v_generation",
        value,
        report,
        rules,
        known=value is not None,
        why_unknown="the generation could not be established (no partition table or boot files read)",
        notes=[where] if value else [],
    )
    return generation if value else None, cap


def _os_state(report: Report) -> Capability:
    sysprep = ((report.facts or {}).get("extra") or {}).get("sysprep") or {}
    state = sysprep.get("state")
    evidence = "; ".join(sysprep.get("evidence") or ())
    notes = [f"Sysprep state {state}: {evidence}"] if evidence else []
    if state == "generalized":
        return _capability("os_state", "Generalized", report, GENERALIZED_RULES, notes=notes)
    if state == "specialized":
        return _capability("os_state", "Specialized", report, (), notes=notes)
    if state == "undeployable":
        result = _os_result(report, "sysprep.state")
        blocker = Blocker(
            "sysprep.state",
            result.status.value if result else "not_run",
            result.message if result else "the image is IMAGE_STATE_UNDEPLOYABLE",
        )
        return Capability("os_state", None, UNSUPPORTED, (blocker,), (), tuple(notes))
    return _capability(
        "os_state",
        None,
        report,
        (),
        known=False,
        notes=notes,
        why_unknown="the Sysprep state could not be read (no ImageState, State.ini or SetupType)",
    )


def _architecture(report: Report) -> Capability:
    extra = (report.facts or {}).get("extra") or {}
    kernel = extra.get("kernel") or {}
    machine = kernel.get("machine")
    notes = []
    env = ((report.facts or {}).get("os") or {}).get("architecture")
    if machine:
        notes.append(f"{kernel.get('path', 'ntoskrnl.exe')} PE machine type {machine}")
        if env and env.upper() != str(machine).upper():
            notes.append(f"PROCESSOR_ARCHITECTURE says {env}, the kernel {machine}: the kernel decides")
    value = _ARCHITECTURES.get(str(machine).upper()) if machine else None
    if machine and value is None:
        blocker = Blocker("facts.kernel", "fail", f"the kernel is {machine}: Azure runs x64 and Arm64 Windows only")
        blocking, undecided = _judge(report, ARCHITECTURE_RULES)
        return Capability("architecture", None, UNSUPPORTED, (blocker, *blocking), tuple(undecided), tuple(notes))
    why = f"the kernel's machine type was not read ({kernel.get('error') or 'no kernel facts'})"
    return _capability(
        "architecture", value, report, ARCHITECTURE_RULES, known=value is not None, why_unknown=why, notes=notes
    )


def _security(report: Report, generation: int | None, refused: list[str]) -> tuple[Capability, ...]:
    facts = report.facts or {}
    standard = _capability(
        "security_type:Standard",
        "Standard",
        report,
        (),
        known=generation is not None,
        why_unknown="the generation is unknown",
    )
    caps = [standard]
    advice = _advice(report, SECURITY_ADVISORY)
    for kind in ("TrustedLaunch", "ConfidentialVM"):
        extra: list[Blocker] = []
        notes = list(advice)
        if generation == 1:
            refused.append(f"{kind} on a Generation 1 image: Azure offers {kind} on Generation 2 only")
            extra.append(Blocker("facts.generation", "fail", f"Generation 1 image: {kind} needs Generation 2"))
        known = generation is not None
        why = "the generation is unknown"
        if kind == "ConfidentialVM":
            state = ((facts.get("extra") or {}).get("sysprep") or {}).get("state")
            if facts.get("bitlocker") and state == "generalized":
                refused.append(
                    "ConfidentialVM with an encrypted OS disk and a generalized image: a confidential "
                    "VM's encrypted OS disk can only be specialized"
                )
                extra.append(Blocker("facts.bitlocker", "fail", "encrypted OS disk in a generalized image"))
            # secureboot.os_supported judges Trusted Launch's OS list; Confidential VM's narrower one is not judged
            known = False
            why = (
                "no rule judges the Windows versions Confidential VM supports (narrower than Trusted Launch's), "
                "nor the confidential OS disk encryption"
            )
        caps.append(
            _capability(
                f"security_type:{kind}",
                kind,
                report,
                SECURITY_RULES,
                known=known,
                why_unknown=why,
                notes=notes,
                extra_blockers=extra,
                required=_target(report, "security_type") in ("TrustedLaunch", "ConfidentialVM"),
            )
        )
    return tuple(caps)


def _controllers(report: Report, generation: int | None, refused: list[str]) -> tuple[Capability, ...]:
    scsi = _capability("disk_controller:SCSI", "SCSI", report, SCSI_RULES)
    extra: list[Blocker] = []
    if generation == 1:
        refused.append("NVMe on a Generation 1 image: Azure attaches NVMe disks to Generation 2 VMs only")
        extra.append(Blocker("facts.generation", "fail", "Generation 1 image: NVMe needs Generation 2"))
    nvme = _capability(
        "disk_controller:NVMe",
        "NVMe",
        report,
        NVME_RULES,
        notes=_advice(report, NVME_ADVISORY),
        extra_blockers=extra,
        required=_target(report, "disk_controller") == "NVMe",
    )
    return scsi, nvme


def _hibernation_os(os_facts: dict[str, Any]) -> tuple[bool | None, str]:
    """Whether the Windows of the OS facts is in the hibernation list: (True/False/None, in words)."""
    facts = OSFacts.from_dict(os_facts)
    build, server = facts.build, facts.is_server
    edition = (facts.edition_id or "").strip()
    name = facts.product_name or "Windows"
    if not isinstance(build, int) or server is None:
        return None, f"{name}: the build or whether it is a server could not be read"
    found = f"{name} (build {build}, EditionID {edition or 'not set'})"
    if server:
        if build in _HIBERNATION_SERVER_BUILDS:
            return True, f"{found}: {_HIBERNATION_SERVER_BUILDS[build]}, in the list of {HIBERNATION_DOC}"
        if build < min(_HIBERNATION_SERVER_BUILDS):
            return False, f"{found}: older than Windows Server 2019, not in the list of {HIBERNATION_DOC}"
        return None, f"{found}: a Windows Server build the list of {HIBERNATION_DOC} does not name"
    if build < WINDOWS_10_BUILD:
        return False, f"{found}: older than Windows 10, not in the list of {HIBERNATION_DOC}"
    release = "Windows 11" if build >= WINDOWS_11_BUILD else "Windows 10"
    key = edition.lower()
    if key in PRO_ENTERPRISE_EDITIONS:
        return True, f"{found}: {release} {PRO_ENTERPRISE_EDITIONS[key]}, in the list of {HIBERNATION_DOC}"
    if key in HOME_EDITIONS:
        return False, f"{found}: a Home edition, not in the list of {HIBERNATION_DOC}"
    return None, f"{found}: an edition the list of {HIBERNATION_DOC} does not name"


def _hibernation(report: Report) -> Capability:
    """Whether the disk may be declared ``supportsHibernation`` / ``IsHibernateSupported``: the Windows version is
    in Azure's hibernation list and no page file is on the temporary disk. Azure's Windows hibernation extension
    (installed by the VM agent) configures the guest itself, so the guest's own hibernation setting is a note."""
    facts = report.facts or {}
    os_facts = facts.get("os")
    notes: list[str] = []
    present = facts.get("hiberfil_present")
    if present is not None:
        notes.append(
            f"hiberfil.sys {'present' if present else 'absent'} on the Windows volume (Azure's hibernation "
            "extension, or powercfg /h /type full, sets it up in the guest)"
        )
    if not isinstance(os_facts, dict):
        cap = _capability(
            "hibernation",
            None,
            report,
            HIBERNATION_RULES,
            known=False,
            notes=notes,
            why_unknown="the Windows version could not be read (no OS facts)",
        )
        return cap
    listed, words = _hibernation_os(os_facts)
    notes.insert(0, words)
    if listed is False:
        blocking, undecided = _judge(report, HIBERNATION_RULES)
        blocker = Blocker("facts.os", "fail", words)
        return Capability("hibernation", False, UNSUPPORTED, (blocker, *blocking), tuple(undecided), tuple(notes))
    cap = _capability("hibernation", True, report, HIBERNATION_RULES, known=listed is True, notes=notes)
    value = {SUPPORTED: True, UNSUPPORTED: False}.get(cap.status)
    return replace(cap, value=value)


def derive_capabilities(report: Report) -> Capabilities:
    """The capability manifest of ``report``'s OS disk, from its facts and results only."""
    refused: list[str] = []
    generation, gen_cap = _generation(report)
    security = _security(report, generation, refused)
    controllers = _controllers(report, generation, refused)
    accel = _capability("accelerated_networking", None, report, ACCELERATED_NETWORKING_RULES)
    accel = replace(accel, value={SUPPORTED: True, UNSUPPORTED: False}.get(accel.status))
    return Capabilities(
        source=report.source,
        profile=report.profile,
        hyper_v_generation=gen_cap,
        os_state=_os_state(report),
        architecture=_architecture(report),
        security=security,
        controllers=controllers,
        accelerated_networking=accel,
        hibernation=_hibernation(report),
        refused=tuple(refused),
    )
