"""The audit engine: profiles, selection, waivers, errors, missing hives, and the report it builds."""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from rules.guestkit import TS, build_view, facts

import azvhdaudit
from azvhdaudit.engine import audit, audit_context, catalogue, select_rules
from azvhdaudit.errors import BCDError, CorruptHiveError, FileSystemError, ProfileError, WaiverError
from azvhdaudit.report import Outcome, Severity, Status
from azvhdaudit.rules import base
from azvhdaudit.rules.base import AuditContext, Rule, RuleMeta
from azvhdaudit.waivers import load_waivers

TODAY = _dt.date(2026, 6, 1)


def ctx(drop: tuple[str, ...] = (), **overlays: dict) -> AuditContext:
    return AuditContext(registry=build_view(overlays, drop), facts=facts())


def ids(results: list) -> list[str]:
    return [r.rule_id for r in results]


# --- profiles and selection ------------------------------------------------------------------------


def test_unknown_profile_lists_the_valid_ones() -> None:
    with pytest.raises(ProfileError, match="azure-2017"):
        select_rules("azure-2019")
    with pytest.raises(ProfileError, match="unknown profile"):
        audit_context(ctx(), "Azure")


@pytest.mark.parametrize(
    ("select", "ignore", "must", "must_not"),
    [
        (["rdp.port"], None, {"rdp.port"}, {"rdp.nla"}),
        (["RDP.*"], None, {"rdp.port", "rdp.nla"}, {"time.utc"}),
        (["time"], None, {"time.utc", "time.w32time_auto"}, {"rdp.port"}),  # an area name
        (["rdp", "time"], ["rdp.*policy"], {"rdp.port", "time.utc"}, {"rdp.enabled_policy", "rdp.nla_policy"}),
        (None, ["manual", "services.*"], {"rdp.port"}, {"manual.sfc", "services.bfe"}),
    ],
)
def test_select_and_ignore_globs(select, ignore, must, must_not) -> None:  # type: ignore[no-untyped-def]
    chosen = {r.id for r in select_rules("azure", select, ignore)}
    assert must <= chosen
    assert not must_not & chosen


@pytest.mark.parametrize(("select", "ignore"), [(["rdp.prot"], None), (None, ["firewal"]), ("nothing*", None)])
def test_pattern_matching_nothing_is_an_error(select, ignore) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ProfileError, match="matches no rule"):
        audit_context(ctx(), "azure", select=select, ignore=ignore)


def test_profiles_differ() -> None:
    current = {r.id for r in select_rules("azure")}
    old = {r.id for r in select_rules("azure-2017")}
    # only in the 2017 text
    assert {"rdp.security_layer", "crashdump.kernel_dump_2017", "crashdump.autoreboot"} <= old - current
    # only in the current text
    assert {"firewall.azure_platform_rules", "os.temp_tmp_default", "crashdump.nmi"} <= current - old
    # selected explicitly, a 2017-only rule still does not run under azure
    assert ids(audit_context(ctx(), "azure", select=["rdp.security_layer"])) == []
    assert ids(audit_context(ctx(), "azure-2017", select=["rdp.security_layer"])) == ["rdp.security_layer"]


def test_every_rule_runs_on_the_compliant_hives() -> None:
    results = audit_context(ctx(), "azure", ignore=["manual"], today=TODAY)
    assert results
    # no guest-configuration rule errors on a complete registry
    errors = [
        r
        for r in results
        if r.status is Status.ERROR and r.area not in ("disk", "bcd", "sysprep", "updates", "agent", "os")
    ]
    assert not errors, [(r.rule_id, r.message) for r in errors]
    for r in results:
        assert r.duration_ms >= 0
        assert r.title and r.severity and r.baselines


# --- engine decisions ----------------------------------------------------------------------------


@pytest.fixture
def boom(monkeypatch: pytest.MonkeyPatch) -> Rule:
    def check(ctx: AuditContext) -> Outcome:
        raise KeyError("no such thing")

    rule = Rule(
        RuleMeta(id="test.boom", title="raises", area="test", severity=Severity.REQUIRED, source="s", remediation="r"),
        check,
    )
    monkeypatch.setitem(base._CATALOGUE, rule.id, rule)
    return rule


