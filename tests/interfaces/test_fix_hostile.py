"""No string read from an image (or its file name) becomes a statement of the fix script.

Every rule whose fix is computed from what it read runs on a hive, a BCD store, guest files and container facts whose
strings carry quotes (typographic ones too), backticks, ``$(...)``, ``;``, ``&``, ``|``, line breaks, ``<...>``,
two spaces and ``(``, control characters and text that is not ASCII; the report goes through ``fix_script`` as
``ps1`` and as ``reg``. With no PowerShell parser at hand the script is checked by its structure: the header's block
comment ends where the header does, every other line is a comment or one of the statements the rules mean to emit
(each matched whole: the cmdlet or program, then its arguments, every string a complete single-quoted literal, and
fix.py's own tokenizer reads it as that one statement); what runs is ASCII, and every line is one printable line.
The .reg file holds only comments, keys and ``"name"=data`` lines of the forms regedit reads, and hivexregedit
merges it.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import lzma
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from image_rules.helpers import BOOTLOADERSETTINGS, LOADER, boolean, build_bcd, container, good_bcd_objects
from image_rules.helpers import image_facts as bcd_image_facts
from marketplace.mpkit import CACHE
from marketplace.mpkit import context as mp_context
from marketplace.mpkit import facts as mp_facts
from reportkit import make_report
from rules.guestkit import build_view
from signing.sigkit import BytesFiles

from azvhdaudit.bcd import decode_bcd
from azvhdaudit.engine import audit_context, audit_vm_context
from azvhdaudit.facts import ContainerFacts, ImageFacts, OSFacts
from azvhdaudit.fix import fix_script, split_statements
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import open_hive_file
from azvhdaudit.report import Result, Status
from azvhdaudit.rules.base import AuditContext, AuditOptions, Target
from azvhdaudit.rules.vm import DiskInfo, VMContext

TODAY = _dt.date(2026, 1, 1)
REALDATA = Path(__file__).resolve().parents[1] / "data" / "realdata"
#: what an image may hold: each string tries another way out of the literal or the line it is put in
HOSTILE = [
    "x'; Remove-Item C:\\ -Recurse; '",
    "x\u2019; Remove-Item C:\\ -Recurse; \u2018",  # PowerShell reads typographic quotes as quotes
    'x"; Remove-Item C:\\ -Recurse; "',
    "x`; $(Remove-Item C:\\ -Recurse)",
    "a\nRemove-Item C:\\ -Recurse\nb",
    "a\rRemove-Item C:\\ -Recurse",
    "x & calc.exe | more > out.txt",
    "<alias> x; Remove-Item C:\\ -Recurse; Get-Date",
    "LAN  (2); Remove-Item C:\\ -Recurse",
    "z\x00\x07\x1b[2J\u202e",
    "r\u00e9seau \u0111 local",  # the UTF-8 of U+0111 ends in 0x91, a typographic quote in Windows-1252
    "#> Remove-Item C:\\ -Recurse <#",
    "-Force",
    "%COMSPEC% /c calc ^& calc",
]
#: the same, fit for a key name (a MemoryHive path splits at a backslash or a slash)
KEY_HOSTILE = [h.replace("\\", "|").replace("/", "|") for h in HOSTILE]

IFACES = r"ControlSet001\Services\Tcpip\Parameters\Interfaces"
NETWORK = r"ControlSet001\Control\Network\{4D36E972-E325-11CE-BFC1-08002BE10318}"
IF_NAMED = "{66666666-7777-8888-9999-aaaaaaaaaaaa}"
MM = r"ControlSet001\Control\Session Manager\Memory Management"
SERVER = OSFacts(
    product_name="Windows Server 2019 Datacenter",
    build=17763,
    installation_type="Server",
    product_type="ServerNT",
    architecture="AMD64",
)
OLD_SERVER = OSFacts(product_name="Windows Server 2008 R2", build=7601, installation_type="Server")


# --- the audit of a hostile image -------------------------------------------------------------------------------


def _run(ctx: AuditContext, profile: str, ids: list[str]) -> list[Result]:
    results = [r for r in audit_context(ctx, profile, select=ids, today=TODAY) if r.rule_id in ids]
    assert {r.rule_id for r in results} == set(ids), [r.rule_id for r in results]
    return results


def _guest(hostile: str, key: str, os_facts: OSFacts = SERVER) -> list[Result]:
    """The guest rules: persistent routes, DHCP (an alias, and an interface whose only name is its key), NVMe (a page
    file entry, a control set whose name ends in a line break), and Group Policy's fix."""
    system: dict[str, Any] = {
        r"ControlSet001\Services\Tcpip\Parameters\PersistentRoutes": {
            "0.0.0.0,0.0.0.0,10.0.0.1,1": "",
            hostile: "",
        },
        rf"{IFACES}\{IF_NAMED.lower()}": {"EnableDHCP": 0, "IPAddress": ["10.1.2.3"]},
        rf"{NETWORK}\{IF_NAMED}\Connection": {"Name": hostile},
        rf"{IFACES}\{{{key}}}": {"EnableDHCP": 0, "IPAddress": ["10.1.2.4"]},
        MM: {"PagingFiles": ["D:\\pagefile.sys 0 0", hostile, "C:\\pagefile.sys 0 0"]},
        r"ControlSet001\Services\stornvme": {"Start": 3},
        "ControlSet002\n\\Services\\stornvme": {"Start": 3, "Type": 1},
        r"ControlSet002" + "\n" + r"\Services\stornvme\StartOverride": {"0": 3},
    }
    view = build_view({"SYSTEM": system})
    ctx = AuditContext(
        registry=view,
        facts=ImageFacts(source="<memory>", container=ContainerFacts("<memory>", "raw", None, 0, 0), os=os_facts),
        profile="azure",
        options=AuditOptions(target=Target(disk_controller="NVMe")),
    )
    ids = [
        "network.no_persistent_routes",
        "platform_net.dhcp_enabled",
        "nvme.pagefile_not_on_temp_disk",
        "nvme.stornvme_boot_start",
    ]
    return _run(ctx, "azure", ids)


