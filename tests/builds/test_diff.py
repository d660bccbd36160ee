"""azvhdaudit.diff and ``azvhdaudit diff`` on images built to differ in known ways (see conftest.py)."""

from __future__ import annotations

import copy
import html.parser
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import azvhdaudit
from azvhdaudit import cli
from azvhdaudit.diff import ReportFormatError, classify, compare, load_report, report_from_dict
from azvhdaudit.render.diff import load_schema, render_diff
from azvhdaudit.render.json import render as render_json
from azvhdaudit.report import Report, Status

from .buildkit import WEEK2_FILE_VERSION, WEEK2_UBR

#: slow: builds images with the real tools
pytestmark = pytest.mark.slow


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def reports(built: dict[str, Path], sample_path: Callable[[str], Path]) -> dict[str, Report]:
    return {
        "gen1": azvhdaudit.audit(sample_path("gen1-azure.vhd")),
        "child": azvhdaudit.audit(sample_path("gen1-azure-child.vhd")),
        "week2": azvhdaudit.audit(built["gen1-week2.vhd"]),
    }


def kinds(d: Any, kind: str) -> set[str]:
    return {v.rule_id for v in d.verdicts if v.kind == kind}


def test_week2_against_gen1_names_every_planted_change(reports: dict[str, Report]) -> None:
    d = azvhdaudit.diff(reports["gen1"], reports["week2"])
    assert kinds(d, "new_failure") == {"rdp.port", "bcd.default_recovery_disabled"}
    assert kinds(d, "new_warning") == {"crashdump.kernel_dump"}
    assert not d.fixed and not d.newly_not_checked
    assert {v.kind for v in d.verdicts} == {"new_failure", "new_warning"}
    facts = {f.name: (f.old, f.new) for f in d.facts}
    assert facts.pop("os.ubr") == (2273, WEEK2_UBR)
    assert facts.pop("bcd:bcd.default_recovery_disabled:16000009") == ("No", "Yes")
    files = {name: change for name, change in facts.items() if name.startswith("file:")}
    read = {
        ev.key
        for r in reports["gen1"].results
        for ev in r.evidence
        if ev.source == "file" and ev.value_name == "FileVersion"
    }
    assert len(read) >= 20  # every binary the rules read changed version, and nothing else changed
    assert {name.split(":", 1)[1] for name in files} == read and len(files) == len(facts)
    assert set(files.values()) == {("10.0.14393.2273", WEEK2_FILE_VERSION)}
    assert files["file:Windows\\System32\\drivers\\storport.sys"] == ("10.0.14393.2273", WEEK2_FILE_VERSION)
    values = {(e.key.rsplit("\\", 1)[-1], e.value_name): (e.old_type, e.old, e.new_type, e.new) for e in d.evidence}
    assert values == {
        ("CurrentVersion", "UBR"): ("REG_DWORD", 2273, "REG_DWORD", WEEK2_UBR),
        ("CrashControl", "CrashDumpEnabled"): ("REG_DWORD", 2, "REG_DWORD", 0),
        ("RDP-Tcp", "PortNumber"): ("REG_DWORD", 3389, "REG_DWORD", 3390),
    }
    port = next(e for e in d.evidence if e.value_name == "PortNumber")
    assert port.rules == ("rdp.port",)
    assert port.key == "HKLM\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp"
    assert port.new_key == port.old_key == port.key.replace("CurrentControlSet", "ControlSet001")
    assert d.regressed() and d.exit_code() == 1


def test_the_other_way_round_is_fixed_and_exit_0(reports: dict[str, Report]) -> None:
    d = azvhdaudit.diff(reports["week2"], reports["gen1"])
    assert kinds(d, "fixed") == {"rdp.port", "bcd.default_recovery_disabled"}
    assert kinds(d, "improved") == {"crashdump.kernel_dump"}
    assert not d.new_failures and d.exit_code() == 0 and d.changed
    # a warning that appears fails the diff only with fail_on="warning"
    forward = azvhdaudit.diff(reports["gen1"], reports["week2"])
    assert [v.rule_id for v in forward.regressions("warning")].count("crashdump.kernel_dump") == 1


