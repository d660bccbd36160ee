"""Benchmark fleet audits: images per minute locally and on Dask, bytes and requests per remote audit.

    python bench/fleet.py [--images 50] [--workers 2] [--out bench/results-fleet.md]

Builds the sample images of ``tests/remote/remote_images.py`` under ``bench/_work`` (real tools, real hives),
makes a fleet of symlinks to them, and times:

- ``audit_many`` in this process (``workers=1``) and in a pool of ``--workers`` processes;
- ``audit_many`` on a Dask ``LocalCluster`` of ``--workers`` single-threaded worker processes;
- one audit of each sample read remotely: over HTTP with Range (a local threaded server), from Azurite as a
  page blob (only non-zero pages written) and as a block blob, and the 100 GiB fixed VHD as a page blob,
  with the bytes and requests each took (``report.facts["extra"]["io"]``).

Azurite is found as the remote tests find it (``$AZURITE``, ``PATH``, ``.ci-node``); without it the Azure
rows are left out and the report says so. Writes a Markdown table to ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "remote"))
sys.path.insert(0, str(ROOT))

import remote_images as ri  # noqa: E402
import remote_servers as rs  # noqa: E402

from azvhdaudit.fleet import UNREADABLE_ID, audit_many, audit_source  # noqa: E402

MiB = 1024 * 1024
#: sections of the results file written by the other benchmarks, kept when this one rewrites its own
KEPT_SECTIONS = ("## Latency", "## Cold start")


def build(work: Path, count: int) -> tuple[dict[str, Path], list[str]]:
    samples = work / "samples"
    if samples.exists():
        shutil.rmtree(samples)
    samples.mkdir(parents=True)
    images = {
        "win7": ri.build_vhd(samples / "win7.vhd", "win7"),
        "win10-dirty": ri.build_vhd(samples / "win10-dirty.vhd", "win10-dirty"),
        "win7-dynamic": ri.build_vhd(samples / "win7-dynamic.vhd", "win7", subformat="dynamic"),
        "garbage": ri.build_garbage(samples / "garbage.vhd"),
        "large": ri.build_large(samples / "large.vhd"),
    }
    fleet_dir = work / "fleet"
    if fleet_dir.exists():
        shutil.rmtree(fleet_dir)
    fleet_dir.mkdir()
    kinds = [
        "win7",
        "win10-dirty",
        "win7-dynamic",
        "win7",
        "win10-dirty",
        "win7",
        "win7-dynamic",
        "win10-dirty",
        "win7",
        "garbage",
    ]
    fleet = []
    for n in range(count):
        kind = kinds[n % len(kinds)]
        link = fleet_dir / f"{n:04d}-{kind}.vhd"
        link.symlink_to(images[kind])
        fleet.append(str(link))
    return images, fleet


def run_fleet(label: str, fleet: list[str], **kwargs: Any) -> dict[str, Any]:
    started = time.perf_counter()
    reports = list(audit_many(fleet, **kwargs))
    seconds = time.perf_counter() - started
    errors = sum(1 for r in reports if r.get(UNREADABLE_ID))
    row = {
        "how": label,
        "images": len(reports),
        "errors": errors,
        "seconds": seconds,
        "per_minute": len(reports) / seconds * 60,
    }
    print(f"{label}: {len(reports)} images in {seconds:.1f} s = {row['per_minute']:.0f}/min", file=sys.stderr)
    return row


def remote_row(label: str, url: str, size: int, options: dict[str, Any] | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    report = audit_source(url, storage_options=options)
    seconds = time.perf_counter() - started
    io = report.facts["extra"]["io"]
    row = {
        "how": label,
        "file_size": size,
        "bytes": io["bytes_read"],
        "requests": io["requests"],
        "round_trips": io.get("round_trips", io["requests"]),
        "seconds": seconds,
        "results": len(report.results),
        "problem": report.get(UNREADABLE_ID) is not None,
    }
    print(
        f"{label}: {io['bytes_read']} bytes in {io['requests']} requests, {row['round_trips']} round trips, "
        f"{seconds:.2f} s",
        file=sys.stderr,
    )
    return row


#: the machine's load average when main() started, for the results' header
LOAD_AT_START = [0.0]


def main(argv: list[str] | None = None) -> int:
    LOAD_AT_START[0] = os.getloadavg()[0]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50, help="images in the local fleet (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="pool processes and Dask workers (default 2)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-fleet.md")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "_work" / "fleet")
    args = parser.parse_args(argv)

    args.work.mkdir(parents=True, exist_ok=True)
    images, fleet = build(args.work, args.images)

    local = [
        run_fleet("in process (workers=1)", fleet, workers=1),
        run_fleet(f"process pool (workers={args.workers})", fleet, workers=args.workers),
    ]
    from distributed import Client, LocalCluster

    cluster_options = {"n_workers": args.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    with LocalCluster(**cluster_options) as cluster, Client(cluster) as client:
        client.submit(sum, [1]).result()  # workers up before the clock starts
        local.append(run_fleet(f"Dask LocalCluster ({args.workers} worker processes x 1 thread)", fleet, client=client))

    remote: list[dict[str, Any]] = []
    http = rs.start_http(images["win7"].parent)
    try:
        for kind in ("win7", "win10-dirty", "win7-dynamic"):
            remote.append(
                remote_row(f"HTTP Range: {kind}", f"{http.url}/{images[kind].name}", images[kind].stat().st_size)
            )
        remote.append(
            remote_row("HTTP Range: large (100 GiB fixed)", f"{http.url}/large.vhd", images["large"].stat().st_size)
        )
    finally:
        http.stop()

    azure_note = ""
    try:
        azurite = rs.start_azurite(args.work / "azurite")
    except RuntimeError as err:
        azure_note = f"Azure rows left out: {err}"
        print(azure_note, file=sys.stderr)
    else:
        try:
            from azure.storage.blob import BlobServiceClient

            service = BlobServiceClient.from_connection_string(azurite.connection_string)
            container = service.create_container("images")
            options = {"connection_string": azurite.connection_string}
            for kind in ("win7", "win10-dirty", "win7-dynamic", "large"):
                upload = rs.upload_page_blob(container, f"page/{kind}.vhd", images[kind])
                label = f"Azure page blob: {kind}" + (" (100 GiB fixed)" if kind == "large" else "")
                row = remote_row(label, f"az://images/page/{kind}.vhd", upload.size, options)
                row["note"] = f"{upload.pages_written * rs.PAGE / MiB:.1f} MiB of pages written"
                remote.append(row)
            rs.upload_block_blob(container, "block/win7.vhd", images["win7"])
            remote.append(
                remote_row(
                    "Azure block blob: win7", "az://images/block/win7.vhd", images["win7"].stat().st_size, options
                )
            )
        finally:
            azurite.stop()

    write(args.out, args, local, remote, azure_note)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def write(
    out: Path, args: argparse.Namespace, local: list[dict[str, Any]], remote: list[dict[str, Any]], azure_note: str
) -> None:
    lines = [
        "# Fleet and remote audit benchmark",
        "",
        f"`python bench/fleet.py --images {args.images} --workers {args.workers}` on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared: times vary with the load).",
        f"Load average (1 minute) when the measurement started: {LOAD_AT_START[0]:.1f}.",
        "",
        "Images: 64 MiB VHDs with one NTFS partition holding a real SYSTEM hive and a BCD store (Windows 7; the "
        "dirty Windows 10 hive with its two logs, which are read whole to replay them), and one 100 GiB fixed VHD. "
        "The fleet is symlinks to them, one in ten an unreadable file.",
        "",
        "## Images per minute",
        "",
        "| how | images | unreadable | seconds | images/minute |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in local:
        lines.append(
            f"| {row['how']} | {row['images']} | {row['errors']} | {row['seconds']:.1f} | {row['per_minute']:.0f} |"
        )
    lines += [
        "",
        "## Bytes and requests per remote audit",
        "",
        "Requests: one size lookup per file plus one per range fetched (a remote image is cached in 4 KiB pages, "
        "a miss fetches the unit its reader names, adjacent misses of one read joined). "
        "Round trips: the sequential depth, requests that had to wait for the one before (a size "
        "lookup, a range fetched alone, a batch of ranges fetched together). Bytes: what the store returned.",
        "",
        "| source | file size | bytes read | requests | round trips | seconds | note |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in remote:
        lines.append(
            f"| {row['how']} | {row['file_size']:,} | {row['bytes']:,} | {row['requests']} | {row['round_trips']} | "
            f"{row['seconds']:.2f} | {row.get('note', '')}{' (audit failed)' if row['problem'] else ''} |"
        )
    if azure_note:
        lines += ["", azure_note]
    # the sections other benchmarks write (bench/latency.py, bench/coldstart.py) stay as they are
    text = out.read_text() if out.exists() else ""
    kept = [text.find(heading) for heading in KEPT_SECTIONS if text.find(heading) >= 0]
    tail = "\n" + text[min(kept) :] if kept else ""
    out.write_text("\n".join(lines) + "\n" + tail)


if __name__ == "__main__":
    sys.exit(main())
