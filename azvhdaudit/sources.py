"""Read a disk image where it lives: a URL opened through fsspec, read by ranges through a block cache.

References:
- fsspec, "Filesystem interfaces for Python": https://filesystem-spec.readthedocs.io/ (``url_to_fs``,
  ``AbstractFileSystem.open``; ``file://``, ``http(s)://`` and the optional protocols it knows).
- adlfs, the fsspec implementation for Azure Blob Storage / ADLS Gen2 (``az://``, ``abfs://``):
  https://github.com/fsspec/adlfs — credentials as it takes them (``connection_string``,
  ``account_name`` + ``account_key``, ``sas_token``, ``credential``). Its range reads are replaced here by one
  Get Blob each (:class:`_AzureBlobRanges`: the SDK's ``download_blob`` lists a page blob's page ranges after
  every read).
- RFC 9110 section 14 (HTTP range requests); Azure Blob "Get Blob" with ``x-ms-range``, which reads page
  blobs and block blobs alike (unwritten pages of a page blob read as zeros).

    >>> fh, opener = open_source("az://images/win2022.vhd", connection_string=conn)   # doctest: +SKIP
    >>> with fh, open_image(fh, opener=opener) as image:                                # doctest: +SKIP
    ...     print(image.facts.os.name, fh.stats.requests, fh.stats.bytes_fetched)

The block cache was sized from the access pattern of a real audit, logged on a local 64 MiB fixed VHD
holding the real Windows 7 SYSTEM hive and a BCD store (``tests/remote/remote_images.py``): the full rule
set (111 rules) did 433 reads (417 of them 8 KiB; 3.42 MB asked for in all) touching 191 distinct 4 KiB
pages (0.78 MB) in 35 separate 64 KiB regions: the MBR, the NTFS boot sector and MFT records, and cells
scattered over the hive. Replayed through an LRU of aligned blocks, one request per run of missing blocks
within a read:

=============  ========  ==========
block size     requests  bytes read
=============  ========  ==========
16 KiB         67        1.10 MB
32 KiB         45        1.47 MB
**64 KiB**     **35**    **2.29 MB**
128 KiB        27        3.54 MB
256 KiB        20        5.24 MB
=============  ========  ==========

Read-ahead (doubling the fetch on sequential misses up to 1 MiB) saved at most one request at any block
size: the reads jump between MFT records and hive cells. The cache size did not matter from 64 blocks up
(the working set is small and re-read). Hence :data:`BLOCK_SIZE` = 64 KiB — a request costs a round trip
(1-50 ms), a block 64 KiB of transfer; about 35 round trips and 2.3 MB per image — and
:data:`CACHE_BLOCKS` = 256 (16 MiB per open image, room for a large hive's hot cells). A dirty hive
replayed from its logs is read whole: the Windows 10 sample (hive and two logs) took 11 range requests
and 19.7 MB, because the missing blocks of one large read are fetched as one range. Measured remotely
(``bench/results-fleet.md``) the Windows 7 audit costs 36 requests (35 ranges and the size lookup) and
2.2 MB, from a 64 MiB file and from a 100 GiB one alike.

That measurement was of one reader at a time. Batched (below), a uniform block could not serve both goals on the
127 GiB benchmark VHDX: 64 KiB blocks took 15 round trips and 8.4 MB, 16 KiB ones 22 and 4.75 MB; logged by
reader, 2.4 of those 8.4 MB were 64 KiB blocks around 4 KiB PE headers, and hive bins, MFT records and the
speculative ranges most of the rest, with 2.4 MB read in all. So the cache of a remote file holds
:data:`PAGE_SIZE` (4 KiB) pages, and a read that misses fetches, around each page it misses, the aligned unit the
layer reading names (:func:`azvhdaudit.batch.fetch_unit`: 4 KiB for a PE file's pages and a guest file's data,
32 KiB for MFT records, index blocks and hive bins, 4 KiB for a FAT), else :data:`FETCH_UNIT` (32 KiB): the
pages of it not cached yet, adjacent ones of a batch in one range. A ``file://`` URL keeps aligned blocks of
:data:`BLOCK_SIZE`.

A request costs little; waiting for it costs a round trip. Reads that do not depend on each other are
fetched together: :meth:`RemoteFile.prefetch` / :meth:`RemoteFile.read_many` for ranges known in advance
(a file's first 320 KiB and last sector before its format is known, the VHDX metadata and the start of its
BAT; the rest of the BAT without waiting, ``prefetch(..., wait=False)``), and :func:`azvhdaudit.batch.gather` for
the chains of reads the layers above make (the partitions' first sectors, and the opening of the image with every
rule of the default profile read ahead in one gather by :mod:`azvhdaudit.prefetch`), which asks this file for each
stopped task's missing pages at once (:meth:`RemoteFile.start_blocks`) and runs the task again as soon as they
land. Requests are sent concurrently, at most :data:`MAX_IN_FLIGHT` (32) at a time: on the event loop of an
asynchronous file system (fsspec's HTTP, adlfs), else from a thread pool kept for the file's life;
``stats.round_trips`` counts the sequential round trips. On the 127 GiB benchmark VHDX at 50 ms of added latency
the audit takes 15 round trips (124 one request at a time) and 102 requests, 4.4 MB (3.4 MB one at a time; a
local audit reads 2.2 MB); see ``bench/results-fleet.md``. The first round trip is the size lookup and the file's
first :data:`FIRST_READ` bytes side by side (what every format reads first).
"""

