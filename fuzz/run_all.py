"""Run every harness one after the other, each for a time budget, restarting after a crash.

Usage: python fuzz/run_all.py [--seconds 300] [harness ...]

libFuzzer stops at the first crash; this runner starts the harness again (with the corpus it has
grown) until the harness's budget is spent, keeps every ``crash-*`` / ``timeout-*`` / ``oom-*`` file
under ``$AZVHDAUDIT_FUZZ_WORK/artifacts/<harness>/`` and writes the figures (seconds run, executions,
crashes) to ``$AZVHDAUDIT_FUZZ_WORK/summary.json``. One harness at a time: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _common  # noqa: E402

HARNESSES = ("container", "hive", "bcd", "layout", "pe", "audit", "chains")
TIMEOUTS = {"audit": 10}
RUNS = re.compile(r"^#(\d+)\s", re.M)


def run(name: str, seconds: int) -> dict[str, object]:
    artifacts = _common.WORK / "artifacts" / name
    artifacts.mkdir(parents=True, exist_ok=True)
    corpus = _common.WORK / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    seeds = _common.seed_dir(name)
    log = _common.WORK / f"{name}.log"
    started = time.monotonic()
    executions = restarts = 0
    while (left := seconds - (time.monotonic() - started)) > 5:
        cmd = [
            sys.executable,
            str(HERE / f"fuzz_{name}.py"),
            str(corpus),
            str(seeds),
            f"-max_total_time={int(left)}",
            f"-timeout={TIMEOUTS.get(name, 5)}",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        with open(log, "a") as fh:
            fh.write(proc.stderr[-20000:])
        counts = [int(n) for n in RUNS.findall(proc.stderr)]
        done = re.search(r"stat::number_of_executed_units:\s*(\d+)", proc.stderr)
        executions += int(done.group(1)) if done else (max(counts) if counts else 0)
        if proc.returncode == 0:
            break
        restarts += 1
    found = sorted(p.name for p in artifacts.iterdir())
    return {
        "seconds": round(time.monotonic() - started),
        "executions": executions,
        "restarts_after_crash": restarts,
        "artifacts": found,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=300)
    parser.add_argument("harness", nargs="*", default=list(HARNESSES))
    args = parser.parse_args()
    summary_path = _common.WORK / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name in args.harness:
        result = run(name, args.seconds)
        previous = summary.get(name)
        if previous:  # add up repeated sessions
            result["seconds"] += previous["seconds"]
            result["executions"] += previous["executions"]
            result["restarts_after_crash"] += previous["restarts_after_crash"]
        summary[name] = result
        summary_path.write_text(json.dumps(summary, indent=1))
        print(name, json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
