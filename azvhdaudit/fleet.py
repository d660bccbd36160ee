"""Audit many images at once — in a process pool, or on a Dask cluster — wherever the images live.

References:
- Python ``concurrent.futures`` (``ProcessPoolExecutor``, ``as_completed``):
  https://docs.python.org/3/library/concurrent.futures.html
- Dask distributed (``Client.submit``, ``distributed.as_completed``): https://distributed.dask.org/
- :mod:`azvhdaudit.sources` for URLs (``file://``, ``http(s)://``, ``az://``/``abfs://``).

    >>> from azvhdaudit.fleet import audit_many
    >>> for report in audit_many(urls, workers=4, storage_options={"connection_string": conn}):  # doctest: +SKIP
    ...     print(report.source, "OK" if report.passed else [r.rule_id for r in report.failed])

Every source gives exactly one :class:`~azvhdaudit.report.Report`, in the order the audits finish. A source
that cannot be audited — missing, unreadable, not a disk image, no Windows volume, a store that refuses the
credentials, a worker that died — gives a report like any other whose only result is the error result
:data:`UNREADABLE_ID` (status ``error``, the message naming the problem, ``actual`` the exception's class),
with empty facts. So one loop handles a whole fleet: ``report.passed`` is False and ``report.exit_code()``
is 1 for such an image as for a failing one, and ``report.get(UNREADABLE_ID)`` tells the two apart. A bad
image never stops the others; a bad *option* (unknown profile, rule pattern, waiver file, keyword) raises
:class:`~azvhdaudit.errors.ProfileError`, :class:`~azvhdaudit.errors.WaiverError` or :class:`TypeError`
when :func:`audit_many` is called, before anything runs.

A worker process that dies (a crash in a native library, the OOM killer) takes the pool's unfinished
audits with it; those are run again one process each, so only the image that kills its process reports
``WorkerDied``. Worker processes that die before they can run anything (a broken interpreter, a start method
that cannot start) are an error of the run, not of any image: :class:`WorkerPoolError` is raised. On Dask, a
task whose workers keep dying ends as Dask's ``KilledWorker``, reported like a dead worker.

Workers start clean, by ``forkserver`` where available, else ``spawn`` (no threads of the caller are copied),
and they do not import the caller's ``__main__``: a plain script that calls :func:`audit_many` at its top level,
with no ``if __name__ == "__main__":`` guard, works as written and runs once. (When the task's arguments
refer to something defined in ``__main__``, the workers need it and import it as :mod:`multiprocessing`
always does; such a script needs the guard.)

Each task opens its own source, so a worker (a process, or a Dask worker on another machine) needs only
the source's URL and the ``storage_options`` (credentials); waiver files are read once here and sent as data.
"""

from __future__ import annotations

import datetime as _dt
import logging
import multiprocessing
import multiprocessing.context
import os
import pickle
import sys
import threading
import time
import types
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any

from azvhdaudit.errors import AuditError, ProfileError
from azvhdaudit.report import Report, Result, Severity, Status
from azvhdaudit.sources import SourceStats, is_url, open_source, options_for

__all__ = [
    "REMOTE_IN_FLIGHT",
    "UNREADABLE_ID",
    "WorkerPoolError",
    "audit_source",
    "audit_many",
    "error_report",
    "io_stats",
]

log = logging.getLogger(__name__)

#: rule id of the one result of a report for an image that could not be audited
UNREADABLE_ID = "image.readable"

Source = str | os.PathLike[str]

#: remote images one worker audits at once, in threads, when every source is a remote URL: an audit there mostly
#: waits for its round trips, and another audit parses meanwhile (see :func:`audit_many`)
REMOTE_IN_FLIGHT = 4


class WorkerPoolError(AuditError, RuntimeError):
    """The worker processes of :func:`audit_many` die before they can audit anything: an error of the run
    (the interpreter, the start method, the machine), never of an image."""


def _name(source: Source) -> str:
    return os.fspath(source)