from __future__ import annotations

import errno
import logging
import os
import posixpath
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from azvhdaudit.batch import Deferred, enabled, unit, wants
from azvhdaudit.errors import ImageError, ImageNotFoundError, SpecialFileError, UnsupportedFormatError
from azvhdaudit.localfiles import check_readable_kind
from azvhdaudit.streams import ReadOnlyStream

__all__ = [
    "BLOCK_SIZE",
    "CACHE_BLOCKS",
    "FETCH_UNIT",
    "FIRST_READ",
    "MAX_IN_FLIGHT",
    "PAGE_SIZE",
    "RemoteFile",
    "SourceStats",
    "is_url",
    "open_source",
    "options_for",
    "protocol",
]

log = logging.getLogger(__name__)

#: bytes per cache block of a file read through fsspec on this machine (``file://``); the unit of ``cache_blocks``
BLOCK_SIZE = 64 * 1024
#: blocks of :data:`BLOCK_SIZE` the LRU cache holds per opened source (16 MiB; pages of a remote file)
CACHE_BLOCKS = 256
#: the cache of a remote file keeps pages of this many bytes: what a read that misses fetches at the least
PAGE_SIZE = 4 * 1024
#: bytes fetched, aligned, around each page a read of a remote file misses when the layer reading names no fetch
#: unit of its own (:func:`azvhdaudit.batch.fetch_unit`); see the module docstring for the measurement
FETCH_UNIT = 32 * 1024

#: range requests one file keeps in flight at once (more wait for free slots): the 127 GiB benchmark VHDX's audit
#: starts up to 19 ranges within 20 ms (its fetch units of 4-32 KiB make more ranges than 64 KiB blocks did); at 16
#: the others waited for a slot (0.90 s instead of 0.86 s with 50 ms a request, medians of 5)
MAX_IN_FLIGHT = 32

#: bytes at the start of a remote file asked for together with its size lookup (a VHDX's identifier, headers and
#: region tables, a dynamic VHD's header, the first sectors of a fixed VHD or a raw disk: what every format reads
#: first), so that the lookup and the first read share one round trip
FIRST_READ = 320 * 1024

#: fsspec protocols that are local files (no requests, no cache needed but kept for one code path)
_LOCAL = ("file", "local")


def is_url(source: object) -> bool:
    """True for a string naming a URL (``scheme://...``), which :func:`open_source` opens."""
    return isinstance(source, str) and "://" in source


