"""The registry view every rule reads through.

A :class:`Hive` is one hive file (SYSTEM, SOFTWARE, BCD ...) read by a backend; a :class:`RegistryView`
puts the hives of one image together under ``HKLM\\...`` paths and resolves ``CurrentControlSet``
through ``SYSTEM\\Select\\Current`` (never assumed to be ControlSet001).

Missing is a value, not an exception: a key or value that is not there is ``None``. Names are
case-insensitive, as in Windows. Values keep their registry type, their raw bytes and the decoded data.

Reference: Windows registry value types, winnt.h ``REG_*``.
"""

from __future__ import annotations

import datetime as _dt
from abc import ABC, abstractmethod
from codecs import utf_16_le_decode as _decode_utf16
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from azvhdaudit.errors import HiveNotFoundError

__all__ = [
    "RegType",
    "RegData",
    "RegValue",
    "RegKey",
    "Hive",
    "HiveState",
    "RegistryView",
    "decode_value",
    "split_path",
]

RegData = int | str | list[str] | bytes | None


class RegType(IntEnum):
    """Registry value types (winnt.h)."""

    NONE = 0
    SZ = 1
    EXPAND_SZ = 2
    BINARY = 3
    DWORD = 4
    DWORD_BIG_ENDIAN = 5
    LINK = 6
    MULTI_SZ = 7
    RESOURCE_LIST = 8
    FULL_RESOURCE_DESCRIPTOR = 9
    RESOURCE_REQUIREMENTS_LIST = 10
    QWORD = 11

    @property
    def reg_name(self) -> str:
        """The name ``reg query`` prints, e.g. ``REG_DWORD``."""
        return "REG_" + self.name

    @classmethod
    def name_of(cls, value: int) -> str:
        """``REG_DWORD`` for 4; ``REG_0x1234`` for a type Windows does not define."""
        try:
            return cls(value).reg_name
        except ValueError:
            return f"REG_0x{value:X}"


def _decode_sz(raw: bytes) -> str:
    text = _decode_utf16(raw[:-1] if len(raw) % 2 else raw, "replace", True)[0]
    nul = text.find("\x00")
    return text if nul < 0 else text[:nul]


# Every value read is decoded (a thousand an audit): the types as plain ints, the codec function itself
# (bytes.decode("utf-16-le") looks the codec up by name on every call).
_STRING_TYPES = frozenset((int(RegType.SZ), int(RegType.EXPAND_SZ), int(RegType.LINK)))
_DWORD = int(RegType.DWORD)
_DWORD_BIG_ENDIAN = int(RegType.DWORD_BIG_ENDIAN)
_QWORD = int(RegType.QWORD)
_MULTI_SZ = int(RegType.MULTI_SZ)


def decode_value(type_: int, raw: bytes) -> RegData:
    """Decode ``raw`` value data the way Windows interprets ``type_``.

    Short or odd data never raises: a DWORD shorter than four bytes decodes as its bytes padded,
    as ``reg query`` shows it; unknown types stay bytes.
    """
    if type_ in _STRING_TYPES:
        return _decode_sz(raw)
    if type_ == _DWORD:
        return int.from_bytes(raw[:4].ljust(4, b"\x00"), "little")
    if type_ == _DWORD_BIG_ENDIAN:
        return int.from_bytes(raw[:4].ljust(4, b"\x00"), "big")
    if type_ == _QWORD:
        return int.from_bytes(raw[:8].ljust(8, b"\x00"), "little")
    if type_ == _MULTI_SZ:
        parts = _decode_utf16(raw[:-1] if len(raw) % 2 else raw, "replace", True)[0].split("\x00")
        # A MULTI_SZ ends with two NULs; drop the empty strings that terminate it.
        while parts and parts[-1] == "":
            parts.pop()
        return parts
    return bytes(raw)


@dataclass(frozen=True)
class RegValue:
    """One registry value: its name (``""`` for the default value), type, raw bytes and decoded data."""

    name: str
    type: int
    raw: bytes
    data: RegData

    @classmethod
    def from_raw(cls, name: str, type_: int, raw: bytes) -> RegValue:
        return cls(name, type_, bytes(raw), decode_value(type_, raw))

    @property
    def type_name(self) -> str:
        return RegType.name_of(self.type)


