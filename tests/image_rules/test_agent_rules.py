"""agent.installed, the Hyper-V integration rules and other hypervisors' tools; the real Windows 7 SYSTEM hive."""

from __future__ import annotations

import io
import lzma
from typing import Any

import pytest

from azvhdaudit.osinfo import agent_facts, mounted_volume, os_facts
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import open_hive
from azvhdaudit.report import Status

from .helpers import CCS, REALDATA, FakeFiles, MakeCtx, image_facts, layered, run, software_tree, system_tree

AGENT = {
    rf"{CCS}\Services\WindowsAzureGuestAgent": {
        "Start": 2,
        "ImagePath": r"C:\WindowsAzure\GuestAgent_2.7.41491.1102_2024-01-01_000000\WindowsAzureGuestAgent.exe",
    },
    rf"{CCS}\Services\RdAgent": {"Start": 2, "ImagePath": r"C:\WindowsAzure\Packages\WaAppAgent.exe"},
}
AGENT_FILES = {
    r"WindowsAzure\GuestAgent_2.7.41491.1010_2023-06-01_000000\WindowsAzureGuestAgent.exe": b"MZ",
    r"WindowsAzure\GuestAgent_2.7.41491.1102_2024-01-01_000000\WindowsAzureGuestAgent.exe": b"MZ",
}


def ctx(
    make_ctx: MakeCtx,
    system_extra: dict[str, Any] | None = None,
    files: dict[str, Any] | None = None,
    build: int = 17763,
    software_extra: dict[str, Any] | None = None,
    with_system: bool = True,
):
    hives: dict[str, Any] = {"SOFTWARE": layered(software_tree(build), software_extra or {})}
    if with_system:
        hives["SYSTEM"] = layered(system_tree(), system_extra or {})
    return make_ctx(facts=image_facts("gpt", os=None), hives=hives, files=FakeFiles(files or {}))


def test_agent_facts_version_from_folder() -> None:
    view = RegistryView(hives={"SYSTEM": MemoryHive.build("SYSTEM", layered(system_tree(), AGENT))})
    facts = agent_facts(view, FakeFiles(AGENT_FILES))
    assert facts.version == "2.7.41491.1102"
    assert facts.services["RdAgent"].start == 2 and facts.services["WindowsAzureNetAgentSvc"] is None


@pytest.mark.parametrize(
    ("extra", "status", "words"),
    [
        (AGENT, Status.PASS, "version 2.7.41491.1102"),
        ({}, Status.WARNING, "WindowsAzureGuestAgent service is not installed"),
        ({rf"{CCS}\Services\WindowsAzureGuestAgent": {"Start": 2}}, Status.WARNING, "RdAgent"),
        (layered(AGENT, {rf"{CCS}\Services\RdAgent": {"Start": 4}}), Status.WARNING, "starts 4"),
    ],
)
def test_agent_installed(make_ctx: MakeCtx, extra: dict[str, Any], status: Status, words: str) -> None:
    out = run("agent.installed", ctx(make_ctx, extra, AGENT_FILES))
    assert out.status == status and words in out.message, out.message


def test_agent_without_system(make_ctx: MakeCtx) -> None:
    assert run("agent.installed", ctx(make_ctx, with_system=False)).status == Status.NOT_CHECKED


DRIVERS = r"Windows\System32\drivers"


