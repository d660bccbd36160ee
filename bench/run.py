#!/usr/bin/env python3
"""Time azvhdaudit against the tools people would pick instead, side by side, and write bench/results.md.

References: bench/README.md (what is measured and how to read the table); bench/images.py (the images).

Usage::

    python bench/run.py [--rounds 5] [--fleet 60] [--out bench/results.md]

Every measurement runs in a fresh process (so peak RSS is that measurement's own, read with
``os.wait4``), and the tools take turns, round after round, so a change in the machine's load hits all
of them alike. Measured, each on the 127 GiB dynamic VHDX unless said otherwise:

- ``azvhdaudit``: ``azvhdaudit.audit(IMAGE)`` (every rule of the ``azure`` profile) in a process that has
  imported the package; also on the fixed VHD and the 1 GiB copy; side by side with profile ``azure-2022``
  (the 2022-08 document alone, no platform rules) and with ``verify_signatures=True`` (digests and catalogs),
  each rule's own duration included;
- ``signify``: loading the Authenticode verifier once in a fresh process (what the first signed file costs);
- ``azvhdaudit CLI``: ``azvhdaudit audit IMAGE --format json -o /dev/null``, the whole process;
- ``dissect.target``: ``Target.open(IMAGE)`` and reading the registry values the audit reads
  (recorded from an audit of the same image, hive by hive, the values read in one pass over a key's subkeys
  included);
- ``python-registry``: ``azvhdaudit.audit(IMAGE, backend="python-registry")``, which parses whole hives;
- the fleet: ``audit_many`` over copies (symlinks) of the image with 2 worker processes.

Bytes read and read calls: azvhdaudit's own counters on the image file (``Image.stats``); for every
tool, also the process's ``rchar``/``syscr`` from ``/proc/self/io`` over the timed part (all reads
of every file, so they include any module a tool imports lazily while it runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

MiB = 1024 * 1024
#: the sample whose boot drivers carry real signatures (WinDivert 4.0.1: Hardware Compatibility Publisher and a
#: public EV signature; the Windows Server 2019 hives), for what the signature check costs on signed files
SIGNED_SAMPLE = "gen2-ready.vhd"
#: hives the audit reads that dissect.target maps under HKLM too
TARGET_HIVES = ("SYSTEM", "SOFTWARE", "SAM", "SECURITY")


# --------------------------------------------------------------------------------------------
# measurements, each run in its own process ("--child KIND IMAGE")


def _proc_io() -> dict[str, int]:
    try:
        with open("/proc/self/io", encoding="ascii") as fh:
            return {k: int(v) for k, v in (line.split(": ") for line in fh.read().splitlines())}
    except OSError:
        return {}


def _io_delta(before: dict[str, int]) -> dict[str, int]:
    after = _proc_io()
    return {
        "rchar": after.get("rchar", 0) - before.get("rchar", 0),
        "syscr": after.get("syscr", 0) - before.get("syscr", 0),
    }


def child_azvhdaudit(image: str, backend: str, profile: str = "azure", verify: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    import azvhdaudit
    import azvhdaudit.container  # this and the two backends: imported by the first open_image()
    import azvhdaudit.engine
    import azvhdaudit.image
    import azvhdaudit.pe  # imported by the first file version read
    import azvhdaudit.registry.pyreg
    import azvhdaudit.registry.regf
    from azvhdaudit.fleet import audit_source

    azvhdaudit.engine.catalogue()  # imports the rule modules, as the first audit would
    imported = time.perf_counter()
    before = _proc_io()
    begin, cpu_begin = time.perf_counter(), time.process_time()
    report = azvhdaudit.audit(image, profile, backend=backend, verify_signatures=verify)
    wall, first_cpu = time.perf_counter() - begin, time.process_time() - cpu_begin
    io = _io_delta(before)
    signify_loaded = "signify" in sys.modules  # only a file with a certificate table or a catalog loads it
    begin, cpu = time.perf_counter(), time.process_time()
    warm_report = azvhdaudit.audit(image, profile, backend=backend, verify_signatures=verify)
    warm, warm_cpu = time.perf_counter() - begin, time.process_time() - cpu
    # The same audit again through audit_source, which records the image's read counters.
    counted = audit_source(image, profile=profile, backend=backend, verify_signatures=verify)
    stats = counted.facts["extra"]["io"]
    statuses: dict[str, int] = {}
    for result in report.results:
        statuses[result.status.value] = statuses.get(result.status.value, 0) + 1
    signing = _signing_summary(warm_report)
    return {
        "import_ms": (imported - started) * 1000,
        "wall_ms": wall * 1000,
        "cpu_ms": first_cpu * 1000,
        "warm_ms": warm * 1000,
        "warm_cpu_ms": warm_cpu * 1000,
        "bytes_read": stats["bytes_read"],
        "read_calls": stats["requests"],
        **io,
        "rules": len(report.results),
        "statuses": statuses,
        "rule_ms": {r.rule_id: r.duration_ms for r in report.results},
        "warm_rule_ms": {r.rule_id: r.duration_ms for r in warm_report.results},
        "signing": signing,
        "signify_loaded": signify_loaded,
    }


def _signing_summary(report: Any) -> dict[str, Any]:
    """The signature check's own account of what it read (``signing.boot_drivers``' summary evidence)."""
    for result in report.results:
        if result.rule_id == "signing.boot_drivers":
            for ev in result.evidence:
                if ev.source == "facts" and isinstance(ev.actual, dict):
                    return {"status": result.status.value, **ev.actual}
            return {"status": result.status.value}
    return {}


def child_signify() -> dict[str, Any]:
    """The one-time cost of loading the Authenticode verifier (signify, its crypto stack and the oscrypto fix)
    in a fresh process that has imported the package, and of building the kernel-mode trust store."""
    import azvhdaudit.authenticode as authenticode
    import azvhdaudit.engine

    azvhdaudit.engine.catalogue()
    before = set(sys.modules)
    begin, cpu_begin = time.perf_counter(), time.process_time()
    authenticode.load_signify()
    loaded, cpu = time.perf_counter(), time.process_time() - cpu_begin
    authenticode._store(authenticode.KERNEL_ANCHORS)
    store = time.perf_counter()
    return {
        "wall_ms": (loaded - begin) * 1000,
        "cpu_ms": cpu * 1000,
        "store_ms": (store - loaded) * 1000,
        "modules": len(set(sys.modules) - before),
    }


def record_queries(image: str) -> list[tuple[str, str, str]]:
    """(hive, key path, value name) of every value an audit of ``image`` reads, in order, once each: one by one
    (``value``) and in one pass over a key's subkeys (``subkey_values``)."""
    from azvhdaudit.engine import audit
    from azvhdaudit.registry.backend import BackendKey

    seen: dict[tuple[str, str, str], None] = {}
    original = BackendKey.value
    original_batch = BackendKey.subkey_values

    def recording(self: Any, name: str) -> Any:
        seen.setdefault((self.hive_name, self.path, name), None)
        return original(self, name)

    def recording_batch(self: Any, names: tuple[str, ...], limit: int | None = None) -> Any:
        # the values read in one pass over a key's subkeys (every service's Start, every product's DisplayName)
        found = original_batch(self, names, limit)
        for subkey in found:
            path = f"{self.path}\\{subkey}" if self.path else subkey
            for name in names:
                seen.setdefault((self.hive_name, path, name), None)
        return found

    BackendKey.value = recording  # type: ignore[method-assign]
    BackendKey.subkey_values = recording_batch  # type: ignore[method-assign]
    try:
        audit(image)
    finally:
        BackendKey.value = original  # type: ignore[method-assign]
        BackendKey.subkey_values = original_batch  # type: ignore[method-assign]
    return list(seen)


