"""Audit many inputs in a few worker processes, each bounded in time and memory.

Each worker process sets ``RLIMIT_AS`` (the address space, so a runaway allocation ends in
``MemoryError`` instead of eating the machine), measures every audit's Python heap peak with
``tracemalloc``, and interrupts an audit that runs longer than the hang limit with a
``BaseException`` (so no ``except Exception`` in the library can swallow it). The parent also waits
at most a multiple of the limit for each answer, for a hang outside Python code.

The outcome of one audit is a plain dict (picklable, JSON-friendly):

- ``kind``: ``"audit_error"`` (an :class:`~azvhdaudit.errors.AuditError` subclass: acceptable),
  ``"report"`` (a report came back: acceptable), ``"uncaught"``, ``"hang"`` or ``"memory"`` (failures);
- ``statuses``: rule id -> status, ``passes``: rule id -> the guest evidence the pass stands on.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import tempfile
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, TimeoutError
from multiprocessing import get_context
from pathlib import Path
from typing import Any

#: CPU seconds one audit may use before it counts as a hang (the hardening requirement). CPU time,
#: not wall time, so a loaded machine does not turn a slow audit into a "hang"; the parent's wall-clock
#: guard (a multiple of it) catches a process that blocks without using the CPU.
HANG_SECONDS = float(os.environ.get("AZVHDAUDIT_HANG_SECONDS", "5"))
#: address-space limit of a worker process
MEMORY_LIMIT = int(os.environ.get("AZVHDAUDIT_MEMORY_LIMIT_MB", "1536")) * 1024 * 1024

_JOBS: Callable[[], list[Any]] | None = None
_WORKDIR: Path | None = None


class Hang(BaseException):
    """Raised by the timer in a worker: the audit took longer than HANG_SECONDS."""


def _alarm(signum: int, frame: Any) -> None:
    raise Hang()


#: evidence read from the guest's contents (hives, files, the boot store); ``container`` and ``facts``
#: evidence describes the container and partition structures, which the audit did read (or it would
#: have raised) and which a damaged table may legitimately change
GUEST_SOURCES = ("registry", "policy", "file", "bcd")


def guest_evidence(result: Any) -> list[list[Any]]:
    """What a pass stands on in the guest: each evidence item's place and what was read there."""
    items = [
        [
            e.source,
            e.hive,
            _neutral(e.key.lower()),
            (e.value_name or "").lower(),
            e.type,
            e.raw,
            _neutral(repr(e.actual)),
            e.present,
        ]
        for e in result.evidence
        if e.source in GUEST_SOURCES
    ]
    return sorted(items, key=repr)


def _neutral(text: str) -> str:
    """Leave out what differs between two copies of one image: where the copy is, how large the file is."""
    text = re.sub(r"(/[^\s'\"]*/)([^/\s'\"]+\.(vhdx?|avhdx|raw))", r"<dir>/\2", text)
    return re.sub(r"'file_size': \d+", "'file_size': <n>", text)


def audit_one(path: Path | str) -> dict[str, Any]:
    """Audit ``path`` under the time limit; classify what happened (the caller installs the SIGPROF handler)."""
    import azvhdaudit
    from azvhdaudit.errors import AuditError

    out: dict[str, Any] = {"kind": "", "statuses": {}, "passes": {}, "rule_errors": {}}
    baseline = 0
    if tracemalloc.is_tracing():
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    cpu = time.process_time()
    signal.setitimer(signal.ITIMER_PROF, HANG_SECONDS)
    try:
        try:
            report = azvhdaudit.audit(path)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except AuditError as err:
        out["kind"] = "audit_error"
        out["error"] = f"{type(err).__name__}: {err}"
    except Hang:
        out["kind"] = "hang"
        out["error"] = f"no answer within {HANG_SECONDS} s of CPU time"
    except MemoryError:
        out["kind"] = "memory"
        out["error"] = "MemoryError under the address-space limit"
    except Exception as err:
        out["kind"] = "uncaught"
        out["error"] = f"{type(err).__name__}: {err}"
        out["traceback"] = traceback.format_exc()[-4000:]
    else:
        out["kind"] = "report"
        hives = (report.facts or {}).get("hives", {})
        out["hives"] = sorted(name for name, info in hives.items() if "error" not in info)
        for r in report.results:
            status = str(r.status)
            out["statuses"][r.rule_id] = status
            if status == "pass":
                out["passes"][r.rule_id] = guest_evidence(r)
            elif status == "error":
                out["rule_errors"][r.rule_id] = r.message[:300]
    out["seconds"] = round(time.perf_counter() - started, 3)
    out["cpu_seconds"] = round(time.process_time() - cpu, 3)
    if tracemalloc.is_tracing():
        # what this audit allocated at most, above what the worker already held
        out["peak_bytes"] = tracemalloc.get_traced_memory()[1] - baseline
    # a high-water mark: a forked worker starts from its parent's resident size at the fork
    out["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return out


def _init(jobs: Callable[[], list[Any]], workdir: str) -> None:
    global _JOBS, _WORKDIR
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = MEMORY_LIMIT if hard == resource.RLIM_INFINITY else min(MEMORY_LIMIT, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    signal.signal(signal.SIGPROF, _alarm)
    if os.environ.get("AZVHDAUDIT_TRACEMALLOC"):  # Python heap peaks per input; slows audits 3-4x
        tracemalloc.start()
    _JOBS = jobs
    _WORKDIR = Path(workdir)
    import azvhdaudit.engine
    import azvhdaudit.image  # noqa: F401


def _run(index: int) -> tuple[int, dict[str, Any]]:
    assert _JOBS is not None and _WORKDIR is not None
    job = _JOBS()[index]
    directory = Path(tempfile.mkdtemp(dir=_WORKDIR))
    try:
        try:
            path = job.build(directory)
        except Exception as err:
            return index, {
                "kind": "build_failed",
                "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc()[-3000:],
            }
        return index, audit_one(path)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_all(
    jobs: Callable[[], list[Any]], indexes: Iterable[int], workdir: Path, workers: int = 2
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run ``jobs()[i].build`` + audit for every index in ``workers`` processes; yields (index, outcome).

    ``jobs`` is called in each worker (the recipes are closures and are rebuilt there, not pickled).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    todo = list(indexes)
    while todo:
        ctx = get_context("fork")
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init, initargs=(jobs, str(workdir))
        )
        futures = {i: pool.submit(_run, i) for i in todo}
        stuck: int | None = None
        for i in todo:
            try:
                index, outcome = futures[i].result(timeout=HANG_SECONDS * 6 + 30)
            except TimeoutError:
                stuck = i
                break
            except Exception as err:
                yield i, {"kind": "uncaught", "error": f"worker died: {type(err).__name__}: {err}"}
                stuck = i
                break
            yield index, outcome
        if stuck is None:
            pool.shutdown()
            return
        # a hang the timer could not interrupt, or a dead pool: record it, restart after it
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        done_before = todo.index(stuck)
        if not futures[stuck].done():
            yield stuck, {"kind": "hang", "error": "worker did not answer (hang outside Python code?)"}
        todo = todo[done_before + 1 :]
