"""Reads that do not depend on each other, fetched together: one round trip for many ranges.

A remote source (:class:`azvhdaudit.sources.RemoteFile`) pays a network round trip for every range it
fetches, and the layers above it (container block maps, NTFS runs, hive cells, PE headers) read one range
at a time, each read deciding the next. Many of those chains are independent of each other: the update
table's binaries, the hives, the files looked up on the way to known paths. :func:`gather` runs such
independent reading tasks side by side without threads and without the layers in between knowing:

1. every task runs; when a read misses the remote source's block cache, the source records the blocks it
   needs and stops the task with :class:`Deferred` (a ``BaseException``, so no ``except Exception`` in a
   parser on the way turns it into a verdict);
2. the blocks a stopped task asked for are requested at once, concurrently with those of the tasks before it
   (:meth:`~azvhdaudit.sources.RemoteFile.start_blocks`), while the next tasks run: parsing overlaps the waiting;
3. a stopped task runs again from its start as soon as its own blocks have landed, now further along (its
   earlier reads hit the cache); one that stopped with no block to wait for (it needs what another task makes)
   runs again after a task that made something (:func:`progress`).

The round trips are as many as the deepest chain of dependent reads among the tasks, not the sum over all
tasks: a task counts one more when it waited for requests that it, or a task as deep as it, made (none when it
waited for requests made earlier by shallower tasks). The tasks' results are not kept: the caller runs its code
as before afterwards, and every read it makes is served from the cache, so the results are the same bytes as
without :func:`gather`. A task that fails for any other reason is dropped here; the caller's own run meets the
same failure and reports it. :func:`warm` reads a range so that all its blocks are asked for in one round.

A gather inside a task of another gather (a rule that reads its files side by side, itself read ahead with the
other rules by :mod:`azvhdaudit.prefetch`) does not fetch on its own: its tasks' blocks join the outer round,
and the task that called it stops until they are there, so the nested reads cost no round trips of their own.

How much a missing read fetches is the reader's to say: a remote source caches pages of a few KiB and fetches,
around each page a read misses, the aligned :func:`fetch_unit` the layer reading names (small for an MFT record,
an index block or a PE header; large for hive bins, whose cells lie near each other), its own default where no
layer names one. The layers set it where they read (:func:`fetch_unit` as a context manager), knowing nothing of
the source below; on a local file it changes nothing.

On a local file nothing is deferred: :func:`gather` is only called where the source is remote
(:func:`is_remote`), so a local audit runs exactly as before. ``AZVHDAUDIT_BATCH=0`` in the environment
switches batching off (every range fetched on its own, one after the other), to compare or to rule it out.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextvars import ContextVar, Token
from typing import Any, Protocol

__all__ = [
    "Deferred",
    "Wants",
    "enabled",
    "fetch_unit",
    "gather",
    "is_remote",
    "progress",
    "unit",
    "wants",
    "warm",
]

log = logging.getLogger(__name__)

#: rounds :func:`gather` runs at most: a bound on the re-runs, far above the deepest chain of reads seen
#: (container map -> MFT record -> index blocks -> file data: about a dozen)
MAX_ROUNDS = 32


class _Fetcher(Protocol):
    stats: Any

    @property
    def cache_capacity(self) -> int:
        """Blocks the source's cache holds: what one gather may fetch before it pushes out its own blocks."""

    def start_blocks(self, indexes: Iterable[int]) -> tuple[set[Future[bytes]], int]: ...

    def block_of(self, future: Future[bytes]) -> int: ...

    def land(self, future: Future[bytes]) -> None: ...

    def abandon(self) -> None: ...


class Deferred(BaseException):
    """A read inside :func:`gather` needs blocks not fetched yet; the task runs again once they are.

    A ``BaseException`` on purpose: it passes through the parsers' ``except Exception`` handlers, which would
    otherwise take it for damaged data.
    """


