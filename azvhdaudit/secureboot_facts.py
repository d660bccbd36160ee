"""Secure Boot facts of an image: the 2023 certificate servicing state, the ESP and its boot manager.

Read from what a rule is given (``ctx.registry``, ``ctx.facts``, ``ctx.bcd`` and the boot volume's files),
never by opening the image again. Every fact that could not be read is ``None`` with the reason, so the rules
can say "not checked" instead of guessing.

References (titles, addresses and dates as published, read 2026-12 in stored copies; where a page's body was
only partly readable, the statement says where the rest comes from):

- KB5068202, "Registry key updates for Secure Boot: Windows devices with IT-managed updates"
  (support.microsoft.com/topic/a7be69c9-4634-42e1-9ca1-df06f43f360d, published 2025-10-14): the servicing
  values under ``HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecureBoot\\Servicing``: ``AvailableUpdates``
  (REG_DWORD bitmask, "for enterprise deployment ... 0x5944 ... adding the new 2023 CA certificates, updating
  the KEK, and installing the new boot manager"), ``UEFICA2023Status`` (REG_SZ; "Initially the status is
  NotStarted. It changes to InProgress once the update begins", and ``Updated`` when done, the value Microsoft's
  deployment guidance and its "Ask Microsoft Anything: Secure Boot" answers check for), ``UEFICA2023Error``,
  ``HighConfidenceOptOut``, ``MicrosoftUpdateManagedOptIn``; the values are in updates released on or after
  2025-10-14 (Windows 10 22H2 and later, Windows Server 2022 and later) and 2025-11-11 (the other supported
  versions).
- KB5025885, "How to manage the Windows Boot Manager revocations for Secure Boot changes associated with
  CVE-2023-24932" (support.microsoft.com/topic/41a975df-beb2-40c1-99a3-b3ff139f832d, first published
  2023-05-09), its steps as Lenovo's CDRT documentation (cdrt.github.io/mk_docs) reproduces them:
  ``reg add HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Secureboot /v AvailableUpdates``
  0x40 (add "Windows UEFI CA 2023" to the DB), 0x100 (install the boot manager signed by it), 0x80 (add
  "Windows Production PCA 2011" to the DBX), each followed by ``Start-ScheduledTask -TaskName
  "\\Microsoft\\Windows\\PI\\Secure-Boot-Update"``; 0x200 (the Secure Version Number update) as other
  deployment guides quote the same KB. ``WindowsUEFICA2023Capable`` under ``Servicing`` (as tools that read the
  KB quote it): 0 or absent = the 2023 certificate is not in the DB, 1 = it is, 2 = it is and the device boots
  the 2023-signed boot manager. KB5025885's ``reg add`` lines write ``AvailableUpdates`` under
  ``...\\Control\\SecureBoot`` itself, while KB5068202 places every value under ``...\\SecureBoot\\Servicing``;
  both keys are read (``Servicing`` first) and the evidence names the one the value came from. A real Windows 10
  1709 SYSTEM hive (tests/data/realdata/SYSTEM_B) holds ``Control\\SecureBoot\\AvailableUpdates`` (REG_DWORD 0)
  and no ``Servicing`` key: the value is older than the 2023 servicing, so only ``UEFICA2023Status``,
  ``WindowsUEFICA2023Capable`` and ``UEFICA2023Error`` show that servicing is installed.
- KB5062713, "Windows devices with IT-managed updates" (support.microsoft.com/help/5062713, published
  2025-06-26): the 2011 certificates (Microsoft Corporation KEK CA 2011, Microsoft Windows Production PCA 2011,
  Microsoft Corporation UEFI CA 2011) "set to expire beginning in June 2026"; KB5053946 ("Enterprise deployment
  guidance for CVE-2023-24932", 2025-02-13) and Microsoft's AMA answers put Windows Production PCA 2011's expiry
  in October 2026.
- KB5085395, "Secure Boot update from 2011 to 2023 certificates: Trusted Launch VMs (TVM) and Confidential VMs
  (CVM)" (support.microsoft.com/help/5085395, published 2026-05-13): an Azure VM with Secure Boot needs both the
  2023 certificates in its virtual firmware and a boot manager signed by them; one that keeps the 2011 chain
  "can continue to boot" but gets no new boot-manager, DB/DBX or early-boot protections.
- The bits 0x0004 (KEK signed by the platform key), 0x0800 (Microsoft Option ROM UEFI CA 2023), 0x1000
  (Microsoft UEFI CA 2023) and 0x4000 (apply those two only where Microsoft Corporation UEFI CA 2011 is in the
  DB) are KB5068202's settings list as deployment scripts quote it line by line (the list itself was not in the
  readable part of the stored page); 0x5944 is exactly their sum with 0x0040 and 0x0100. Microsoft's answers in
  the "Ask Microsoft Anything: Secure Boot" sessions (techcommunity.microsoft.com, 2026-02/03) confirm that the
  scheduled task clears each bit when its step is done and that 0x4000 stays set (a device "that started at
  0x5944 and is now 0x4004" still waits for its KEK). Bits not in this table are shown as undocumented, never
  given a meaning.

Offline, the servicing values say what Windows on this image did and still means to do on the firmware it last
ran on; the firmware of the Azure VM the image becomes is Azure's. Which CA signs the boot manager on the ESP is
a property of the image itself and goes with it.
"""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import pefile

