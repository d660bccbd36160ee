"""Benchmark the command line's cold start: the whole process auditing the benchmark image, before and after.

    python bench/coldstart.py [--before REV] [--rounds 7] [--out bench/results-fleet.md] [--callgrind]

Runs ``python -m azvhdaudit audit bench-127g.vhdx --format json -o /dev/null`` in a fresh process (interpreter
start, imports and the audit), two ways taking turns round after round so that a change in the machine's load
hits both alike:

- **before**: the package as it is at ``--before`` (default: where this branch left ``main``), exported with
  ``git archive`` under ``--work`` and put first on ``PYTHONPATH``;
- **after**: the package of this checkout.

Both run with bytecode caches, as an installed package does (under ``bench/_work/pycache``, even where the shell
sets ``PYTHONDONTWRITEBYTECODE``: without them every import compiles its module again); the CPU time (user and
system) of each process is recorded beside its wall time.

Each way also counts the modules the process imported (``-X importtime``: lines, and how many are dissect's,
pefile's, signify's, construct's) in one extra run, and, with ``--callgrind``, the instructions the whole process
executes (``valgrind --tool=callgrind``, one run each): a figure the machine's load does not move. Writes
(replaces) the section "Cold start" of ``--out``, keeping the rest of the file. The exit status 1 of the audit is
the image's verdict (it fails rules), not an error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import results_file  # noqa: E402  (bench/results_file.py)

SECTION = "## Cold start"
#: the top-level packages counted among the imports
COUNTED = ("dissect", "pefile", "signify", "construct", "fsspec", "Registry")


def export(rev: str, work: Path) -> Path:
    """The package at ``rev``, extracted once under ``work``; the directory to put on ``PYTHONPATH``."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", rev], check=True, capture_output=True, text=True
    ).stdout.strip()
    where = work / commit[:12]
    if not (where / "azvhdaudit" / "__init__.py").exists():
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit, "azvhdaudit"], check=True, capture_output=True
        ).stdout
        where.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(where, filter="data")
    return where


def command(image: Path, *extra: str) -> list[str]:
    return [sys.executable, *extra, "-m", "azvhdaudit", "audit", str(image), "--format", "json", "-o", os.devnull]


