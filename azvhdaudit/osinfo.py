"""Facts about the Windows installation: identity, Sysprep state, pending restarts, the Azure VM Agent.

References:
- "Prepare a Windows VHD or VHDX to upload to Azure" (https://learn.microsoft.com/azure/virtual-machines/
  windows/prepare-for-upload-vhd-image, ms.date 2022-08-04): "Determine when to use Sysprep", "Generalize a
  VHD", "Install Windows updates" (no pending restart), "Complete the recommended configurations" (VM Agent).
- "Windows Setup States" (learn.microsoft.com/windows-hardware/manufacture/desktop/windows-setup-states):
  ``HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State\\ImageState`` and
  ``%WINDIR%\\Setup\\State\\State.ini`` hold ``IMAGE_STATE_*``.
- KB4021388 (32-bit operating systems in Azure): only specialized 32-bit VHDs are supported.

Everything here reads a :class:`~azvhdaudit.registry.model.RegistryView` and a
:class:`~azvhdaudit.rules.base.GuestFiles`; a fact that cannot be read is ``None``, never a guess.
"""

from __future__ import annotations

import logging
import re
import struct
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from azvhdaudit.errors import AuditError
from azvhdaudit.facts import (
    AgentFacts,
    AgentService,
    ImageFacts,
    OSFacts,
    PartitionFacts,
    PendingRebootFacts,
    SysprepFacts,
)
from azvhdaudit.registry.model import RegistryView, RegKey, RegValue

if TYPE_CHECKING:  # the rules package imports this module; only the types are needed here
    from azvhdaudit.rules.base import AuditContext, GuestFiles

__all__ = [
    "CURRENT_VERSION",
    "SETUP_STATE",
    "os_facts",
    "sysprep_facts",
    "pending_reboot_facts",
    "agent_facts",
    "image_extra_facts",
    "os_of",
    "sysprep_of",
    "agent_of",
    "classify_image_state",
    "service_start",
    "mounted_volume",
    "MOUNTED_DEVICES",
    "MountedDevice",
    "mounted_devices",
    "find_partition",
    "drive_letter_map",
]

log = logging.getLogger(__name__)

CURRENT_VERSION = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion"
PRODUCT_OPTIONS = r"SYSTEM\CurrentControlSet\Control\ProductOptions"
ENVIRONMENT = r"SYSTEM\CurrentControlSet\Control\Session Manager\Environment"
SESSION_MANAGER = r"SYSTEM\CurrentControlSet\Control\Session Manager"
SERVICES = r"SYSTEM\CurrentControlSet\Services"
SETUP_STATE = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State"
SYSTEM_SETUP = r"SYSTEM\Setup"
SYSPREP_STATUS = r"SYSTEM\Setup\Status\SysprepStatus"
CBS = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing"
WU_REBOOT = r"SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired"
UNINSTALL = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall"

STATE_INI = r"Windows\Setup\State\State.ini"
SYSPREP_TAG = r"Windows\System32\Sysprep\Sysprep_succeeded.tag"
PANTHER = r"Windows\Panther"
PENDING_XML = r"Windows\WinSxS\pending.xml"
WINDOWSAZURE = "WindowsAzure"
PLUGINS = r"Packages\Plugins"

#: the unattend files Windows Setup picks up (doc: "A custom unattend.xml file is not supported")
UNATTEND_FILES = (
    r"Windows\Panther\Unattend.xml",
    r"Windows\Panther\Autounattend.xml",
    r"Windows\Panther\Unattend\Unattend.xml",
    r"Windows\Panther\Unattend\Autounattend.xml",
    r"Windows\System32\Sysprep\unattend.xml",
    r"Windows\System32\Sysprep\Panther\unattend.xml",
)

AGENT_SERVICES = ("WindowsAzureGuestAgent", "RdAgent", "WindowsAzureTelemetryService", "WindowsAzureNetAgentSvc")

