"""Facts about an opened image: the container, its partitions, the Windows volume, the OS.

Facts are gathered once when an image is opened; rules read them and never parse bytes themselves.
Every fact that could not be established is ``None`` (unknown), never a guess.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "ParentLink",
    "ContainerFacts",
    "PartitionFacts",
    "OSFacts",
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
        if name and self.build and self.build >= 22000 and "Windows 10" in name:
            name = name.replace("Windows 10", "Windows 11")
        return name

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["name"] = self.name
        data["is_server"] = self.is_server
        data["is_64bit"] = self.is_64bit
        return data


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
    #: free-form facts added by later layers (sysprep state, agent ...)
    extra: dict[str, Any] = field(default_factory=dict)

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
            "extra": self.extra,
        }

    def __repr__(self) -> str:
        from azvhdaudit.render.display import facts_repr

        return facts_repr(self)

    def _repr_html_(self) -> str:
        from azvhdaudit.render.display import facts_html

        return facts_html(self)
