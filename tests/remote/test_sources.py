"""azvhdaudit.sources: range reads through the block cache, parents by URL, errors naming the URL."""

from __future__ import annotations

import importlib.util
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
import remote_images as ri
import remote_servers as rs

from azvhdaudit.batch import fetch_unit, gather, unit
from azvhdaudit.errors import ImageError, ImageNotFoundError
from azvhdaudit.image import open_image
from azvhdaudit.sources import BLOCK_SIZE, FETCH_UNIT, RemoteFile, _resolve, is_url, open_source, options_for

#: slow: audits built images through fsspec and a local server
pytestmark = pytest.mark.slow

KiB = 1024
DATA = bytes((i * 7 + i // 251) % 256 for i in range(300 * KiB + 123))


@pytest.fixture
def memory_url() -> Iterator[str]:
    """A file of DATA in fsspec's in-memory file system."""
    path = f"/azvhdaudit-test/{uuid.uuid4().hex}.bin"
    fs = fsspec.filesystem("memory")
    fs.pipe(path, DATA)
    yield f"memory://{path}"
    fs.rm(path)


def small(url: str, **kwargs: int) -> RemoteFile:
    # first_read=0: the cache's own misses and runs, without the file's start fetched beside the size lookup
    fh, _opener = open_source(
        url, block_size=kwargs.get("block_size", 16 * KiB), cache_blocks=kwargs.get("cache_blocks", 8), first_read=0
    )
    return fh


@pytest.mark.parametrize(
    ("offset", "length"),
    [
        (0, 1),
        (0, 16 * KiB),
        (16 * KiB - 1, 2),
        (5000, 70000),
        (300 * KiB, 123),
        (300 * KiB + 100, 1000),
        (len(DATA) - 1, 1),
        (len(DATA), 10),
        (len(DATA) + 5000, 10),
        (0, len(DATA)),
    ],
)
def test_reads_return_the_file_bytes(memory_url: str, offset: int, length: int) -> None:
    with small(memory_url) as fh:
        fh.seek(offset)
        assert fh.read(length) == DATA[offset : offset + length]
        assert fh.tell() == min(offset + length, len(DATA)) if offset <= len(DATA) else offset


def test_missing_blocks_of_one_read_are_one_request(memory_url: str) -> None:
    with small(memory_url) as fh:
        assert fh.stats.requests == 1  # the size lookup
        fh.seek(1000)
        fh.read(40 * KiB)  # blocks 0, 1, 2 of 16 KiB: one range
        assert (fh.stats.requests, fh.stats.bytes_fetched) == (2, 48 * KiB)
        fh.seek(20 * KiB)
        fh.read(100)  # cached
        assert fh.stats.requests == 2 and fh.stats.block_hits == 1
        fh.seek(8 * KiB)
        fh.read(64 * KiB)  # blocks 0-2 cached, 3 and 4 missing: one more range
        assert (fh.stats.requests, fh.stats.bytes_fetched) == (3, 80 * KiB)


def test_misses_around_a_cached_block_are_separate_ranges(memory_url: str) -> None:
    with small(memory_url) as fh:
        fh.seek(16 * KiB)
        fh.read(1)  # block 1
        fh.seek(0)
        assert fh.read(48 * KiB) == DATA[: 48 * KiB]  # blocks 0 and 2 missing, not adjacent
        assert fh.stats.requests == 1 + 1 + 2


def test_lru_evicts_the_least_recently_used_block(memory_url: str) -> None:
    with small(memory_url, cache_blocks=2) as fh:
        for block in (0, 1, 0, 2):  # 1 is the least recently used when 2 comes in
            fh.seek(block * 16 * KiB)
            fh.read(1)
        before = fh.stats.requests
        fh.seek(0)
        fh.read(1)
        assert fh.stats.requests == before
        fh.seek(16 * KiB)
        fh.read(1)
        assert fh.stats.requests == before + 1


def test_a_miss_fetches_the_unit_its_reader_names(memory_url: str) -> None:
    with small(memory_url) as fh:  # 16 KiB by default
        fh.pread(50 * KiB, 100)  # the 16 KiB around it
        assert fh.stats.bytes_fetched == 16 * KiB
        with fetch_unit(4 * KiB):
            fh.pread(100 * KiB, 100)  # one page
            assert fh.stats.bytes_fetched == 20 * KiB
            with fetch_unit(64 * KiB):  # the innermost wins
                fh.pread(200 * KiB, 1)  # 192-256 KiB
            assert fh.stats.bytes_fetched == 84 * KiB
            fh.pread(260 * KiB, 1)
        assert fh.stats.bytes_fetched == 88 * KiB
        assert unit() is None
        fh.pread(120 * KiB, 1)  # the default again: 112-128 KiB
        assert fh.stats.bytes_fetched == 104 * KiB


def test_a_unit_fetches_only_its_pages_not_cached(memory_url: str) -> None:
    with small(memory_url) as fh:
        with fetch_unit(4 * KiB):
            fh.pread(4 * KiB + 10, 10)  # page 1
        requests = fh.stats.requests
        with fetch_unit(16 * KiB):
            assert fh.pread(100, 10) == DATA[100:110]  # pages 0-3, less page 1: pages 0 and 2-3, two ranges
        assert fh.stats.requests == requests + 2
        assert fh.stats.bytes_fetched == 16 * KiB


def test_a_read_too_small_for_a_page_fetches_the_page(memory_url: str) -> None:
    with small(memory_url, block_size=1024) as fh:  # a unit below the page size: pages of that size
        assert fh.page_size == 1024
        fh.pread(5000, 10)
        assert fh.stats.bytes_fetched == 1024


def test_a_prefetch_without_waiting_is_taken_by_the_read_that_needs_it(memory_url: str) -> None:
    with small(memory_url) as fh:
        trips = fh.stats.round_trips
        fh.prefetch([(64 * KiB, 40 * KiB)], wait=False)  # pages 16-25: one request, no round trip waited for
        assert fh.stats.round_trips == trips
        assert fh.pread(70 * KiB, 30 * KiB) == DATA[70 * KiB : 100 * KiB]  # waits for it, or finds it landed
        assert fh.stats.requests == 2  # the size lookup and the prefetch: the read fetched nothing itself
        assert fh.stats.bytes_fetched == 40 * KiB
        assert fh.stats.round_trips <= trips + 1
        # inside a gather, a task takes what landed without waiting for it again
        fh.prefetch([(192 * KiB, 16 * KiB)], wait=False)  # the unit the read below fetches
        assert gather([lambda: fh.pread(200 * KiB, 100)]) <= 1
        assert fh.stats.requests == 3


def test_file_object_face(memory_url: str) -> None:
    fh = small(memory_url)
    assert fh.name == memory_url and fh.readable() and fh.seekable() and not fh.writable()
    assert fh.seek(-10, io.SEEK_END) == len(DATA) - 10
    buf = bytearray(20)
    assert fh.readinto(buf) == 10 and bytes(buf[:10]) == DATA[-10:]
    with pytest.raises(ValueError, match="negative seek"):
        fh.seek(-1)
    fh.close()
    with pytest.raises(ValueError, match="closed"):
        fh.read(1)


@pytest.mark.parametrize(
    ("path", "base", "expected"),
    [
        ("parent.vhd", "az://images/dir/child.vhd", "az://images/dir/parent.vhd"),
        ("../base/parent.vhd", "az://images/dir/child.vhd", "az://images/base/parent.vhd"),
        ("sub\\parent.vhd", "http://h:8080/a/child.vhd", "http://h:8080/a/sub/parent.vhd"),
        (
            "parent.vhd",
            "https://acct.blob.core.windows.net/c/child.vhd?sv=1&sig=x%2Fy",
            "https://acct.blob.core.windows.net/c/parent.vhd?sv=1&sig=x%2Fy",
        ),
        (
            "https://acct.blob.core.windows.net/c/p.vhd",
            "https://acct.blob.core.windows.net/c/child.vhd?sig=s",
            "https://acct.blob.core.windows.net/c/p.vhd?sig=s",
        ),
        ("https://other/p.vhd?sig=own", "https://acct/c/child.vhd?sig=s", "https://other/p.vhd?sig=own"),
        ("az://images/p.vhd", "http://h/child.vhd?sig=s", "az://images/p.vhd"),
    ],
)
def test_parent_paths_resolve_against_the_url(path: str, base: str, expected: str) -> None:
    assert _resolve(path, base) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("az://c/b.vhd", True),
        ("file:///x.vhd", True),
        ("/x.vhd", False),
        ("C:\\x.vhd", False),
        (Path("/x"), False),
    ],
)
def test_is_url(value: object, expected: bool) -> None:
    assert is_url(value) is expected


