"""Fix lines computed from the finding: every sample (and the same disks converted by qemu-img to QCOW2, VMDK,
raw and dynamic VHD, and a fixed VHD cut short) is audited, and each host-side fix line goes through a checker:
source is the image, output is not the input, sizes are the ones the image needs, the input format is the
container's. The .reg file writes exactly the values the PowerShell script sets."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from test_report_truth import SAMPLES, sample_report
from truthkit import fix_line_problems, host_lines

import azvhdaudit
from azvhdaudit.fix import fix_script, registry_writes
from azvhdaudit.report import Report, Status


def _lines(report: Report) -> list[str]:
    lines = host_lines(fix_script(report, "ps1", include_warnings=True))
    for result in report.results:
        if result.status.is_problem:
            lines += host_lines(result.remediation)
            lines += [span for span in re.findall(r"`([^`]+)`", result.message) if host_lines(span)]
    return lines


def _check(report: Report) -> list[str]:
    return [p for line in _lines(report) for p in fix_line_problems(report, line)]


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_fix_lines_fit_the_finding(sample_path: Callable[[str], Path], name: str) -> None:
    report, _ = sample_report(sample_path, name, True)
    problems = _check(report)
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def converted(sample_path: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """gen1-misaligned.vhd (64 MiB + 16 KiB) as qemu-img writes it in other formats, and gen1-azure.vhd cut
    short of its footer."""
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        pytest.fail("qemu-img is needed: apt-get install -y qemu-utils")
    out = tmp_path_factory.mktemp("converted")
    source = sample_path("gen1-misaligned.vhd")
    made = {}
    for fmt, name, opts in (
        ("qcow2", "disk.qcow2", []),
        ("vmdk", "disk.vmdk", []),
        ("raw", "disk.img", []),
        ("vpc", "dynamic.vhd", ["-o", "subformat=dynamic"]),
    ):
        target = out / name
        subprocess.run(
            [qemu_img, "convert", "-f", "vpc", "-O", fmt, *opts, str(source), str(target)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        made[name] = target
    whole = sample_path("gen1-azure.vhd").read_bytes()
    truncated = out / "cut.vhd"
    truncated.write_bytes(whole[:-512])
    made["cut.vhd"] = truncated
    return made


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("disk.qcow2", "qemu-img convert -f qcow2 -O vpc -o subformat=fixed,force_size disk.qcow2 disk.vhd"),
        ("disk.vmdk", "qemu-img convert -f vmdk -O vpc -o subformat=fixed,force_size disk.vmdk disk.vhd"),
        ("disk.img", "qemu-img convert -f raw -O vpc -o subformat=fixed,force_size disk.img disk.vhd"),
        ("dynamic.vhd", "Convert-VHD -Path dynamic.vhd -DestinationPath dynamic-fixed.vhd -VHDType Fixed"),
        ("cut.vhd", "qemu-img convert -f raw -O vpc -o subformat=fixed,force_size cut.vhd cut-fixed.vhd"),
    ],
)
def test_converted_disks_get_their_own_fix(converted: dict[str, Path], name: str, command: str) -> None:
    report = azvhdaudit.audit(str(converted[name]))
    problems = _check(report)
    assert not problems, "\n".join(problems)
    fixes = [r.remediation for r in report.results if r.status.is_problem]
    assert any(command in f.splitlines() for f in fixes), fixes


def test_misaligned_size_gets_the_size_it_needs(converted: dict[str, Path], sample_path: Callable[[str], Path]) -> None:
    need = 64 * 1024 * 1024 + 1024 * 1024  # 64 MiB + 16 KiB, rounded up to the next whole MiB
    vhd = azvhdaudit.audit(str(sample_path("gen1-misaligned.vhd")))["disk.size_aligned_1mib"]
    assert vhd.status is Status.FAIL and vhd.remediation == f"Resize-VHD -Path gen1-misaligned.vhd -SizeBytes {need}"
    raw = azvhdaudit.audit(str(converted["disk.img"]))["disk.size_aligned_1mib"]
    assert raw.remediation == f"qemu-img resize -f raw disk.img {need}"


def test_footerless_vhd_says_it_is_probably_truncated(converted: dict[str, Path]) -> None:
    report = azvhdaudit.audit(str(converted["cut.vhd"]))
    for rule_id in ("disk.container_format", "disk.vhd_footer_valid"):
        result = report[rule_id]
        assert result.status is Status.FAIL and "probably truncated" in result.message, (rule_id, result.message)


@pytest.mark.parametrize("name", SAMPLES)
def test_reg_writes_what_ps1_sets(sample_path: Callable[[str], Path], name: str) -> None:
    report, _ = sample_report(sample_path, name, True)
    reg = fix_script(report, "reg", include_warnings=True)
    ps1 = fix_script(report, "ps1", include_warnings=True)
    in_reg: set[tuple[str, str]] = set()
    key = ""
    for line in reg.split("\r\n"):
        if line.startswith("["):
            key = line[1:-1]
        elif line and not line.startswith(";") and "=" in line:
            in_reg.add((key.lower(), line.split("=", 1)[0].strip('"').lower()))
    set_by_ps1: set[tuple[str, str]] = set()
    for line in ps1.splitlines():
        writes = registry_writes(line.strip()) if re.match(r"\s*(Set|New)-ItemProperty\b", line) else None
        for k, n, _, _ in writes or []:
            set_by_ps1.add((k.lower(), n.lower()))
    if report["rdp.port"].status is Status.FAIL:
        assert in_reg, "the sample fails rdp.port, yet its .reg file sets nothing"
    assert in_reg <= set_by_ps1, in_reg - set_by_ps1


HYPERV = Path(__file__).resolve().parents[1] / "data" / "hyperv"


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("dynamic.vhd", "Convert-VHD -Path dynamic.vhd -DestinationPath dynamic-fixed.vhd -VHDType Fixed"),
        ("fixed.vhdx", "Convert-VHD -Path fixed.vhdx -DestinationPath fixed.vhd -VHDType Fixed"),
        ("dynamic.vhdx", "Convert-VHD -Path dynamic.vhdx -DestinationPath dynamic.vhd -VHDType Fixed"),
        ("fixed.vhd", None),
    ],
)
def test_hyperv_made_disks_get_their_own_fix(tmp_path: Path, name: str, command: str | None) -> None:
    """Disks Hyper-V made (tests/data/hyperv), audited as data disks: their fix lines fit them."""
    import gzip

    path = tmp_path / name
    path.write_bytes(gzip.decompress((HYPERV / f"{name}.gz").read_bytes()))
    report = azvhdaudit.audit(str(path), role="data")
    problems = _check(report)
    assert not problems, "\n".join(problems)
    fixes = [line for r in report.results if r.status.is_problem for line in r.remediation.splitlines()]
    if command is None:
        assert not host_lines("\n".join(fixes)), fixes
    else:
        assert command in fixes, fixes
