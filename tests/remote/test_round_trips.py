"""Remote audits bound by round trips: independent reads fetched together, counted (never timed).

The sample images are read over a real HTTP server on 127.0.0.1 (``remote_servers.start_http``); the limits
below hold the sequential round trips and the bytes of each audit, and the report must be the local one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import remote_servers as rs

from azvhdaudit import open_image
from azvhdaudit.batch import gather, is_remote
from azvhdaudit.container import open_container
from azvhdaudit.errors import ImageError
from azvhdaudit.fleet import audit_source
from azvhdaudit.sources import FETCH_UNIT, FIRST_READ, PAGE_SIZE, open_source

#: image -> (most sequential round trips, most bytes) of a full audit over HTTP (the default profile: the 2022-08
#: document plus the platform rules). One request at a time (AZVHDAUDIT_BATCH=0) these are 52, 11, 57 and 55
#: round trips. Batched: the first reads of the container and the partitions' first sectors fetched together,
#: and the opening (the volumes, the boot store's lookup, the hives, the OS facts) read ahead in one gather with the
#: default profile's rules (:func:`azvhdaudit.prefetch.read_ahead_image`): the rules next to the OS facts, a
#: nested gather's reads joining the round of the gather around it, a hive's first 64 KiB (SYSTEM's 512 KiB) with
#: its base block, and a rule's files and registry lookups that must wait counting as missing for the round, so that
#: it goes on to the next. Each miss fetches the unit its reader names around the page it misses (4 KiB for a PE
#: header, 32 KiB for MFT records and hive bins). The bytes grow by what is fetched on speculation (a remote file's
#: first 320 KiB and last sector, the VHDX BAT as far as its entries go, the hives' heads) and by those units:
#: 1.70, 19.4, 1.94 and 1.74 MB one request at a time, 15-40% more batched.
LIMITS = {
    "win7": (11, 2_100_000),
    "win10-dirty": (10, 19_800_000),
    "win7-dynamic": (11, 2_350_000),
    "child": (13, 2_450_000),
}


@pytest.fixture
def slow_server(images: dict[str, Path]) -> Any:
    """A server that answers every request 20 ms late, so that requests sent together overlap there."""
    server = rs.start_http(images["win7"].parent, delay=0.02)
    yield server
    server.stop()


@pytest.mark.tools
@pytest.mark.parametrize("name", sorted(LIMITS))
def test_audit_round_trips_and_bytes_stay_under_limits(
    http_server: rs.HttpServer, images: dict[str, Path], name: str
) -> None:
    most_trips, most_bytes = LIMITS[name]
    remote = audit_source(f"{http_server.url}/{images[name].name}")
    io = remote.facts["extra"]["io"]
    assert io["round_trips"] <= most_trips
    assert io["bytes_read"] <= most_bytes
    # a batch is one round trip for several requests: fewer round trips than requests
    assert io["round_trips"] <= io["requests"]
    assert rs.comparable(remote) == rs.comparable(audit_source(str(images[name])))


@pytest.mark.tools
def test_a_batch_is_one_round_trip_with_bounded_requests_in_flight(
    slow_server: rs.HttpServer, images: dict[str, Path]
) -> None:
    data = images["win7"].read_bytes()
    fh, _ = open_source(f"{slow_server.url}/win7.vhd", max_in_flight=3, first_read=0)
    with fh:
        slow_server.log.clear()
        trips, requests = fh.stats.round_trips, fh.stats.requests
        ranges = [(n * 4 * FETCH_UNIT + 100, 5000) for n in range(8)]  # eight units, none adjacent
        got = fh.read_many(ranges)
        assert got == [data[offset : offset + length] for offset, length in ranges]
        assert fh.stats.round_trips == trips + 1
        assert fh.stats.requests == requests + 8
        assert len(slow_server.log.requests) == 8
        assert 2 <= slow_server.log.most_in_flight <= 3
        # all cached now: no request, no round trip
        assert fh.read_many(ranges) == got
        assert fh.stats.requests == requests + 8 and fh.stats.round_trips == trips + 1


@pytest.mark.tools
@pytest.mark.parametrize("store", ["http", "page blob"])
def test_the_start_of_a_file_comes_with_its_size_lookup(
    http_server: rs.HttpServer, blob_store: rs.BlobStore, images: dict[str, Path], store: str
) -> None:
    data = images["win7"].read_bytes()
    url, options = (
        (f"{http_server.url}/win7.vhd", {}) if store == "http" else ("az://images/page/win7.vhd", blob_store.options)
    )
    fh, _ = open_source(url, **options)
    with fh:
        # the size lookup and the first FIRST_READ bytes: two requests, one round trip
        assert (fh.stats.requests, fh.stats.round_trips, fh.stats.bytes_fetched) == (2, 1, FIRST_READ)
        assert fh.pread(1000, FIRST_READ - 1000) == data[1000:FIRST_READ]
        assert fh.stats.requests == 2
        assert fh.pread(FIRST_READ, 10) == data[FIRST_READ : FIRST_READ + 10]
        assert (fh.stats.requests, fh.stats.round_trips) == (3, 2)
    alone, _ = open_source(url, first_read=0, **options)
    with alone:
        assert (alone.stats.requests, alone.stats.round_trips, alone.stats.bytes_fetched) == (1, 1, 0)


@pytest.mark.tools
def test_an_error_mid_batch_names_the_url_and_the_range(images: dict[str, Path]) -> None:
    fail_from = 10 * FETCH_UNIT
    server = rs.start_http(images["win7"].parent, fail_from=fail_from)
    try:
        url = f"{server.url}/win7.vhd"
        fh, _ = open_source(url, max_in_flight=2)
        with fh:
            ranges = [(0, 512), (4 * FETCH_UNIT, 512), (fail_from, 512), (20 * FETCH_UNIT, 512)]
            with pytest.raises(ImageError) as info:
                fh.read_many(ranges)
            message = str(info.value)
            assert url in message
            # read_many fetches the pages asked for: a range of one page
            assert f"bytes {fail_from}-{fail_from + PAGE_SIZE - 1}" in message
            # the batch ended: nothing still running, and the file still reads what the server serves
            assert fh.read_many([(0, 512)]) == [images["win7"].read_bytes()[:512]]

            # the same through gather(), where the layers above the file ask for the ranges
            def task(offset: int) -> None:
                fh.pread(offset, 512)

            # a read fetches the fetch unit around its page
            with pytest.raises(ImageError, match=f"bytes {fail_from + FETCH_UNIT}-{fail_from + 2 * FETCH_UNIT - 1}"):
                gather([lambda: task(2 * FETCH_UNIT), lambda: task(fail_from + FETCH_UNIT)])
    finally:
        server.stop()


@pytest.mark.tools
def test_gather_fetches_independent_chains_in_rounds_of_their_depth(http_server: rs.HttpServer) -> None:
    fh, _ = open_source(f"{http_server.url}/win7.vhd")
    with fh:
        trips = fh.stats.round_trips

        def chain(start: int) -> None:  # three dependent reads, like a record, then its index, then a file
            for step in range(3):
                fh.pread((start + step * 7) * FETCH_UNIT, 16)

        rounds = gather([lambda n=n: chain(n * 50) for n in range(5)])
        # three fetches one after another, each for the five chains at once
        assert rounds == 3
        assert fh.stats.round_trips == trips + 3
        requests = fh.stats.requests
        for n in range(5):
            chain(n * 50)
        assert fh.stats.requests == requests


@pytest.mark.tools
def test_local_files_are_not_remote(images: dict[str, Path]) -> None:
    with open_container(images["win7"]) as container:
        assert not is_remote(container)
    fh, opener = open_source(images["win7"].as_uri())
    with fh, open_container(fh, opener=opener) as container:
        assert not is_remote(container)
        # a file:// source is read directly: gather() defers nothing there, and waits for no fetch
        requests = fh.stats.requests
        assert gather([lambda: fh.pread(40 * FETCH_UNIT, 512)]) == 0
        assert fh.stats.requests == requests + 1


@pytest.mark.tools
def test_http_container_is_remote(http_server: rs.HttpServer) -> None:
    fh, opener = open_source(f"{http_server.url}/win7.vhd")
    with fh, open_image(fh, opener=opener) as image:
        assert is_remote(image.container)
        assert image.files is not None and is_remote(image.files.volume)


def test_max_in_flight_must_be_positive(http_server: rs.HttpServer) -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        open_source(f"{http_server.url}/win7.vhd", max_in_flight=0)


@pytest.mark.tools
def test_page_blob_batch_reads_the_blob_bytes_in_one_round_trip(
    blob_store: rs.BlobStore, images: dict[str, Path]
) -> None:
    data = images["win7"].read_bytes()
    fh, _ = open_source("az://images/page/win7.vhd", max_in_flight=4, first_read=0, **blob_store.options)
    with fh:
        trips, requests = fh.stats.round_trips, fh.stats.requests
        ranges = [(n * 3 * FETCH_UNIT + 7, 9000) for n in range(10)]
        assert fh.read_many(ranges) == [data[offset : offset + length] for offset, length in ranges]
        assert fh.stats.round_trips == trips + 1
        assert fh.stats.requests == requests + 10
        assert 1 < fh.stats.most_in_flight <= 4


@pytest.mark.tools
def test_page_blob_audit_round_trips_under_the_http_limit(blob_store: rs.BlobStore, images: dict[str, Path]) -> None:
    remote = audit_source("az://images/page/win7.vhd", storage_options=blob_store.options)
    io = remote.facts["extra"]["io"]
    most_trips, most_bytes = LIMITS["win7"]
    assert io["round_trips"] <= most_trips and io["bytes_read"] <= most_bytes
    assert rs.comparable(remote) == rs.comparable(audit_source(str(images["win7"])))


@pytest.mark.tools
def test_batching_switched_off_fetches_one_range_at_a_time(
    http_server: rs.HttpServer, images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZVHDAUDIT_BATCH", "0")
    fh, _ = open_source(f"{http_server.url}/win7.vhd")
    with fh:
        assert not is_remote(fh)
        fh.prefetch([(0, 512), (8 * FETCH_UNIT, 512)])
        assert fh.stats.requests == fh.stats.round_trips == 1  # the size lookup only
    io = audit_source(f"{http_server.url}/{images['win7'].name}").facts["extra"]["io"]
    assert io["round_trips"] == io["requests"]


@pytest.mark.tools
def test_a_gather_within_a_gather_joins_its_rounds(http_server: rs.HttpServer) -> None:
    fh, _ = open_source(f"{http_server.url}/win7.vhd")
    with fh:
        trips = fh.stats.round_trips

        def chain(start: int) -> None:  # three dependent reads
            for step in range(3):
                fh.pread((start + step * 7) * FETCH_UNIT, 16)

        def reader(start: int) -> None:  # a layer that reads two chains side by side itself (a rule, a hive)
            gather([lambda: chain(start), lambda: chain(start + 25)])

        gather([lambda n=n: reader(n * 100) for n in range(3)])
        # the inner gathers' blocks are fetched in the outer rounds: three round trips for the six chains, where
        # inner gathers fetching on their own would take three each, one reader after the other
        assert fh.stats.round_trips == trips + 3
        requests = fh.stats.requests
        for n in range(3):
            reader(n * 100)
        assert fh.stats.requests == requests


@pytest.mark.tools
def test_a_remote_error_mid_audit_is_the_library_error_naming_the_range(images: dict[str, Path]) -> None:
    import re

    server = rs.start_http(images["win7"].parent)
    try:
        audit_source(f"{server.url}/win7.vhd")
        asked = [m for _, _, header in server.log.requests if header and (m := re.match(r"bytes=(\d+)-(\d+)$", header))]
    finally:
        server.stop()
    # a range the rules' read-ahead fetches, late in the audit, together with others
    start, end = int(asked[-2].group(1)), int(asked[-2].group(2))
    server = rs.start_http(images["win7"].parent, fail_from=start, fail_until=start + 1)
    try:
        url = f"{server.url}/win7.vhd"
        with pytest.raises(ImageError) as info:
            audit_source(url)
        assert url in str(info.value)
        assert f"bytes {start}-{end}" in str(info.value)
        assert "503" in str(info.value)
    finally:
        server.stop()


@pytest.mark.tools
def test_a_local_audit_reads_as_without_batching(images: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from azvhdaudit import prefetch

    ran: list[int] = []
    real = prefetch.gather
    monkeypatch.setattr(prefetch, "gather", lambda tasks: ran.append(1) or real(tasks))
    batched = audit_source(str(images["win7"]))
    assert ran == []  # the rules are not read ahead on a local image
    monkeypatch.setenv("AZVHDAUDIT_BATCH", "0")
    alone = audit_source(str(images["win7"]))
    assert batched.facts["extra"]["io"] == alone.facts["extra"]["io"]
    assert rs.comparable(batched) == rs.comparable(alone)


@pytest.mark.tools
def test_a_vhdx_bat_comes_with_its_metadata(tmp_path: Path) -> None:
    import subprocess

    # 40 GiB of 1 MiB blocks: a BAT of 40,970 entries (320 KiB), the last ones beyond the first 256 KiB
    image = tmp_path / "big.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "block_size=1M", str(image), "40G"], check=True)
    server = rs.start_http(tmp_path)
    try:
        fh, opener = open_source(f"{server.url}/big.vhdx")
        with fh, open_container(fh, opener=opener) as container:
            # the size lookup with the first 320 KiB, then the metadata with the BAT's start: two round trips; the rest
            # of the BAT (as far as its entries go, not its 1 MiB region) on its way without waiting
            assert fh.stats.round_trips == 2
            container.seek(39 * 1024**3 + 5 * 1024**2)
            assert container.read(4096) == bytes(4096)  # an unallocated block near the end: its entry is here
            # size, first read, the metadata table, its items, the BAT's start and its rest: no request more, at most
            # a wait for the rest
            assert fh.stats.requests == 6
            assert fh.stats.round_trips <= 3
            bat = -(-40_969 * 8 // PAGE_SIZE) * PAGE_SIZE
            assert fh.stats.bytes_fetched == FIRST_READ + 2 * PAGE_SIZE + bat
    finally:
        server.stop()


@pytest.mark.tools
def test_a_remote_audit_runs_each_rule_once_after_its_read_ahead(
    http_server: rs.HttpServer, images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from azvhdaudit.batch import wants
    from azvhdaudit.rules.base import Rule

    outside: list[str] = []
    real = Rule.check

    def check(rule: Rule, ctx: Any) -> Any:
        if wants() is None:  # not within a read-ahead
            outside.append(rule.id)
        return real(rule, ctx)

    monkeypatch.setattr(Rule, "check", check)
    remote = audit_source(f"{http_server.url}/{images['win7'].name}")
    # the engine replays what the read-ahead kept: no rule runs again, and the report is the local one
    assert outside == []
    local = audit_source(str(images["win7"]))
    assert len(outside) == len(local.results)  # a local audit runs every rule, once
    assert rs.comparable(remote) == rs.comparable(local)


@pytest.mark.tools
def test_a_rule_reading_files_one_after_another_waits_for_its_deepest_file(http_server: rs.HttpServer) -> None:
    from azvhdaudit.prefetch import _WAITED, _WaitingFiles

    fh, _ = open_source(f"{http_server.url}/win7.vhd")
    with fh:

        class Files:  # a file is a chain of three dependent reads, like a record, its index and its data
            def file_version(self, path: str) -> tuple[int, int, int, int]:
                start = int(path)
                for step in range(3):
                    fh.pread((start + step * 7) * FETCH_UNIT, 16)
                return (1, 0, 0, start)

        files = _WaitingFiles(Files())

        def rule() -> None:  # four files, one after the other
            waited = [False]
            token = _WAITED.set(waited)
            try:
                versions = [files.file_version(str(n * 40)) for n in range(1, 5)]
            finally:
                _WAITED.reset(token)
            if waited[0]:
                from azvhdaudit.batch import Deferred

                raise Deferred
            assert versions == [(1, 0, 0, n * 40) for n in range(1, 5)]

        # three fetches for the four files, not twelve
        assert gather([rule]) == 3


@pytest.mark.tools
def test_warm_asks_for_every_block_of_a_range_in_one_round(http_server: rs.HttpServer) -> None:
    from azvhdaudit.batch import warm

    fh, _ = open_source(f"{http_server.url}/win7.vhd")
    with fh:

        def piecewise(start: int) -> None:  # a reader that reads a range a piece at a time, each read stopping it
            for piece in range(4):
                fh.pread(start + piece * FETCH_UNIT, FETCH_UNIT)

        trips = fh.stats.round_trips
        assert gather([lambda: piecewise(20 * FETCH_UNIT)]) == 4
        # warmed first: the four blocks asked for at once, then the reader finds them all
        assert gather([lambda: (warm(fh, 40 * FETCH_UNIT, 4 * FETCH_UNIT), piecewise(40 * FETCH_UNIT))]) == 1
        assert fh.stats.round_trips == trips + 5
