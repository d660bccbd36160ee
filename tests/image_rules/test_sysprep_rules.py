"""sysprep.* rules and the Sysprep facts (registry + fake guest files)."""

from __future__ import annotations

from typing import Any

import pytest

from azvhdaudit.facts import SysprepFacts
from azvhdaudit.osinfo import classify_image_state, sysprep_facts
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.report import Status

from .helpers import CCS, FakeFiles, MakeCtx, image_facts, layered, run, software_tree, system_tree

STATE_KEY = r"Microsoft\Windows\CurrentVersion\Setup\State"
OOBE = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"


def sw(image_state: str | None) -> dict[str, Any]:
    return layered(software_tree(), {STATE_KEY: {"ImageState": image_state}} if image_state else {})


def ctx(
    make_ctx: MakeCtx,
    image_state: str | None = OOBE,
    files: dict[str, Any] | None = None,
    system: dict[str, Any] | None = None,
    image_type: str | None = None,
    **facts_kw: Any,
):
    hives = {"SOFTWARE": sw(image_state), "SYSTEM": system if system is not None else system_tree()}
    return make_ctx(
        facts=image_facts("gpt", **facts_kw), hives=hives, files=FakeFiles(files or {}), image_type=image_type
    )


@pytest.mark.parametrize(
    ("value", "state"),
    [
        (OOBE, "generalized"),
        ("IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT", "generalized"),
        ("IMAGE_STATE_COMPLETE", "specialized"),
        ("IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE", "specialized"),
        ("IMAGE_STATE_UNDEPLOYABLE", "undeployable"),
        ("SOMETHING", "unknown"),
        (None, "unknown"),
    ],
)
def test_classify(value: str | None, state: str) -> None:
    assert classify_image_state(value) == state


def test_facts_fall_back_to_state_ini_and_setup() -> None:
    ini = FakeFiles(
        {r"Windows\Setup\State\State.ini": "[State]\r\nImageState=IMAGE_STATE_COMPLETE\r\n".encode("utf-16")}
    )
    facts = sysprep_facts(RegistryView(), ini)
    assert facts.state == "specialized" and "State.ini" in facts.evidence[0]
    system = MemoryHive.build("SYSTEM", {"Setup": {"SetupType": 2, "CmdLine": "oobe\\windeploy.exe"}})
    facts = sysprep_facts(RegistryView(hives={"SYSTEM": system}), FakeFiles())
    assert facts.state == "generalized" and "windeploy" in facts.evidence[0]
    assert facts.missing_hives == ("SOFTWARE",)


@pytest.mark.parametrize(
    ("image_state", "image_type", "status"),
    [
        (OOBE, None, Status.PASS),
        ("IMAGE_STATE_COMPLETE", None, Status.PASS),
        (OOBE, "generalized", Status.PASS),
        ("IMAGE_STATE_COMPLETE", "generalized", Status.FAIL),
        (OOBE, "specialized", Status.FAIL),
        (None, None, Status.NOT_CHECKED),
        ("IMAGE_STATE_UNDEPLOYABLE", None, Status.WARNING),
    ],
)
def test_state(make_ctx: MakeCtx, image_state: str | None, image_type: str | None, status: Status) -> None:
    out = run("sysprep.state", ctx(make_ctx, image_state, image_type=image_type))
    assert out.status == status, out.message


def test_state_reports_the_state_as_the_actual(make_ctx: MakeCtx) -> None:
    out = run("sysprep.state", ctx(make_ctx, OOBE, files={r"Windows\System32\Sysprep\Sysprep_succeeded.tag": b""}))
    assert out.actual == "generalized" and "Sysprep_succeeded.tag present" in out.message


def test_state_uses_facts_extra(make_ctx: MakeCtx) -> None:
    c = ctx(make_ctx, None, sysprep=SysprepFacts(state="specialized", evidence=("from the data path",)))
    out = run("sysprep.state", c)
    assert out.status == Status.PASS and "from the data path" in out.message


@pytest.mark.parametrize(
    ("image_state", "image_type", "status"),
    [
        (OOBE, None, Status.PASS),
        ("IMAGE_STATE_GENERALIZE_RESEAL_TO_AUDIT", None, Status.FAIL),
        ("IMAGE_STATE_UNDEPLOYABLE", None, Status.FAIL),
        ("IMAGE_STATE_COMPLETE", None, Status.NOT_APPLICABLE),
        ("IMAGE_STATE_COMPLETE", "generalized", Status.FAIL),
        (None, "generalized", Status.NOT_CHECKED),
    ],
)
def test_oobe(make_ctx: MakeCtx, image_state: str | None, image_type: str | None, status: Status) -> None:
    assert run("sysprep.oobe_shutdown_not_audit", ctx(make_ctx, image_state, image_type=image_type)).status == status


