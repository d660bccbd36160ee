"""What the two hive backends share: the key and hive classes, loop guards and error wrapping.

A backend only knows how to read cells (:class:`CellReader`); the keys built on it here are the same for
both, so both answer alike: case-insensitive names, ``""`` for the default value, raw bytes taken by the
format's rules and decoded by :func:`~azvhdaudit.registry.model.decode_value`, last-write times as aware
UTC datetimes. Every error a backend library raises on bad bytes becomes a
:class:`~azvhdaudit.errors.CorruptHiveError` naming the hive and the cell offset; an error of this package's
own code is not taken for a corrupt hive (it reaches the engine as a rule error).

References: M. Suhanov, *Windows registry file format specification* ("Cell", "Key node", "Key value",
"Big data", "Index root" notes); winnt.h ``REG_*``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import logging
import operator
import os
import struct
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from azvhdaudit.errors import AuditError, CorruptHiveError, ImageError, RegistryError
from azvhdaudit.registry.logs import filetime
from azvhdaudit.registry.model import Hive, HiveState, RegKey, RegValue

__all__ = ["BackendHive", "BackendKey", "CellReader", "MAX_DEPTH", "guard", "hash_name"]

log = logging.getLogger(__name__)

#: Windows limits key nesting to 512 levels; deeper means a loop the parent links hide.
MAX_DEPTH = 512
#: CM_KEY_VALUE_BIG: the largest value stored in one cell; bigger data sits in a ``db`` big-data record
BIG_DATA_SEGMENT = 0x3FD8
#: how many of a key's subkeys are read at a time (see :meth:`CellReader.prefetch`): a damaged list stops
#: the walk within one batch, and its cells are not all fetched first
PREFETCH_BATCH = 1024

N = TypeVar("N")  # a backend's key node object
V = TypeVar("V")  # a backend's value record object

# What the backend libraries raise on bytes they cannot parse: their own exception classes (registered by each
# backend module), and builtin errors raised inside their code (dissect.cstruct raises EOFError on short data;
# python-registry struct.error, IndexError ...; RecursionError or MemoryError on structures that point into
# themselves or claim absurd sizes). The same builtin errors raised by this package's own code are bugs, not
# corrupt hives: they are let through, for the engine to report the rule as an error.
_LIBRARY_ERRORS: tuple[type[BaseException], ...] = ()
_DATA_ERRORS: tuple[type[BaseException], ...] = (
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


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[str, ...]:
    """Where the backend libraries' code lives (dissect.* and python-registry's ``Registry`` package): found
    without importing them (the backend not in use is never loaded), when an error first needs it."""
    from importlib.util import find_spec

    dirs: list[str] = []
    for name in ("dissect", "Registry"):
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):  # pragma: no cover - both are dependencies
            continue
        locations = (spec.submodule_search_locations or ()) if spec is not None else ()
        dirs.extend(os.path.join(os.path.realpath(path), "") for path in locations)
    return tuple(dirs)


def raised_in_library(err: BaseException) -> bool:
    """Whether ``err`` was raised by code of a backend library: the innermost frame of its traceback that has
    a source file (dissect.cstruct runs structure parsers it compiles itself, named ``<compiled ...>``)."""
    files = []
    tb = err.__traceback__
    while tb is not None:
        files.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    real = [name for name in files if not name.startswith("<")]
    return bool(real) and os.path.realpath(real[-1]).startswith(_library_dirs())


def register_backend_errors(*errors: type[BaseException]) -> None:
    """Add a backend library's own exception classes to the ones :func:`guard` wraps."""
    global _LIBRARY_ERRORS
    _LIBRARY_ERRORS = tuple(dict.fromkeys((*_LIBRARY_ERRORS, *errors)))


def wrap_backend_error(source: str, place: str, err: BaseException) -> None:
    """Raise what :class:`guard` turns ``err`` into; return (for the caller to re-raise ``err``) when it is
    not a backend library's error. For hot paths that catch errors with ``try`` rather than a ``with``.

    A library's own exception class, or a builtin parse error (:data:`_DATA_ERRORS`) raised inside a
    library's code, is :class:`~azvhdaudit.errors.CorruptHiveError`; an ``OSError`` is
    :class:`~azvhdaudit.errors.RegistryError` (the bytes below could not be read). Anything else, and any
    error raised by this package's own code, is returned unchanged: the reader's own checks raise
    ``CorruptHiveError`` themselves, so what is left is a bug, to be seen as one.
    """
    if isinstance(err, ImageError):
        # the image below ends or is damaged where the hive's cells lie: the hive cannot be read there
        raise RegistryError(f"{source}: {place}: cannot read the hive: {err}") from err
    if isinstance(err, AuditError):
        return
    if isinstance(err, OSError):
        # the bytes could not be read (the image, the file system below): not the hive's fault
        raise RegistryError(f"{source}: {place}: cannot read the hive: {err}") from err
    if isinstance(err, _LIBRARY_ERRORS) or (isinstance(err, _DATA_ERRORS) and raised_in_library(err)):
        raise CorruptHiveError(f"{source}: {place}: {type(err).__name__}: {err}") from err


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
        if kind is None or err is None:
            return
        wrap_backend_error(self.source, self.where() if callable(self.where) else self.where, err)