class Wants:
    """The blocks stopped tasks asked for, by source."""

    def __init__(self, fetched: dict[int, int] | None = None) -> None:
        self.blocks: dict[int, tuple[_Fetcher, set[int]]] = {}
        #: blocks fetched by earlier rounds of the same gather, by source
        self.fetched = fetched if fetched is not None else {}
        #: reads too large for the gather met so far (see :meth:`room`): their tasks are dropped
        self.oversized = 0
        #: whether the task made something others may wait for (:func:`progress`)
        self.progressed = False

    def room(self, source: _Fetcher, count: int) -> bool:
        """Whether ``count`` more blocks of ``source`` fit in this gather: at most half the source's cache in
        all rounds together, so that no round pushes out what an earlier one fetched (a larger read, such as
        a dirty hive read whole for its log replay, is left to the caller's own run: the task is dropped)."""
        entry = self.blocks.get(id(source))
        wanted = len(entry[1]) if entry else 0
        if self.fetched.get(id(source), 0) + wanted + count <= source.cache_capacity // 2:
            return True
        self.oversized += 1
        return False

    def add(self, source: _Fetcher, indexes: Iterable[int]) -> None:
        entry = self.blocks.setdefault(id(source), (source, set()))
        entry[1].update(indexes)

    def __bool__(self) -> bool:
        return any(indexes for _, indexes in self.blocks.values())


_WANTS: ContextVar[Wants | None] = ContextVar("azvhdaudit_batch_wants", default=None)

#: the bytes a read missing a remote source's cache fetches around each missing page (see :func:`fetch_unit`)
_UNIT: ContextVar[int | None] = ContextVar("azvhdaudit_fetch_unit", default=None)


class _Unit:
    """The context of :func:`fetch_unit`."""

    __slots__ = ("size", "_token")

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError(f"a fetch unit must be positive, not {size}")
        self.size = size
        self._token: Token[int | None] | None = None

    def __enter__(self) -> None:
        self._token = _UNIT.set(self.size)

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _UNIT.reset(self._token)
            self._token = None


def fetch_unit(size: int) -> _Unit:
    """A context in which a read that misses a remote source's cache fetches the aligned ``size`` bytes around each
    page it misses (those of them not cached yet), not the source's default: said by the layer that knows what it
    reads (one MFT record, a PE header, hive bins)::

        with fetch_unit(4096):
            fh.seek(offset)
            data = fh.read(1024)

    Nests, the innermost winning; the context is the thread's own (a :class:`~contextvars.ContextVar`). Changes
    nothing below a local file, which fetches no pages."""
    return _Unit(size)


def unit() -> int | None:
    """The fetch unit the readers in this context asked for (:class:`fetch_unit`), or ``None``: the source's own."""
    return _UNIT.get()


def wants() -> Wants | None:
    """The collector of the :func:`gather` round running in this context, or ``None`` outside one."""
    return _WANTS.get()


class _Task:
    """A task of :func:`gather`, its depth (the round trips it waited for, one after another, counting those of the
    task whose work it waited for) and the requests it waits on."""

    __slots__ = ("run", "depth", "waits", "awaited")

    def __init__(self, run: Callable[[], Any]) -> None:
        self.run = run
        self.depth = 0
        self.waits: set[Future[bytes]] = set()
        self.awaited: tuple[Future[bytes], ...] = ()


def gather(tasks: Iterable[Callable[[], Any]], *, max_rounds: int = MAX_ROUNDS) -> int:
    """Run independent reading ``tasks`` so that their remote reads are fetched together; return the rounds: the
    most round trips a task waited for one after another (the sequential round trips).

    A task stopped by a missing block asks for its blocks at once, concurrently with those of the tasks before it
    (:meth:`azvhdaudit.sources.RemoteFile.start_blocks`), and runs again as soon as they are there while the other
    tasks run, so that parsing overlaps the waiting. A task stopped with no block to wait for (one that needs what
    another task makes) runs again after a task that made something (:func:`progress`). Errors of the fetch itself
    propagate (an :class:`~azvhdaudit.errors.ImageError` naming the URL and the range) once every request still on
    its way has ended; any other failure of a task only drops the task. Results are discarded: run the real code
    afterwards.
    """
    outer = _WANTS.get()
    if outer is not None:
        return _within(outer, list(tasks))
    ready = deque(_Task(task) for task in tasks)
    parked: list[_Task] = []  # waiting on fetches
    idle: list[_Task] = []  # waiting on another task
    source_of: dict[Future[bytes], _Fetcher] = {}
    depth_of: dict[Future[bytes], int] = {}  # the depth of the task that made each request, plus one
    fetched: dict[int, int] = {}
    sources: dict[int, _Fetcher] = {}
    deepest = 0
    try:
        while ready or parked:
            while ready:
                task = ready.popleft()
                collected = Wants(fetched)
                token = _WANTS.set(collected)
                try:
                    task.run()
                except Deferred:
                    if collected.oversized or task.depth >= max_rounds:
                        continue
                    for key, (source, indexes) in collected.blocks.items():
                        sources[key] = source
                        started, new = source.start_blocks(indexes)
                        fetched[key] = fetched.get(key, 0) + new
                        for future in started:
                            source_of[future] = source
                            depth_of.setdefault(future, task.depth + 1)
                        task.waits |= started
                    task.awaited = tuple(task.waits)
                    (parked if task.waits else idle).append(task)
                except Exception as err:  # the caller's own run meets it again and reports it there
                    log.debug("read-ahead task %r stopped: %s", task.run, err)
                finally:
                    _WANTS.reset(token)
                if collected.progressed and idle:
                    for waiting in idle:
                        waiting.depth = max(waiting.depth, task.depth)
                    ready.extend(idle)
                    idle = []
            if not parked:
                break
            done, _ = wait(set().union(*(task.waits for task in parked)), return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: source_of[f].block_of(f)):
                source_of[future].land(future)
            still: list[_Task] = []
            for task in parked:
                task.waits -= done
                if task.waits:
                    still.append(task)
                    continue
                # one round trip more for a task that waited for requests it made, or made by tasks as deep as it;
                # none for one whose requests were all made by shallower tasks, earlier
                task.depth = max(task.depth, *(min(depth_of[f], task.depth + 1) for f in task.awaited))
                task.awaited = ()
                deepest = max(deepest, task.depth)
                ready.append(task)
            parked = still
    except BaseException:
        for source in sources.values():
            source.abandon()
        raise
    counted = {id(source.stats): source.stats for source in sources.values()}
    for stats in counted.values():
        stats.round_trips += deepest
    return deepest