@pytest.mark.parametrize(
    ("files", "system_extra", "image_state", "status"),
    [
        ({}, {}, OOBE, Status.PASS),
        ({r"Windows\Panther\Unattend.xml": b"<unattend/>"}, {}, OOBE, Status.FAIL),
        ({r"Windows\System32\Sysprep\unattend.xml": b"<unattend/>"}, {}, None, Status.WARNING),
        ({}, {"Setup": {"UnattendFile": "C:\\my.xml"}}, OOBE, Status.FAIL),
        ({r"Windows\Panther\Unattend.xml": b"x"}, {}, "IMAGE_STATE_COMPLETE", Status.NOT_APPLICABLE),
    ],
)
def test_unattend(
    make_ctx: MakeCtx, files: dict[str, Any], system_extra: dict[str, Any], image_state: str | None, status: Status
) -> None:
    system = layered(system_tree(), system_extra)
    assert run("sysprep.no_custom_unattend", ctx(make_ctx, image_state, files, system)).status == status


def test_unattend_without_files(make_ctx: MakeCtx) -> None:
    c = make_ctx(facts=image_facts("gpt"), hives={"SOFTWARE": sw(OOBE)})
    assert run("sysprep.no_custom_unattend", c).status == Status.NOT_CHECKED


@pytest.mark.parametrize(
    ("files", "status"),
    [
        ({}, Status.PASS),
        ({"Windows\\Panther": None}, Status.PASS),
        ({r"Windows\Panther\setupact.log": b"log", r"Windows\Panther\UnattendGC\x.log": b"x"}, Status.WARNING),
    ],
)
def test_panther(make_ctx: MakeCtx, files: dict[str, Any], status: Status) -> None:
    out = run("sysprep.panther_deleted", ctx(make_ctx, OOBE, files))
    assert out.status == status
    if status == Status.WARNING:
        assert "setupact.log" in out.message


@pytest.mark.parametrize(
    ("files", "status"),
    [({}, Status.PASS), ({r"Packages\Plugins\Microsoft.Compute.CustomScriptExtension\1.10\x": b""}, Status.WARNING)],
)
def test_extensions(make_ctx: MakeCtx, files: dict[str, Any], status: Status) -> None:
    assert run("sysprep.extensions_removed", ctx(make_ctx, OOBE, files)).status == status


@pytest.mark.parametrize(
    ("keys", "status"),
    [
        ({}, Status.PASS),
        ({"CertSvc": {"Start": 2, "ImagePath": "certsrv.exe"}}, Status.WARNING),
        ({"DHCPServer": {"Start": 4, "ImagePath": "svchost.exe -k DHCPServer"}}, Status.PASS),
        ({"CertSvc": {"Start": 2}}, Status.PASS),  # a leftover key, no installed service
        ({r"NTDS\RID Values": {}}, Status.PASS),  # every Windows has this
        ({r"NTDS\Parameters": {"DSA Working Directory": "C:\\Windows\\NTDS"}}, Status.WARNING),
    ],
)
def test_roles(make_ctx: MakeCtx, keys: dict[str, dict[str, Any]], status: Status) -> None:
    system = layered(system_tree(), {rf"{CCS}\Services\{n}": v for n, v in keys.items()})
    assert run("sysprep.role_supported", ctx(make_ctx, OOBE, system=system)).status == status


@pytest.mark.parametrize(
    ("hiberboot", "hiberfil", "status"),
    [(0, False, Status.PASS), (1, False, Status.WARNING), (0, True, Status.WARNING), (None, None, Status.PASS)],
)
def test_hibernation(make_ctx: MakeCtx, hiberboot: int | None, hiberfil: bool | None, status: Status) -> None:
    extra = {rf"{CCS}\Control\Session Manager\Power": {"HiberbootEnabled": hiberboot}} if hiberboot is not None else {}
    system = layered(system_tree(), extra)
    out = run("sysprep.hibernation_off", ctx(make_ctx, OOBE, system=system, hiberfil_present=hiberfil))
    assert out.status == status


def test_hibernation_without_evidence(make_ctx: MakeCtx) -> None:
    c = make_ctx(facts=image_facts("gpt", hiberfil_present=None), hives={})
    assert run("sysprep.hibernation_off", c).status == Status.NOT_CHECKED


