"""A finished Report with a realistic mix of results, built directly (no image, no engine).

The renderers, the CLI and the fix writer are tested on exactly what they are given.
"""

from __future__ import annotations

import datetime as dt

from azvhdaudit.facts import ContainerFacts, ImageFacts, OSFacts, PartitionFacts
from azvhdaudit.report import Evidence, Report, Result, Severity, Status

CCS = r"ControlSet001"


def _reg(
    key: str,
    name: str,
    type_: str,
    actual: object,
    raw: str | None,
    *,
    present: bool = True,
    hive: str = "SYSTEM",
    dirty: bool = False,
    source: str = "registry",
) -> Evidence:
    return Evidence(
        source=source,
        hive=hive,
        key=key,
        value_name=name,
        type=type_ if present else None,
        raw=raw if present else None,
        actual=actual if present else None,
        present=present,
        control_set=CCS if hive == "SYSTEM" else None,
        hive_dirty=dirty,
    )


def make_results() -> list[Result]:
    ts = rf"{CCS}\Control\Terminal Server"
    return [
        Result(
            rule_id="rdp.port",
            title="Remote Desktop listens on TCP 3389",
            area="rdp",
            severity=Severity.REQUIRED,
            status=Status.FAIL,
            message="PortNumber is 3390, Azure's RDP endpoint expects 3389",
            expected=3389,
            actual=3390,
            # the engine records the full path; other rows below record it relative to the hive
            evidence=(
                _reg(
                    "HKLM\\SYSTEM\\" + ts + r"\WinStations\RDP-Tcp",
                    "PortNumber",
                    "REG_DWORD",
                    3390,
                    "3e0d0000",
                    dirty=True,
                ),
            ),
            remediation=(
                "Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal "
                "Server\\WinStations\\RDP-Tcp' -Name PortNumber -Value 3389 -Type DWord -Force"
            ),
            rationale="Azure's network security group and the portal connect to 3389.",
            source="Check the Windows services / Update Remote Desktop registry settings",
            references=("https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image",),
            baselines=("azure", "azure-2017"),
        ),
        Result(
            rule_id="rdp.enabled",
            title="Remote Desktop connections are allowed",
            area="rdp",
            severity=Severity.REQUIRED,
            status=Status.PASS,
            message="fDenyTSConnections is 0",
            expected=0,
            actual=0,
            evidence=(_reg(ts, "fDenyTSConnections", "REG_DWORD", 0, "00000000"),),
            remediation=(
                "Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server' "
                "-Name fDenyTSConnections -Value 0 -Type DWord -Force"
            ),
            source="Update Remote Desktop registry settings",
            baselines=("azure", "azure-2017"),
        ),
        Result(
            rule_id="firewall.rdp-in",
            title="The Remote Desktop inbound firewall rules are enabled",
            area="firewall",
            severity=Severity.REQUIRED,
            status=Status.FAIL,
            message="RemoteDesktop-UserMode-In-TCP is disabled (Active=FALSE)",
            expected="Active=TRUE",
            actual="Active=FALSE",
            evidence=(
                _reg(
                    rf"{CCS}\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules",
                    "RemoteDesktop-UserMode-In-TCP",
                    "REG_SZ",
                    "v2.30|Action=Allow|Active=FALSE|Dir=In|Protocol=6|LPort=3389|",
                    None,
                ),
            ),
            remediation="Enable-NetFirewallRule -DisplayGroup 'Remote Desktop'",
            source="Configure Windows Firewall rules",
        ),
        Result(
            rule_id="services.termservice",
            title="Remote Desktop Services starts manually or automatically",
            area="services",
            severity=Severity.REQUIRED,
            status=Status.FAIL,
            message="TermService Start is 4 (disabled)",
            expected=3,
            actual=4,
            evidence=(_reg(rf"{CCS}\Services\TermService", "Start", "REG_DWORD", 4, "04000000"),),
            remediation="Get-Service -Name TermService | Set-Service -StartupType Manual",
            source="Check the Windows services",
        ),
        Result(
            rule_id="time.utc",
            title="The hardware clock is read as UTC",
            area="time",
            severity=Severity.REQUIRED,
            status=Status.FAIL,
            message="RealTimeIsUniversal is absent",
            expected=1,
            actual=None,
            evidence=(
                _reg(
                    rf"{CCS}\Control\TimeZoneInformation", "RealTimeIsUniversal", "REG_DWORD", None, None, present=False
                ),
            ),
            remediation=(
                "Set-ItemProperty -Path HKLM:\\SYSTEM\\CurrentControlSet\\Control\\TimeZoneInformation "
                "-Name RealTimeIsUniversal -Value 1 -Type DWord -Force"
            ),
            source="Set Windows configurations for Azure",
        ),
        Result(
            rule_id="bcd.integrityservices",
            title="Boot integrity services are enabled",
            area="bcd",
            severity=Severity.RECOMMENDED,
            status=Status.WARNING,
            message="{bootmgr} has no integrityservices element",
            expected=True,
            actual=None,
            evidence=(
                Evidence(
                    source="bcd",
                    hive="BCD",
                    key=r"Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}",
                    value_name="integrityservices",
                    present=False,
                    note="element 0x16000048 absent",
                ),
            ),
            remediation=(
                "bcdedit /set {bootmgr} integrityservices enable\nbcdedit /set {default} integrityservices enable"
            ),
            source="Check the Boot Configuration Data (BCD) settings",
        ),
        Result(
            rule_id="bcd.recoveryenabled",
            title="Windows recovery is off at boot",
            area="bcd",
            severity=Severity.REQUIRED,
            status=Status.FAIL,
            message="{default} recoveryenabled is Yes",
            expected=False,
            actual=True,
            evidence=(
                Evidence(
                    source="bcd",
                    hive="BCD",
                    key=r"Objects\{current}\Elements\16000009",
                    value_name="Element",
                    type="REG_BINARY",
                    raw="01",
                    actual=True,
                    present=True,
                ),
            ),
            remediation="bcdedit /set {default} recoveryenabled Off",
            source="Check the Boot Configuration Data (BCD) settings",
        ),
        Result(
            rule_id="disk.format",
            title="The disk is a fixed VHD",
            area="disk",
            severity=Severity.REQUIRED,
            status=Status.ERROR,
            message="rule failed: KeyError('footer')",
            evidence=(Evidence(source="container", key="footer", note="footer unreadable"),),
            source="Convert the virtual disk to a fixed size VHD",
            remediation="Convert-VHD -Path C:\\disk.vhdx -DestinationPath C:\\disk.vhd -VHDType Fixed",
        ),
        Result(
            rule_id="winrm.listener",
            title="A WinRM listener is configured",
            area="winrm",
            severity=Severity.RECOMMENDED,
            status=Status.NOT_CHECKED,
            message="",
            reason="the SOFTWARE hive was not found at Windows\\System32\\config\\SOFTWARE",
            source="Set Windows configurations for Azure",
        ),
        Result(
            rule_id="agent.installed",
            title="The Azure VM agent is installed",
            area="agent",
            severity=Severity.RECOMMENDED,
            status=Status.MANUAL,
            message="",
            reason="installing the agent needs the running VM",
            remediation="Start-Process msiexec.exe -ArgumentList '/i WindowsAzureVmAgent.msi /quiet' -Wait",
            source="Install the Azure Virtual Machine Agent",
        ),
        Result(
            rule_id="sysprep.generalized",
            title="The image is generalized",
            area="sysprep",
            severity=Severity.REQUIRED,
            status=Status.WAIVED,
            message="ImageState is IMAGE_STATE_COMPLETE",
            reason="specialized image for migration, ticket OPS-1234",
            waived_status=Status.FAIL,
            expected="IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE",
            actual="IMAGE_STATE_COMPLETE",
            source="Determine when to use Sysprep",
        ),
        Result(
            rule_id="storage.san-policy",
            title="All new disks are brought online",
            area="storage",
            severity=Severity.REQUIRED,
            status=Status.NOT_APPLICABLE,
            message="",
            reason="only for Windows Server 2008 R2 and later; this is Windows 7",
            source="Set Windows configurations for Azure",
        ),
        Result(
            rule_id="time.w32time",
            title="The Windows Time service starts automatically",
            area="time",
            severity=Severity.REQUIRED,
            status=Status.PASS,
            message="w32time Start is 2",
            expected=2,
            actual=2,
            evidence=(_reg(rf"{CCS}\Services\W32Time", "Start", "REG_DWORD", 2, "02000000"),),
            remediation="Get-Service -Name w32time | Set-Service -StartupType Automatic",
            source="Set Windows configurations for Azure",
        ),
        Result(
            rule_id="environment.temp",
            title="TEMP points to %SystemRoot%\\TEMP",
            area="environment",
            severity=Severity.RECOMMENDED,
            status=Status.WARNING,
            message="TEMP is C:\\Temp <script>alert(1)</script>",
            expected="%SystemRoot%\\TEMP",
            actual="C:\\Temp <script>alert(1)</script>",
            evidence=(
                _reg(
                    rf"{CCS}\Control\Session Manager\Environment",
                    "TEMP",
                    "REG_EXPAND_SZ",
                    "C:\\Temp <script>alert(1)</script>",
                    None,
                    source="policy",
                ),
            ),
            remediation=(
                "Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\"
                'Environment\' -Name TEMP -Value "%SystemRoot%\\TEMP" -Type ExpandString -Force'
            ),
        ),
        Result(
            rule_id="disk.partition-style",
            title="Data disk has a partition table",
            area="disk",
            severity=Severity.ADVISORY,
            status=Status.PASS,
            message="GPT",
            disk="data1",
        ),
    ]


