"""NVMe readiness rules on in-memory hives (every control set, StartOverride, the boot chain, the driver file,
generation and build, the page file) and on the real Windows 10 1709 SYSTEM_B hive."""

from __future__ import annotations

import copy
import datetime as _dt
import lzma
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from azvhdaudit.engine import audit_context, select_rules
from azvhdaudit.facts import OSFacts
from azvhdaudit.fix import registry_writes, split_statements
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import BACKENDS, open_hive_file
from azvhdaudit.report import Result, Status
from azvhdaudit.rules.base import AuditContext, AuditOptions, Target

from .guestkit import facts

REALDATA = Path(__file__).parent.parent / "data" / "realdata"
SERVER_2019 = OSFacts(
    product_name="Windows Server 2019 Datacenter",
    build=17763,
    installation_type="Server",
    product_type="ServerNT",
    architecture="AMD64",
)
NVME = Target(disk_controller="NVMe")
SCSI = Target(disk_controller="SCSI")
MM = r"Control\Session Manager\Memory Management"


def services(**overrides: Any) -> dict[str, dict[str, Any]]:
    """One control set's services as an NVMe-ready Windows has them."""
    tree: dict[str, dict[str, Any]] = {}
    for name in ("stornvme", "pci", "partmgr", "disk", "volmgr", "volume", "volsnap", "mountmgr"):
        tree[f"Services\\{name}"] = {"Start": 0, "Type": 1}
    tree["Services\\vpci"] = {"Start": 3, "Type": 1}
    tree[MM] = {"PagingFiles": ["?:\\pagefile.sys"]}
    tree.update(overrides)
    return tree


def system(
    cs1: dict[str, Any] | None = None, cs2: dict[str, Any] | None = None, select: dict[str, int] | None = None
) -> dict[str, dict[str, Any] | None]:
    tree: dict[str, dict[str, Any] | None] = {
        "Select": select if select is not None else {"Current": 1, "Default": 1, "LastKnownGood": 2, "Failed": 0}
    }
    for number, sets in ((1, cs1), (2, cs2)):
        for path, values in (sets if sets is not None else services()).items():
            tree[f"ControlSet00{number}\\{path}"] = copy.deepcopy(values)
    return tree


class Files:
    """Guest files: a set of present paths (case-insensitive) and their versions."""

    def __init__(self, present: dict[str, tuple[int, int, int, int] | None]) -> None:
        self.present = {k.lower(): v for k, v in present.items()}

    def exists(self, path: str) -> bool:
        return path.lower() in self.present

    def file_version(self, path: str) -> tuple[int, int, int, int] | None:
        return self.present.get(path.lower())


STORNVME = "Windows\\System32\\drivers\\stornvme.sys"


def run(
    rule_id: str,
    tree: dict[str, Any] | None,
    target: Target = NVME,
    generation: int | None = 2,
    os_facts: OSFacts | None = SERVER_2019,
    files: Any = None,
    profile: str = "azure",
) -> Result:
    hives = {"SOFTWARE": MemoryHive.build("SOFTWARE", {"Microsoft\\Windows NT\\CurrentVersion": {}})}
    unavailable = {}
    if tree is None:
        unavailable["SYSTEM"] = "the SYSTEM hive is not present (test)"
    else:
        hives["SYSTEM"] = MemoryHive.build("SYSTEM", tree)
    image = facts(os_facts)
    image.generation = generation
    ctx = AuditContext(
        registry=RegistryView(hives=hives, unavailable=unavailable),
        facts=image,
        options=AuditOptions(target=target),
        files=files,
    )
    [result] = audit_context(ctx, profile, select=[rule_id], today=_dt.date(2026, 1, 1))
    return result


SERVICE_RULES = ("nvme.stornvme_boot_start", "nvme.pci_boot_start", "nvme.vpci_no_override")


@pytest.mark.parametrize("rule_id", [*SERVICE_RULES, "nvme.storage_boot_chain"])
def test_a_ready_image_passes(rule_id: str) -> None:
    result = run(rule_id, system())
    assert result.status is Status.PASS, result.message
    assert result.remediation.startswith(("For each", "For each driver"))  # the rule's general fix
    assert "ControlSet001 (current, default)" in result.message and "ControlSet002 (LastKnownGood)" in result.message


@pytest.mark.parametrize("rule_id", [*SERVICE_RULES, "nvme.storage_boot_chain", "nvme.pagefile_not_on_temp_disk"])
def test_without_system_not_checked(rule_id: str) -> None:
    result = run(rule_id, None)
    assert result.status is Status.NOT_CHECKED and "SYSTEM" in result.reason


