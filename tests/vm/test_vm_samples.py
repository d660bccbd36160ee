"""The committed VM samples: gen1-azure.vhd with its data disks data-mbr, data-gpt and data-unknown.

What the audit must find is in samples/manifest.json (``data_disks`` and ``vm``, written by samples/build.py).
"""

from __future__ import annotations

import json
import lzma
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from azvhdaudit.engine import audit
from azvhdaudit.report import Status

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))
DATA_DISKS = {d["name"]: d for d in MANIFEST["data_disks"]}
VM = MANIFEST["vm"]


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory, sample_path: Callable[[str], Path]) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("vm-samples")
    out = {VM["os_disk"]: sample_path(VM["os_disk"])}
    for name, entry in DATA_DISKS.items():
        with lzma.open(SAMPLES / entry["file"]) as src, open(directory / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
        out[name] = directory / name
    return out


@pytest.fixture(scope="module")
def report(disks: dict[str, Path]) -> Any:
    return audit(disks[VM["os_disk"]], data_disks=[disks[n] for n in VM["data_disks"]])


def _disk_name(number: int, name: str) -> str:
    return f"data{number}:{name}"


def test_manifest_lists_exactly_the_committed_data_disks() -> None:
    committed = sorted(f"vm/{p.name}" for p in (SAMPLES / "vm").iterdir() if p.is_file())
    assert committed == sorted(d["file"] for d in DATA_DISKS.values())


def test_manifest_describes_the_vm() -> None:
    assert set(VM["data_disks"]) == set(DATA_DISKS) == {"data-mbr.vhd", "data-gpt.vhd", "data-unknown.vhd"}
    letters = {d["drive_letter"] for d in DATA_DISKS.values()}
    assert letters == {"E:", "D:", None}
    assert {d["partition_table"] for d in DATA_DISKS.values()} == {"mbr", "gpt"}


def test_the_vm_checks_find_what_the_samples_were_built_with(report: Any) -> None:
    vm = {r.rule_id: r for r in report.filter(disk="vm")}
    assert sorted(r for r, res in vm.items() if res.status is Status.WARNING) == sorted(VM["expected_warning"])
    for rule_id in VM["expected_pass"]:
        assert vm[rule_id].status is Status.PASS, vm[rule_id].message
    assert "data3:data-unknown.vhd" in vm["vm.data_disks_known"].message
    assert "data2:data-gpt.vhd partition #0" in vm["vm.temp_drive_letter_free"].message


def test_drive_letters_match_the_manifest(report: Any) -> None:
    letters = report.disks["os"]["drive_letter_map"]
    names = {name: _disk_name(n, name) for n, name in enumerate(VM["data_disks"], 1)}
    expected = {letter: ("os" if disk == "os" else names[disk]) for letter, disk in VM["drive_letters"].items()}
    assert {k: v["disk"] for k, v in letters.items()} == expected
    for name, entry in DATA_DISKS.items():
        assert report.disks[names[name]]["drive_letters"] == ([entry["drive_letter"]] if entry["drive_letter"] else [])


@pytest.mark.parametrize("name", sorted(DATA_DISKS))
def test_each_data_disk_meets_the_disk_rules(report: Any, name: str) -> None:
    disk = _disk_name(VM["data_disks"].index(name) + 1, name)
    entry = report.disks[disk]
    assert entry["role"] == "data" and entry["windows"] is False
    facts = entry["facts"]
    assert facts["partition_style"] == DATA_DISKS[name]["partition_table"]
    assert facts["container"]["virtual_size"] == DATA_DISKS[name]["virtual_size"]
    results = report.filter(disk=disk)
    assert sorted(r.rule_id for r in results if r.status is Status.FAIL) == DATA_DISKS[name]["expected_fail"]
    assert report.get("disk.data_max_size", disk).status is Status.PASS
    assert report.get("time.utc", disk).status is Status.NOT_APPLICABLE


def test_the_os_disk_is_unchanged_by_its_data_disks(report: Any, disks: dict[str, Path]) -> None:
    alone = audit(disks[VM["os_disk"]])
    assert {(r.rule_id, r.status) for r in alone} == {(r.rule_id, r.status) for r in report.filter(disk="os")}


def test_only_the_disk_at_e(disks: dict[str, Path]) -> None:
    report = audit(disks[VM["os_disk"]], select=["vm"], data_disks=[disks["data-mbr.vhd"]])
    assert {r.rule_id: r.status for r in report} == {
        "vm.data_disks_known": Status.PASS,
        "vm.temp_drive_letter_free": Status.PASS,
        "vm.disk_sizes": Status.PASS,
        "vm.disk_ids_unique": Status.PASS,
    }
