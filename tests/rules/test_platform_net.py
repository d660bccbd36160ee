"""Azure Boost / accelerated networking drivers from SYSTEM\\DriverDatabase, the KMS host and DHCP: in-memory hives
for each verdict, and the real Windows 10 1709 SYSTEM_B hive (its DriverDatabase holds the inbox Mellanox
ConnectX-3 driver and no MANA driver)."""

from __future__ import annotations

import datetime as _dt
import lzma
import shutil
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from azvhdaudit.engine import audit_context, select_rules
from azvhdaudit.facts import OSFacts
from azvhdaudit.fix import split_statements
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import BACKENDS, open_hive_file
from azvhdaudit.report import Result, Status
from azvhdaudit.rules.base import AuditContext
from azvhdaudit.rules.platform_net import package_version

from .guestkit import SERVER, facts

REALDATA = Path(__file__).parent.parent / "data" / "realdata"
DB = "DriverDatabase"
NET_CLASS = uuid.UUID("4d36e972-e325-11ce-bfc1-08002be10318")
SPP = r"Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform"
IFACES = r"ControlSet001\Services\Tcpip\Parameters\Interfaces"
IF1 = "{11111111-2222-3333-4444-555555555555}"
IF2 = "{66666666-7777-8888-9999-aaaaaaaaaaaa}"


def version_blob(version: tuple[int, int, int, int], date: _dt.date) -> bytes:
    """A DriverPackages Version value: flags, class GUID, driver date (FILETIME), driver version, padding."""
    ticks = (
        (_dt.datetime(date.year, date.month, date.day) - _dt.datetime(1601, 1, 1)) // _dt.timedelta(microseconds=1) * 10
    )
    packed = (version[0] << 48) | (version[1] << 32) | (version[2] << 16) | version[3]
    return b"\xff\xff\x09\x00" + bytes(4) + NET_CLASS.bytes_le + struct.pack("<QQ", ticks, packed) + bytes(8)


def package(
    tree: dict[str, Any],
    device: str,
    inf: str,
    pkg: str,
    version: tuple[int, int, int, int],
    date: _dt.date,
    score: int = 0x0D000003,
    description: str = "",
) -> None:
    tree.setdefault(rf"{DB}\DeviceIds\PCI\{device}", {})[inf] = b"\x01\xff\x00\x00"
    tree[rf"{DB}\DriverInfFiles\{inf}"] = {"": [pkg], "Active": pkg}
    tree[rf"{DB}\DriverPackages\{pkg}"] = {
        "Provider": "Microsoft",
        "SignerScore": score,
        "Version": version_blob(version, date),
        "": inf,
    }
    if description:
        tree[rf"{DB}\DriverPackages\{pkg}\Descriptors\PCI\{device}"] = {"Description": "%dev.desc%"}
        tree[rf"{DB}\DriverPackages\{pkg}\Strings"] = {"dev.desc": description}


def base_system() -> dict[str, Any]:
    return {
        "Select": {"Current": 1},
        rf"{DB}\DeviceIds\PCI": {},
        rf"{DB}\DriverPackages": {},
        rf"{IFACES}\{IF1}": {"EnableDHCP": 1, "IPAddress": ["0.0.0.0"]},
    }


def run(
    rule_id: str, system: dict[str, Any] | None, software: dict[str, Any] | None = None, os_facts: Any = SERVER
) -> Result:
    hives: dict[str, Any] = {}
    unavailable = {}
    for name, tree in (("SYSTEM", system), ("SOFTWARE", software if software is not None else {SPP: {}})):
        if tree is None:
            unavailable[name] = f"the {name} hive is not present (test)"
        else:
            hives[name] = MemoryHive.build(name, tree)
    ctx = AuditContext(registry=RegistryView(hives=hives, unavailable=unavailable), facts=facts(os_facts))
    [result] = audit_context(ctx, "azure", select=[rule_id], today=_dt.date(2026, 1, 1))
    return result


# --- MANA ------------------------------------------------------------------------------------------


def test_mana_driver_bound_names_package_version_and_date() -> None:
    tree = base_system()
    package(
        tree,
        "VEN_1414&DEV_00BA",
        "mana.inf",
        "mana.inf_amd64_0123456789abcdef",
        (1, 0, 43, 0),
        _dt.date(2024, 5, 2),
        description="Microsoft Azure Network Adapter Virtual Bus",
    )
    result = run("platform_net.mana_driver", tree)
    assert result.status is Status.PASS, result.message
    assert (
        'MANA (PCI\\VEN_1414&DEV_00BA) -> mana.inf_amd64_0123456789abcdef "Microsoft Azure Network Adapter '
        'Virtual Bus" (Microsoft, version 1.0.43.0, dated 2024-05-02)'
    ) == result.message
    assert result.actual["MANA"]["version"] == "1.0.43.0"