def test_differencing_child_against_its_parent(reports: dict[str, Report]) -> None:
    d = azvhdaudit.diff(reports["gen1"], reports["child"])
    assert kinds(d, "new_failure") == {"disk.not_differencing", "disk.vhd_fixed", "rdp.port"}
    assert len(d.verdicts) == 3
    facts = {f.name: (f.old, f.new) for f in d.facts}
    assert facts == {"container.subtype": ("fixed", "differencing"), "container.parents": ([], ["gen1-azure.vhd"])}
    assert [(e.value_name, e.old, e.new) for e in d.evidence] == [("PortNumber", 3389, 3391)]


def test_an_image_against_itself_is_no_change(reports: dict[str, Report]) -> None:
    d = azvhdaudit.diff(reports["gen1"], copy.deepcopy(reports["gen1"]))
    assert not d.changed and d.exit_code() == 0
    assert render_diff(d).splitlines()[1].startswith("NO CHANGE")


def test_json_report_and_image_compare_alike(
    reports: dict[str, Report], built: dict[str, Path], tmp_path: Path
) -> None:
    old = tmp_path / "gen1.json"
    old.write_text(render_json(reports["gen1"]), encoding="utf-8")
    from_files = azvhdaudit.diff(old, built["gen1-week2.vhd"])
    from_reports = azvhdaudit.diff(reports["gen1"], reports["week2"])
    assert from_files.to_dict()["verdicts"] == from_reports.to_dict()["verdicts"]
    assert from_files.to_dict()["facts"] == from_reports.to_dict()["facts"]
    assert from_files.to_dict()["evidence"] == from_reports.to_dict()["evidence"]
    new = tmp_path / "week2.json"
    new.write_text(render_json(reports["week2"]), encoding="utf-8")
    assert azvhdaudit.diff(str(old), str(new)).to_dict()["verdicts"] == from_reports.to_dict()["verdicts"]


def test_newly_not_checked_is_a_regression(built: dict[str, Path]) -> None:
    with_lsa = azvhdaudit.audit(built["web-clone.vhd"], with_lsa=True)
    without = azvhdaudit.audit(built["web-clone.vhd"])
    d = azvhdaudit.diff(with_lsa, without)
    assert kinds(d, "newly_not_checked") == {
        "rdp.builtin_admin_known",
        "rdp.user_right_allow_rds",
        "rdp.user_right_network_logon",
        "rdp.user_right_no_deny",
    }
    assert d.exit_code() == 1
    assert d.notes == ["the audits differ in option with_lsa: True and False"]
    back = azvhdaudit.diff(without, with_lsa)
    assert kinds(back, "improved") == kinds(d, "newly_not_checked") and back.exit_code() == 0


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (None, Status.FAIL, "new_failure"),
        (None, Status.PASS, "added"),
        (Status.PASS, None, "removed"),
        (Status.PASS, Status.ERROR, "new_failure"),
        (Status.WARNING, Status.FAIL, "new_failure"),
        (Status.FAIL, Status.PASS, "fixed"),
        (Status.FAIL, Status.WAIVED, "changed"),
        (Status.WAIVED, Status.FAIL, "new_failure"),
        (Status.FAIL, Status.NOT_APPLICABLE, "fixed"),
        (Status.FAIL, Status.NOT_CHECKED, "newly_not_checked"),
        (Status.PASS, Status.NOT_CHECKED, "newly_not_checked"),
        (Status.MANUAL, Status.NOT_CHECKED, "changed"),
        (Status.PASS, Status.WARNING, "new_warning"),
        (Status.NOT_CHECKED, Status.PASS, "improved"),
        (Status.PASS, Status.NOT_APPLICABLE, "changed"),
    ],
)
def test_classify(old: Status | None, new: Status | None, kind: str) -> None:
    assert classify(old, new) == kind


def test_json_matches_its_schema(reports: dict[str, Report]) -> None:
    schema = load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for a, b in (("gen1", "week2"), ("week2", "gen1"), ("gen1", "child"), ("gen1", "gen1")):
        data = json.loads(render_diff(azvhdaudit.diff(reports[a], reports[b]), "json"))
        jsonschema.validate(data, schema)
    data = json.loads(render_diff(azvhdaudit.diff(reports["gen1"], reports["week2"]), "json"))
    assert data["regressed"] is True and data["counts"]["new_failures"] == 2