def test_opener_shares_stats_and_opens_relative_to_the_url(memory_url: str) -> None:
    other = memory_url.rsplit("/", 1)[0] + "/parent.bin"
    fsspec.filesystem("memory").pipe(other.removeprefix("memory://"), b"P" * 1000)
    fh, opener = open_source(memory_url, first_read=0)
    with fh, opener("parent.bin") as parent:
        assert parent.read(4) == b"PPPP"
        assert parent.name == other
        assert fh.stats.files_opened == 2 and fh.stats.requests == 3
        with pytest.raises(FileNotFoundError):
            opener("no-such-parent.bin")


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    url = (tmp_path / "nope.vhd").as_uri()
    with pytest.raises(ImageNotFoundError) as info:
        open_source(url)
    assert isinstance(info.value, FileNotFoundError)  # callers' habits keep working
    assert url in str(info.value)


def test_a_server_that_cannot_be_reached_is_not_a_missing_file() -> None:
    url = f"http://127.0.0.1:{rs.free_port()}/os.vhd"
    with pytest.raises(ImageError) as info:
        open_source(url)
    assert not isinstance(info.value, FileNotFoundError)
    assert str(info.value).startswith(f"{url}: the server could not be reached: connection refused")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("nosuchproto://x/y.vhd", "nosuchproto"),
        ("s3://bucket/y.vhd", "s3fs"),  # a protocol fsspec knows, whose package is not installed here
    ],
)
def test_unknown_or_missing_protocol_names_the_url(url: str, words: str) -> None:
    if words == "s3fs" and importlib.util.find_spec("s3fs") is not None:
        pytest.fail("s3fs is installed: pick another uninstalled protocol for this test")
    with pytest.raises(ImageError, match=words) as info:
        open_source(url)
    assert url in str(info.value)