GENERALIZED_STATES = ("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", "IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT")
SPECIALIZED_STATES = (
    "IMAGE_STATE_COMPLETE",
    "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE",
    "IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT",
)


def _loaded(reg: RegistryView, path: str) -> bool:
    """Whether the hive ``path`` lies in is loaded (a view raises for a hive it could not read)."""
    resolved = reg.resolve(path)
    return resolved is not None and reg.has_hive(resolved[0])


def _data_value(reg: RegistryView, path: str, name: str) -> RegValue | None:
    """The value, or ``None`` when absent or when its hive is not loaded."""
    return reg.value(path, name) if _loaded(reg, path) else None


def _data(reg: RegistryView, path: str, name: str) -> Any:
    """A value's data; ``None`` when absent, or when its hive is not loaded (the facts that read it say which
    hives were missing)."""
    if not _loaded(reg, path):
        return None
    value = reg.value(path, name)
    return None if value is None else value.data


def _str(reg: RegistryView, path: str, name: str) -> str | None:
    data = _data(reg, path, name)
    if isinstance(data, str):
        return data.strip() or None
    return None


def _int(reg: RegistryView, path: str, name: str) -> int | None:
    data = _data(reg, path, name)
    if isinstance(data, int):
        return data
    if isinstance(data, str) and data.strip().isdigit():
        return int(data.strip())
    return None


def os_facts(registry: RegistryView) -> OSFacts:
    """The OS identity from SOFTWARE ``...\\Windows NT\\CurrentVersion`` and SYSTEM (product type,
    processor architecture). ``current_version`` is ``major.minor``: from ``CurrentMajorVersionNumber`` /
    ``CurrentMinorVersionNumber`` where present (Windows 10 and later still write ``CurrentVersion`` 6.3),
    else ``CurrentVersion``."""
    reg = registry
    major = _int(reg, CURRENT_VERSION, "CurrentMajorVersionNumber")
    minor = _int(reg, CURRENT_VERSION, "CurrentMinorVersionNumber")
    version = f"{major}.{minor or 0}" if major is not None else _str(reg, CURRENT_VERSION, "CurrentVersion")
    build = _int(reg, CURRENT_VERSION, "CurrentBuild")
    if build is None:
        build = _int(reg, CURRENT_VERSION, "CurrentBuildNumber")
    return OSFacts(
        product_name=_str(reg, CURRENT_VERSION, "ProductName"),
        edition_id=_str(reg, CURRENT_VERSION, "EditionID"),
        display_version=_str(reg, CURRENT_VERSION, "DisplayVersion") or _str(reg, CURRENT_VERSION, "ReleaseId"),
        current_version=version,
        build=build,
        ubr=_int(reg, CURRENT_VERSION, "UBR"),
        installation_type=_str(reg, CURRENT_VERSION, "InstallationType"),
        product_type=_str(reg, PRODUCT_OPTIONS, "ProductType"),
        architecture=_str(reg, ENVIRONMENT, "PROCESSOR_ARCHITECTURE"),
    )


def classify_image_state(image_state: str | None) -> str:
    """``generalized``, ``specialized``, ``undeployable`` or ``unknown`` for an ``IMAGE_STATE_*`` value."""
    if not image_state:
        return "unknown"
    state = image_state.strip().upper()
    if state in GENERALIZED_STATES:
        return "generalized"
    if state in SPECIALIZED_STATES:
        return "specialized"
    if state == "IMAGE_STATE_UNDEPLOYABLE":
        return "undeployable"
    return "unknown"


def _state_ini(files: GuestFiles | None) -> str | None:
    if files is None:
        return None
    data = files.read(STATE_INI, max_size=64 * 1024)
    if data is None:
        return None
    text = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data.decode("latin-1")
    match = re.search(r"^\s*ImageState\s*=\s*(\S+)", text, re.IGNORECASE | re.MULTILINE)
    return match.group(1) if match else None