def test_older_report_is_read_and_unknown_schema_refused(reports: dict[str, Report], tmp_path: Path) -> None:
    data = json.loads(render_json(reports["gen1"]))
    older = {k: v for k, v in data.items() if k not in ("disks", "timings_ms", "options")}
    older["schema_version"] = "1.0"
    for result in older["results"]:
        for key in ("waived_status", "duration_ms", "disk", "references", "baselines"):
            result.pop(key, None)
    back = report_from_dict(older)
    assert back.summary == reports["gen1"].summary and back.disks == {}
    assert not compare(back, reports["gen1"]).verdicts
    future = dict(data, schema_version="2.0")
    path = tmp_path / "future.json"
    path.write_text(json.dumps(future), encoding="utf-8")
    with pytest.raises(ReportFormatError, match=r"future\.json: schema_version '2\.0' is not supported"):
        load_report(path)
    code, out, err = run(["diff", str(path), str(path)])
    assert code == 2 and out == ""
    assert "schema_version '2.0'" in err and err.count("\n") == 1
    (tmp_path / "junk.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ReportFormatError, match="junk.json: not a JSON report"):
        load_report(tmp_path / "junk.json")
    bad = json.loads(render_json(reports["gen1"]))
    bad["results"][0]["severity"] = "critical"
    with pytest.raises(ReportFormatError, match=r"results\[0\]: unknown severity 'critical'"):
        report_from_dict(bad, "bad.json")
    (tmp_path / "other.json").write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(ReportFormatError, match="no schema_version"):
        load_report(tmp_path / "other.json")


class _Tables(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-rule"):
            self.rows.append((a.get("class") or "", a["data-rule"] or ""))


def test_cli_formats_and_exit_codes(
    reports: dict[str, Report], sample_path: Callable[[str], Path], tmp_path: Path
) -> None:
    parent, child = sample_path("gen1-azure.vhd"), sample_path("gen1-azure-child.vhd")
    code, out, err = run(["diff", str(parent), str(child)])
    assert code == 1 and err == ""
    assert "rdp.port: pass -> fail" in out and "REG_DWORD 3389 (0xD3D) -> REG_DWORD 3391 (0xD3F)" in out
    code, out, _ = run(["diff", str(child), str(parent), "--format", "markdown"])
    assert code == 0
    assert "| `rdp.port` | fail | pass |" in out and "#### Fixed (3)" in out
    target = tmp_path / "d.html"
    code, out, _ = run(["diff", str(parent), str(child), "--format", "html", "-o", str(target)])
    assert code == 1 and out == ""
    parser = _Tables()
    parser.feed(target.read_text(encoding="utf-8"))
    assert sorted(parser.rows) == [
        ("new_failure", "disk.not_differencing"),
        ("new_failure", "disk.vhd_fixed"),
        ("new_failure", "rdp.port"),
    ]
    code, out, _ = run(["diff", str(parent), str(child), "--format", "json"])
    assert code == 1 and json.loads(out)["counts"]["new_failures"] == 3
    same = tmp_path / "same.vhd"
    shutil.copyfile(parent, same)
    assert run(["diff", str(parent), str(same)])[0] == 0


def test_cli_fail_on_warning(reports: dict[str, Report], tmp_path: Path) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    base = reports["gen1"]
    old.write_text(render_json(base), encoding="utf-8")
    data = json.loads(render_json(base))
    for result in data["results"]:
        if result["rule_id"] == "crashdump.kernel_dump":
            result["status"] = "warning"
    new.write_text(json.dumps(data), encoding="utf-8")
    assert run(["diff", str(old), str(new)])[0] == 0
    assert run(["diff", str(old), str(new), "--fail-on", "warning"])[0] == 1


def test_a_file_of_several_reports_is_refused_by_name(reports: dict[str, Report], tmp_path: Path) -> None:
    both = tmp_path / "both.json"
    both.write_text(render_json([reports["gen1"], reports["child"]]), encoding="utf-8")
    with pytest.raises(ReportFormatError, match=r"both\.json: holds 2 reports"):
        azvhdaudit.diff(both, reports["gen1"])
    from azvhdaudit.diff import load_reports

    assert [r.summary for r in load_reports(both)] == [reports["gen1"].summary, reports["child"].summary]
