"""The remediation writer: content, order and idempotence of the PowerShell script; the .reg file,
merged into a real SYSTEM hive with hivexregedit and read back."""

from __future__ import annotations

import dataclasses
import lzma
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from reportkit import make_clean_report, make_report

from azvhdaudit.errors import ProfileError
from azvhdaudit.fix import fix_script, powershell_script, reg_file, split_statements
from azvhdaudit.report import Report, Result, Severity, Status

REALDATA = Path(__file__).resolve().parents[1] / "data" / "realdata"


def _result(rule_id: str, area: str, remediation: str, status: Status = Status.FAIL, **kw: object) -> Result:
    return Result(
        rule_id=rule_id,
        title=f"title of {rule_id}",
        area=area,
        severity=Severity.REQUIRED,
        status=status,
        message=f"why {rule_id}",
        remediation=remediation,
        **kw,
    )  # type: ignore[arg-type]


def _code(script: str) -> list[str]:
    """The script's statements, comments and the header left out."""
    body = script.split("#>", 1)[1]
    return [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_each_failing_rule_is_commented_with_its_reason(report: Report) -> None:
    script = powershell_script(report)
    for result in report.filter(status="fail"):
        assert f"# {result.rule_id} — {result.title}" in script
        assert f"#   {result.message}" in script
    for result in report.filter(status=("pass", "warning", "not_checked", "manual", "waived", "error")):
        assert f"# {result.rule_id} —" not in script


def test_warnings_only_when_asked(report: Report) -> None:
    assert "environment.temp" not in powershell_script(report)
    assert "# environment.temp —" in powershell_script(report, include_warnings=True)


def test_order_services_settings_rdp_firewall_bcd(report: Report) -> None:
    code = _code(powershell_script(report, include_warnings=True))

    def first(pattern: str) -> int:
        return next(i for i, line in enumerate(code) if re.search(pattern, line))

    order = [
        first(r"Set-Service"),
        first(r"RealTimeIsUniversal"),
        first(r"RDP-Tcp"),
        first(r"NetFirewallRule"),
        first(r"\$bcdCommands"),
    ]
    assert order == sorted(order)


def test_bcdedit_runs_through_cmd(report: Report) -> None:
    code = _code(powershell_script(report, include_warnings=True))
    assert not any(line.startswith("bcdedit") for line in code)  # PowerShell would eat {default}
    block = code[code.index("$bcdCommands = @(") :]
    assert block[1:4] == [
        "    'bcdedit /set {bootmgr} integrityservices enable'",
        "    'bcdedit /set {default} integrityservices enable'",
        "    'bcdedit /set {default} recoveryenabled Off'",
    ]
    assert "    cmd.exe /c $line" in block


def test_registry_writes_create_a_missing_key_first(report: Report) -> None:
    code = _code(powershell_script(report))
    i = next(i for i, line in enumerate(code) if "-Name PortNumber" in line)
    assert code[i - 1] == (
        "Confirm-RegistryKey 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp'"
    )


def test_firewall_rule_is_added_only_when_absent() -> None:
    fix = (
        "New-NetFirewallRule -DisplayName AzurePlatform -Direction Inbound -RemoteAddress 168.63.129.16 "
        "-Action Allow; New-NetFirewallRule -DisplayName AzurePlatform -Direction Outbound "
        "-RemoteAddress 168.63.129.16 -Action Allow"
    )
    code = _code(powershell_script(make_report(results=[_result("firewall.azure", "firewall", fix)])))
    guards = [line for line in code if line.startswith("if (-not (Get-NetFirewallRule")]
    assert guards == [
        "if (-not (Get-NetFirewallRule -DisplayName AzurePlatform -ErrorAction SilentlyContinue | "
        "Where-Object Direction -eq 'Inbound')) {",
        "if (-not (Get-NetFirewallRule -DisplayName AzurePlatform -ErrorAction SilentlyContinue | "
        "Where-Object Direction -eq 'Outbound')) {",
    ]


def test_a_shared_command_runs_once() -> None:
    shared = "Get-Service -Name BFE, Dhcp | Where-Object StartType -ne Automatic | Set-Service -StartupType Automatic"
    results = [_result("services.bfe", "services", shared), _result("services.dhcp", "services", shared)]
    script = powershell_script(make_report(results=results))
    assert _code(script).count(shared) == 1
    assert f"# (already done above) {shared}" in script


@pytest.mark.parametrize(
    ("remediation", "commands", "notes"),
    [
        ("Set-Service -Name w32time -StartupType Automatic", ["Set-Service -Name w32time -StartupType Automatic"], []),
        (
            "Enable-PSRemoting -Force  (it enables the firewall rules)",
            ["Enable-PSRemoting -Force"],
            ["(it enables the firewall rules)"],
        ),
        (
            "Set 'Windows Firewall: Allow ICMP exceptions' to Enabled",
            [],
            ["Set 'Windows Firewall: Allow ICMP exceptions' to Enabled"],
        ),
        (
            "Remove the rule (Remove-NetFirewallRule -Name <id>)",
            [],
            ["Remove the rule (Remove-NetFirewallRule -Name <id>)"],
        ),
        (
            "route.exe print  (see 'Persistent Routes')  ->  route.exe delete <destination>",
            [],
            ["route.exe print  (see 'Persistent Routes')  ->  route.exe delete <destination>"],
        ),
        ("chkdsk.exe /f", [], ["chkdsk.exe /f"]),
        (
            "$key = 'HKLM:\\SOFTWARE\\X'; New-ItemProperty -Path $key -Name A -Type DWord -Force -Value 1",
            ["$key = 'HKLM:\\SOFTWARE\\X'", "New-ItemProperty -Path $key -Name A -Type DWord -Force -Value 1"],
            [],
        ),
        ("powercfg.exe /setactive SCHEME_MIN", ["powercfg.exe /setactive SCHEME_MIN"], []),
        (
            "After the VM is created in Azure: Set-ItemProperty -Path x -Name y -Value 1",
            [],
            ["After the VM is created in Azure: Set-ItemProperty -Path x -Name y -Value 1"],
        ),
        # a string read from the image, quoted in a computed fix: a ';' or a remark inside it is text, never the
        # start of another statement
        (
            "Set-NetIPInterface -InterfaceAlias 'x''; Remove-Item C:\\ -Recurse; ''' -Dhcp Enabled",
            ["Set-NetIPInterface -InterfaceAlias 'x''; Remove-Item C:\\ -Recurse; ''' -Dhcp Enabled"],
            [],
        ),
        (
            'Set-Service -Name "a; Remove-Item b" -StartupType Automatic; Start-Service -Name W32Time',
            ['Set-Service -Name "a; Remove-Item b" -StartupType Automatic', "Start-Service -Name W32Time"],
            [],
        ),
        (
            "Set-NetIPInterface -InterfaceAlias 'LAN  (2)' -Dhcp Enabled  (inside the VM)",
            ["Set-NetIPInterface -InterfaceAlias 'LAN  (2)' -Dhcp Enabled"],
            ["(inside the VM)"],
        ),
        # PowerShell reads the typographic quotes as quotes: doubled, they are text
        (
            "Set-NetIPInterface -InterfaceAlias 'x\u2019\u2019; Remove-Item C:\\; \u2018\u2018' -Dhcp Enabled",
            ["Set-NetIPInterface -InterfaceAlias 'x\u2019\u2019; Remove-Item C:\\; \u2018\u2018' -Dhcp Enabled"],
            [],
        ),
    ],
)
def test_split_statements(remediation: str, commands: list[str], notes: list[str]) -> None:
    assert split_statements(remediation) == (commands, notes)


@pytest.mark.parametrize(
    "line",
    [
        # a placeholder with a ';' in it: cut there, no part would hold the whole placeholder
        "Set-NetIPInterface -InterfaceAlias <alias of x; Remove-Item C:\\; Get-Date> -Dhcp Enabled  (by hand)",
        # a typographic quote closes the literal it is not doubled in
        "Set-NetIPInterface -InterfaceAlias 'x\u2019; Remove-Item C:\\ -Recurse; \u2018' -Dhcp Enabled",
        # an unbalanced quote: PowerShell would read the rest of the script as the string
        "Set-NetIPInterface -InterfaceAlias 'x -Dhcp Enabled",
        # a control character, a line separator
        "Set-NetIPInterface -InterfaceAlias 'a\x1b[2Jb' -Dhcp Enabled",
        "Set-NetIPInterface -InterfaceAlias 'a\u2028b' -Dhcp Enabled",
        # outside the strings: more than one statement, a redirection, an escape
        "Set-Service -Name w32time -StartupType Automatic & calc.exe",
        "Set-Service -Name w32time -StartupType Automatic > C:\\Windows\\win.ini",
        "Set-Service -Name w32time` -StartupType Automatic",
        # text other than ASCII outside a single-quoted literal; PowerShell expands a double-quoted one
        "Set-Service -Name w\u00fct -StartupType Automatic",
        'Set-Service -Name "$(Remove-Item C:\\)" -StartupType Automatic',
        # a bcdedit line runs through cmd.exe: nothing cmd reads as an operator, a variable, an escaped quote
        'bcdedit /set "{default}" loadoptions "x" & calc',
        'bcdedit /set "{default}" loadoptions "%COMSPEC%"',
        'bcdedit /set "{default}" loadoptions "x\\"',
        # a program's arguments: PowerShell would not escape a '"' or a final backslash on its command line
        "netsh interface ip set address 'x\" static 10.0.0.9' dhcp",
        "netsh interface ip set address 'x\\' dhcp",
    ],
)
def test_a_line_that_is_not_well_formed_is_never_run(line: str) -> None:
    """The last check before a line is scripted, whatever computed it: the line is left to do by hand."""
    commands, notes = split_statements(line)
    assert commands == [] and notes
    script = powershell_script(make_report(results=[_result("x.hostile", "network", line)]))
    assert "Remove-Item" not in "\n".join(_code(script)) and "calc" not in "\n".join(_code(script))
    assert all(row.isprintable() for row in script.split("\n"))


def test_the_script_runs_in_ascii_and_its_header_holds() -> None:
    """Windows PowerShell 5.1 reads a script without a byte order mark in the ANSI code page: the UTF-8 of U+0111
    ends in 0x91, a typographic quote there. Statements are spelled in ASCII; the image's name cannot close the
    header's block comment."""
    line = "Set-NetIPInterface -InterfaceAlias 'r\u00e9seau \u0111 ''1'' \u2019\u2019' -Dhcp Enabled"
    report = make_report(
        source="/img/x#>Remove-Item C:\\ -Recurse<#.vhd", results=[_result("x.alias", "network", line)]
    )
    script = powershell_script(report)
    spelled = (
        "Set-NetIPInterface -InterfaceAlias ('r' + [char]0x00E9 + 'seau ' + [char]0x0111 + ' ''1'' ' + [char]0x2019)"
        " -Dhcp Enabled"
    )
    header, _ = script.split("\n#>\n", 1)
    assert "#>" not in header and "x#\\x3eRemove-Item" in header
    assert spelled in _code(script) and not any("Remove-Item" in row for row in _code(script))
    assert all(row.isascii() for row in _code(script))


def test_reg_file_refuses_what_regedit_cannot_take() -> None:
    """A line break in what the report quotes, or in a value name, never starts a line of its own; string data that
    is not printable ASCII is written as the bytes PowerShell writes (hex(1))."""
    key = "'HKLM:\\SOFTWARE\\Test'"
    base = make_report().results[0]
    results = [
        dataclasses.replace(
            base,
            rule_id="x.found",
            remediation=f"Set-ItemProperty -Path {key} -Name A -Value 1 -Type DWord",
            actual='a\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Evil]\r\n"Run"="calc.exe"',
        ),
        dataclasses.replace(
            base, rule_id="x.tab", remediation=f"Set-ItemProperty -Path {key} -Name T -Value 'a\tb' -Type String"
        ),
        dataclasses.replace(
            base, rule_id="x.slash", remediation="Set-ItemProperty -Path 'HKLM:\\SOFTWARE\\A/B' -Name S -Value 1"
        ),
    ]
    text = reg_file(make_report(source="x\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Evil2]", results=results))
    assert "Evil" not in "".join(_reg_entries(text))
    assert not any(line.startswith('"Run"') for line in text.split("\r\n"))
    values = {k: v for key_values in _reg_entries(text).values() for k, v in key_values.items()}
    assert values["A"] == "dword:00000001"
    assert "T" not in values  # a tab makes the PowerShell line by hand: the .reg file does not set it either
    assert "S" not in values and ";   x.slash - " in text  # PowerShell reads A/B as two keys


def test_prose_and_host_steps_are_not_run() -> None:
    results = [
        _result("firewall.icmp_policy", "firewall", "Set 'Windows Firewall: Allow ICMP exceptions' to Enabled"),
        _result(
            "disk.vhd_fixed", "disk-format", "Convert-VHD -Path C:\\a.vhd -DestinationPath C:\\b.vhd -VHDType Fixed"
        ),
        _result(
            "sysprep.generalized", "sysprep", "C:\\Windows\\System32\\Sysprep\\sysprep.exe /oobe /generalize /shutdown"
        ),
        _result("sysprep.hibernation_off", "sysprep", "powercfg.exe /hibernate off"),
        _result(
            "crashdump.wer", "crashdump", "$key = 'HKLM:\\SOFTWARE\\W'; New-ItemProperty -Path $key -Name A -Value 1"
        ),
    ]
    script = powershell_script(make_report(results=results))
    code = _code(script)
    assert "# BY HAND: Set 'Windows Firewall: Allow ICMP exceptions' to Enabled" in script
    assert "# Convert-VHD -Path C:\\a.vhd -DestinationPath C:\\b.vhd -VHDType Fixed" in script
    assert not any("Convert-VHD" in line or "sysprep.exe" in line for line in code)
    assert script.index("Convert-VHD") < script.index("sysprep.exe")  # host steps, then sysprep, last
    assert "powercfg.exe /hibernate off" in code  # a sysprep-area step that is not sysprep itself runs
    at = code.index("$key = 'HKLM:\\SOFTWARE\\W'")
    assert code[at : at + 3] == [
        "$key = 'HKLM:\\SOFTWARE\\W'",
        "Confirm-RegistryKey $key",
        "New-ItemProperty -Path $key -Name A -Value 1",
    ]


def test_nothing_to_fix() -> None:
    script = powershell_script(make_clean_report())
    assert "Nothing to fix" in script and "Confirm-RegistryKey '" not in script


# --- .reg -----------------------------------------------------------------------------------------


def _reg_entries(text: str) -> dict[str, dict[str, str]]:
    entries: dict[str, dict[str, str]] = {}
    key = None
    for line in text.split("\r\n"):
        if line.startswith("["):
            key = line[1:-1]
            entries.setdefault(key, {})
        elif line and not line.startswith(";") and "=" in line and key:
            name, data = line.split("=", 1)
            entries[key][name.strip('"')] = data
    return entries


def test_reg_file_holds_the_registry_fixes_alone(report: Report) -> None:
    text = reg_file(report, include_warnings=True)
    assert text.startswith("Windows Registry Editor Version 5.00\r\n\r\n")
    assert text.isascii()
    entries = _reg_entries(text)
    ts = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp"
    assert entries[ts] == {"PortNumber": "dword:00000d3d"}
    tz = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\TimeZoneInformation"
    assert entries[tz] == {"RealTimeIsUniversal": "dword:00000001"}
    env = entries["HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment"]
    assert bytes.fromhex(env["TEMP"].split(":", 1)[1].replace(",", "")).decode("utf-16-le") == "%SystemRoot%\\TEMP\0"
    # the firewall fix is a cmdlet, not this value: its expected text is not registry data
    assert not any("FirewallRules" in key for key in entries)
    assert ";   firewall.rdp-in - The Remote Desktop inbound firewall rules are enabled" in text


def test_reg_value_kinds() -> None:
    base = make_report().results[0]
    key = "'HKLM:\\SOFTWARE\\Test'"

    def setting(name: str, statement: str) -> Result:
        return dataclasses.replace(base, rule_id=f"x.{name.lower()}", remediation=statement)

    results = [
        setting("Multi", f"Set-ItemProperty -Path {key} -Name Multi -Value @('a', 'b') -Type MultiString -Force"),
        setting("Q", f"New-ItemProperty -Path {key} -Name Q -PropertyType QWord -Value 1 -Force"),
        setting("Uni", f"Set-ItemProperty -Path {key} -Name Uni -Value 'naïve' -Type String"),
        setting("Odd", f"Set-ItemProperty -Path {key} -Name Odd -Value 'not an int' -Type DWord"),
        # positional Value, the 2017 text's form
        setting("Pos", f'Set-ItemProperty -Path {key} -name "Pos" 1 -Type DWord'),
        # a variable for the key, as the crash-dump fix writes it
        setting(
            "Var",
            "$k = 'HKLM:\\SOFTWARE\\Var'; New-ItemProperty -Path $k -Name Var -Type ExpandString -Force "
            "-Value '%SystemRoot%\\x'",
        ),
        # anything that is not a plain value write stays out of the .reg file
        setting("Expr", f"Set-ItemProperty -Path {key} -Name Expr -Value (Get-Date) -Type String"),
    ]
    text = reg_file(make_report(results=results))
    entries = _reg_entries(text)
    values = {k: v for key_values in entries.values() for k, v in key_values.items()}
    assert values["Multi"] == "hex(7):" + ",".join(f"{b:02x}" for b in "a\0b\0\0".encode("utf-16-le"))
    assert values["Q"] == "hex(b):01,00,00,00,00,00,00,00"
    assert values["Uni"].startswith("hex(1):6e,00,61,00,ef,00")
    assert values["Pos"] == "dword:00000001"
    assert entries["HKEY_LOCAL_MACHINE\\SOFTWARE\\Var"]["Var"].startswith("hex(2):")
    assert "Odd" not in values and "Expr" not in values
    assert ";   x.odd - " in text and ";   x.expr - " in text


def test_reg_and_ps1_write_the_same_keys() -> None:
    """Group Policy twin rows (rdp.nla) read the policy value first; the fix sets the local value, and the .reg
    file must set that same value, not the policy key the first evidence entry names."""
    from azvhdaudit.rules import values

    base = make_report().results[0]
    row = values.value_rules()["rdp.nla"]
    policy_ev = dataclasses.replace(
        base.evidence[0],
        source="policy",
        hive="SOFTWARE",
        key=r"HKLM\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services",
        value_name="UserAuthentication",
        present=False,
        actual=None,
        type=None,
    )
    result = dataclasses.replace(
        base,
        rule_id="rdp.nla",
        remediation=row.remediation,
        expected=1,
        actual=0,
        evidence=(policy_ev, base.evidence[0]),
    )
    report = make_report(results=[result])
    entries = _reg_entries(reg_file(report))
    ps1 = powershell_script(report)
    assert list(entries) == [
        "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\Terminal Server\\WinStations\\RDP-Tcp"
    ]
    assert entries[next(iter(entries))] == {"UserAuthentication": "dword:00000001"}
    assert "Terminal Server\\WinStations\\RDP-Tcp' -Name UserAuthentication -Value 1" in ps1
    assert "Policies" not in "".join(entries)


def test_reg_file_merges_into_a_real_system_hive(tmp_path: Path) -> None:
    """hivexregedit (libhivex) reads the file; values land where the fix says."""
    hivexregedit = shutil.which("hivexregedit")
    if hivexregedit is None:
        pytest.fail("hivexregedit is needed for this test: apt-get install -y libwin-hivex-perl")
    hive = tmp_path / "SYSTEM"
    hive.write_bytes(lzma.decompress((REALDATA / "SYSTEM.xz").read_bytes()))
    text = reg_file(make_report(), include_warnings=True)
    # offline there is no CurrentControlSet link; this hive's Select\Current is 1
    regfile = tmp_path / "fix.reg"
    regfile.write_text(text.replace("\\CurrentControlSet\\", "\\ControlSet001\\"), encoding="ascii", newline="")
    subprocess.run(
        [hivexregedit, "--merge", "--prefix", "HKEY_LOCAL_MACHINE\\SYSTEM", str(hive), str(regfile)],
        check=True,
        capture_output=True,
        timeout=60,
    )

    from azvhdaudit.registry.open import open_hive_file

    merged = open_hive_file(hive, "SYSTEM", logs=None)
    key = merged.key(r"ControlSet001\Control\Terminal Server\WinStations\RDP-Tcp")
    assert key is not None and key.value("PortNumber").data == 3389  # type: ignore[union-attr]
    env = merged.key(r"ControlSet001\Control\Session Manager\Environment")
    assert env.value("TEMP").data == "%SystemRoot%\\TEMP"  # type: ignore[union-attr]
    assert env.value("TEMP").type == 2  # type: ignore[union-attr]
    merged.close()


def test_unknown_format() -> None:
    with pytest.raises(ProfileError, match="unknown fix format 'bat'"):
        fix_script(make_report(), "bat")