class RegKey(ABC):
    """One registry key. Subclasses are provided by the backends."""

    #: the key's own name
    name: str
    #: the path from the hive root, backslash separated, without the hive name ("" for the root)
    path: str
    #: the hive's name (``SYSTEM``, ``SOFTWARE``, ``BCD`` ...)
    hive_name: str

    @property
    @abstractmethod
    def last_write(self) -> _dt.datetime | None:
        """Last-write time of the key (UTC), if the backend knows it."""

    @abstractmethod
    def subkeys(self) -> list[RegKey]:
        """The direct subkeys."""

    @abstractmethod
    def subkey(self, name: str) -> RegKey | None:
        """The direct subkey ``name`` (case-insensitive), or ``None``."""

    @abstractmethod
    def values(self) -> list[RegValue]:
        """All values of the key."""

    def value(self, name: str) -> RegValue | None:
        """The value ``name`` (case-insensitive; ``""`` = default value), or ``None``."""
        lname = name.lower()
        for value in self.values():
            if value.name.lower() == lname:
                return value
        return None

    def subkey_names(self) -> list[str]:
        return [k.name for k in self.subkeys()]

    def subkey_values(self, names: tuple[str, ...], limit: int | None = None) -> dict[str, dict[str, RegValue | None]]:
        """For each direct subkey (the first ``limit`` in list order), the values ``names`` of it: subkey name ->
        {name as asked -> the value as :meth:`value` reads it, or ``None``}. Backends may read it in one pass."""
        return {key.name: {name: key.value(name) for name in names} for key in self.subkeys()[:limit]}

    def find(self, path: str) -> RegKey | None:
        """Walk ``path`` (backslash or slash separated) below this key; ``None`` where it ends."""
        key: RegKey | None = self
        for part in split_path(path):
            if key is None:
                return None
            key = key.subkey(part)
        return key

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.hive_name}\\{self.path}>"


@dataclass(frozen=True)
class HiveState:
    """What is known about a hive file's state, for every verdict built on it."""

    #: primary and secondary sequence numbers in the base block differ
    dirty: bool = False
    #: transaction logs were replayed (in memory) to bring the hive up to date
    replayed: bool = False
    #: log files found beside the hive
    logs: tuple[str, ...] = ()
    #: a human note, e.g. why replay was impossible
    note: str = ""