def test_a_rule_that_raises_is_an_error_and_the_audit_goes_on(boom: Rule) -> None:
    results = audit_context(ctx(), "azure", select=["test.boom", "rdp.port"])
    by_id = {r.rule_id: r for r in results}
    assert by_id["test.boom"].status is Status.ERROR
    assert "KeyError" in by_id["test.boom"].message and "no such thing" in by_id["test.boom"].reason
    assert by_id["rdp.port"].status is Status.PASS


@pytest.mark.parametrize(
    "error",
    [
        CorruptHiveError("SYSTEM: cell at offset 0x1020 points past the end of the hive"),
        BCDError("BCD: element 16000009 of {bootmgr} is 3 bytes, expected 1"),
        FileSystemError("partition 0: MFT record 12 is corrupt"),
    ],
)
def test_unreadable_evidence_met_by_a_rule_is_not_checked(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def check(ctx: AuditContext) -> Outcome:
        raise error

    rule = Rule(
        RuleMeta(
            id="test.corrupt", title="reads", area="test", severity=Severity.REQUIRED, source="s", remediation="r"
        ),
        check,
    )
    monkeypatch.setitem(base._CATALOGUE, rule.id, rule)
    (result,) = audit_context(ctx(), "azure", select=["test.corrupt"])
    assert result.status is Status.NOT_CHECKED
    assert str(error) in result.reason


@pytest.mark.parametrize(
    ("severity", "required_for", "required", "status"),
    [
        (Severity.REQUIRED, None, None, Status.FAIL),
        (Severity.RECOMMENDED, None, None, Status.WARNING),
        (Severity.ADVISORY, None, None, Status.WARNING),
        (Severity.INFORMATIONAL, None, None, Status.WARNING),
        (Severity.INFORMATIONAL, None, True, Status.WARNING),
        (Severity.REQUIRED, lambda ctx: False, None, Status.WARNING),
        (Severity.REQUIRED, lambda ctx: True, None, Status.FAIL),
        (Severity.REQUIRED, lambda ctx: False, True, Status.FAIL),
        (Severity.REQUIRED, lambda ctx: True, False, Status.WARNING),
    ],
)
def test_severity_and_target_decide_the_status_of_an_unmet_requirement(
    monkeypatch: pytest.MonkeyPatch, severity: Severity, required_for: object, required: bool | None, status: Status
) -> None:
    """A check reports FAIL ("not met"); the engine makes it fail or warning by the rule's severity and whether
    the target requires it (the group's required_for, or the outcome's own required)."""
    group = base.Group(area="test", source="s", required_for=required_for)  # type: ignore[arg-type]
    rule = Rule(
        group.meta(id="test.unmet", title="unmet", severity=severity, remediation="r"),
        lambda ctx: Outcome(Status.FAIL, "not met", required=required),
    )
    monkeypatch.setitem(base._CATALOGUE, rule.id, rule)
    (result,) = audit_context(ctx(), "azure", select=["test.unmet"])
    assert result.status is status and result.message == "not met"


def test_a_warning_stays_a_warning_and_a_pass_a_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    for outcome in (Outcome(Status.WARNING, "lesser"), Outcome(Status.PASS, "met")):
        meta = base.Group(area="test", source="s").meta(
            id="test.kept", title="kept", severity=Severity.REQUIRED, remediation="r"
        )
        rule = Rule(meta, lambda ctx, o=outcome: o)
        monkeypatch.setitem(base._CATALOGUE, rule.id, rule)
        (result,) = audit_context(ctx(), "azure", select=["test.kept"])
        assert result.status is outcome.status


def test_a_rule_cites_its_baselines_documents_and_no_more() -> None:
    group = base.Group(area="test", source="s", references=("https://example.org/area",))
    meta = group.meta(
        id="test.refs",
        title="t",
        severity=Severity.REQUIRED,
        baselines=("azure-2017", "azure-2022"),
        references=("https://example.org/rule",),
    )
    assert meta.references == (base.DOC_CURRENT, base.DOC_2017, "https://example.org/area", "https://example.org/rule")
    assert group.meta(id="t.a", title="t", severity=Severity.REQUIRED, baselines=("azure-2017",)).references == (
        base.DOC_2017,
        "https://example.org/area",
    )
    with pytest.raises(ValueError, match="come from its baselines"):
        group.meta(id="t.b", title="t", severity=Severity.REQUIRED, references=(base.DOC_CURRENT,))
    with pytest.raises(TypeError, match="Group"):
        base.rule(meta)  # type: ignore[arg-type]


def test_missing_software_hive_is_not_checked_never_pass() -> None:
    results = audit_context(
        ctx(drop=("SOFTWARE",)),
        "azure",
        select=["rdp.enabled_policy", "network.winhttp_proxy", "crashdump.wer_localdumps"],
    )
    assert {r.status for r in results} == {Status.NOT_CHECKED}
    assert all("SOFTWARE" in r.reason for r in results)


def test_not_applicable_comes_with_the_reason() -> None:
    from azvhdaudit.facts import OSFacts

    client = AuditContext(registry=build_view(), facts=facts(OSFacts(installation_type="Client")))
    [result] = audit_context(client, "azure", select=["services.sacsvr"])
    assert result.status is Status.NOT_APPLICABLE and "Server" in result.reason


def test_result_carries_the_rule_metadata() -> None:
    [result] = audit_context(ctx(SYSTEM={TS: {"fDenyTSConnections": 1}}), "azure", select=["rdp.enabled"])
    assert result.status is Status.FAIL
    assert result.remediation.startswith("Set-ItemProperty")
    assert result.source == "Update remote desktop registry settings"
    assert result.severity is Severity.REQUIRED and result.area == "rdp"
    assert result.to_dict()["status"] == "fail"


# --- waivers -------------------------------------------------------------------------------------


def test_waiver_sets_the_result_aside_and_keeps_the_original_status() -> None:
    waivers = [{"rule": "rdp.enabled", "reason": "closed network", "expires": "2027-01-01"}]
    [result] = audit_context(
        ctx(SYSTEM={TS: {"fDenyTSConnections": 1}}), "azure", select=["rdp.enabled"], waivers=waivers, today=TODAY
    )
    assert result.status is Status.WAIVED
    assert result.waived_status is Status.FAIL
    assert "closed network" in result.reason and "2027-01-01" in result.reason


def test_expired_waiver_no_longer_applies() -> None:
    waivers = [{"rule": "rdp.enabled", "reason": "old", "expires": _dt.date(2026, 6, 1)}]
    [result] = audit_context(
        ctx(SYSTEM={TS: {"fDenyTSConnections": 1}}), "azure", select=["rdp.enabled"], waivers=waivers, today=TODAY
    )
    assert result.status is Status.FAIL and result.waived_status is None


def test_waiver_for_an_unknown_rule_is_an_error() -> None:
    with pytest.raises(WaiverError, match="rdp.prot"):
        audit_context(ctx(), "azure", waivers=[{"rule": "rdp.prot", "reason": "typo"}])


def test_waiver_file_toml_and_json(tmp_path: Path) -> None:
    toml = tmp_path / "waivers.toml"
    toml.write_text('[[waiver]]\nrule = "rdp.port"\nreason = "moved to 3390"\nexpires = 2027-01-01\n', encoding="utf-8")
    [waiver] = load_waivers(toml)
    assert (waiver.rule, waiver.expires) == ("rdp.port", _dt.date(2027, 1, 1))
    js = tmp_path / "waivers.json"
    js.write_text(json.dumps({"waiver": [{"rule": "time.utc", "reason": "x"}]}), encoding="utf-8")
    assert load_waivers(js)[0].expires is None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('[[waiver]]\nrule = "rdp.port"\n', "reason"),
        ('[[waiver]]\nrule = "rdp.port"\nreason = "r"\nexpires = "soon"\n', "not a date"),
        ('[[waiver]]\nrule = "rdp.port"\nreason = "r"\nuntil = 2027-01-01\n', "unknown field"),
        ("[[waiver]\n", "not valid TOML"),
        ('[[waivr]]\nrule = "rdp.port"\n', "top-level"),
    ],
)
def test_bad_waiver_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "w.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(WaiverError, match=match):
        load_waivers(path)