@pytest.mark.parametrize(
    "rule_id", ["sysprep.no_custom_unattend", "sysprep.panther_deleted", "sysprep.extensions_removed"]
)
def test_file_rules_without_files(make_ctx: MakeCtx, rule_id: str) -> None:
    c = make_ctx(facts=image_facts("gpt"), hives={"SOFTWARE": sw(OOBE), "SYSTEM": system_tree()}, files=None)
    assert run(rule_id, c).status == Status.NOT_CHECKED


@pytest.mark.parametrize(
    "rule_id",
    [
        "sysprep.oobe_shutdown_not_audit",
        "sysprep.no_custom_unattend",
        "sysprep.panther_deleted",
        "sysprep.extensions_removed",
        "sysprep.role_supported",
    ],
)
def test_generalize_rules_skip_specialized_images(make_ctx: MakeCtx, rule_id: str) -> None:
    out = run(rule_id, ctx(make_ctx, OOBE, image_type="specialized"))
    assert out.status == Status.NOT_APPLICABLE and "image_type option" in out.message


def test_roles_without_system(make_ctx: MakeCtx) -> None:
    c = make_ctx(facts=image_facts("gpt"), hives={"SOFTWARE": sw(OOBE)}, files=FakeFiles())
    assert run("sysprep.role_supported", c).status == Status.NOT_CHECKED


STATE_INI = {r"Windows\Setup\State\State.ini": f"[State]\r\nImageState={OOBE}\r\n".encode("utf-16")}
SETUP = {"Setup": {"SetupType": 2, "CmdLine": "oobe\\windeploy.exe"}}


@pytest.mark.parametrize(
    ("rule_id", "readable", "status", "says"),
    [
        # hive-missing: State.ini (and SYSTEM\Setup) cannot stand in for an ImageState that was not read
        ("sysprep.state", ("SYSTEM",), Status.NOT_CHECKED, "ImageState could not be read"),
        ("sysprep.oobe_shutdown_not_audit", ("SYSTEM",), Status.NOT_CHECKED, f"State.ini says ImageState = {OOBE}"),
        # SYSTEM unread: ImageState decides, and the verdict claims nothing from SYSTEM
        ("sysprep.state", ("SOFTWARE",), Status.PASS, "the image is generalized"),
        ("sysprep.oobe_shutdown_not_audit", ("SOFTWARE",), Status.PASS, "resealed to OOBE"),
        ("sysprep.state", ("SOFTWARE", "SYSTEM"), Status.PASS, "the image is generalized"),
    ],
)
def test_state_hive_missing(
    make_ctx: MakeCtx, rule_id: str, readable: tuple[str, ...], status: Status, says: str
) -> None:
    trees = {"SOFTWARE": sw(OOBE), "SYSTEM": layered(system_tree(), SETUP)}
    c = make_ctx(facts=image_facts("gpt"), hives={h: trees[h] for h in readable}, files=FakeFiles(STATE_INI))
    out = run(rule_id, c)
    assert out.status == status and says in out.message, out.message
    assert {e.hive for e in out.evidence if e.hive} <= set(readable), out.evidence


def test_state_from_setup_shows_setup(make_ctx: MakeCtx) -> None:
    """SYSTEM\\Setup is evidence of a verdict only where it decided the state (no ImageState, no State.ini)."""
    c = make_ctx(
        facts=image_facts("gpt"),
        hives={"SOFTWARE": sw(None), "SYSTEM": layered(system_tree(), SETUP)},
        files=FakeFiles(),
    )
    out = run("sysprep.state", c)
    assert out.status == Status.PASS and out.actual == "generalized"
    assert any(e.hive == "SYSTEM" and e.key.endswith("Setup") for e in out.evidence)


@pytest.mark.parametrize(
    ("readable", "hiberfil", "status"),
    [
        (("SOFTWARE",), False, Status.NOT_CHECKED),  # hive-missing: HiberbootEnabled unknown
        (("SOFTWARE",), True, Status.WARNING),  # hiberfil.sys alone is a finding
        (("SOFTWARE", "SYSTEM"), None, Status.NOT_CHECKED),  # the file was not looked for
    ],
)
def test_hibernation_hive_missing(
    make_ctx: MakeCtx, readable: tuple[str, ...], hiberfil: bool | None, status: Status
) -> None:
    trees = {"SOFTWARE": sw(OOBE), "SYSTEM": system_tree()}
    c = make_ctx(facts=image_facts("gpt", hiberfil_present=hiberfil), hives={h: trees[h] for h in readable}, files=None)
    out = run("sysprep.hibernation_off", c)
    assert out.status == status, out.message
    assert {e.hive for e in out.evidence if e.hive} <= set(readable)