def sysprep_facts(registry: RegistryView, files: GuestFiles | None) -> SysprepFacts:
    """The image's Sysprep state with the evidence for it.

    ``state`` is ``generalized``, ``specialized``, ``undeployable`` or ``unknown``; ``evidence`` lists
    the facts that decided it, in words. ImageState (SOFTWARE) is the primary evidence, State.ini the
    cross-check, ``SYSTEM\\Setup`` SetupType 2 with a ``windeploy`` CmdLine the fallback.
    """
    reg = registry
    image_state = _str(reg, SETUP_STATE, "ImageState")
    ini_state = _state_ini(files)
    setup_type = _int(reg, SYSTEM_SETUP, "SetupType")
    cmdline = _str(reg, SYSTEM_SETUP, "CmdLine")
    gen_state = _int(reg, SYSPREP_STATUS, "GeneralizationState")
    tag = files.exists(SYSPREP_TAG) if files is not None else None
    panther = files.listdir(PANTHER) if files is not None else None
    unattend = [p for p in UNATTEND_FILES if files is not None and files.exists(p)]
    unattend_value = _str(reg, SYSTEM_SETUP, "UnattendFile")

    evidence: list[str] = []
    state = "unknown"
    if image_state:
        state = classify_image_state(image_state)
        evidence.append(f"ImageState = {image_state} (HKLM\\{SETUP_STATE})")
    elif ini_state:
        state = classify_image_state(ini_state)
        evidence.append(f"ImageState = {ini_state} ({STATE_INI}; the registry value is absent)")
    elif setup_type == 2 and cmdline and "windeploy" in cmdline.lower():
        state = "generalized"
        evidence.append(f"SetupType = 2 and CmdLine = {cmdline!r} (HKLM\\SYSTEM\\Setup): setup runs on next boot")
    if ini_state and image_state and ini_state.upper() != image_state.upper():
        evidence.append(f"State.ini says {ini_state}, the registry {image_state}")
    if setup_type is not None:
        evidence.append(f"SYSTEM\\Setup SetupType = {setup_type}")
    if tag is not None:
        evidence.append(f"{SYSPREP_TAG} {'present' if tag else 'absent'}")
    if gen_state is not None:
        evidence.append(f"SysprepStatus GeneralizationState = {gen_state}")
    missing = tuple(h for h in ("SOFTWARE", "SYSTEM") if not reg.has_hive(h))
    return SysprepFacts(
        state=state,
        image_state=image_state,
        state_ini=ini_state,
        setup_type=setup_type,
        cmdline=cmdline,
        generalization_state=gen_state,
        sysprep_succeeded_tag=tag,
        panther=tuple(panther) if panther is not None else None,
        unattend_files=tuple(unattend),
        unattend_value=unattend_value,
        evidence=tuple(evidence),
        missing_hives=missing,
    )


