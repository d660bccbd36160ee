"""Azure Boost and accelerated networking drivers, the KMS host and DHCP: advice from Azure's live checkers, offline.

References (each rule cites the ones it rests on):

- "Windows VMs with the Microsoft Azure Network Adapter", learn.microsoft.com/azure/virtual-network/
  accelerated-networking-mana-windows, ms.date 2023-07-10: the MANA virtual function is
  ``PCI\\VEN_1414&DEV_00BA``; without the MANA driver in the OS, the VM has no accelerated networking on that
  hardware; drivers at https://aka.ms/manawindowsdrivers. (The Linux driver's table agrees:
  ``MANA_VF_DEVICE_ID 0x00BA``.)
- "Accelerated Networking overview", learn.microsoft.com/azure/virtual-network/accelerated-networking-overview,
  ms.date 2023-04-18: a custom image needs "the required drivers to work with Mellanox ConnectX-3, ConnectX-4 Lx,
  and ConnectX-5 NICs on Azure". The VM sees their virtual functions: vendor 15B3, device 1004 (ConnectX-3 VF,
  "MT04100"), 1016 (ConnectX-4 Lx VF) and 1018 (ConnectX-5 VF), as in the Linux mlx4/mlx5 PCI tables.
- "Troubleshoot Azure Windows virtual machine activation problems" (learn.microsoft.com/troubleshoot/azure/
  virtual-machines/windows/troubleshoot-activation-problems, ms.date 2023-10-17): Azure's KMS endpoints,
  port 1688: kms.core.windows.net or azkms.core.windows.net (public cloud), kms.core.chinacloudapi.cn or
  azkms.core.chinacloudapi.cn (China), kms.core.cloudapi.de (Germany), kms.core.usgovcloudapi.net (US Gov).
- "Prepare a Windows VHD or VHDX to upload to Azure" (ms.date 2022-08-04): ``Set-NetIPInterface -InterfaceAlias
  Ethernet -Dhcp Enabled``; Azure gives the VM its address over DHCP.

``SYSTEM\\DriverDatabase`` (Windows 8 and later) is the driver store's index: ``DeviceIds\\PCI\\<id>`` lists the INF
files that match a hardware id, ``DriverInfFiles\\<inf>\\Active`` names the INF's active package, and
``DriverPackages\\<package>`` holds its ``Provider``, ``SignerScore`` and a binary ``Version`` whose bytes 24-31 are
the driver date (FILETIME) and bytes 32-39 the driver version (four 16-bit parts, most significant first), the
DriverDate / DriverVersion pair of SP_DRVINFO_DATA. That layout is read from real hives, not from a Microsoft
document: a blob of another size gives no version, never a guess.
"""

from __future__ import annotations

import datetime as _dt
import re
import struct
from dataclasses import dataclass
from typing import Any

from azvhdaudit.errors import NotChecked
from azvhdaudit.registry.model import RegKey, RegValue
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import DOC_CURRENT, PLATFORM_BASELINE, AuditContext, Group, rule
from azvhdaudit.rules.os import os_of
from azvhdaudit.rules.values import HiveUnavailable, open_key, plain, printable, ps_string, read_value, value_evidence

__all__ = [
    "MANA_ID",
    "MELLANOX_IDS",
    "AZURE_KMS_HOSTS",
    "DriverBinding",
    "bound_driver",
    "package_version",
]

MANA_DOC = "https://learn.microsoft.com/azure/virtual-network/accelerated-networking-mana-windows"
AN_DOC = "https://learn.microsoft.com/azure/virtual-network/accelerated-networking-overview"
PLATFORM_NET = Group(area="platform-network", baselines=PLATFORM_BASELINE)
KMS_DOC = "https://learn.microsoft.com/troubleshoot/azure/virtual-machines/windows/troubleshoot-activation-problems"
MANA_DRIVERS = "https://aka.ms/manawindowsdrivers"
_MANA_SOURCE = (
    "Windows VMs with the Microsoft Azure Network Adapter (learn.microsoft.com/azure/virtual-network/"
    "accelerated-networking-mana-windows, ms.date 2023-07-10)"
)
_AN_SOURCE = (
    "Accelerated Networking overview (learn.microsoft.com/azure/virtual-network/"
    "accelerated-networking-overview, ms.date 2023-04-18), section Custom VM images"
)
_KMS_SOURCE = (
    "Troubleshoot Azure Windows virtual machine activation problems (learn.microsoft.com/troubleshoot/"
    "azure/virtual-machines/windows/troubleshoot-activation-problems, ms.date 2023-10-17)"
)