def progress() -> None:
    """Say, from a task of :func:`gather`, that it made something other tasks may wait for (an opened volume, a
    built context): the tasks stopped with no block to wait for run again after it. Outside a gather, nothing."""
    collected = _WANTS.get()
    if collected is not None:
        collected.progressed = True


def _within(outer: Wants, tasks: list[Callable[[], Any]]) -> int:
    """A gather inside another one's round (a rule that reads its files side by side, itself read ahead with the
    other rules): run every task once, its missing blocks noted with the outer round's, and stop the calling
    task if any task waits for them, so that the outer gather fetches them in its own round trip."""
    deferred = False
    for task in tasks:
        oversized = outer.oversized
        try:
            task()
        except Deferred:
            deferred = deferred or outer.oversized == oversized
        except Exception as err:  # the caller's own run meets it again and reports it there
            log.debug("read-ahead task %r stopped: %s", task, err)
    if deferred:
        raise Deferred
    return 1


def warm(fh: Any, offset: int, length: int, chunk: int = 64 * 1024) -> None:
    """Read ``length`` bytes of ``fh`` at ``offset`` so that, inside a :func:`gather` round, every block they lie
    in is asked for in this round: chunk by chunk, a chunk whose blocks are missing noting them and the next
    chunk read all the same (one read would stop at its first missing block); :class:`Deferred` at the end when
    any was missing. The bytes are not kept. Outside a gather it reads them (what a cache below keeps)."""
    missing = False
    end = offset + length
    while offset < end:
        fh.seek(offset)
        try:
            fh.read(min(chunk, end - offset))
        except Deferred:
            missing = True
        offset += chunk
    if missing:
        raise Deferred


def enabled() -> bool:
    """Whether reads are batched: unless ``AZVHDAUDIT_BATCH=0`` is in the environment."""
    return os.environ.get("AZVHDAUDIT_BATCH", "1").strip() != "0"


def is_remote(stream: Any) -> bool:
    """Whether ``stream`` (an image's container, a file object) reads, at the bottom, from a remote source.

    Follows the attributes the readers here keep their lower file in (``_layer.chain()`` of a container,
    ``file``/``fh`` of a counted file, ``_stream``/``_fh`` of a volume and dissect's range streams,
    ``volume`` of the guest file system); anything else is local. False when batching is switched off
    (:func:`enabled`), so that the callers fetch nothing ahead.
    """
    from azvhdaudit.sources import RemoteFile

    if not enabled():
        return False
    seen = 0
    todo = [stream]
    while todo and seen < 64:
        seen += 1
        item = todo.pop()
        if isinstance(item, RemoteFile):
            return item.is_remote
        layer = getattr(item, "_layer", None)
        if layer is not None and callable(getattr(layer, "chain", None)):
            todo.extend(layer.chain())
            continue
        for attribute in ("file", "fh", "_stream", "_fh", "volume"):
            below = getattr(item, attribute, None)
            if below is not None and below is not item:
                todo.append(below)
    return False