def child_dissect_target(image: str, queries_file: str) -> dict[str, Any]:
    queries = [q for q in json.loads(Path(queries_file).read_text()) if q[0] in TARGET_HIVES]
    started = time.perf_counter()
    from dissect.target import Target
    from dissect.target.exceptions import RegistryError

    imported = time.perf_counter()
    before = _proc_io()
    begin, cpu_begin = time.perf_counter(), time.process_time()
    target = Target.open(image)
    registry = target.registry
    found = 0
    for hive, path, name in queries:
        try:
            key = registry.key(f"HKLM\\{hive}\\{path}" if path else f"HKLM\\{hive}")
            key.value(name).value  # noqa: B018 - read the data, as the audit does
            found += 1
        except RegistryError:
            pass
    wall, cpu = time.perf_counter() - begin, time.process_time() - cpu_begin
    io = _io_delta(before)
    return {
        "import_ms": (imported - started) * 1000,
        "wall_ms": wall * 1000,
        "cpu_ms": cpu * 1000,
        **io,
        "queries": len(queries),
        "found": found,
    }


def run_child(argv: list[str]) -> int:
    kind, image = argv[0], argv[1]
    if kind == "azvhdaudit":
        out = child_azvhdaudit(image, "regf")
    elif kind == "azvhdaudit-2022":
        out = child_azvhdaudit(image, "regf", profile="azure-2022")
    elif kind == "azvhdaudit-verify":
        out = child_azvhdaudit(image, "regf", verify=True)
    elif kind == "signify":
        out = child_signify()
    elif kind == "python-registry":
        out = child_azvhdaudit(image, "python-registry")
    elif kind == "dissect.target":
        out = child_dissect_target(image, argv[2])
    elif kind == "record":
        Path(argv[2]).write_text(json.dumps(record_queries(image)))
        out = {}
    elif kind == "fleet":
        from azvhdaudit.fleet import audit_many

        fleet = json.loads(Path(argv[2]).read_text())
        begin = time.perf_counter()
        reports = list(audit_many(fleet, workers=2))
        seconds = time.perf_counter() - begin
        out = {
            "images": len(reports),
            "seconds": seconds,
            "per_minute": len(reports) / seconds * 60,
            "errors": sum(1 for r in reports if not r.results or r.results[0].rule_id.startswith("image.")),
        }
    else:
        raise SystemExit(f"unknown measurement {kind!r}")
    print(json.dumps(out))
    return 0