def _bcd(hostile: str, key: str) -> list[Result]:
    """secureboot.bcd_integrity: loadoptions read from the store, testsigning inherited from an object whose key name
    is no GUID."""
    objects = good_bcd_objects()
    odd = "{" + key + "}"
    objects[odd] = (0x20200003, {0x16000049: boolean(True)})
    objects[LOADER][1][0x14000006] = [odd, BOOTLOADERSETTINGS]
    objects[LOADER][1][0x12000030] = "DISABLE_INTEGRITY_CHECKS " + hostile
    ctx = AuditContext(
        registry=RegistryView(hives={"SYSTEM": MemoryHive.build("SYSTEM", {"Select": {"Current": 1}})}),
        facts=bcd_image_facts("gpt"),
        profile="azure",
        options=AuditOptions(target=Target(security_type="TrustedLaunch")),
        bcd=decode_bcd(build_bcd(objects)),
    )
    return _run(ctx, "azure", ["secureboot.bcd_integrity"])


def _signing(hostile: str, key: str) -> list[Result]:
    """signing.boot_drivers: boot-start services whose key name and ImagePath are hostile, their files missing."""
    system = {
        "Select": {"Current": 1},
        r"ControlSet001\Control\ProductOptions": {"ProductType": "ServerNT"},
        rf"ControlSet001\Services\{key}": {"Start": 0, "Type": 1},
        r"ControlSet001\Services\odd": {"Start": 0, "Type": 1, "ImagePath": "System32\\drivers\\" + hostile},
    }
    ctx = AuditContext(
        registry=RegistryView(hives={"SYSTEM": MemoryHive.build("SYSTEM", system)}),
        facts=bcd_image_facts("gpt"),
        profile="azure",
        options=AuditOptions(target=Target(security_type="TrustedLaunch")),
        files=BytesFiles({}),
    )
    return _run(ctx, "azure", ["signing.boot_drivers"])


#: the container rules whose fix names the image
_COMPUTED_DISK = {
    "disk.container_format",
    "disk.vhd_fixed",
    "disk.not_differencing",
    "disk.vhd_footer_valid",
    "disk.size_aligned_1mib",
}