def error_report(source: Source, error: BaseException | str, profile: str = "azure") -> Report:
    """The report of an image that could not be audited: one :data:`UNREADABLE_ID` result, status error.

    ``actual`` is the exception's class name, or ``"WorkerDied"`` when ``error`` is text (the process
    auditing the image died).
    """
    import azvhdaudit

    remediation = (
        "Check the path or URL and its credentials, and that the file is a complete disk image "
        "(upload or copy it again if it was cut short)"
    )
    if isinstance(error, BaseException):
        from azvhdaudit.hints import cause_hint, unreachable_text

        kind = type(error).__name__
        message = f"{kind}: {unreachable_text(error, str(error) or kind)}"
        fitting = cause_hint(error)
        if fitting:
            remediation = fitting[0].upper() + fitting[1:]
    else:
        kind, message = "WorkerDied", error
        remediation = (
            "Audit this image alone (azvhdaudit audit IMAGE --debug) to see what ends the process: a crash in a "
            "native library or the machine's memory limit"
        )
    result = Result(
        rule_id=UNREADABLE_ID,
        title="The image can be opened and read",
        area="image",
        severity=Severity.REQUIRED,
        status=Status.ERROR,
        message=f"the image could not be audited: {message}",
        expected="a readable VHD, VHDX or raw disk image with a Windows volume",
        actual=kind,
        reason=message,
        remediation=remediation,
        rationale="No rule can be checked on an image that cannot be read; nothing about it is known.",
    )
    return Report(source=_name(source), profile=profile, results=[result], tool_version=azvhdaudit.__version__)


def io_stats(stats: Any) -> dict[str, int]:
    """The read cost of an audit as ``{"bytes_read", "requests", ...}`` from either kind of stats."""
    if isinstance(stats, SourceStats):
        data = stats.to_dict()
        return {"bytes_read": stats.bytes_fetched, "requests": stats.requests, **data}
    return {"bytes_read": int(stats.bytes_read), "requests": int(stats.read_calls)}


def _wanted_hives(audit_kwargs: dict[str, Any]) -> tuple[str, ...]:
    """The hives :func:`azvhdaudit.engine.audit` would open for these options."""
    from azvhdaudit.engine import wanted_hives

    return wanted_hives(
        audit_kwargs.get("profile", "azure"),
        audit_kwargs.get("select"),
        audit_kwargs.get("ignore"),
        role=audit_kwargs.get("role"),
        with_lsa=bool(audit_kwargs.get("with_lsa", False)),
    )


def audit_source(
    source: Source,
    *,
    storage_options: dict[str, Any] | None = None,
    identity: bool = False,
    **audit_kwargs: Any,
) -> Report:
    """Audit one image given by path or URL, recording what reading it cost (and with ``identity``, the
    image's ComputerName, MachineGuid and machine SID: :func:`azvhdaudit.overview.record_identity`).

    ``audit_kwargs`` are those of :func:`azvhdaudit.engine.audit` (``profile``, ``select``, ``ignore``,
    ``waivers``, ``image_type``, ``role``, ``backend``, ``data_disks``). A URL is opened with
    :func:`~azvhdaudit.sources.open_source` and ``storage_options`` (one dict for every URL, or one per
    protocol, see :func:`~azvhdaudit.sources.options_for`), a differencing disk's parents
    through the same store. The report's ``facts["extra"]["io"]`` holds ``bytes_read`` and ``requests``
    (for a URL: range requests plus one size lookup per file; for a local file: read calls) and, for a
    URL, the cache's counts. ``data_disks`` are opened by :func:`azvhdaudit.engine.audit` and must be
    local paths. Errors propagate; :func:`audit_many` turns them into error reports.
    """
    from azvhdaudit.engine import audit
    from azvhdaudit.image import open_image
    from azvhdaudit.overview import record_identity

    backend = audit_kwargs.get("backend", "regf")
    hives = _wanted_hives(audit_kwargs)
    started = time.perf_counter()
    if is_url(source):
        fh, opener = open_source(str(source), **options_for(str(source), storage_options))
        with fh:
            with open_image(
                fh, opener=opener, backend=backend, hives=hives, require_windows=False, read_ahead=True
            ) as image:
                opened = (time.perf_counter() - started) * 1000
                report = audit(image, **audit_kwargs)
                if identity:
                    record_identity(report, image.registry)
                stats: Any = fh.stats
                timings = dict(image.timings_ms)
    else:
        with open_image(source, backend=backend, hives=hives, require_windows=False) as image:
            opened = (time.perf_counter() - started) * 1000
            report = audit(image, **audit_kwargs)
            if identity:
                record_identity(report, image.registry)
            stats = image.stats
            timings = dict(image.timings_ms)
    report.source = _name(source)
    report.timings_ms["open"] = opened
    for stage, ms in timings.items():
        report.timings_ms[f"open.{stage}"] = ms
    report.timings_ms["total"] = (time.perf_counter() - started) * 1000
    report.facts.setdefault("extra", {})["io"] = io_stats(stats)
    return report


