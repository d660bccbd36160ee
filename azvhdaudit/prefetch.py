"""Read ahead for a remote audit: the reads of the opening and of the rules fetched in as few round trips as
their dependencies allow.

Each rule reads its evidence one range at a time, each read deciding the next (a key's subkey list, then the
subkey, then its values; a file's record, then its data). On a local image that costs nothing; on a remote
one every read that misses the cache is a network round trip, and the chains add up one after the other.

:func:`read_ahead_image` runs, on a remote image, the whole opening (the volumes, the boot store's lookup, the
hives, the OS facts) and the rules of the default profile on a scratch copy of the image under one
:func:`azvhdaudit.batch.gather`: independent branches advance side by side (the boot store's lookup next to
the path to the hives, the rules next to the OS facts), one round trip per step for all of them together.
The image is then opened as always, every read served from the cache. A rule the read-ahead completed with the
OS facts the real run has and with every read done is kept (:class:`Kept`: its outcome, or what it raised): the
engine replays it instead of running the rule a second time, with the default profile and options only (those
the read-ahead ran). The reports are the same bytes as a local audit's (the remote tests compare them).

Three things keep the chains short there. A hive's first bytes (:data:`HIVE_HEAD`, :data:`HIVE_HEADS`) come in the
round of its base block (:func:`azvhdaudit.batch.warm`), so the rules' first steps into it are there when they
start. A rule reads its
guest files through :class:`_WaitingFiles`: a file not read yet counts as missing for the rest of that round, the
rule runs on to its next file, and it runs again once every block it asked for is there; a rule that reads files
one after another (each boot driver's headers) so waits as many rounds as its deepest file, not as their sum. And
its registry through :class:`_MemoRegistry`, where a key or value not read yet counts as absent in the same way.

:func:`read_ahead` (called by the engine before it runs the rules) reads ahead, side by side, the rules the
image's read-ahead did not keep, and gives the engine those it kept. On a local image (or with
``AZVHDAUDIT_BATCH=0``) nothing runs and nothing is kept: a local audit runs as before.
"""

from __future__ import annotations

import functools
import logging
import os
import weakref
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any, cast

from azvhdaudit.batch import Deferred, gather, is_remote, progress, warm
from azvhdaudit.streams import ReadOnlyStream

__all__ = ["Kept", "read_ahead", "read_ahead_image", "PROFILE"]

log = logging.getLogger(__name__)

#: the profile whose rules an image's read-ahead runs (the engine's default)
PROFILE = "azure"


