"""Building blocks for the guest-configuration rule tests.

A fully compliant SYSTEM / SOFTWARE / SECURITY / SAM, written out by hand from "Prepare a Windows VHD or VHDX
to upload to Azure" (https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image,
ms.date 2022-08-04; the 2017 text: MicrosoftDocs/azure-docs articles/virtual-machines/windows/
prepare-for-upload-vhd-image.md, ms.date 2017-08-01) — deliberately not generated from the rule rows, so
the rows are tested against an independent statement of the facts. Each case layers an overlay on it
(``None`` deletes a key or a value) or drops a whole hive.
"""

from __future__ import annotations

import copy
import datetime as _dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from azvhdaudit.engine import audit_context
from azvhdaudit.facts import ContainerFacts, ImageFacts, OSFacts
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView, RegType
from azvhdaudit.report import Result, Status
from azvhdaudit.rules.base import AuditContext, AuditOptions

CCS = "ControlSet001"
TS = rf"{CCS}\Control\Terminal Server"
RDP_TCP = TS + r"\WinStations\RDP-Tcp"
FW = rf"{CCS}\Services\SharedAccess\Parameters\FirewallPolicy"
FW_RULES = FW + r"\FirewallRules"
SVC = rf"{CCS}\Services"
CC = rf"{CCS}\Control\CrashControl"
ENV = rf"{CCS}\Control\Session Manager\Environment"
POWER = rf"{CCS}\Control\Power"
HIGH = "8c5e7fda-e8bf-4a96-9a85-a6e23a8c635c"
BALANCED = "381b4222-f694-41f0-9685-ff5bb260df2e"
SUB_VIDEO = "7516b95f-f776-4464-8c53-06167f40cc99"
VIDEOIDLE = "3c0bc021-c8a8-4e07-a973-6b14cbcb2b7e"
TS_POLICY = r"Policies\Microsoft\Windows NT\Terminal Services"
FW_POLICY = r"Policies\Microsoft\WindowsFirewall"
LOCALDUMPS = r"Microsoft\Windows\Windows Error Reporting\LocalDumps"
CONNECTIONS = r"Microsoft\Windows\CurrentVersion\Internet Settings\Connections"
WSMAN = r"Microsoft\Windows\CurrentVersion\WSMAN"
DIRECT_BLOB = bytes.fromhex("1800000000000000010000000000000000000000")


def winhttp_blob(proxy: str, bypass: str, flags: int = 0x3) -> bytes:
    """A WinHttpSettings value as ``netsh winhttp set proxy`` writes it."""
    p, b = proxy.encode("ascii"), bypass.encode("ascii")
    return (
        (0x28).to_bytes(4, "little")
        + (5).to_bytes(4, "little")
        + flags.to_bytes(4, "little")
        + len(p).to_bytes(4, "little")
        + p
        + len(b).to_bytes(4, "little")
        + b
        + bytes(4)
    )


RULES_OK = {
    "RemoteDesktop-UserMode-In-TCP": "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|LPort=3389|"
    r"App=%SystemRoot%\system32\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28775|"
    "Desc=@FirewallAPI.dll,-28756|EmbedCtxt=@FirewallAPI.dll,-28752|",
    "RemoteDesktop-UserMode-In-UDP": "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=17|LPort=3389|"
    r"App=%SystemRoot%\system32\svchost.exe|Svc=termservice|Name=@FirewallAPI.dll,-28776|"
    "Desc=@FirewallAPI.dll,-28777|EmbedCtxt=@FirewallAPI.dll,-28752|",
    "RemoteDesktop-Shadow-In-TCP": r"v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|App=%SystemRoot%\system32"
    r"\RdpSa.exe|Name=@FirewallAPI.dll,-28778|Desc=@FirewallAPI.dll,-28779|EmbedCtxt=@FirewallAPI.dll,-28752|"
    "Edge=TRUE|Defer=App|",
    "WINRM-HTTP-In-TCP-NoScope": "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|"
    "LPort=5985|App=System|Name=@FirewallAPI.dll,-30253|Desc=@FirewallAPI.dll,-30256|EmbedCtxt=@FirewallAPI.dll,"
    "-30267|",
    "WINRM-HTTP-In-TCP": "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Public|LPort=5985|"
    "RA4=LocalSubnet|RA6=LocalSubnet|App=System|Name=@FirewallAPI.dll,-30253|Desc=@FirewallAPI.dll,-30256|"
    "EmbedCtxt=@FirewallAPI.dll,-30267|",
    "FPS-ICMP4-ERQ-In": "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=1|Profile=Private|Profile=Public|"
    "ICMP4=8:*|RA4=LocalSubnet|App=System|Name=@FirewallAPI.dll,-28543|Desc=@FirewallAPI.dll,-28547|"
    "EmbedCtxt=@FirewallAPI.dll,-28502|",
    "FPS-ICMP4-ERQ-In-NoScope": "v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=1|Profile=Domain|ICMP4=8:*|"
    "Name=@FirewallAPI.dll,-28543|Desc=@FirewallAPI.dll,-28547|EmbedCtxt=@FirewallAPI.dll,-28502|",
    "{0b5a3f3e-1111-4c4c-9d9d-000000000001}": "v2.33|Action=Allow|Active=TRUE|Dir=In|RA4=168.63.129.16|"
    "Name=AzurePlatform|Edge=TRUE|",
    "{0b5a3f3e-1111-4c4c-9d9d-000000000002}": "v2.33|Action=Allow|Active=TRUE|Dir=Out|RA4=168.63.129.16|"
    "Name=AzurePlatform|",
}


