"""Facts about an opened image: the container, its partitions, the Windows volume, the OS.

Facts are gathered once when an image is opened; rules read them and never parse bytes themselves.
Every fact that could not be established is ``None`` (unknown), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "ParentLink",
    "ContainerFacts",
    "PartitionFacts",
    "OSFacts",
    "SysprepFacts",
    "PendingRebootFacts",
    "AgentService",
    "AgentFacts",
    "ImageFacts",
]


@dataclass(frozen=True)
class ParentLink:
    """One parent of a differencing disk, as found from the child's locators."""

    path: str
    format: str
    #: the parent's own id (VHD unique id / VHDX DataWriteGuid), as a string
    id: str | None
    #: the id the child recorded for its parent
    expected_id: str | None
    #: the recorded linkage equals the parent's id
    linkage_matches: bool | None
    #: every path tried before this one was found
    tried: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerFacts:
    """Facts about the container file (VHD, VHDX, raw ...)."""

    path: str
    #: ``vhd``, ``vhdx``, ``raw``, ``vmdk``, ``qcow2``
    format: str
    #: ``fixed``, ``dynamic``, ``differencing`` (None for raw)
    subtype: str | None
    virtual_size: int
    file_size: int
    logical_sector_size: int = 512
    physical_sector_size: int = 512
    block_size: int | None = None
    creator_app: str | None = None
    creator_version: str | None = None
    creator_host: str | None = None
    disk_id: str | None = None
    # VHD footer
    footer_cookie_valid: bool | None = None
    footer_checksum_valid: bool | None = None
    footer_version: str | None = None
    footer_at_end: bool | None = None
    footer_copy_matches: bool | None = None
    geometry: tuple[int, int, int] | None = None
    #: the size the CHS geometry gives (C*H*S*512)
    geometry_size: int | None = None
    original_size: int | None = None
    dynamic_header_checksum_valid: bool | None = None
    # VHDX
    headers_crc_valid: bool | None = None
    region_tables_crc_valid: bool | None = None
    metadata_valid: bool | None = None
    log_pending: bool | None = None
    log_guid: str | None = None
    #: a pending log's replay (in memory): ``replayed``, ``reason`` (when not), ``entries``, ``sequence_first`` /
    #: ``sequence_last``, ``bytes``, ``writes`` (kind, file_offset, length; the first 64) and ``writes_total``,
    #: ``log_offset``, ``log_length``
    log_replay: dict[str, Any] | None = None
    data_write_guid: str | None = None
    #: the parent chain, nearest parent first
    parents: tuple[ParentLink, ...] = ()
    #: problems found while validating that did not prevent reading (human words)
    warnings: tuple[str, ...] = ()

    @property
    def is_differencing(self) -> bool:
        return self.subtype == "differencing"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PartitionFacts:
    """One partition (or the whole disk, for a bare file system)."""

    index: int
    #: ``mbr``, ``gpt`` or ``none`` (a file system without a partition table)
    scheme: str
    offset: int
    size: int
    #: MBR type byte as ``0x07`` or GPT type GUID
    type_id: str
    #: a readable type: ``NTFS/exFAT``, ``EFI System``, ``Microsoft reserved``, ``Basic data`` ...
    type_name: str
    name: str | None = None
    guid: str | None = None
    bootable: bool = False
    #: ``ntfs``, ``fat``, ``bitlocker``, ``unknown``
    filesystem: str | None = None
    encrypted: bool = False
    ntfs_dirty: bool | None = None
    label: str | None = None


#: the first build of Windows 10 and of Windows 11 (which still calls itself "Windows 10" in ProductName)
WINDOWS_10_BUILD = 10240
WINDOWS_11_BUILD = 22000
#: client EditionIDs of Pro, Enterprise and Enterprise multi-session (ServerRdsh), the N editions being the same
#: editions: the ones Azure's Trusted Launch and hibernation lists name
PRO_ENTERPRISE_EDITIONS = {
    "professional": "Pro",
    "professionaln": "Pro N",
    "enterprise": "Enterprise",
    "enterprisen": "Enterprise N",
    "serverrdsh": "Enterprise multi-session",
}
#: client EditionIDs of the Home editions
HOME_EDITIONS = frozenset({"core", "coren", "coresinglelanguage", "corecountryspecific"})


