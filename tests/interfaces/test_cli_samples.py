"""The CLI, the renderers, the fix writer and the pytest plugin on the committed sample images
(samples/, described by samples/manifest.json): each reports exactly what the sample is built to fail."""

from __future__ import annotations

import io
import json
import lzma
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from junitparser import JUnitXml

from azvhdaudit import cli
from azvhdaudit.render.json import load_schema

pytestmark = [pytest.mark.slow]

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))["samples"]
BY_NAME = {s["name"]: s for s in MANIFEST}
SARIF_SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every sample decompressed side by side (the children find their parents by relative locator)."""
    out = tmp_path_factory.mktemp("cli-samples")
    for sample in MANIFEST:
        with lzma.open(SAMPLES / sample["file"]) as src, open(out / sample["name"], "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return cli.main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def _profile(sample: dict[str, Any]) -> str:
    # the manifest's expectations are the 2022-08 document's: under "azure" the platform rules come on top
    return "azure-2022" if sample["profile"] == "azure" else str(sample["profile"])


def _ids(results: list[dict[str, Any]], *statuses: str) -> list[str]:
    return sorted(r["rule_id"] for r in results if r["status"] in statuses)


@pytest.mark.parametrize("sample", MANIFEST, ids=[s["name"] for s in MANIFEST])
def test_audit_reports_what_the_sample_is_built_to_fail(samples: Path, sample: dict[str, Any]) -> None:
    code, out, err = _main("audit", str(samples / sample["name"]), "--format", "json", "--profile", _profile(sample))
    data = json.loads(out)
    jsonschema.Draft202012Validator(load_schema()).validate(data)
    assert err == ""
    assert code == (1 if sample["expected_fail"] else 0)
    assert _ids(data["results"], "fail", "error") == sorted(sample["expected_fail"])
    assert _ids(data["results"], "warning") == sorted(sample["expected_warning"])
    assert data["facts"]["generation"] == sample["generation"]


def test_all_samples_in_one_call(samples: Path, tmp_path: Path) -> None:
    images = [str(samples / s["name"]) for s in MANIFEST]
    code, _, err = _main(
        "audit", *images, "--profile", "azure-2022", "--format", "junit", "-o", str(tmp_path / "junit.xml")
    )
    bad = sum(1 for s in MANIFEST if s["expected_fail"])
    assert code == 1 and err.startswith(
        f"azvhdaudit: NOT COMPLIANT: {len(MANIFEST)} images: "
        f"{len(MANIFEST) - bad} compliant, {bad} not compliant; rules: "
    )
    assert err.endswith(f"; junit report written to {tmp_path / 'junit.xml'}\n") and len(err.splitlines()) == 1
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(tmp_path / "junit.xml"))}
    for sample in MANIFEST:
        suite = suites[str(samples / sample["name"])]
        assert suite.failures + suite.errors == len(sample["expected_fail"])

    _main("audit", *images, "--profile", "azure-2022", "--format", "sarif", "-o", str(tmp_path / "all.sarif"))
    sarif = json.loads((tmp_path / "all.sarif").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))).validate(sarif)
    run = sarif["runs"][0]
    assert len(run["artifacts"]) == len(MANIFEST)
    fails = [r for r in run["results"] if r["properties"]["status"] == "fail"]
    warnings = [r for r in run["results"] if r["properties"]["status"] == "warning"]
    assert len(fails) == sum(len(s["expected_fail"]) for s in MANIFEST)
    assert len(warnings) == sum(len(s["expected_warning"]) for s in MANIFEST)
    assert {r["properties"]["status"] for r in run["results"]} == {"fail", "warning", "not_checked"}


def test_compliant_sample_text_summary(samples: Path) -> None:
    code, out, _ = _main("audit", str(samples / "gen1-azure.vhd"), "--profile", "azure-2022")
    lines = out.splitlines()
    assert code == 0
    assert "Windows Server 2016 Datacenter (build 14393.2273, AMD64), generation 1, VHD fixed" in lines[1]
    assert lines[2].strip().startswith("COMPLIANT: ")
    assert "Problems, by area" not in out


def test_fix_script_for_the_misconfigured_sample(samples: Path, tmp_path: Path) -> None:
    sample = BY_NAME["gen2-misconfigured.vhdx"]
    code, _, _ = _main("fix", str(samples / sample["name"]), "-o", str(tmp_path / "fix.ps1"))
    script = (tmp_path / "fix.ps1").read_text(encoding="utf-8")
    assert code == 0
    for rule_id in sample["expected_fail"]:
        assert f"# {rule_id} —" in script
    assert "-Name PortNumber -Value 3389" in script
    assert script.index("Set-Service") < script.index("Set-NetFirewallProfile") < script.index("$bcdCommands")
    _main("fix", str(samples / sample["name"]), "--format", "reg", "-o", str(tmp_path / "fix.reg"))
    reg = (tmp_path / "fix.reg").read_text(encoding="ascii")
    assert '"PortNumber"=dword:00000d3d' in reg
    assert '"RealTimeIsUniversal"=dword:00000001' in reg


def test_info_shows_the_parent_chain(samples: Path) -> None:
    code, out, _ = _main("info", str(samples / "gen2-misconfigured-child.vhdx"))
    assert code == 0
    assert "VHDX differencing" in out
    assert f"parent       {samples / 'gen2-misconfigured.vhdx'} (vhdx, linkage ok)" in out
    assert "Windows 10 Enterprise, build 16299.431, AMD64" in out


def test_plugin_on_a_sample(samples: Path, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    sample = BY_NAME["gen1-azure-child.vhd"]
    result = pytester.runpytest_inprocess(
        "-p",
        "azvhdaudit.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        "--azvhd-image",
        str(samples / sample["name"]),
        "--azvhd-profile",
        _profile(sample),
    )
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == len(sample["expected_fail"])
    failed = sorted(line.split("::")[1].split(" ")[0] for line in result.outlines if line.startswith("FAILED "))
    assert failed == sorted(sample["expected_fail"])
