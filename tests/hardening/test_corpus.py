"""Every broken input of the generated corpus ends safely, in bounded time and memory, without a false pass.

References: corpus.py (the recipes), runner.py (the workers and their limits).

What "safely" means, for each input:

- the audit returns a report, or raises an :class:`~azvhdaudit.errors.AuditError` subclass; no other
  exception, no hang (the worker interrupts an audit after ``runner.HANG_SECONDS``, 5 s) and no
  ``MemoryError`` under the worker's address-space limit (``RLIMIT_AS``, 1.5 GiB);
- no pass built on evidence that could not be read. The check: a broken input is a copy of an intact
  image with some bytes damaged, so what is true of the configuration is what the intact image shows.
  A rule may pass on the broken copy only if (1) it passes on the intact image, and (2) its evidence on
  the copy is the same as on the intact image: the same values read from the same keys, with the same
  ``present`` flags and raw bytes. A pass that stands on a value the damage made unreadable differs in
  its evidence (the value is absent, or read as something else) and is reported; so is a pass of a rule
  that does not pass on the intact image. What this cannot see: an absence-based pass (say "no
  persistent routes") whose key was absent in the intact image as well as unreadable in the copy; the
  verdict is then still the true one.

By default a fixed, stratified selection of the corpus runs (every category, ``DEFAULT_COUNT``
inputs, so the suite stays within a few minutes on two cores); ``AZVHDAUDIT_CORPUS=full`` runs every
recipe. ``AZVHDAUDIT_CORPUS_REPORT=path.json`` writes every outcome and the figures;
``AZVHDAUDIT_TRACEMALLOC=1`` adds each audit's Python heap peak (and makes audits 3-4 times slower).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import corpus
import hardkit
import pytest
import runner

#: slow: builds the corpus of broken images
pytestmark = pytest.mark.slow

DEFAULT_COUNT = 520
WORKERS = int(os.environ.get("AZVHDAUDIT_CORPUS_WORKERS", "2"))
ACCEPTABLE = {"report", "audit_error"}

#: what the issue asks the corpus to hold: name fragments that must be present
REQUIRED_CASES = [
    "gen1-fixed.vhd/truncate@",
    "gen1-dynamic.vhd/truncate@",
    "gen1.vhdx/truncate@",
    "footer-cookie",
    "footer-checksum",
    "header-cookie",
    "header-checksum",
    "bat[",
    "bat-overlap",
    "size-2^63",
    "block-0",
    "header1-crc",
    "both-header-crcs",
    "pending-log",
    "region-crc-both",
    "bat-past-end",
    "parent-missing",
    "parent-is-itself",
    "parent-loop-of-two",
    "parent-is-directory",
    "parent-not-an-image",
    "mbr-overlap-2",
    "mbr-start-past-end",
    "gpt-part1-overlaps-0",
    "gpt-part0-past-end",
    "ntfs-boot-",
    "mft[0]-",
    "dir-loop-System32",
    "-subkey-list-self",
    "-subkeys-huge",
    "-data-offset-bad",
    "-bin[0]-size-0",
    "-base-checksum",
    "-truncated-bins-half",
    "BCD-element@",
    "-res-entry-loop",
    "-resource-rva-huge",
    "fat-root-self",
    "fat-root-2-cycle",
    "fat-entries-2-127-self",
    "fat-bcd-file-loop",
    "mbr-ebr-self",
    "mbr-ebr-four-links",
    "special/image-fifo",
    "-child.vhd/parent-fifo",
    "-child.vhdx/parent-fifo",
    "SOFTWARE-is-SAM",
    "SOFTWARE-is-SECURITY",
    "SYSTEM-is-SOFTWARE",
    "BCD-is-SECURITY",
    "SOFTWARE-base-names-SAM",
    "SYSTEM-ControlSet001-Services-subkey-first-to-list",
    "SYSTEM-MountedDevices-value-to-list",
    "BCD-inherit-self",
    "BCD-inherit-cycle",
]


@functools.lru_cache(maxsize=1)
def _jobs_from(root: str) -> list[corpus.Mutant]:
    return corpus.mutants(hardkit.build_bases(Path(root)))


def select(mutants: list[corpus.Mutant], count: int) -> list[int]:
    """A deterministic selection of ``count`` recipes, spread over every category."""
    if os.environ.get("AZVHDAUDIT_CORPUS") == "full" or count >= len(mutants):
        return list(range(len(mutants)))
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(mutants):
        by_cat[m.category].append(i)
    chosen: list[int] = []
    for indexes in by_cat.values():
        share = max(8, round(count * len(indexes) / len(mutants)))
        step = max(1, len(indexes) / share)
        chosen += [indexes[int(k * step)] for k in range(min(share, len(indexes)))]
    return sorted(set(chosen))


@pytest.fixture(scope="session")
def corpus_run(bases: hardkit.Bases, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run the intact bases and the selected broken inputs; outcomes by name, plus the figures."""
    root = str(bases.root)
    jobs = functools.partial(_jobs_from, root)
    mutants = jobs()
    chosen = select(mutants, DEFAULT_COUNT)
    work = tmp_path_factory.mktemp("corpus-run")
    intact = {m.base for m in mutants}
    base_outcomes = {name: runner.audit_one(bases.path(name)) for name in sorted(intact)}
    outcomes: dict[str, dict[str, Any]] = {}
    for index, outcome in runner.run_all(jobs, chosen, work, workers=WORKERS):
        outcomes[mutants[index].name] = outcome
    result = {
        "mutants": {m.name: m for m in mutants},
        "chosen": [mutants[i].name for i in chosen],
        "outcomes": outcomes,
        "bases": base_outcomes,
    }
    figures = summarize(result)
    print("\ncorpus figures:", json.dumps(figures, indent=1))
    if os.environ.get("AZVHDAUDIT_CORPUS_REPORT"):
        Path(os.environ["AZVHDAUDIT_CORPUS_REPORT"]).write_text(
            json.dumps({"figures": figures, "outcomes": outcomes, "bases": base_outcomes}, indent=1, default=str)
        )
    return result


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    outcomes = run["outcomes"].values()
    slowest = max(run["outcomes"].items(), key=lambda kv: kv[1].get("seconds", 0))
    return {
        "inputs": len(run["outcomes"]),
        "kinds": Counter(o["kind"] for o in outcomes),
        "categories": Counter(run["mutants"][n].category for n in run["outcomes"]),
        "longest_seconds": slowest[1].get("seconds"),
        "longest_input": slowest[0],
        "longest_cpu_seconds": max(o.get("cpu_seconds", 0) for o in outcomes),
        "max_rss_mib_per_worker": round(max(o.get("max_rss_kib", 0) for o in outcomes) / 1024, 1),
        # with AZVHDAUDIT_TRACEMALLOC=1: the largest Python heap peak of one audit
        "max_heap_peak_mib": round(max(o.get("peak_bytes", 0) for o in outcomes) / 2**20, 1),
        "rule_errors": sum(len(o.get("rule_errors", {})) for o in outcomes),
    }


