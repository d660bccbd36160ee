"""The profile azure-marketplace: it runs the rules of azure-2022, azure-platform and its own baseline; adding it
leaves azure, azure-2022 and azure-2017 as they were; the CLI audits and lists with it; its reports validate.

"Unchanged" is shown against the same package without rules/marketplace.py (the rule loader skips a module file
that is absent), audited in a separate interpreter by tests/profiles_record.py's ``audit_with``.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from profiles_record import audit_with, normalize, unpack_samples

import azvhdaudit
from azvhdaudit import cli
from azvhdaudit.engine import catalogue, select_rules
from azvhdaudit.render.json import load_schema
from azvhdaudit.report import Status
from azvhdaudit.rules.base import BASELINES, PROFILES

PACKAGE = Path(azvhdaudit.__file__).resolve().parent
OWN = {r.id for r in catalogue() if r.meta.baselines == ("azure-marketplace",)}


def main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def test_the_profile_runs_three_baselines() -> None:
    assert PROFILES["azure-marketplace"] == ("azure-2022", "azure-platform", "azure-marketplace")
    assert "ms.date 2021-09-27" in BASELINES["azure-marketplace"]
    for role in ("os", "data", "vm"):
        azure = {r.id for r in select_rules("azure", role=role)}
        marketplace = {r.id for r in select_rules("azure-marketplace", role=role)}
        assert marketplace == azure | {r.id for r in select_rules("azure-marketplace", role=role) if r.id in OWN}
    assert len(OWN) == 13 and all(i.startswith("marketplace.") for i in OWN)
    assert all(r.meta.area == "marketplace" for r in catalogue() if r.id in OWN)


@pytest.mark.parametrize("profile", ["azure", "azure-2022", "azure-2017"])
def test_the_other_profiles_hold_no_marketplace_rule(profile: str) -> None:
    for role in ("os", "data", "vm"):
        assert not {r.id for r in select_rules(profile, role=role)} & OWN


def test_rules_lists_the_profile() -> None:
    code, out, _ = main("rules", "--format", "json", "--profile", "azure-marketplace")
    ids = [r["id"] for r in json.loads(out)]
    assert code == 0
    assert set(ids) == {r.id for r in select_rules("azure-marketplace")} | {
        r.id for r in select_rules("azure-marketplace", role="data")
    } | {r.id for r in select_rules("azure-marketplace", role="vm")}
    assert OWN <= set(ids)
    code, text, _ = main("rules", "--profile", "azure-marketplace")
    assert code == 0 and "marketplace.srv_version" in text and "azure-vm-certification-faq" in text


def test_an_unknown_profile_is_refused_naming_the_new_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = main("audit", "x.vhd", "--profile", "azure-market")
    assert code == cli.EXIT_ERROR and "'azure-marketplace'" in capsys.readouterr().err


# --- on the samples (slow: decompresses and audits images) --------------------------------------------------------


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("marketplace-samples")
    unpack_samples(out)
    return out


@pytest.mark.slow
def test_the_profile_on_a_sample_adds_its_rules_and_changes_no_other(sample_dir: Path) -> None:
    image = str(sample_dir / "gen1-azure.vhd")
    data = [str(sample_dir / "data-mbr.vhd")]
    azure = azvhdaudit.audit(image, profile="azure", data_disks=data)
    market = azvhdaudit.audit(image, profile="azure-marketplace", data_disks=data)
    mine = {(r.rule_id, r.disk): r for r in market}
    theirs = {(r.rule_id, r.disk): r for r in azure}
    assert set(mine) - set(theirs) == {k for k in mine if k[0] in OWN}
    assert set(theirs) <= set(mine)
    for key, result in theirs.items():
        assert (mine[key].status, mine[key].message) == (result.status, result.message), key
    got = {k: r.status for k, r in mine.items() if k[0] in OWN and k[1] in ("os", "vm", "data1:data-mbr.vhd")}
    assert got[("marketplace.os_64bit", "os")] is Status.PASS
    assert got[("marketplace.generalized", "os")] is Status.PASS  # generalized with sysprep
    assert got[("marketplace.srv_version", "os")] is Status.PASS  # Windows Server 2016, srv.sys 10.0.14393.2273
    assert got[("marketplace.os_disk_size", "os")] is Status.FAIL  # a 64 MiB sample
    assert got[("marketplace.data_disk_size", "data1:data-mbr.vhd")] is Status.FAIL  # 16 MiB, under 20 MiB
    assert got[("marketplace.data_disk_count", "vm")] is Status.PASS
    assert got[("marketplace.certification_test_tool", "os")] is Status.MANUAL


@pytest.mark.slow
def test_cli_audit_with_the_profile_writes_a_valid_report(sample_dir: Path) -> None:
    code, out, err = main(
        "audit", str(sample_dir / "gen2-ready.vhd"), "--profile", "azure-marketplace", "--format", "json"
    )
    data = json.loads(out)
    jsonschema.Draft202012Validator(load_schema()).validate(data)
    assert err == "" and code == 1  # marketplace.os_disk_size fails on a 128 MiB sample
    assert data["profile"] == "azure-marketplace"
    failed = sorted(r["rule_id"] for r in data["results"] if r["status"] == "fail")
    assert "marketplace.os_disk_size" in failed
    assert {r["rule_id"] for r in data["results"]} >= {
        i for i in OWN if i not in ("marketplace.data_disk_size", "marketplace.data_disk_count")
    }
    code, text, _ = main("audit", str(sample_dir / "gen2-ready.vhd"), "--profile", "azure-marketplace")
    assert code == 1 and "marketplace.os_disk_size" in text


@pytest.fixture(scope="module")
def without_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This package without rules/marketplace.py."""
    code = tmp_path_factory.mktemp("without-marketplace")
    shutil.copytree(PACKAGE, code / "azvhdaudit", ignore=shutil.ignore_patterns("__pycache__", "marketplace.py"))
    assert not (code / "azvhdaudit" / "rules" / "marketplace.py").exists()
    return code


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["azure", "azure-2022", "azure-2017"])
@pytest.mark.parametrize(
    ("image", "kwargs"),
    [
        ("gen1-azure.vhd", {"data_disks": ["data-mbr.vhd", "data-gpt.vhd"]}),
        ("gen2-ready.vhd", {}),
        ("gen2-misconfigured.vhdx", {}),
    ],
)
def test_the_other_profiles_give_what_they_gave_without_the_module(
    sample_dir: Path, without_module: Path, profile: str, image: str, kwargs: dict[str, Any]
) -> None:
    resolved = {**kwargs, "data_disks": [str(sample_dir / d) for d in kwargs["data_disks"]]} if kwargs else {}
    before = normalize(audit_with(without_module, sample_dir / image, profile, kwargs), sample_dir)
    now = normalize(azvhdaudit.audit(str(sample_dir / image), profile=profile, **resolved).to_dict(), sample_dir)
    assert before["summary"] == now["summary"]
    assert [(r["rule_id"], r["disk"], r["status"], r["message"]) for r in before["results"]] == [
        (r["rule_id"], r["disk"], r["status"], r["message"]) for r in now["results"]
    ]