@pytest.mark.parametrize(
    ("build", "files", "status", "words"),
    [
        (17763, {}, Status.NOT_APPLICABLE, "in the box"),
        (
            7601,
            {
                rf"{DRIVERS}\vmbus.sys": (6, 1, 7601, 1),
                rf"{DRIVERS}\storvsc.sys": (6, 1, 7601, 1),
                rf"{DRIVERS}\vmstorfl.sys": (6, 3, 9600, 18907),
            },
            Status.PASS,
            "vmstorfl.sys 6.3.9600.18907",
        ),
        (
            7601,
            {
                rf"{DRIVERS}\vmbus.sys": (6, 1, 7601, 1),
                rf"{DRIVERS}\storvsc.sys": (6, 1, 7601, 1),
                rf"{DRIVERS}\vmstorfl.sys": (6, 1, 7601, 17514),
            },
            Status.FAIL,
            "< 6.3.9600.18907 (KB4072650)",
        ),
        (
            9200,
            {rf"{DRIVERS}\vmbus.sys": (6, 2, 9200, 1), rf"{DRIVERS}\vmstorfl.sys": (6, 3, 9600, 18080)},
            Status.FAIL,
            "storvsc.sys is not present",
        ),
        (
            9600,
            {rf"{DRIVERS}\vmbus.sys": (6, 3, 9600, 1), rf"{DRIVERS}\storvsc.sys": (6, 3, 9600, 1)},
            Status.FAIL,
            "vmstorfl.sys is missing",
        ),
    ],
)
def test_integration_components(
    make_ctx: MakeCtx, build: int, files: dict[str, Any], status: Status, words: str
) -> None:
    out = run("os.hyperv_integration_components", ctx(make_ctx, files=files, build=build))
    assert out.status == status and words in out.message, out.message


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({}, Status.PASS),
        ({rf"{CCS}\Services\storvsc": {"Start": 4}}, Status.FAIL),
        ({rf"{CCS}\Services\netvsc": None}, Status.WARNING),
    ],
)
def test_hyperv_drivers(make_ctx: MakeCtx, extra: dict[str, Any], status: Status) -> None:
    assert run("os.hyperv_drivers_enabled", ctx(make_ctx, extra)).status == status


@pytest.mark.parametrize(
    ("system_extra", "software_extra", "status", "words"),
    [
        ({}, {}, Status.PASS, "no services"),
        ({rf"{CCS}\Services\VMTools": {"Start": 2}}, {}, Status.WARNING, "VMware Tools: VMTools"),
        ({rf"{CCS}\Services\VBoxGuest": {"Start": 4}}, {}, Status.PASS, "no services"),
        (
            {},
            {
                r"Microsoft\Windows\CurrentVersion\Uninstall\{X}": {
                    "DisplayName": "VMware Tools",
                    "DisplayVersion": "12.1.0",
                }
            },
            Status.WARNING,
            "installed: VMware Tools 12.1.0",
        ),
        ({rf"{CCS}\Services\xenbus": {"Start": 0}}, {}, Status.WARNING, "Xen"),
    ],
)
def test_foreign_tools(
    make_ctx: MakeCtx, system_extra: dict[str, Any], software_extra: dict[str, Any], status: Status, words: str
) -> None:
    out = run("os.third_party_virtualization_drivers", ctx(make_ctx, system_extra, software_extra=software_extra))
    assert out.status == status and words in out.message, out.message


# --- the real Windows 7 32-bit SYSTEM hive, through the regf backend ------------------------------------------


@pytest.fixture(scope="module")
def win7_system() -> Any:
    with lzma.open(REALDATA / "SYSTEM.xz") as fh:
        data = fh.read()
    return open_hive(io.BytesIO(data), "SYSTEM", source="realdata/SYSTEM")


def test_real_win7_system(make_ctx: MakeCtx, win7_system: Any) -> None:
    view = RegistryView(hives={"SYSTEM": win7_system})
    f = os_facts(view)
    assert (f.architecture, f.product_type) == ("x86", "WinNT")
    # C: on an MBR disk: the 12-byte form, disk signature then the partition's offset (1 MiB)
    assert mounted_volume(view) == {"style": "mbr", "mbr_signature": 1555996734, "offset": 1048576}
    c = make_ctx(facts=image_facts("mbr", os=None), hives={"SYSTEM": win7_system})
    out = run("os.third_party_virtualization_drivers", c)
    assert out.status == Status.WARNING and "VMware Tools: VMTools" in out.message
    assert run("os.hyperv_drivers_enabled", c).status == Status.WARNING  # no netvsc on a VMware guest
    assert run("os.architecture_64bit", c).status == Status.WARNING
    assert run("agent.installed", c).status == Status.WARNING
    assert run("disk.ntfs_clean", c).status == Status.PASS  # BootExecute is the default autocheck line
    assert run("os.domain_controller", c).status == Status.PASS
    # a client has an NTDS key (RID Values) but no directory service
    assert run("sysprep.role_supported", c).status == Status.PASS


