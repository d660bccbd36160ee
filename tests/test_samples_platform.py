"""The platform samples (samples/manifest.json ``platform_samples``): Generation 2 images built for the Trusted
Launch, driver-signature, NVMe and networking rules, audited under the "azure" profile and their target."""

from __future__ import annotations

import hashlib
import io
import json
import lzma
from pathlib import Path

import pytest

import azvhdaudit
from azvhdaudit import cli

#: slow: audits the platform samples, complete signature mode
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
MANIFEST = json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))
PLATFORM = {entry["name"]: entry for entry in MANIFEST["platform_samples"]}


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("platform-samples")
    paths = {}
    for name, entry in PLATFORM.items():
        target = out / name
        with lzma.open(SAMPLES / entry["file"]) as src, open(target, "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        paths[name] = target
    return paths


def test_the_two_platform_samples_are_listed() -> None:
    assert set(PLATFORM) == {"gen2-ready.vhd", "gen2-blocked.vhd"}
    for entry in PLATFORM.values():
        assert entry["profile"] == "azure" and entry["generation"] == 2 and entry["format"] == "vhd"
        assert entry["target"] == {"security_type": "TrustedLaunch", "disk_controller": "NVMe"}
        assert entry["os"]["build"] >= 17763
        # small enough to commit: the 128 MiB disks compress to a few hundred KB
        assert (SAMPLES / entry["file"]).stat().st_size < 600_000


@pytest.mark.parametrize("name", sorted(PLATFORM))
def test_committed_file_matches_manifest_digest(name: str) -> None:
    entry = PLATFORM[name]
    assert hashlib.sha256((SAMPLES / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("name", sorted(PLATFORM))
def test_audit_gives_exactly_the_expected_verdicts(images: dict[str, Path], name: str) -> None:
    entry = PLATFORM[name]
    report = azvhdaudit.audit(images[name], entry["profile"], with_lsa=True, target=entry["target"])
    by_status: dict[str, set[str]] = {}
    for result in report.to_dict()["results"]:
        by_status.setdefault(result["status"], set()).add(result["rule_id"])
    assert by_status.get("fail", set()) == set(entry["expected_fail"])
    assert by_status.get("warning", set()) == set(entry["expected_warning"])
    assert by_status.get("not_checked", set()) == set(entry["expected_not_checked"])
    assert not by_status.get("error"), by_status.get("error")


def test_ready_sample_drivers_are_trusted_on_the_fast_path(images: dict[str, Path]) -> None:
    report = azvhdaudit.audit(images["gen2-ready.vhd"], "azure", target=PLATFORM["gen2-ready.vhd"]["target"])
    result = report["signing.boot_drivers"]
    assert result.status.value == "pass"
    summary = result.evidence[0].actual
    assert summary["mode"] == "fast" and summary["drivers"] == 11 and summary["trusted"] == 11
    # headers and certificate tables only: 11 drivers of 94 KB each, about 25 KB read of each
    assert summary["bytes_read"] < 11 * 30_000


def _cli(*argv: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue() + err.getvalue()


def test_cli_names_each_blocking_driver_certificate_and_control_set(images: dict[str, Path]) -> None:
    code, text = _cli(
        "audit",
        str(images["gen2-blocked.vhd"]),
        "--security-type",
        "TrustedLaunch",
        "--disk-controller",
        "NVMe",
        "--format",
        "json",
    )
    assert code == 1
    results = {r["rule_id"]: r for r in json.loads(text)["results"]}
    signing = results["signing.boot_drivers"]
    assert signing["status"] == "fail"
    assert (
        "contosofs (Windows\\System32\\drivers\\contosofs.sys): embedded signature by CN=Contoso Storage Driver "
        "(self-signed sample)" in signing["message"]
    )
    assert "the chain ends at a self-signed certificate" in signing["message"]
    assert "msfilter (Windows\\System32\\drivers\\msfilter.sys)" in signing["message"]
    assert "Microsoft Root Certificate Authority 2011" in signing["message"]
    assert "sc.exe config contosofs start= demand" in signing["remediation"]
    stornvme = results["nvme.stornvme_boot_start"]
    assert stornvme["status"] == "fail" and "ControlSet001" in stornvme["message"]
    assert "StartOverride" in stornvme["message"]
    assert "testsigning" in results["secureboot.bcd_integrity"]["message"]


def test_standard_target_turns_the_signature_failure_into_a_warning(images: dict[str, Path]) -> None:
    report = azvhdaudit.audit(images["gen2-blocked.vhd"], "azure", target={"security_type": "Standard"})
    assert report["signing.boot_drivers"].status.value == "warning"


def test_complete_mode_reads_whole_drivers(images: dict[str, Path]) -> None:
    fast = azvhdaudit.audit(images["gen2-blocked.vhd"], "azure", target=PLATFORM["gen2-blocked.vhd"]["target"])
    full = azvhdaudit.audit(
        images["gen2-blocked.vhd"], "azure", target=PLATFORM["gen2-blocked.vhd"]["target"], verify_signatures=True
    )
    f, c = (r["signing.boot_drivers"] for r in (fast, full))
    assert f.status.value == c.status.value == "fail"
    sf, sc = f.evidence[0].actual, c.evidence[0].actual
    assert sf["mode"] == "fast" and sc["mode"] == "complete"
    assert sc["bytes_read"] > 3 * sf["bytes_read"]
    # stornvme is demand-start here: ten boot drivers are trusted, two are not
    assert sc["trusted"] == sf["trusted"] == 10 and sc["not_trusted"] == sf["not_trusted"] == 2


def test_old_samples_stay_on_the_2022_profile() -> None:
    assert {e["profile"] for e in MANIFEST["samples"]} == {"azure-2022"}


def test_platform_entries_describe_their_misconfigurations() -> None:
    blocked = PLATFORM["gen2-blocked.vhd"]
    named = {m["check"] for m in blocked["misconfigurations"]}
    assert set(blocked["expected_fail"]) <= named and set(blocked["expected_warning"]) <= named
    assert "expected_not_checked" in blocked