@pytest.mark.parametrize("rule_id", [*SERVICE_RULES, "nvme.storage_boot_chain"])
def test_a_hive_without_control_sets_is_not_checked(rule_id: str) -> None:
    result = run(rule_id, {"Select": {"Current": 1}, "Setup": {"SetupType": 0}})
    assert result.status is Status.NOT_CHECKED and "no ControlSet00n" in result.reason


@pytest.mark.parametrize(
    ("service", "rule_id"),
    [("stornvme", "nvme.stornvme_boot_start"), ("pci", "nvme.pci_boot_start"), ("vpci", "nvme.vpci_no_override")],
)
def test_last_known_good_override_fails_with_the_exact_fix(service: str, rule_id: str) -> None:
    cs2 = services(**{f"Services\\{service}\\StartOverride": {"0": 3}})
    result = run(rule_id, system(cs2=cs2))
    assert result.status is Status.FAIL
    assert f"ControlSet002 (LastKnownGood): Services\\{service}\\StartOverride holds 0 = 3" in result.message
    # the message says what is wrong; the fix is said once, in the remediation
    assert "ControlSet001" not in result.message
    assert "fix:" not in result.message and "Remove-Item" not in result.message and "reg " not in result.message
    # the fix is computed from the finding: this control set only, inside the VM and offline
    remove = (
        f"Remove-Item -Path 'HKLM:\\SYSTEM\\ControlSet002\\Services\\{service}\\StartOverride' -Recurse -Force "
        "-ErrorAction SilentlyContinue"
    )
    assert result.remediation.splitlines()[0] == remove
    assert result.remediation.splitlines()[2] == (
        "Or offline, on the image's hive: reg load HKLM\\IMG_SYSTEM <Windows volume>\\Windows\\System32\\config\\"
        f'SYSTEM; reg delete "HKLM\\IMG_SYSTEM\\ControlSet002\\Services\\{service}\\StartOverride" /f; '
        "reg unload HKLM\\IMG_SYSTEM"
    )
    assert "ControlSet001" not in result.remediation
    # azvhdaudit fix scripts the lines for inside the VM; the offline variant is left to do by hand
    commands, notes = split_statements(result.remediation)
    assert commands == [remove]
    assert len(notes) == 2 and notes[0].startswith(
        "Inside the VM (PowerShell, as administrator): the Remove-Item lines; then"
    )
    assert notes[1] == result.remediation.splitlines()[2]
    overrides = [e for e in result.evidence if e.key.endswith("StartOverride")]
    assert [(e.control_set, e.value_name, e.actual) for e in overrides] == [("ControlSet002", "0", 3)]


@pytest.mark.parametrize("rule_id", SERVICE_RULES)
def test_under_scsi_the_same_finding_warns(rule_id: str) -> None:
    service = rule_id.split(".")[1].split("_")[0]
    cs1 = services(**{f"Services\\{service}\\StartOverride": {"0": 3}})
    result = run(rule_id, system(cs1=cs1), target=SCSI)
    assert result.status is Status.WARNING and "will not boot on NVMe-only sizes" in result.message
    assert run(rule_id, system(cs1=cs1), target=Target()).status is Status.WARNING


def test_an_override_to_boot_start_is_harmless() -> None:
    cs2 = services(**{"Services\\stornvme\\StartOverride": {"0": 0}})
    assert run("nvme.stornvme_boot_start", system(cs2=cs2)).status is Status.PASS


def test_an_override_of_another_type_blocks() -> None:
    cs1 = services(**{"Services\\stornvme\\StartOverride": {"0": "3"}})
    result = run("nvme.stornvme_boot_start", system(cs1=cs1))
    assert result.status is Status.FAIL and "0 = 3" in result.message


def test_demand_start_stornvme_fails_with_set_itemproperty() -> None:
    cs1 = services(**{"Services\\stornvme": {"Start": 3}})
    result = run("nvme.stornvme_boot_start", system(cs1=cs1))
    assert result.status is Status.FAIL
    assert "ControlSet001 (current, default): Services\\stornvme\\Start is REG_DWORD 3, not 0" in result.message
    assert "Set-ItemProperty" not in result.message and "reg add" not in result.message
    inside = (
        "Set-ItemProperty -Path 'HKLM:\\SYSTEM\\ControlSet001\\Services\\stornvme' -Name Start -Value 0 -Type DWord"
    )
    offline = 'reg add "HKLM\\IMG_SYSTEM\\ControlSet001\\Services\\stornvme" /v Start /t REG_DWORD /d 0 /f'
    lines = result.remediation.splitlines()
    assert lines[0] == inside and offline in lines[2] and lines[2].startswith("Or offline, on the image's hive: ")


