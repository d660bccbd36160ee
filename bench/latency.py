"""Benchmark remote audits under network latency: round trips, requests, bytes and wall time, before and after.

    python bench/latency.py [--delay 0.05] [--rounds 3] [--out bench/results-fleet.md]

Starts a Range-honouring HTTP server on 127.0.0.1 only (``tests/remote/remote_servers.py``), in a process of
its own as a store is, that answers every request ``--delay`` seconds late (a store in another region), and
audits the benchmark images of ``bench/images.py`` through it with ``azvhdaudit.fleet.audit_source`` (the whole
``azure`` profile). Then the 127 GiB VHDX as an Azure page blob: Azurite (found as the remote tests find it)
with the image's non-zero 512-byte pages written and nothing else (``remote_servers.upload_page_blob``: 6,510
page ranges), behind a TCP proxy on 127.0.0.1 that holds every request ``--delay`` seconds and counts the HTTP
requests it passes on (``remote_servers.serve_delay_proxy``); once more with adlfs's own range reads (the SDK's
``download_blob``, which lists the page blob's page ranges after every read), and once straight to Azurite
without the delay (what the emulator and the client cost). Each image is audited twice per round:

- **sequential**: batching switched off in the same code (``AZVHDAUDIT_BATCH=0``), so every range is fetched
  on its own, one after the other, as before reads were batched;
- **batched**: as shipped, independent reads fetched together (``azvhdaudit.batch.gather``).

The two take turns round after round; the table shows the medians of the wall times and the counters of the
last round (they do not vary). The reports of both must be the same as the local audit's (checked). Then a
fleet: ``audit_many`` over ``--fleet`` URLs of the 127 GiB VHDX with ``--workers`` processes, each way once,
in images per minute.
Writes (replaces) the section "Latency" of ``--out``, keeping the rest of the file.

A fleet is audited three ways: reads one at a time, batched reads with one image at a time per worker (as
``audit_many`` did before it overlapped remote images), and as shipped, each worker auditing several remote
images at once so that one parses while the others wait.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "remote"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

import remote_servers as rs  # noqa: E402
import results_file  # noqa: E402  (bench/results_file.py)

from azvhdaudit.fleet import audit_source  # noqa: E402

SECTION = "## Latency"
#: the image also read as an Azure page blob
BLOB_IMAGE = "bench-127g.vhdx"
IMAGES = (
    ("bench-127g.vhdx", "127 GiB Generation 2 dynamic VHDX"),
    ("bench-127g.vhd", "127 GiB Generation 2 fixed VHD"),
    ("bench-1g.vhdx", "1 GiB Generation 2 dynamic VHDX"),
)


@contextlib.contextmanager
def sequential() -> Iterator[None]:
    """Batching off (``AZVHDAUDIT_BATCH=0``): every range fetched on its own."""
    saved = os.environ.get("AZVHDAUDIT_BATCH")
    os.environ["AZVHDAUDIT_BATCH"] = "0"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["AZVHDAUDIT_BATCH"]
        else:
            os.environ["AZVHDAUDIT_BATCH"] = saved


FLEET_SCRIPT = """
import sys, time
from azvhdaudit.fleet import UNREADABLE_ID, audit_many
per_worker = int(sys.argv[2]) or None
urls = sys.argv[3:]
started = time.perf_counter()
reports = list(audit_many(urls, workers=int(sys.argv[1]), images_per_worker=per_worker))
seconds = time.perf_counter() - started
bad = sum(1 for r in reports if r.get(UNREADABLE_ID) is not None)
print(seconds, len(reports), bad)
"""

#: the ways a fleet is audited: (label, reads batched, images per worker; 0 for audit_many's default)
FLEET_WAYS = (
    ("sequential reads, one image at a time per worker", False, 1),
    ("batched reads, one image at a time per worker", True, 1),
    ("batched reads, images overlapped in each worker (default)", True, 0),
)


def fleet(urls: list[str], workers: int, batched: bool, per_worker: int) -> tuple[float, int, int]:
    """``audit_many`` over ``urls`` in a fresh process (its pool's workers see the environment it is given)."""
    env = {**os.environ, "AZVHDAUDIT_BATCH": "1" if batched else "0"}
    done = subprocess.run(
        [sys.executable, "-c", FLEET_SCRIPT, str(workers), str(per_worker), *urls],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds, count, bad = done.stdout.split()
    return float(seconds), int(count), int(bad)


def one(url: str, options: dict[str, Any]) -> tuple[float, dict[str, Any], Any]:
    started = time.perf_counter()
    report = audit_source(url, storage_options=options or None)
    return time.perf_counter() - started, report.facts["extra"]["io"], report


def measure(
    args: argparse.Namespace,
    url: str,
    options: dict[str, Any],
    local: Any,
    what: str,
    store: str,
    ways: tuple[str, ...] = ("sequential", "batched"),
    proxy_log: Path | None = None,
) -> list[dict[str, Any]]:
    """The rows of one image in one store: sequential and batched (and the other ``WAYS`` asked for), taking turns
    ``--rounds`` times. With ``proxy_log``, the HTTP requests the proxy passed on during each audit are counted."""
    one(url, options)  # the first audit in the process loads the readers: not timed
    times: dict[str, list[float]] = {way: [] for way in ways}
    trips: dict[str, list[int]] = {way: [] for way in ways}
    counters: dict[str, dict[str, Any]] = {}
    for _ in range(args.rounds):
        for way in ways:
            before = len(rs.read_proxy_log(proxy_log)) if proxy_log else 0
            with WAYS[way]():
                seconds, io, report = one(url, options)
            if rs.comparable(report) != local:
                raise SystemExit(f"{url} ({way}): the report differs from the local audit's")
            times[way].append(seconds)
            trips[way].append(io["round_trips"])
            counters[way] = dict(io)
            if proxy_log:
                passed = rs.read_proxy_log(proxy_log)[before:]
                counters[way]["http_requests"] = len(passed)
                counters[way]["page_range_lists"] = sum("comp=pagelist" in r.target for r in passed)
            print(
                f"{what} {store} {way}: {seconds:.2f} s, {io['round_trips']} round trips, "
                f"{io['requests']} requests, {io['bytes_read']:,} bytes",
                file=sys.stderr,
            )
    return [
        {
            "image": what,
            "store": store,
            "way": way,
            "seconds": statistics.median(times[way]),
            "low": min(times[way]),
            "high": max(times[way]),
            **counters[way],
            # the depth can differ by one from run to run: which task of a gather makes what others wait for
            # depends on the order the answers land in
            "round_trips": (
                str(min(trips[way])) if min(trips[way]) == max(trips[way]) else f"{min(trips[way])}-{max(trips[way])}"
            ),
        }
        for way in ways
    ]


#: the page blob written, and the file where the proxy in front of Azurite writes the requests it passes on
BLOB_UPLOAD: list[Any] = []
PROXY_LOG = ROOT / "bench" / "_work" / "latency-proxy.log"


@contextlib.contextmanager
def sdk_download() -> Iterator[None]:
    """adlfs's own range reads: ``download_blob(offset, length)``, whose downloader lists a page blob's page ranges
    after every read (what ``azvhdaudit.sources._AzureBlobRanges`` replaces)."""
    import azvhdaudit.sources as sources

    saved = sources._azure_ranges
    sources._azure_ranges = lambda fs: fs
    try:
        yield
    finally:
        sources._azure_ranges = saved


#: how an image's ranges are read: batching off, as shipped, and (Azure only) through adlfs's own range reads
WAYS: dict[str, Any] = {
    "sequential": sequential,
    "batched": contextlib.nullcontext,
    "batched, adlfs download_blob": sdk_download,
}


def azure_note(rows: list[dict[str, Any]]) -> str:
    """What the page blob rows measured, with the HTTP requests the proxy counted."""
    counted = {row["way"]: row for row in rows if "http_requests" in row}
    if not counted or not BLOB_UPLOAD:
        return ""
    upload = BLOB_UPLOAD[0]
    shipped = counted.get("batched", {})
    sdk = counted.get("batched, adlfs download_blob", {})
    return (
        f"The page blob holds the image's non-zero 512-byte pages and nothing else ({upload.calls:,} page ranges, "
        f"{upload.pages_written * rs.PAGE:,} bytes written), as Azure's upload tools write a VHD. HTTP requests "
        "the proxy passed on, per audit: "
        + ", ".join(f"{way} {row['http_requests']}" for way, row in counted.items())
        + f"; as shipped, the size lookup and one Get Blob per range ({shipped.get('requests', '?')} counted by "
        "the audit). *adlfs download_blob*: the ranges read with adlfs's own `_cat_file`, the SDK's "
        "`download_blob(offset, length)`, as azvhdaudit read them before: its downloader sends Get Page Ranges "
        f"for the whole blob after every read ({sdk.get('page_range_lists', '?')} of the "
        f"{sdk.get('http_requests', '?')} requests), each answered with an XML list of the blob's page ranges "
        "that Azurite builds and the client parses: twice the waits, and more time building and parsing the "
        "lists than waiting. *No delay*: straight to Azurite, no time added: what the emulator and the client "
        "cost on their own. Azurite (Node.js) serves one request at a time, 1.6-2.2 ms for a 64 KiB range of this "
        "blob (it finds a range's pages with a search that visits every page range before them, and hashes every "
        "range of up to 4 MiB with MD5 whether asked or not), where the HTTP test server takes 0.3 ms (both "
        "measured with plain GETs one after another), and the Azure SDK's pipeline (signing each request, reading "
        "its headers) about 0.5 ms of CPU more per request than fsspec's HTTP client. Over the "
        f"{shipped.get('requests', '?')} requests of an audit, that is what the page blob's batched row takes "
        "beyond the HTTP one."
    )


def page_blob(args: argparse.Namespace, image: Path) -> tuple[str, dict[str, Any], dict[str, Any], Any] | None:
    """Azurite with ``image`` written as a page blob, behind a proxy adding ``--delay`` to every request: the URL,
    the storage options through the proxy and straight to Azurite, and a function that stops both; ``None`` without
    Azurite."""
    try:
        azurite = rs.start_azurite(args.work / "azurite-latency")
    except RuntimeError as err:
        print(f"{err}", file=sys.stderr)
        return None
    proxy = None
    try:
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        container = service.create_container("images")
        started = time.perf_counter()
        upload = rs.upload_page_blob(container, f"page/{image.name}", image)
        print(
            f"page blob: {upload.pages_written * rs.PAGE:,} bytes of pages written in {upload.calls} calls in "
            f"{time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        BLOB_UPLOAD[:] = [upload]
        PROXY_LOG.unlink(missing_ok=True)
        proxy = rs.spawn_delay_proxy(azurite.port, args.delay, log=PROXY_LOG)
        options = {"connection_string": azurite.connection_string_via(proxy.url)}
    except BaseException:
        if proxy is not None:
            proxy.stop()
        azurite.stop()
        raise

    def stop() -> None:
        proxy.stop()
        azurite.stop()

    return f"az://images/page/{image.name}", options, {"connection_string": azurite.connection_string}, stop


#: the machine's load average when main() started, for the results' header
LOAD_AT_START = [0.0]


def main(argv: list[str] | None = None) -> int:
    LOAD_AT_START[0] = os.getloadavg()[0]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.05, help="seconds added to every request (default 0.05)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each way (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-fleet.md")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "_work")
    parser.add_argument("--fleet", type=int, default=16, help="images in the fleet (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="fleet worker processes (default 2)")
    args = parser.parse_args(argv)
    if not 0 <= args.delay <= 1 or not 1 <= args.rounds <= 20 or not 0 <= args.fleet <= 200:
        parser.error("--delay must be within 0-1 s, --rounds within 1-20, --fleet within 0-200")

    import images as bench_images  # bench/images.py: builds once, cached under --work

    built = bench_images.build_all(args.work)
    directory = Path(built["bench-127g.vhdx"]).parent
    server = rs.spawn_http(directory, delay=args.delay)
    rows: list[dict[str, Any]] = []
    fleet_rows = []
    try:
        locals_ = {name: rs.comparable(audit_source(str(directory / name))) for name, _ in IMAGES}
        for file_name, what in IMAGES:
            rows += measure(args, f"{server.url}/{file_name}", {}, locals_[file_name], what, "HTTP")
        blob = page_blob(args, directory / BLOB_IMAGE)
        if blob is None:
            print("Azurite not found: the page blob rows are left out", file=sys.stderr)
        else:
            url, options, direct, stop = blob
            try:
                what = dict(IMAGES)[BLOB_IMAGE]
                rows += measure(
                    args,
                    url,
                    options,
                    locals_[BLOB_IMAGE],
                    what,
                    "Azure page blob (Azurite)",
                    ("sequential", "batched", "batched, adlfs download_blob"),
                    proxy_log=PROXY_LOG,
                )
                # the emulator's own cost: the same audit without the added delay
                rows += measure(
                    args, url, direct, locals_[BLOB_IMAGE], what, "Azure page blob (Azurite), no delay", ("batched",)
                )
            finally:
                stop()
        urls = [f"{server.url}/bench-127g.vhdx"] * args.fleet
        for way, batched, per_worker in FLEET_WAYS if urls else ():
            seconds, count, bad = fleet(urls, args.workers, batched, per_worker)
            fleet_rows.append({"way": way, "seconds": seconds, "images": count, "unreadable": bad})
            print(f"fleet {way}: {count} images in {seconds:.1f} s", file=sys.stderr)
    finally:
        server.stop()
    write(args, rows, fleet_rows)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def write(args: argparse.Namespace, rows: list[dict[str, Any]], fleet_rows: list[dict[str, Any]]) -> None:
    lines = [
        SECTION,
        "",
        f"`python bench/latency.py --delay {args.delay} --rounds {args.rounds}` on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared: times vary with the load; the counters do not).",
        f"Load average (1 minute) when the measurement started: {LOAD_AT_START[0]:.1f}.",
        "",
        f"A full audit (`azure` profile) of the benchmark images (`bench/images.py`), {args.delay * 1000:.0f} ms "
        "added to every request: over HTTP Range from a server on 127.0.0.1 that answers every request that late, "
        "and as an Azure page blob from Azurite behind a proxy on 127.0.0.1 that holds every request that long; "
        "both run in processes of their own, as a store does. *Sequential*: batching switched off, every range "
        "fetched on its own; *batched*: as shipped, independent reads fetched together and each read-ahead task "
        "run again as soon as its pages land (a remote image is cached in 4 KiB pages, a miss fetches the "
        "unit its reader names: 4 KiB for PE headers and guest file data, 32 KiB for NTFS records and hive bins). "
        "Round trips: the sequential depth, requests that had to wait for "
        "one before (a size lookup, a range fetched alone, the longest chain of fetches of a gather; a range "
        "where the rounds differed by the order the answers landed in). Most in flight: requests the client had on "
        "their way at once. Seconds: the audit in a process that has run one "
        "already (the readers loaded). Every report equals the local audit's.",
        "",
        "| image | store | reads | round trips | requests | most in flight | bytes read | seconds (median) | min-max |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['image']} | {row['store']} | {row['way']} | {row['round_trips']} | {row['requests']} | "
            f"{row['most_in_flight']} | {row['bytes_read']:,} | {row['seconds']:.2f} | "
            f"{row['low']:.2f}-{row['high']:.2f} |"
        )
    note = azure_note(rows)
    if note:
        lines += ["", note]
    if fleet_rows:
        lines += [
            "",
            f"A fleet: `audit_many` over {args.fleet} URLs of the 127 GiB VHDX with {args.workers} worker processes "
            f"(pool start included), at the same {args.delay * 1000:.0f} ms: reads one at a time "
            "(`AZVHDAUDIT_BATCH=0`), batched with one image at a time per worker (`images_per_worker=1`), and "
            "batched with the images of each worker overlapped (the default for URLs: "
            "`azvhdaudit.fleet.REMOTE_IN_FLIGHT` images at once, in threads).",
            "",
            "| how | images | unreadable | seconds | images/minute |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in fleet_rows:
            lines.append(
                f"| {row['way']} | {row['images']} | {row['unreadable']} | {row['seconds']:.1f} | "
                f"{row['images'] / row['seconds'] * 60:.0f} |"
            )
    section = "\n".join(lines) + "\n"
    results_file.write_section(args.out, SECTION, section)


if __name__ == "__main__":
    sys.exit(main())