def _services() -> dict[str, dict[str, Any]]:
    tree: dict[str, dict[str, Any]] = {}
    for name in (
        "BFE",
        "Dhcp",
        "Dnscache",
        "IKEEXT",
        "iphlpsvc",
        "nsi",
        "MpsSvc",
        "RemoteRegistry",
        "sacsvr",
        "W32Time",
    ):
        tree[rf"{SVC}\{name}"] = {"Start": 2}
    for name in ("Netlogon", "Netman", "TermService", "WerSvc"):
        tree[rf"{SVC}\{name}"] = {"Start": 3}
    tree[rf"{SVC}\WinRM"] = {"Start": 2, "DelayedAutostart": 1}
    tree[rf"{SVC}\cdrom"] = {"Start": 1}
    return tree


COMPLIANT: dict[str, dict[str, dict[str, Any] | None]] = {
    "SYSTEM": {
        "Select": {"Current": 1, "Default": 1, "LastKnownGood": 1},
        TS: {"fDenyTSConnections": 0},
        RDP_TCP: {
            "PortNumber": 3389,
            "LanAdapter": 0,
            "UserAuthentication": 1,
            "SecurityLayer": 1,
            "fAllowSecProtocolNegotiation": 1,
            "KeepAliveTimeout": 1,
            "fInheritReconnectSame": 1,
            "fReconnectSame": 0,
            "MaxInstanceCount": 0xFFFFFFFF,
        },
        FW + r"\DomainProfile": {"EnableFirewall": 1},
        FW + r"\StandardProfile": {"EnableFirewall": 1},
        FW + r"\PublicProfile": {"EnableFirewall": 1},
        FW_RULES: dict(RULES_OK),
        **_services(),
        rf"{CCS}\Control\TimeZoneInformation": {"RealTimeIsUniversal": 1, "TimeZoneKeyName": "UTC"},
        POWER + r"\User\PowerSchemes": {"ActivePowerScheme": HIGH},
        POWER + rf"\User\PowerSchemes\{HIGH}\{SUB_VIDEO}\{VIDEOIDLE}": {"ACSettingIndex": 0},
        POWER + rf"\PowerSettings\{SUB_VIDEO}\{VIDEOIDLE}\DefaultPowerSchemeValues\{HIGH}": {"AcSettingIndex": 900},
        POWER + rf"\PowerSettings\{SUB_VIDEO}\{VIDEOIDLE}\DefaultPowerSchemeValues\{BALANCED}": {"AcSettingIndex": 600},
        rf"{SVC}\partmgr\Parameters": {"SanPolicy": 1},
        rf"{SVC}\Tcpip\Parameters\PersistentRoutes": {},
        CC: {
            "CrashDumpEnabled": 2,
            "DumpFile": (RegType.EXPAND_SZ, r"%SystemRoot%\MEMORY.DMP"),
            "NMICrashDump": 1,
            "AutoReboot": 0,
        },
        rf"{CCS}\Control\Session Manager\Memory Management": {"PagingFiles": [r"?:\pagefile.sys"]},
        ENV: {"TEMP": (RegType.EXPAND_SZ, r"%SystemRoot%\TEMP"), "TMP": (RegType.EXPAND_SZ, r"%SystemRoot%\TEMP")},
        rf"{CCS}\Control\ProductOptions": {"ProductType": "ServerNT"},
    },
    "SOFTWARE": {
        TS_POLICY: {"KeepAliveEnable": 1, "KeepAliveInterval": 1},
        LOCALDUMPS: {"DumpFolder": (RegType.EXPAND_SZ, r"C:\CrashDumps"), "DumpCount": 10, "DumpType": 2},
        WSMAN + r"\Listener\*+HTTP": {"uriprefix": "wsman", "Port": 5985},
        WSMAN + r"\Service": {"allow_remote_requests": 1},
        CONNECTIONS: {"WinHttpSettings": DIRECT_BLOB},
        r"Microsoft\Windows NT\CurrentVersion": {"CurrentBuild": "20348", "InstallationType": "Server"},
    },
    "SECURITY": {
        r"Policy\Accounts\S-1-5-32-544\ActSysAc": {"": (RegType.BINARY, (0x2 | 0x400).to_bytes(4, "little"))},
        r"Policy\Accounts\S-1-5-32-545\ActSysAc": {"": (RegType.BINARY, (0x2).to_bytes(4, "little"))},
        r"Policy\Accounts\S-1-5-32-551\ActSysAc": {"": (RegType.BINARY, (0x2).to_bytes(4, "little"))},
        r"Policy\Accounts\S-1-1-0\ActSysAc": {"": (RegType.BINARY, (0x2).to_bytes(4, "little"))},
    },
    "SAM": {
        r"SAM\Domains\Account\Users\000001F4": {
            "F": (RegType.BINARY, bytes(0x38) + (0x0210).to_bytes(2, "little") + bytes(0x16))
        },
    },
}