# --------------------------------------------------------------------------------------------
# the runner


def child_env() -> dict[str, str]:
    """The children run as an installed package does: with bytecode caches (kept under bench/_work, not
    beside the sources), even where the shell sets PYTHONDONTWRITEBYTECODE."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(HERE / "_work" / "pycache")
    return env


def measure(cmd: list[str], label: str) -> dict[str, Any]:
    """Run ``cmd`` to completion; its JSON output (if any), wall time and peak RSS."""
    begin = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=child_env())
    # wait4 gives this child's own rusage (peak RSS), not the maximum over every child so far
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - begin
    proc.returncode = os.waitstatus_to_exitcode(status)
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stdout:
        proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    data: dict[str, Any] = {}
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if lines:
        data = json.loads(lines[-1])
    elif proc.returncode not in (0, 1):
        raise RuntimeError(f"{label}: {' '.join(cmd)} exited {proc.returncode}: {err[-2000:]}")
    data["process_ms"] = wall * 1000
    data["process_cpu_ms"] = (usage.ru_utime + usage.ru_stime) * 1000
    data["peak_rss_kib"] = usage.ru_maxrss
    data["returncode"] = proc.returncode
    return data


def child_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", *args]


def cli_cmd(image: str) -> list[str]:
    script = Path(sys.executable).with_name("azvhdaudit")
    if script.exists():
        return [str(script), "audit", image, "--format", "json", "-o", os.devnull]
    return [sys.executable, "-m", "azvhdaudit", "audit", image, "--format", "json", "-o", os.devnull]


def machine() -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            mem = int(fh.readline().split()[1]) // 1024
    except OSError:
        mem = 0
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    versions = []
    for package in ("dissect.target", "dissect.regf", "dissect.ntfs", "python-registry", "pefile"):
        try:
            from importlib.metadata import version

            versions.append(f"{package} {version(package)}")
        except Exception:
            versions.append(f"{package} (not installed)")
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {mem:,} MiB RAM, "
        f"Python {platform.python_version()}; load average at the start {load}; " + ", ".join(versions)
    )


def med(rows: list[dict[str, Any]], field: str) -> float:
    return float(statistics.median(r[field] for r in rows))


def spread(rows: list[dict[str, Any]], field: str) -> str:
    values = [r[field] for r in rows]
    return f"{min(values):,.0f}–{max(values):,.0f}"


def write_results(
    out: Path,
    runs: dict[str, list[dict[str, Any]]],
    fleet: list[dict[str, Any]],
    images: dict[str, Path],
    rounds: int,
    started: dt.datetime,
    seconds: float,
    about: str,
    queries: int,
) -> str:
    names = {
        "azvhdaudit": "azvhdaudit, in process (`azvhdaudit.audit`, profile `azure`, the default)",
        "azvhdaudit-2022": "azvhdaudit, in process, profile `azure-2022` (the 2022-08 document alone)",
        "azvhdaudit-verify": "azvhdaudit, in process, `verify_signatures=True` (digests and catalogs)",
        "signify": "loading signify (`authenticode.load_signify()`), once per process",
        "azvhdaudit-vhd": "azvhdaudit, in process",
        "azvhdaudit-1g": "azvhdaudit, in process",
        "cli": "azvhdaudit CLI (`audit --format json`), whole process",
        "dissect.target": f"dissect.target: `Target.open` + the audit's {queries} registry values",
        "python-registry": 'azvhdaudit with `backend="python-registry"` (whole hives)',
        "signed": "azvhdaudit, in process, on signed drivers (default: certificate tables)",
        "signed-verify": "azvhdaudit, in process, on signed drivers, `verify_signatures=True`",
    }
    image_of = {
        "azvhdaudit-vhd": "bench-127g.vhd",
        "azvhdaudit-1g": "bench-1g.vhdx",
        "signify": "—",
        "signed": SIGNED_SAMPLE,
        "signed-verify": SIGNED_SAMPLE,
    }
    info = images["bench-127g.vhdx"].with_name("software.json")
    software = json.loads(info.read_text()) if info.exists() else {"bytes": 0, "keys": 0}
    lines = [
        "# Benchmark: azvhdaudit against the alternatives",
        "",
        f"`python bench/run.py --rounds {rounds}` on {started:%Y-%m-%d %H:%M} UTC, {seconds:.0f} s.",
        "",
        f"Machine: {about}; load average at the end "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg()) if hasattr(os, 'getloadavg') else '?'}.",
        "",
        "Images (built by `bench/images.py`): `bench-127g.vhdx`, a 127 GiB Generation 2 dynamic VHDX "
        f"({images['bench-127g.vhdx'].stat().st_size / MiB:,.0f} MiB file) with the real Windows 7 SYSTEM hive "
        f"(11.2 MiB), a {software['bytes'] / MiB:,.0f} MiB SOFTWARE hive of {software['keys']:,} keys, SECURITY, "
        "SAM, a real BCD on the ESP, real-size "
        "kernel and driver binaries and 3,400 filler files in System32; `bench-127g.vhd`, the same disk as a "
        "fixed VHD (sparse on disk); `bench-1g.vhdx`, the same content on a 1 GiB disk.",
        "",
        f"Each row: the median of {rounds} runs, each in a fresh process, the tools taking turns round by round. "
        "*Time* is the timed call after the imports (for the CLI: the whole process, interpreter start "
        "included), *CPU* the CPU time the process spent on it (`time.process_time`; for the CLI the "
        "process's user and system time): on a shared machine the wall time also holds the waits for a CPU, "
        "the CPU time much less so. The processes use bytecode caches, as an installed package does (one "
        "uncounted run fills them). *Peak RSS* is the process's (`ru_maxrss`). *Image bytes / reads* are azvhdaudit's "
        "counters on the image file; *rchar / syscr* are the process's reads of any file during the timed "
        "part (`/proc/self/io`).",
        "",
        "| what | image | time ms (median) | min–max | CPU ms (median) | import ms | peak RSS MiB | image bytes "
        "read | image reads | rchar | syscr |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, rows in runs.items():
        if not rows:
            continue
        field = "process_ms" if key == "cli" else "wall_ms"
        image = image_of.get(key, "bench-127g.vhdx")
        imp = f"{med(rows, 'import_ms'):,.0f}" if "import_ms" in rows[0] else "—"
        got_bytes = f"{med(rows, 'bytes_read'):,.0f}" if "bytes_read" in rows[0] else "—"
        got_reads = f"{med(rows, 'read_calls'):,.0f}" if "read_calls" in rows[0] else "—"
        rchar = f"{med(rows, 'rchar'):,.0f}" if "rchar" in rows[0] else "—"
        syscr = f"{med(rows, 'syscr'):,.0f}" if "syscr" in rows[0] else "—"
        cpu_field = "process_cpu_ms" if key == "cli" else "cpu_ms"
        cpu_ms = f"{med(rows, cpu_field):,.1f}" if cpu_field in rows[0] else "—"
        lines.append(
            f"| {names[key]} | {image} | {med(rows, field):,.1f} | {spread(rows, field)} | {cpu_ms} | {imp} | "
            f"{med(rows, 'peak_rss_kib') / 1024:,.1f} | {got_bytes} | {got_reads} | {rchar} | {syscr} |"
        )
    lines.append("")
    ours = med(runs["azvhdaudit"], "wall_ms")
    facts = []
    if runs.get("dissect.target"):
        theirs = med(runs["dissect.target"], "wall_ms")
        facts.append(
            f"- dissect.target / azvhdaudit (same image, same registry values, both after import): "
            f"**{theirs / ours:,.1f}x**"
        )
    if runs.get("python-registry"):
        facts.append(
            f"- python-registry backend / default backend: **{med(runs['python-registry'], 'wall_ms') / ours:,.1f}x**"
        )
    if runs.get("azvhdaudit-1g"):
        small = med(runs["azvhdaudit-1g"], "wall_ms")
        facts.append(
            f"- 127 GiB / 1 GiB image, same content: time {ours / small:.2f}x, image bytes read "
            f"{med(runs['azvhdaudit'], 'bytes_read') / med(runs['azvhdaudit-1g'], 'bytes_read'):.2f}x"
        )
    if runs["azvhdaudit"]:
        first = runs["azvhdaudit"][0]
        statuses = ", ".join(f"{v} {k}" for k, v in sorted(first["statuses"].items()))
        cpu = med(runs["azvhdaudit"], "warm_cpu_ms")
        facts.append(
            f"- the audit ran {first['rules']} rules ({statuses}); the first audit in the process: "
            f"{ours:,.1f} ms, {med(runs['azvhdaudit'], 'cpu_ms'):,.1f} ms of CPU; a second audit in the "
            f"same process (warm): {med(runs['azvhdaudit'], 'warm_ms'):,.1f} ms, {cpu:,.1f} ms of CPU — "
            f"{2 * 60_000 / cpu:,.0f} images per minute on 2 cores if nothing else ran on them"
        )
    if runs.get("azvhdaudit-2022"):
        old = runs["azvhdaudit-2022"]
        facts.append(
            f"- profile `azure` / `azure-2022` (the platform rules' share): time "
            f"{ours / med(old, 'wall_ms'):.2f}x ({ours - med(old, 'wall_ms'):+,.1f} ms), warm "
            f"{med(runs['azvhdaudit'], 'warm_ms'):,.1f} / {med(old, 'warm_ms'):,.1f} ms, image bytes read "
            f"{med(runs['azvhdaudit'], 'bytes_read'):,.0f} / {med(old, 'bytes_read'):,.0f}, reads "
            f"{med(runs['azvhdaudit'], 'read_calls'):,.0f} / {med(old, 'read_calls'):,.0f}"
        )
    if runs.get("azvhdaudit-verify"):
        ver = runs["azvhdaudit-verify"]
        sig = ver[0].get("signing", {})
        fast = runs["azvhdaudit"][0].get("signing", {}) if runs["azvhdaudit"] else {}
        if not any(r.get("signify_loaded") for r in ver):
            load = " (signify not loaded: no driver present carries a certificate table and there are no catalogs)"
        elif runs.get("signify"):
            load = f", {med(runs['signify'], 'wall_ms'):,.0f} ms of it loading signify"
        else:
            load = ""
        facts.append(
            f"- `verify_signatures=True` / default: first audit {med(ver, 'wall_ms'):,.1f} / {ours:,.1f} ms"
            f"{load}; warm {med(ver, 'warm_ms'):,.1f} / {med(runs['azvhdaudit'], 'warm_ms'):,.1f} ms; "
            f"image bytes read {med(ver, 'bytes_read'):,.0f} / {med(runs['azvhdaudit'], 'bytes_read'):,.0f}"
            f"; `signing.boot_drivers` says: {_signing_words(sig)} (default: {_signing_words(fast)})"
        )
    if runs.get("signed") and runs.get("signed-verify"):
        fast, full = runs["signed"], runs["signed-verify"]
        facts.append(
            f"- on signed drivers ({SIGNED_SAMPLE}, a sample): default / `verify_signatures=True`: first audit "
            f"{med(fast, 'wall_ms'):,.1f} / {med(full, 'wall_ms'):,.1f} ms, warm {med(fast, 'warm_ms'):,.1f} / "
            f"{med(full, 'warm_ms'):,.1f} ms, image bytes read {med(fast, 'bytes_read'):,.0f} / "
            f"{med(full, 'bytes_read'):,.0f}; `signing.boot_drivers` says: {_signing_words(full[0].get('signing', {}))}"
            f" (default: {_signing_words(fast[0].get('signing', {}))})"
        )
    if fleet:
        best = statistics.median(r["per_minute"] for r in fleet)
        facts.append(
            f"- fleet: `audit_many` over {fleet[0]['images']} copies of bench-127g.vhdx with 2 worker "
            f"processes: **{best:,.0f} images per minute** (median of {len(fleet)}; "
            f"{statistics.median(r['seconds'] for r in fleet):.1f} s each, pool start included; "
            "the workers share the 2 CPUs with whatever else runs, see the load average above)"
        )
    facts.append(
        "- remote sources (bytes and requests per audit over HTTP and Azure Blob): "
        "see [results-fleet.md](results-fleet.md)"
    )
    lines += ["Ratios (medians):", "", *facts, ""]
    lines += per_rule_section(runs)
    text = "\n".join(lines)
    out.write_text(text, encoding="utf-8")
    return text


def _signing_words(sig: dict[str, Any]) -> str:
    if not sig:
        return "not run"
    words = (
        f"{sig.get('status')}, {sig.get('mode')} mode, {sig.get('drivers', 0)} drivers ("
        f"{sig.get('trusted', 0)} trusted, {sig.get('not_trusted', 0)} not trusted, {sig.get('missing', 0)} "
        f"missing, {sig.get('not_decided', 0)} not decided), {sig.get('bytes_read', 0):,} bytes of driver "
        "files read"
    )
    if "catalogs_read" in sig:
        words += f", {sig['catalogs_read']:,} catalogs ({sig.get('catalog_bytes_read', 0):,} bytes)"
    return words


#: the rules of profile ``azure`` that ``azure-2022`` does not run
PLATFORM_AREAS = ("secureboot.", "signing.", "nvme.", "platform_net.")


def per_rule_section(runs: dict[str, list[dict[str, Any]]], shown: int = 14) -> list[str]:
    """The slowest rules, side by side under ``azure``, ``azure-2022`` and ``verify_signatures=True`` (medians of
    each rule's ``duration_ms`` in the first audit and in the warm one), and the platform rules' total."""
    columns = [
        (key, title)
        for key, title in (
            ("azvhdaudit", "azure"),
            ("azvhdaudit-2022", "azure-2022"),
            ("azvhdaudit-verify", "azure, verify_signatures"),
        )
        if runs.get(key)
    ]
    if not columns:
        return []

    def rule_med(key: str, field: str, rule_id: str) -> float | None:
        values = [r[field][rule_id] for r in runs[key] if rule_id in r.get(field, {})]
        return float(statistics.median(values)) if values else None

    ids = set().union(*(r["rule_ms"] for key, _ in columns for r in runs[key]))
    ranked = sorted(ids, key=lambda i: -max((rule_med(k, "warm_rule_ms", i) or 0.0) for k, _ in columns))
    head = " | ".join(f"{title} first | {title} warm" for _, title in columns)
    lines = [
        "Per rule (ms, median of each rule's own `duration_ms` over the runs; *first*: the first audit in the "
        f"process, *warm*: the second), the {shown} slowest warm:",
        "",
        f"| rule | {head} |",
        "|---|" + "---:|" * (2 * len(columns)),
    ]

    def cell(value: float | None) -> str:
        return "—" if value is None else f"{value:,.2f}"

    for rule_id in ranked[:shown]:
        cells = " | ".join(
            f"{cell(rule_med(k, 'rule_ms', rule_id))} | {cell(rule_med(k, 'warm_rule_ms', rule_id))}"
            for k, _ in columns
        )
        lines.append(f"| {rule_id} | {cells} |")
    totals = []
    for field in ("rule_ms", "warm_rule_ms"):
        for key, _ in columns:
            sums = [sum(v for i, v in r[field].items() if i.startswith(PLATFORM_AREAS)) for r in runs[key]]
            totals.append((key, field, float(statistics.median(sums))))
    platform = " | ".join(
        f"{cell(next(t for k2, f, t in totals if k2 == k and f == 'rule_ms'))} | "
        f"{cell(next(t for k2, f, t in totals if k2 == k and f == 'warm_rule_ms'))}"
        for k, _ in columns
    )
    lines.append(f"| all platform rules ({', '.join(a.rstrip('.') for a in PLATFORM_AREAS)}) | {platform} |")
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return run_child(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="runs per measurement (median; default 5)")
    parser.add_argument("--fleet", type=int, default=60, help="images in the fleet run (default 60; 0 skips)")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--no-dissect-target", action="store_true", help="leave dissect.target out")
    args = parser.parse_args(argv)

    import images as bench_images

    started = dt.datetime.now(dt.timezone.utc)
    begin = time.perf_counter()
    about = machine()
    paths = bench_images.build_all()
    big = str(paths["bench-127g.vhdx"])
    work = bench_images.WORK
    queries_file = work / "queries.json"
    measure(child_cmd("record", big, str(queries_file)), "record")
    queries = len([q for q in json.loads(queries_file.read_text()) if q[0] in TARGET_HIVES])

    signed = work / SIGNED_SAMPLE
    if not signed.exists():  # in a process of its own: the xz decoder's memory would count in every child's peak RSS
        unpack = [sys.executable, str(ROOT / "samples" / "unpack.py")]
        subprocess.run([*unpack, str(ROOT / "samples" / f"{SIGNED_SAMPLE}.xz"), str(signed)], check=True)
    plan: list[tuple[str, list[str]]] = [
        ("azvhdaudit", child_cmd("azvhdaudit", big)),
        ("azvhdaudit-2022", child_cmd("azvhdaudit-2022", big)),
        ("azvhdaudit-verify", child_cmd("azvhdaudit-verify", big)),
        ("signify", child_cmd("signify", big)),
        ("cli", cli_cmd(big)),
        ("azvhdaudit-vhd", child_cmd("azvhdaudit", str(paths["bench-127g.vhd"]))),
        ("azvhdaudit-1g", child_cmd("azvhdaudit", str(paths["bench-1g.vhdx"]))),
        ("python-registry", child_cmd("python-registry", big)),
        ("signed", child_cmd("azvhdaudit", str(signed))),
        ("signed-verify", child_cmd("azvhdaudit-verify", str(signed))),
    ]
    if not args.no_dissect_target:
        try:
            import dissect.target  # noqa: F401
        except ImportError:
            print("dissect.target is not installed (pip install -e '.[bench]'); leaving it out", file=sys.stderr)
        else:
            plan.insert(2, ("dissect.target", child_cmd("dissect.target", big, str(queries_file))))
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key, _ in plan}
    for key, cmd in plan:  # a run of each, not counted: fills the bytecode caches
        measure(cmd, key)
    for number in range(1, args.rounds + 1):
        for key, cmd in plan:
            row = measure(cmd, key)
            runs[key].append(row)
            shown = row.get("wall_ms", row["process_ms"]) if key != "cli" else row["process_ms"]
            print(
                f"round {number} {key}: {shown:,.1f} ms, peak RSS {row['peak_rss_kib'] / 1024:.1f} MiB", file=sys.stderr
            )

    fleet_rows: list[dict[str, Any]] = []
    if args.fleet:
        links = work / "fleet-links"
        if links.exists():
            shutil.rmtree(links)
        links.mkdir()
        fleet = []
        for n in range(args.fleet):
            link = links / f"{n:04d}.vhdx"
            link.symlink_to(big)
            fleet.append(str(link))
        fleet_file = work / "fleet.json"
        fleet_file.write_text(json.dumps(fleet))
        for _ in range(3):
            row = measure(child_cmd("fleet", big, str(fleet_file)), "fleet")
            fleet_rows.append(row)
            print(
                f"fleet: {row['images']} images in {row['seconds']:.1f} s = {row['per_minute']:,.0f}/min",
                file=sys.stderr,
            )
    text = write_results(
        args.out, runs, fleet_rows, paths, args.rounds, started, time.perf_counter() - begin, about, queries
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
