"""The command line on a VM: ``audit --data-disk`` / ``--role`` and ``info --data-disk``, and the HTML sections."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from azvhdaudit.cli import main

pytestmark = pytest.mark.tools


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_audit_a_vm_as_json(vm: dict[str, Path]) -> None:
    code, out, err = run(
        "audit",
        str(vm["os"]),
        "--data-disk",
        str(vm["gpt"]),
        "--data-disk",
        str(vm["unknown"]),
        "--select",
        "vm",
        "--format",
        "json",
    )
    data = json.loads(out)
    assert code == 0 and err == ""  # warnings only
    assert list(data["disks"]) == ["os", "data1:data-gpt1.vhd", "data2:data-unknown.vhd"]
    assert data["disks"]["data1:data-gpt1.vhd"]["drive_letters"] == ["D:"]
    statuses = {r["rule_id"]: r["status"] for r in data["results"] if r["disk"] == "vm"}
    assert statuses["vm.temp_drive_letter_free"] == "warning"
    assert statuses["vm.data_disks_known"] == "warning"
    assert run("audit", str(vm["os"]), "--data-disk", str(vm["gpt"]), "--select", "vm", "--fail-on", "warning")[0] == 1


@pytest.mark.parametrize(
    ("role", "code", "words"),
    [
        ([], 1, ["disk.windows_volume", "no NTFS volume holds Windows", "role='data'"]),
        (["--role", "data"], 0, ["COMPLIANT"]),
    ],
)
def test_audit_a_disk_without_windows(vm: dict[str, Path], role: list[str], code: int, words: list[str]) -> None:
    got, out, err = run("audit", str(vm["mbr"]), *role)
    assert (got, err) == (code, "")
    for word in words:
        assert word in out


def test_role_data_and_data_disks_do_not_mix(vm: dict[str, Path]) -> None:
    code, _, err = run("audit", str(vm["mbr"]), "--role", "data", "--data-disk", str(vm["gpt"]))
    assert code == 2 and "drop --role data" in err


def test_info_shows_roles_and_the_drive_letter_map(vm: dict[str, Path]) -> None:
    code, out, err = run(
        "info",
        str(vm["os"]),
        "--data-disk",
        str(vm["mbr"]),
        "--data-disk",
        str(vm["gpt"]),
        "--data-disk",
        str(vm["unknown"]),
    )
    assert (code, err) == (0, "")
    assert "  role         OS disk, drive letters C:" in out
    assert "  role         data disk (data1:data-mbr.vhd), drive letters E:" in out
    assert "  role         data disk (data3:data-unknown.vhd)\n" in out
    assert re.search(r"  D:  data2:data-gpt1\.vhd partition #0  \(Azure's temporary disk takes D:\)", out)
    code, out, _ = run("info", str(vm["os"]), "--data-disk", str(vm["gpt"]), "--json")
    data = json.loads(out)
    assert [d["role"] for d in data["disks"]] == ["os", "data"]
    assert data["drive_letter_map"]["D:"]["disk"] == "data1:data-gpt1.vhd"
    code, out, _ = run("info", str(vm["unknown"]))
    assert code == 0 and "  role         unknown (no Windows: a data disk?)" in out


def test_html_has_a_section_per_disk(vm: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "vm.html"
    run(
        "audit",
        str(vm["os"]),
        "--data-disk",
        str(vm["mbr"]),
        "--data-disk",
        str(vm["gpt"]),
        "--format",
        "html",
        "-o",
        str(target),
    )
    page = target.read_text(encoding="utf-8")
    sections = re.findall(r'<section class=disk id="disk-([^"]+)"', page)
    assert sections == ["os", "data1:data-mbr.vhd", "data2:data-gpt1.vhd", "vm"]
    vm_part = page[page.index('id="disk-vm"') :]
    assert "<th>D:</th><td>data2:data-gpt1.vhd partition #0</td>" in vm_part
    assert 'id="vm-vm.temp_drive_letter_free"' in vm_part
    data_part = page[page.index('id="disk-data1:data-mbr.vhd"') : page.index('id="disk-data2:data-gpt1.vhd"')]
    assert "drive letters: E:" in data_part and 'id="data1:data-mbr.vhd-rdp.port"' in data_part
