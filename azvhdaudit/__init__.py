"""azvhdaudit — audit a Windows VM disk image offline, read-only, against Azure's upload requirements.

>>> import azvhdaudit
>>> with azvhdaudit.open_image("disk.vhd") as image:      # doctest: +SKIP
...     print(image.facts.os.name)
>>> report = azvhdaudit.audit("disk.vhd")                   # doctest: +SKIP
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from azvhdaudit.errors import (
    AuditError,
    BCDError,
    CorruptHiveError,
    CorruptImageError,
    CorruptVolumeError,
    EncryptedVolumeError,
    FileSystemError,
    GuestFileNotFoundError,
    HiveNotFoundError,
    HiveUnavailable,
    ImageError,
    ImageNotFoundError,
    NoPartitionTableError,
    NotApplicable,
    NotChecked,
    NoWindowsVolumeError,
    ParentError,
    ParentLoopError,
    ParentMismatchError,
    ParentNotFoundError,
    ProfileError,
    RegistryError,
    SignatureError,
    SpecialFileError,
    TruncatedImageError,
    UnsupportedFormatError,
    VolumeError,
    WaiverError,
)
from azvhdaudit.report import Evidence, Report, Result, Severity, Status

if TYPE_CHECKING:
    from azvhdaudit.capabilities import Capabilities, Capability
    from azvhdaudit.diff import diff
    from azvhdaudit.engine import audit
    from azvhdaudit.fleet import audit_many
    from azvhdaudit.image import open_image
    from azvhdaudit.overview import fleet_report
    from azvhdaudit.render.dataframe import to_dataframe
    from azvhdaudit.rules.base import DISK_CONTROLLERS, PROFILES, SECURITY_TYPES, Target

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "Evidence",
    "Report",
    "Result",
    "Severity",
    "Status",
    "Target",
    "Capabilities",
    "Capability",
    "PROFILES",
    "SECURITY_TYPES",
    "DISK_CONTROLLERS",
    "open_image",
    "audit",
    "audit_many",
    "diff",
    "fleet_report",
    "to_dataframe",
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
    "ProfileError",
    "SignatureError",
    "WaiverError",
    "NotApplicable",
    "NotChecked",
    "HiveUnavailable",
]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    # The data path and the engine import the dissect libraries; load them on first use.
    if name == "open_image":
        from azvhdaudit.image import open_image

        return open_image
    if name == "audit":
        from azvhdaudit.engine import audit

        return audit
    if name in ("Target", "PROFILES", "SECURITY_TYPES", "DISK_CONTROLLERS"):
        # the rules package registers every rule on import: loaded on first use too
        from azvhdaudit.rules import base

        return getattr(base, name)
    if name in ("Capabilities", "Capability"):
        # with the image facts' classes: a report derives them when asked (the command line's start needs neither)
        from azvhdaudit import capabilities

        return getattr(capabilities, name)
    if name == "audit_many":
        from azvhdaudit.fleet import audit_many

        return audit_many
    if name == "to_dataframe":  # one report or many: one long DataFrame (needs pandas)
        from azvhdaudit.render.dataframe import to_dataframe

        return to_dataframe
    if name == "fleet_report":
        from azvhdaudit.overview import fleet_report

        return fleet_report
    if name == "diff":
        # the module azvhdaudit.diff is callable (it calls its diff()); importing it makes it this attribute
        import azvhdaudit.diff as diff_module

        return diff_module
    raise AttributeError(f"module 'azvhdaudit' has no attribute {name!r}")
