"""What the two hive backends share: the key and hive classes, loop guards and error wrapping.

A backend only knows how to read cells (:class:`CellReader`); the keys built on it here are the same for
both, so both answer alike: case-insensitive names, ``""`` for the default value, raw bytes taken by the
format's rules and decoded by :func:`~azvhdaudit.registry.model.decode_value`, last-write times as aware
UTC datetimes. Every error a backend library raises on bad bytes becomes a
:class:`~azvhdaudit.errors.CorruptHiveError` naming the hive and the cell offset.

References: M. Suhanov, *Windows registry file format specification* ("Cell", "Key node", "Key value",
"Big data", "Index root" notes); winnt.h ``REG_*``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from azvhdaudit.errors import AuditError, CorruptHiveError, RegistryError
from azvhdaudit.registry.logs import filetime
from azvhdaudit.registry.model import Hive, HiveState, RegKey, RegValue

__all__ = ["BackendHive", "BackendKey", "CellReader", "MAX_DEPTH", "guard", "hash_name"]

log = logging.getLogger(__name__)

#: Windows limits key nesting to 512 levels; deeper means a loop the parent links hide.
MAX_DEPTH = 512
#: CM_KEY_VALUE_BIG: the largest value stored in one cell; bigger data sits in a ``db`` big-data record
BIG_DATA_SEGMENT = 0x3FD8

N = TypeVar("N")  # a backend's key node object
V = TypeVar("V")  # a backend's value record object

# What the backend libraries raise on bytes they cannot parse (dissect.cstruct raises EOFError on short
# data; python-registry its RegistryException family; both struct.error, IndexError ...). RecursionError
# covers list structures that point into themselves deeper than the guards below see.
_BACKEND_ERRORS: tuple[type[BaseException], ...] = (
    struct.error,
    EOFError,
    ValueError,
    KeyError,
    IndexError,
    NotImplementedError,
    OverflowError,
    RecursionError,
    MemoryError,
)


def register_backend_errors(*errors: type[BaseException]) -> None:
    """Add a backend library's own exception classes to the ones :func:`guard` wraps."""
    global _BACKEND_ERRORS
    _BACKEND_ERRORS = tuple(dict.fromkeys((*_BACKEND_ERRORS, *errors)))


class guard:
    """Turn a backend library's parse error into :class:`CorruptHiveError` naming ``source`` and ``where``;
    an ``OSError`` from the stream below becomes :class:`RegistryError` (the hive is not to blame).

    A class rather than a ``@contextmanager`` generator: every key and value read enters one, and the
    generator machinery cost more than the read of a cached cell.
    """

    __slots__ = ("source", "where")

    def __init__(self, source: str, where: Callable[[], str] | str) -> None:
        self.source = source
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: object) -> None:
        # never suppresses: returns None, or raises the wrapping error
        if kind is None or issubclass(kind, AuditError):
            return
        if issubclass(kind, OSError):
            # the bytes could not be read (the image, the file system below): not the hive's fault
            place = self.where() if callable(self.where) else self.where
            raise RegistryError(f"{self.source}: {place}: cannot read the hive: {err}") from err
        if issubclass(kind, _BACKEND_ERRORS):
            place = self.where() if callable(self.where) else self.where
            raise CorruptHiveError(f"{self.source}: {place}: {kind.__name__}: {err}") from err


def hash_name(name: str) -> int:
    """The ``lh`` hash of a key name: H = 37 * H + code unit of the upper-cased name, 32-bit."""
    value = 0
    for char in name.upper():
        value = (value * 37 + ord(char)) & 0xFFFFFFFF
    return value


class CellReader(ABC, Generic[N, V]):
    """The cell-level reads one backend provides. Offsets are relative to the hive bins data."""

    source: str
    bins_size: int

    @abstractmethod
    def root_offset(self) -> int: ...

    @abstractmethod
    def node(self, offset: int) -> N:
        """The key node (``nk``) at ``offset``; raise if there is none."""

    @abstractmethod
    def node_name(self, node: N) -> str: ...

    @abstractmethod
    def node_filetime(self, node: N) -> int: ...

    @abstractmethod
    def subkey_offsets(self, node: N) -> list[int]:
        """Offsets of the direct subkeys' key nodes, in list order (``ri`` lists flattened)."""

    def find_subkey(self, node: N, name: str) -> int | None:
        """Offset of the subkey ``name`` (case-insensitive); backends with a faster path override."""
        lname = name.lower()
        for offset in self.subkey_offsets(node):
            if self.node_name(self.node(offset)).lower() == lname:
                return offset
        return None

    @abstractmethod
    def value_records(self, node: N) -> list[V]: ...

    @abstractmethod
    def value_name(self, record: V) -> str: ...

    @abstractmethod
    def value_type(self, record: V) -> int: ...

    @abstractmethod
    def value_raw(self, record: V) -> bytes: ...

    def check_offset(self, offset: int, what: str) -> None:
        """A cell offset must fall inside the hive bins data, 8-byte aligned."""
        if offset >= self.bins_size or offset % 8:
            raise CorruptHiveError(
                f"{self.source}: {what}: cell offset 0x{offset:X} is outside the hive bins data "
                f"(size 0x{self.bins_size:X}) or not aligned"
            )

    def close(self) -> None:
        """Release what the reader holds (an optional hook)."""


