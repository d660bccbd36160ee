"""An image's identity: its ComputerName, MachineGuid and machine SID, read while it is open, for the fleet view's
duplicate check (:mod:`azvhdaudit.overview`).

The identity is recorded in ``Report.facts["extra"]["identity"]`` by :func:`record_identity`, which
:func:`audit_with_identity` (the command line's audit) and :func:`azvhdaudit.fleet.audit_many` call while the image
is open (with ``identity=True``). Kept apart from the fleet view so that the command line's audit of one image does
not load the fleet's classes.

References: Microsoft, "Security identifiers" (the machine SID: S-1-5-21 and three sub-authorities, the account
domain SID the local SAM holds in ``SECURITY\\Policy\\PolAcDmS``).
"""

from __future__ import annotations

import os
import struct
from typing import Any

from azvhdaudit.errors import AuditError
from azvhdaudit.report import Report

__all__ = [
    "COMPUTER_NAME_KEY",
    "MACHINE_GUID_KEY",
    "MACHINE_SID_KEY",
    "identity_facts",
    "record_identity",
    "machine_sid",
    "audit_with_identity",
]

COMPUTER_NAME_KEY = r"HKLM\SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName"
MACHINE_GUID_KEY = r"HKLM\SOFTWARE\Microsoft\Cryptography"
#: the account domain of the local SAM: its SID is the machine SID
MACHINE_SID_KEY = r"HKLM\SECURITY\Policy\PolAcDmS"

_SID_TAIL = 24  # revision, count, authority (6 bytes), four sub-authorities: S-1-5-21-a-b-c


def machine_sid(data: bytes) -> str | None:
    """The machine SID at the end of a ``PolAcDmS`` default value, or ``None`` when the bytes there are not
    a machine SID (revision 1, authority 5, four sub-authorities, the first 21)."""
    if len(data) < _SID_TAIL:
        return None
    tail = data[-_SID_TAIL:]
    revision, count = tail[0], tail[1]
    authority = int.from_bytes(tail[2:8], "big")
    subs = struct.unpack("<4I", tail[8:])
    if revision != 1 or count != 4 or authority != 5 or subs[0] != 21:
        return None
    return "S-1-5-" + "-".join(str(s) for s in subs)


def _text(value: Any) -> str | None:
    if value is None or not isinstance(value.data, str):
        return None
    text: str = value.data.strip()
    return text or None


def identity_facts(registry: Any) -> dict[str, Any]:
    """``computer_name``, ``machine_guid`` and ``machine_sid`` (``None`` each when not read), and
    ``sid_read`` (whether the SECURITY hive was opened at all)."""

    def read(key: str, name: str) -> Any:
        try:
            return registry.value(key, name)
        except AuditError:
            return None

    facts: dict[str, Any] = {
        "computer_name": _text(read(COMPUTER_NAME_KEY, "ComputerName")),
        "machine_guid": _text(read(MACHINE_GUID_KEY, "MachineGuid")),
        "machine_sid": None,
        "sid_read": bool(registry.has_hive("SECURITY")),
    }
    if facts["machine_guid"]:
        facts["machine_guid"] = facts["machine_guid"].lower()
    if facts["sid_read"]:
        value = read(MACHINE_SID_KEY, "")
        if value is not None:
            facts["machine_sid"] = machine_sid(bytes(value.raw))
    return facts


def record_identity(report: Report, registry: Any) -> None:
    """Put :func:`identity_facts` into ``report.facts["extra"]["identity"]``."""
    if not report.facts:
        return
    report.facts.setdefault("extra", {})["identity"] = identity_facts(registry)


def audit_with_identity(source: Any, **audit_kwargs: Any) -> Report:
    """:func:`azvhdaudit.engine.audit` of a local image, with its identity recorded while it is open.

    URLs and file objects are audited as they are (no identity recorded here; ``audit_many(..., identity=True)``
    records it for URLs too).
    """
    from azvhdaudit.engine import _open_disk, _resolve_waivers, audit, wanted_hives

    if not isinstance(source, (str, os.PathLike)) or "://" in os.fspath(source):
        return audit(source, **audit_kwargs)
    # the options are checked before the image is opened, as audit() does: a bad waiver file or pattern is
    # reported as such, not hidden behind an image that cannot be read
    if audit_kwargs.get("waivers") is not None:
        audit_kwargs = dict(audit_kwargs, waivers=_resolve_waivers(audit_kwargs["waivers"]))
    hives = wanted_hives(
        audit_kwargs.get("profile", "azure"),
        audit_kwargs.get("select"),
        audit_kwargs.get("ignore"),
        audit_kwargs.get("role"),
        bool(audit_kwargs.get("with_lsa", False)),
    )
    with _open_disk(source, audit_kwargs.get("backend", "regf"), hives) as image:
        report = audit(image, **audit_kwargs)
        record_identity(report, image.registry)
    report.source = os.fspath(source)
    return report