def pending_reboot_facts(registry: RegistryView, files: GuestFiles | None) -> PendingRebootFacts:
    """What says a restart (or servicing operation) is pending; ``pending`` is ``None`` when the
    SOFTWARE and SYSTEM hives are both missing."""
    reg = registry
    have_software, have_system = reg.has_hive("SOFTWARE"), reg.has_hive("SYSTEM")
    reasons: list[str] = []
    cbs_reboot = reg.key(CBS + r"\RebootPending") is not None if have_software else None
    if cbs_reboot:
        reasons.append(f"HKLM\\{CBS}\\RebootPending exists")
    pending_key = reg.key(CBS + r"\PackagesPending") if have_software else None
    packages_pending = None
    if pending_key is not None:
        packages_pending = sorted(pending_key.subkey_names()) + sorted(v.name for v in pending_key.values())
        if packages_pending:
            reasons.append(f"HKLM\\{CBS}\\PackagesPending lists {len(packages_pending)} entries")
    wu_reboot = reg.key(WU_REBOOT) is not None if have_software else None
    if wu_reboot:
        reasons.append(f"HKLM\\{WU_REBOOT} exists")
    renames: list[str] | None = None
    if have_system:
        renames = []
        for name in ("PendingFileRenameOperations", "PendingFileRenameOperations2"):
            data = _data(reg, SESSION_MANAGER, name)
            items = [s for s in (data if isinstance(data, list) else [data] if isinstance(data, str) else []) if s]
            renames.extend(items)
        if renames:
            reasons.append(f"Session Manager PendingFileRenameOperations holds {len(renames)} entries")
    pending_xml = files.exists(PENDING_XML) if files is not None else None
    if pending_xml:
        reasons.append(f"{PENDING_XML} exists")
    pending: bool | None = bool(reasons) if (have_software or have_system) else None
    return PendingRebootFacts(
        pending=pending,
        reasons=tuple(reasons),
        cbs_reboot_pending=cbs_reboot,
        cbs_packages_pending=tuple(packages_pending) if packages_pending is not None else None,
        wu_reboot_required=wu_reboot,
        pending_file_rename_operations=tuple(renames) if renames is not None else None,
        pending_xml=pending_xml,
    )


def service_start(registry: RegistryView, name: str) -> tuple[bool, int | None, str | None]:
    """(service key exists, Start, ImagePath) of service ``name`` in the current control set."""
    key = registry.key(f"{SERVICES}\\{name}")
    if key is None:
        return False, None, None
    start = key.value("Start")
    image = key.value("ImagePath")
    return (
        True,
        start.data if start is not None and isinstance(start.data, int) else None,
        image.data if image is not None and isinstance(image.data, str) else None,
    )


_AGENT_DIR = re.compile(r"^GuestAgent_(\d+(?:\.\d+){1,3})", re.IGNORECASE)


def agent_facts(registry: RegistryView, files: GuestFiles | None) -> AgentFacts:
    """The Azure VM Agent's services, folder, version and the extension plug-ins left behind.

    ``uninstall_version`` (the agent's entry under Uninstall) is looked up only when the WindowsAzure
    folder names no ``GuestAgent_<version>``; otherwise it is ``None``.
    """
    services: dict[str, AgentService | None] = {}
    for name in AGENT_SERVICES:
        exists, start, image = service_start(registry, name)
        services[name] = AgentService(start, image) if exists else None
    folder = files.listdir(WINDOWSAZURE) if files is not None else None
    versions = sorted(
        {m.group(1) for n in folder or [] if (m := _AGENT_DIR.match(n))},
        key=lambda v: tuple(int(p) for p in v.split(".")),
    )
    uninstall_version = None
    # The Uninstall walk reads a key of every installed product (a page of the hive each, a megabyte on
    # a real SOFTWARE hive): done only when the agent's folder names no version.
    uninstall = registry.key(UNINSTALL) if not versions and registry.has_hive("SOFTWARE") else None
    for sub in uninstall.subkeys() if uninstall is not None else []:
        display = sub.value("DisplayName")
        if (
            display is not None
            and isinstance(display.data, str)
            and display.data.lower().startswith("windows azure vm agent")
        ):
            ver = sub.value("DisplayVersion")
            uninstall_version = ver.data if ver is not None and isinstance(ver.data, str) else ""
    plugins = files.listdir(PLUGINS) if files is not None else None
    return AgentFacts(
        services=services,
        folder=tuple(folder) if folder is not None else None,
        guest_agent_versions=tuple(versions),
        version=versions[-1] if versions else (uninstall_version or None),
        uninstall_version=uninstall_version,
        plugins=tuple(plugins) if plugins is not None else None,
    )


#: where Windows remembers the volumes it has seen and the letters it gave them (root of the SYSTEM hive)
MOUNTED_DEVICES = r"SYSTEM\MountedDevices"
_DMIO = b"DMIO:ID:"