class BackendKey(RegKey, Generic[N, V]):
    """A key read through a :class:`CellReader`; every accessor wraps backend errors."""

    def __init__(
        self,
        hive: BackendHive[N, V],
        offset: int,
        node: N,
        name: str,
        path: str,
        lineage: frozenset[int],
    ) -> None:
        self._hive = hive
        self._reader = hive.reader
        self._offset = offset
        self._node = node
        self.name = name
        self.path = path
        self.hive_name = hive.name
        # offsets of this key and its ancestors: a subkey list pointing back into them is a loop
        self._lineage = lineage | {offset}

    def _where(self) -> str:
        return f"key {self.path or '(root)'!r} (cell at offset 0x{self._offset:X})"

    @property
    def offset(self) -> int:
        """Offset of the key node relative to the hive bins data."""
        return self._offset

    @property
    def last_write(self) -> _dt.datetime | None:
        with guard(self._reader.source, self._where):
            return filetime(self._reader.node_filetime(self._node))

    def _child(self, offset: int) -> BackendKey[N, V]:
        if offset in self._lineage:
            raise CorruptHiveError(
                f"{self._reader.source}: {self._where()}: subkey list points back to the key node at "
                f"offset 0x{offset:X} (a loop)"
            )
        if len(self._lineage) >= MAX_DEPTH:
            raise CorruptHiveError(
                f"{self._reader.source}: {self._where()}: keys nested deeper than {MAX_DEPTH} levels"
            )
        with guard(self._reader.source, lambda: f"{self._where()}: subkey at offset 0x{offset:X}"):
            self._reader.check_offset(offset, self._where())
            node = self._reader.node(offset)
            name = self._reader.node_name(node)
        path = f"{self.path}\\{name}" if self.path else name
        return BackendKey(self._hive, offset, node, name, path, self._lineage)

    def subkeys(self) -> list[RegKey]:
        with guard(self._reader.source, lambda: f"{self._where()}: subkey list"):
            offsets = self._reader.subkey_offsets(self._node)
        return [self._child(offset) for offset in offsets]

    def subkey(self, name: str) -> RegKey | None:
        with guard(self._reader.source, lambda: f"{self._where()}: looking up subkey {name!r}"):
            offset = self._reader.find_subkey(self._node, name)
        return None if offset is None else self._child(offset)

    def _value(self, record: V, name: str | None = None) -> RegValue:
        reader = self._reader
        with guard(reader.source, lambda: f"{self._where()}: value {name!r}"):
            if name is None:
                name = reader.value_name(record)
            return RegValue.from_raw(name, reader.value_type(record), reader.value_raw(record))

    def values(self) -> list[RegValue]:
        with guard(self._reader.source, lambda: f"{self._where()}: value list"):
            records = self._reader.value_records(self._node)
        return [self._value(record) for record in records]

    def value(self, name: str) -> RegValue | None:
        # Only the names are read until one matches; the data of that one value alone is fetched.
        lname = name.lower()
        reader = self._reader
        with guard(reader.source, lambda: f"{self._where()}: value list"):
            records = reader.value_records(self._node)
        for record in records:
            with guard(reader.source, lambda: f"{self._where()}: value name"):
                vname = reader.value_name(record)
            if vname.lower() == lname:
                return self._value(record, vname)
        return None


class BackendHive(Hive, Generic[N, V]):
    """A hive read through a :class:`CellReader`."""

    def __init__(
        self,
        reader: CellReader[N, V],
        name: str,
        source: str,
        backend: str,
        state: HiveState,
        closers: tuple[Callable[[], Any], ...] = (),
    ) -> None:
        self.reader = reader
        self.name = name.upper()
        self.source = source
        self.backend = backend
        self.state = state
        self._closers = closers
        self._root: BackendKey[N, V] | None = None

    def root(self) -> BackendKey[N, V]:
        if self._root is None:
            with guard(self.source, "root key"):
                offset = self.reader.root_offset()
                self.reader.check_offset(offset, "root key")
                node = self.reader.node(offset)
            self._root = BackendKey(self, offset, node, "", "", frozenset())
        return self._root

    def close(self) -> None:
        self.reader.close()
        for closer in self._closers:
            try:
                closer()
            except OSError as err:  # closing a read-only handle: nothing to lose
                log.debug("closing %s: %s", self.source, err)
        self._closers = ()

    def __enter__(self) -> BackendHive[N, V]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} from {self.source} via {self.backend} {self.state}>"