@functools.lru_cache(maxsize=4096)
def hash_name(name: str) -> int:
    """The ``lh`` hash of a key name: H = 37 * H + code unit of the upper-cased name, 32-bit. Kept per name: the
    same few hundred names are looked up in every audit."""
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

    def value_data(self, record: V) -> tuple[int, bytes]:
        """A value's type and raw data (:meth:`value_type`, :meth:`value_raw`); backends may read both at once."""
        return self.value_type(record), self.value_raw(record)

    def find_values(self, records: list[V], wanted: dict[str, str]) -> dict[str, tuple[V, str]]:
        """The first record of each lower-cased name in ``wanted`` with its name, reading the names in list
        order and stopping once all are found; backends with a faster path override."""
        found: dict[str, tuple[V, str]] = {}
        for record in records:
            vname = self.value_name(record)
            lname = vname.lower()
            if lname in wanted and lname not in found:
                found[lname] = (record, vname)
                if len(found) == len(wanted):
                    break
        return found

    def node_values(self, offset: int, wanted: dict[str, str]) -> tuple[str, dict[str, tuple[str, int, bytes]]] | None:
        """The name of the key node at ``offset`` (inside the hive bins data, aligned) and the first value of each
        lower-cased name in ``wanted``: lower-cased name -> (name, type, raw data), read in one go; ``None`` when
        the backend has no such path or cannot take it for this key (the caller then reads it step by step, which
        raises on what is wrong). Never raises."""
        return None

    def list_cells(self, node: N) -> set[int]:
        """Offsets of the cells of ``node``'s subkey list itself: the list cell, and an index root's leaves."""
        return set()

    def prefetch(self, offsets: list[int]) -> None:
        """The cells at ``offsets`` are about to be read, every one: a backend reading from a stream may
        fetch them in fewer reads. Never raises (an offset or a read that fails is left to the read of
        the cell, which reports it)."""

    def prefetch_values(self, records: list[V]) -> None:
        """Likewise for the cells of value records about to be read, every one."""

    def check_offset(self, offset: int, what: str) -> None:
        """A cell offset must fall inside the hive bins data, 8-byte aligned."""
        if offset >= self.bins_size or offset % 8:
            raise CorruptHiveError(
                f"{self.source}: {what}: cell offset 0x{offset:X} is outside the hive bins data "
                f"(size 0x{self.bins_size:X}) or not aligned"
            )

    def close(self) -> None:
        """Release what the reader holds (an optional hook)."""


class _ValueNames(Generic[V]):
    """A key's value records and the names read so far.

    A lookup stops at the first matching name, so the records after it are not read; the names read on
    the way are kept, each lower-cased name with its first record, and the next lookup in the key goes on
    from where the last one stopped (an Uninstall entry is asked for DisplayName, then DisplayVersion).
    """

    __slots__ = ("records", "names", "first")

    def __init__(self, records: list[V]) -> None:
        self.records = records
        #: the names of ``records[:len(names)]``, in list order
        self.names: list[str] = []
        #: lower-cased name -> index of the first record of that name among those read
        self.first: dict[str, int] = {}

    def add(self, name: str) -> int:
        index = len(self.names)
        self.names.append(name)
        self.first.setdefault(name.lower(), index)
        return index


