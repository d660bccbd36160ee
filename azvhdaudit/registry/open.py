"""Open a hive file with one of the two backends, replaying its transaction logs when it is dirty.

::

    hive = open_hive(fh, "SYSTEM", source="C:/Windows/System32/config/SYSTEM",
                     logs={"LOG1": log1_fh, "LOG2": log2_fh})
    hive = open_hive_file("SYSTEM", backend="python-registry")   # finds SYSTEM.LOG1/.LOG2 itself

The base block is validated first (signature, checksum, version, file type, hive bins size, root cell);
a hive whose primary and secondary sequence numbers differ is dirty: its logs are replayed on an
in-memory copy and that copy is opened. Nothing is ever written. :class:`~azvhdaudit.registry.model.HiveState`
says what happened.

References: M. Suhanov, *Windows registry file format specification* ("Base block", "Dirty state of a
hive", "Multiple transaction log files"); see :mod:`azvhdaudit.registry.logs`.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from typing import BinaryIO

from azvhdaudit.errors import CorruptHiveError, HiveNotFoundError, RegistryError
from azvhdaudit.localfiles import open_regular
from azvhdaudit.registry.backend import BackendHive, CellReader, guard
from azvhdaudit.registry.logs import (
    BASE_BLOCK_SIZE,
    BaseBlock,
    ReplayError,
    parse_base_block,
    replay_logs,
    validate_primary,
)
from azvhdaudit.registry.model import HiveState

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "LOG_NAMES", "find_logs", "open_hive", "open_hive_file"]

log = logging.getLogger(__name__)

BACKENDS = ("regf", "python-registry")
DEFAULT_BACKEND = "regf"
#: the log files looked for beside a hive, in the order they are applied
LOG_NAMES = ("LOG1", "LOG2", "LOG")


def _size(fh: BinaryIO) -> int:
    position = fh.tell()
    try:
        return fh.seek(0, os.SEEK_END)
    finally:
        fh.seek(position)


def _read_all(fh: BinaryIO) -> bytes:
    fh.seek(0)
    return fh.read()


def _check_bins(base: BaseBlock, size: int, first_hbin: bytes, source: str) -> None:
    end = BASE_BLOCK_SIZE + base.hive_bins_size
    if size < end:
        raise CorruptHiveError(
            f"{source}: hive truncated: the base block (offset 0x28) announces 0x{base.hive_bins_size:X} bytes "
            f"of hive bins, ending at offset 0x{end:X}, but the file ends at 0x{size:X}"
        )
    if first_hbin[:4] != b"hbin":
        raise CorruptHiveError(
            f"{source}: no hive bin at offset 0x1000: signature {first_hbin[:4]!r}, expected b'hbin'"
        )


def open_hive(
    fh: BinaryIO,
    name: str,
    *,
    source: str,
    backend: str = DEFAULT_BACKEND,
    logs: Mapping[str, BinaryIO] | None = None,
) -> BackendHive:  # type: ignore[type-arg]
    """Open the hive in the readable, seekable stream ``fh``.

    ``name`` is the hive's name (``SYSTEM``, ``SOFTWARE``, ``BCD`` ...), ``source`` where it came from (for
    messages), ``logs`` its transaction logs by kind (``{"LOG1": fh, "LOG2": fh}``). With the ``regf``
    backend a clean hive is read lazily from ``fh``; a dirty one with logs, and any hive with
    ``python-registry``, is read whole. The caller keeps owning ``fh`` and the logs.

    Raises :class:`~azvhdaudit.errors.CorruptHiveError` for an invalid base block or a truncated hive,
    :class:`~azvhdaudit.errors.RegistryError` for an unknown backend.
    """
    if backend not in BACKENDS:
        raise RegistryError(f"unknown registry backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    try:
        fh.seek(0)
        head = fh.read(BASE_BLOCK_SIZE + 32)
        size = _size(fh)
    except OSError as err:
        raise RegistryError(f"{source}: cannot read the hive: {err}") from err
    if len(head) < BASE_BLOCK_SIZE:
        raise CorruptHiveError(
            f"{source}: hive truncated: {len(head)} bytes, the base block alone is {BASE_BLOCK_SIZE}"
        )
    base = parse_base_block(head, source)
    validate_primary(base, source)

    stream: BinaryIO = fh
    names = tuple(logs) if logs else ()
    state = HiveState(logs=names)
    if base.dirty:
        try:
            if not logs:
                raise ReplayError("no transaction logs beside the hive")
            log_data = {}
            for kind, handle in logs.items():
                try:
                    log_data[kind] = _read_all(handle)
                except OSError as err:
                    raise ReplayError(f"cannot read the {kind} log: {err}") from err
            with guard(source, "reading the hive for log replay"):
                whole = _read_all(fh)
            result = replay_logs(whole, base, log_data, source)
        except ReplayError as err:
            note = (
                f"dirty: sequence numbers {base.primary_sequence}/{base.secondary_sequence} differ; "
                f"logs not replayed: {err}; read as it is, recent changes may be missing"
            )
            log.warning("%s: %s", source, note)
            state = HiveState(dirty=True, replayed=False, logs=names, note=note)
        else:
            note = (
                f"dirty: sequence numbers {base.primary_sequence}/{base.secondary_sequence} differ; "
                f"{result.note}; replayed in memory"
            )
            log.info("%s: %s", source, note)
            state = HiveState(dirty=True, replayed=True, logs=names, note=note)
            data = bytes(result.data)
            stream = io.BytesIO(data)
            base = parse_base_block(data, source)
            head, size = data[: BASE_BLOCK_SIZE + 32], len(data)
    _check_bins(base, size, head[BASE_BLOCK_SIZE:], source)

    reader: CellReader  # type: ignore[type-arg]
    with guard(source, "opening the hive"):  # dissect.regf parses the root cell while opening
        if backend == "regf":
            from azvhdaudit.registry.regf import RegfReader

            reader = RegfReader(stream, source, base.hive_bins_size, base.minor)
        else:
            from azvhdaudit.registry.pyreg import PyRegReader

            reader = PyRegReader(_read_all(stream), source, base.hive_bins_size, base.minor)
    hive = BackendHive(reader, name, source, backend, state)
    hive.file_name = base.file_name.strip()
    hive.root()  # the root key must be readable, or the hive is of no use
    return hive


def find_logs(path: str | os.PathLike[str]) -> dict[str, str]:
    """The transaction logs beside the hive at ``path``: ``{"LOG1": ".../SYSTEM.LOG1", ...}``.

    Names are matched case-insensitively (``system.log1`` is found for ``SYSTEM``)."""
    path = os.fspath(path)
    folder, base = os.path.split(path)
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return {}
    by_lower = {entry.lower(): entry for entry in entries}
    found: dict[str, str] = {}
    for kind in LOG_NAMES:
        entry = by_lower.get(f"{base}.{kind}".lower())
        if entry is not None:
            found[kind] = os.path.join(folder, entry)
    return found


def open_hive_file(
    path: str | os.PathLike[str],
    name: str | None = None,
    *,
    backend: str = DEFAULT_BACKEND,
    logs: str | Mapping[str, str | os.PathLike[str]] | None = "auto",
) -> BackendHive:  # type: ignore[type-arg]
    """Open the hive file at ``path`` read-only.

    ``name`` defaults to the file name upper-cased. ``logs="auto"`` finds ``<path>.LOG1``/``.LOG2``/``.LOG``
    beside it; a mapping names them explicitly; ``None`` opens without logs. The logs are read while
    opening and closed at once; the hive's ``close()`` closes the hive file.
    """
    path = os.fspath(path)
    if name is None:
        name = os.path.basename(path).upper()
    if logs == "auto":
        log_paths: Mapping[str, str | os.PathLike[str]] = find_logs(path)
    elif logs is None:
        log_paths = {}
    elif isinstance(logs, str):
        raise RegistryError(f"logs must be 'auto', None or a mapping, not {logs!r}")
    else:
        log_paths = logs
    try:
        fh = open_regular(path, RegistryError, "the hive")  # closed by the hive
    except FileNotFoundError as err:
        raise HiveNotFoundError(f"{path}: no such hive file") from err
    except OSError as err:
        raise RegistryError(f"{path}: cannot open the hive: {err}") from err
    handles: dict[str, BinaryIO] = {}
    try:
        for kind, log_path in log_paths.items():
            try:
                # a FIFO or a device named like a log is refused (RegistryError), not waited on
                handles[kind] = open_regular(log_path, RegistryError, f"the {kind} transaction log")
            except OSError as err:
                log.warning("%s: cannot open transaction log %s: %s", path, log_path, err)
        hive = open_hive(fh, name, source=path, backend=backend, logs=handles or None)
    except BaseException:
        fh.close()
        for handle in handles.values():
            handle.close()
        raise
    # The logs were read whole if they were needed; only the hive stream stays in use.
    for handle in handles.values():
        handle.close()
    hive._closers = (fh.close,)
    return hive