@dataclass
class SourceStats:
    """What reading a source cost: requests to the store and bytes they returned.

    Shared by an image and every parent opened through the same opener, so the numbers cover the chain.
    """

    #: requests made: one size lookup per file opened, one per range fetched
    requests: int = 0
    #: sequential round trips: one per size lookup, per range fetched alone, and per batch of ranges fetched
    #: together (:meth:`RemoteFile.fetch_blocks`): the depth of the audit's dependent reads
    round_trips: int = 0
    #: the most requests one batch had in flight at once
    most_in_flight: int = 0
    #: bytes the store returned
    bytes_fetched: int = 0
    #: read calls served to the reader, and how many bytes they returned
    reads: int = 0
    bytes_served: int = 0
    #: pages (blocks of a local file) found in the cache / fetched
    block_hits: int = 0
    block_misses: int = 0
    files_opened: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class _BlockCache:
    """An LRU of aligned blocks of one file."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self._blocks: OrderedDict[int, bytes] = OrderedDict()

    def get(self, index: int) -> bytes | None:
        block = self._blocks.get(index)
        if block is not None:
            self._blocks.move_to_end(index)
        return block

    def put(self, index: int, block: bytes) -> None:
        self._blocks[index] = block
        self._blocks.move_to_end(index)
        while len(self._blocks) > self.capacity:
            self._blocks.popitem(last=False)

    def clear(self) -> None:
        self._blocks.clear()


class RemoteFile(ReadOnlyStream):
    """A seekable, read-only binary file over a file of an fsspec file system, read by ranges.

    Every read is served from an LRU of pages (:data:`PAGE_SIZE`; ``cache_blocks`` blocks of :data:`BLOCK_SIZE`
    in all); a read that misses fetches, around each page it misses, the aligned fetch unit its reader names
    (:func:`azvhdaudit.batch.fetch_unit`), else ``block_size`` (:data:`FETCH_UNIT` by default), the pages of it not
    cached yet; the pages missing together are fetched with one range request per run of adjacent pages. A file read
    through fsspec on this machine (``remote=False``) is cached in aligned blocks of ``block_size`` instead
    (:data:`BLOCK_SIZE` by default), as before.
    the blocks a read misses are fetched with one range request per run of adjacent missing blocks.
    :meth:`prefetch` / :meth:`read_many` fetch the missing blocks of many ranges together, concurrently (at most
    ``max_in_flight`` requests at once, through ``fs`` and ``path`` when given, else one after the other on
    the handle), as one round trip. ``name`` is the URL; ``stats`` counts requests, round trips and bytes.
    Thread-safe for reads.
    """

    def __init__(
        self,
        handle: Any,
        url: str,
        size: int,
        *,
        block_size: int | None = None,
        cache_blocks: int = CACHE_BLOCKS,
        stats: SourceStats | None = None,
        fs: Any = None,
        path: str | None = None,
        max_in_flight: int = MAX_IN_FLIGHT,
        remote: bool = True,
    ) -> None:
        super().__init__()
        cache_bytes = cache_blocks * (block_size or BLOCK_SIZE)
        if block_size is None:
            block_size = FETCH_UNIT if remote else BLOCK_SIZE
        if block_size <= 0:
            raise ValueError(f"block_size must be positive, not {block_size}")
        if max_in_flight <= 0:
            raise ValueError(f"max_in_flight must be positive, not {max_in_flight}")
        self._fs = fs
        self._path = path
        self.max_in_flight = max_in_flight
        #: False for a local file read through fsspec (``file://``): reads cost no round trip there
        self.is_remote = remote
        self._handle = handle
        self._url = url
        self.size = size
        #: bytes fetched around a page a read misses when its reader names no fetch unit (a remote file); the block
        #: (a local one)
        self.block_size = block_size
        #: the cache's granularity: pages on a remote file, blocks of ``block_size`` on a local one
        self.page_size = min(PAGE_SIZE, block_size) if remote else block_size
        self.stats = stats if stats is not None else SourceStats()
        self._cache = _BlockCache(cache_bytes // self.page_size)
        self._pos = 0
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()  # the requests of a batch count from several threads
        self._pool: ThreadPoolExecutor | None = None
        #: requests of start_blocks() not landed yet: the range of each, and the request each block waits on
        self._runs: dict[Future[bytes], tuple[int, int]] = {}
        self._pending: dict[int, Future[bytes]] = {}
        #: requests of prefetch(wait=False) not landed yet
        self._later: set[Future[bytes]] = set()
        self._gate: Any = None  # the asyncio.Semaphore of the requests on an asynchronous file system's loop

    @property
    def cache_capacity(self) -> int:
        """Pages the cache holds."""
        return self._cache.capacity

    def __repr__(self) -> str:
        return f"<RemoteFile {self._url!r} size={self.size} block_size={self.block_size}>"

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._url

    def read(self, size: int | None = -1) -> bytes:
        self._check()
        with self._lock:
            remaining = max(0, self.size - self._pos)
            n = remaining if size is None or size < 0 else min(size, remaining)
            data = self.pread(self._pos, n)
            self._pos += len(data)
            return data

    def pread(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (short only at the end of the file); does not move the position."""
        end = min(offset + max(0, length), self.size)
        if end <= offset:
            return b""
        bs = self.page_size
        first, last = offset // bs, (end - 1) // bs
        blocks: dict[int, bytes] = {}
        missing: list[int] = []
        for index in range(first, last + 1):
            block = self._cache.get(index)
            if block is None:
                missing.append(index)
            else:
                blocks[index] = block
        if missing and self._later and self._settle(missing):
            return self.pread(offset, length)  # pages fetched without waiting landed: read again
        if missing and self.is_remote:
            missing = self._around(missing)
            collecting = wants()
            if collecting is not None:
                # inside azvhdaudit.batch.gather: note the pages, fetch them with the other tasks' pages (a
                # read too large for the gather stops its task without them, for the caller's run to read)
                if collecting.room(self, len(missing)):
                    collecting.add(self, missing)
                raise Deferred
        self.stats.block_hits += len(blocks)
        self.stats.block_misses += len(missing)
        if missing:
            self.stats.most_in_flight = max(self.stats.most_in_flight, 1)
        for run_start, run_end in _runs(missing):
            data = self._fetch(run_start * bs, min(run_end * bs, self.size))
            for index in range(run_start, run_end):
                block = data[(index - run_start) * bs : (index - run_start + 1) * bs]
                if first <= index <= last:
                    blocks[index] = block
                self._cache.put(index, block)
        joined = b"".join(blocks[i] for i in range(first, last + 1))
        out = joined[offset - first * bs : end - first * bs]
        self.stats.reads += 1
        self.stats.bytes_served += len(out)
        return out

    def _settle(self, missing: list[int]) -> bool:
        """Land the requests :meth:`prefetch` started without waiting for ``missing`` pages: those that are back
        and, outside a gather, those still on their way (waited for: a round trip). Whether any landed; inside a
        gather a task waits for those on their way as for the other tasks' requests."""
        futures = {self._pending[index] for index in missing if index in self._pending} & self._later
        if not futures:
            return False
        if wants() is None:
            if not all(future.done() for future in futures):
                self.stats.round_trips += 1
            wait(futures)
        done = [future for future in futures if future.done()]
        for future in sorted(done, key=self.block_of):
            self.land(future)
        return bool(done)

    def _around(self, missing: list[int]) -> list[int]:
        """The pages to fetch for the ``missing`` pages of a read: the aligned fetch unit around each (the reader's,
        :func:`azvhdaudit.batch.unit`, else ``block_size``), less the pages cached, in order."""
        per = max(1, (unit() or self.block_size) // self.page_size)
        if per == 1:
            return missing
        last = (self.size - 1) // self.page_size
        pages: set[int] = set()
        for index in missing:
            start = index - index % per
            if start not in pages:
                pages.update(range(start, min(start + per, last + 1)))
        pages.difference_update(missing)
        return sorted([*missing, *(index for index in pages if self._cache.get(index) is None)])

    def cached(self, offset: int, length: int) -> bool:
        """Whether the bytes at ``offset`` are in the cache (a read of them makes no request)."""
        return not self._missing([(offset, length)])

    def _seed(self, data: bytes, asked: int) -> None:
        """Cache the file's first bytes, fetched beside the size lookup: the whole pages among them (and a short
        last one only where the file ends), none if the server sent more or other than asked."""
        bs = self.page_size
        if len(data) > asked or (len(data) < asked and len(data) != self.size):
            return
        whole = len(data) // bs if len(data) < self.size else (len(data) + bs - 1) // bs
        for index in range(whole):
            self._cache.put(index, data[index * bs : (index + 1) * bs])

    def _missing(self, ranges: Iterable[tuple[int, int]]) -> list[int]:
        bs = self.page_size
        indexes: set[int] = set()
        for offset, length in ranges:
            end = min(offset + max(0, length), self.size)
            if end > offset >= 0:
                indexes.update(range(offset // bs, (end - 1) // bs + 1))
        return sorted(index for index in indexes if self._cache.get(index) is None)

    def prefetch(self, ranges: Iterable[tuple[int, int]], *, wait: bool = True) -> None:
        """Fetch the pages of ``(offset, length)`` ranges not cached yet, together: one round trip (nothing
        when batching is switched off, :func:`azvhdaudit.batch.enabled`: the reads fetch them one by one).

        ``wait=False`` starts the requests and returns (nothing on a local file): they travel beside the reads that
        follow, and a read that needs their pages takes them as they land (waiting for them if it must), never
        fetching them again."""
        self._check()
        if not enabled():
            return
        if wait:
            self.fetch_blocks(self._missing(ranges))
        elif self.is_remote:
            started, _ = self.start_blocks(self._missing(ranges))
            self._later |= started

    def read_many(self, ranges: Iterable[tuple[int, int]]) -> list[bytes]:
        """The bytes of each ``(offset, length)`` range (short only at the end of the file), fetched together."""
        ranges = list(ranges)
        self.prefetch(ranges)
        return [self.pread(offset, length) for offset, length in ranges]

    def fetch_blocks(self, indexes: Iterable[int]) -> None:
        """Fetch the blocks at ``indexes`` that are not cached, one request per run of adjacent blocks, the
        requests concurrently (at most ``max_in_flight`` at once): one round trip. The first request that
        fails raises :class:`~azvhdaudit.errors.ImageError` naming the URL and its range; requests not
        started yet are cancelled and those in flight are waited for, so nothing outlives the call."""
        if not self.is_remote:
            bs = self.page_size
            last = (self.size - 1) // bs if self.size else -1
            missing = sorted({i for i in indexes if 0 <= i <= last and self._cache.get(i) is None})
            for index, (start, end) in enumerate(_runs(missing[: self._cache.capacity])):
                data = self._fetch(start * bs, min(end * bs, self.size), round_trip=not index)
                for number in range(end - start):
                    self._cache.put(start + number, data[number * bs : (number + 1) * bs])
            self.stats.most_in_flight = max(self.stats.most_in_flight, 1 if missing else 0)
            return
        futures, _ = self.start_blocks(indexes)
        if not futures:
            return
        self.stats.round_trips += 1
        try:
            wait(futures)
            for future in futures:
                self.land(future)
        except BaseException:
            self.abandon()
            raise

    def start_blocks(self, indexes: Iterable[int]) -> tuple[set[Future[bytes]], int]:
        """Start fetching the blocks at ``indexes`` that are neither cached nor on their way, one request per run of
        adjacent blocks, in the file's thread pool (at most ``max_in_flight`` requests at once, the others queued);
        return the requests every block asked for waits on (those started here and those already on their way), and
        how many blocks were started here.
        :meth:`land` puts a finished request's blocks in the cache; :meth:`abandon` ends them all."""
        bs = self.page_size
        last = (self.size - 1) // bs if self.size else -1
        waiting: set[Future[bytes]] = set()
        new: list[int] = []
        for index in sorted(set(indexes)):
            if not 0 <= index <= last or self._cache.get(index) is not None:
                continue
            future = self._pending.get(index)
            if future is None:
                new.append(index)
            else:
                waiting.add(future)
        room = self._cache.capacity - len(self._pending)
        if len(new) > room:  # more than the cache holds would push out what was just fetched: fetch what fits
            new = new[: max(0, room)]
        for first, end in _runs(new):
            start, stop = first * bs, min(end * bs, self.size)
            future = self._submit(start, stop)
            self._runs[future] = (start, stop)
            for index in range(first, end):
                self._pending[index] = future
            waiting.add(future)
        if new:
            flying = min(self.max_in_flight, len(self._runs))
            self.stats.most_in_flight = max(self.stats.most_in_flight, flying)
        return waiting, len(new)

    def block_of(self, future: Future[bytes]) -> int:
        """The first byte a request of :meth:`start_blocks` asked for (-1 for one not of this file)."""
        return self._runs.get(future, (-1, 0))[0]

    def land(self, future: Future[bytes]) -> None:
        """Put the blocks of a finished request of :meth:`start_blocks` in the cache (the caller's thread). A request
        that failed raises its error: of the requests that failed by then, the first in the file (the same whichever
        came back first), after the others have been cancelled or waited for."""
        where = self._runs.get(future)
        if where is None:
            return
        if future.exception() is not None:
            self.abandon()
        start, stop = self._runs.pop(future)
        self._later.discard(future)
        data = future.result()
        bs = self.page_size
        for number in range((stop - start + bs - 1) // bs):
            index = start // bs + number
            if self._pending.get(index) is future:
                del self._pending[index]
            self._cache.put(index, data[number * bs : (number + 1) * bs])

    def abandon(self) -> None:
        """End every request of :meth:`start_blocks`: those not started are cancelled, those in flight waited for.
        Of those that failed, the error of the first in the file is raised."""
        runs, self._runs = self._runs, {}
        self._pending.clear()
        self._later.clear()
        for future in runs:
            future.cancel()
        wait(runs)
        failed = [f for f in runs if not f.cancelled() and f.exception() is not None]
        if failed:
            raise min(failed, key=lambda f: runs[f]).exception()  # type: ignore[misc]

    def _submit(self, start: int, end: int) -> Future[bytes]:
        """Start one range request: on the event loop of an asynchronous file system (fsspec's HTTP, adlfs), at
        most ``max_in_flight`` at once, without a thread of its own; else in the file's thread pool."""
        fs = self._fs
        loop = getattr(fs, "loop", None) if getattr(fs, "async_impl", False) else None
        if loop is not None and self._path is not None and hasattr(fs, "_cat_file"):
            import asyncio

            if self._gate is None:
                self._gate = asyncio.Semaphore(self.max_in_flight)
            return asyncio.run_coroutine_threadsafe(self._fetch_range_async(start, end), loop)
        if self._pool is None:
            # kept for the file's life (threads started once, not per batch); shut down by close()
            self._pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="azvhdaudit-range")
        return self._pool.submit(self._fetch_range, start, end)

    async def _fetch_range_async(self, start: int, end: int) -> bytes:
        """:meth:`_fetch_range` on the file system's event loop."""
        assert self._gate is not None
        async with self._gate:
            with self._stats_lock:
                self.stats.requests += 1
            try:
                data = await self._fs._cat_file(self._path, start=start, end=end)
            except FileNotFoundError as err:
                raise ImageError(
                    f"{self._url}: the file went away while reading bytes {start}-{end - 1}: {err}"
                ) from err
            except Exception as err:
                raise ImageError(
                    f"{self._url}: cannot read bytes {start}-{end - 1}: {type(err).__name__}: {err}"
                ) from err
        return self._check_length(start, end, data)

    def _fetch_range(self, start: int, end: int) -> bytes:
        """One range request of a batch: through the file system (the handle is not shared between threads)."""
        with self._stats_lock:
            self.stats.requests += 1
        try:
            if self._fs is not None and self._path is not None:
                data = self._fs.cat_file(self._path, start=start, end=end)
            else:  # pragma: no cover - a RemoteFile made without its file system reads one range at a time
                with self._lock:
                    self._handle.seek(start)
                    data = self._handle.read(end - start)
        except FileNotFoundError as err:
            raise ImageError(f"{self._url}: the file went away while reading bytes {start}-{end - 1}: {err}") from err
        except Exception as err:
            raise ImageError(f"{self._url}: cannot read bytes {start}-{end - 1}: {type(err).__name__}: {err}") from err
        return self._check_length(start, end, data)

    def _check_length(self, start: int, end: int, data: bytes) -> bytes:
        with self._stats_lock:
            self.stats.bytes_fetched += len(data)
        if len(data) != end - start:
            raise ImageError(
                f"{self._url}: asked for bytes {start}-{end - 1} ({end - start} bytes) of a {self.size}-byte file, "
                f"got {len(data)} bytes (the file changed, or the server ignores range requests)"
            )
        return bytes(data)

    def _fetch(self, start: int, end: int, round_trip: bool = True) -> bytes:
        """One range request for bytes ``start`` to ``end`` (exclusive)."""
        self.stats.requests += 1
        if round_trip:
            self.stats.round_trips += 1
        try:
            self._handle.seek(start)
            data = self._handle.read(end - start)
        except FileNotFoundError as err:
            raise ImageError(f"{self._url}: the file went away while reading bytes {start}-{end - 1}: {err}") from err
        except Exception as err:
            # fsspec, aiohttp and azure-core raise OSError subclasses, ValueError (a server ignoring Range) or
            # their own exception classes; whichever it is, name the URL and the range.
            raise ImageError(f"{self._url}: cannot read bytes {start}-{end - 1}: {type(err).__name__}: {err}") from err
        return self._check_length(start, end, data)

    def close(self) -> None:
        if not self.closed:
            try:
                self.abandon()
            except ImageError:  # closing ends the requests; their errors were the caller's to see, or nobody's
                log.debug("closing %s ended a failed request", self._url)
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
            self._cache.clear()
            try:
                self._handle.close()
            except Exception:  # closing a read-only handle must not mask the real outcome
                log.debug("closing %s failed", self._url, exc_info=True)
        super().close()


def _runs(indexes: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive block indexes as (start, end exclusive)."""
    runs: list[tuple[int, int]] = []
    for index in indexes:
        if runs and runs[-1][1] == index:
            runs[-1] = (runs[-1][0], index + 1)
        else:
            runs.append((index, index + 1))
    return runs


def _import_fsspec() -> Any:
    try:
        import fsspec
    except ImportError as err:
        raise ImageError("reading images from URLs needs fsspec: pip install 'azvhdaudit[remote]'") from err
    return fsspec


def _open_file(
    url: str,
    storage_options: dict[str, Any],
    stats: SourceStats,
    block_size: int | None,
    cache_blocks: int,
    max_in_flight: int = MAX_IN_FLIGHT,
    first_read: int = FIRST_READ,
) -> RemoteFile:
    fsspec = _import_fsspec()
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
    except (ImportError, ValueError) as err:
        # fsspec raises ImportError naming the package a protocol needs (adlfs, aiohttp, s3fs ...)
        raise ImageError(f"{url}: cannot open this URL: {err}") from err
    local = any(p in _LOCAL for p in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)))
    fs = _azure_ranges(fs)
    stats.requests += 1  # the size lookup (HEAD / Get Blob Properties / stat)
    stats.round_trips += 1
    first = _FirstRead(fs, path, first_read) if first_read > 0 and not local and enabled() else None
    try:
        handle, size = _open_handle(fs, path, url, local, block_size or BLOCK_SIZE)
    except BaseException:
        if first is not None:
            first.result()  # nothing outlives the call
        raise
    head = first.result() if first is not None else None
    if not isinstance(size, int) or size < 0:
        handle.close()
        raise ImageError(f"{url}: the server does not report the file's size, so it cannot be read by ranges")
    stats.files_opened += 1
    log.debug("opened %s (%d bytes) by ranges of %s bytes", url, size, block_size or "default")
    opened = RemoteFile(
        handle,
        url,
        size,
        block_size=block_size,
        cache_blocks=cache_blocks,
        stats=stats,
        fs=fs,
        path=path,
        max_in_flight=max_in_flight,
        remote=not local,
    )
    if head is not None:
        stats.requests += 1
        stats.bytes_fetched += len(head)
        stats.most_in_flight = max(stats.most_in_flight, 2)
        opened._seed(head, first_read)
    return opened


def _open_handle(fs: Any, path: str, url: str, local: bool, block_size: int) -> tuple[Any, Any]:
    """The fsspec handle of ``path`` and the file's size (the size lookup), errors named with ``url``."""
    try:
        if local:
            # fsspec opens a local path with open(): a FIFO would block it, a character device never end
            check_readable_kind(str(path), os.stat(path).st_mode, SpecialFileError, "the file")
            handle = fs.open(path, "rb")
        else:
            # No fsspec-level cache: the blocks are cached here, where the access pattern was measured.
            handle = fs.open(path, "rb", block_size=block_size, cache_type="none")
            if isinstance(fs, _AzureBlobRanges):
                handle = _AzureBlobHandle(fs, path, handle)
        size = getattr(handle, "size", None)
        if size is None:
            size = fs.size(path)
    except FileNotFoundError as err:
        from azvhdaudit.hints import network_cause, network_reason  # loaded on an error only

        network = network_cause(err)
        if network is not None:
            # fsspec reports a server it cannot reach (a name that does not resolve, a refused connection) as a
            # missing file: say what happened, not that the image does not exist
            raise ImageError(f"{url}: the server could not be reached: {network_reason(network)}") from err
        # fsspec's messages vary (a bare path, a URL, a server's text): name the URL the caller gave
        raise ImageNotFoundError(f"{url}: no such image file") from err
    except IsADirectoryError as err:
        raise UnsupportedFormatError(f"not a disk image: {url} is a directory") from err
    except SpecialFileError:
        raise
    except Exception as err:  # fsspec, aiohttp and azure-core errors vary by protocol; name the URL
        if _looks_missing(err):
            raise ImageNotFoundError(f"{url}: no such image file ({type(err).__name__})") from err
        raise ImageError(f"{url}: cannot open: {type(err).__name__}: {err}") from err
    return handle, size


class _FirstRead:
    """The first bytes of a remote file (:data:`FIRST_READ` by default), fetched in a thread while its size is
    looked up (one round trip for both). A failure here is not the caller's: the bytes are then read as any
    others, and meet the same error with the URL and the range named."""

    def __init__(self, fs: Any, path: str, size: int) -> None:
        self._data: bytes | None = None
        self._thread = threading.Thread(
            target=self._run, args=(fs, path, size), name="azvhdaudit-first-read", daemon=True
        )
        self._thread.start()

    def _run(self, fs: Any, path: str, size: int) -> None:
        try:
            self._data = bytes(fs.cat_file(path, start=0, end=size))
        except Exception:  # the reads that need these bytes fetch them again and report the error there
            log.debug("the first read of %s beside its size lookup failed", path, exc_info=True)

    def result(self) -> bytes | None:
        self._thread.join()
        return self._data


# --- Azure Blob Storage ----------------------------------------------------------------------------


def _azure_ranges(fs: Any) -> Any:
    """``fs``, or for adlfs's file system (``az://``, ``abfs://``) the same with one request per range read."""
    adlfs = sys.modules.get("adlfs")  # imported by fsspec when it made such a file system; never imported here
    blob_fs = getattr(adlfs, "AzureBlobFileSystem", None)
    if blob_fs is not None and isinstance(fs, blob_fs) and hasattr(fs, "service_client"):
        return _AzureBlobRanges(fs)
    return fs


class _AzureBlobRanges:
    """adlfs's file system, whose range reads make one Get Blob request each.

    adlfs reads a range with the SDK's ``download_blob(offset, length).readall()``. On a page blob the SDK's
    downloader then lists the blob's page ranges, to skip the unwritten ones in the chunks it fetches after the
    first (azure-storage-blob ``_initial_request``: "get page ranges to optimize downloading sparse page blob"):
    a second request, sent after the first answered, whose answer lists every page range of the whole blob. A
    range read (at most 32 MiB, fetched as one chunk) has no later chunks, so that list is never used; it doubles
    the round trips of every read, and its answer grows with the blob's page ranges (6,510 on the 127 GiB
    benchmark VHDX written page by page: an XML list of about half a megabyte that the store builds and the client
    parses for every 64 KiB read). Here a range is one Get Blob with ``x-ms-range``, sent through the blob client's
    own pipeline (credentials, retries, timeouts as adlfs set them up; the SDK's generated operation, as its
    downloader sends it), the blob's client made once per path. Everything else (the size lookup, listing, errors
    on opening) is adlfs's.
    """

    #: reads whose answer broke off are sent again this many times, a second apart (as the SDK's downloader does)
    RETRIES = 2

    def __init__(self, fs: Any) -> None:
        self._fs = fs
        self._blobs: dict[str, tuple[Any, str | None]] = {}
        self._environment_read = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fs, name)

    def _blob(self, path: str) -> tuple[Any, str | None]:
        known = self._blobs.get(path)
        if known is None:
            container, blob, *rest = self._fs.split_path(path)
            client = self._fs.service_client.get_blob_client(container=container, blob=blob)
            known = self._blobs[path] = (client, rest[0] if rest else None)
        return known

    async def _cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """Bytes ``start`` to ``end`` (exclusive) of the blob at ``path`` in one request."""
        import asyncio

        from azure.core.exceptions import (
            DecodeError,
            IncompleteReadError,
            ResourceNotFoundError,
            ServiceResponseError,
        )

        start = start or 0
        if end is None or end <= start:
            return bytes(await self._fs._cat_file(path, start=start, end=end, **kwargs))
        client, version_id = self._blob(path)
        if not self._environment_read:
            self._environment_read = True
            await _read_environment_once(client)
        operations = getattr(getattr(client, "_client", None), "blob", None)
        if operations is None:  # an SDK without the generated client: its public download, page range list and all
            return bytes(await self._fs._cat_file(path, start=start, end=end, **kwargs))
        timeouts = getattr(self._fs, "_timeout_kwargs", None) or {}
        for attempt in range(self.RETRIES + 1):
            try:  # the request itself: the pipeline's retry policy has retried what it retries
                length, stream, response = await operations.download(
                    range=f"bytes={start}-{end - 1}",
                    version_id=version_id,
                    decompress=False,
                    cls=_answer,
                    **timeouts,
                )
            except ResourceNotFoundError as err:
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path) from err
            if length is not None and length != end - start:
                # other bytes than asked for (a whole blob for a range): drop the connection, do not read them
                internal = getattr(response, "internal_response", None)
                if internal is not None and hasattr(internal, "close"):
                    internal.close()
                raise ValueError(f"asked for {end - start} bytes, the store sends {length}")
            try:  # the body, which the pipeline does not retry
                return b"".join([chunk async for chunk in stream])
            except (IncompleteReadError, DecodeError, ServiceResponseError):
                if attempt == self.RETRIES:
                    raise
                log.debug("reading bytes %d-%d of %s broke off; sending it again", start, end - 1, path)
                await asyncio.sleep(1)
        raise AssertionError("unreachable")  # pragma: no cover

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        """:meth:`_cat_file` from a thread outside adlfs's event loop."""
        from fsspec.asyn import sync

        return bytes(sync(self._fs.loop, self._cat_file, path, start=start, end=end, **kwargs))


async def _read_environment_once(client: Any) -> None:
    """Spare every request the environment lookups of the blob client's aiohttp session when they find nothing.

    The SDK's aiohttp session trusts the environment (azure-core's ``use_env_settings``, on by default; adlfs does not
    change it): before every request aiohttp looks for a proxy in the environment (``urllib``'s ``getproxies``,
    which decodes every variable, twice) and for the host in ``~/.netrc``, each in a worker thread of the event loop.
    On the benchmark's page blob that was about 0.4 ms of CPU and two thread hand-offs per range (at 50 ms a request
    the audit took 1.07 s with them, 0.96 s without), to find the same nothing every time. So, once per file system
    here: when the environment names no proxy for any scheme aiohttp proxies and there is no netrc file, the session
    (adlfs's, shared by its own requests to the account) stops looking, as ``trust_env=False`` would have made it;
    otherwise it keeps looking, request by request, and a proxy the environment names carries every request as
    before. A proxy set in the environment later in the process is not seen by a session that stopped looking."""
    transport = getattr(getattr(client, "_pipeline", None), "_transport", None)
    while transport is not None and not hasattr(transport, "session"):  # the blob client's wrapper of adlfs's own
        transport = getattr(transport, "_transport", None)
    if transport is None:
        return
    if transport.session is None:
        await transport.open()  # as the first request would: the session is made here, not in another thread
    session = transport.session
    if getattr(session, "_trust_env", None) is not True:
        return
    import urllib.request

    from aiohttp import helpers

    netrc_from_env = getattr(helpers, "netrc_from_env", None)
    if netrc_from_env is None:  # an aiohttp that reads the environment otherwise: leave it to it
        return
    # what aiohttp's proxies_from_env() and get_env_proxy_for_url() read, request by request
    proxies = {k for k in urllib.request.getproxies() if k in ("http", "https", "ws", "wss")}
    if proxies or netrc_from_env() is not None:
        log.debug("the environment names a proxy (%s) or a netrc file: aiohttp keeps reading it", sorted(proxies))
        return
    session._trust_env = False


def _answer(pipeline_response: Any, body: Any, headers: Mapping[str, Any]) -> tuple[int | None, Any, Any]:
    """The ``cls`` of the generated Get Blob: the answer's length, the body to read, and the HTTP response."""
    length = headers.get("Content-Length")
    return (int(length) if length is not None else None), body, pipeline_response.http_response


class _AzureBlobHandle:
    """adlfs's open blob (its size looked up), read by :class:`_AzureBlobRanges`: one request per read."""

    def __init__(self, fs: _AzureBlobRanges, path: str, handle: Any) -> None:
        self._fs = fs
        self._path = path
        self._handle = handle
        self.size = handle.size
        self._pos = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == 0 else (self._pos + offset if whence == 1 else self.size + offset)
        return self._pos

    def read(self, length: int = -1) -> bytes:
        end = self.size if length is None or length < 0 else min(self.size, self._pos + length)
        if end <= self._pos:
            return b""
        data = self._fs.cat_file(self._path, start=self._pos, end=end)
        self._pos += len(data)
        return data

    def close(self) -> None:
        self._handle.close()


def _looks_missing(err: BaseException) -> bool:
    status = getattr(err, "status_code", None) or getattr(err, "status", None)
    return status == 404 or type(err).__name__ in ("ResourceNotFoundError", "BlobNotFound")


def protocol(url: str) -> str:
    """The scheme of a URL (``az``, ``https`` ...), lower case; ``file`` for a path."""
    return url.split("://", 1)[0].lower() if is_url(url) else "file"


def options_for(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The storage options for ``url`` out of one flat dict, or a dict keyed by protocol.

    Keyed by protocol (as fsspec keys the options of chained URLs) when every key names a protocol fsspec
    knows and every value is a dict: ``{"az": {"connection_string": ...}, "https": {}}``. A protocol
    without an entry gets no options. Otherwise the dict is the options of every URL.
    """
    if not storage_options:
        return {}
    if all(isinstance(v, Mapping) for v in storage_options.values()):
        fsspec = _import_fsspec()
        known = set(fsspec.available_protocols())
        if all(isinstance(k, str) and k.lower() in known for k in storage_options):
            by_protocol = {k.lower(): v for k, v in storage_options.items()}
            return dict(by_protocol.get(protocol(url), {}))
    return dict(storage_options)


def _with_query(url: str, base: str) -> str:
    """Give ``url`` the query of ``base`` (a SAS token) when it has none and uses the same scheme."""
    query = base.partition("?")[2]
    if query and "?" not in url and url.split("://", 1)[0] == base.split("://", 1)[0]:
        return f"{url}?{query}"
    return url


def _resolve(path: str, base: str) -> str:
    """A parent path as a URL: absolute URLs stay, others are taken relative to ``base``'s directory.

    Done on the string, not with ``urllib.parse``, which drops the ``//`` of schemes it does not know
    (``memory:///x``) and would decode a SAS signature.
    """
    if is_url(path):
        return _with_query(path, base)
    head, _, query = base.partition("?")
    scheme, rest = head.split("://", 1)
    netloc, slash, where = rest.partition("/")
    directory = posixpath.dirname("/" + where if slash else "/")
    joined = posixpath.normpath(posixpath.join(directory, path.replace("\\", "/")))
    return f"{scheme}://{netloc}{joined}" + (f"?{query}" if query else "")


def open_source(
    url: str,
    *,
    block_size: int | None = None,
    cache_blocks: int = CACHE_BLOCKS,
    max_in_flight: int = MAX_IN_FLIGHT,
    first_read: int = FIRST_READ,
    **storage_options: Any,
) -> tuple[RemoteFile, Callable[[str], BinaryIO]]:
    """Open ``url`` read-only for range reads; return the file and an opener for its parents.

    ``url`` is anything fsspec knows: ``file://``, ``http(s)://`` (the server must honour ``Range``;
    an Azure SAS URL works as is), ``az://container/blob`` or ``abfs://`` through adlfs (pass
    ``connection_string=``, ``account_name=`` with ``account_key=`` or ``sas_token=``, or
    ``credential=``, as adlfs takes them), and other protocols when their fsspec package is installed.
    ``storage_options`` go to the file system unchanged. Ranges fetched together (independent reads, see
    :mod:`azvhdaudit.batch`) keep at most ``max_in_flight`` requests in flight at once. The first
    ``first_read`` bytes of a remote file (0: none) are fetched beside its size lookup, in the same round trip.
    A read that misses the cache fetches the aligned fetch unit its reader names around each page it misses
    (:func:`azvhdaudit.batch.fetch_unit`), else ``block_size`` bytes (:data:`FETCH_UNIT` by default; the cache
    block of a ``file://`` URL, :data:`BLOCK_SIZE` by default); the cache holds ``cache_blocks`` blocks of
    :data:`BLOCK_SIZE` (or of ``block_size`` when given).

    The file's ``name`` is the URL and ``stats`` a :class:`SourceStats`; the opener opens a differencing
    disk's parents — absolute URLs, or paths relative to ``url`` — with the same options, cache settings
    and stats (a SAS query is carried over to parents that have none). A missing file raises
    :class:`FileNotFoundError`; a store that cannot be reached or read raises
    :class:`~azvhdaudit.errors.ImageError` naming the URL. Close the file when done (``with fh:``).
    """
    stats = SourceStats()
    if max_in_flight <= 0:
        raise ValueError(f"max_in_flight must be positive, not {max_in_flight}")
    fh = _open_file(url, storage_options, stats, block_size, cache_blocks, max_in_flight, first_read)

    def opener(path: str) -> BinaryIO:
        return _open_file(
            _resolve(path, url), storage_options, stats, block_size, cache_blocks, max_in_flight, first_read
        )

    return fh, opener
