"""Profiles and baselines: ``azure-2022`` is the old ``azure`` profile under its document's name, ``azure`` adds the
platform rules, and the deployment target decides which platform rules are required.

The expectation for ``azure-2022`` is the code's own output, recorded by tests/profiles_record.py from the package
at the commit it names (``recorded_from``), never written by hand: first the old ``azure`` profile's (5a3cf907),
then ``azure-2022``'s where the severity of sysprep.state, disk.vhd_footer_valid and disk.boot_files_present was
made REQUIRED (every other verdict field as the old profile gave it).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from profiles_record import RECORDED, audits, load, manifest, normalize, resolve_kwargs, sample_path, unpack_samples

import azvhdaudit
from azvhdaudit.engine import PROFILES, audit_context, select_rules
from azvhdaudit.errors import ProfileError
from azvhdaudit.facts import ContainerFacts, ImageFacts
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.report import Severity, Status
from azvhdaudit.rules.base import (
    BASELINES,
    DISK_CONTROLLERS,
    SECURITY_TYPES,
    AuditContext,
    AuditOptions,
    Target,
    problem_status,
)
from azvhdaudit.rules.base import PROFILES as PROFILE_BASELINES

RECORDING = load(RECORDED)
RERECORD = "python tests/profiles_record.py --ref HEAD --profile azure-2022"


def image_facts(generation: int | None) -> ImageFacts:
    container = ContainerFacts(path="<memory>", format="raw", subtype=None, virtual_size=0, file_size=0)
    return ImageFacts(source="<memory>", container=container, generation=generation)


NAMES = sorted(audits())


#: the fields of a result that make its verdict
VERDICT = ("disk", "rule_id", "status", "severity", "area", "waived_status")


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    unpack_samples(out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_azure_2022_gives_exactly_what_the_old_azure_profile_gave(sample_dir: Path, name: str) -> None:
    recorded = RECORDING["samples"].get(name)
    assert recorded is not None, f"{name} is not in {RECORDED.name}: run {RERECORD}"
    image, kwargs = audits()[name]
    assert recorded["kwargs"] == kwargs
    by_name = {s["name"]: s for s in manifest()}
    for used, digest in recorded["sha256"].items():
        now = hashlib.sha256(sample_path(by_name[used]).read_bytes()).hexdigest()
        assert now == digest, f"{used} changed since it was recorded: run {RERECORD}"
    report = azvhdaudit.audit(str(sample_dir / image), profile="azure-2022", **resolve_kwargs(kwargs, sample_dir))
    now = normalize(report.to_dict(), sample_dir)
    old = [(r["disk"], r["rule_id"]) for r in recorded["results"]]
    assert [(r["disk"], r["rule_id"]) for r in now["results"]] == old
    for was, new in zip(recorded["results"], now["results"], strict=True):
        # the verdict; messages and evidence have since been made more exact on purpose
        assert {k: new.get(k) for k in VERDICT} == {k: was.get(k) for k in VERDICT}, (was["disk"], was["rule_id"])
    assert now["summary"] == recorded["summary"]


def test_the_recording_holds_verdicts_of_every_kind() -> None:
    # a recording of nothing but passes would hold the comparison to little
    statuses = {r["status"] for s in RECORDING["samples"].values() for r in s["results"]}
    assert {"pass", "fail", "warning", "not_applicable", "not_checked", "manual"} <= statuses
    disks = {r["disk"] for s in RECORDING["samples"].values() for r in s["results"]}
    assert "vm" in disks and any(d.startswith("data") for d in disks)
    assert RECORDING["profile"] == "azure-2022" and len(RECORDING["recorded_from"]) == 40


def test_profiles_run_their_baselines() -> None:
    assert PROFILE_BASELINES == {
        "azure": ("azure-2022", "azure-platform"),
        "azure-2022": ("azure-2022",),
        "azure-2017": ("azure-2017",),
        "azure-marketplace": ("azure-2022", "azure-platform", "azure-marketplace"),
    }
    assert PROFILES == ("azure", "azure-2022", "azure-2017", "azure-marketplace")
    assert set(BASELINES) == {"azure-2022", "azure-2017", "azure-platform", "azure-marketplace"}
    azure, doc, old = ({r.id for r in select_rules(p)} for p in PROFILES[:3])
    platform = {r.id for r in select_rules("azure") if "azure-platform" in r.meta.baselines}
    assert doc < azure and azure == doc | platform
    assert all(r.meta.baselines == ("azure-platform",) for r in select_rules("azure") if r.id in platform)
    assert not platform & old
    assert "rdp.security_layer" in old and "rdp.security_layer" not in doc


def test_an_unknown_profile_names_the_valid_ones() -> None:
    with pytest.raises(ProfileError, match="azure-2022"):
        select_rules("azure-2023")


@pytest.mark.parametrize(
    ("given", "generation", "security", "controller"),
    [
        (Target(), 2, "TrustedLaunch", "SCSI"),
        (Target(), 1, "Standard", "SCSI"),
        (Target(), None, "Standard", "SCSI"),
        (Target("Standard"), 2, "Standard", "SCSI"),
        (Target("ConfidentialVM", "NVMe"), 1, "ConfidentialVM", "NVMe"),
        (Target.of({"security_type": "trustedlaunch", "disk_controller": "nvme"}), 1, "TrustedLaunch", "NVMe"),
    ],
)
def test_the_target_resolves_azure_defaults_from_the_generation(
    given: Target, generation: int | None, security: str, controller: str
) -> None:
    ctx = AuditContext(
        registry=RegistryView(hives={}), facts=image_facts(generation), options=AuditOptions(target=given)
    )
    assert (ctx.security_type(), ctx.disk_controller()) == (security, controller)
    assert ctx.secure_boot_required() == (security != "Standard")
    assert ctx.nvme_required() == (controller == "NVMe")
    resolved = given.resolved(generation)
    assert resolved["effective_security_type"] == security and resolved["effective_disk_controller"] == controller


@pytest.mark.parametrize("bad", [{"security_type": "Trusted"}, {"disk_controller": "IDE"}, {"gpu": "x"}, "NVMe"])
def test_a_bad_target_is_a_profile_error(bad: Any) -> None:
    with pytest.raises(ProfileError):
        azvhdaudit.audit("never-opened.vhd", target=bad)


def test_target_constants_and_status() -> None:
    assert SECURITY_TYPES == ("Standard", "TrustedLaunch", "ConfidentialVM") and DISK_CONTROLLERS == ("SCSI", "NVMe")
    assert problem_status(Severity.REQUIRED, True) is Status.FAIL
    assert problem_status(Severity.REQUIRED, False) is Status.WARNING
    assert azvhdaudit.Target is Target


def test_the_report_carries_the_target(sample_dir: Path) -> None:
    report = azvhdaudit.audit(
        str(sample_dir / "gen1-azure.vhd"), target={"disk_controller": "NVMe"}, select=["rdp.port"]
    )
    assert report.target == {
        "security_type": None,
        "disk_controller": "NVMe",
        "effective_security_type": "Standard",
        "effective_disk_controller": "NVMe",
    }
    assert report.to_dict()["target"] == report.target
    assert report.options["verify_signatures"] is False


def test_the_context_profile_is_the_profile_name() -> None:
    # rules that differ between documents read ctx.profile: under "azure" they behave as under "azure-2022"
    ctx = AuditContext(registry=RegistryView(hives={}), facts=image_facts(None))
    audit_context(ctx, "azure-2022", select=["rdp.port"])
    assert ctx.profile == "azure-2022"


def test_the_cli_and_the_plugin_offer_every_profile() -> None:
    from azvhdaudit import cli

    assert cli.PROFILES == PROFILES
    out = cli._rule_rows("azure-2022")
    assert {r["id"] for r in out} == {r.id for r in select_rules("azure-2022")} | {
        r.id for r in select_rules("azure-2022", role="vm")
    } | {r.id for r in select_rules("azure-2022", role="data")}


def test_a_bad_target_built_directly_is_a_profile_error() -> None:
    with pytest.raises(ProfileError, match="security_type must be one of Standard, TrustedLaunch, ConfidentialVM"):
        Target("Trusted")
    with pytest.raises(ProfileError, match="disk_controller"):
        Target(disk_controller="IDE")
    assert Target("confidentialvm", "scsi") == Target("ConfidentialVM", "SCSI")