@dataclass(frozen=True)
class OSFacts:
    """The Windows installation's identity, from the SOFTWARE and SYSTEM hives."""

    product_name: str | None = None
    edition_id: str | None = None
    display_version: str | None = None
    current_version: str | None = None
    build: int | None = None
    ubr: int | None = None
    #: ``Client``, ``Server``, ``Server Core``
    installation_type: str | None = None
    #: ``WinNT`` (client), ``ServerNT``, ``LanmanNT`` (domain controller)
    product_type: str | None = None
    #: ``AMD64``, ``x86``, ``ARM64``
    architecture: str | None = None

    @property
    def is_server(self) -> bool | None:
        if self.installation_type:
            return self.installation_type.lower().startswith("server")
        if self.product_type:
            return self.product_type.lower() in ("servernt", "lanmannt")
        return None

    @property
    def is_64bit(self) -> bool | None:
        if not self.architecture:
            return None
        return self.architecture.upper() in ("AMD64", "ARM64", "IA64")

    @property
    def name(self) -> str | None:
        """A human name; Windows 11 still calls itself "Windows 10" in ProductName, so use the build."""
        name = self.product_name
        if name and self.build and self.build >= WINDOWS_11_BUILD and "Windows 10" in name:
            name = name.replace("Windows 10", "Windows 11")
        return name

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OSFacts:
        """The facts back from :meth:`to_dict` (a report's ``facts["os"]``); derived keys are ignored."""
        return cls(**{f.name: data.get(f.name) for f in fields(cls)})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["name"] = self.name
        data["is_server"] = self.is_server
        data["is_64bit"] = self.is_64bit
        return data


def _list(items: tuple[str, ...] | None) -> list[str] | None:
    return None if items is None else list(items)


@dataclass(frozen=True)
class SysprepFacts:
    """The image's Sysprep state with the evidence for it (:func:`azvhdaudit.osinfo.sysprep_facts`).

    ``state`` is ``generalized``, ``specialized``, ``undeployable`` or ``unknown``; every other field is what was
    read, ``None`` where it could not be (its hive or the Windows volume's files unreadable, or the value absent).
    """

    state: str = "unknown"
    #: ``IMAGE_STATE_*`` from SOFTWARE ``...\\Setup\\State`` ImageState
    image_state: str | None = None
    #: ``IMAGE_STATE_*`` from ``Windows\\Setup\\State\\State.ini``
    state_ini: str | None = None
    #: ``SYSTEM\\Setup`` SetupType and CmdLine
    setup_type: int | None = None
    cmdline: str | None = None
    #: ``SYSTEM\\Setup\\Status\\SysprepStatus`` GeneralizationState
    generalization_state: int | None = None
    #: whether ``Sysprep_succeeded.tag`` exists (``None``: the files were not read)
    sysprep_succeeded_tag: bool | None = None
    #: the entries of ``Windows\\Panther`` (``None``: absent, or the files were not read)
    panther: tuple[str, ...] | None = None
    #: the unattend files present where Windows Setup looks for one
    unattend_files: tuple[str, ...] = ()
    #: ``SYSTEM\\Setup`` UnattendFile
    unattend_value: str | None = None
    #: the facts that decided ``state``, in words
    evidence: tuple[str, ...] = ()
    #: the hives (SOFTWARE, SYSTEM) that could not be read
    missing_hives: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "image_state": self.image_state,
            "state_ini": self.state_ini,
            "setup_type": self.setup_type,
            "cmdline": self.cmdline,
            "generalization_state": self.generalization_state,
            "sysprep_succeeded_tag": self.sysprep_succeeded_tag,
            "panther": _list(self.panther),
            "unattend_files": list(self.unattend_files),
            "unattend_value": self.unattend_value,
            "evidence": list(self.evidence),
            "missing_hives": list(self.missing_hives),
        }


@dataclass(frozen=True)
class PendingRebootFacts:
    """What says a restart (or a servicing operation) is pending (:func:`azvhdaudit.osinfo.pending_reboot_facts`).

    ``pending`` is ``None`` when neither SOFTWARE nor SYSTEM could be read; each other fact is ``None`` where its
    hive (or the Windows volume's files) could not be read.
    """

    pending: bool | None = None
    #: what says so, in words
    reasons: tuple[str, ...] = ()
    cbs_reboot_pending: bool | None = None
    #: the subkeys then the values of ``Component Based Servicing\\PackagesPending``, each sorted
    cbs_packages_pending: tuple[str, ...] | None = None
    wu_reboot_required: bool | None = None
    pending_file_rename_operations: tuple[str, ...] | None = None
    pending_xml: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending,
            "reasons": list(self.reasons),
            "cbs_reboot_pending": self.cbs_reboot_pending,
            "cbs_packages_pending": _list(self.cbs_packages_pending),
            "wu_reboot_required": self.wu_reboot_required,
            "pending_file_rename_operations": _list(self.pending_file_rename_operations),
            "pending_xml": self.pending_xml,
        }


@dataclass(frozen=True)
class AgentService:
    """One installed service of the Azure VM Agent: its Start value and ImagePath (``None`` when absent or not of
    the expected type)."""

    start: int | None = None
    image_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"present": True, "start": self.start, "image_path": self.image_path}


