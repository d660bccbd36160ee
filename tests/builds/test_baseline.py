"""The golden baseline (``--baseline``, ``--update-baseline``, ``azvhd_baseline``) on images built to differ
in known ways: only what got worse fails; accepted failures stay visible."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import jsonschema
import pytest

import azvhdaudit
from azvhdaudit import cli
from azvhdaudit.baseline import BaselineNotFoundError, judge, load_baseline, record_baseline
from azvhdaudit.diff import report_from_dict
from azvhdaudit.render.json import load_schema, to_jsonable
from azvhdaudit.report import Report

#: slow: builds images with the real tools
pytestmark = pytest.mark.slow

GEN2_FAILURES = 16  # samples/README.md: gen2-misconfigured.vhdx is built to fail 16 checks of the 2022-08 document


def audit(image: Path) -> Report:
    """An audit against the 2022-08 document, whose failures the samples are built to show."""
    return azvhdaudit.audit(image, profile="azure-2022")


def run(argv: list[str]) -> tuple[int, str, str]:
    if argv[0] == "audit" and "--profile" not in argv:
        argv = [*argv, "--profile", "azure-2022"]  # the document the sample's failure count is stated for
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def images(built: dict[str, Path], sample_path: Callable[[str], Path]) -> dict[str, Path]:
    return {
        "gen1": sample_path("gen1-azure.vhd"),
        "child": sample_path("gen1-azure-child.vhd"),
        "gen2": sample_path("gen2-misconfigured.vhdx"),
        "gen2-child": sample_path("gen2-misconfigured-child.vhdx"),
        "week2": built["gen1-week2.vhd"],
    }


def ids(items: list) -> set[str]:  # type: ignore[type-arg]
    return {r.rule_id for r in items}


def test_record_then_judge_the_same_image(images: dict[str, Path], tmp_path: Path) -> None:
    golden = tmp_path / "golden.json"
    code, out, err = run(["audit", str(images["gen2"]), "--baseline", str(golden), "--update-baseline"])
    assert code == 0
    assert f"recorded 1 report with {GEN2_FAILURES} failing rules accepted" in out
    recorded = json.loads(golden.read_text(encoding="utf-8"))
    jsonschema.validate(recorded, load_schema())
    assert recorded["summary"]["fail"] == GEN2_FAILURES

    code, out, err = run(["audit", str(images["gen2"]), "--baseline", str(golden)])
    assert code == 0, out
    assert out.count("FAIL") >= GEN2_FAILURES  # the accepted failures are still in the report
    assert f"accepted  {GEN2_FAILURES} failing in the baseline too" in out
    assert "nothing got worse than the baseline" in out

    code, out, err = run(["audit", str(images["gen2"]), "--baseline", str(golden), "--format", "json"])
    data = json.loads(out)
    assert code == 0 and data["summary"]["fail"] == GEN2_FAILURES
    assert len(data["options"]["baseline"]["accepted"]) == GEN2_FAILURES and data["options"]["baseline"]["new"] == []
    assert "nothing got worse" in err
    jsonschema.validate(data, load_schema())


def test_child_against_the_parents_baseline(images: dict[str, Path], tmp_path: Path) -> None:
    golden = tmp_path / "golden.json"
    record_baseline(audit(images["gen2"]), golden)
    child = audit(images["gen2-child"])
    judgement = load_baseline(golden).judge(child)
    assert ids(judgement.new) == {"disk.not_differencing"}
    assert judgement.fixed == [("time.utc", "os")]
    assert len(judgement.accepted) == GEN2_FAILURES - 1
    code, out, _ = run(["audit", str(images["gen2-child"]), "--baseline", str(golden)])
    assert code == 1
    assert "NEW       disk.not_differencing (fail)" in out and "time.utc (record the baseline again)" in out


def test_week2_against_gen1(images: dict[str, Path]) -> None:
    gen1, week2 = audit(images["gen1"]), audit(images["week2"])
    judgement = judge(week2, gen1)
    assert ids(judgement.new) == {"rdp.port", "bcd.default_recovery_disabled"} and not judgement.accepted
    assert judgement.exit_code() == 1
    warned = judge(week2, gen1, "warning")
    assert ids(warned.new) == {"rdp.port", "bcd.default_recovery_disabled", "crashdump.kernel_dump"}
    back = judge(gen1, week2)
    assert back.exit_code() == 0 and not back.new
    assert {rule for rule, _ in back.fixed} == {"rdp.port", "bcd.default_recovery_disabled"}


def test_a_warning_in_the_baseline_does_not_accept_a_failure(images: dict[str, Path]) -> None:
    week2 = audit(images["week2"])
    data = to_jsonable(week2)
    for result in data["results"]:
        if result["rule_id"] == "rdp.port":
            result["status"] = "warning"
    judgement = judge(week2, report_from_dict(data))
    assert "rdp.port" in ids(judgement.new)
    # with fail_on="warning" a baseline warning accepts a warning now, not a failure
    assert "rdp.port" in ids(judge(week2, report_from_dict(data), "warning").new)


def test_several_images_match_by_source(images: dict[str, Path], tmp_path: Path) -> None:
    golden = tmp_path / "fleet.json"
    code, _, _ = run(
        [
            "audit",
            str(images["child"]),
            str(images["gen2"]),
            "--baseline",
            str(golden),
            "--update-baseline",
            "--format",
            "json",
        ]
    )
    assert code == 0
    baseline = load_baseline(golden)
    assert [os.path.basename(r.source) for r in baseline.reports] == ["gen1-azure-child.vhd", "gen2-misconfigured.vhdx"]
    code, out, _ = run(["audit", str(images["child"]), str(images["gen2"]), "--baseline", str(golden)])
    assert code == 0 and out.count("nothing got worse than the baseline") == 2
    # an image the baseline has no report of: every failure is new
    code, out, _ = run(["audit", str(images["gen2-child"]), "--baseline", str(golden)])
    assert code == 1 and "no report of" in out


def test_bad_baseline_use_is_one_line_and_exit_2(images: dict[str, Path], tmp_path: Path) -> None:
    code, out, err = run(["audit", str(images["gen1"]), "--baseline", str(tmp_path / "none.json")])
    assert code == 2 and out == ""
    assert err.startswith("azvhdaudit: error: ") and "none.json: no baseline file there" in err
    with pytest.raises(BaselineNotFoundError):
        load_baseline(tmp_path / "none.json")
    code, out, err = run(["audit", str(images["gen1"]), "--update-baseline"])
    assert code == 2 and "--update-baseline needs --baseline FILE" in err
    (tmp_path / "old.json").write_text(json.dumps({"schema_version": "0.1", "results": []}), encoding="utf-8")
    code, out, err = run(["audit", str(images["gen1"]), "--baseline", str(tmp_path / "old.json")])
    assert code == 2 and "schema_version '0.1' is not supported" in err


def _plugin_args() -> list[str]:
    installed = any(ep.name == "azvhdaudit" for ep in entry_points(group="pytest11"))
    plugin = (
        [] if installed and not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") else ["-p", "azvhdaudit.pytest_plugin"]
    )
    return [*plugin, "--azvhd-profile", "azure-2022"]


def test_pytest_plugin_accepted_failures_are_xfail(
    pytester: pytest.Pytester, images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    golden = pytester.path / "golden.json"
    child: Report = audit(images["child"])
    record_baseline(child, golden)
    args = [*_plugin_args(), "-p", "no:cacheprovider", "-rxf", "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    result = pytester.runpytest_inprocess(*args, "--azvhd-image", str(images["child"]), "--azvhd-baseline", str(golden))
    outcomes = result.parseoutcomes()
    assert outcomes.get("xfailed") == 3 and "failed" not in outcomes
    result.stdout.fnmatch_lines(["*XFAIL*rdp.port*accepted by the baseline*golden.json*"])
    # the same baseline, named by the ini option, judging week2: rdp.port accepted, the BCD failure new
    ini = pytester.makeini(f"[pytest]\nazvhd_baseline = {golden.name}\n")
    result = pytester.runpytest_inprocess(
        *args, "-c", str(ini), "--rootdir", str(pytester.path), "--azvhd-image", str(images["week2"])
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("xfailed") == 1 and outcomes.get("failed") == 1
    result.stdout.fnmatch_lines(["*FAILED*bcd.default_recovery_disabled*"])


def test_pytest_plugin_missing_baseline_is_a_clear_failure(
    pytester: pytest.Pytester, images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_inprocess(
        *_plugin_args(),
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        "--azvhd-image",
        str(images["child"]),
        "--azvhd-baseline",
        "nowhere.json",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 3  # the three failing rules; the passing ones never read the baseline
    result.stdout.fnmatch_lines(["*azvhdaudit baseline: nowhere.json: no baseline file there*"])


def test_junit_and_sarif_mark_accepted_failures(images: dict[str, Path], tmp_path: Path) -> None:
    """CI test views and code scanning fail on what got worse only: JUnit skips the failures the baseline
    accepts (details kept in system-out), SARIF marks them ``baselineState: unchanged`` and the new one ``new``."""
    import xml.etree.ElementTree as ET

    golden = tmp_path / "golden.json"
    record_baseline(audit(images["gen2"]), golden)
    code, out, _ = run(["audit", str(images["gen2-child"]), "--baseline", str(golden), "--format", "junit"])
    assert code == 1
    suite = ET.fromstring(out).find("testsuite")
    assert suite is not None
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["disk.not_differencing"]
    assert suite.get("failures") == "1"
    accepted = [
        c for c in suite.iter("testcase") if (s := c.find("skipped")) is not None and s.get("type") == "baseline"
    ]
    assert len(accepted) == GEN2_FAILURES - 1
    first = accepted[0]
    skipped = first.find("skipped")
    assert skipped is not None and str(golden) in (skipped.get("message") or "")
    assert (first.findtext("system-out") or "").startswith("FAIL (accepted by the baseline): ")
    assert any(p.get("name") == "baseline" and p.get("value") == str(golden) for p in suite.iter("property"))

    code, out, _ = run(["audit", str(images["gen2-child"]), "--baseline", str(golden), "--format", "sarif"])
    assert code == 1
    schema = Path(__file__).parents[1] / "interfaces" / "data" / "sarif-schema-2.1.0.json"
    jsonschema.validate(json.loads(out), json.loads(schema.read_text(encoding="utf-8")))
    results = json.loads(out)["runs"][0]["results"]
    states = {r["ruleId"]: r.get("baselineState") for r in results if r["properties"]["status"] == "fail"}
    assert states.pop("disk.not_differencing") == "new"
    assert len(states) == GEN2_FAILURES - 1 and set(states.values()) == {"unchanged"}
    # without a baseline no result claims a baseline state
    code, out, _ = run(["audit", str(images["gen2-child"]), "--format", "sarif"])
    assert all("baselineState" not in r for r in json.loads(out)["runs"][0]["results"])
