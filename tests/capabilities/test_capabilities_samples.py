"""The sample images' capability manifests, field by field, against what samples/manifest.json says each was built
to be: the generation, the Sysprep state and the architecture of its OS, and the rules it is built to fail, warn or
leave unchecked (so the blocking rule ids follow from the manifest, not from a second copy of them here)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import azvhdaudit
from azvhdaudit import cli
from azvhdaudit.capabilities import (
    ACCELERATED_NETWORKING_RULES,
    HIBERNATION_RULES,
    NVME_RULES,
    SECURITY_RULES,
    SUPPORTED,
    UNKNOWN,
    UNSUPPORTED,
    Capabilities,
)
from azvhdaudit.render.json import load_schema

#: slow: audits every sample
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((ROOT / "samples" / "manifest.json").read_text(encoding="utf-8"))
PLATFORM = {entry["name"]: entry for entry in MANIFEST["platform_samples"]}
SAMPLES = {entry["name"]: entry for entry in MANIFEST["samples"]}
ARCH = {"AMD64": "x64", "ARM64": "Arm64"}


@pytest.fixture(scope="module")
def platform_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import lzma

    out = tmp_path_factory.mktemp("capability-samples")
    paths = {}
    for name, entry in PLATFORM.items():
        target = out / name
        with lzma.open(ROOT / "samples" / entry["file"]) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        paths[name] = target
    return paths


def _expected(entry: dict[str, Any], rules: tuple[str, ...], required: bool = False) -> tuple[set[str], set[str]]:
    """(blocking, undecided) rule ids of ``rules`` for a sample, from its manifest lists. Where the sample's target
    required the rules, what blocks failed there and a warning is advice."""
    problems = set(entry.get("expected_fail", ()))
    if not required:
        problems |= set(entry.get("expected_warning", ()))
    return problems & set(rules), set(entry.get("expected_not_checked", ())) & set(rules)


def _status(blocking: set[str], undecided: set[str]) -> str:
    return UNSUPPORTED if blocking else UNKNOWN if undecided else SUPPORTED


def _common(caps: Capabilities, entry: dict[str, Any]) -> None:
    assert caps.hyper_v_generation.value == f"V{entry['generation']}"
    assert caps.hyper_v_generation.status == SUPPORTED
    assert caps.os_state.value == ("Generalized" if entry["os"]["generalized"] else "Specialized")
    assert caps.os_state.status == SUPPORTED
    assert caps.architecture.value == ARCH[entry["os"]["architecture"]] and caps.architecture.supported
    _hibernation(caps, entry)


def _hibernation(caps: Capabilities, entry: dict[str, Any]) -> None:
    """Windows Server 2019 (build 17763) and Windows 10 Enterprise are in Azure's hibernation list, so the page
    file's rule decides (a platform rule, not run under the 2022 document: unknown); Server 2016 (14393) is not."""
    hib = caps.hibernation
    os_facts = entry["os"]
    if (os_facts["build"], os_facts["installation_type"]) == (14393, "Server"):
        assert hib.status == UNSUPPORTED and hib.value is False and hib.blocking_rules[0] == "facts.os"
        assert "older than Windows Server 2019" in hib.notes[0]
        return
    if os_facts["installation_type"] == "Client":
        assert (os_facts["edition_id"], os_facts["build"] < 22000) == ("Enterprise", True)
        assert "Windows 10 Enterprise, in the list of" in hib.notes[0]
    else:
        assert os_facts["build"] == 17763 and "Windows Server 2019, in the list of" in hib.notes[0]
    blocking, undecided = _expected(entry, HIBERNATION_RULES)
    if entry["profile"] == "azure-2022":
        undecided = set(HIBERNATION_RULES)  # a platform rule: not run by the 2022 document's profile
    assert set(hib.blocking_rules) == blocking and {b.rule_id for b in hib.undecided} == undecided
    assert hib.status == _status(blocking, undecided)
    assert hib.value == {SUPPORTED: True, UNSUPPORTED: False}.get(hib.status)


@pytest.mark.parametrize("name", sorted(PLATFORM))
def test_platform_sample_manifest_field_by_field(platform_images: dict[str, Path], name: str) -> None:
    entry = PLATFORM[name]
    report = azvhdaudit.audit(platform_images[name], entry["profile"], target=entry["target"])
    caps = report.capabilities
    _common(caps, entry)
    target = entry["target"] or {}
    secure_boot = target.get("security_type") in ("TrustedLaunch", "ConfidentialVM")
    for cap_name, rules, required in (
        ("security_type:TrustedLaunch", SECURITY_RULES, secure_boot),
        ("disk_controller:NVMe", NVME_RULES, target.get("disk_controller") == "NVMe"),
        ("accelerated_networking", ACCELERATED_NETWORKING_RULES, False),
    ):
        blocking, undecided = _expected(entry, rules, required)
        cap = caps[cap_name]
        assert set(cap.blocking_rules) == blocking, cap_name
        assert {b.rule_id for b in cap.undecided} == undecided, cap_name
        assert cap.status == _status(blocking, undecided), cap_name
        for blocker in cap.blocking:  # the rule's own message, as the report has it
            assert blocker.message == report.get(blocker.rule_id).message  # type: ignore[union-attr]
    assert caps["security_type:ConfidentialVM"].status in (UNKNOWN, UNSUPPORTED)
    assert "ConfidentialVM" not in caps.security_types
    assert caps.refused == ()
    assert caps.disk_controllers >= {"SCSI"}