#: the MANA virtual function's hardware id
MANA_ID = "VEN_1414&DEV_00BA"
#: the Mellanox virtual functions Azure attaches, by the name the finding uses
MELLANOX_IDS: dict[str, str] = {
    "ConnectX-3 VF": "VEN_15B3&DEV_1004",
    "ConnectX-4 Lx VF": "VEN_15B3&DEV_1016",
    "ConnectX-5 VF": "VEN_15B3&DEV_1018",
}
#: Azure's KMS hosts, every cloud (port 1688)
AZURE_KMS_HOSTS: frozenset[str] = frozenset(
    {
        "kms.core.windows.net",
        "azkms.core.windows.net",
        "kms.core.chinacloudapi.cn",
        "azkms.core.chinacloudapi.cn",
        "kms.core.cloudapi.de",
        "kms.core.usgovcloudapi.net",
    }
)
KMS_PORT = 1688

DRIVER_DB = r"HKLM\SYSTEM\DriverDatabase"
SPP = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\SoftwareProtectionPlatform"
INTERFACES = r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters\Interfaces"
#: the network adapters' class key: ``{interface GUID}\Connection`` holds ``Name``, the alias Windows shows
NETWORK_CONNECTIONS = r"HKLM\SYSTEM\CurrentControlSet\Control\Network\{4D36E972-E325-11CE-BFC1-08002BE10318}"
#: Windows 8 / Server 2012: the first build with the NetTCPIP module's Set-NetIPInterface
_NETTCPIP_BUILD = 9200
#: more INFs matching one id, or more interfaces, than this is not what Windows writes
_MAX_CANDIDATES = 64
_MAX_INTERFACES = 1024
_FILETIME_EPOCH = _dt.datetime(1601, 1, 1, tzinfo=_dt.timezone.utc)