def _task(source: Source, storage_options: dict[str, Any] | None, audit_kwargs: dict[str, Any]) -> Report:
    """Run in a worker: one audit, whatever happens a report."""
    try:
        return audit_source(source, storage_options=storage_options, **audit_kwargs)
    except (AuditError, OSError) as err:
        log.warning("%s: %s", _name(source), err)
        return error_report(source, err, audit_kwargs.get("profile", "azure"))
    except Exception as err:  # a bug met on an odd image must not stop the fleet; keep the trace in the log
        log.exception("%s: unexpected error while auditing", _name(source))
        return error_report(source, err, audit_kwargs.get("profile", "azure"))


def _task_group(
    sources: list[Source], storage_options: dict[str, Any] | None, audit_kwargs: dict[str, Any]
) -> list[Report]:
    """Run in a worker: the audits of ``sources`` at once, one thread each (remote images: their waits overlap)."""
    if len(sources) == 1:
        return [_task(sources[0], storage_options, audit_kwargs)]
    with ThreadPoolExecutor(max_workers=len(sources), thread_name_prefix="azvhdaudit-image") as pool:
        return list(pool.map(lambda source: _task(source, storage_options, audit_kwargs), sources))


def _in_flight(items: list[Source], images_per_worker: int | None) -> int:
    if images_per_worker is not None:
        if images_per_worker < 1:
            raise ValueError(f"images_per_worker must be at least 1, not {images_per_worker}")
        return images_per_worker
    remote = bool(items) and all(is_url(source) and not str(source).lower().startswith("file:") for source in items)
    return REMOTE_IN_FLIGHT if remote else 1