@dataclass(frozen=True)
class MountedDevice:
    """One value of ``SYSTEM\\MountedDevices``: a drive letter or a volume GUID, and the partition it names.

    The data says which partition: 12 bytes = the MBR disk signature (u32) and the partition's byte
    offset (u64), little-endian; ``DMIO:ID:`` + 16 bytes = a GPT partition's unique GUID (mixed-endian,
    as Windows stores GUIDs). Other forms (a device path in UTF-16 for removable or virtual devices, a
    dynamic disk's ``DMIO`` id) are kept as ``style="other"``.
    """

    #: the value name: ``\DosDevices\E:`` or ``\??\Volume{...}``
    name: str
    #: ``E:`` for a drive-letter value, else ``None``
    letter: str | None
    #: ``{...}`` for a volume-GUID value, else ``None``
    volume_guid: str | None
    #: ``mbr``, ``gpt`` or ``other``
    style: str
    mbr_signature: int | None = None
    offset: int | None = None
    #: the GPT partition GUID, lower case
    guid: str | None = None
    raw_length: int = 0

    def matches(self, facts: ImageFacts, part: PartitionFacts) -> bool:
        """Whether this value names ``part`` of the disk described by ``facts``."""
        if self.style == "mbr":
            return (
                facts.partition_style == "mbr"
                and facts.mbr_disk_signature == self.mbr_signature
                and part.offset == self.offset
            )
        if self.style == "gpt":
            return part.guid is not None and part.guid.lower() == self.guid
        return False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _decode_mounted(name: str, raw: bytes) -> MountedDevice:
    letter = volume_guid = None
    upper = name.upper()
    if upper.startswith("\\DOSDEVICES\\") and len(name) == len("\\DosDevices\\X:") and name.endswith(":"):
        letter = name[-2:].upper()
    elif upper.startswith("\\??\\VOLUME{"):
        volume_guid = name[len("\\??\\Volume") :]
    if len(raw) == 12:
        signature, offset = struct.unpack("<IQ", raw)
        return MountedDevice(
            name, letter, volume_guid, "mbr", mbr_signature=signature, offset=offset, raw_length=len(raw)
        )
    if len(raw) == 24 and raw[:8] == _DMIO:
        guid = str(uuid.UUID(bytes_le=bytes(raw[8:24])))
        return MountedDevice(name, letter, volume_guid, "gpt", guid=guid, raw_length=len(raw))
    return MountedDevice(name, letter, volume_guid, "other", raw_length=len(raw))


def mounted_devices(registry: RegistryView) -> list[MountedDevice]:
    """Every value of ``SYSTEM\\MountedDevices``, decoded; empty when the key (or the hive) is absent.

    Drive letters come first, in letter order, then the volume GUIDs.
    """
    key = registry.key(MOUNTED_DEVICES) if _loaded(registry, MOUNTED_DEVICES) else None
    if key is None:
        return []
    found = [_decode_mounted(v.name, bytes(v.raw)) for v in key.values() if v.name]
    return sorted(found, key=lambda d: (d.letter is None, d.letter or "", d.name.lower()))


def find_partition(device: MountedDevice, disks: Mapping[str, ImageFacts]) -> tuple[str, PartitionFacts] | None:
    """The disk name and partition among ``disks`` that ``device`` names, or ``None``."""
    for name, facts in disks.items():
        for part in facts.partitions:
            if device.matches(facts, part):
                return name, part
    return None


