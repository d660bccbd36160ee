"""Read ahead for a remote audit: the reads of the opening and of the rules fetched in as few round trips as
their dependencies allow.

Each rule reads its evidence one range at a time, each read deciding the next (a key's subkey list, then the
subkey, then its values; a file's record, then its data). On a local image that costs nothing; on a remote
one every read that misses the cache is a network round trip, and the chains add up one after the other.

:func:`read_ahead_image` runs, on a remote image, the whole opening (the volumes, the boot store's lookup, the
hives, the OS facts) and the rules of the default profile on a scratch copy of the image under one
:func:`azvhdaudit.batch.gather`: independent branches advance side by side (the boot store's lookup next to
the path to the hives, the rules next to the OS facts), one round trip per step for all of them together.
The image is then opened as always, and the engine runs the rules as always, every read served from the
cache; the scratch copy's outcomes are discarded, so the report is the same bytes as without it.

:func:`read_ahead` (called by the engine before it runs the rules) reads ahead, side by side, the rules the
image's read-ahead did not complete with the same profile and options: none after a default audit, so the
rules do not run a second time there. On a local image (or with ``AZVHDAUDIT_BATCH=0``) nothing runs.
"""

from __future__ import annotations

import functools
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from azvhdaudit.batch import Deferred, gather, is_remote

__all__ = ["read_ahead", "read_ahead_image", "PROFILE"]

log = logging.getLogger(__name__)

#: the profile whose rules an image's read-ahead runs (the engine's default)
PROFILE = "azure"

#: rule ids completed by an image's read-ahead (with :data:`PROFILE` and the default options), by the remote
#: source the image reads
_COMPLETED: weakref.WeakKeyDictionary[Any, frozenset[str]] = weakref.WeakKeyDictionary()


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


def read_ahead(ctx: Any, rules: Iterable[Any]) -> int:
    """Run ``rules`` (each with a ``check(ctx)``) side by side on a remote image so that their reads are
    fetched together; return the rounds run (0 on a local image, or when the image's read-ahead completed
    every one of them already). Outcomes and errors are discarded: the caller runs the rules afterwards and
    meets them there."""
    if not any(is_remote(files) for files in _sources(ctx)):
        return 0
    rules = list(rules)
    if _default_options(ctx):
        done: frozenset[str] = frozenset()
        for files in _sources(ctx):
            remote = _remote_of(files)
            if remote is not None:
                done |= _COMPLETED.get(remote, frozenset())
        rules = [rule for rule in rules if rule.id not in done]
    if not rules:
        return 0
    rounds = gather([functools.partial(rule.check, ctx) for rule in rules])
    log.debug("read ahead for %d rules in %d rounds", len(rules), rounds)
    return rounds


class _Stages:
    """Steps of the scratch image done once in a gather: a step stopped by :class:`Deferred` runs again in the
    next round, a step done is not run again; one that failed fails again for whoever asks (and is dropped)."""

    def __init__(self) -> None:
        self.done: dict[str, Any] = {}

    def __call__(self, name: str, step: Callable[[], Any]) -> Any:
        if name not in self.done:
            self.done[name] = step()
        return self.done[name]


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
    completed: set[str] = set()

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
            except Exception:  # the real opening meets it and reports it
                return None

        return stage("bcd", decoded)

    def context() -> Any:
        store = bcd()
        return stage(
            "context",
            lambda: AuditContext(
                registry=image.registry,
                facts=image.facts,
                profile=PROFILE,
                options=AuditOptions(),
                files=image.files,
                boot_files=boot_volume_files(image),
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
        try:
            rule.check(ctx)
        except Deferred:
            raise
        except Exception:
            if not ready:  # perhaps for want of the OS facts: again once they are there
                raise Deferred from None
            raise
        if ready:  # read with the facts the real run has: the engine need not read it ahead again
            completed.add(rule.id)

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
    if remote is not None:
        _COMPLETED[remote] = frozenset(completed)
    log.debug(
        "read ahead for the opening and %d rules in %d rounds (%d rules completed)", len(rules), rounds, len(completed)
    )
    return rounds
