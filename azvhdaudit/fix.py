"""Remediation scripts from a finished report: a PowerShell script (or a ``.reg`` file) to run in the VM.

References: "Prepare a Windows VHD or VHDX to upload to Azure" (each rule's fix line is the doc's, or the
one computed from the finding: the image's own file names and the size it needs, the Group Policy value
that wins);
about_Parsing (PowerShell reads ``{default}`` as a script block, hence bcdedit runs through cmd.exe);
about_Quoting_Rules (a single-quoted string expands nothing; PowerShell also reads U+2018-U+201B as single quotes);
Registry Editor ``.reg`` format (``Windows Registry Editor Version 5.00``; ``dword:``, ``hex(2):``,
``hex(7):``, ``hex(b):`` for EXPAND_SZ, MULTI_SZ and QWORD, UTF-16LE; the file is kept ASCII, which
both regedit and hivexregedit read).

Nothing here touches the image: the writer reads the report and returns text. The script is made to be
run (as Administrator) inside the VM before it is generalized and uploaded, and to be safe to run twice:
registry keys are created only when missing, firewall rules are added only when absent, and every
command the doc gives is one that sets a state (``Set-ItemProperty -Force``, ``Set-Service``,
``bcdedit /set``). Fix text that is not a command (a Group Policy instruction, a step with a placeholder)
is written as a comment to do by hand. Steps that run on the host (``Convert-VHD``) or end the VM's
life as a template (``sysprep``) are written commented out, last.

What the image holds is untrusted: a fix computed from it quotes each string it read as a single-quoted literal
(``rules.values.ps_string``: every character PowerShell reads as a single quote doubled) or leaves the step by hand
with a ``<placeholder>``. Whatever computed a line, it is scripted only when it is well formed (one printable line,
every quote paired, nothing outside the literals that would make it more than one statement: see
:func:`split_statements`); statements are written in ASCII (Windows PowerShell 5.1 reads a script without a byte
order mark in the ANSI code page), and text quoted in comments is one printable line.

Order matters: services first (the firewall cmdlets need the firewall service), then registry
settings, Remote Desktop, WinRM, the firewall, the boot configuration in a cmd.exe block, and last the
host-side and sysprep steps.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from azvhdaudit.render._common import format_value
from azvhdaudit.report import Report, Result, Status
from azvhdaudit.rules.values import PS_DOUBLE_QUOTES, PS_SINGLE_QUOTES, printable, ps_string

__all__ = ["fix_script", "powershell_script", "reg_file", "registry_writes", "split_statements", "FIX_FORMATS"]

FIX_FORMATS = ("ps1", "reg")

# --- phases ---------------------------------------------------------------------------------------

_SERVICES, _SETTINGS, _RDP, _WINRM, _FIREWALL, _OTHER, _BCD, _HOST, _SYSPREP = range(9)

_PHASE_TITLES = {
    _SERVICES: "Services (first: the firewall and WinRM steps below need their services)",
    _SETTINGS: "Registry and system settings",
    _RDP: "Remote Desktop",
    _WINRM: "Windows Remote Management",
    _FIREWALL: "Windows Firewall",
    _OTHER: "Other settings",
    _BCD: "Boot configuration (bcdedit runs through cmd.exe: PowerShell would read {default} as a script block)",
    _HOST: "On the host, not in the VM (left commented out)",
    _SYSPREP: "Generalize last, by hand (left commented out: it shuts the VM down)",
}

_AREA_PHASE = {
    "services": _SERVICES,
    "time": _SETTINGS,
    "environment": _SETTINGS,
    "power": _SETTINGS,
    "storage": _SETTINGS,
    "network": _SETTINGS,
    "crashdump": _SETTINGS,
    "pagefile": _SETTINGS,
    "rdp": _RDP,
    "winrm": _WINRM,
    "firewall": _FIREWALL,
    "bcd": _BCD,
    "disk": _OTHER,
    "disk-format": _OTHER,
}

_SQ, _DQ = PS_SINGLE_QUOTES, PS_DOUBLE_QUOTES
#: a quoted string as PowerShell reads it: skipped whole when a line is cut, a ';' or a remark inside one is text.
#: Any of the characters PowerShell reads as a quote opens and closes one, a doubled one is a quote inside it.
_SQ_STRING = rf"[{_SQ}](?:[^{_SQ}]|[{_SQ}]{{2}})*[{_SQ}]"
_DQ_STRING = rf"[{_DQ}](?:[^{_DQ}`]|`.|[{_DQ}]{{2}})*[{_DQ}]"
_QUOTED = rf"{_SQ_STRING}|{_DQ_STRING}"
_QUOTED_RE = re.compile(_QUOTED, re.S)
_SQ_STRING_RE = re.compile(_SQ_STRING)

_EXECUTABLES = (
    "bcdedit|powercfg|netsh|winrm|reg|sc|route|dism|sysprep|msiexec|cmd|fsutil|w32tm|chkdsk|manage-bde"
    "|wmic|diskpart|icacls|auditpol|bootrec|bcdboot|pnputil|mountvol|sfc|cscript"
)
_COMMAND_RE = re.compile(
    rf"^(\$\w+\s*=|(?:if|foreach)\s*\(|[A-Z][A-Za-z]+-[A-Z][A-Za-z]+\b|(?i:(?:[\w%\\:]*\\)?(?:{_EXECUTABLES})(?:\.exe)?)(?:\s|$))"
)
#: a program PowerShell runs as it is (not a cmdlet)
_NATIVE_RE = re.compile(rf"^(?i:(?:[\w%\\:]*\\)?(?:{_EXECUTABLES})(?:\.exe)?)(?:\s|$)")
_PLACEHOLDER_RE = re.compile(r"<[^<>]+>")
_SERVICE_RE = re.compile(r"^(Get-Service|Set-Service|Start-Service|sc(\.exe)?\s+config)\b", re.I)
_FIREWALL_RE = re.compile(r"(NetFirewall|advfirewall)", re.I)
_BCD_RE = re.compile(r"^(bcdedit)(\.exe)?\b", re.I)
_HOST_RE = re.compile(
    r"^(Convert-VHD|Resize-VHD|Merge-VHD|Test-VHD|Optimize-VHD|Get-VHD|New-VHD|Mount-VHD|Dismount-VHD|qemu-img)\b",
    re.I,
)
#: commands that wait for an answer at the console: a script would hang on them
_INTERACTIVE_RE = re.compile(r"^(chkdsk|diskpart|format)(\.exe)?\b|^net(\.exe)?\s+user\s+\S+\s+\*", re.I)
_SYSPREP_RE = re.compile(r"sysprep(\.exe)?\b", re.I)
_REG_PATH_RE = re.compile(
    rf"^(?:Set-ItemProperty|New-ItemProperty)\s+(?:-Path\s+|-LiteralPath\s+)?({_QUOTED}|\$\w+|\S+)", re.I
)
_NEW_FW_RE = re.compile(rf"^New-NetFirewallRule\b.*?-DisplayName\s+({_QUOTED}|\S+)", re.I)
_DIRECTION_RE = re.compile(r"-Direction\s+(Inbound|Outbound)", re.I)
_NEW_ITEM_RE = re.compile(rf"^New-Item\s+(?:-Path\s+)?({_QUOTED}|\$\w+|\S+)(.*)$", re.I)


#: a statement separator ("; " then a statement)
_SEPARATOR_RE = re.compile(rf"{_QUOTED}|;\s+(?=\$|[A-Za-z])")
#: a remark after a statement: two spaces, then "(", "->" or "or:"
_REMARK_RE = re.compile(rf"{_QUOTED}|\s{{2,}}(?:\(|->|or:)")
#: outside quoted strings, what would make a statement more than one (a ';' not followed by a statement, '&'), send
#: its output elsewhere ('<', '>') or escape the next character ('`'): none of the fixes writes them
_OUTSIDE_RE = re.compile(r"[;&<>`]")
#: what cmd.exe reads as an operator, an escape or a variable mark, outside and inside quotes
_CMD_SPECIAL_RE = re.compile(r"[%!^&|<>]")


def _well_formed(statement: str) -> bool:
    """Whether ``statement`` can run as it is: the last check before a fix line is scripted, whatever computed it.

    It must be one printable line; every quote in it must open or close a quoted string (an unbalanced quote would
    make PowerShell read the rest of the script as that string, or not parse the script at all); outside the strings,
    no ``; & < >`` or backtick (the statement would be more than one, or write elsewhere); text that is not ASCII only
    inside single-quoted strings (which the script spells out in ASCII) and no ``$`` in a double-quoted one
    (PowerShell would expand it); in a line that runs a program, no ``"`` or final backslash in a literal (the
    program would read further arguments). A ``bcdedit`` line, which runs through cmd.exe, is printable ASCII with its
    double quotes paired and nothing cmd reads as an operator or a variable."""
    if not statement.isprintable():
        return False
    if _BCD_RE.match(statement):
        # written into the script as a single-quoted literal, read by cmd.exe: PowerShell expands nothing in it
        return (
            statement.isascii()
            and statement.count('"') % 2 == 0
            and '\\"' not in statement  # a backslash before a quote escapes it for bcdedit's own argument parsing
            and not _CMD_SPECIAL_RE.search(statement)
        )
    outside = _QUOTED_RE.sub(" ", statement)
    if any(c in _SQ or c in _DQ for c in outside) or not outside.isascii() or _OUTSIDE_RE.search(outside):
        return False
    native = _NATIVE_RE.match(statement) is not None
    for match in _QUOTED_RE.finditer(statement):
        token = match.group()
        if token[0] in _DQ and ("$" in token or not token.isascii()):
            return False
        # PowerShell hands a program (netsh, reg ...) its arguments on one command line, in double quotes where they
        # hold a space, without escaping a '"' in them (Windows PowerShell 5.1): a '"' or a final backslash would
        # end the argument early and make the rest further arguments
        if native and token[0] in _SQ and ('"' in token or _sq_value(token).endswith("\\")):
            return False
    return True


def _split_on_semicolons(line: str) -> list[str]:
    """``line`` split at each ``; `` outside quoted strings: a fix computed from the image quotes what it read from
    there, and a ``;`` in such a string is part of it, never the start of another statement."""
    parts: list[str] = []
    start = 0
    for match in _SEPARATOR_RE.finditer(line):
        if match.group().startswith(";"):
            parts.append(line[start : match.start()])
            start = match.end()
    parts.append(line[start:])
    return parts


def split_statements(text: str) -> tuple[list[str], list[str]]:
    """Split a rule's fix text into runnable statements and lines to do by hand.

    A statement starts with a cmdlet (``Verb-Noun``), a variable assignment or a known Windows program,
    and is well formed (one printable line, its quotes paired: the checks of :func:`_well_formed`); a line with a
    ``<placeholder>`` anywhere is by hand; a parenthesised remark after two spaces is cut off into the notes.
    """
    commands: list[str] = []
    notes: list[str] = []
    for line in text.strip().splitlines():
        line = line.strip()
        if not line:
            continue
        if _PLACEHOLDER_RE.search(line):
            # a step with something to fill in, wherever it is (in the statement, in its remark): all by hand. Checked
            # on the whole line: cut at a ';' inside the placeholder, no part would hold all of it.
            notes.append(line)
            continue
        remark = next((m for m in _REMARK_RE.finditer(line) if not m.group().startswith(tuple(_SQ + _DQ))), None)
        if remark:
            rest = line[remark.start() :].strip()
            if "->" in rest:
                # the remark carries the real step ("print, then delete <destination>"): all by hand
                notes.append(line)
                continue
            notes.append(rest)
            line = line[: remark.start()].strip()
        parts = [p.strip() for p in _split_on_semicolons(line) if p.strip()]
        if parts and all(_COMMAND_RE.match(p) and not _INTERACTIVE_RE.match(p) and _well_formed(p) for p in parts):
            commands.extend(parts)
        else:
            notes.append(line)
    return commands, notes


def _sq_value(token: str) -> str:
    """The text of a single-quoted literal, as PowerShell reads it: of two quote characters in a row, the second."""
    return re.sub(rf"[{_SQ}]([{_SQ}])", r"\1", token[1:-1])


def _ascii_literal(text: str) -> str:
    """``text`` as a PowerShell expression in ASCII alone: its ASCII runs single-quoted, every other character as
    ``[char]0x....`` (UTF-16 code units), joined with ``+`` onto an empty string (``'' + [char]...`` is a string)."""
    pieces = ["''"]
    run = ""
    for c in text:
        if c.isascii():
            run += c
            continue
        if run:
            pieces.append(ps_string(run))
            run = ""
        units = c.encode("utf-16-le")
        pieces += [f"[char]0x{int.from_bytes(units[i : i + 2], 'little'):04X}" for i in range(0, len(units), 2)]
    if run:
        pieces.append(ps_string(run))
    if len(pieces) > 1 and pieces[1].startswith("'"):
        pieces.pop(0)
    return "(" + " + ".join(pieces) + ")"


def _ascii_statement(line: str) -> str:
    """``line`` with each single-quoted literal that holds text other than ASCII spelled out in ASCII
    (:func:`_ascii_literal`). The script file is written as UTF-8 without a byte order mark, which Windows
    PowerShell 5.1 reads in the ANSI code page: read that way, the bytes of a character such as U+0111 end in 0x91,
    a typographic quote that would close the literal. A line in ASCII reads the same under every code page."""
    if line.isascii():
        return line
    return _SQ_STRING_RE.sub(lambda m: m.group() if m.group().isascii() else _ascii_literal(_sq_value(m.group())), line)


def _phase(result: Result, statement: str) -> int:
    if _HOST_RE.match(statement):
        return _HOST
    if _SYSPREP_RE.search(statement) and not statement.lower().startswith(("set-itemproperty", "get-")):
        return _SYSPREP
    if _BCD_RE.match(statement):
        return _BCD
    if _SERVICE_RE.match(statement):
        return _SERVICES
    if _FIREWALL_RE.search(statement):
        return _FIREWALL
    return _AREA_PHASE.get(result.area, _OTHER)


def _idempotent(statement: str) -> list[str]:
    """The statement, guarded so a second run changes nothing and fails nowhere."""
    match = _REG_PATH_RE.match(statement)
    if match:
        # New-/Set-ItemProperty fail when the key is missing; create it (and only it) first.
        return [f"Confirm-RegistryKey {match.group(1)}", statement]
    match = _NEW_FW_RE.match(statement)
    if match:
        name = match.group(1)
        direction = _DIRECTION_RE.search(statement)
        where = f" | Where-Object Direction -eq '{direction.group(1)}'" if direction else ""
        return [
            f"if (-not (Get-NetFirewallRule -DisplayName {name} -ErrorAction SilentlyContinue{where})) {{",
            f"    {statement}",
            "}",
        ]
    match = _NEW_ITEM_RE.match(statement)
    if match and "-force" not in statement.lower():
        return [f"if (-not (Test-Path -LiteralPath {match.group(1)})) {{ {statement} | Out-Null }}"]
    return [statement]


def _why(result: Result) -> list[str]:
    lines = [f"{result.rule_id} — {result.title} ({result.severity.value}, {result.status.value})"]
    if result.message:
        lines.append(f"  {result.message}")
    if result.expected is not None or result.actual is not None:
        lines.append(f"  expected {format_value(result.expected)}, found {format_value(result.actual)}")
    if result.source:
        lines.append(f"  doc: {result.source}")
    return lines


def _comment(lines: Iterable[str], prefix: str = "# ") -> list[str]:
    # each line printable: what the report quotes from the image can neither end the comment nor move the cursor of
    # the terminal the script is read in
    return [(prefix + printable(line)).rstrip() for text in lines for line in text.splitlines()]


def _in_block_comment(text: str) -> str:
    """``text`` (the image's path, the profile) inside the header's ``<# ... #>``: one printable line that cannot
    close the block."""
    return printable(text).replace("#>", "#\\x3e")


@dataclass
class _Block:
    result: Result
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _wanted(report: Report, include_warnings: bool) -> list[Result]:
    statuses = {Status.FAIL} | ({Status.WARNING} if include_warnings else set())
    return sorted((r for r in report.results if r.status in statuses), key=lambda r: (r.area, r.rule_id))


_HEADER = """\
#Requires -RunAsAdministrator
<#
  Fixes for {source} (profile {profile}), written by azvhdaudit {version} on {date}.
  {count} rule(s) not met: {ids}

  Review, then run as Administrator INSIDE the VM before generalizing and uploading it.
  Safe to run twice. Steps that cannot be scripted are comments marked "BY HAND".
  azvhdaudit never modifies the image: this script is the only thing that changes anything.
#>
Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

function Confirm-RegistryKey([string]$Path) {{
    # Set-ItemProperty/New-ItemProperty need the key; create it only when missing.
    if (-not (Test-Path -LiteralPath $Path)) {{ New-Item -Path $Path -Force | Out-Null }}
}}
"""

_CMD_RUNNER = """\
foreach ($line in $bcdCommands) {
    cmd.exe /c $line
    if ($LASTEXITCODE -ne 0) { throw "failed ($LASTEXITCODE): $line" }
}"""


def powershell_script(report: Report, *, include_warnings: bool = False) -> str:
    """A PowerShell script with the doc's fix for each failing rule (and warning, if asked)."""
    results = _wanted(report, include_warnings)
    phases: dict[int, list[_Block]] = {}
    by_hand: list[_Block] = []
    for result in results:
        commands, notes = split_statements(result.remediation) if result.remediation else ([], [])
        if not commands and not notes:
            notes = ["no fix line is known for this rule" + (f"; see {result.source}" if result.source else "")]
        # A rule's statements stay together, in the phase of its first statement (a $var then its use).
        phase = _phase(result, commands[0]) if commands else None
        block = _Block(result, commands, notes)
        if phase is None:
            by_hand.append(block)
        else:
            phases.setdefault(phase, []).append(block)

    out = [
        _HEADER.format(
            source=_in_block_comment(report.source),
            profile=_in_block_comment(report.profile),
            version=report.tool_version,
            date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            count=len(results),
            ids=", ".join(r.rule_id for r in results) or "none",
        )
    ]
    if not results:
        out.append("Write-Output 'Nothing to fix: every rule that was checked is met.'")
    seen: set[str] = set()
    for phase in sorted(phases):
        out.append("")
        out.append(f"# ==== {_PHASE_TITLES[phase]} " + "=" * max(4, 96 - len(_PHASE_TITLES[phase])))
        bcd_lines: list[str] = []
        for block in phases[phase]:
            out.append("")
            out.extend(_comment(_why(block.result)))
            out.extend(_comment(block.notes, "# BY HAND: "))
            for statement in block.commands:
                if statement in seen:
                    out += _comment([statement], "# (already done above) ")
                    continue
                seen.add(statement)
                if phase == _BCD:
                    bcd_lines.append(statement)
                    out += _comment([statement], "#   ")
                elif phase in (_HOST, _SYSPREP):
                    out += _comment([statement])
                else:
                    out.extend(_ascii_statement(line) for line in _idempotent(statement))
        if bcd_lines:
            out.append("$bcdCommands = @(")
            out.extend("    " + _ascii_statement(ps_string(line)) for line in bcd_lines)
            out.append(")")
            out.append(_CMD_RUNNER)
    if by_hand:
        out.append("")
        out.append("# ==== BY HAND: no command to script " + "=" * 64)
        for block in by_hand:
            out.append("")
            out.extend(_comment(_why(block.result)))
            out.extend(_comment(block.notes, "# BY HAND: "))
    out.append("")
    out.append("Write-Output 'azvhdaudit fixes applied; audit the image again after shutting the VM down.'")
    return "\n".join(out) + "\n"


# --- .reg -----------------------------------------------------------------------------------------

_CCS_KEY_RE = re.compile(r"^(HKEY_LOCAL_MACHINE\\SYSTEM\\)ControlSet\d{3}(?=\\|$)", re.I)


def _hex(data: bytes) -> str:
    return ",".join(f"{b:02x}" for b in data)


def _reg_data(type_name: str | None, expected: object) -> str | None:
    kind = (type_name or "").upper()
    if isinstance(expected, bool) or expected is None:
        return None
    if isinstance(expected, int):
        if kind in ("", "REG_DWORD") and 0 <= expected <= 0xFFFFFFFF:
            return f"dword:{expected:08x}"
        if kind == "REG_QWORD" and 0 <= expected < 1 << 64:
            return "hex(b):" + _hex(expected.to_bytes(8, "little"))
        return None
    if isinstance(expected, str):
        if kind in ("", "REG_SZ"):
            if not (expected.isascii() and expected.isprintable()):
                # keep the file ASCII (regedit reads it in the ANSI code page) and each value on its line: a string
                # regedit cannot take between quotes is written as the bytes PowerShell would write
                return "hex(1):" + _hex((expected + "\0").encode("utf-16-le"))
            return '"' + expected.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if kind == "REG_EXPAND_SZ":
            return "hex(2):" + _hex((expected + "\0").encode("utf-16-le"))
        return None
    if isinstance(expected, (list, tuple)) and all(isinstance(s, str) for s in expected):
        if kind in ("", "REG_MULTI_SZ"):
            return "hex(7):" + _hex(("".join(s + "\0" for s in expected) + "\0").encode("utf-16-le"))
    return None


#: PowerShell's -Type / -PropertyType names -> registry types
_PS_TYPES = {
    "dword": "REG_DWORD",
    "qword": "REG_QWORD",
    "string": "REG_SZ",
    "expandstring": "REG_EXPAND_SZ",
    "multistring": "REG_MULTI_SZ",
}
_TOKEN_RE = re.compile(rf"{_QUOTED}|@\((?:{_QUOTED}|[^)])*\)|[^\s]+")
_ITEM_RE = re.compile(rf"{_QUOTED}|[^,\s]+")
_WRITE_RE = re.compile(r"^(Set-ItemProperty|New-ItemProperty)\b", re.I)
_ASSIGN_RE = re.compile(r"^\$(\w+)\s*=\s*(.+)$")
_NAMED = {
    "-path": "path",
    "-literalpath": "path",
    "-name": "name",
    "-value": "value",
    "-type": "type",
    "-propertytype": "type",
}


def _ps_value(token: str, variables: dict[str, object]) -> object:
    """A PowerShell literal as Python: '...' and "..." strings, integers, @('a','b') arrays, $variables.
    Raises ValueError for anything else (an expression, a sub-command)."""
    if _SQ_STRING_RE.fullmatch(token):
        return _sq_value(token)
    if token[:1] in _DQ:
        body = token[1:-1]
        if "$" in body or not _QUOTED_RE.fullmatch(token):
            raise ValueError(f"an expanding string: {token}")
        # `0 `a `b `e `f `n `r `t `v `u{...} are characters PowerShell makes of them: not read here
        if re.search(r"`[0abefnrtvu]", body):
            raise ValueError(f"a string with an escape sequence: {token}")
        return re.sub(rf"`(.)|[{_DQ}]([{_DQ}])", lambda m: m.group(1) or m.group(2), body)
    if token.startswith("@(") and token.endswith(")"):
        items = _ITEM_RE.findall(token[2:-1])
        return [str(_ps_value(t, variables)) for t in items]
    if token.startswith("$"):
        name = token[1:]
        if name not in variables:
            raise ValueError(f"an unknown variable: {token}")
        return variables[name]
    if re.fullmatch(r"-?[0-9]+", token):
        return int(token)
    if re.fullmatch(r"0x[0-9a-fA-F]+", token):
        return int(token, 16)
    if re.fullmatch(r"[A-Za-z_.:\\%{}][\w.:\\%+{}-]*", token, re.ASCII):
        return token  # in argument mode a bare word is a string (one that starts with a digit may be a number: 1kb)
    raise ValueError(f"not a literal: {token}")


def _reg_path(path: str) -> str | None:
    """``HKLM:\\SYSTEM\\...`` as a .reg key; SYSTEM and SOFTWARE only (what an offline image holds)."""
    for prefix in ("HKLM:\\", "HKEY_LOCAL_MACHINE\\", "Registry::HKEY_LOCAL_MACHINE\\"):
        if path.upper().startswith(prefix.upper()):
            rest = path[len(prefix) :].strip("\\")
            hive = rest.split("\\", 1)[0].upper()
            if hive in ("SYSTEM", "SOFTWARE"):
                return "HKEY_LOCAL_MACHINE\\" + rest
    return None


def registry_writes(remediation: str) -> list[tuple[str, str, str, object]] | None:
    """The registry values a fix text sets — (key, value name, type, data) for each ``Set-ItemProperty`` /
    ``New-ItemProperty`` statement — or ``None`` when the fix does anything else (a .reg file cannot) or a
    statement cannot be read exactly. The .reg file writes these and only these, so it sets what the
    PowerShell script sets."""
    commands, _ = split_statements(remediation)
    if not commands:
        return None
    variables: dict[str, object] = {}
    writes: list[tuple[str, str, str, object]] = []
    try:
        for statement in commands:
            assign = _ASSIGN_RE.match(statement)
            if assign:
                variables[assign.group(1)] = _ps_value(assign.group(2).strip(), variables)
                continue
            if not _WRITE_RE.match(statement):
                return None
            tokens = _TOKEN_RE.findall(statement)[1:]
            named: dict[str, str] = {}
            positional: list[str] = []
            i = 0
            while i < len(tokens):
                token = tokens[i]
                if token.lower() in _NAMED and i + 1 < len(tokens):
                    named[_NAMED[token.lower()]] = tokens[i + 1]
                    i += 2
                    continue
                if token.startswith("-"):
                    if token.lower() not in ("-force",):
                        return None
                else:
                    positional.append(token)
                i += 1
            # positional arguments bind to the positional parameters not named, in order (Path, Name, Value)
            unbound = [f for f in ("path", "name", "value") if f not in named]
            if len(positional) > len(unbound):
                return None
            named.update(zip(unbound, positional, strict=False))
            if not {"path", "name", "value"} <= set(named):
                return None
            path, name, value = (_ps_value(named[k], variables) for k in ("path", "name", "value"))
            key = _reg_path(str(path))
            if key is None or not isinstance(name, str):
                return None
            if "type" in named:
                word = named["type"]
                kind = _PS_TYPES.get(str(_ps_value(word, variables) if word[0] in "'\"$" else word).lower())
            else:
                kind = "REG_DWORD" if isinstance(value, int) else "REG_SZ" if isinstance(value, str) else None
            if kind is None:
                return None
            if kind == "REG_MULTI_SZ" and isinstance(value, str):
                value = [value]  # as PowerShell writes a string given -Type MultiString: one string in the list
            writes.append((key, name, kind, value))
    except ValueError:
        return None
    return writes


_REG_KEY_REFUSED_RE = re.compile(r"[/*?\[\]]")


def _reg_name_ok(name: str) -> bool:
    return name.isascii() and name.isprintable()


def _reg_entry_lines(result: Result) -> list[tuple[str, str, str]] | None:
    """(key, "name", data) lines of a rule's fix, or ``None`` when it is not registry values alone."""
    writes = registry_writes(result.remediation) if result.remediation else None
    if not writes:
        return None
    lines = []
    for key, name, kind, value in writes:
        data = _reg_data(kind, value)
        if data is None or not _reg_name_ok(name) or not _reg_name_ok(key) or _REG_KEY_REFUSED_RE.search(key):
            # a name regedit cannot take as it is (a line break would start a line of its own), or a key PowerShell
            # reads differently (it takes / as a separator and * ? [ ] as wildcards in -Path): not written
            return None
        shown = "@" if name == "" else '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        # The fix applies to the running system, whose current set is CurrentControlSet.
        lines.append((_CCS_KEY_RE.sub(r"\1CurrentControlSet", key), shown, data))
    return lines


def reg_file(report: Report, *, include_warnings: bool = False) -> str:
    """A ``.reg`` file with the registry fixes alone (other fixes are listed as comments): the values the
    PowerShell script's ``Set-ItemProperty`` / ``New-ItemProperty`` lines set, key for key
    (:func:`registry_writes`)."""
    results = _wanted(report, include_warnings)
    lines = [
        "Windows Registry Editor Version 5.00",
        "",
        f"; Registry fixes for {printable(report.source)} (profile {printable(report.profile)}), written by azvhdaudit "
        f"{report.tool_version}.",
        "; Import inside the VM (reg import fix.reg, as Administrator) before generalizing it.",
    ]
    skipped: list[Result] = []
    for result in results:
        entries = _reg_entry_lines(result)
        if entries is None:
            skipped.append(result)
            continue
        lines += ["", f"; {result.rule_id} — {result.title}"]
        if result.actual is not None:
            # one line: a line break in what the image holds would start a line regedit reads as a key or a value
            lines.append(f"; found {printable(format_value(result.actual))}")
        current = None
        for key, name, data in entries:
            if key != current:
                lines.append(f"[{key}]")
                current = key
            lines.append(f"{name}={data}")
    if skipped:
        lines += ["", "; Not registry values (use the PowerShell script, azvhdaudit fix --format ps1):"]
        lines += [f";   {r.rule_id} — {r.title}" for r in skipped]
    text = "\r\n".join(lines) + "\r\n"
    # ASCII only (names and data were checked above; comments may carry other characters)
    return text.replace("\u2014", "-").encode("ascii", "replace").decode("ascii")


def fix_script(report: Report, fmt: str = "ps1", *, include_warnings: bool = False) -> str:
    """The remediation for ``report`` as ``ps1`` (PowerShell) or ``reg`` text."""
    if fmt == "ps1":
        return powershell_script(report, include_warnings=include_warnings)
    if fmt == "reg":
        return reg_file(report, include_warnings=include_warnings)
    from azvhdaudit.errors import ProfileError

    raise ProfileError(f"unknown fix format {fmt!r}; choose one of {', '.join(FIX_FORMATS)}")