def drive_letter_map(registry: RegistryView, disks: Mapping[str, ImageFacts]) -> dict[str, dict[str, Any]]:
    """The drive letters the Windows of ``registry`` gives, each with the audited disk it lands on.

    ``{"E:": {"disk": "data1:data.vhd", "partition": 0, "style": "mbr", ...}}``; ``disk`` and
    ``partition`` are ``None`` when the letter names a volume of none of ``disks`` (a DVD drive, a disk
    not given, a volume that no longer exists).
    """
    letters: dict[str, dict[str, Any]] = {}
    for device in mounted_devices(registry):
        if device.letter is None:
            continue
        hit = find_partition(device, disks)
        entry: dict[str, Any] = {"disk": hit[0] if hit else None, "partition": hit[1].index if hit else None}
        entry.update({k: v for k, v in device.to_dict().items() if k not in ("letter", "volume_guid")})
        letters[device.letter] = entry
    return letters


def mounted_volume(registry: RegistryView, letter: str = "C:") -> dict[str, Any] | None:
    """The partition identity Windows recorded for drive ``letter`` in ``SYSTEM\\MountedDevices``.

    ``{"style": "mbr", "mbr_signature": int, "offset": int}`` for the 12-byte MBR form (disk signature, then
    the partition's byte offset), ``{"style": "gpt", "guid": str}`` for ``DMIO:ID:`` + partition GUID;
    ``None`` when the value is absent or in another form (a dynamic disk, a removable device's path).
    """
    value = _data_value(registry, MOUNTED_DEVICES, f"\\DosDevices\\{letter.upper()}")
    if value is None:
        return None
    raw = value.raw
    if len(raw) == 12:
        signature, offset = struct.unpack("<IQ", raw)
        return {"style": "mbr", "mbr_signature": signature, "offset": offset}
    if len(raw) == 24 and raw[:8] == b"DMIO:ID:":
        return {"style": "gpt", "guid": str(uuid.UUID(bytes_le=bytes(raw[8:24])))}
    return None


#: the kernel whose PE header says which processor the installation runs on
KERNEL = r"Windows\System32\ntoskrnl.exe"
#: PE/COFF specification, "Machine Types": IMAGE_FILE_MACHINE_* values of the file header
KERNEL_MACHINES = {0x8664: "AMD64", 0xAA64: "ARM64", 0x14C: "x86", 0x1C4: "ARM"}
_KERNEL_HEAD = 4096


def kernel_facts(files: GuestFiles | None) -> dict[str, Any]:
    """The machine type in ``ntoskrnl.exe``'s PE file header, read from its first 4 KB.

    ``machine`` is ``AMD64``, ``ARM64``, ``x86``, ``ARM``, the raw ``0x....`` value for another type, or ``None``
    when the kernel is absent or its header unreadable (``error`` says why).
    """
    facts: dict[str, Any] = {"path": KERNEL, "present": None, "machine": None, "machine_value": None, "error": None}
    if files is None:
        facts["error"] = "no Windows volume was read"
        return facts
    try:
        head = files.read(KERNEL, _KERNEL_HEAD)
    except AuditError as err:  # an unreadable kernel leaves the machine unknown, not the other facts
        facts["error"] = str(err)
        return facts
    facts["present"] = head is not None
    if head is None:
        facts["error"] = f"{KERNEL} does not exist"
        return facts
    if len(head) < 64 or head[:2] != b"MZ":
        facts["error"] = f"{KERNEL} has no MZ header"
        return facts
    (pe_offset,) = struct.unpack_from("<I", head, 0x3C)
    if pe_offset + 6 > len(head) or head[pe_offset : pe_offset + 4] != b"PE\0\0":
        facts["error"] = f"{KERNEL}: no PE signature at offset {pe_offset} of the first {len(head)} bytes"
        return facts
    (machine,) = struct.unpack_from("<H", head, pe_offset + 4)
    facts["machine_value"] = machine
    facts["machine"] = KERNEL_MACHINES.get(machine, f"0x{machine:04X}")
    return facts


