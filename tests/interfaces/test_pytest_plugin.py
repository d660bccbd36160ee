"""The pytest plugin, run with pytester in-process (the engine replaced by fixture reports) and once in a
subprocess to show that merely loading it imports nothing heavy."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from reportkit import make_clean_report, make_report

from azvhdaudit import pytest_plugin
from azvhdaudit.errors import CorruptImageError
from azvhdaudit.report import Report

REPO = Path(__file__).resolve().parents[2]


def _plugin_args() -> list[str]:
    """``-p`` unless the installed package already loads the plugin through its entry point."""
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return ["-p", "azvhdaudit.pytest_plugin"]
    installed = any(ep.name == "azvhdaudit" for ep in entry_points(group="pytest11"))
    return [] if installed else ["-p", "azvhdaudit.pytest_plugin"]


@pytest.fixture(autouse=True)
def _no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    # The inner sessions load only this plugin: faster, and independent of what else is installed.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def audits(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    table: dict[str, Any] = {"gen2-sample.vhdx": make_report(), "clean.vhd": make_clean_report()}
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake(image: str, **kwargs: Any) -> Report:
        calls.append((image, kwargs))
        outcome = table[os.path.basename(image)]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    monkeypatch.setattr(pytest_plugin, "_run_audit", fake)
    table["calls"] = calls
    return table


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # the plugin module is already imported by this outer session: pytest cannot rewrite its asserts
    return pytester.runpytest_inprocess(
        *_plugin_args(), "-p", "no:cacheprovider", "-rsxX", "-W", "ignore::pytest.PytestAssertRewriteWarning", *args
    )


def test_one_test_per_image_and_rule(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    report = audits["gen2-sample.vhdx"]
    result = _run(pytester, "--azvhd-image", "gen2-sample.vhdx", "--collect-only", "-q")
    ids = [line for line in result.outlines if "::" in line]
    assert ids == [f"gen2-sample.vhdx::{r.rule_id}" + (f"[{r.disk}]" if r.disk != "os" else "") for r in report.results]


def test_images_are_collected_by_the_session_like_files(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    # the session's collection report holds one collector per image; pytest walks it: each generated test
    # goes through pytest_itemcollected, each image collector gets its own collection report
    pytester.makeconftest(
        "seen = {'items': [], 'reports': []}\n"
        "def pytest_itemcollected(item):\n    seen['items'].append(item.nodeid)\n"
        "def pytest_collectreport(report):\n    seen['reports'].append(report.nodeid)\n"
        "def pytest_collection_finish(session):\n"
        "    print('ITEMS', len(seen['items']), 'IMAGE REPORT', seen['reports'].count('gen2-sample.vhdx'),"
        " 'SESSION REPORT', seen['reports'].count(''))\n"
    )
    (pytester.path / "gen2-sample.vhdx").write_bytes(b"")  # a file beside the conftest: its hooks apply
    report = audits["gen2-sample.vhdx"]
    result = _run(pytester, "--azvhd-image", "gen2-sample.vhdx", "--collect-only", "-q", "-s", "-k", "rdp")
    result.stdout.fnmatch_lines([f"ITEMS {len(report.results)} IMAGE REPORT 1 SESSION REPORT 1"])
    rdp = [r for r in report.results if "rdp" in r.rule_id or r.area == "rdp"]
    assert 0 < len(rdp) < len(report.results)
    result.stdout.fnmatch_lines([f"{len(rdp)}/{len(report.results)} tests collected*"])


@pytest.mark.parametrize("given", ["images/gen2-sample.vhdx", "{abs}"])
def test_printed_node_ids_run_again(pytester: pytest.Pytester, audits: dict[str, Any], given: str) -> None:
    # the images listed in the ini file (as README shows), the ids printed by -v given back as arguments
    (pytester.path / "images").mkdir()
    image = pytester.path / "images" / "gen2-sample.vhdx"
    image.write_bytes(b"")
    pytester.makeini(f"[pytest]\nazvhd_images =\n    {given.format(abs=image)}\n")
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    first = _run(pytester, "-v")
    printed = [line.split(" ")[0] for line in first.outlines if line.startswith("gen2-sample.vhdx::")]
    assert "gen2-sample.vhdx::rdp.port" in printed and "gen2-sample.vhdx::time.w32time" in printed
    again = _run(pytester, "-v", "gen2-sample.vhdx::rdp.port", "gen2-sample.vhdx::time.w32time")
    again.assert_outcomes(failed=1, passed=1)  # no "file or directory not found", and test_plain not run
    by_path = _run(pytester, "images/gen2-sample.vhdx::time.w32time")
    by_path.assert_outcomes(passed=1)
    whole = _run(pytester, "gen2-sample.vhdx", "test_plain.py", "--collect-only", "-q")
    ids = [line for line in whole.outlines if "::" in line]
    assert len(ids) == len(audits["gen2-sample.vhdx"].results) + 1 and "test_plain.py::test_plain" in ids
    typo = _run(pytester, "gen2-sample.vhdx::rdp.prot")
    assert typo.ret == pytest.ExitCode.USAGE_ERROR
    assert "no generated test gen2-sample.vhdx::rdp.prot" in typo.stderr.str()


def test_outcomes_follow_the_statuses(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    report: Report = audits["gen2-sample.vhdx"]
    result = _run(pytester, "--azvhd-image", "gen2-sample.vhdx")
    count = (
        len(report.filter(status="not_applicable"))
        + len(report.filter(status="not_checked"))
        + len(report.filter(status="manual"))
    )
    result.assert_outcomes(
        passed=len(report.filter(status=("pass", "warning"))),
        failed=len(report.filter(status=("fail", "error"))),
        skipped=count,
        xfailed=len(report.filter(status="waived")),
        warnings=len(report.filter(status="warning")),
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str()
    assert (
        "SKIPPED [1] gen2-sample.vhdx:1: winrm.listener: NOT CHECKED (not a pass): the SOFTWARE hive was not found"
    ) in text
    assert "XFAIL gen2-sample.vhdx::sysprep.generalized - waived (was fail): specialized image" in text


def test_failure_shows_expected_actual_evidence_and_fix(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    result = _run(pytester, "--azvhd-image", "gen2-sample.vhdx", "-k", "rdp.port")
    result.assert_outcomes(failed=1, deselected=len(audits["gen2-sample.vhdx"].results) - 1)
    result.stdout.fnmatch_lines(
        [
            "*rdp.port FAIL (required): Remote Desktop listens on TCP 3389",
            "*expected: 3389 (0xD3D)",
            "*actual:   3390 (0xD3E)",
            "*evidence: HKLM\\SYSTEM\\ControlSet001\\Control\\Terminal Server\\WinStations\\RDP-Tcp  PortNumber*",
            "*fix:",
            "*Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


@pytest.mark.parametrize(
    ("expr", "rules"),
    [
        ("rdp", {"rdp.port", "rdp.enabled", "firewall.rdp-in"}),
        ("firewall", {"firewall.rdp-in"}),
        ("time and not fail", {"time.w32time"}),
        ("not_checked or manual", {"winrm.listener", "agent.installed"}),
    ],
)
def test_keyword_selection(pytester: pytest.Pytester, audits: dict[str, Any], expr: str, rules: set[str]) -> None:
    result = _run(pytester, "--azvhd-image", "gen2-sample.vhdx", "--collect-only", "-q", "-k", expr)
    got = {line.split("::")[1] for line in result.outlines if "::" in line}
    assert got == rules


def test_marker_selection(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = _run(
        pytester, "--azvhd-image", "clean.vhd", "--collect-only", "-q", "-m", "azvhdaudit", "--strict-markers"
    )
    lines = [line for line in result.outlines if "::" in line]
    assert lines and all(line.startswith("clean.vhd::") for line in lines)


def test_fail_on_warning(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    result = _run(pytester, "--azvhd-image", "gen2-sample.vhdx", "--azvhd-fail-on", "warning", "-k", "warning")
    result.assert_outcomes(failed=2, deselected=len(audits["gen2-sample.vhdx"].results) - 2)


def test_options_and_ini_reach_the_engine(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    pytester.makeini(
        "[pytest]\nazvhd_images =\n    clean.vhd\nazvhd_profile = azure-2017\nazvhd_waivers = waivers.toml\n"
    )
    result = _run(pytester, "--azvhd-image", "gen2-sample.vhdx", "--azvhd-image-type", "specialized", "--collect-only")
    assert result.ret == 0
    images = [os.path.basename(image) for image, _ in audits["calls"]]
    assert images == ["clean.vhd", "gen2-sample.vhdx"]
    kwargs = audits["calls"][1][1]
    assert kwargs["profile"] == "azure-2017" and kwargs["image_type"] == "specialized"
    assert kwargs["waivers"] == str(pytester.path / "waivers.toml")
    assert "azvhdaudit: 2 image(s), profile azure-2017" in result.stdout.str()
    result.stdout.fnmatch_lines([f"collected {len(make_report().results) + len(make_clean_report().results)} items"])


def test_unreadable_image_is_one_failing_test(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    audits["broken.vhd"] = CorruptImageError("broken.vhd: VHD footer cookie b'xxxxxxxx' at 0x1fe00 is not 'conectix'")
    result = _run(pytester, "--azvhd-image", "broken.vhd", "--azvhd-image", "clean.vhd")
    result.assert_outcomes(
        failed=1,
        passed=len(make_clean_report().filter(status="pass")),
        skipped=len(make_clean_report().filter(status="not_applicable")),
    )
    result.stdout.fnmatch_lines(["*azvhdaudit could not audit broken.vhd: broken.vhd: VHD footer cookie*"])


def test_user_fixtures_are_parametrized_over_images(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    pytester.makepyfile(
        test_mine="""
        def test_report(azvhd_report, azvhd_image_path):
            assert azvhd_report.source in ("gen2-sample.vhdx", "clean.vhd")
            assert azvhd_report.get("rdp.enabled").status.value == "pass"
        """
    )
    result = _run(
        pytester, "--azvhd-image", "gen2-sample.vhdx", "--azvhd-image", "clean.vhd", "-k", "test_report", "-v"
    )
    result.assert_outcomes(passed=2, deselected=len(make_report().results) + len(make_clean_report().results))
    result.stdout.fnmatch_lines(["*test_report[[]gen2-sample.vhdx[]] PASSED*", "*test_report[[]clean.vhd[]] PASSED*"])
    # one audit per image, shared by the generated tests and the fixture
    assert sorted(os.path.basename(i) for i, _ in audits["calls"]) == ["clean.vhd", "gen2-sample.vhdx"]


def test_user_can_override_a_fixture(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def azvhd_report(azvhd_image_path):
            return "my own report for " + azvhd_image_path
        """
    )
    pytester.makepyfile(
        test_mine="def test_it(azvhd_report):\n    assert azvhd_report == 'my own report for clean.vhd'\n"
    )
    result = _run(pytester, "--azvhd-image", "clean.vhd", "-k", "test_it")
    result.assert_outcomes(passed=1, deselected=len(make_clean_report().results))


def test_fixture_without_an_image_fails_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_it(azvhd_report):\n    pass\n")
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no disk image given: use --azvhd-image PATH or the azvhd_images ini option*"])


def test_runs_without_images_are_untouched(pytester: pytest.Pytester, audits: dict[str, Any]) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = _run(pytester, "-v")
    result.assert_outcomes(passed=1)
    assert audits["calls"] == []
    assert "azvhdaudit:" not in result.stdout.str()


def test_help_lists_the_option_group(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--help")
    result.stdout.fnmatch_lines(
        [
            "azvhdaudit: audit Windows disk images as tests:",
            "*--azvhd-image=PATH*",
            "*--azvhd-profile=*",
            "*--azvhd-waivers=FILE*",
            "*--azvhd-image-type=*",
        ]
    )


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, azvhdaudit.pytest_plugin\n"
        "heavy = ('dissect', 'Registry', 'pefile', 'construct', 'azvhdaudit.engine', 'azvhdaudit.image',"
        " 'azvhdaudit.rules', 'azvhdaudit.container', 'pandas')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    assert proc.stdout.strip() == "[]"