@dataclass(frozen=True)
class AgentFacts:
    """The Azure VM Agent's services, folder, version and the extension plug-ins left behind
    (:func:`azvhdaudit.osinfo.agent_facts`)."""

    #: each agent service by name, ``None`` when its key is absent
    services: Mapping[str, AgentService | None] = field(default_factory=dict)
    #: the entries of ``C:\\WindowsAzure`` (``None``: absent, or the files were not read)
    folder: tuple[str, ...] | None = None
    #: the versions of the ``GuestAgent_<version>`` folders, oldest first
    guest_agent_versions: tuple[str, ...] = ()
    #: the newest folder version, else the Uninstall entry's version
    version: str | None = None
    #: the agent's Uninstall entry DisplayVersion, read only when no folder names a version (``""`` when the
    #: entry has none)
    uninstall_version: str | None = None
    #: the entries of ``C:\\Packages\\Plugins``
    plugins: tuple[str, ...] | None = None

    def services_dict(self) -> dict[str, dict[str, Any] | None]:
        """The services as the report shows them: ``{name: {"present", "start", "image_path"} or None}``."""
        return {name: svc.to_dict() if svc is not None else None for name, svc in self.services.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "services": self.services_dict(),
            "folder": _list(self.folder),
            "guest_agent_versions": list(self.guest_agent_versions),
            "version": self.version,
            "uninstall_version": self.uninstall_version,
            "plugins": _list(self.plugins),
        }


#: the facts of ``ImageFacts.extra`` and the typed ones in the order the report lists them under ``extra``
_EXTRA_ORDER = ("kernel", "sysprep", "pending_reboot", "agent")


@dataclass
class ImageFacts:
    """Everything the data path established about one image."""

    source: str
    container: ContainerFacts
    #: ``mbr``, ``gpt`` or ``none``
    partition_style: str | None = None
    mbr_disk_signature: int | None = None
    gpt_disk_guid: str | None = None
    partitions: list[PartitionFacts] = field(default_factory=list)
    #: index into ``partitions`` of the volume holding ``Windows\System32\config\SYSTEM``
    windows_partition: int | None = None
    #: index of the partition holding the BCD store, and the store's path on it
    boot_partition: int | None = None
    bcd_path: str | None = None
    #: 1 or 2, inferred from the partition style and where the boot files are
    generation: int | None = None
    ntfs_dirty: bool | None = None
    hiberfil_present: bool | None = None
    bitlocker: bool = False
    os: OSFacts | None = None
    #: per hive: {"source": path, "dirty": bool, "replayed": bool, "backend": str, "error": str}
    hives: dict[str, dict[str, Any]] = field(default_factory=dict)
    current_control_set: int | None = None
    default_control_set: int | None = None
    #: the Sysprep state, the pending restart and the Azure VM Agent (``None`` when not established)
    sysprep: SysprepFacts | None = None
    pending_reboot: PendingRebootFacts | None = None
    agent: AgentFacts | None = None
    #: free-form facts added by later layers (the kernel's machine type, the C: drive's partition ...)
    extra: dict[str, Any] = field(default_factory=dict)
    #: why the BCD store found could not be decoded (``None``: decoded, not found, or not decoded yet); the
    #: rules that read the store report it, so the facts in the report leave it out
    bcd_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "container": self.container.to_dict(),
            "partition_style": self.partition_style,
            "mbr_disk_signature": self.mbr_disk_signature,
            "gpt_disk_guid": self.gpt_disk_guid,
            "partitions": [asdict(p) for p in self.partitions],
            "windows_partition": self.windows_partition,
            "boot_partition": self.boot_partition,
            "bcd_path": self.bcd_path,
            "generation": self.generation,
            "ntfs_dirty": self.ntfs_dirty,
            "hiberfil_present": self.hiberfil_present,
            "bitlocker": self.bitlocker,
            "os": self.os.to_dict() if self.os else None,
            "hives": self.hives,
            "current_control_set": self.current_control_set,
            "default_control_set": self.default_control_set,
            "extra": self.extra_dict(),
        }

    def extra_dict(self) -> dict[str, Any]:
        """The report's ``extra``: the typed facts (``sysprep``, ``pending_reboot``, ``agent``, each present only
        when established) among the free-form ones, in the order the data path records them."""
        typed: dict[str, SysprepFacts | PendingRebootFacts | AgentFacts | None] = {
            "sysprep": self.sysprep,
            "pending_reboot": self.pending_reboot,
            "agent": self.agent,
        }
        out: dict[str, Any] = {}
        for name in _EXTRA_ORDER:
            fact = typed.get(name)
            if fact is not None:
                out[name] = fact.to_dict()
            elif name in self.extra:
                out[name] = self.extra[name]
        for name, value in self.extra.items():
            if name not in out:
                out[name] = value
        return out

    def __repr__(self) -> str:
        from azvhdaudit.render.display import facts_repr

        return facts_repr(self)

    def _repr_html_(self) -> str:
        from azvhdaudit.render.display import facts_html

        return facts_html(self)