@pytest.mark.slow
def test_the_pytest_plugin_runs_the_profile(
    sample_dir: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    image = sample_dir / "gen2-ready.vhd"
    report = azvhdaudit.audit(str(image), profile="azure-marketplace", select=["marketplace.*"])
    result = pytester.runpytest_inprocess(
        "-p",
        "azvhdaudit.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        "--azvhd-image",
        str(image),
        "--azvhd-profile",
        "azure-marketplace",
        "-k",
        "marketplace",
        "-rs",
    )
    # every marketplace result is one test: fail -> failed, pass -> passed, manual / not checked / n/a -> skipped
    result.assert_outcomes(
        failed=len(report.filter(status="fail")),
        passed=len(report.filter(status="pass")),
        skipped=len(report.filter(status=["manual", "not_checked", "not_applicable"])),
        deselected=None,
    )
    result.stdout.fnmatch_lines(["*marketplace.os_disk_size*", "*marketplace.certification_test_tool: manual*"])


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["html", "markdown", "junit", "sarif", "csv"])
def test_every_report_format_carries_the_marketplace_results(sample_dir: Path, fmt: str) -> None:
    code, out, err = main(
        "audit", str(sample_dir / "gen2-ready.vhd"), "--profile", "azure-marketplace", "--format", fmt
    )
    assert code == 1
    assert "marketplace.os_disk_size" in out
    if fmt == "csv":  # the fleet table: one column per area, the summary on stderr
        assert "area:marketplace" in out.splitlines()[0] and "1 failing" in err
    else:
        assert err == ""


@pytest.mark.slow
def test_the_capability_manifest_is_the_same_under_the_profile(sample_dir: Path) -> None:
    image = str(sample_dir / "gen2-ready.vhd")
    azure = azvhdaudit.audit(image, profile="azure").capabilities.to_dict()
    market = azvhdaudit.audit(image, profile="azure-marketplace").capabilities.to_dict()
    assert market == azure and market["architecture"] == "x64"
    code, out, _ = main("capabilities", image, "--profile", "azure-marketplace", "--format", "json")
    assert code == 0 and json.loads(out)["profile"] == "azure-marketplace"


@pytest.mark.slow
@pytest.mark.parametrize("image", ["gen1-azure.vhd", "gen2-ready.vhd", "gen2-misconfigured.vhdx"])
def test_the_profile_reads_little_more_than_azure(sample_dir: Path, image: str) -> None:
    # counted, never timed: the module reads srv.sys's headers and a few hive keys; the kernel's header is a fact
    from azvhdaudit.fleet import audit_source

    azure = audit_source(sample_dir / image, profile="azure").facts["extra"]["io"]
    market = audit_source(sample_dir / image, profile="azure-marketplace").facts["extra"]["io"]
    assert azure["bytes_read"] <= market["bytes_read"] <= azure["bytes_read"] + 16 * 1024
    assert azure["requests"] <= market["requests"] <= azure["requests"] + 4