def test_the_ready_sample_supports_nvme_and_accelerated_networking(platform_images: dict[str, Path]) -> None:
    report = azvhdaudit.audit(platform_images["gen2-ready.vhd"], "azure")
    caps = report.capabilities
    assert caps.disk_controllers == {"SCSI", "NVMe"}
    assert caps.accelerated_networking.value is True
    # audited for Trusted Launch (Azure's default for Generation 2): the boot manager's third-party CA is a warning
    # there, advice that does not block; Confidential VM's own OS list is judged by no rule, so it stays unknown
    trusted = caps["security_type:TrustedLaunch"]
    assert trusted.status == SUPPORTED and trusted.blocking_rules == ()
    assert any(n.startswith("secureboot.bootmgr_signature (warning under the audited target") for n in trusted.notes)
    assert caps["security_type:ConfidentialVM"].status == UNKNOWN
    assert caps.gallery_security_type == "TrustedLaunchSupported"


def test_the_blocked_sample_supports_little(platform_images: dict[str, Path]) -> None:
    caps = azvhdaudit.audit(platform_images["gen2-blocked.vhd"], "azure").capabilities
    assert caps.security_types == {"Standard"} and caps.disk_controllers == {"SCSI"}
    assert caps["security_type:TrustedLaunch"].blocking_rules == (
        "secureboot.bcd_integrity",
        "secureboot.bootmgr_signature",
        "signing.boot_drivers",
    )
    assert caps["disk_controller:NVMe"].blocking_rules == ("nvme.stornvme_boot_start",)
    assert caps.accelerated_networking.blocking_rules == ("platform_net.mana_driver",)
    notes = caps["security_type:TrustedLaunch"].notes
    assert any(n.startswith("secureboot.uefica2023_servicing (warning") for n in notes)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_manifest_under_the_2022_document(sample_path: Callable[[str], Path], name: str) -> None:
    entry = SAMPLES[name]
    report = azvhdaudit.audit(sample_path(name), "azure-2022")
    caps = report.capabilities
    _common(caps, entry)
    # azure-2022 runs none of the platform rules: what they decide is unknown, never supported
    for cap_name in ("disk_controller:NVMe", "accelerated_networking"):
        assert caps[cap_name].status in (UNKNOWN, UNSUPPORTED)
        assert {b.status for b in caps[cap_name].undecided} == {"not_run"}
    blocking, _ = _expected(entry, ("os.hyperv_drivers_enabled",))
    assert set(caps["disk_controller:SCSI"].blocking_rules) == blocking
    if entry["generation"] == 1:
        assert len(caps.refused) == 3
        assert caps["security_type:TrustedLaunch"].blocking_rules[0] == "facts.generation"
    else:
        assert caps["security_type:TrustedLaunch"].status == UNKNOWN
    assert caps.security_types == {"Standard"}


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


def test_cli_json_and_formats(platform_images: dict[str, Path]) -> None:
    image = str(platform_images["gen2-blocked.vhd"])
    code, text = _cli("capabilities", image, "--format", "json")
    assert code == 0
    data = json.loads(text)
    assert data["disk_controllers"] == ["SCSI"] and data["hyper_v_generation"] == "V2"
    nvme = next(c for c in data["capabilities"] if c["name"] == "disk_controller:NVMe")
    assert [b["rule_id"] for b in nvme["blocking"]] == ["nvme.stornvme_boot_start"]
    code, az = _cli("capabilities", image, "--format", "az")
    assert code == 0 and "az sig image-definition create" in az and "--upload-type Upload" in az
    code, bicep = _cli("capabilities", image, "--format", "bicep")
    assert code == 0 and "Microsoft.Compute/galleries/images@2023-07-03" in bicep
    code, md = _cli("capabilities", image, "--format", "markdown")
    assert "| disk controller NVMe | NVMe | no | `nvme.stornvme_boot_start` |" in md
    code, txt = _cli("capabilities", image)
    assert "blocked by nvme.stornvme_boot_start (warning)" in txt


def test_audit_outputs_carry_the_manifest(platform_images: dict[str, Path]) -> None:
    import jsonschema

    image = str(platform_images["gen2-ready.vhd"])
    _, text = _cli("audit", image, "--format", "json")
    data = json.loads(text)
    jsonschema.Draft202012Validator(load_schema()).validate(data)
    assert data["capabilities"]["disk_controllers"] == ["SCSI", "NVMe"]
    _, html = _cli("audit", image, "--format", "html")
    assert "<table class=capabilities>" in html
    assert html.index("<table class=capabilities>") < html.index("class=rule-id")
    _, txt = _cli("audit", image)
    assert "runs as: V2, Generalized, x64; security Standard, TrustedLaunch; disk controllers SCSI, NVMe" in txt
    _, md = _cli("audit", image, "--format", "markdown")
    assert "Runs as: V2, Generalized, x64" in md


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    code, text = _cli("capabilities", str(tmp_path / "none.vhd"))
    assert code != 0 and "none.vhd" in text and "Traceback" not in text


PLUGIN_TEST = """
def test_nvme_ready(azvhd_report, azvhd_capabilities):
    assert azvhd_report.capabilities.disk_controllers >= {"SCSI", "NVMe"}
    assert azvhd_capabilities.disk_controllers >= {"SCSI", "NVMe"}
"""


@pytest.mark.parametrize(("name", "passed"), [("gen2-ready.vhd", True), ("gen2-blocked.vhd", False)])
def test_pytest_fixture(
    pytester: pytest.Pytester,
    platform_images: dict[str, Path],
    name: str,
    passed: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_user=PLUGIN_TEST)
    result = pytester.runpytest_inprocess(
        "-p",
        "azvhdaudit.pytest_plugin",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore::pytest.PytestAssertRewriteWarning",
        "--azvhd-image",
        str(platform_images[name]),
        "-k",
        "test_nvme_ready",
    )
    result.assert_outcomes(passed=1 if passed else 0, failed=0 if passed else 1)