# --- audit(): the report -------------------------------------------------------------------------


def _opened(drop: tuple[str, ...] = ()) -> SimpleNamespace:
    return SimpleNamespace(source="memory.vhd", registry=build_view(None, drop), facts=facts(), files=None, bcd=None)


def test_audit_of_an_opened_image_builds_the_report(tmp_path: Path) -> None:
    waivers = tmp_path / "w.toml"
    waivers.write_text(
        '[[waiver]]\nrule = "rdp.port"\nreason = "r"\nexpires = 2001-01-01\n'
        '[[waiver]]\nrule = "time.utc"\nreason = "host is UTC"\n',
        encoding="utf-8",
    )
    report = audit(_opened(), "azure", select=["rdp", "time"], waivers=waivers)
    assert report.source == "memory.vhd" and report.profile == "azure"
    assert report.tool_version == azvhdaudit.__version__
    assert report.facts["source"] == "<memory>"
    assert {"rules", "total"} <= set(report.timings_ms)
    assert report["time.utc"].status is Status.WAIVED
    assert report["rdp.port"].status is Status.PASS
    assert [w["rule"] for w in report.options["waivers_expired"]] == ["rdp.port"]
    assert any("expired" in note for note in report.options["notes"])
    assert report.to_dict()["summary"]["waived"] == 1