def environment(path: Path | None) -> dict[str, str]:
    """The children run as an installed package does: with bytecode caches (kept under bench/_work/pycache, for
    both ways alike), even where the shell sets PYTHONDONTWRITEBYTECODE; ``path`` first on ``PYTHONPATH``."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(ROOT / "bench" / "_work" / "pycache")
    if path is not None:
        env["PYTHONPATH"] = str(path)
    else:
        env.pop("PYTHONPATH", None)
    return env


def run(image: Path, path: Path | None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one whole process."""
    env = environment(path)
    started = time.perf_counter()
    proc = subprocess.Popen(command(image), env=env, cwd=ROOT / "bench", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # wait4: this child's own CPU time, not the sum over every child so far
    _pid, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"the audit failed ({code}): {err[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime


#: where the imports' own time goes: this package, the format readers it uses, and the rest (the standard library)
GROUPS = {"azvhdaudit": ("azvhdaudit",), "readers": ("dissect", "pefile", "construct", "signify", "fsspec", "Registry")}


def imports(image: Path, path: Path | None, runs: int = 3) -> dict[str, float]:
    """The modules the process imports (``-X importtime``: lines, and how many are dissect's, pefile's ...), and
    the median over ``runs`` of the import time of each of :data:`GROUPS` and of the rest (ms, each module's own
    time summed)."""
    env = environment(path)
    counts: dict[str, float] = {}
    times: dict[str, list[float]] = {group: [] for group in (*GROUPS, "rest")}
    for _ in range(runs):
        done = subprocess.run(
            command(image, "-X", "importtime"), env=env, cwd=ROOT / "bench", capture_output=True, text=True, timeout=300
        )
        rows = [
            (int(line[12:].split("|")[0]), line.rsplit("|", 1)[1].strip())
            for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line and "self [us]" not in line
        ]
        counts = {"modules": len(rows)}
        for top in COUNTED:
            counts[top] = sum(1 for _, name in rows if name.split(".")[0] == top)
        spent = dict.fromkeys(times, 0.0)
        for own, name in rows:
            group = next((g for g, tops in GROUPS.items() if name.split(".")[0] in tops), "rest")
            spent[group] += own / 1000
        for group, ms in spent.items():
            times[group].append(ms)
    return {**counts, **{f"import_{group}": statistics.median(values) for group, values in times.items()}}


def instructions(image: Path, path: Path | None) -> int:
    """The instructions one whole process executes (callgrind's ``Collected``; its output file is discarded)."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={os.devnull}", *command(image)],
        env=environment(path),
        cwd=ROOT / "bench",
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind gave no count: {done.stderr[-2000:]}")
    return int(found.group(1))


#: the machine's load average when main() started, for the results' header
LOAD_AT_START = [0.0]
LOAD_AT_END = [0.0]


def main(argv: list[str] | None = None) -> int:
    LOAD_AT_START[0] = os.getloadavg()[0]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, help="the revision to compare with (default: merge-base with main)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each way (default 7)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results-fleet.md")
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "_work")
    parser.add_argument(
        "--callgrind", action="store_true", help="also count each way's instructions under valgrind (~20 s each)"
    )
    args = parser.parse_args(argv)
    if args.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind on PATH")
    if not 1 <= args.rounds <= 50:
        parser.error("--rounds must be within 1-50")
    before = (
        args.before
        or subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )

    import images as bench_images  # bench/images.py: builds once, cached under --work

    image = Path(bench_images.build_all(args.work)["bench-127g.vhdx"])
    old = export(before, args.work / "coldstart")
    ways = {"before": old, "after": None}
    times: dict[str, list[float]] = {way: [] for way in ways}
    cpu: dict[str, list[float]] = {way: [] for way in ways}
    for path in ways.values():  # once each, untimed: the bytecode caches written, the files in the page cache
        run(image, path)
    for _ in range(args.rounds):
        for way, path in ways.items():
            wall, used = run(image, path)
            times[way].append(wall)
            cpu[way].append(used)
            print(f"{way}: {wall:.3f} s, {used:.3f} s CPU", file=sys.stderr)
    counted = {way: imports(image, path) for way, path in ways.items()}
    if args.callgrind:
        for way, path in ways.items():
            counted[way]["instructions"] = instructions(image, path)
    LOAD_AT_END[0] = os.getloadavg()[0]
    write(args, before, image, times, cpu, counted)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


def write(
    args: argparse.Namespace,
    before: str,
    image: Path,
    times: dict[str, list[float]],
    cpu: dict[str, list[float]],
    counted: dict[str, dict[str, float]],
) -> None:
    flags = " --callgrind" if args.callgrind else ""
    now = dt.datetime.now(dt.timezone.utc)
    lines = [
        SECTION,
        "",
        f"`python bench/coldstart.py --rounds {args.rounds}{flags}` on {now:%Y-%m-%d %H:%M} "
        f"UTC, Python {platform.python_version()}, {os.cpu_count()} CPUs (shared: times vary with the load; the "
        "module counts do not).",
        f"Load average (1 minute) when the measurement started: {LOAD_AT_START[0]:.1f}; when it ended: "
        f"{LOAD_AT_END[0]:.1f}.",
        "",
        f"The whole process of `azvhdaudit audit {image.name} --format json -o /dev/null` (interpreter start, "
        f"imports, the audit, the JSON report), *before* (the package at {before[:12]}) and *after* (this "
        "checkout) taking turns, both with bytecode caches (as an installed package has them). *CPU* is the "
        "process's user and system time, which other work on the machine moves much less than the wall time.",
        "",
        "| way | seconds (median) | min-max | CPU seconds (median) | modules imported | " + " | ".join(COUNTED) + " |",
        "|---|---:|---:|---:|---:|" + "---:|" * len(COUNTED),
    ]
    for way, values in times.items():
        counts = counted[way]
        lines.append(
            f"| {way} | {statistics.median(values):.3f} | {min(values):.3f}-{max(values):.3f} | "
            f"{statistics.median(cpu[way]):.3f} | {counts['modules']:.0f} | "
            + " | ".join(f"{counts[top]:.0f}" for top in COUNTED)
            + " |"
        )
    lines += [
        "",
        "Where the imports' time goes (`-X importtime`, each module's own time summed, median of 3 runs; the "
        "option itself adds a little): *readers* are " + ", ".join(GROUPS["readers"]) + ", *rest* the standard "
        "library (and the editable install's import hook in this checkout's environment).",
        "",
        "| way | azvhdaudit ms | readers ms | rest ms |",
        "|---|---:|---:|---:|",
    ]
    for way in times:
        spent = [counted[way][f"import_{group}"] for group in (*GROUPS, "rest")]
        lines.append(f"| {way} | " + " | ".join(f"{ms:.0f}" for ms in spent) + " |")
    if all("instructions" in counted[way] for way in times):
        lines += [
            "",
            "Instructions the whole process executes (`valgrind --tool=callgrind`, one run each way, with the same "
            "bytecode caches): the figure to compare on a loaded machine.",
            "",
            "| way | instructions (millions) | change |",
            "|---|---:|---:|",
        ]
        first = counted["before"]["instructions"]
        for way in times:
            count = counted[way]["instructions"]
            lines.append(f"| {way} | {count / 1e6:,.0f} | {(count - first) / first:+.1%} |")
    section = "\n".join(lines) + "\n"
    results_file.write_section(args.out, SECTION, section)


if __name__ == "__main__":
    sys.exit(main())