SERVER = OSFacts(
    product_name="Windows Server 2022 Datacenter",
    build=20348,
    installation_type="Server",
    product_type="ServerNT",
    architecture="AMD64",
)
CLIENT = OSFacts(
    product_name="Windows 10 Pro", build=19045, installation_type="Client", product_type="WinNT", architecture="AMD64"
)


def facts(os_facts: OSFacts | None = SERVER) -> ImageFacts:
    return ImageFacts(
        source="<memory>",
        container=ContainerFacts(path="<memory>", format="raw", subtype=None, virtual_size=0, file_size=0),
        os=os_facts,
    )


def build_view(
    overlays: Mapping[str, Mapping[str, Mapping[str, Any] | None]] | None = None, drop: Iterable[str] = ()
) -> RegistryView:
    """The compliant hives with ``overlays`` layered on, minus the hives in ``drop``."""
    dropped = {d.upper() for d in drop}
    hives = {}
    for name, tree in COMPLIANT.items():
        if name in dropped:
            continue
        hive = MemoryHive.build(name, copy.deepcopy(tree))
        if overlays and name in overlays:
            hive.update(overlays[name])
        hives[name] = hive
    return RegistryView(hives=hives, unavailable={d: f"the {d} hive is not present (test)" for d in dropped})


@dataclass(frozen=True)
class Case:
    """One row of a rule's test table."""

    rule: str
    name: str
    status: Status
    system: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    software: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    security: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    sam: Mapping[str, Mapping[str, Any] | None] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    profile: str = "azure"
    os: OSFacts | None = SERVER
    image_type: str | None = None
    #: text the message must contain (the verdict's level: "missing", "is 3390" ...)
    says: str = ""

    def param(self) -> Any:
        return pytest.param(self, id=f"{self.rule}-{self.name}")


def params(cases: Iterable[Case]) -> list[Any]:
    return [c.param() for c in cases]


def run_case(case: Case) -> Result:
    view = build_view(
        {"SYSTEM": case.system, "SOFTWARE": case.software, "SECURITY": case.security, "SAM": case.sam}, case.drop
    )
    ctx = AuditContext(
        registry=view, facts=facts(case.os), profile=case.profile, options=AuditOptions(image_type=case.image_type)
    )
    results = audit_context(ctx, case.profile, select=[case.rule], today=_dt.date(2026, 1, 1))
    matching = [r for r in results if r.rule_id == case.rule]
    assert len(matching) == 1, f"{case.rule} did not run under {case.profile}: {[r.rule_id for r in results]}"
    return matching[0]


def check_case(case: Case) -> Result:
    result = run_case(case)
    assert result.status is case.status, f"{case.rule}/{case.name}: {result.status}: {result.message}"
    if case.says:
        assert case.says.lower() in result.message.lower(), result.message
    if case.status is Status.NOT_CHECKED:
        assert result.reason, "a not-checked result must say why"
    return result