def test_vpci_start_is_not_required() -> None:
    # vpci's own Start stays as Windows sets it (3 on a SCSI VM); only an override blocks
    cs1 = services(**{"Services\\vpci": {"Start": 3}})
    assert run("nvme.vpci_no_override", system(cs1=cs1)).status is Status.PASS


def test_a_missing_service_fails() -> None:
    cs2 = services()
    del cs2["Services\\stornvme"]
    result = run("nvme.stornvme_boot_start", system(cs2=cs2))
    assert (
        result.status is Status.FAIL
        and "ControlSet002 (LastKnownGood): Services\\stornvme does not exist" in result.message
    )
    # no key to set: the fix repairs the inbox drivers instead of writing to a key that is not there
    assert "fix:" not in result.message and "DISM" not in result.message
    assert result.remediation.splitlines() == [
        "DISM /Online /Cleanup-Image /RestoreHealth  (repair the inbox drivers inside the VM; the driver service "
        "stornvme is not registered)",
        "sfc /scannow",
    ]
    assert split_statements(result.remediation)[0] == ["DISM /Online /Cleanup-Image /RestoreHealth", "sfc /scannow"]


def test_boot_chain_driver_not_registered() -> None:
    cs1 = services()
    del cs1["Services\\partmgr"]
    result = run("nvme.storage_boot_chain", system(cs1=cs1))
    assert result.status is Status.FAIL
    assert "ControlSet001 (current, default) partmgr not registered (no Services\\partmgr key)" in result.message
    assert "the driver service partmgr is not registered" in result.remediation
    assert "Set-ItemProperty" not in result.remediation + result.message


def test_boot_chain_names_driver_and_control_set() -> None:
    cs2 = services(**{"Services\\volsnap": {"Start": 3}})
    result = run("nvme.storage_boot_chain", system(cs2=cs2))
    assert result.status is Status.FAIL
    assert "ControlSet002 (LastKnownGood) volsnap Start 3" in result.message
    assert "-Name Start" not in result.message
    assert "ControlSet002\\Services\\volsnap' -Name Start -Value 0" in result.remediation.splitlines()[0]
    assert 'ControlSet002\\Services\\volsnap" /v Start /t REG_DWORD /d 0 /f' in result.remediation.splitlines()[2]
    assert result.actual["ControlSet002"]["volsnap"] == 3 and result.actual["ControlSet001"]["volsnap"] == 0
    assert run("nvme.storage_boot_chain", system(cs2=cs2), target=SCSI).status is Status.WARNING


def test_driver_file() -> None:
    present = run("nvme.stornvme_driver_file", system(), files=Files({STORNVME: (10, 0, 17763, 1)}))
    assert present.status is Status.PASS and "10.0.17763.1" in present.message
    absent = run("nvme.stornvme_driver_file", system(), files=Files({}))
    assert absent.status is Status.FAIL and "stornvme.sys is not on the Windows volume" in absent.message
    assert run("nvme.stornvme_driver_file", system(), files=Files({}), target=SCSI).status is Status.WARNING
    unread = run("nvme.stornvme_driver_file", system(), files=None)
    assert unread.status is Status.NOT_CHECKED and unread.reason


@pytest.mark.parametrize(
    ("generation", "build", "target", "status", "says"),
    [
        (2, 17763, NVME, Status.PASS, "Generation 2, build 17763"),
        (2, 26100, SCSI, Status.PASS, "Generation 2"),
        (1, 17763, NVME, Status.FAIL, "Generation 1: Azure attaches NVMe disks to Generation 2 VMs only"),
        (1, 17763, SCSI, Status.WARNING, "will not boot on NVMe-only sizes"),
        (2, 17134, NVME, Status.FAIL, "older than 17763"),
        (None, 17763, NVME, Status.NOT_CHECKED, "the generation could not be established"),
        (2, None, NVME, Status.NOT_CHECKED, "the OS build could not be established"),
        (1, None, NVME, Status.FAIL, "Generation 1"),
    ],
)
def test_generation_and_build(
    generation: int | None, build: int | None, target: Target, status: Status, says: str
) -> None:
    os_facts = OSFacts(product_name="Windows Server", build=build, installation_type="Server")
    result = run("nvme.generation_and_build", system(), target=target, generation=generation, os_facts=os_facts)
    assert result.status is status and says in result.message, result.message