from azvhdaudit.errors import AuditError
from azvhdaudit.report import Evidence

if TYPE_CHECKING:
    from azvhdaudit.facts import ImageFacts, PartitionFacts
    from azvhdaudit.registry.model import RegistryView, RegValue
    from azvhdaudit.rules.base import AuditContext, GuestFiles

__all__ = [
    "SECUREBOOT_KEY",
    "SERVICING_KEY",
    "BOOTMGR_PATH",
    "UPDATE_BITS",
    "UEFICA2023_STATUSES",
    "CAPABLE_MEANINGS",
    "UpdateBit",
    "ServicingState",
    "BootManager",
    "BootSigner",
    "SignerAnswer",
    "decode_available_updates",
    "servicing_state",
    "esp_partition",
    "boot_files",
    "boot_volume_files",
    "boot_manager",
    "boot_manager_signers",
    "AUTHENTICODE_API",
    "PCA2011",
    "UEFICA2023",
    "THIRD_PARTY_CAS",
]

log = logging.getLogger(__name__)

SECUREBOOT_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\SecureBoot"
SERVICING_KEY = SECUREBOOT_KEY + r"\Servicing"
#: where UEFI firmware finds Windows Boot Manager on the EFI system partition (and bcdboot puts it)
BOOTMGR_PATH = r"EFI\Microsoft\Boot\bootmgfw.efi"

KB5068202 = "KB5068202 Registry key updates for Secure Boot: Windows devices with IT-managed updates (2025-10-14)"
KB5025885 = (
    "KB5025885 How to manage the Windows Boot Manager revocations for Secure Boot changes associated "
    "with CVE-2023-24932 (2023-05-09)"
)

#: the largest boot manager read whole when the boot volume offers no random access (bootmgfw.efi is ~2.5 MB)
MAX_BOOTMGR_SIZE = 16 * 1024 * 1024
#: the largest certificate table read (a boot manager's is a few KB: one or two PKCS#7 signatures)
MAX_CERT_TABLE = 1024 * 1024
_HEAD = 4096
_SECURITY = pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_SECURITY"]
_MACHINES = {0x8664: "x64", 0xAA64: "ARM64", 0x14C: "x86", 0x1C4: "ARM"}
_EFI_SUBSYSTEMS = {10: "EFI application", 11: "EFI boot service driver", 12: "EFI runtime driver"}


@dataclass(frozen=True)
class UpdateBit:
    """One documented bit of ``AvailableUpdates``: what the servicing task does for it, and where it is written."""

    mask: int
    meaning: str
    source: str
    #: a modifier of other steps rather than a step; it stays set when the rest is done
    modifier: bool = False


UPDATE_BITS: tuple[UpdateBit, ...] = (
    UpdateBit(
        0x0004,
        "apply a Key Exchange Key (Microsoft Corporation KEK 2K CA 2023) signed by the device's platform key",
        KB5068202,
    ),
    UpdateBit(0x0040, "add Windows UEFI CA 2023 to the Secure Boot DB", f"{KB5025885}; {KB5068202}"),
    UpdateBit(
        0x0080, "add Microsoft Windows Production PCA 2011 to the DBX (revoke 2011-signed boot managers)", KB5025885
    ),
    UpdateBit(
        0x0100,
        "install the boot manager signed by Windows UEFI CA 2023 on the EFI system partition",
        f"{KB5025885}; {KB5068202}",
    ),
    UpdateBit(0x0200, "apply the Secure Version Number (SVN) update to the firmware", KB5025885),
    UpdateBit(0x0800, "add Microsoft Option ROM UEFI CA 2023 to the DB", KB5068202),
    UpdateBit(0x1000, "add Microsoft UEFI CA 2023 to the DB", KB5068202),
    UpdateBit(
        0x4000,
        "apply 0x0800 and 0x1000 only where Microsoft Corporation UEFI CA 2011 is in the DB",
        KB5068202,
        modifier=True,
    ),
)
_BITS = {b.mask: b for b in UPDATE_BITS}