def package_version(raw: bytes | None) -> tuple[str | None, str | None]:
    """(version ``a.b.c.d``, date ``YYYY-MM-DD``) from a DriverPackages ``Version`` blob; ``(None, None)`` when the
    blob is not the 48-byte form or the date is out of range."""
    if raw is None or len(raw) != 48:
        return None, None
    filetime, version = struct.unpack_from("<QQ", raw, 24)
    parts = ".".join(str((version >> shift) & 0xFFFF) for shift in (48, 32, 16, 0))
    try:
        when = _FILETIME_EPOCH + _dt.timedelta(microseconds=filetime // 10)
    except OverflowError:
        return parts, None
    date = when.date().isoformat() if 1980 <= when.year <= 2100 else None
    return parts, date


@dataclass(frozen=True)
class DriverBinding:
    """A driver package the DriverDatabase matches to a hardware id."""

    inf: str
    package: str | None
    provider: str | None = None
    version: str | None = None
    date: str | None = None
    description: str | None = None
    signer_score: int | None = None

    def describe(self) -> str:
        if self.package is None:
            return f"{self.inf} (no active package)"
        bits = [
            b
            for b in (self.provider, self.version and f"version {self.version}", self.date and f"dated {self.date}")
            if b
        ]
        what = f' "{self.description}"' if self.description else ""
        return f"{self.package}{what}" + (f" ({', '.join(bits)})" if bits else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "inf": self.inf,
            "package": self.package,
            "provider": self.provider,
            "version": self.version,
            "date": self.date,
            "description": self.description,
        }


def _string(key: RegKey | None, name: str) -> str | None:
    value = key.value(name) if key is not None else None
    return value.data if value is not None and isinstance(value.data, str) and value.data else None


def _resolve_string(package: RegKey, text: str | None) -> str | None:
    """``%name%`` through the package's Strings subkey (left as written when the string is not there)."""
    if text and len(text) > 2 and text.startswith("%") and text.endswith("%"):
        return _string(package.subkey("Strings"), text[1:-1]) or text
    return text


def _binding(ctx: AuditContext, inf: str, device_id: str) -> DriverBinding:
    inf_key = ctx.registry.key(f"{DRIVER_DB}\\DriverInfFiles\\{inf}")
    package_name = _string(inf_key, "Active")
    if package_name is None:
        return DriverBinding(inf, None)
    package = ctx.registry.key(f"{DRIVER_DB}\\DriverPackages\\{package_name}")
    if package is None:
        return DriverBinding(inf, None)
    version_value = package.value("Version")
    version, date = package_version(version_value.raw if version_value is not None else None)
    descriptor = ctx.registry.key(f"{DRIVER_DB}\\DriverPackages\\{package_name}\\Descriptors\\PCI\\{device_id}")
    score = package.value("SignerScore")
    return DriverBinding(
        inf=inf,
        package=package_name,
        provider=_string(package, "Provider"),
        version=version,
        date=date,
        description=_resolve_string(package, _string(descriptor, "Description")),
        signer_score=score.data if score is not None and isinstance(score.data, int) else None,
    )


def _rank(binding: DriverBinding) -> tuple[int, int, tuple[int, ...]]:
    """Sort key, best first: PnP prefers the lower signer score, then the newer date, then the higher version (the
    feature score an INF may declare is not in the DriverDatabase and is not weighed here)."""
    version = tuple(-int(p) for p in binding.version.split(".")) if binding.version else ()
    date = -_dt.date.fromisoformat(binding.date).toordinal() if binding.date else 0
    return (binding.signer_score if binding.signer_score is not None else 1 << 32, date, version)


def bound_driver(ctx: AuditContext, device_id: str) -> tuple[DriverBinding | None, list[DriverBinding], Evidence]:
    """The package Windows would bind to ``PCI\\<device_id>`` (``None`` when no INF matches), every candidate, and
    the evidence. Raises :class:`HiveUnavailable` when SYSTEM or its DriverDatabase cannot be read."""
    database = open_key(ctx, DRIVER_DB)
    if database is None:
        raise HiveUnavailable(
            "SYSTEM",
            "the SYSTEM hive has no DriverDatabase key (Windows 8 and later keep it): "
            "the driver store's index cannot be read",
        )
    path = f"{DRIVER_DB}\\DeviceIds\\PCI\\{device_id}"
    key = ctx.registry.key(path)
    infs = [v.name for v in key.values()][:_MAX_CANDIDATES] if key is not None else []
    candidates = [_binding(ctx, inf, device_id) for inf in infs]
    active = [c for c in candidates if c.package is not None]
    chosen = min(active, key=_rank) if active else None
    evidence = Evidence(
        source="registry",
        hive="SYSTEM",
        key=ctx.registry.display_path(path),
        present=key is not None,
        actual=[c.describe() for c in candidates] or None,
        derived=True,
        note=f"PCI\\{device_id}: "
        + ("; ".join(c.describe() for c in candidates) if candidates else "no INF in the driver store matches this id"),
    )
    return chosen, candidates, evidence


def _driver_outcome(ctx: AuditContext, devices: dict[str, str], consequence: str, fixes: dict[str, str]) -> Outcome:
    """``fixes``: device name -> the install line for it; the finding's remediation gives those of the missing
    devices, one a line."""
    evidence: list[Evidence] = []
    found: dict[str, Any] = {}
    missing: list[str] = []
    bound: list[str] = []
    fix: list[str] = []
    for name, device_id in devices.items():
        chosen, _candidates, ev = bound_driver(ctx, device_id)
        evidence.append(ev)
        found[name] = chosen.to_dict() if chosen is not None else None
        if chosen is None:
            missing.append(f"{name} (PCI\\{device_id})")
            if fixes[name] not in fix:
                fix.append(fixes[name])
        else:
            bound.append(f"{name} (PCI\\{device_id}) -> {chosen.describe()}")
    expected = {name: f"a driver package for PCI\\{dev}" for name, dev in devices.items()}
    if missing:
        have = f"; bound: {'; '.join(bound)}" if bound else ""
        return Outcome(
            Status.WARNING,
            f"no driver in the driver store for {', '.join(missing)}: {consequence}{have}",
            expected=expected,
            actual=found,
            evidence=tuple(evidence),
            remediation="\n".join(fix),
        )
    return Outcome(Status.PASS, "; ".join(bound), expected=expected, actual=found, evidence=tuple(evidence))


@rule(
    PLATFORM_NET,
    id="platform_net.mana_driver",
    title="A driver for the Microsoft Azure Network Adapter (MANA, PCI\\VEN_1414&DEV_00BA) is in the driver store",
    severity=Severity.RECOMMENDED,
    rationale="Azure Boost sizes (v6 and later) give accelerated networking through MANA only. Windows binds the "
    "MANA virtual function to a driver package from its driver store; without one the VM keeps the synthetic "
    "adapter alone: no accelerated networking on Azure Boost sizes. Read from SYSTEM\\DriverDatabase, without "
    "walking the DriverStore.",
    source=f"{_MANA_SOURCE}: Driver check, Install drivers",
    remediation=f"Inside the VM, before capture: install the MANA driver package from {MANA_DRIVERS} (pnputil /add-"
    "driver <path>\\*.inf /install), or use a Windows image with MANA support built in.",
    references=(MANA_DOC, MANA_DRIVERS),
)
def check_mana(ctx: AuditContext) -> Outcome:
    fix = (
        f"Install the MANA driver from {MANA_DRIVERS} inside the VM (pnputil /add-driver <path>\\*.inf /install) "
        "before capturing the image"
    )
    return _driver_outcome(ctx, {"MANA": MANA_ID}, "no accelerated networking on Azure Boost sizes", {"MANA": fix})


@rule(
    PLATFORM_NET,
    id="platform_net.mellanox_driver",
    title="Drivers for the Mellanox ConnectX-3, ConnectX-4 Lx and ConnectX-5 virtual functions are in the driver store",
    severity=Severity.RECOMMENDED,
    rationale="Accelerated networking on sizes before Azure Boost hands the VM a Mellanox ConnectX-3, ConnectX-4 Lx "
    "or ConnectX-5 virtual function, depending on the host; Microsoft asks custom images to carry the drivers for "
    "all three. Read from SYSTEM\\DriverDatabase (which package Windows would bind, with its version).",
    source=f'{_AN_SOURCE}: "make sure you have the required drivers to work with Mellanox ConnectX-3, ConnectX-4 '
    'Lx, and ConnectX-5 NICs on Azure"',
    remediation="Inside the VM, before capture: install NVIDIA (Mellanox) WinOF (ConnectX-3) and WinOF-2 "
    "(ConnectX-4 Lx, ConnectX-5) drivers from NVIDIA's support site, or keep the inbox mlx4_bus/mlx5 drivers.",
    references=(AN_DOC,),
)
def check_mellanox(ctx: AuditContext) -> Outcome:
    winof2 = "Install NVIDIA WinOF-2 (ConnectX-4 Lx, ConnectX-5) inside the VM before capturing the image"
    fixes = {
        "ConnectX-3 VF": "Install NVIDIA WinOF (ConnectX-3) inside the VM before capturing the image",
        "ConnectX-4 Lx VF": winof2,
        "ConnectX-5 VF": winof2,
    }
    return _driver_outcome(ctx, MELLANOX_IDS, "no accelerated networking on sizes whose host has that adapter", fixes)


_HOST = re.compile(r"^\s*(?P<host>\[[^\]]*\]|[^:\s]+)(?::(?P<port>\d+))?\s*$")


@rule(
    PLATFORM_NET,
    id="platform_net.kms_host",
    title="The KMS host is unset or one of Azure's KMS endpoints",
    severity=Severity.RECOMMENDED,
    rationale="A VM from a custom image activates against Azure's KMS (port 1688). A KeyManagementServiceName "
    "left from the source network points activation at a host the VM cannot reach in Azure, and Windows stays "
    "unactivated (error 0xC004F074). Unset, Windows uses Azure's KMS as the platform configures it.",
    source=f"{_KMS_SOURCE}: Understanding Azure KMS endpoints; Step 2",
    remediation="Inside the VM: cscript %windir%\\system32\\slmgr.vbs /skms azkms.core.windows.net:1688 (the "
    "endpoint of the VM's cloud), or cscript %windir%\\system32\\slmgr.vbs /ckms to clear it.",
    references=(KMS_DOC,),
)
def check_kms(ctx: AuditContext) -> Outcome:
    name = read_value(ctx, SPP, "KeyManagementServiceName")
    port = read_value(ctx, SPP, "KeyManagementServicePort")
    evidence = (name.evidence, port.evidence)
    expected = f"unset, or one of {', '.join(sorted(AZURE_KMS_HOSTS))} (port {KMS_PORT})"
    text = name.data if isinstance(name.data, str) else None
    if name.value is not None and text is None:
        return Outcome(
            Status.WARNING,
            f"KeyManagementServiceName is {name.value.type_name} {plain(name.data)} under "
            f"{name.key_path}; Windows reads a REG_SZ host name",
            expected=expected,
            actual=name.data,
            evidence=evidence,
            remediation="cscript %windir%\\system32\\slmgr.vbs /ckms inside the VM",
        )
    if not text or not text.strip():
        return Outcome(
            Status.PASS, f"no KMS host is set under {name.key_path}", expected=expected, actual=None, evidence=evidence
        )
    match = _HOST.match(text)
    host = (match.group("host") if match else text).strip().lower().rstrip(".")
    port_number = (
        int(match.group("port"))
        if match and match.group("port")
        else (
            port.data
            if isinstance(port.data, int)
            else (int(port.data) if isinstance(port.data, str) and port.data.strip().isdigit() else None)
        )
    )
    if host not in AZURE_KMS_HOSTS:
        return Outcome(
            Status.WARNING,
            f"KeyManagementServiceName is '{text}', not an Azure KMS endpoint: "
            "activation in Azure will fail unless that host is reachable from the VM",
            expected=expected,
            actual=text,
            evidence=evidence,
            remediation="cscript %windir%\\system32\\slmgr.vbs /skms azkms.core.windows.net:1688 inside the VM (the "
            "endpoint of the VM's cloud), or /ckms to clear it",
        )
    if port_number is not None and port_number != KMS_PORT:
        return Outcome(
            Status.WARNING,
            f"KMS host {host} is Azure's, but on port {port_number}; Azure's KMS listens on {KMS_PORT}",
            expected=expected,
            actual=f"{host}:{port_number}",
            evidence=evidence,
            remediation=f"cscript %windir%\\system32\\slmgr.vbs /skms {host}:{KMS_PORT} inside the VM",
        )
    return Outcome(Status.PASS, f"KMS host '{text}' is Azure's", expected=expected, actual=text, evidence=evidence)


def _addresses(key: RegKey, name: str) -> list[str]:
    value = key.value(name)
    data = value.data if value is not None else None
    items = data if isinstance(data, list) else ([data] if isinstance(data, str) else [])
    return [a.strip() for a in items if isinstance(a, str) and a.strip() and a.strip() != "0.0.0.0"]


def _connection_names(ctx: AuditContext) -> dict[str, tuple[str, RegValue]]:
    """Interface GUID (lower case) -> (its connection name, the value read), from the network adapters' class key;
    empty when that key is absent. Bounded like the interfaces."""
    root = open_key(ctx, NETWORK_CONNECTIONS)
    adapters = root.subkeys() if root is not None else []
    names: dict[str, tuple[str, RegValue]] = {}
    for adapter in adapters[:_MAX_INTERFACES]:
        connection = adapter.subkey("Connection")
        value = connection.value("Name") if connection is not None else None
        if value is not None and isinstance(value.data, str) and value.data.strip():
            names[adapter.name.lower()] = (value.data, value)
    return names


def _dhcp_fix(names: dict[str, str | None], build: int | None) -> str:
    """One line per interface with a static address, naming it by its alias: the document's Set-NetIPInterface,
    or netsh where the OS predates that cmdlet (Windows 7 / Server 2008 R2), as PowerShell statements (the alias a
    single-quoted literal: nothing in it is expanded); an interface whose alias is not in the hive gets the line with
    a placeholder, to finish by hand."""
    lines = []
    for guid, name in names.items():
        if name is None or not name.isprintable():
            # a name with a line break or another control character is not one Windows gives: never put it in a
            # line that a fix script runs
            lines.append(
                f"Set-NetIPInterface -InterfaceAlias <alias of interface {printable(guid)}> -Dhcp Enabled  "
                "(its Connection Name is not in the hive: Get-NetAdapter shows it)"
            )
        elif build is not None and build < _NETTCPIP_BUILD:
            lines.append(f"netsh interface ip set address {ps_string(name)} dhcp")
        else:
            lines.append(f"Set-NetIPInterface -InterfaceAlias {ps_string(name)} -Dhcp Enabled")
    return "\n".join(lines)


@rule(
    PLATFORM_NET,
    id="platform_net.dhcp_enabled",
    title="The network interfaces take their address from DHCP (no static IPv4 address)",
    severity=Severity.RECOMMENDED,
    rationale="Azure assigns the VM's address through DHCP; a static address set in the guest does not match the "
    "one Azure gives the NIC and can cut the VM off the network. The prepare-for-upload document sets DHCP on "
    "the interface before upload. Interfaces with EnableDHCP = 0 and no address (never configured) are not "
    "counted.",
    source="Prepare a Windows VHD or VHDX to upload to Azure (ms.date 2022-08-04), section Set Windows "
    "configurations for Azure: Set-NetIPInterface -InterfaceAlias Ethernet -Dhcp Enabled",
    remediation="Inside the VM: Set-NetIPInterface -InterfaceAlias <alias> -Dhcp Enabled (or netsh interface ip set "
    "address <alias> dhcp) for each interface named in the finding.",
    references=(DOC_CURRENT,),
)
def check_dhcp(ctx: AuditContext) -> Outcome:
    root = open_key(ctx, INTERFACES)
    if root is None:
        why = f"{ctx.registry.display_path(INTERFACES)} does not exist: no interface configuration to read"
        raise NotChecked(why)
    static: list[str] = []
    static_ids: list[str] = []
    dhcp: list[str] = []
    evidence: list[Evidence] = []
    found: dict[str, Any] = {}
    interfaces = root.subkeys()
    if len(interfaces) > _MAX_INTERFACES:
        why = (
            f"{len(interfaces)} interface keys under {ctx.registry.display_path(INTERFACES)}: not a hive Windows wrote"
        )
        raise NotChecked(why)
    # read before the interfaces are judged, not after: the names do not depend on them, so a remote audit reads
    # both chains of keys side by side
    aliases = _connection_names(ctx)
    for iface in interfaces:
        path = f"{INTERFACES}\\{iface.name}"
        enable = iface.value("EnableDHCP")
        addresses = _addresses(iface, "IPAddress")
        evidence.append(
            value_evidence(
                ctx,
                path,
                "EnableDHCP",
                enable,
                "registry",
                note=f"IPAddress {', '.join(addresses)}" if addresses else "",
            )
        )
        flag = enable.data if enable is not None else None
        found[iface.name] = {"EnableDHCP": flag, "IPAddress": addresses or None}
        if flag == 1:
            dhcp.append(iface.name)
        elif addresses:
            static_ids.append(iface.name)
            static.append(f"{iface.name} (EnableDHCP {plain(flag)}, IPAddress {', '.join(addresses)})")
    if static:
        names: dict[str, str | None] = {}
        for guid in static_ids:
            name, value = aliases.get(guid.lower(), (None, None))
            path = f"{NETWORK_CONNECTIONS}\\{guid}\\Connection"
            evidence.append(value_evidence(ctx, path, "Name", value, "registry", note="the interface's alias"))
            names[guid] = found[guid]["alias"] = name
        osf = os_of(ctx)
        return Outcome(
            Status.WARNING,
            f"static IPv4 configuration on {'; '.join(static)}: Azure gives the NIC its address over DHCP",
            expected="EnableDHCP = 1",
            actual=found,
            evidence=tuple(evidence),
            remediation=_dhcp_fix(names, osf.build if osf is not None else None),
        )
    if not dhcp:
        why = "no interface under " + ctx.registry.display_path(INTERFACES) + " has EnableDHCP = 1 or an address"
        raise NotChecked(why, expected="EnableDHCP = 1", actual=found, evidence=tuple(evidence))
    return Outcome(
        Status.PASS,
        f"DHCP enabled on {len(dhcp)} interface(s), no static IPv4 address",
        expected="EnableDHCP = 1",
        actual=found,
        evidence=tuple(evidence),
    )