class BackendKey(RegKey, Generic[N, V]):
    """A key read through a :class:`CellReader`; every accessor wraps backend errors.

    Bounds of the walks over the hive's links: a path is at most :data:`MAX_DEPTH` keys deep, and a subkey
    that is the key itself or one of its ancestors is a loop (:class:`~azvhdaudit.errors.CorruptHiveError`);
    a subkey list holds at most the entries its cell holds (an index root points to leaves only, never to
    another index root), a value list at most the offsets its cell holds, and a big data record the segments
    its list cell holds; each list is read once per key. A name looked up and not found is "absent" only when
    no entry of the list is one the lookup skipped unread (:meth:`_check_entries`).

    The error wrapping on the per-record paths is a ``try`` around the reads rather than a :class:`guard`
    holding a closure for the message: a lookup enters one per record, and building the closure cost more
    than the read of a cached cell. The message is only built when an error is raised.
    """

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
        # offsets of the ancestors; with this key's own (built when a subkey is first read), a subkey list
        # pointing back into them is a loop
        self._ancestors = lineage
        self._lineage: frozenset[int] | None = None
        # subkeys looked up by name (None: absent): every path lookup walks from the root, and rules look
        # up ControlSet001, Services, Policies ... hundreds of times an audit
        self._found: dict[str, BackendKey[N, V] | None] | None = None
        self._names: _ValueNames[V] | None = None
        # the subkey list's entries were checked (see _check_entries)
        self._entries_checked = False

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

    def _child_lineage(self, offset: int) -> frozenset[int]:
        """The offsets above a subkey at ``offset``; a subkey that is one of them, or too deep, is corruption."""
        lineage = self._lineage
        if lineage is None:
            lineage = self._lineage = self._ancestors | {self._offset}
        if offset in lineage:
            raise CorruptHiveError(
                f"{self._reader.source}: {self._where()}: subkey list points back to the key node at "
                f"offset 0x{offset:X} (a loop)"
            )
        if len(lineage) >= MAX_DEPTH:
            raise CorruptHiveError(
                f"{self._reader.source}: {self._where()}: keys nested deeper than {MAX_DEPTH} levels"
            )
        return lineage

    def _child(self, offset: int) -> BackendKey[N, V]:
        lineage = self._child_lineage(offset)
        reader = self._reader
        try:
            if offset >= reader.bins_size or offset % 8:
                reader.check_offset(offset, self._where())
            node = reader.node(offset)
            name = reader.node_name(node)
        except BaseException as err:
            wrap_backend_error(reader.source, f"{self._where()}: subkey at offset 0x{offset:X}", err)
            raise
        path = f"{self.path}\\{name}" if self.path else name
        return BackendKey(self._hive, offset, node, name, path, lineage)

    def subkeys(self) -> list[RegKey]:
        reader = self._reader
        try:
            offsets = reader.subkey_offsets(self._node)
        except BaseException as err:
            wrap_backend_error(reader.source, f"{self._where()}: subkey list", err)
            raise
        children: list[RegKey] = []
        # Every listed key node is read: a batch at a time, the backend may fetch their cells together.
        for start in range(0, len(offsets), PREFETCH_BATCH):
            batch = offsets[start : start + PREFETCH_BATCH]
            reader.prefetch(batch)
            children.extend(self._child(offset) for offset in batch)
        return children

    def subkey(self, name: str) -> RegKey | None:
        # An ASCII name is looked up by its lower-cased form (hash and name hint alike); another is
        # compared by name only, and kept under its own spelling.
        known = name.lower() if name.isascii() else name
        found = self._found
        if found is None:
            found = self._found = {}
        elif known in found:
            return found[known]
        reader = self._reader
        try:
            offset = reader.find_subkey(self._node, name)
        except BaseException as err:
            wrap_backend_error(reader.source, f"{self._where()}: looking up subkey {name!r}", err)
            raise
        if offset is None:
            self._check_entries()
        child = None if offset is None else self._child(offset)
        found[known] = child
        return child

    def subkey_values(self, names: tuple[str, ...], limit: int | None = None) -> dict[str, dict[str, RegValue | None]]:
        # One pass over the subkey list without a key object per subkey: each subkey's node is read with the
        # checks of _child (bounds, loops, depth), its value names read once up to the last one asked for, and
        # only the values asked for decoded. Same answers and the same errors as subkeys() then value(name).
        reader = self._reader
        try:
            offsets = reader.subkey_offsets(self._node)
        except BaseException as err:
            wrap_backend_error(reader.source, f"{self._where()}: subkey list", err)
            raise
        offsets = offsets[:limit]
        wanted = {name.lower(): name for name in names}
        result: dict[str, dict[str, RegValue | None]] = {}
        for start in range(0, len(offsets), PREFETCH_BATCH):
            batch = offsets[start : start + PREFETCH_BATCH]
            reader.prefetch(batch)
            for offset in batch:
                self._child_lineage(offset)
                subkey = ""
                try:
                    if offset >= reader.bins_size or offset % 8:
                        reader.check_offset(offset, self._where())
                    fast = reader.node_values(offset, wanted)
                    if fast is not None:
                        subkey, hits = fast
                        result[subkey] = {
                            name: None if (got := hits.get(lname)) is None else RegValue.from_raw(*got)
                            for lname, name in wanted.items()
                        }
                        continue
                    node = reader.node(offset)
                    subkey = reader.node_name(node)
                    found = reader.find_values(reader.value_records(node), wanted)
                    values: dict[str, RegValue | None] = {}
                    for lname, name in wanted.items():
                        hit = found.get(lname)
                        values[name] = None if hit is None else RegValue.from_raw(hit[1], *reader.value_data(hit[0]))
                except BaseException as err:
                    place = f"values of subkey {subkey!r}" if subkey else f"subkey at offset 0x{offset:X}"
                    wrap_backend_error(reader.source, f"{self._where()}: {place}", err)
                    raise
                result[subkey] = values
        return result

    def _check_entries(self) -> None:
        """Before a name is said to be absent from this key: no entry of its subkey list may be one that a
        lookup skips unread. A lookup reads only the entries whose hash or name hint matches; an entry that
        points outside the hive bins, at the subkey list's own cells, or back at this key or an ancestor,
        names a subkey that cannot be read, and "absent" would rest on it. Such an entry is a
        :class:`~azvhdaudit.errors.CorruptHiveError` for every lookup that does not find its name (a lookup
        that finds it still works). Checked once per key; the cells themselves are not read (bound: one pass
        over the list's offsets)."""
        if self._entries_checked:
            return
        reader = self._reader
        try:
            offsets = reader.subkey_offsets(self._node)
            lists = reader.list_cells(self._node) if offsets else set()
        except BaseException as err:
            wrap_backend_error(reader.source, f"{self._where()}: subkey list", err)
            raise
        lineage = self._ancestors | {self._offset}
        # all entries at once (in C: the largest, the alignment of all OR-ed together, the two sets); the loop
        # below names the first bad one
        if (
            not offsets
            or max(offsets) < reader.bins_size
            and not functools.reduce(operator.or_, offsets) & 7
            and lists.isdisjoint(offsets)
            and lineage.isdisjoint(offsets)
        ):
            self._entries_checked = True
            return
        for index, offset in enumerate(offsets):
            if offset >= reader.bins_size or offset % 8:
                why = f"outside the hive bins data (size 0x{reader.bins_size:X}) or not aligned"
            elif offset in lists:
                why = "the subkey list's own cell"
            elif offset in lineage:
                why = "this key or one of its parents (a loop)"
            else:
                continue
            raise CorruptHiveError(
                f"{reader.source}: {self._where()}: entry {index} of its subkey list points at offset "
                f"0x{offset:X}, {why}: a subkey cannot be read, so no name can be said to be absent from this key"
            )
        self._entries_checked = True

    def _value_names(self) -> _ValueNames[V]:
        names = self._names
        if names is None:
            reader = self._reader
            try:
                records = reader.value_records(self._node)
            except BaseException as err:
                wrap_backend_error(reader.source, f"{self._where()}: value list", err)
                raise
            names = self._names = _ValueNames(records)
        return names

    def _value(self, record: V, name: str | None = None) -> RegValue:
        reader = self._reader
        try:
            if name is None:
                name = reader.value_name(record)
            return RegValue.from_raw(name, *reader.value_data(record))
        except BaseException as err:
            wrap_backend_error(reader.source, f"{self._where()}: value {name!r}", err)
            raise

    def values(self) -> list[RegValue]:
        names = self._value_names()
        records = names.records
        self._reader.prefetch_values(records)
        known = names.names
        values: list[RegValue] = []
        for index, record in enumerate(records):
            if index < len(known):
                values.append(self._value(record, known[index]))
            else:
                value = self._value(record)
                names.add(value.name)
                values.append(value)
        return values

    def value(self, name: str) -> RegValue | None:
        # Only the names are read until one matches; the data of that one value alone is fetched.
        lname = name.lower()
        names = self._names or self._value_names()
        index = names.first.get(lname)
        if index is None:
            index = self._read_names(names, lname)
            if index is None:
                return None
        return self._value(names.records[index], names.names[index])

    def _read_names(self, names: _ValueNames[V], lname: str) -> int | None:
        """Read the names after those already read, up to the first ``lname``; its index, or None."""
        value_name = self._reader.value_name
        records = names.records
        read = names.names
        first = names.first
        try:
            for index in range(len(read), len(records)):
                vname = value_name(records[index])
                read.append(vname)
                low = vname.lower()
                first.setdefault(low, index)
                if low == lname:
                    return index
        except BaseException as err:
            wrap_backend_error(self._reader.source, f"{self._where()}: value name", err)
            raise
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
        # path -> key (None: absent): the hive does not change while open, and rules ask for the same
        # keys (Services\..., Policies\...) many times an audit
        self._keys: dict[str, RegKey | None] = {}

    def root(self) -> BackendKey[N, V]:
        if self._root is None:
            with guard(self.source, "root key"):
                offset = self.reader.root_offset()
                self.reader.check_offset(offset, "root key")
                node = self.reader.node(offset)
            self._root = BackendKey(self, offset, node, "", "", frozenset())
        return self._root

    def key(self, path: str) -> RegKey | None:
        if path in self._keys:
            return self._keys[path]
        key = self._keys[path] = self.root().find(path)
        return key

    def close(self) -> None:
        # The keys point back at the hive: drop them, so that a closed hive (a whole hive's bytes with the
        # python-registry backend) is freed at once, not at the next full garbage collection.
        self._keys.clear()
        self._root = None
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
