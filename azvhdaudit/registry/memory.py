"""An in-memory hive, for tests and for users who write their own checks.

Built from a mapping of key paths to values::

    hive = MemoryHive.build("SYSTEM", {
        "Select": {"Current": (RegType.DWORD, 1)},
        r"ControlSet001\\Control\\Terminal Server": {"fDenyTSConnections": 0},
    })

A bare ``int`` is a REG_DWORD, a ``str`` a REG_SZ, a ``list`` a REG_MULTI_SZ, ``bytes`` a REG_BINARY;
``(type, data)`` sets the type explicitly. Keys on the way are created.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from azvhdaudit.registry.model import Hive, HiveState, RegKey, RegType, RegValue, split_path

__all__ = ["MemoryHive", "MemoryKey", "encode_value"]


def encode_value(type_: int, data: Any) -> bytes:
    """The raw bytes Windows stores for ``data`` of ``type_``."""
    if isinstance(data, bytes):
        return data
    if type_ in (RegType.SZ, RegType.EXPAND_SZ, RegType.LINK):
        return (str(data) + "\x00").encode("utf-16-le")
    if type_ == RegType.MULTI_SZ:
        items = [data] if isinstance(data, str) else list(data)
        return ("".join(s + "\x00" for s in items) + "\x00").encode("utf-16-le")
    if type_ == RegType.DWORD:
        return int(data).to_bytes(4, "little")
    if type_ == RegType.DWORD_BIG_ENDIAN:
        return int(data).to_bytes(4, "big")
    if type_ == RegType.QWORD:
        return int(data).to_bytes(8, "little")
    raise TypeError(f"cannot encode {data!r} as {RegType.name_of(type_)}")


def _typed(data: Any) -> tuple[int, Any]:
    if isinstance(data, tuple):
        return int(data[0]), data[1]
    if isinstance(data, bool) or isinstance(data, int):
        return RegType.DWORD, int(data)
    if isinstance(data, str):
        return RegType.SZ, data
    if isinstance(data, list):
        return RegType.MULTI_SZ, data
    if isinstance(data, bytes):
        return RegType.BINARY, data
    raise TypeError(f"cannot infer a registry type for {data!r}")


class MemoryKey(RegKey):
    def __init__(self, hive_name: str, name: str, path: str) -> None:
        self.hive_name = hive_name
        self.name = name
        self.path = path
        self._subkeys: dict[str, MemoryKey] = {}
        self._values: dict[str, RegValue] = {}
        self._last_write = _dt.datetime(2024, 1, 1, tzinfo=_dt.timezone.utc)

    @property
    def last_write(self) -> _dt.datetime | None:
        return self._last_write

    def subkeys(self) -> list[RegKey]:
        return list(self._subkeys.values())

    def subkey(self, name: str) -> MemoryKey | None:
        return self._subkeys.get(name.lower())

    def values(self) -> list[RegValue]:
        return list(self._values.values())

    def value(self, name: str) -> RegValue | None:
        return self._values.get(name.lower())

    # --- building -----------------------------------------------------------------------------

    def add_key(self, name: str) -> MemoryKey:
        key = self._subkeys.get(name.lower())
        if key is None:
            path = f"{self.path}\\{name}" if self.path else name
            key = MemoryKey(self.hive_name, name, path)
            self._subkeys[name.lower()] = key
        return key

    def set(self, name: str, data: Any) -> RegValue:
        type_, payload = _typed(data)
        value = RegValue.from_raw(name, type_, encode_value(type_, payload))
        self._values[name.lower()] = value
        return value

    def delete(self, name: str) -> None:
        self._values.pop(name.lower(), None)


class MemoryHive(Hive):
    """A hive held in memory, built from a mapping (see the module docstring)."""

    backend = "memory"

    def __init__(self, name: str, source: str = "<memory>", state: HiveState | None = None) -> None:
        self.name = name.upper()
        self.source = source
        self.state = state or HiveState()
        self._root = MemoryKey(self.name, "", "")

    def root(self) -> MemoryKey:
        return self._root

    def ensure(self, path: str) -> MemoryKey:
        key = self._root
        for part in split_path(path):
            key = key.add_key(part)
        return key

    def delete_key(self, path: str) -> None:
        parts = split_path(path)
        parent = self._root.find("\\".join(parts[:-1])) if parts else None
        if isinstance(parent, MemoryKey) and parts:
            parent._subkeys.pop(parts[-1].lower(), None)

    def update(self, tree: Mapping[str, Mapping[str, Any] | None]) -> MemoryHive:
        """Layer ``tree`` on the hive: ``None`` as a key's mapping deletes the key, ``None`` as a
        value deletes the value."""
        for path, values in tree.items():
            if values is None:
                self.delete_key(path)
                continue
            key = self.ensure(path)
            for name, data in values.items():
                if data is None:
                    key.delete(name)
                else:
                    key.set(name, data)
        return self

    @classmethod
    def build(cls, name: str, tree: Mapping[str, Mapping[str, Any] | None], **kwargs: Any) -> MemoryHive:
        return cls(name, **kwargs).update(tree)