def image_extra_facts(registry: RegistryView, files: GuestFiles | None) -> dict[str, Any]:
    """The facts :func:`open_image <azvhdaudit.image.open_image>` adds to ``ImageFacts``: ``sysprep``,
    ``pending_reboot`` and ``agent`` (:class:`SysprepFacts`, :class:`PendingRebootFacts`, :class:`AgentFacts`,
    its typed fields), ``kernel`` and ``mounted_c`` (dicts, for ``ImageFacts.extra``).

    Each fact is established on its own: one that meets a corrupt hive cell or file record is left out
    (and logged), the others stand. A rule that needs a fact left out reads it again and meets the same error,
    which the engine reports as "not checked" with the reason.
    """
    readers: dict[str, Any] = {
        "kernel": lambda: kernel_facts(files),
        "sysprep": lambda: sysprep_facts(registry, files),
        "pending_reboot": lambda: pending_reboot_facts(registry, files),
        "agent": lambda: agent_facts(registry, files),
        "mounted_c": lambda: mounted_volume(registry, "C:"),
    }
    facts: dict[str, Any] = {}
    for name, read in readers.items():
        try:
            facts[name] = read()
        except AuditError as err:
            log.warning("cannot establish the %s facts: %s", name, err)
    return facts


def os_of(ctx: AuditContext) -> OSFacts | None:
    """The OS facts a rule reads: ``ctx.facts.os``, as the data path established them; for a context built
    without them (a caller's own :class:`~azvhdaudit.rules.base.AuditContext`), read once per audit from
    ``ctx.registry``. ``None`` when neither SOFTWARE nor SYSTEM can be read."""
    if ctx.facts.os is not None:
        return ctx.facts.os
    if not (ctx.registry.has_hive("SOFTWARE") or ctx.registry.has_hive("SYSTEM")):
        return None
    found: OSFacts = ctx.cached("osinfo.os_facts", lambda: os_facts(ctx.registry))
    return found


def sysprep_of(ctx: AuditContext) -> SysprepFacts:
    """The Sysprep facts a rule reads: ``ctx.facts.sysprep``, or read once per audit from the context's
    registry and files where the data path did not establish them."""
    if ctx.facts.sysprep is not None:
        return ctx.facts.sysprep
    found: SysprepFacts = ctx.cached("osinfo.sysprep", lambda: sysprep_facts(ctx.registry, ctx.files))
    return found


def agent_of(ctx: AuditContext) -> AgentFacts:
    """The Azure VM Agent facts a rule reads: ``ctx.facts.agent``, or read once per audit from the context's
    registry and files where the data path did not establish them."""
    if ctx.facts.agent is not None:
        return ctx.facts.agent
    found: AgentFacts = ctx.cached("osinfo.agent", lambda: agent_facts(ctx.registry, ctx.files))
    return found


def installed_products(registry: RegistryView) -> list[tuple[str, str]]:
    """``(DisplayName, Uninstall subkey name)`` of every product under the Uninstall key (the Programs and Features
    list), in the key's order; empty when the key is absent. :func:`display_version` reads a product's version
    when needed: a rule lists a few products of hundreds, and the names alone decide which."""
    # one pass over the subkey list, reading each subkey's DisplayName without a key object per subkey
    names = registry.subkey_values(UNINSTALL, ("DisplayName",))
    products: list[tuple[str, str]] = []
    for subkey, values in (names or {}).items():
        display = values["DisplayName"]
        if display is not None and isinstance(display.data, str):
            products.append((display.data, subkey))
    return products


def uninstall_entry(registry: RegistryView, subkey: str) -> RegKey | None:
    """The Uninstall subkey named ``subkey`` (as :func:`installed_products` gives it), looked up by name: a ``/``
    in it is no path separator."""
    uninstall = registry.key(UNINSTALL)
    return uninstall.subkey(subkey) if uninstall is not None else None


def display_version(product: RegKey | None) -> str:
    """A product's ``DisplayVersion`` under its Uninstall subkey (``""`` when absent or not a string)."""
    version = product.value("DisplayVersion") if product is not None else None
    return version.data if version is not None and isinstance(version.data, str) else ""
