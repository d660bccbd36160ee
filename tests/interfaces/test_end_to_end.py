"""The interfaces on a real disk image, through the real engine: a fixed VHD (MBR, NTFS) holding the real
Windows 7 SYSTEM hive and a real BCD store from tests/data/realdata, built with Debian's image tools.

Every format the CLI writes is read back by its consumer; the image is unchanged afterwards.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from junitparser import Failure, JUnitXml

from azvhdaudit import cli
from azvhdaudit.render.json import load_schema

pytestmark = pytest.mark.tools

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def win7(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(TESTS))
    import diskbuild as db

    db.require_tools()
    tmp = tmp_path_factory.mktemp("e2e")
    realdata = TESTS / "data" / "realdata"
    files = {
        r"Windows\System32\config\SYSTEM": lzma.decompress((realdata / "SYSTEM.xz").read_bytes()),
        r"Boot\BCD": lzma.decompress((realdata / "BCD.xz").read_bytes()),
    }
    volume = db.make_ntfs(tmp / "vol.img", 40 * db.MiB, files)
    raw = db.mbr_disk(tmp / "win7.raw", 48 * db.MiB, [(1, 40, "7", True)])
    db.place(volume, raw, db.MiB)
    vhd = tmp / "win7.vhd"
    db.run("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", str(raw), str(vhd))
    raw.unlink()
    volume.unlink()
    return vhd


@pytest.fixture(scope="module")
def digest(win7: Path) -> str:
    return _sha256(win7)


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def test_json_report_validates(win7: Path, tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    code, _, err = _main("audit", str(win7), "--format", "json", "-o", str(target))
    data = json.loads(target.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(load_schema(), format_checker=jsonschema.FormatChecker()).validate(data)
    statuses = {r["rule_id"]: r["status"] for r in data["results"]}
    summary = {k: v for k, v in data["summary"].items() if v}
    assert code == 1 and err.startswith(f"azvhdaudit: NOT COMPLIANT: {win7}: {summary['fail']} failed, ")
    assert err.endswith(f"; json report written to {target}\n") and len(err.splitlines()) == 1
    assert statuses["time.utc"] == "fail"  # the Windows 7 hive has no RealTimeIsUniversal
    assert statuses["rdp.enabled_policy"] == "not_checked"  # no SOFTWARE hive on this disk
    assert data["facts"]["partition_style"] == "mbr"


def test_junit_and_sarif_are_read_by_their_consumers(win7: Path, tmp_path: Path) -> None:
    _main("audit", str(win7), "--format", "junit", "-o", str(tmp_path / "junit.xml"))
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    cases = {case.name: case for suite in xml for case in suite}
    assert isinstance(cases["time.utc"].result[0], Failure)

    _main("audit", str(win7), "--format", "sarif", "-o", str(tmp_path / "r.sarif"))
    sarif = json.loads((tmp_path / "r.sarif").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))).validate(sarif)
    assert "time.utc" in {r["ruleId"] for r in sarif["runs"][0]["results"]}


def test_text_html_markdown(win7: Path, tmp_path: Path) -> None:
    code, text, _ = _main("audit", str(win7), "--select", "time", "--select", "rdp.port")
    assert code == 1 and "NOT COMPLIANT" in text and "time.utc" in text
    _main("audit", str(win7), "--format", "html", "-o", str(tmp_path / "r.html"))
    assert 'data-status="fail"' in (tmp_path / "r.html").read_text(encoding="utf-8")
    _, markdown, _ = _main("audit", str(win7), "--format", "markdown")
    assert "`time.utc`" in markdown


def test_info_and_reg(win7: Path) -> None:
    code, info, _ = _main("info", str(win7))
    assert code == 0
    assert "VHD fixed" in info and "generation   1" in info and "SYSTEM: clean" in info
    code, data, _ = _main("info", str(win7), "--json")
    assert json.loads(data)["bcd"]["objects"] > 0
    tz = r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation"
    code, out, _ = _main("reg", str(win7), tz, "TimeZoneKeyName")
    assert code == 0
    assert "    TimeZoneKeyName    REG_SZ    Eastern Standard Time" in out.splitlines()


def test_info_on_a_data_disk(tmp_path: Path) -> None:
    import diskbuild as db

    disk = db.mbr_disk(tmp_path / "data.raw", 8 * db.MiB, [(1, 6, "7", False)])
    db.place(db.make_ntfs(tmp_path / "data.img", 6 * db.MiB, {}, label="Data"), disk, db.MiB)
    code, info, _ = _main("info", str(disk))
    assert code == 0
    assert "Windows      no Windows volume found (a data disk?)" in info
    assert "SYSTEM: unavailable" in info
    code, _, err = _main("reg", str(disk), r"HKLM\SYSTEM\Select")
    assert code == 2 and err.startswith("azvhdaudit: error: ") and "is this an OS disk?" in err


def test_fix_script(win7: Path, tmp_path: Path) -> None:
    code, _, _ = _main("fix", str(win7), "-o", str(tmp_path / "fix.ps1"))
    script = (tmp_path / "fix.ps1").read_text(encoding="utf-8")
    assert code == 0
    assert "-Name RealTimeIsUniversal -Value 1" in script
    assert "# time.utc —" in script


def test_cli_process(win7: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "azvhdaudit", "audit", str(win7), "--select", "time"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 1 and proc.stderr == ""  # piped: no progress line, no colour
    assert "\033[" not in proc.stdout and "time.utc" in proc.stdout


def test_pytest_plugin_on_the_real_image(
    win7: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_inprocess(
        "-p",
        "azvhdaudit.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        "--azvhd-image",
        str(win7),
        "-k",
        "time.utc or rdp.enabled_policy",
        "-rs",
    )
    result.assert_outcomes(failed=1, skipped=1, deselected=result.parseoutcomes()["deselected"])
    result.stdout.fnmatch_lines(
        [
            "*time.utc FAIL (required)*",
            "*expected: 1",
            "*actual:   (none)",
            "*rdp.enabled_policy: NOT CHECKED (not a pass)*SOFTWARE*",
        ]
    )


def test_plugin_fixtures_on_the_real_image(
    win7: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(
        test_mine=r"""
        def test_timezone(azvhd_registry):
            value = azvhd_registry.value(r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation",
                                         "TimeZoneKeyName")
            assert value.data == "Eastern Standard Time"

        def test_image(azvhd_image):
            assert azvhd_image.facts.partition_style == "mbr"

        def test_report(azvhd_report):
            assert azvhd_report["time.utc"].status.value == "fail"
        """
    )
    result = pytester.runpytest_inprocess(
        "-p",
        "azvhdaudit.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        "--azvhd-image",
        str(win7),
        "test_mine.py",
        "-k",
        "test_mine",
    )
    result.assert_outcomes(passed=3, deselected=result.parseoutcomes()["deselected"])


def test_the_image_is_never_modified(win7: Path, digest: str) -> None:
    # runs last in this module: every command above read the same file
    for argv in (["audit", str(win7)], ["info", str(win7)], ["fix", str(win7), "--format", "reg"]):
        _main(*argv)
    assert _sha256(win7) == digest