def _disk(hostile: str) -> list[Result]:
    """The container rules: the image's own name and its parent's, in every format's fix."""
    results: list[Result] = []
    name = f"/images/{hostile}.vhd"
    for kw in (
        dict(format="vhd", subtype="dynamic", virtual_size=30 * 1024**3 + 512),
        dict(format="qcow2", subtype=None, virtual_size=30 * 1024**3 + 512),
        dict(format="raw", subtype=None),  # a .vhd read as raw: cut short of its footer
        dict(format="vhd", subtype="differencing", parents=(container(path=f"/images/{hostile}-base.vhd"),)),
    ):
        cont = container(path=name, **kw)
        ctx = AuditContext(
            registry=RegistryView(hives={}),
            facts=ImageFacts(source=name, container=cont),
            profile="azure-2022",
        )
        results += [
            r
            for r in audit_context(ctx, "azure-2022", select=["disk-format"], today=TODAY, no_windows="test")
            if r.status in (Status.FAIL, Status.WARNING) and r.remediation and r.rule_id in _COMPUTED_DISK
        ]
    return results


def _marketplace(hostile: str, key: str) -> list[Result]:
    """marketplace: the container's name in the size fixes (too small, too large), and a role named as the image
    spells it (the Kelvin sign lower-cases to k)."""
    results = []
    for size in (10 * 1024**3, 300 * 1024**3):
        for fmt in ("vhd", "qcow2"):
            ctx = mp_context(image=mp_facts(virtual_size=size, fmt=fmt, path=f"{hostile}.{fmt}"))
            results += _run(ctx, "azure-marketplace", ["marketplace.os_disk_size"])
    ctx = mp_context(software={CACHE + "\\Wireless-Networ\u212aing": {"InstallState": 1}})
    results += _run(ctx, "azure-marketplace", ["marketplace.unsupported_roles"])
    # 17 data disks, named as their files are: the fix names those left out
    os_disk = mp_facts()
    data = [mp_facts(os=None, virtual_size=1024**3, partitions=[]) for _ in range(17)]
    disks = (DiskInfo("os", "os", os_disk),) + tuple(
        DiskInfo(f"data{n}:{hostile}{n}.vhd", "data", d) for n, d in enumerate(data, 1)
    )
    vm = VMContext(registry=build_view(), facts=os_disk, profile="azure-marketplace", disks=disks)
    results += [
        r
        for r in audit_vm_context(vm, "azure-marketplace", select=["marketplace.data_disk_count"], today=TODAY)
        if r.rule_id == "marketplace.data_disk_count"
    ]
    return results


def _results(hostile: str, key: str) -> list[Result]:
    old = [r for r in _guest(hostile, key, OLD_SERVER) if r.rule_id == "platform_net.dhcp_enabled"]
    results = _guest(hostile, key) + old
    results += _bcd(hostile, key) + _signing(hostile, key) + _disk(hostile) + _marketplace(hostile, key)
    problems = [r for r in results if r.status in (Status.FAIL, Status.WARNING)]
    assert len(problems) == len(results), [(r.rule_id, r.status, r.message) for r in results]
    # distinct rule ids for the script's sections: the same rule run on several contexts gets a suffix
    seen: dict[str, int] = {}
    out = []
    for r in results:
        seen[r.rule_id] = seen.get(r.rule_id, 0) + 1
        out.append(r if seen[r.rule_id] == 1 else _renamed(r, f"{r.rule_id}.{seen[r.rule_id]}"))
    return out


def _renamed(result: Result, rule_id: str) -> Result:
    return dataclasses.replace(result, rule_id=rule_id)


# --- what the script may hold -----------------------------------------------------------------------------------

