"""os.* rules and the OS facts they read (SOFTWARE / SYSTEM hives built in memory)."""

from __future__ import annotations

from typing import Any

import pytest

from azvhdaudit.osinfo import os_facts
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.report import Status

from .helpers import CCS, MakeCtx, image_facts, layered, run, software_tree, system_tree

GENERALIZED = {r"Microsoft\Windows\CurrentVersion\Setup\State": {"ImageState": "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"}}
SPECIALIZED = {r"Microsoft\Windows\CurrentVersion\Setup\State": {"ImageState": "IMAGE_STATE_COMPLETE"}}


def ctx(
    make_ctx: MakeCtx,
    software: dict[str, Any] | None = None,
    system: dict[str, Any] | None = None,
    generation: int = 1,
    **kw: Any,
):
    hives = {}
    if software is not None:
        hives["SOFTWARE"] = software
    if system is not None:
        hives["SYSTEM"] = system
    facts = image_facts("gpt" if generation == 2 else "mbr", os=None, generation=generation)
    return make_ctx(facts=facts, hives=hives, **kw)


def test_os_facts_server_2019() -> None:
    view = RegistryView(
        hives={
            "SOFTWARE": MemoryHive.build("SOFTWARE", software_tree(ReleaseId="1809")),
            "SYSTEM": MemoryHive.build("SYSTEM", system_tree()),
        }
    )
    f = os_facts(view)
    assert (f.build, f.ubr, f.current_version, f.display_version) == (17763, 5458, "10.0", "1809")
    assert (f.product_type, f.architecture, f.installation_type) == ("ServerNT", "AMD64", "Server")
    assert f.is_server and f.is_64bit


def test_os_facts_windows_11_and_win7() -> None:
    win11 = RegistryView(
        hives={
            "SOFTWARE": MemoryHive.build(
                "SOFTWARE", software_tree(22631, product="Windows 10 Pro", installation="Client", DisplayVersion="23H2")
            )
        }
    )
    f = os_facts(win11)
    assert f.name == "Windows 11 Pro" and f.display_version == "23H2"
    win7 = RegistryView(
        hives={
            "SOFTWARE": MemoryHive.build(
                "SOFTWARE", software_tree(7601, ubr=None, product="Windows 7 Enterprise", installation=None, major=None)
            )
        }
    )
    f7 = os_facts(win7)
    assert (f7.current_version, f7.build, f7.ubr, f7.installation_type) == ("6.3", 7601, None, None)


def test_os_facts_missing_hives() -> None:
    f = os_facts(RegistryView())
    assert f.build is None and f.architecture is None and f.product_type is None


@pytest.mark.parametrize(
    ("software", "status", "words"),
    [
        (software_tree(), Status.PASS, "Windows Server 2019 Datacenter, 10.0.17763.5458"),
        (software_tree(22000, product="Windows 10 Enterprise", installation="Client"), Status.PASS, "Windows 11"),
        ({r"Microsoft\Windows NT\CurrentVersion": {}}, Status.NOT_CHECKED, "ProductName"),
        (None, Status.NOT_CHECKED, "not opened"),
    ],
)
def test_identify(make_ctx: MakeCtx, software: Any, status: Status, words: str) -> None:
    out = run("os.identify", ctx(make_ctx, software))
    assert out.status == status and words in out.message, out.message


@pytest.mark.parametrize(
    ("arch", "status"),
    [("AMD64", Status.PASS), ("x86", Status.WARNING), ("ARM64", Status.WARNING), (None, Status.NOT_CHECKED)],
)
def test_architecture(make_ctx: MakeCtx, arch: str | None, status: Status) -> None:
    assert run("os.architecture_64bit", ctx(make_ctx, software_tree(), system_tree(arch=arch))).status == status


@pytest.mark.parametrize(
    ("arch", "ptype", "state", "image_type", "status", "words"),
    [
        ("AMD64", "ServerNT", SPECIALIZED, None, Status.NOT_APPLICABLE, "not 32-bit"),
        ("x86", "WinNT", GENERALIZED, None, Status.FAIL, "generalized 32-bit"),
        ("x86", "ServerNT", SPECIALIZED, "generalized", Status.FAIL, "image_type option"),
        ("x86", "ServerNT", SPECIALIZED, None, Status.PASS, "specialized 32-bit"),
        ("x86", "WinNT", SPECIALIZED, None, Status.WARNING, "1 GB"),
        ("x86", "WinNT", {}, None, Status.WARNING, "unknown"),
        (None, "WinNT", {}, None, Status.NOT_CHECKED, "PROCESSOR_ARCHITECTURE"),
    ],
)
def test_x86_specialized_only(
    make_ctx: MakeCtx,
    arch: str | None,
    ptype: str,
    state: dict[str, Any],
    image_type: str | None,
    status: Status,
    words: str,
) -> None:
    client = ptype == "WinNT"
    software = layered(
        software_tree(
            7601, product="Windows 7 Enterprise" if client else "Windows Server 2008 R2", installation=None, major=None
        ),
        state,
    )
    out = run("os.x86_specialized_only", ctx(make_ctx, software, system_tree(ptype, arch), image_type=image_type))
    assert out.status == status, out.message
    assert words in out.message