@pytest.mark.parametrize(
    ("paging", "status"),
    [
        (["D:\\pagefile.sys"], Status.WARNING),
        (["d:\\pagefile.sys 1024 2048"], Status.WARNING),
        (["C:\\pagefile.sys"], Status.PASS),
        (["?:\\pagefile.sys"], Status.PASS),
        (None, Status.PASS),
    ],
)
def test_pagefile_on_d(paging: list[str] | None, status: Status) -> None:
    cs1 = services(**{MM: {"PagingFiles": paging} if paging is not None else {}})
    result = run("nvme.pagefile_not_on_temp_disk", system(cs1=cs1))
    assert result.status is status, result.message
    if status is Status.WARNING:
        assert "raw" in result.message and "fix:" not in result.message and "PagingFiles -Value" not in result.message
        assert "-Name PagingFiles -Value '?:\\pagefile.sys' -Type MultiString" in result.remediation
        assert "system managed" in result.remediation
        key = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\" + MM
        assert registry_writes(result.remediation) == [(key, "PagingFiles", "REG_MULTI_SZ", ["?:\\pagefile.sys"])]


@pytest.mark.parametrize(
    ("paging", "value"),
    [
        (["D:\\pagefile.sys", "C:\\pagefile.sys 1024 4096"], "'C:\\pagefile.sys 1024 4096'"),
        (["D:\\pagefile.sys", "C:\\pagefile.sys", "E:\\page's.sys"], "@('C:\\pagefile.sys', 'E:\\page''s.sys')"),
    ],
)
def test_pagefile_fix_keeps_the_entries_not_on_d(paging: list[str], value: str) -> None:
    cs1 = services(**{MM: {"PagingFiles": paging}})
    result = run("nvme.pagefile_not_on_temp_disk", system(cs1=cs1))
    assert result.status is Status.WARNING
    line = result.remediation.splitlines()[0]
    assert f"-Name PagingFiles -Value {value} -Type MultiString  (" in line
    assert "?:" not in line and "system managed" not in line
    # the line is one the fix script runs, and the .reg file writes the same value
    commands, _ = split_statements(result.remediation)
    assert commands == [line.split("  (")[0]]
    writes = registry_writes(result.remediation)
    assert writes is not None
    [(key, name, kind, data)] = writes
    assert key.endswith("\\Control\\Session Manager\\Memory Management") and name == "PagingFiles"
    assert data == [e for e in paging if not e.upper().startswith("D:")]


def test_nvme_rules_belong_to_azure_not_to_the_2022_document() -> None:
    nvme = {r.id for r in select_rules("azure") if r.meta.area == "nvme"}
    assert len(nvme) == 7
    assert not nvme & {r.id for r in select_rules("azure-2022")}
    assert not nvme & {r.id for r in select_rules("azure-2017")}


@pytest.fixture(scope="module")
def system_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nvme-realdata")
    for name in ("SYSTEM_B", "SYSTEM_B.LOG1", "SYSTEM_B.LOG2"):
        with lzma.open(REALDATA / f"{name}.xz") as src, open(out / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out / "SYSTEM_B"


@pytest.fixture(params=BACKENDS)
def real_view(request: pytest.FixtureRequest, system_b: Path) -> Iterator[RegistryView]:
    hive = open_hive_file(system_b, "SYSTEM", backend=request.param)
    try:
        yield RegistryView(hives={"SYSTEM": hive})
    finally:
        hive.close()


def test_real_windows_10_1709_hive_fails_nvme(real_view: RegistryView) -> None:
    # SYSTEM_B carries stornvme\StartOverride\0 = 3 in its only control set: it would stop with 0x7B on NVMe
    image = facts(OSFacts(product_name="Windows 10 Pro", build=16299, installation_type="Client"))
    image.generation = 2
    ctx = AuditContext(registry=real_view, facts=image, options=AuditOptions(target=NVME))
    got = {r.rule_id: r for r in audit_context(ctx, "azure", select=["nvme"], today=_dt.date(2026, 1, 1))}
    stornvme = got["nvme.stornvme_boot_start"]
    assert stornvme.status is Status.FAIL
    assert (
        "ControlSet001 (current, default, LastKnownGood): Services\\stornvme\\StartOverride holds 0 = 3"
        in stornvme.message
    )
    assert 'reg delete "HKLM\\IMG_SYSTEM\\ControlSet001\\Services\\stornvme\\StartOverride" /f' in stornvme.remediation
    assert got["nvme.pci_boot_start"].status is Status.PASS
    assert got["nvme.storage_boot_chain"].status is Status.PASS
    assert got["nvme.generation_and_build"].status is Status.FAIL