#: a single-quoted literal in ASCII, or the expression that spells out one holding other text
_LIT = r"'(?:[^'\n]|'')*'"
_SQ = rf"(?:{_LIT}|\((?:{_LIT}|\[char\]0x[0-9A-F]{{4}})(?: \+ (?:{_LIT}|\[char\]0x[0-9A-F]{{4}}))*\))"
_ARG = rf"(?:[A-Za-z_][A-Za-z0-9_.:\\-]*|{_SQ})"
_GUID = r"\{[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}"
#: every statement a rule run here means to emit, whole
STATEMENTS = [
    rf"Set-NetIPInterface -InterfaceAlias {_SQ} -Dhcp Enabled",
    rf"netsh interface ip set address {_SQ} dhcp",
    rf"Confirm-RegistryKey {_SQ}",
    rf"Set-ItemProperty -Path {_SQ} -Name PagingFiles -Value (?:{_SQ}|@\({_SQ}(?:, {_SQ})*\)) -Type MultiString",
    rf"Set-ItemProperty -Path {_SQ} -Name Start -Value 0 -Type DWord",
    rf"Remove-Item -Path {_SQ} -Recurse -Force -ErrorAction SilentlyContinue",
    r"route\.exe delete [0-9.]+ mask [0-9.]+ [0-9.]+",
    rf"Uninstall-WindowsFeature -Name {_ARG}(?:,{_ARG})* -Remove",
    r"DISM /Online /Cleanup-Image /RestoreHealth",
    r"sfc /scannow",
]
#: the lines of the bcdedit block (each a single-quoted literal cmd.exe runs)
BCD_LINES = [
    rf'bcdedit /set "(?:\{{default\}}|\{{\w+\}}|{_GUID})" (?:testsigning|nointegritychecks) off',
    # the options kept: quoted for cmd.exe, with nothing cmd reads in them, not ending in a backslash
    rf'bcdedit /set "(?:\{{default\}}|{_GUID})" loadoptions "(?:[^"%!^&|<>]*[^"%!^&|<>\\])?"',
    rf'bcdedit /deletevalue "(?:\{{default\}}|{_GUID})" loadoptions',
]
#: the script's own lines
SCAFFOLD = [
    r"Set-StrictMode -Version Latest",
    r"\$ErrorActionPreference = 'Stop'",
    r"function Confirm-RegistryKey\(\[string\]\$Path\) \{",
    r"    if \(-not \(Test-Path -LiteralPath \$Path\)\) \{ New-Item -Path \$Path -Force \| Out-Null \}",
    r"\}",
    r"\$bcdCommands = @\(",
    r"\)",
    r"foreach \(\$line in \$bcdCommands\) \{",
    r"    cmd\.exe /c \$line",
    r'    if \(\$LASTEXITCODE -ne 0\) \{ throw "failed \(\$LASTEXITCODE\): \$line" \}',
    r"Write-Output '[A-Za-z0-9 ;:,.]+'",
]


def _code_lines(script: str) -> Iterator[str]:
    """The lines of ``script`` PowerShell runs: after the header's block comment, neither blank nor a comment."""
    lines = script.split("\n")
    assert lines[0] == "#Requires -RunAsAdministrator" and lines[1] == "<#"
    end = lines.index("#>")
    # the header's block comment ends at its own closing line: nothing in it closes it sooner
    assert all("#>" not in line for line in lines[1:end]), lines[1:end]
    for line in lines[end + 1 :]:
        if line.strip() and not line.lstrip().startswith("#"):
            yield line


def _bcd_value(line: str) -> str:
    assert re.fullmatch(rf"    {_LIT}", line), line
    return line.strip()[1:-1].replace("''", "'")


def _text(expr: str) -> str:
    """The text a literal of the script stands for: a quoted run, or the ASCII spelling of one."""
    pieces = [
        lit[1:-1].replace("''", "'") if lit else chr(int(unit, 16))
        for lit, unit in re.findall(rf"({_LIT})|\[char\]0x([0-9A-F]{{4}})", expr)
    ]
    return "".join(pieces).encode("utf-16-le", "surrogatepass").decode("utf-16-le")


def check_ps1(script: str) -> list[str]:
    """The statements of ``script``, each checked to be one the rules mean to emit."""
    # comments may quote the image in any script; what runs is ASCII, read alike under every code page
    assert all(line.isprintable() for line in script.split("\n")), "a line with a control character"
    statements = []
    in_bcd = False
    for line in _code_lines(script):
        assert line.isascii(), line
        if in_bcd and line == ")":
            in_bcd = False
        elif in_bcd:
            value = _bcd_value(line)
            assert any(re.fullmatch(p, value) for p in BCD_LINES), value
            statements.append(value)
            continue
        if line == "$bcdCommands = @(":
            in_bcd = True
        if any(re.fullmatch(p, line) for p in SCAFFOLD):
            continue
        assert any(re.fullmatch(p, line) for p in STATEMENTS), f"not a statement a rule means to emit: {line!r}"
        assert split_statements(line) == ([line], []), line
        statements.append(line)
    return statements


_REG_LINE = re.compile(
    r"Windows Registry Editor Version 5\.00|;.*|\[HKEY_LOCAL_MACHINE\\[ -Z\\^-~]+\]|"
    r'"(?:[^"\\]|\\.)*"=(?:"(?:[^"\\]|\\.)*"|dword:[0-9a-f]{8}|hex\([127b]\):[0-9a-f]{2}(?:,[0-9a-f]{2})*)|'
)