def make_facts() -> ImageFacts:
    container = ContainerFacts(
        path="gen2-sample.vhdx",
        format="vhdx",
        subtype="dynamic",
        virtual_size=4 * 1024**3,
        file_size=64 * 1024**2,
        warnings=("the VHDX log is not empty",),
    )
    parts = [
        PartitionFacts(
            index=0,
            scheme="gpt",
            offset=1024**2,
            size=100 * 1024**2,
            type_id="c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
            type_name="EFI System",
            filesystem="fat",
        ),
        PartitionFacts(
            index=1,
            scheme="gpt",
            offset=101 * 1024**2,
            size=3 * 1024**3,
            type_id="ebd0a0a2-b9e5-4433-87c0-68b6b72699c7",
            type_name="Basic data",
            filesystem="ntfs",
            ntfs_dirty=False,
        ),
    ]
    return ImageFacts(
        source="gen2-sample.vhdx",
        container=container,
        partition_style="gpt",
        partitions=parts,
        windows_partition=1,
        boot_partition=0,
        bcd_path="EFI\\Microsoft\\Boot\\BCD",
        generation=2,
        os=OSFacts(
            product_name="Windows Server 2019 Datacenter",
            build=17763,
            ubr=3650,
            installation_type="Server",
            architecture="AMD64",
        ),
        hives={
            "SYSTEM": {
                "source": "Windows\\System32\\config\\SYSTEM",
                "dirty": True,
                "replayed": True,
                "backend": "regf",
                "error": "",
            }
        },
        current_control_set=1,
        default_control_set=1,
    )


def make_report(source: str = "gen2-sample.vhdx", results: list[Result] | None = None) -> Report:
    facts = make_facts()
    return Report(
        source=source,
        profile="azure",
        results=make_results() if results is None else results,
        facts=facts.to_dict(),
        timings_ms={"open": 120.5, "rules": 33.0},
        tool_version="0.1.0",
        started=dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.timezone.utc),
        options={"image_type": "generalized", "select": [], "ignore": []},
        disks={"data1": {"partition_style": "gpt"}},
    )


def make_clean_report(source: str = "clean.vhd") -> Report:
    results = [r for r in make_results() if r.status in (Status.PASS, Status.NOT_APPLICABLE)]
    return make_report(source, results)