def _place(item: list[Any]) -> tuple[str, str, str]:
    """Where an evidence item was read, with the control set resolved away (an unreadable SYSTEM hive
    leaves ``CurrentControlSet`` unresolved) and the ``HKLM\\`` prefix dropped."""
    key = re.sub(r"^hklm\\", "", item[2])
    key = re.sub(r"^system\\(currentcontrolset|controlset\d{3})", r"system\\ccs", key)
    return item[0] if item[0] == "file" else "registry", key, item[3]


def unsound_passes(outcome: dict[str, Any], intact: dict[str, Any]) -> list[str]:
    """The passes of a broken input that stand on evidence the audit could not read (module docstring)."""
    problems = []
    readable = set(outcome.get("hives", []))
    for rule_id, items in outcome.get("passes", {}).items():
        if intact["statuses"].get(rule_id) != "pass":
            problems.append(f"{rule_id} passes, but is {intact['statuses'].get(rule_id)} on the intact image")
            continue
        truth = {_place(i): i for i in intact["passes"][rule_id]}
        shown = {_place(i): i for i in items}
        for place, item in shown.items():
            where = "\\".join(p for p in place[1:] if p)
            if item[7]:
                continue  # read: a value the damage changed is still a value the copy holds
            if item[1] and item[1] not in readable:
                problems.append(f"{rule_id} passes on {where} absent from the {item[1]} hive, which could not be read")
            elif place in truth and truth[place][7]:
                problems.append(f"{rule_id} passes on {where} absent; the intact image has it: {truth[place][6][:80]}")
        for place, item in truth.items():
            if place not in shown and item[1] and item[1] not in readable:
                where = "\\".join(p for p in place[1:] if p)
                problems.append(
                    f"{rule_id} passes without {where} (the {item[1]} hive could not be read), "
                    f"which its pass on the intact image reads (present={item[7]})"
                )
    return problems


def test_corpus_holds_every_kind_of_damage(bases: hardkit.Bases) -> None:
    mutants = _jobs_from(str(bases.root))
    names = [m.name for m in mutants]
    assert len(mutants) >= 500
    assert len(select(mutants, DEFAULT_COUNT)) >= 500
    missing = [frag for frag in REQUIRED_CASES if not any(frag in n for n in names)]
    assert not missing


def test_intact_bases_audit_cleanly(corpus_run: dict[str, Any]) -> None:
    """The references themselves: a report (or, for a non-Windows checkpoint, a NoWindowsVolumeError)."""
    for name, outcome in corpus_run["bases"].items():
        assert outcome["kind"] in ACCEPTABLE, (name, outcome.get("error"))
        assert not outcome.get("rule_errors"), (name, outcome["rule_errors"])
    assert corpus_run["bases"]["gen1-fixed.vhd"]["passes"], "the intact sample must pass rules to compare with"


@pytest.mark.parametrize("category", sorted(corpus.CATEGORIES))
def test_broken_inputs_end_safely(corpus_run: dict[str, Any], category: str) -> None:
    failures = []
    ran = 0
    for name, outcome in corpus_run["outcomes"].items():
        mutant = corpus_run["mutants"][name]
        if mutant.category != category:
            continue
        ran += 1
        if outcome["kind"] not in ACCEPTABLE:
            failures.append(f"{name}: {outcome['kind']}: {outcome.get('error')}\n{outcome.get('traceback', '')}")
            continue
        for problem in unsound_passes(outcome, corpus_run["bases"][mutant.base]):
            failures.append(f"{name}: {problem}")
    assert ran, f"no input of category {category} ran"
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} in all)"