class Kept:
    """A rule's check as an image's read-ahead ran it, with the facts the real run has and every read done: its
    outcome, or the exception it raised. :meth:`replay` gives it again, so the engine need not run the rule twice."""

    __slots__ = ("outcome", "error")

    def __init__(self, outcome: Any, error: BaseException | None) -> None:
        self.outcome = outcome
        self.error = error

    def replay(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.outcome


#: the rules an image's read-ahead completed (with :data:`PROFILE` and the default options), by the remote source
#: the image reads
_KEPT: weakref.WeakKeyDictionary[Any, dict[str, Kept]] = weakref.WeakKeyDictionary()

_NOTHING_KEPT: dict[str, Kept] = {}


def _sources(ctx: Any) -> list[Any]:
    return [files for files in (getattr(ctx, "files", None), getattr(ctx, "boot_files", None)) if files is not None]


def _remote_of(stream: Any) -> Any:
    """The remote source at the bottom of ``stream`` (see :func:`azvhdaudit.batch.is_remote`), or ``None``."""
    from azvhdaudit.sources import RemoteFile

    seen = 0
    todo = [stream]
    while todo and seen < 64:
        seen += 1
        item = todo.pop()
        if isinstance(item, RemoteFile):
            return item if item.is_remote else None
        layer = getattr(item, "_layer", None)
        if layer is not None and callable(getattr(layer, "chain", None)):
            todo.extend(layer.chain())
            continue
        for attribute in ("file", "fh", "_stream", "_fh", "volume"):
            below = getattr(item, attribute, None)
            if below is not None and below is not item:
                todo.append(below)
    return None


def _default_options(ctx: Any) -> bool:
    from azvhdaudit.rules.base import AuditOptions

    return getattr(ctx, "profile", None) == PROFILE and getattr(ctx, "options", None) == AuditOptions()


def read_ahead(ctx: Any, rules: Iterable[Any]) -> dict[str, Kept]:
    """Run ``rules`` (each with a ``check(ctx)``) side by side on a remote image so that their reads are fetched
    together; return what the image's read-ahead kept of the rules it completed (:class:`Kept`, by rule id), which
    the caller may replay instead of running them. Nothing runs on a local image (and nothing is kept), nor for
    the rules kept. The outcomes of the rules run here are discarded: the caller runs them and meets them there."""
    if not any(is_remote(files) for files in _sources(ctx)):
        return _NOTHING_KEPT
    rules = list(rules)
    kept: dict[str, Kept] = {}
    if _default_options(ctx):
        for files in _sources(ctx):
            remote = _remote_of(files)
            if remote is not None:
                kept.update(_KEPT.get(remote, _NOTHING_KEPT))
        rules = [rule for rule in rules if rule.id not in kept]
    if rules:
        rounds = gather([functools.partial(rule.check, ctx) for rule in rules])
        log.debug("read ahead for %d rules in %d rounds", len(rules), rounds)
    return kept


#: bytes at the start of each hive file read in the round its base block is read: the base block, the root key and
#: the first hive bins, where the keys every audit walks first (the root's subkeys, the control sets) lie
HIVE_HEAD = 64 * 1024
#: the same for the hives whose first bins hold more of what the rules walk: SYSTEM's control set (its services,
#: Control and Enum keys) lies in the first bins Windows wrote. On the 127 GiB benchmark VHDX (the real Windows 7
#: SYSTEM hive) the rules used 40 of the 63 pages after the base block in SYSTEM's first 256 KiB and 5 in
#: SOFTWARE's; 512 KiB of SYSTEM let the hive bins come in 32 KiB units in as many round trips as 64 KiB ones
HIVE_HEADS = {"SYSTEM": 512 * 1024}

#: the flag of the rule read ahead in this context: set when a read of its files had to wait (:class:`_WaitingFiles`)
_WAITED: ContextVar[list[bool] | None] = ContextVar("azvhdaudit_read_ahead_waited", default=None)


def _waited() -> None:
    """Note that a read of the rule running here had to wait; outside a rule, the wait stops the task as always."""
    flag = _WAITED.get()
    if flag is None:
        raise Deferred
    flag[0] = True


class _WaitingStream(ReadOnlyStream):
    """A guest file of the scratch image as :class:`_WaitingFiles` gives it: a read whose blocks are not fetched yet
    gives zeros (noted, see :func:`_waited`), so that the rule goes on to its next file in the same round. It seeks
    as the guest file the real run reads does (:class:`~azvhdaudit.streams.ReadOnlyStream`)."""

    def __init__(self, fh: Any) -> None:
        super().__init__()
        self._fh = fh
        self._pos = 0
        self.size = fh.seek(0, os.SEEK_END)

    def read(self, size: int | None = -1) -> bytes:
        left = max(0, self.size - self._pos)
        size = left if size is None or size < 0 else min(size, left)
        self._fh.seek(self._pos)
        try:
            data = self._fh.read(size)
        except Deferred:
            _waited()
            data = bytes(size)
        self._pos += len(data)
        return bytes(data)

    def close(self) -> None:
        self._fh.close()
        super().close()


class _WaitingFiles:
    """The guest files a rule reads ahead on the scratch image: a look-up or read that has to wait for its blocks
    answers as for a missing file (and a file's bytes as zeros), the wait noted, and the rule runs on to its next
    file in the same round; at its end it waits (:class:`Deferred`) and runs again once the blocks are there. A rule
    that reads its files one after another (a driver's headers, then the next driver's) so costs as many rounds as
    its deepest file, not the sum of them. What it found meanwhile is discarded; nothing is cached from it."""

    def __init__(self, files: Any) -> None:
        self._files = files

    def __getattr__(self, name: str) -> Any:
        return getattr(self._files, name)

    def _ask(self, method: str, absent: Any, *args: Any) -> Any:
        try:
            return getattr(self._files, method)(*args)
        except Deferred:
            _waited()
            return absent

    def exists(self, path: str) -> bool:
        return bool(self._ask("exists", False, path))

    def is_dir(self, path: str) -> bool:
        return bool(self._ask("is_dir", False, path))

    def listdir(self, path: str) -> list[str] | None:
        return self._ask("listdir", None, path)  # type: ignore[no-any-return]

    def read(self, path: str, max_size: int = 16 * 1024 * 1024) -> bytes | None:
        return self._ask("read", None, path, max_size)  # type: ignore[no-any-return]

    def file_version(self, path: str) -> tuple[int, int, int, int] | None:
        return self._ask("file_version", None, path)  # type: ignore[no-any-return]

    def prefetch_versions(self, paths: Iterable[str]) -> None:
        self._ask("prefetch_versions", None, list(paths))

    def open(self, path: str) -> Any:
        try:
            return _WaitingStream(self._files.open(path))
        except Deferred:
            _waited()
            from azvhdaudit.errors import GuestFileNotFoundError

            raise GuestFileNotFoundError(f"{path}: not read yet") from None


class _MemoRegistry:
    """The scratch image's registry for the rules read ahead: a key, a value, what a rule asks of every subkey of a
    key (the Start value of every service) are looked up once, not again at each of the rule's runs; the rest as the
    view. A lookup that has to wait for its cells answers as for a key or value that is not there (not kept, the
    wait noted as :class:`_WaitingFiles` notes a file's), so that the rule goes on to its next lookup in the same
    round: a rule that tries one key after another (the display timeout: Group Policy, the scheme's setting, the OEM
    default, the factory default) waits as many rounds as its deepest lookup, not as their sum."""

    def __init__(self, view: Any) -> None:
        self._view = view
        self._memo: dict[tuple[Any, ...], Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)

    def _once(self, method: str, absent: Any, *args: Any) -> Any:
        key = (method, *args)
        if key not in self._memo:
            try:
                self._memo[key] = getattr(self._view, method)(*args)
            except Deferred:
                _waited()
                return absent
        return self._memo[key]

    def subkey_values(self, path: str, names: tuple[str, ...], limit: int | None = None) -> Any:
        return self._once("subkey_values", {}, path, tuple(names), limit)

    def key(self, path: str) -> Any:
        return self._once("key", None, path)

    def value(self, path: str, name: str) -> Any:
        return self._once("value", None, path, name)


class _Stages:
    """Steps of the scratch image done once in a gather: a step stopped by :class:`Deferred` runs again in the
    next round, a step done is not run again; one that failed fails again for whoever asks (and is dropped)."""

    def __init__(self) -> None:
        self.done: dict[str, Any] = {}

    def __call__(self, name: str, step: Callable[[], Any]) -> Any:
        if name not in self.done:
            self.done[name] = step()
            progress()  # the tasks waiting for this step run again
        return self.done[name]


def _waiting(files: Any) -> Any:
    return None if files is None else _WaitingFiles(files)


def read_ahead_image(scratch: Callable[[], Any], names: tuple[str, ...]) -> int:
    """Open a scratch copy of a remote image (``scratch()`` gives it: an :class:`~azvhdaudit.image.Image` with its
    partition layout read and nothing else) and run the rules of :data:`PROFILE` on it under one
    :func:`~azvhdaudit.batch.gather`, so that every read of the real opening and of the rules is in the cache
    afterwards; return the rounds. ``names`` are the hives to open. The scratch copy is closed and dropped."""
    from azvhdaudit import image as image_module
    from azvhdaudit.engine import select_rules
    from azvhdaudit.fs import GuestFileSystem, open_volume
    from azvhdaudit.rules.base import AuditContext, AuditOptions
    from azvhdaudit.secureboot_facts import boot_volume_files
    from azvhdaudit.volumes import ESP_TYPE

    image = scratch()
    stage = _Stages()
    kept: dict[str, Kept] = {}
    bcd_failed: list[bool] = []

    def volumes() -> None:
        stage("volumes", image._find_volumes)

    def registry() -> None:
        volumes()

        def opened() -> None:
            image.registry = image._open_registry(names)
            image.files = GuestFileSystem(image.windows_volume) if image.windows_volume is not None else None

        stage("registry", opened)

    def facts() -> None:
        registry()
        stage("facts", image._fill_facts)

    def bcd() -> Any:
        registry()

        def decoded() -> Any:
            hive = image.registry.hive("BCD")
            if hive is None:
                return None
            from azvhdaudit.bcd import decode_bcd

            try:
                return decode_bcd(hive)
            except Exception:  # the real opening meets it and reports it (in the facts the rules see: none kept)
                bcd_failed.append(True)
                return None

        return stage("bcd", decoded)

    def context() -> Any:
        store = bcd()
        return stage(
            "context",
            lambda: AuditContext(
                registry=cast(Any, _MemoRegistry(image.registry)),
                facts=image.facts,
                profile=PROFILE,
                options=AuditOptions(),
                files=_waiting(image.files),
                boot_files=_waiting(boot_volume_files(image)),
                bcd=store,
            ),
        )

    def probe(part: Any) -> None:
        """A partition's volume, its boot store and its hives, looked up next to the others'."""
        name = f"{image.source} partition {part.index} (offset {part.offset})"
        volume = stage(
            f"volume {part.index}", lambda: open_volume(image.container, part.offset, part.size, part.filesystem, name)
        )
        if volume is None:
            return
        paths: tuple[str, ...]
        if part.type_id in (ESP_TYPE, "0xEF"):
            paths = image_module.BCD_PATHS_UEFI
        else:
            paths = (image_module.SYSTEM_HIVE_PATH, *image_module.BCD_PATHS_BIOS)
        gather([functools.partial(volume.exists, path) for path in paths])
        places = [(path, "BCD") for path in paths if path != image_module.SYSTEM_HIVE_PATH and volume.exists(path)]
        if volume.kind == "ntfs" and volume.exists(image_module.SYSTEM_HIVE_PATH):
            places += [(f"{image_module.CONFIG_DIR}\\{hive}", hive) for hive in names]

        def open_and_close(path: str, hive: str) -> None:
            if volume.exists(path):
                # the hive's first bins in the same round as its base block (one read would stop at the first
                # block missing)
                warm(volume.open(path), 0, HIVE_HEADS.get(hive, HIVE_HEAD))
                image._open_hive(volume, path, hive).close()

        gather([functools.partial(open_and_close, *place) for place in places])

    def chain() -> None:
        """The opening as the real one runs it, the rules' context as soon as the hives are open, then the facts."""
        context()
        facts()

    def run(rule: Any) -> None:
        ctx = stage.done.get("context")
        if ctx is None:  # the chain before it in the round is still on its way there: nothing to run yet
            raise Deferred
        ready = "facts" in stage.done
        waited = [False]
        cached = set(ctx.cache)
        token = _WAITED.set(waited)
        try:
            outcome = rule.check(ctx)
        except Deferred:
            raise
        except Exception as err:
            if not ready or waited[0]:  # for want of the OS facts, or of a file's bytes: again once they are there
                raise Deferred from None
            kept[rule.id] = Kept(None, err)
            raise
        finally:
            _WAITED.reset(token)
            if waited[0]:  # what the rule cached from files not read yet is not kept
                for key in set(ctx.cache) - cached:
                    del ctx.cache[key]
        if waited[0] or not ready:  # again once the blocks are there, or with the facts the real run has
            raise Deferred
        # read with the facts the real run has: the engine replays it instead of running it again
        kept[rule.id] = Kept(outcome, None)

    rules = select_rules(PROFILE)
    tasks: list[Callable[[], Any]] = [chain]
    tasks += [functools.partial(probe, part) for part in image.facts.partitions]
    tasks += [functools.partial(run, rule) for rule in rules]
    try:
        rounds = gather(tasks)
    finally:
        registry_view = getattr(image, "registry", None)
        if registry_view is not None:
            registry_view.close()
    remote = _remote_of(image.container)
    if remote is not None and not bcd_failed:
        _KEPT[remote] = kept
    log.debug("read ahead for the opening and %d rules in %d rounds (%d rules kept)", len(rules), rounds, len(kept))
    return rounds