class Hive(ABC):
    """One hive file opened by a backend."""

    #: ``SYSTEM``, ``SOFTWARE``, ``BCD`` ...
    name: str
    #: where the hive came from (path inside the image, or a file path)
    source: str
    #: which backend reads it (``regf`` or ``python-registry`` or ``memory``)
    backend: str
    state: HiveState
    #: the file name in the base block (offset 0x30, the last 31 characters of the path Windows loaded it
    #: from, e.g. ``emRoot\System32\Config\SOFTWARE``); ``""`` when not set or not known
    file_name: str = ""

    @abstractmethod
    def root(self) -> RegKey:
        """The hive's root key."""

    def key(self, path: str) -> RegKey | None:
        """The key at ``path`` from the root (case-insensitive), or ``None``."""
        return self.root().find(path)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds (file handles, buffers)."""


def split_path(path: str) -> list[str]:
    return [p for p in path.replace("/", "\\").split("\\") if p]


_HKLM_PREFIXES = ("hkey_local_machine", "hklm")


@dataclass
class RegistryView:
    """The hives of one image under one roof.

    Paths may start with ``HKLM\\`` (or ``HKEY_LOCAL_MACHINE\\``) or directly with the hive name:
    ``HKLM\\SYSTEM\\CurrentControlSet\\Services`` and ``SYSTEM\\CurrentControlSet\\Services`` are the same key.
    ``CurrentControlSet`` resolves through ``SYSTEM\\Select\\Current``.
    """

    hives: dict[str, Hive] = field(default_factory=dict)
    #: hives that could not be opened, with the reason (``"SOFTWARE": "not found at ..."``)
    unavailable: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.hives = {name.upper(): hive for name, hive in self.hives.items()}
        self.unavailable = {name.upper(): why for name, why in self.unavailable.items()}
        self._ccs: int | None | bool = False  # False = not yet resolved
        # paths as the rules write them -> resolve(path): each literal is asked for again and again
        self._resolved: dict[str, tuple[str, str] | None] = {}

    # --- hives --------------------------------------------------------------------------------

    def hive(self, name: str) -> Hive | None:
        return self.hives.get(name.upper())

    def has_hive(self, name: str) -> bool:
        return name.upper() in self.hives

    def why_unavailable(self, name: str) -> str:
        """Why hive ``name`` cannot be read, in words (for "not checked" results)."""
        name = name.upper()
        if name in self.hives:
            return ""
        return self.unavailable.get(name, f"the {name} hive was not opened")

    def close(self) -> None:
        for hive in self.hives.values():
            hive.close()

    # --- control sets -------------------------------------------------------------------------

    def _select(self, name: str) -> int | None:
        system = self.hive("SYSTEM")
        if system is None:
            return None
        key = system.key("Select")
        value = key.value(name) if key is not None else None
        if value is None or not isinstance(value.data, int):
            return None
        return value.data

    @property
    def current_control_set(self) -> int | None:
        """The number in ``SYSTEM\\Select\\Current``; falls back to the only ControlSet00n present."""
        if self._ccs is False:
            current = self._select("Current")
            if current is None:
                current = self._only_control_set()
            self._ccs = current
        return self._ccs  # type: ignore[return-value]

    @property
    def default_control_set(self) -> int | None:
        """The number in ``SYSTEM\\Select\\Default`` (the set the loader uses on next boot)."""
        return self._select("Default")

    def _only_control_set(self) -> int | None:
        system = self.hive("SYSTEM")
        if system is None:
            return None
        sets = [k.name for k in system.root().subkeys() if k.name.lower().startswith("controlset")]
        if len(sets) == 1 and sets[0][10:].isdigit():
            return int(sets[0][10:])
        return None

    @property
    def control_set_name(self) -> str | None:
        ccs = self.current_control_set
        return None if ccs is None else f"ControlSet{ccs:03d}"

    # --- paths --------------------------------------------------------------------------------

    def resolve(self, path: str) -> tuple[str, str] | None:
        """``(hive name, key path inside the hive)`` for ``path``, with CurrentControlSet resolved.

        ``None`` when the path names no known hive or CurrentControlSet cannot be resolved.
        """
        if path in self._resolved:
            return self._resolved[path]
        resolved = self._resolve(path)
        # the current control set, once known, stays the same: so does every path's resolution
        self._resolved[path] = resolved
        return resolved

    def _resolve(self, path: str) -> tuple[str, str] | None:
        parts = split_path(path)
        if parts and parts[0].lower() in _HKLM_PREFIXES:
            parts = parts[1:]
        if not parts:
            return None
        hive_name = parts[0].upper()
        rest = parts[1:]
        if hive_name == "SYSTEM" and rest and rest[0].lower() == "currentcontrolset":
            ccs = self.control_set_name
            if ccs is None:
                return None
            rest = [ccs, *rest[1:]]
        return hive_name, "\\".join(rest)

    def display_path(self, path: str) -> str:
        """``HKLM\\SYSTEM\\ControlSet001\\...`` for a path as the user wrote it."""
        resolved = self.resolve(path)
        if resolved is None:
            return path
        hive_name, key_path = resolved
        return "HKLM\\" + hive_name + ("\\" + key_path if key_path else "")

    def key(self, path: str) -> RegKey | None:
        """The key at ``path``, ``None`` when it is absent.

        A path into a hive that was not loaded or could not be read (one listed in :attr:`unavailable`: SAM
        and SECURITY unless asked for, a hive that failed to open) raises
        :class:`~azvhdaudit.errors.HiveNotFoundError` with the reason: nothing can be said about its keys,
        and ``None`` would read as "absent". A name that is no hive of the image at all is ``None``.
        """
        resolved = self.resolve(path)
        if resolved is None:
            return None
        hive = self.hive(resolved[0])
        if hive is None:
            if resolved[0] in self.unavailable:
                raise HiveNotFoundError(f"{self.display_path(path)}: {self.unavailable[resolved[0]]}")
            return None
        return hive.key(resolved[1])

    def value(self, path: str, name: str) -> RegValue | None:
        """The value ``name`` of the key at ``path``; ``None`` when the key or the value is absent. Raises as
        :meth:`key` does for a hive that is not loaded."""
        key = self.key(path)
        return None if key is None else key.value(name)

    def subkey_values(
        self, path: str, names: tuple[str, ...], limit: int | None = None
    ) -> dict[str, dict[str, RegValue | None]] | None:
        """The values ``names`` of every direct subkey of the key at ``path`` (see :meth:`RegKey.subkey_values`);
        ``None`` when the key is absent. Raises as :meth:`key` does for a hive that is not loaded."""
        key = self.key(path)
        return None if key is None else key.subkey_values(names, limit)

    def walk(self, path: str) -> Iterator[RegKey]:
        """The key at ``path`` and every key below it, depth first."""
        start = self.key(path)
        if start is None:
            return
        stack = [start]
        while stack:
            key = stack.pop()
            yield key
            stack.extend(reversed(key.subkeys()))

    def states(self) -> Mapping[str, HiveState]:
        return {name: hive.state for name, hive in self.hives.items()}
