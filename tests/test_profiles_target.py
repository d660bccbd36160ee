"""The deployment target and the signature mode from the command line and the pytest plugin to the engine, and the
resolved target in every report format (a real sample audited by the real engine)."""

from __future__ import annotations

import io
import json
import lzma
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from profiles_record import SAMPLES

from azvhdaudit import cli, pytest_plugin
from azvhdaudit.render.json import load_schema
from azvhdaudit.report import Report


@pytest.fixture(scope="module")
def gen1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("target") / "gen1-azure.vhd"
    with lzma.open(SAMPLES / "gen1-azure.vhd.xz") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_target_reaches_the_json_report(gen1: Path) -> None:
    _, out, _ = run(
        [
            "audit",
            str(gen1),
            "--select",
            "rdp.port",
            "--format",
            "json",
            "--security-type",
            "TrustedLaunch",
            "--disk-controller",
            "NVMe",
            "--verify-signatures",
        ]
    )
    data = json.loads(out)
    jsonschema.Draft202012Validator(load_schema()).validate(data)
    bad = {**data, "target": {**data["target"], "disk_controller": "IDE"}}
    assert not jsonschema.Draft202012Validator(load_schema()).is_valid(bad)
    assert data["target"] == {
        "security_type": "TrustedLaunch",
        "disk_controller": "NVMe",
        "effective_security_type": "TrustedLaunch",
        "effective_disk_controller": "NVMe",
    }
    assert data["options"]["verify_signatures"] is True


def test_cli_default_target_is_azures(gen1: Path) -> None:
    _, out, _ = run(["audit", str(gen1), "--select", "rdp.port", "--format", "json"])
    data = json.loads(out)
    # gen1-azure.vhd is a Generation 1 image: Azure's default is Standard
    assert data["facts"]["generation"] == 1
    assert data["target"]["effective_security_type"] == "Standard" and data["target"]["security_type"] is None
    assert data["target"]["effective_disk_controller"] == "SCSI" and data["options"]["verify_signatures"] is False


@pytest.mark.parametrize(
    ("fmt", "says"),
    [
        ("text", "target: ConfidentialVM, NVMe disk controller"),
        ("markdown", "target ConfidentialVM, NVMe disk controller"),
        ("html", "target ConfidentialVM, NVMe disk controller"),
        ("sarif", "target ConfidentialVM, NVMe disk controller"),
    ],
)
def test_every_format_names_the_target(gen1: Path, fmt: str, says: str) -> None:
    _, out, _ = run(
        [
            "audit",
            str(gen1),
            "--select",
            "rdp.port",
            "--format",
            fmt,
            "--security-type",
            "ConfidentialVM",
            "--disk-controller",
            "NVMe",
        ]
    )
    assert says in out


def test_default_target_is_marked_as_default(gen1: Path) -> None:
    _, out, _ = run(["audit", str(gen1), "--select", "rdp.port"])
    assert "target: Standard (default for Generation 1), SCSI disk controller (default)" in out


def test_junit_carries_the_target(gen1: Path) -> None:
    _, out, _ = run(["audit", str(gen1), "--select", "rdp.port", "--format", "junit", "--disk-controller", "NVMe"])
    props = {p.get("name"): p.get("value") for p in ET.fromstring(out).iter("property")}
    assert props["security_type"] == "Standard" and props["disk_controller"] == "NVMe"


def test_fix_takes_the_target(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake(source: str, **kwargs: Any) -> Report:
        calls.append(kwargs)
        return Report(source=source, profile=kwargs["profile"])

    monkeypatch.setattr(cli, "_run_audit", fake)
    assert run(["fix", "x.vhd", "--disk-controller", "NVMe", "--verify-signatures"])[0] == 0
    assert calls[-1]["target"] == {"security_type": None, "disk_controller": "NVMe"}
    assert calls[-1]["verify_signatures"] is True
    run(["fix", "x.vhd"])
    assert "target" not in calls[-1] and "verify_signatures" not in calls[-1]


def test_cli_refuses_an_unknown_target() -> None:
    assert run(["audit", "x.vhd", "--security-type", "Trusted"])[0] == 2
    assert run(["audit", "x.vhd", "--disk-controller", "IDE"])[0] == 2


@pytest.fixture
def plugin_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    calls: list[dict[str, Any]] = []

    def fake(image: str, **kwargs: Any) -> Report:
        calls.append(kwargs)
        return Report(source=image, profile=kwargs["profile"])

    monkeypatch.setattr(pytest_plugin, "_run_audit", fake)
    return calls


def _inner(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(
        "-p",
        "azvhdaudit.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        *args,
    )


def test_plugin_options_reach_the_engine(pytester: pytest.Pytester, plugin_calls: list[dict[str, Any]]) -> None:
    result = _inner(
        pytester,
        "--azvhd-image",
        "a.vhd",
        "--azvhd-security-type",
        "TrustedLaunch",
        "--azvhd-disk-controller",
        "NVMe",
        "--azvhd-verify-signatures",
        "--collect-only",
    )
    assert result.ret in (0, 5)
    assert plugin_calls[-1]["target"] == {"security_type": "TrustedLaunch", "disk_controller": "NVMe"}
    assert plugin_calls[-1]["verify_signatures"] is True
    assert "target security_type TrustedLaunch, disk_controller NVMe, verify signatures" in result.stdout.str()


def test_plugin_ini_and_defaults(pytester: pytest.Pytester, plugin_calls: list[dict[str, Any]]) -> None:
    pytester.makeini("[pytest]\nazvhd_disk_controller = NVMe\nazvhd_verify_signatures = true\n")
    _inner(pytester, "--azvhd-image", "a.vhd", "--collect-only")
    assert plugin_calls[-1]["target"] == {"security_type": None, "disk_controller": "NVMe"}
    assert plugin_calls[-1]["verify_signatures"] is True
    (pytester.path / "tox.ini").unlink()  # what makeini wrote
    _inner(pytester, "--azvhd-image", "a.vhd", "--collect-only")
    assert plugin_calls[-1]["target"] is None and plugin_calls[-1]["verify_signatures"] is False