def test_no_mana_driver_warns() -> None:
    result = run("platform_net.mana_driver", base_system())
    assert result.status is Status.WARNING
    assert "no accelerated networking on Azure Boost sizes" in result.message
    # the install line is the result's remediation, not repeated in the message
    assert "fix:" not in result.message and "pnputil" not in result.message
    assert result.remediation == (
        "Install the MANA driver from https://aka.ms/manawindowsdrivers inside the VM (pnputil /add-driver "
        "<path>\\*.inf /install) before capturing the image"
    )
    assert result.evidence[0].note == "PCI\\VEN_1414&DEV_00BA: no INF in the driver store matches this id"


def test_an_inf_without_an_active_package_is_no_driver() -> None:
    tree = base_system()
    tree[rf"{DB}\DeviceIds\PCI\VEN_1414&DEV_00BA"] = {"mana.inf": b"\x01\xff\x00\x00"}
    tree[rf"{DB}\DriverInfFiles\mana.inf"] = {"": []}
    result = run("platform_net.mana_driver", tree)
    assert result.status is Status.WARNING and "mana.inf (no active package)" in result.evidence[0].note


@pytest.mark.parametrize("rule_id", ["platform_net.mana_driver", "platform_net.mellanox_driver"])
def test_driver_rules_without_the_driver_database_are_not_checked(rule_id: str) -> None:
    no_db = run(rule_id, {"Select": {"Current": 1}, "ControlSet001\\Services": {}})
    assert no_db.status is Status.NOT_CHECKED and "DriverDatabase" in no_db.reason
    no_system = run(rule_id, None)
    assert no_system.status is Status.NOT_CHECKED and "SYSTEM" in no_system.reason


def test_windows_prefers_the_better_signed_then_the_newer_package() -> None:
    tree = base_system()
    package(tree, "VEN_1414&DEV_00BA", "old.inf", "old.inf_amd64_1", (1, 0, 1, 0), _dt.date(2023, 1, 1))
    package(tree, "VEN_1414&DEV_00BA", "new.inf", "new.inf_amd64_2", (1, 0, 9, 0), _dt.date(2025, 1, 1))
    assert "-> new.inf_amd64_2" in run("platform_net.mana_driver", tree).message
    package(
        tree,
        "VEN_1414&DEV_00BA",
        "signed.inf",
        "signed.inf_amd64_3",
        (0, 9, 0, 0),
        _dt.date(2020, 1, 1),
        score=0x0D000001,
    )
    assert "-> signed.inf_amd64_3" in run("platform_net.mana_driver", tree).message


# --- Mellanox --------------------------------------------------------------------------------------


def test_all_three_mellanox_functions_bound_pass() -> None:
    tree = base_system()
    package(tree, "VEN_15B3&DEV_1004", "mlx4_bus.inf", "mlx4_bus.inf_amd64_a", (5, 50, 14740, 0), _dt.date(2019, 1, 1))
    for dev in ("VEN_15B3&DEV_1016", "VEN_15B3&DEV_1018"):
        package(tree, dev, "mlx5.inf", "mlx5.inf_amd64_b", (3, 10, 51000, 0), _dt.date(2024, 1, 1))
    result = run("platform_net.mellanox_driver", tree)
    assert result.status is Status.PASS, result.message
    assert (
        "ConnectX-5 VF (PCI\\VEN_15B3&DEV_1018) -> mlx5.inf_amd64_b (Microsoft, version 3.10.51000.0" in result.message
    )


def test_missing_mellanox_functions_are_named_with_their_driver() -> None:
    tree = base_system()
    package(tree, "VEN_15B3&DEV_1004", "mlx4_bus.inf", "mlx4_bus.inf_amd64_a", (5, 50, 14740, 0), _dt.date(2019, 1, 1))
    result = run("platform_net.mellanox_driver", tree)
    assert result.status is Status.WARNING
    assert "ConnectX-4 Lx VF (PCI\\VEN_15B3&DEV_1016), ConnectX-5 VF (PCI\\VEN_15B3&DEV_1018)" in result.message
    assert "WinOF" not in result.message and "fix:" not in result.message
    # one install line for the two functions WinOF-2 drives; none for the bound ConnectX-3
    assert result.remediation == (
        "Install NVIDIA WinOF-2 (ConnectX-4 Lx, ConnectX-5) inside the VM before capturing the image"
    )


def test_package_version_rejects_other_layouts() -> None:
    assert package_version(None) == (None, None)
    assert package_version(bytes(40)) == (None, None)
    assert package_version(version_blob((10, 0, 17763, 1), _dt.date(2018, 9, 15))) == ("10.0.17763.1", "2018-09-15")
    # a FILETIME of zero is 1601: no date, the version still stands
    assert package_version(bytes(32) + struct.pack("<Q", (2 << 48) | 7) + bytes(8)) == ("2.0.0.7", None)