def test_architecture_from_syswow64(make_ctx: MakeCtx) -> None:
    c = ctx(make_ctx, software_tree(), system_tree(arch=None), files={"Windows\\SysWOW64\\kernel32.dll": b"MZ"})
    out = run("os.architecture_64bit", c)
    assert out.status == Status.PASS and "SysWOW64" in out.message


@pytest.mark.parametrize(
    ("files", "words"),
    [
        # hive-missing: SysWOW64 shows 64-bit, but not x64 rather than Arm64; PROCESSOR_ARCHITECTURE decides
        ({"Windows\\SysWOW64\\kernel32.dll": b"MZ"}, "SysWOW64 exists"),
        ({}, "no Windows\\SysWOW64"),
    ],
)
def test_architecture_hive_missing(make_ctx: MakeCtx, files: dict[str, bytes], words: str) -> None:
    out = run("os.architecture_64bit", ctx(make_ctx, software_tree(), None, files=files))
    assert out.status == Status.NOT_CHECKED and words in out.message, out.message
    assert not [e for e in out.evidence if e.hive == "SYSTEM"]


@pytest.mark.parametrize(
    ("build", "status"),
    [(7601, Status.PASS), (20348, Status.PASS), (7600, Status.FAIL), (6002, Status.WARNING), (3790, Status.FAIL)],
)
def test_min_version(make_ctx: MakeCtx, build: int, status: Status) -> None:
    assert run("os.min_version", ctx(make_ctx, software_tree(build))).status == status


def test_min_version_without_build(make_ctx: MakeCtx) -> None:
    software = {r"Microsoft\Windows NT\CurrentVersion": {"ProductName": "Windows"}}
    assert run("os.min_version", ctx(make_ctx, software)).status == Status.NOT_CHECKED


@pytest.mark.parametrize(
    ("generation", "build", "arch", "status"),
    [
        (1, 7601, "AMD64", Status.NOT_APPLICABLE),
        (2, 17763, "AMD64", Status.PASS),
        (2, 7601, "AMD64", Status.FAIL),
        (2, 9600, "x86", Status.FAIL),
        (2, 9600, None, Status.NOT_CHECKED),
    ],
)
def test_gen2(make_ctx: MakeCtx, generation: int, build: int, arch: str | None, status: Status) -> None:
    c = ctx(make_ctx, software_tree(build), system_tree(arch=arch), generation=generation)
    assert run("os.gen2_prerequisites", c).status == status


@pytest.mark.parametrize(
    ("ptype", "ntds", "status"),
    [
        ("ServerNT", False, Status.PASS),
        ("LanmanNT", True, Status.MANUAL),
        ("ServerNT", True, Status.MANUAL),
        ("LanmanNT", False, Status.MANUAL),
    ],
)
def test_domain_controller(make_ctx: MakeCtx, ptype: str, ntds: bool, status: Status) -> None:
    system = system_tree(ptype)
    if ntds:
        system[rf"{CCS}\Services\NTDS\Parameters"] = {"DSA Database file": "C:\\Windows\\NTDS\\ntds.dit"}
    out = run("os.domain_controller", ctx(make_ctx, software_tree(), system))
    assert out.status == status
    if status == Status.MANUAL:
        assert "DSRM" in out.message and "KB2904015" in out.message


def test_domain_controller_without_system(make_ctx: MakeCtx) -> None:
    assert run("os.domain_controller", ctx(make_ctx, software_tree())).status == Status.NOT_CHECKED


def test_facts_os_wins_over_registry(make_ctx: MakeCtx) -> None:
    # the data path's OSFacts are used when present (no hive needed)
    c = make_ctx(facts=image_facts("gpt"))
    out = run("os.identify", c)
    assert out.status == Status.PASS and "17763" in out.message


def test_missing_software_is_named(make_ctx: MakeCtx) -> None:
    c = ctx(make_ctx, None, system_tree(), unavailable={"SOFTWARE": "the SOFTWARE hive cannot be read: torn bin"})
    for rule_id in ("os.identify", "os.min_version"):
        out = run(rule_id, c)
        assert out.status == Status.NOT_CHECKED and "torn bin" in out.message, out.message