def test_audit_checks_profile_and_patterns_before_opening_anything() -> None:
    with pytest.raises(ProfileError):
        audit("/nonexistent/disk.vhd", "azure-1999")
    with pytest.raises(ProfileError, match="matches no rule"):
        audit("/nonexistent/disk.vhd", select=["rpd.*"])
    with pytest.raises(ProfileError, match="image_type"):
        audit("/nonexistent/disk.vhd", image_type="golden")


def test_catalogue_is_loaded_through_the_package() -> None:
    from azvhdaudit.rules import loaded_modules

    assert {"rdp", "firewall", "manual"} <= set(loaded_modules())
    assert len({r.id for r in catalogue()}) == len(catalogue())


@pytest.mark.tools
def test_audit_of_a_disk_file_with_the_real_windows7_system(tmp_path: Path) -> None:
    import lzma

    import diskbuild as db

    db.require_tools()
    system = lzma.decompress((Path(__file__).parent / "data" / "realdata" / "SYSTEM.xz").read_bytes())
    volume = db.make_ntfs(tmp_path / "vol.img", 40 * db.MiB, {r"Windows\System32\config\SYSTEM": system})
    disk = db.mbr_disk(tmp_path / "disk.raw", 48 * db.MiB, [(1, 40, "7", True)])
    db.place(volume, disk, db.MiB)
    data = db.mbr_disk(tmp_path / "data.raw", 8 * db.MiB, [(1, 6, "7", False)])
    db.place(db.make_ntfs(tmp_path / "data.img", 6 * db.MiB, {}, label="Data"), data, db.MiB)

    report = audit(disk, select=["rdp", "time.utc"], data_disks=[data])
    # The local value allows RDP, but without SOFTWARE a Group Policy override cannot be ruled out
    assert report["rdp.enabled"].status is Status.NOT_CHECKED
    assert "local fDenyTSConnections = 0 would pass" in report["rdp.enabled"].message
    assert report["time.utc"].status is Status.FAIL
    # SOFTWARE is not on this disk: policy rules are not checked, and say where the hive was looked for
    assert report["rdp.enabled_policy"].status is Status.NOT_CHECKED
    assert "SOFTWARE" in report["rdp.enabled_policy"].reason
    # SECURITY is read only with with_lsa=True: the user-right rules are not checked, and say how to opt in
    assert report["rdp.user_right_no_deny"].status is Status.NOT_CHECKED
    assert "with_lsa=True" in report["rdp.user_right_no_deny"].reason
    assert report.facts["partition_style"] == "mbr"
    assert {"open", "rules", "total"} <= set(report.timings_ms)
    assert set(report.disks) == {"os", "data1:data.raw"} and report.disks["data1:data.raw"]["role"] == "data"
