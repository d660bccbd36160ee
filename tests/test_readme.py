"""README's examples run as written, on the samples: the Python blocks, the command lines and the pytest
suite (file names replaced by sample paths; the remote block is exercised by tests/remote against real servers).
"""

from __future__ import annotations

import json
import lzma
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: slow: runs README's examples on every sample
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w+)\n(.*?)```", README, re.S)]
MANIFEST = json.loads((ROOT / "samples" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, sample_path: Callable[[str], Path]) -> dict[str, Path]:
    """README's file names -> sample images (a compliant OS disk, its data disks, a failing one)."""
    directory = tmp_path_factory.mktemp("readme")
    data = {}
    for entry in MANIFEST["data_disks"]:
        name = entry["name"]
        with lzma.open(ROOT / "samples" / entry["file"]) as src, open(directory / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
        data[name] = directory / name
    for entry in MANIFEST["platform_samples"]:
        with lzma.open(ROOT / "samples" / entry["file"]) as src, open(directory / entry["name"], "wb") as dst:
            shutil.copyfileobj(src, dst)
    os_disk = sample_path("gen1-azure.vhd")
    waivers = directory / "waivers.toml"
    waivers.write_text('[[waiver]]\nrule = "rdp.nla"\nreason = "NLA set after deployment"\n')
    return {
        "build/os.vhd": os_disk,
        "vm-os.vhd": os_disk,
        "os.vhd": os_disk,
        "disk.vhd": sample_path("gen2-misconfigured.vhdx"),
        "disk.vhdx": directory / "gen2-ready.vhd",  # the platform examples: a Generation 2 image ready for both
        "image.vhd": directory / "gen2-ready.vhd",
        "vm-data1.vhd": data["data-mbr.vhd"],
        "vm-data2.vhd": data["data-gpt.vhd"],
        "data1.vhd": data["data-mbr.vhd"],
        "data.vhd": data["data-unknown.vhd"],
        "waivers.toml": waivers,
    }


def substitute(text: str, files: dict[str, Path]) -> str:
    for name in sorted(files, key=len, reverse=True):
        text = re.sub(rf"(?<![\w/.-]){re.escape(name)}", str(files[name]).replace("\\", "/"), text)
    return text


def python_blocks() -> list[str]:
    return [code for lang, code in BLOCKS if lang == "python" and "def test_" not in code and "://" not in code]


def test_readme_has_the_examples() -> None:
    assert len(python_blocks()) >= 4
    assert any(lang == "ini" for lang, _ in BLOCKS)


def test_python_examples_run(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {}
    exec("import azvhdaudit", namespace)
    for code in python_blocks():
        try:
            exec(compile(substitute(code, files), "README.md", "exec"), namespace)
        except SystemExit as done:
            assert done.code in (0, 1)
    out = capsys.readouterr().out
    assert "rdp.port: PortNumber is 3390, Azure expects 3389" in out  # the failing sample, from the first block
    assert "rdp.nla:" not in out  # waived by waivers.toml
    assert "REG_DWORD" in out  # the image read by hand
    assert "data1:data-mbr.vhd" in out  # the whole VM
    assert namespace["df"].shape[0] > 0  # the notebook's DataFrame
    assert (tmp_path / "report.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert json.loads((tmp_path / "report.sarif").read_text(encoding="utf-8"))["version"] == "2.1.0"
    assert "| ❌ | `rdp.port` | rdp |" in out  # the markdown


def test_waiver_format_block_is_a_valid_waiver_file(tmp_path: Path, sample_path: Callable[[str], Path]) -> None:
    import azvhdaudit
    from azvhdaudit.engine import catalogue
    from azvhdaudit.waivers import check_known, load_waivers

    block = next(code for lang, code in BLOCKS if lang == "toml")
    path = tmp_path / "waivers.toml"
    path.write_text(block, encoding="utf-8")
    waivers = load_waivers(path)
    check_known(waivers, (r.id for r in catalogue()))
    assert [(w.rule, str(w.expires)) for w in waivers] == [("rdp.port", "2027-01-01")]
    report = azvhdaudit.audit(sample_path("gen2-misconfigured.vhdx"), waivers=path)
    port = report.get("rdp.port")
    assert port is not None and port.status.value == "waived" and port.waived_status.value == "fail"


def test_quick_start_is_two_commands_that_ci_runs_as_written() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import readme_commands
    finally:
        sys.path.pop(0)
    first, second = readme_commands.quick_start(README)
    assert "pip install ." in first and "azvhdaudit audit samples/gen2-misconfigured.vhdx" in first
    assert "sudo" not in first + second and "npm" not in first + second  # the script decides both
    assert second == "scripts/test.sh"
    assert (ROOT / "scripts" / "test.sh").stat().st_mode & 0o111
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "python scripts/readme_commands.py" in ci
    assert 'bash -ec "${commands[0]}"' in ci and 'bash -ec "${commands[1]}"' in ci
    assert "pytest collected no tests" in ci


def cli_lines() -> list[str]:
    lines = []
    for lang, code in BLOCKS:
        if lang != "sh":
            continue
        for line in code.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("azvhdaudit "):
                lines.append(line)
    return lines


def test_command_lines_run(files: dict[str, Path], tmp_path: Path) -> None:
    exe = shutil.which("azvhdaudit") or str(Path(sys.executable).with_name("azvhdaudit"))
    lines = cli_lines()
    assert len(lines) >= 8
    for line in lines:
        argv = shlex.split(substitute(line, files).replace("\\", "\\\\"))
        proc = subprocess.run([exe, *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode in (0, 1), (line, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert (tmp_path / "azvhdaudit.xml").read_text().startswith("<?xml")
    assert json.loads((tmp_path / "azvhdaudit.sarif").read_text())["version"] == "2.1.0"
    assert "azvhdaudit" in (tmp_path / "fix.ps1").read_text()  # the script names its origin even with no fix


def test_pytest_suite_example(files: dict[str, Path], pytester: pytest.Pytester) -> None:
    ini = next(code for lang, code in BLOCKS if lang == "ini")
    check = next(code for lang, code in BLOCKS if lang == "python" and "def test_" in code)
    pytester.makefile(".ini", pytest=substitute(ini, files))
    pytester.makepyfile(test_own=check)
    result = pytester.runpytest_subprocess("-q", "-k", "rdp_port or rdp.port")
    result.assert_outcomes(passed=2)  # the generated rdp.port test and the user's own check