#: UEFICA2023Status values (KB5068202) and what each means
UEFICA2023_STATUSES: dict[str, str] = {
    "notstarted": "NotStarted: the update has not begun",
    "inprogress": "InProgress: the update has begun and is not finished",
    "updated": "Updated: the 2023 certificates and the 2023-signed boot manager are in place",
}

#: WindowsUEFICA2023Capable (KB5025885)
CAPABLE_MEANINGS: dict[int, str] = {
    0: "Windows UEFI CA 2023 is not in the DB",
    1: "Windows UEFI CA 2023 is in the DB",
    2: "Windows UEFI CA 2023 is in the DB and the device boots the 2023-signed boot manager",
}


def decode_available_updates(value: int) -> list[tuple[int, str]]:
    """``[(bit, meaning)]`` for every bit set in ``value``; undocumented bits say so."""
    out = []
    for shift in range(32):
        bit = 1 << shift
        if value & bit:
            known = _BITS.get(bit)
            out.append((bit, known.meaning if known else "not documented in KB5025885 or KB5068202"))
    return out


# --- the servicing state ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServicingState:
    """The 2023 certificate servicing values of the SYSTEM hive, decoded."""

    #: False when the SYSTEM hive could not be read (``why`` says why): nothing below is known then
    readable: bool
    why: str = ""
    #: ``SecureBoot`` and ``SecureBoot\\Servicing`` exist
    secureboot_key: bool = False
    servicing_key: bool = False
    available_updates: int | None = None
    #: the key ``AvailableUpdates`` was read from
    available_updates_key: str | None = None
    available_updates_policy: int | None = None
    status: str | None = None
    error: int | None = None
    error_event: int | None = None
    capable: int | None = None
    #: values found with a type other than the documented one: name -> type
    mistyped: dict[str, str] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()

    @property
    def pending_steps(self) -> list[tuple[int, str]]:
        """The steps ``AvailableUpdates`` still asks for (modifier bits left out)."""
        if not self.available_updates:
            return []
        return [
            (bit, words)
            for bit, words in decode_available_updates(self.available_updates)
            if not (bit in _BITS and _BITS[bit].modifier)
        ]

    @property
    def status_meaning(self) -> str | None:
        if self.status is None:
            return None
        return UEFICA2023_STATUSES.get(self.status.strip().lower(), f"'{self.status}': not a value KB5068202 lists")

    @property
    def capable_meaning(self) -> str | None:
        if self.capable is None:
            return None
        return CAPABLE_MEANINGS.get(self.capable, f"{self.capable}: not a value KB5025885 lists")

    @property
    def has_any(self) -> bool:
        """Any servicing value at all is present."""
        return any(
            v is not None
            for v in (self.available_updates, self.status, self.error, self.capable, self.available_updates_policy)
        )

    def summary(self) -> str:
        """One line: where the image stands, as the values say."""
        if not self.readable:
            return f"servicing state not read: {self.why}"
        if not self.has_any:
            return "no 2023 certificate servicing values (SecureBoot\\Servicing holds none)"
        parts = []
        if self.status is not None:
            parts.append(f"UEFICA2023Status {self.status}")
        if self.capable is not None:
            parts.append(f"WindowsUEFICA2023Capable {self.capable} ({self.capable_meaning})")
        if self.error:
            event = f", event {self.error_event}" if self.error_event else ""
            parts.append(f"UEFICA2023Error 0x{self.error:08X}{event}")
        if self.available_updates is not None:
            pending = self.pending_steps
            shown = ", ".join(f"0x{bit:04X} {words}" for bit, words in pending) if pending else "no step pending"
            parts.append(f"AvailableUpdates 0x{self.available_updates:04X} ({shown})")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "readable": self.readable,
            "why": self.why,
            "available_updates": self.available_updates,
            "available_updates_key": self.available_updates_key,
            "available_updates_policy": self.available_updates_policy,
            "status": self.status,
            "error": self.error,
            "error_event": self.error_event,
            "capable": self.capable,
            "pending_steps": [f"0x{b:04X}" for b, _ in self.pending_steps],
            "mistyped": dict(self.mistyped),
        }