# --- KMS -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "status", "says", "fix"),
    [
        ({}, Status.PASS, "no KMS host is set", ""),
        ({"KeyManagementServiceName": ""}, Status.PASS, "no KMS host is set", ""),
        ({"KeyManagementServiceName": "azkms.core.windows.net:1688"}, Status.PASS, "is Azure's", ""),
        (
            {"KeyManagementServiceName": "KMS.core.windows.net", "KeyManagementServicePort": "1688"},
            Status.PASS,
            "is Azure's",
            "",
        ),
        ({"KeyManagementServiceName": "kms.core.usgovcloudapi.net"}, Status.PASS, "is Azure's", ""),
        (
            {"KeyManagementServiceName": "kms01.contoso.local"},
            Status.WARNING,
            "not an Azure KMS endpoint",
            "slmgr.vbs /skms azkms.core.windows.net:1688 inside the VM (the endpoint of the VM's cloud), or /ckms",
        ),
        (
            {"KeyManagementServiceName": "kms.core.windows.net.evil.example"},
            Status.WARNING,
            "not an Azure KMS",
            "slmgr.vbs /skms azkms.core.windows.net:1688",
        ),
        (
            {"KeyManagementServiceName": "azkms.core.windows.net:1689"},
            Status.WARNING,
            "on port 1689",
            "slmgr.vbs /skms azkms.core.windows.net:1688 inside the VM",
        ),
        (
            {"KeyManagementServiceName": "azkms.core.windows.net", "KeyManagementServicePort": "2500"},
            Status.WARNING,
            "on port 2500",
            "slmgr.vbs /skms azkms.core.windows.net:1688 inside the VM",
        ),
        ({"KeyManagementServiceName": 5}, Status.WARNING, "Windows reads a REG_SZ", "slmgr.vbs /ckms inside the VM"),
    ],
)
def test_kms_host(values: dict[str, Any], status: Status, says: str, fix: str) -> None:
    result = run("platform_net.kms_host", base_system(), software={SPP: values})
    assert result.status is status and says in result.message, result.message
    if fix:
        # the computed command is the remediation, said once
        assert fix in result.remediation and "slmgr" not in result.message, result
    else:
        assert result.remediation.startswith("Inside the VM: cscript")  # the rule's general fix


def test_kms_without_software_is_not_checked() -> None:
    hives = {"SYSTEM": MemoryHive.build("SYSTEM", base_system())}
    ctx = AuditContext(registry=RegistryView(hives=hives, unavailable={"SOFTWARE": "gone (test)"}), facts=facts())
    [result] = audit_context(ctx, "azure", select=["platform_net.kms_host"])
    assert result.status is Status.NOT_CHECKED and "gone" in result.reason


# --- DHCP ------------------------------------------------------------------------------------------


def test_dhcp_on_every_interface_passes() -> None:
    tree = base_system()
    tree[rf"{IFACES}\{IF2}"] = {"EnableDHCP": 0}  # never configured: not counted
    result = run("platform_net.dhcp_enabled", tree)
    assert result.status is Status.PASS and "1 interface(s)" in result.message


def test_a_static_address_warns_and_names_the_interface() -> None:
    tree = base_system()
    tree[rf"{IFACES}\{IF2}"] = {"EnableDHCP": 0, "IPAddress": ["10.1.2.3"], "SubnetMask": ["255.255.255.0"]}
    result = run("platform_net.dhcp_enabled", tree)
    assert result.status is Status.WARNING
    assert f"{IF2} (EnableDHCP 0, IPAddress 10.1.2.3)" in result.message and "-Dhcp" not in result.message
    # no Connection key for it in the hive: the line keeps a placeholder and stays a step by hand
    assert result.remediation == (
        f"Set-NetIPInterface -InterfaceAlias <alias of interface {IF2}> -Dhcp Enabled  (its Connection Name is not "
        "in the hive: Get-NetAdapter shows it)"
    )
    assert split_statements(result.remediation)[0] == []


NETWORK = r"ControlSet001\Control\Network\{4D36E972-E325-11CE-BFC1-08002BE10318}"


def static_tree(alias: str) -> dict[str, Any]:
    tree = base_system()
    tree[rf"{IFACES}\{IF2.lower()}"] = {"EnableDHCP": 0, "IPAddress": ["10.1.2.3", ""]}
    tree[rf"{NETWORK}\{IF2}\Connection"] = {"Name": alias, "PnPInstanceId": "PCI\\VEN_1414&DEV_00BA"}
    tree[rf"{NETWORK}\{IF1}\Connection"] = {"Name": "Ethernet 2"}
    return tree