@pytest.mark.tools
def test_local_url_audits_like_the_path(images: dict[str, Path]) -> None:
    path = images["win7"]
    fh, opener = open_source(path.as_uri())
    with fh, open_image(fh, opener=opener) as remote, open_image(path) as local:
        assert remote.source == path.as_uri()
        assert remote.facts.container == local.facts.container.__class__(
            **{**local.facts.container.__dict__, "path": path.as_uri()}
        )
        assert remote.facts.current_control_set == local.facts.current_control_set == 1
    # whole blocks, but the last block of the file (the VHD footer's) is short
    assert (fh.stats.block_misses - 1) * BLOCK_SIZE < fh.stats.bytes_fetched <= fh.stats.block_misses * BLOCK_SIZE


# --- HTTP ----------------------------------------------------------------------------------------


@pytest.mark.tools
def test_http_reads_are_range_requests_and_counted(http_server: rs.HttpServer, images: dict[str, Path]) -> None:
    http_server.log.clear()
    url = f"{http_server.url}/win7.vhd"
    fh, opener = open_source(url)
    with fh, open_image(fh, opener=opener) as image:
        assert image.facts.windows_partition is not None
        assert image.registry.value(r"HKLM\SYSTEM\Select", "Current").data == 1
    requests = list(http_server.log.requests)
    gets = [r for r in requests if r[0] == "GET"]
    assert gets and all(r[2] and r[2].startswith("bytes=") for r in gets)
    # every request the server saw is one the stats counted, and nothing more
    assert len(requests) == fh.stats.requests
    assert fh.stats.bytes_fetched < 4 * 1024 * 1024


@pytest.mark.tools
def test_http_differencing_disk_opens_its_parent_by_url(http_server: rs.HttpServer, images: dict[str, Path]) -> None:
    url = f"{http_server.url}/{images['child'].name}"
    fh, opener = open_source(url)
    with fh, open_image(fh, opener=opener) as remote, open_image(images["child"]) as local:
        assert [p.path for p in remote.facts.container.parents] == [f"{http_server.url}/win7.vhd"]
        assert remote.facts.mbr_disk_signature == local.facts.mbr_disk_signature == ri.CHILD_DISK_SIGNATURE
        assert remote.registry.value(r"HKLM\SYSTEM\Select", "Current").data == 1
    assert fh.stats.files_opened == 2


@pytest.mark.tools
def test_http_missing_is_file_not_found(http_server: rs.HttpServer) -> None:
    with pytest.raises(FileNotFoundError, match="no-such.vhd"):
        open_source(f"{http_server.url}/no-such.vhd")


@pytest.mark.tools
def test_http_server_ignoring_range_is_refused(images: dict[str, Path]) -> None:
    server = rs.start_http(images["win7"].parent, ignore_range=True)
    try:
        fh, _ = open_source(f"{server.url}/win7.vhd")
        with fh:
            # the start of the file can be streamed and cut short; anything further cannot
            assert fh.read(512) == images["win7"].read_bytes()[:512]
            at = 1024 * 1024
            fh.seek(at)
            with pytest.raises(ImageError, match=rf"win7\.vhd: cannot read bytes {at}-{at + FETCH_UNIT - 1}") as info:
                fh.read(512)
        assert "range requests" in str(info.value)
    finally:
        server.stop()


CONN = {"connection_string": "BlobEndpoint=http://127.0.0.1:1/acct;SharedAccessSignature=sv=x"}


@pytest.mark.parametrize(
    ("url", "given", "expected"),
    [
        ("az://c/b.vhd", CONN, CONN),  # flat: every URL
        ("https://h/b.vhd", CONN, CONN),
        ("az://c/b.vhd", {"az": CONN, "https": {}}, CONN),  # per protocol
        ("https://h/b.vhd", {"az": CONN, "https": {}}, {}),
        ("http://h/b.vhd", {"AZ": CONN}, {}),  # no entry for the protocol: no options
        ("abfs://c/b.vhd", {"abfs": CONN}, CONN),
        ("az://c/b.vhd", {"client_kwargs": {"timeout": 5}}, {"client_kwargs": {"timeout": 5}}),  # not a protocol
        ("az://c/b.vhd", None, {}),
    ],
)
def test_options_for_a_url(url: str, given: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    assert options_for(url, given) == expected