def _prepare(audit_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Check the options once, before any image is opened; read waiver files here, not on the workers."""
    import inspect

    from azvhdaudit.engine import audit, catalogue

    try:
        inspect.signature(audit).bind("source", **audit_kwargs)
    except TypeError as err:
        raise TypeError(f"audit_many: {err} (the options are those of azvhdaudit.engine.audit)") from err
    if audit_kwargs.get("image_type") not in (None, "generalized", "specialized"):
        raise ProfileError(f"image_type must be 'generalized' or 'specialized', not {audit_kwargs['image_type']!r}")
    if audit_kwargs.get("role") not in (None, "os", "data"):
        raise ProfileError(f"role must be 'os' or 'data', not {audit_kwargs['role']!r}")
    _wanted_hives(audit_kwargs)  # raises ProfileError for an unknown profile or a pattern matching nothing
    prepared = dict(audit_kwargs)
    if prepared.get("waivers") is not None:
        from azvhdaudit.waivers import check_known, load_waivers

        loaded = load_waivers(prepared["waivers"])
        check_known(loaded, (r.id for r in catalogue()))
        prepared["waivers"] = loaded
    if prepared.get("data_disks") is not None:
        prepared["data_disks"] = [os.fspath(d) for d in prepared["data_disks"]]
    return prepared


_MAIN_LOCK = threading.Lock()


@contextmanager
def _main_hidden() -> Iterator[None]:
    """While a worker is launched, ``__main__`` looks like an interactive session's: no file, no module name.

    :mod:`multiprocessing` tells a new ``spawn``/``forkserver`` worker to run the parent's main script again
    (as ``__mp_main__``) so that functions defined there can be unpickled. The audit tasks live in this module
    and carry only paths, URLs, options and waivers, so the worker does not need the script; running it
    again would run the caller's whole script once per worker (and, unguarded, start pools within pools).
    """
    with _MAIN_LOCK:
        real = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = real


if sys.platform != "win32":  # Windows has only spawn, and its workers never run the main script's body
    from multiprocessing import popen_forkserver, popen_spawn_posix

    class _ForkServerPopen(popen_forkserver.Popen):
        def _launch(self, process_obj: Any) -> None:
            with _main_hidden():
                super()._launch(process_obj)  # type: ignore[misc]

    class _ForkServerProcess(multiprocessing.context.ForkServerProcess):  # type: ignore[name-defined]
        @staticmethod
        def _Popen(process_obj: Any) -> Any:
            return _ForkServerPopen(process_obj)

    class _ForkServerContext(multiprocessing.context.ForkServerContext):  # type: ignore[name-defined]
        """``forkserver``, with workers that do not run the caller's main script."""

        Process = _ForkServerProcess

    class _SpawnPopen(popen_spawn_posix.Popen):
        def _launch(self, process_obj: Any) -> None:
            with _main_hidden():
                super()._launch(process_obj)  # type: ignore[misc]

    class _SpawnProcess(multiprocessing.context.SpawnProcess):
        @staticmethod
        def _Popen(process_obj: Any) -> Any:
            return _SpawnPopen(process_obj)

    class _SpawnContext(multiprocessing.context.SpawnContext):
        """``spawn``, with workers that do not run the caller's main script."""

        Process = _SpawnProcess


def _needs_main(*args: Any) -> bool:
    """True when pickling ``args`` refers to ``__main__`` (a class or function the caller's script defines)."""
    try:
        return b"__main__" in pickle.dumps(args)
    except Exception:  # not picklable at all: the pool will say so for each task
        return False


def _default_context(*task_args: Any) -> Any:
    # fork would copy the threads of the parent (fsspec's event loop, a Dask client): use a clean process
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    if sys.platform == "win32" or _needs_main(*task_args):
        context = multiprocessing.get_context(method)
    else:
        context = _ForkServerContext() if method == "forkserver" else _SpawnContext()
    if method == "forkserver":
        # the server imports the audit code once; every worker forked from it starts with it loaded
        context.set_forkserver_preload(
            [
                "azvhdaudit.fleet",
                "azvhdaudit.engine",
                "azvhdaudit.image",
                "azvhdaudit.rules",
                "azvhdaudit.pe",
                "azvhdaudit.container",
                "azvhdaudit.registry.regf",
            ]
        )
    return context


def audit_many(
    sources: Iterable[Source],
    *,
    workers: int | None = None,
    client: Any = None,
    storage_options: dict[str, Any] | None = None,
    mp_context: Any = None,
    identity: bool = False,
    images_per_worker: int | None = None,
    **audit_kwargs: Any,
) -> Iterator[Report]:
    """Audit every source; yield one :class:`~azvhdaudit.report.Report` per source as each finishes.

    ``sources`` are paths or URLs (see :func:`~azvhdaudit.sources.open_source`); ``storage_options``
    (credentials) is one dict for every URL or, for a fleet mixing stores, one dict per protocol
    (``{"az": {"connection_string": ...}, "https": {}}``, as fsspec keys chained options).
    ``audit_kwargs`` are those of :func:`azvhdaudit.engine.audit`.

    - ``workers=N`` audits in a pool of N processes (default: one per CPU); ``workers=1`` audits one
      after the other in this process.
    - ``client=<dask.distributed.Client>`` runs the audits as tasks of that Dask cluster instead
      (``workers`` is then ignored); each task opens its own source.
    - ``identity=True`` records each image's identity for :func:`azvhdaudit.overview.fleet_report`.
    - ``images_per_worker=K`` audits K images at once in each worker (threads), so that while one audit waits
      for the network another one parses. Default: :data:`REMOTE_IN_FLIGHT` when every source is a remote URL
      (a remote audit spends most of its time waiting for round trips), else 1 (a local audit waits for
      nothing). With K > 1 a process worker hands back its K reports together. Not used with ``client``.

    An image that cannot be audited yields an error report (see :data:`UNREADABLE_ID`) and the others go
    on. Options are checked first: an unknown profile, pattern or waiver raises before anything runs.
    Stopping the iteration early cancels the audits not yet started.
    """
    # Checked now, not on the first next(): a bad option fails where audit_many is called.
    prepared = _prepare(audit_kwargs)
    if identity:  # for the fleet view's duplicate identities (azvhdaudit.overview.fleet_report)
        prepared["identity"] = True
    profile = prepared.get("profile", "azure")
    items = list(sources)
    if client is not None:
        return _on_dask(client, items, storage_options, prepared, profile)
    count = workers if workers is not None else (os.cpu_count() or 1)
    if count < 1:
        raise ValueError(f"workers must be at least 1, not {count}")
    at_once = _in_flight(items, images_per_worker)
    if count == 1 or len(items) <= 1:
        if at_once > 1 and len(items) > 1:
            return _in_threads(at_once, items, storage_options, prepared)
        return (_task(source, storage_options, prepared) for source in items)
    at_once = min(at_once, -(-len(items) // count))  # every worker gets images
    groups = [items[start : start + at_once] for start in range(0, len(items), at_once)]
    context = mp_context or _default_context(items, storage_options, prepared)
    return _in_pool(min(count, len(groups)), context, groups, storage_options, prepared, profile)


def _in_threads(
    at_once: int, items: list[Source], storage_options: dict[str, Any] | None, prepared: dict[str, Any]
) -> Iterator[Report]:
    pool = ThreadPoolExecutor(max_workers=min(at_once, len(items)), thread_name_prefix="azvhdaudit-image")
    try:
        futures = [pool.submit(_task, source, storage_options, prepared) for source in items]
        for future in as_completed(futures):
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _in_pool(
    count: int,
    context: Any,
    groups: list[list[Source]],
    storage_options: dict[str, Any] | None,
    prepared: dict[str, Any],
    profile: str,
) -> Iterator[Report]:
    # A worker that dies (a crash in a native library, the OOM killer) breaks the whole pool: every audit
    # not finished fails with BrokenProcessPool. Those are run again afterwards, each alone in a fresh
    # process, so only the image that kills its process gets an error report.
    suspects: list[Source] = []
    pool = ProcessPoolExecutor(max_workers=count, mp_context=context)
    try:
        futures: dict[Future[list[Report]], list[Source]] = {
            pool.submit(_task_group, group, storage_options, prepared): group for group in groups
        }
        for future in as_completed(futures):
            group = futures[future]
            try:
                reports = future.result()
            except BrokenProcessPool:
                suspects.extend(group)
                continue
            except Exception as err:  # the reports did not pickle, or the task could not be sent
                log.error("%s: the audit's worker failed: %s", ", ".join(_name(s) for s in group), err)
                reports = [error_report(source, err, profile) for source in group]
            yield from reports
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    if suspects:
        log.warning("a worker process died; auditing %d unfinished images again, one process each", len(suspects))
    for source in suspects:
        yield _alone(source, context, storage_options, prepared, profile)


def _ready() -> bool:
    """A task that needs nothing: a worker that can run it can start and run Python."""
    return True


def _alone(
    source: Source, context: Any, storage_options: dict[str, Any] | None, prepared: dict[str, Any], profile: str
) -> Report:
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            pool.submit(_ready).result()
        except BrokenProcessPool as err:
            # The worker died before it was given an image: nothing about any image is known.
            raise WorkerPoolError(
                "audit_many: the worker processes die as they start, before auditing any image "
                f"({type(err).__name__}: {err}); see the errors above this one. With mp_context='spawn' or "
                "'forkserver', a script that calls audit_many must do so under if __name__ == \"__main__\":"
            ) from err
        try:
            return pool.submit(_task, source, storage_options, prepared).result()
        except BrokenProcessPool as err:
            log.error("%s: the process auditing this image died", _name(source))
            return error_report(
                source, f"the process auditing this image died while reading it ({type(err).__name__}: {err})", profile
            )
        except Exception as err:
            return error_report(source, err, profile)


def _on_dask(
    client: Any,
    items: list[Source],
    storage_options: dict[str, Any] | None,
    prepared: dict[str, Any],
    profile: str,
) -> Iterator[Report]:
    try:
        from distributed import as_completed as dask_completed
    except ImportError as err:  # pragma: no cover - a client cannot exist without distributed
        raise ProfileError("audit_many(client=...) needs dask.distributed: pip install 'azvhdaudit[dask]'") from err
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    futures = {
        client.submit(_task, source, storage_options, prepared, key=f"azvhdaudit-{stamp}-{n}", pure=False): source
        for n, source in enumerate(items)
    }
    done = False
    try:
        for future in dask_completed(list(futures)):
            source = futures[future]
            try:
                report = future.result()
            except Exception as err:  # the task's worker died (KilledWorker) or the result was lost
                log.error("%s: the audit's Dask task failed: %s", _name(source), err)
                report = error_report(source, err, profile)
            finally:
                future.release()
            yield report
        done = True
    finally:
        if not done:
            client.cancel(list(futures))