def _evidence(reg: RegistryView, path: str, name: str, value: RegValue | None, note: str = "") -> Evidence:
    resolved = reg.resolve(path)
    hive = reg.hive(resolved[0]) if resolved else None
    return Evidence(
        source="registry",
        hive=resolved[0] if resolved else "",
        key=reg.display_path(path),
        value_name=name,
        type=value.type_name if value is not None else None,
        raw=value.raw.hex() if value is not None else None,
        actual=value.data if value is not None else None,
        present=value is not None,
        control_set=reg.control_set_name,
        hive_dirty=hive.state.dirty if hive is not None else None,
        note=note,
    )


def servicing_state(reg: RegistryView) -> ServicingState:
    """Read and decode the servicing values (see the module docstring for where each is documented)."""
    if not reg.has_hive("SYSTEM"):
        return ServicingState(readable=False, why=reg.why_unavailable("SYSTEM"))
    if reg.control_set_name is None:
        return ServicingState(readable=False, why="the SYSTEM hive names no current control set (Select\\Current)")
    sb_key = reg.key(SECUREBOOT_KEY)
    sv_key = reg.key(SERVICING_KEY)
    evidence: list[Evidence] = []
    mistyped: dict[str, str] = {}

    def dword(path: str, name: str) -> int | None:
        value = reg.value(path, name)
        if value is None:
            return None
        evidence.append(_evidence(reg, path, name, value))
        if isinstance(value.data, int) and not isinstance(value.data, bool):
            return value.data
        mistyped[name] = value.type_name
        return None

    available = dword(SERVICING_KEY, "AvailableUpdates")
    available_key = SERVICING_KEY if available is not None else None
    if available is None:
        available = dword(SECUREBOOT_KEY, "AvailableUpdates")
        available_key = SECUREBOOT_KEY if available is not None else None
    policy = dword(SECUREBOOT_KEY, "AvailableUpdatesPolicy")
    status_value = reg.value(SERVICING_KEY, "UEFICA2023Status")
    status: str | None = None
    if status_value is not None:
        evidence.append(_evidence(reg, SERVICING_KEY, "UEFICA2023Status", status_value))
        if isinstance(status_value.data, str):
            status = status_value.data.strip()
        else:
            mistyped["UEFICA2023Status"] = status_value.type_name
    error = dword(SERVICING_KEY, "UEFICA2023Error")
    error_event = dword(SERVICING_KEY, "UEFICA2023ErrorEvent")
    capable = dword(SERVICING_KEY, "WindowsUEFICA2023Capable")
    if not evidence:
        # say what was looked for, so "absent" is evidence too
        evidence.append(
            _evidence(
                reg, SERVICING_KEY, "UEFICA2023Status", None, note="key present" if sv_key is not None else "key absent"
            )
        )
        evidence.append(
            _evidence(
                reg,
                SECUREBOOT_KEY,
                "AvailableUpdates",
                None,
                note="key present" if sb_key is not None else "key absent",
            )
        )
    return ServicingState(
        readable=True,
        secureboot_key=sb_key is not None,
        servicing_key=sv_key is not None,
        available_updates=available,
        available_updates_key=reg.display_path(available_key) if available_key else None,
        available_updates_policy=policy,
        status=status,
        error=error,
        error_event=error_event,
        capable=capable,
        mistyped=mistyped,
        evidence=tuple(evidence),
    )


# --- the ESP and the boot manager -------------------------------------------------------------------------


def esp_partition(facts: ImageFacts) -> PartitionFacts | None:
    """The EFI system partition of a GPT disk (by its type GUID), or ``None``."""
    from azvhdaudit.volumes import ESP_TYPE

    for part in facts.partitions:
        if part.scheme == "gpt" and part.type_id.lower() == ESP_TYPE:
            return part
    return None


def boot_volume_files(image: Any) -> GuestFiles | None:
    """The files of an opened image's boot volume (the one holding the BCD store), as ``AuditContext.boot_files``
    takes them; ``None`` when the image has none."""
    volume = getattr(image, "boot_volume", None)
    if volume is None:
        return None
    from azvhdaudit.fs import GuestFileSystem

    return GuestFileSystem(volume)