def check_reg(text: str) -> None:
    assert text.isascii() and text.endswith("\r\n")
    lines = text[:-2].split("\r\n")
    for line in lines:
        assert line.isprintable(), repr(line)
        assert _REG_LINE.fullmatch(line), f"not a line of the .reg format: {line!r}"


# --- the tests --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def system_hive() -> bytes:
    return lzma.decompress((REALDATA / "SYSTEM.xz").read_bytes())


@pytest.mark.parametrize(("hostile", "key"), list(zip(HOSTILE, KEY_HOSTILE, strict=True)))
def test_no_string_from_the_image_becomes_a_statement(
    hostile: str, key: str, system_hive: bytes, tmp_path: Path
) -> None:
    results = _results(hostile, key)
    report = make_report(source=f"/images/{hostile}.vhd", results=results)
    statements = check_ps1(fix_script(report, "ps1", include_warnings=True))
    reg = fix_script(report, "reg", include_warnings=True)
    check_reg(reg)

    # what runs carries the text as the image holds it (a string value ends at its first NUL), or the step is left
    # by hand: a line break, a control character, a <placeholder> in it
    read = hostile.split("\0", 1)[0]
    runnable = read.isprintable() and not re.search("<[^<>]+>", read)
    assert "route.exe delete 0.0.0.0 mask 0.0.0.0 10.0.0.1" in statements
    assert "DISM /Online /Cleanup-Image /RestoreHealth" not in statements  # every service here is registered
    alias = [s for s in statements if s.startswith(("Set-NetIPInterface", "netsh"))]
    # the named interface (new and old Windows), never the one named by its key alone; netsh, a program, is not
    # handed a '"' or a final backslash (PowerShell would not escape them on its command line)
    assert len(alias) == (0 if not runnable else 1 if '"' in read or read.endswith("\\") else 2), alias
    for line in alias:
        literal = re.fullmatch(
            rf"(?:Set-NetIPInterface -InterfaceAlias|netsh interface ip set address) ({_SQ}) \S+.*", line
        )
        assert literal is not None and _text(literal.group(1)) == read, line
    entries = [e for e in hostile.split("\0") if e] + ["C:\\pagefile.sys 0 0"]
    pagefile = [s for s in statements if "PagingFiles" in s]
    if all(e.isprintable() and not re.search("<[^<>]+>", e) for e in entries):
        [line] = pagefile
        value = re.search(r"-Value (.*) -Type MultiString$", line)
        assert value is not None and [_text(v) for v in re.findall(_SQ, value.group(1))] == entries, line
        # the .reg file sets the same value, and regedit's format takes it: hivexregedit merges it, the hive reads it
        assert '"PagingFiles"=hex(7):' in reg
        hive = tmp_path / "SYSTEM"
        hive.write_bytes(system_hive)
        _merge(hive, reg)
        merged = open_hive_file(hive, "SYSTEM", logs=None)
        try:
            got = merged.key(MM).value("PagingFiles").data  # type: ignore[union-attr]
        finally:
            merged.close()
        assert got == entries
    else:
        assert pagefile == [] and "PagingFiles" not in reg
    # the options kept (the words of the value, DISABLE_INTEGRITY_CHECKS left out) run through cmd.exe: never when
    # cmd would read part of them
    kept = " ".join(hostile.split("\0", 1)[0].split())
    cmd_safe = kept.isascii() and kept.isprintable() and not re.search(r'["%!^&|<>]|\\$', kept)
    loadoptions = [s for s in statements if "loadoptions" in s]
    assert loadoptions == ([f'bcdedit /set "{{default}}" loadoptions "{kept}"'] if cmd_safe else []), loadoptions


def _merge(hive: Path, reg: str) -> None:
    hivexregedit = shutil.which("hivexregedit")
    if hivexregedit is None:
        pytest.fail("hivexregedit is needed for this test: apt-get install -y libwin-hivex-perl")
    regfile = hive.with_suffix(".reg")
    regfile.write_text(reg.replace("\\CurrentControlSet\\", "\\ControlSet001\\"), encoding="ascii", newline="")
    subprocess.run(
        [hivexregedit, "--merge", "--prefix", "HKEY_LOCAL_MACHINE\\SYSTEM", str(hive), str(regfile)],
        check=True,
        capture_output=True,
        timeout=60,
    )
