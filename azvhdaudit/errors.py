"""The one error hierarchy of azvhdaudit.

Every error the library raises on bad input derives from :class:`AuditError`. Messages name the
file (or image-relative location) and say what is wrong where: the offset, the field and the bad
value. Errors that are about files also subclass the matching builtin, so ``except FileNotFoundError``
keeps working for callers.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuditError",
    "ImageError",
    "ImageNotFoundError",
    "SpecialFileError",
    "UnsupportedFormatError",
    "CorruptImageError",
    "TruncatedImageError",
    "ParentError",
    "ParentNotFoundError",
    "ParentMismatchError",
    "ParentLoopError",
    "VolumeError",
    "NoPartitionTableError",
    "NoWindowsVolumeError",
    "EncryptedVolumeError",
    "FileSystemError",
    "CorruptVolumeError",
    "GuestFileNotFoundError",
    "RegistryError",
    "CorruptHiveError",
    "HiveNotFoundError",
    "BCDError",
    "SignatureError",
    "ProfileError",
    "WaiverError",
    "NotApplicable",
    "NotChecked",
    "HiveUnavailable",
]


class AuditError(Exception):
    """Base class of every error azvhdaudit raises about its input or its configuration."""


# --- containers -------------------------------------------------------------------------------


class ImageError(AuditError):
    """The image file (or one of its parents) cannot be read as a disk image."""


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The image file itself does not exist."""


class UnsupportedFormatError(ImageError):
    """The file is not a disk image format azvhdaudit recognises (VHD, VHDX, VMDK, QCOW2, raw)."""


class SpecialFileError(UnsupportedFormatError):
    """The path names a FIFO, a socket or a character device: only regular files and block devices are read
    (opening a FIFO would wait for a writer, a character device would read forever)."""


class CorruptImageError(ImageError):
    """A structure of the image (footer, header, table, region) is invalid: bad signature,
    checksum, or an entry pointing outside the file."""


class TruncatedImageError(CorruptImageError, EOFError):
    """The image file ends before a structure or a data block it references."""


class ParentError(ImageError):
    """A differencing disk's parent cannot be used."""


class ParentNotFoundError(ParentError, FileNotFoundError):
    """No parent was found at any location the child's parent locators name."""


class ParentMismatchError(ParentError):
    """The parent found does not match the child's recorded linkage (unique id / DataWriteGuid)."""


class ParentLoopError(ParentError):
    """The parent chain loops back to a disk already in the chain."""


# --- volumes and file systems -----------------------------------------------------------------


class VolumeError(AuditError):
    """The disk's partitions or file systems cannot be read."""


class NoPartitionTableError(VolumeError):
    """The disk holds neither an MBR nor a GPT partition table, nor a bare file system."""


class NoWindowsVolumeError(VolumeError):
    """No NTFS volume on the disk holds ``Windows\\System32\\config\\SYSTEM``."""


class EncryptedVolumeError(VolumeError):
    """The volume is encrypted (BitLocker ``-FVE-FS-``); its contents cannot be read offline."""


class FileSystemError(VolumeError):
    """A file system structure (NTFS MFT, FAT) is corrupt or cannot be read."""


class CorruptVolumeError(FileSystemError):
    """A file system's own links are inconsistent: a FAT cluster chain that loops or leaves the volume, an NTFS
    runlist or attribute list that points into itself."""


class GuestFileNotFoundError(FileSystemError, FileNotFoundError):
    """A file asked for by its Windows path does not exist in the guest file system."""


# --- registry ---------------------------------------------------------------------------------


class RegistryError(AuditError):
    """A registry hive cannot be read."""


class CorruptHiveError(RegistryError):
    """A hive's base block, bins or cells are invalid (bad signature, checksum, offset or size)."""


class HiveNotFoundError(RegistryError, FileNotFoundError):
    """A hive asked for is not present in the image (or was not opened)."""


class BCDError(RegistryError):
    """The boot configuration store cannot be decoded."""


# --- file contents ----------------------------------------------------------------------------


class SignatureError(AuditError):
    """A file's Authenticode signatures cannot be read or checked: no PE headers, a certificate table out of
    bounds or too large, signatures nested too deep; or the verifier itself (signify, a trust anchor kept in the
    package) cannot be loaded. The message names the file (its Windows path) or the anchor, and the field and
    value that are wrong."""


# --- audit configuration ----------------------------------------------------------------------


class ProfileError(AuditError, ValueError):
    """An unknown profile, rule selector or option was given."""


class WaiverError(AuditError, ValueError):
    """A waiver file cannot be parsed or names an unknown rule."""


class NotApplicable(Exception):  # a signal, not an error
    """Raised by a rule to say it does not apply to this image; carries the human reason.

    Kept apart from :class:`AuditError`: it is an outcome, not a failure.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotChecked(Exception):  # a signal, not an error
    """Raised by a rule or a fact to say its evidence is missing or unreadable; carries the human reason.

    The engine turns it into a *not checked* result, never a pass: its message is ``message`` when given (what
    was read, then why that does not decide), else ``"not checked: <reason>"``; ``expected``, ``actual`` and
    ``evidence`` (:class:`~azvhdaudit.report.Evidence`) show what was read before the evidence ran out. Kept
    apart from :class:`AuditError`: it is an outcome, not a failure.
    """

    def __init__(
        self,
        reason: str,
        message: str | None = None,
        *,
        expected: Any = None,
        actual: Any = None,
        evidence: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message = f"not checked: {reason}" if message is None else message
        self.expected = expected
        self.actual = actual
        self.evidence = tuple(evidence)


class HiveUnavailable(NotChecked):
    """A rule needs a hive (or the current control set) that could not be read: :attr:`hive` names it, the
    reason says why. The engine reports the rule as not checked."""

    def __init__(self, hive: str, reason: str) -> None:
        super().__init__(reason)
        self.hive = hive