def boot_files(ctx: AuditContext) -> tuple[GuestFiles | None, str]:
    """The files of the ESP as rules see them, or ``None`` with the reason.

    The boot volume's files come from ``ctx.boot_files`` (the volume that holds the BCD store); they are the
    ESP's only when the store was found on the ESP.
    """
    facts = ctx.facts
    esp = esp_partition(facts)
    if esp is None:
        return None, "the disk has no EFI system partition"
    if esp.encrypted or esp.filesystem not in ("fat", None):
        return None, f"the EFI system partition (partition {esp.index}) holds {esp.filesystem}, not FAT"
    if facts.boot_partition != esp.index:
        where = (
            "no boot store was found"
            if facts.boot_partition is None
            else f"the boot store found is on partition {facts.boot_partition}"
        )
        return None, f"the EFI system partition (partition {esp.index}) was not read: {where}"
    files = getattr(ctx, "boot_files", None)
    if files is None:
        return None, (
            f"the files of the EFI system partition (partition {esp.index}) were not given to the rules "
            "(no boot-volume reader in this audit context)"
        )
    return files, ""


@dataclass(frozen=True)
class BootManager:
    """What was read of ``\\EFI\\Microsoft\\Boot\\bootmgfw.efi``: its headers and certificate table."""

    path: str
    present: bool
    size: int | None = None
    #: ``x64``, ``ARM64`` ...
    machine: str | None = None
    #: ``EFI application`` ... (``None`` for a PE that is not an EFI image)
    subsystem: str | None = None
    #: the Authenticode certificate table (IMAGE_DIRECTORY_ENTRY_SECURITY): file offset and size
    cert_table_offset: int | None = None
    cert_table_size: int | None = None
    #: why the headers could not be read (not a PE, truncated table ...)
    error: str | None = None
    bytes_read: int = 0

    @property
    def signed(self) -> bool | None:
        """The image carries a certificate table; ``None`` when that is not known."""
        if not self.present or self.error:
            return None
        return bool(self.cert_table_size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "present": self.present,
            "size": self.size,
            "machine": self.machine,
            "subsystem": self.subsystem,
            "cert_table_offset": self.cert_table_offset,
            "cert_table_size": self.cert_table_size,
            "error": self.error,
            "bytes_read": self.bytes_read,
        }


def _open(files: GuestFiles, path: str) -> tuple[BinaryIO | None, int]:
    """A file object for ``path`` and its size: the volume's own when it offers ``open``, else the bytes read
    whole (bounded)."""
    opener: Callable[[str], BinaryIO] | None = getattr(files, "open", None)
    if opener is not None:
        fh = opener(path)
        size = fh.seek(0, io.SEEK_END)
        fh.seek(0)
        return fh, size
    data = files.read(path, MAX_BOOTMGR_SIZE + 1)
    if data is None:
        return None, 0
    return io.BytesIO(data), len(data)


def boot_manager(files: GuestFiles, path: str = BOOTMGR_PATH) -> BootManager:
    """Read the boot manager's PE headers and locate its certificate table (a few KB, never the whole file).

    Raises :class:`~azvhdaudit.errors.AuditError` (a file system error) when the volume cannot be read.
    """
    if not files.exists(path):
        return BootManager(path=path, present=False)
    fh, size = _open(files, path)
    if fh is None:
        return BootManager(path=path, present=False)
    if size > MAX_BOOTMGR_SIZE and getattr(files, "open", None) is None:
        fh.close()
        return BootManager(
            path,
            True,
            size,
            error=f"larger than {MAX_BOOTMGR_SIZE} bytes, the most read whole from a volume without random access",
            bytes_read=size,
        )
    try:
        head = fh.read(_HEAD)
        read = len(head)
        if head[:2] != b"MZ":
            return BootManager(path, True, size, error="not a PE image (no MZ header)", bytes_read=read)
        try:
            pe = pefile.PE(data=head, fast_load=True)
        except (pefile.PEFormatError, ValueError, struct.error) as err:
            return BootManager(path, True, size, error=f"PE headers unreadable: {err}", bytes_read=read)
        machine = _MACHINES.get(pe.FILE_HEADER.Machine, f"0x{pe.FILE_HEADER.Machine:04X}")
        subsystem = _EFI_SUBSYSTEMS.get(pe.OPTIONAL_HEADER.Subsystem)
        dirs = pe.OPTIONAL_HEADER.DATA_DIRECTORY
        if len(dirs) <= _SECURITY:
            return BootManager(path, True, size, machine, subsystem, None, 0, bytes_read=read)
        # The certificate table's "VirtualAddress" is a file offset (PE/COFF: "The Attribute Certificate Table").
        offset, length = dirs[_SECURITY].VirtualAddress, dirs[_SECURITY].Size
        if length and (offset + length > size or length > MAX_CERT_TABLE or length < 8):
            return BootManager(
                path,
                True,
                size,
                machine,
                subsystem,
                offset,
                length,
                bytes_read=read,
                error=f"certificate table at offset {offset} of {length} bytes does not fit the {size}-byte file",
            )
        return BootManager(path, True, size, machine, subsystem, offset if length else None, length, bytes_read=read)
    finally:
        fh.close()


