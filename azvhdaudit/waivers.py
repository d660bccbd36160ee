"""Waivers: set a rule's result aside, with a reason and an expiry date.

Reference: TOML v1.0.0 (https://toml.io/en/v1.0.0), read with :mod:`tomllib` (Python 3.11+) or
``tomli`` (Python 3.10). A waiver file::

    [[waiver]]
    rule = "rdp.port"
    reason = "RDP moved to 3390 by the landing zone; NSG rules follow"
    expires = 2027-01-01

JSON with the same fields (``{"waiver": [...]}`` or a bare list) is read too. An expired waiver no
longer applies; the report lists it. A waiver naming a rule id the catalogue does not know is an
error (:class:`WaiverError`), so a typo never silently waives nothing.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from azvhdaudit.errors import WaiverError
from azvhdaudit.localfiles import open_regular

__all__ = ["Waiver", "WaiverInput", "load_waivers", "parse_waivers", "split_expired", "check_known"]


@dataclass(frozen=True)
class Waiver:
    """One waived rule."""

    rule: str
    reason: str
    expires: _dt.date | None = None
    #: where the waiver came from (file name and entry number), for messages
    origin: str = ""

    def expired(self, today: _dt.date) -> bool:
        """True from the expiry date on (a waiver expiring today no longer applies)."""
        return self.expires is not None and today >= self.expires

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "reason": self.reason,
            "expires": self.expires.isoformat() if self.expires else None,
            "origin": self.origin,
        }


WaiverInput = Union[str, "os.PathLike[str]", Iterable[Waiver | Mapping[str, Any]], Mapping[str, Any]]


def _as_date(value: Any, where: str) -> _dt.date | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError as err:
            raise WaiverError(f"{where}: expires = {value!r} is not a date (YYYY-MM-DD)") from err
    raise WaiverError(f"{where}: expires = {value!r} is not a date (YYYY-MM-DD)")


def parse_waivers(entries: Iterable[Mapping[str, Any] | Waiver], origin: str = "<waivers>") -> list[Waiver]:
    """Waivers from mappings with ``rule``, ``reason`` and optional ``expires``."""
    waivers = []
    for number, entry in enumerate(entries, 1):
        where = f"{origin}: waiver #{number}"
        if isinstance(entry, Waiver):
            waivers.append(entry)
            continue
        if not isinstance(entry, Mapping):
            raise WaiverError(f"{where}: expected a table with rule, reason, expires; got {entry!r}")
        unknown = set(entry) - {"rule", "reason", "expires"}
        if unknown:
            raise WaiverError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        rule = entry.get("rule")
        reason = entry.get("reason")
        if not isinstance(rule, str) or not rule.strip():
            raise WaiverError(f"{where}: 'rule' must name a rule id, got {rule!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise WaiverError(f"{where} ({rule}): 'reason' is required and must be text")
        waivers.append(
            Waiver(
                rule=rule.strip(),
                reason=reason.strip(),
                expires=_as_date(entry.get("expires"), where),
                origin=where,
            )
        )
    return waivers


def load_waivers(source: WaiverInput) -> list[Waiver]:
    """Waivers from a TOML or JSON file, a mapping ``{"waiver": [...]}`` or a list of entries."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            with open_regular(path, WaiverError, "the waiver file") as fh:
                text = fh.read()
        except OSError as err:
            raise WaiverError(f"{path}: cannot read the waiver file: {err.strerror or err}") from err
        data: Any
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except ValueError as err:
                raise WaiverError(f"{path}: not valid JSON: {err}") from err
        else:
            if sys.version_info >= (3, 11):  # loaded here: most audits have no waiver file
                import tomllib
            else:  # pragma: no cover - exercised on Python 3.10 only
                import tomli as tomllib
            try:
                data = tomllib.loads(text.decode("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
                raise WaiverError(f"{path}: not valid TOML: {err}") from err
        return _from_data(data, str(path))
    return _from_data(source, "<waivers>")


def _from_data(data: Any, origin: str) -> list[Waiver]:
    if isinstance(data, Mapping):
        unknown = set(data) - {"waiver", "waivers"}
        if unknown:
            raise WaiverError(f"{origin}: unknown top-level key(s) {', '.join(sorted(unknown))}; use [[waiver]]")
        entries = data.get("waiver", data.get("waivers", []))
    else:
        entries = data
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Iterable):
        raise WaiverError(f"{origin}: expected a list of waivers, got {type(entries).__name__}")
    return parse_waivers(entries, origin)


def check_known(waivers: Iterable[Waiver], known_ids: Iterable[str]) -> None:
    """Raise :class:`WaiverError` for a waiver naming a rule the catalogue does not have."""
    known = set(known_ids)
    for waiver in waivers:
        if waiver.rule not in known:
            near = sorted(k for k in known if k.split(".")[0] == waiver.rule.split(".")[0])
            hint = f" (rules of that area: {', '.join(near)})" if near else ""
            raise WaiverError(f"{waiver.origin or '<waivers>'}: unknown rule id {waiver.rule!r}{hint}")


def split_expired(waivers: Iterable[Waiver], today: _dt.date) -> tuple[list[Waiver], list[Waiver]]:
    """(waivers that apply, waivers that expired)."""
    active: list[Waiver] = []
    expired: list[Waiver] = []
    for waiver in waivers:
        (expired if waiver.expired(today) else active).append(waiver)
    return active, expired