UNINSTALL = r"Microsoft\Windows\CurrentVersion\Uninstall"


@pytest.mark.parametrize(
    ("products", "status"),
    [([], Status.PASS), (["Symantec Endpoint Protection"], Status.MANUAL), (["Notepad++ (64-bit x64)"], Status.PASS)],
)
def test_script_blockers(make_ctx: MakeCtx, products: list[str], status: Status) -> None:
    extra = {rf"{UNINSTALL}\{{{i}}}": {"DisplayName": p} for i, p in enumerate(products)}
    out = run("agent.script_blockers", ctx(make_ctx, software_extra=extra))
    assert out.status == status
    if status == Status.MANUAL:
        assert products[0] in out.message


def test_script_blockers_without_software(make_ctx: MakeCtx) -> None:
    c = make_ctx(facts=image_facts("gpt"), hives={"SYSTEM": system_tree()})
    assert run("agent.script_blockers", c).status == Status.NOT_CHECKED


@pytest.mark.parametrize("rule_id", ["os.hyperv_drivers_enabled", "os.third_party_virtualization_drivers"])
def test_service_rules_without_system(make_ctx: MakeCtx, rule_id: str) -> None:
    assert run(rule_id, ctx(make_ctx, with_system=False)).status == Status.NOT_CHECKED


def test_integration_components_missing_evidence(make_ctx: MakeCtx) -> None:
    no_files = make_ctx(facts=image_facts("mbr", os=None), hives={"SOFTWARE": software_tree(7601)}, files=None)
    assert run("os.hyperv_integration_components", no_files).status == Status.NOT_CHECKED
    no_build = make_ctx(facts=image_facts("mbr", os=None), hives={}, files=FakeFiles())
    assert run("os.hyperv_integration_components", no_build).status == Status.NOT_CHECKED


NET = rf"{CCS}\Control\Network"
FILTERS = "{4D36E974-E325-11CE-BFC1-08002BE10318}"


@pytest.mark.parametrize(
    ("components", "status"),
    [
        ({"ms_pacer": "QoS Packet Scheduler", "vms_pp": "Hyper-V Extensible Virtual Switch"}, Status.PASS),
        ({"ms_pacer": "QoS", "acme_inspect": "ACME Packet Inspector"}, Status.WARNING),
        ({}, Status.NOT_CHECKED),
    ],
)
def test_network_filters(make_ctx: MakeCtx, components: dict[str, str], status: Status) -> None:
    extra = {
        rf"{NET}\{FILTERS}\{{{i}}}": {"ComponentId": c, "Description": d} for i, (c, d) in enumerate(components.items())
    }
    out = run("os.tdi_filters", ctx(make_ctx, extra))
    assert out.status == status, out.message
    if status == Status.WARNING:
        assert "acme_inspect (ACME Packet Inspector)" in out.message


def test_network_filters_real_hives(make_ctx: MakeCtx, win7_system: Any) -> None:
    # the Windows 7 machine carries McAfee's NDIS filter
    out = run("os.tdi_filters", make_ctx(facts=image_facts("mbr"), hives={"SYSTEM": win7_system}))
    assert out.status == Status.WARNING and "mfe_ndisfilt" in out.message
    with lzma.open(REALDATA / "SYSTEM_B.xz") as fh:
        win10 = open_hive(io.BytesIO(fh.read()), "SYSTEM", source="realdata/SYSTEM_B")
    out = run("os.tdi_filters", make_ctx(facts=image_facts("gpt"), hives={"SYSTEM": win10}))
    assert out.status == Status.PASS, out.message