# --- which CA signs the boot manager: asked of azvhdaudit.authenticode ----------------------------------

#: the function of :mod:`azvhdaudit.authenticode` asked for a UEFI image's signers:
#: ``uefi_signers(fh: BinaryIO, *, name: str, verify: bool) -> Sequence[signer]`` where each signer has
#: ``subject`` (str), ``ca`` (the UEFI DB certificate its chain ends at: "Microsoft Windows Production PCA 2011",
#: "Windows UEFI CA 2023", "Microsoft Corporation UEFI CA 2011", "Microsoft UEFI CA 2023", or ``None`` for none
#: of them) and ``verified`` (bool: the chain and, when ``verify``, the digest checked; ``False`` = not trusted,
#: with ``why``); raising :class:`~azvhdaudit.errors.AuditError` when the signatures cannot be read.
AUTHENTICODE_API = "uefi_signers"

PCA2011 = "Microsoft Windows Production PCA 2011"
UEFICA2023 = "Windows UEFI CA 2023"
#: Microsoft's CAs for third-party UEFI software (shim, option ROMs' peers): not the Windows boot manager's
THIRD_PARTY_CAS = frozenset({"Microsoft Corporation UEFI CA 2011", "Microsoft UEFI CA 2023"})


@dataclass(frozen=True)
class BootSigner:
    """One Authenticode signature of the boot manager and the UEFI DB CA its chain ends at."""

    subject: str
    #: ``None``: the chain ends at none of the UEFI DB CAs (or it was not verified)
    ca: str | None
    #: the signature and its chain to ``ca`` verified (and, with ``verify``, the file's digest)
    verified: bool
    #: why the signature is not trusted, or ``""``
    why: str = ""

    def describe(self) -> str:
        text = f"{self.subject} -> {self.ca or 'no UEFI DB CA'}"
        return f"{text} ({self.why})" if self.why and not self.verified else text


@dataclass(frozen=True)
class SignerAnswer:
    """The signers, or why they are not known."""

    signers: tuple[BootSigner, ...] | None
    why: str = ""

    @property
    def cas(self) -> set[str]:
        return {s.ca for s in self.signers or () if s.ca and s.verified}


def _api() -> tuple[Callable[..., Any] | None, str]:
    try:
        from azvhdaudit import authenticode  # type: ignore[attr-defined]
    except ImportError:
        return None, "the Authenticode verifier (azvhdaudit.authenticode) is not part of this installation"
    func = getattr(authenticode, AUTHENTICODE_API, None)
    if not callable(func):
        return None, f"azvhdaudit.authenticode offers no {AUTHENTICODE_API}() to say which CA a UEFI image chains to"
    return func, ""


def boot_manager_signers(files: GuestFiles, path: str = BOOTMGR_PATH, *, verify: bool = False) -> SignerAnswer:
    """Which UEFI DB CA each Authenticode signature of the boot manager chains to, or why that is not known."""
    func, why = _api()
    if func is None:
        return SignerAnswer(None, why)
    fh, size = _open(files, path)
    if fh is None:
        return SignerAnswer(None, f"{path} is not on the volume")
    if size > MAX_BOOTMGR_SIZE and getattr(files, "open", None) is None:
        fh.close()
        return SignerAnswer(None, f"{path} is larger than {MAX_BOOTMGR_SIZE} bytes")
    try:
        found = func(fh, name=path, verify=verify)
    except AuditError as err:
        return SignerAnswer(None, f"the signatures of {path} cannot be decided: {err}")
    finally:
        fh.close()
    signers = []
    for item in found or ():
        subject, ca, verified = (
            getattr(item, "subject", None),
            getattr(item, "ca", None),
            getattr(item, "verified", None),
        )
        if not isinstance(subject, str) or not isinstance(verified, bool) or not (ca is None or isinstance(ca, str)):
            return SignerAnswer(
                None, f"azvhdaudit.authenticode.{AUTHENTICODE_API}() answered {item!r}, without subject/ca/verified"
            )
        why_not = getattr(item, "why", "")
        signers.append(BootSigner(subject, ca, verified, why_not if isinstance(why_not, str) else ""))
    return SignerAnswer(tuple(signers))