@pytest.mark.parametrize(
    ("build", "line"),
    [
        (20348, "Set-NetIPInterface -InterfaceAlias 'Ethernet' -Dhcp Enabled"),
        (9200, "Set-NetIPInterface -InterfaceAlias 'Ethernet' -Dhcp Enabled"),
        # Windows 7 / Server 2008 R2 have no Set-NetIPInterface
        (7601, "netsh interface ip set address 'Ethernet' dhcp"),
    ],
)
def test_the_fix_names_the_interface_by_its_alias(build: int, line: str) -> None:
    os_facts = OSFacts(product_name="Windows Server", build=build, installation_type="Server")
    result = run("platform_net.dhcp_enabled", static_tree("Ethernet"), os_facts=os_facts)
    assert result.status is Status.WARNING
    assert result.remediation == line
    assert split_statements(result.remediation) == ([line], [])
    assert result.actual[IF2.lower()]["alias"] == "Ethernet"
    [name] = [e for e in result.evidence if e.value_name == "Name"]
    assert name.key.endswith(rf"{IF2.lower()}\Connection") and name.actual == "Ethernet" and name.present


@pytest.mark.parametrize(
    "alias",
    ["it's $(Remove-Item C:\\ -Recurse)", "x'; Remove-Item C:\\ -Recurse; '", "a\nRemove-Item C:\\ -Recurse"],
)
def test_a_hostile_alias_never_becomes_another_statement(alias: str) -> None:
    result = run("platform_net.dhcp_enabled", static_tree(alias))
    commands, notes = split_statements(result.remediation)
    assert all(not c.lower().startswith("remove-item") for c in commands), commands
    if "\n" in alias:
        assert commands == [] and "<alias of interface" in result.remediation
    else:
        # one statement, the alias a single-quoted literal: PowerShell expands nothing in it
        literal = "'" + alias.replace("'", "''") + "'"
        assert commands == [f"Set-NetIPInterface -InterfaceAlias {literal} -Dhcp Enabled"]


def test_dhcp_missing_evidence_is_not_checked() -> None:
    no_key = run("platform_net.dhcp_enabled", {"Select": {"Current": 1}, "ControlSet001\\Services": {}})
    assert no_key.status is Status.NOT_CHECKED and "does not exist" in no_key.reason
    only_blank = run("platform_net.dhcp_enabled", {"Select": {"Current": 1}, rf"{IFACES}\{IF2}": {"EnableDHCP": 0}})
    assert only_blank.status is Status.NOT_CHECKED
    assert run("platform_net.dhcp_enabled", None).status is Status.NOT_CHECKED


def test_platform_net_rules_are_platform_rules() -> None:
    ids = {r.id for r in select_rules("azure") if r.id.startswith("platform_net.")}
    assert ids == {
        "platform_net.mana_driver",
        "platform_net.mellanox_driver",
        "platform_net.kms_host",
        "platform_net.dhcp_enabled",
    }
    assert not ids & {r.id for r in select_rules("azure-2022")}


# --- the real hive ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def system_b(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("net-realdata")
    for name in ("SYSTEM_B", "SYSTEM_B.LOG1", "SYSTEM_B.LOG2"):
        with lzma.open(REALDATA / f"{name}.xz") as src, open(out / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return out / "SYSTEM_B"


@pytest.fixture(params=BACKENDS)
def real(request: pytest.FixtureRequest, system_b: Path) -> Iterator[dict[str, Result]]:
    hive = open_hive_file(system_b, "SYSTEM", backend=request.param)
    try:
        ctx = AuditContext(registry=RegistryView(hives={"SYSTEM": hive}), facts=facts())
        yield {r.rule_id: r for r in audit_context(ctx, "azure", select=["platform-network"])}
    finally:
        hive.close()


def test_real_hive_driver_database(real: dict[str, Result]) -> None:
    assert real["platform_net.mana_driver"].status is Status.WARNING
    mellanox = real["platform_net.mellanox_driver"]
    assert mellanox.status is Status.WARNING
    # Windows 10 1709's inbox mlx4_bus package, its version and date as the DriverDatabase records them
    assert (
        'ConnectX-3 VF (PCI\\VEN_15B3&DEV_1004) -> mlx4_bus.inf_amd64_f622ca7dea675152 "Mellanox ConnectX-3 '
        'VPI (MT04100) Virtual Network Adapter" (Microsoft, version 5.1.11548.0, dated 2016-04-11)'
    ) in mellanox.message
    assert "ConnectX-4 Lx VF (PCI\\VEN_15B3&DEV_1016), ConnectX-5 VF (PCI\\VEN_15B3&DEV_1018)" in mellanox.message
    assert real["platform_net.dhcp_enabled"].status is Status.PASS
    assert real["platform_net.kms_host"].status is Status.NOT_CHECKED
