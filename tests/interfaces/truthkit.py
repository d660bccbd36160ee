"""Checkers for "every word in a report is true": Python reprs in rendered text, evidence that contradicts
itself or the image, and fix lines that do not fit their finding.

Each checker returns a list of problems (human sentences); a test asserts the list is empty, so a failure
names every problem at once.
"""

from __future__ import annotations

import html.parser
import json
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

from azvhdaudit.registry.model import RegistryView
from azvhdaudit.render._common import format_value
from azvhdaudit.report import Report, Result, Status

#: what only a Python repr writes: quoted dict keys and list items, bytes literals, dataclass dumps,
#: Python's capitalised constants, and doubled backslashes (a repr'd Windows path)
REPR_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dict repr", re.compile(r"\{'|\{\"[^\"]*\": |': ")),
    ("list repr", re.compile(r"\['|'\]")),
    ("bytes repr", re.compile(r"\bb'|\bb\"|\\x[0-9a-f]{2}")),
    ("dataclass repr", re.compile(r"\b[A-Z][A-Za-z]+\((?:[a-z_]+=)")),
    # (a keyword argument in a hint, ``audit(..., with_lsa=True)``, is code the reader types, not a repr)
    ("Python constant", re.compile(r"\bNone\b|(?:[:(\[,]\s*)(?:True|False)\b")),
    ("doubled backslash", re.compile(r"\\\\")),
)


def repr_problems(where: str, texts: Iterator[str] | list[str]) -> list[str]:
    """Each Python repr found in ``texts`` (the human-readable strings of one rendered output)."""
    problems = []
    for text in texts:
        for line in text.splitlines():
            for what, pattern in REPR_PATTERNS:
                match = pattern.search(line)
                if match:
                    problems.append(f"{where}: {what} {match.group(0)!r} in: {line.strip()[:200]}")
    return problems


def json_strings(data: Any) -> Iterator[str]:
    """Every string of a parsed JSON document (keys and values); ``raw`` hex and ``actual`` data too."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield str(key)
            yield from json_strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from json_strings(value)


def xml_strings(text: str) -> Iterator[str]:
    """Every text node and attribute value of an XML document."""
    root = ET.fromstring(text.encode("utf-8"))
    for node in root.iter():
        yield from node.attrib.values()
        if node.text:
            yield node.text
        if node.tail:
            yield node.tail


class _HTMLText(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value and name in ("title", "alt", "aria-label"):
                self.chunks.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.chunks.append(data)


def html_strings(text: str) -> list[str]:
    """The text a person sees on an HTML page (scripts and styles left out)."""
    parser = _HTMLText()
    parser.feed(text)
    return parser.chunks


def reg_comments(text: str) -> list[str]:
    """The comment lines of a .reg file (its data lines hold escaped strings by design)."""
    return [line for line in text.splitlines() if line.startswith(";")]


def rendered_texts(fmt: str, text: str) -> list[str]:
    """The human-readable strings of one rendered output."""
    if fmt in ("json", "sarif"):
        return list(json_strings(json.loads(text)))
    if fmt == "junit":
        return list(xml_strings(text))
    if fmt == "html":
        return html_strings(text)
    if fmt == "reg":
        return reg_comments(text)
    if fmt == "markdown":
        # what a reader sees: CommonMark backslash escapes resolved
        return [re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", line) for line in text.splitlines()]
    return text.splitlines()


# --- evidence ----------------------------------------------------------------------------------


def evidence_problems(result: Result) -> list[str]:
    """Evidence entries that contradict themselves, and verdicts whose expected and found read the same."""
    problems = []
    for ev in result.evidence:
        where = f"{result.rule_id}: evidence {ev.source} {ev.key!r} {ev.value_name!r}"
        if not ev.present and ev.actual is not None:
            problems.append(f"{where}: present false with a found value {format_value(ev.actual)}")
        if ev.present and ev.actual is None and not ev.note:
            problems.append(f"{where}: present true with no value and no note")
        if ev.source in ("registry", "policy"):
            if not ev.key or not ev.hive:
                problems.append(f"{where}: a registry entry without a hive or key (note {ev.note!r})")
            if ev.value_name is None:
                if ev.actual is not None and not ev.derived:
                    problems.append(f"{where}: a key shown with a value ({format_value(ev.actual)}), not derived")
                if ev.present and not ev.note and ev.actual is None:
                    problems.append(f"{where}: a key present with nothing said of it")
            elif ev.present and not ev.derived and not ev.type:
                problems.append(f"{where}: a stored value without its registry type")
        if ev.derived and (ev.type or ev.raw):
            problems.append(f"{where}: derived, yet it carries a stored type/raw data")
    if result.status in (Status.FAIL, Status.WARNING) and result.expected is not None and result.actual is not None:
        if format_value(result.expected) == format_value(result.actual):
            problems.append(
                f"{result.rule_id}: {result.status.value} while expected and found both read "
                f"{format_value(result.actual)!r}"
            )
    if result.status in (Status.FAIL, Status.WARNING) and result.expected is not None and result.actual is None:
        held = [ev for ev in result.evidence if ev.present and ev.actual is not None and not ev.derived]
        if held and all(ev.source in ("registry", "policy") for ev in held):
            problems.append(f"{result.rule_id}: {result.status.value} found (none) while its evidence holds values")
    return problems


def registry_problems(result: Result, registry: RegistryView) -> list[str]:
    """Registry evidence that does not match the image: a key or value said present (or absent) that is
    not, a type or data other than the one stored."""
    problems = []
    for ev in result.evidence:
        if ev.source not in ("registry", "policy") or not ev.key:
            continue
        where = f"{result.rule_id}: {ev.key} {ev.value_name!r}"
        key = registry.key(ev.key)
        if ev.value_name is None:
            if (key is not None) != ev.present:
                problems.append(f"{where}: key said {'present' if ev.present else 'absent'}, it is not")
            continue
        value = key.value(ev.value_name) if key is not None else None
        if (value is not None) != ev.present:
            problems.append(f"{where}: value said {'present' if ev.present else 'absent'}, it is not")
            continue
        if value is None or ev.derived:
            continue
        if ev.type != value.type_name:
            problems.append(f"{where}: type said {ev.type}, stored {value.type_name}")
        if ev.actual != value.data:
            problems.append(f"{where}: data said {format_value(ev.actual)}, stored {format_value(value.data)}")
    return problems


# --- fix lines ---------------------------------------------------------------------------------

MiB = 1024 * 1024
_FORMATS = {"vhd": "vpc", "vhdx": "vhdx", "vmdk": "vmdk", "qcow2": "qcow2", "raw": "raw"}


def _name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def _option(tokens: list[str], name: str) -> str | None:
    """The argument after option ``name``: PowerShell's are case-insensitive (``-Path``), qemu-img's
    one-letter ones are not (``-o`` options, ``-O`` output format)."""
    if len(name) == 2:
        return tokens[tokens.index(name) + 1] if name in tokens[:-1] else None
    lowered = [t.lower() for t in tokens]
    if name.lower() in lowered:
        i = lowered.index(name.lower())
        return tokens[i + 1] if i + 1 < len(tokens) else None
    return None


def fix_line_problems(report: Report, line: str) -> list[str]:
    """A host-side fix line (Convert-VHD, Resize-VHD, Merge-VHD, qemu-img) checked against the report's
    finding: its source is this image (or, after a merge, the chain's base), its output is not its input,
    its input format is the container's, and a size is the one the image needs."""
    container = report.facts.get("container") or {}
    fmt = container.get("format")
    size = container.get("virtual_size")
    image = _name(report.source)
    chain = [image] + [_name(p["path"]) for p in container.get("parents") or []]
    need = -(-size // MiB) * MiB if isinstance(size, int) else None
    problems = []
    try:
        tokens = shlex.split(line.strip().lstrip("#").strip(), posix=True)
    except ValueError as err:
        return [f"{line!r}: cannot be split: {err}"]
    if not tokens:
        return []
    command = tokens[0].lower()
    if command == "convert-vhd":
        src, dst = _option(tokens, "-Path"), _option(tokens, "-DestinationPath")
        if fmt not in ("vhd", "vhdx"):
            problems.append(f"{line!r}: Convert-VHD for a {fmt} image (it reads VHD and VHDX only)")
        if src is None or _name(src) not in (image, chain[-1]):
            problems.append(f"{line!r}: source {src} is not the image (or, merged, its base) {chain}")
        if dst is None or src is None or _name(dst).lower() == _name(src).lower():
            problems.append(f"{line!r}: the output is the input")
        if dst is not None and not dst.lower().endswith(".vhd"):
            problems.append(f"{line!r}: the output is not a .vhd")
    elif command == "merge-vhd":
        src, dst = _option(tokens, "-Path"), _option(tokens, "-DestinationPath")
        if src is None or _name(src) != image:
            problems.append(f"{line!r}: merges {src}, not the image {image}")
        if dst is None or _name(dst) not in chain[1:]:
            problems.append(f"{line!r}: merges into {dst}, not a parent of the image {chain[1:]}")
    elif command == "resize-vhd":
        src, wanted = _option(tokens, "-Path"), _option(tokens, "-SizeBytes")
        if fmt not in ("vhd", "vhdx") or src is None or _name(src) != image:
            problems.append(f"{line!r}: Resize-VHD must name the image {image} ({fmt})")
        if wanted is None or need is None or int(wanted) != need:
            problems.append(f"{line!r}: -SizeBytes {wanted}, the image needs {need} (next whole MiB of {size})")
    elif command == "qemu-img" and len(tokens) > 1 and tokens[1] in ("convert", "resize"):
        src_fmt = _option(tokens, "-f")
        positional = [
            t for i, t in enumerate(tokens[2:], 2) if not t.startswith("-") and tokens[i - 1] not in ("-f", "-O", "-o")
        ]
        if src_fmt != _FORMATS.get(fmt or ""):
            problems.append(f"{line!r}: input format {src_fmt}, the image is {fmt}")
        if tokens[1] == "resize":
            if len(positional) != 2 or _name(positional[0]) != image:
                problems.append(f"{line!r}: expected the image {image} and a size, got {positional}")
            elif need is None or int(positional[1]) != need:
                problems.append(f"{line!r}: size {positional[1]}, the image needs {need}")
            return problems
        if _option(tokens, "-O") != "vpc":
            problems.append(f"{line!r}: output format is not vpc (VHD)")
        if "subformat=fixed" not in (_option(tokens, "-o") or ""):
            problems.append(f"{line!r}: the VHD made is not fixed")
        if len(positional) != 2:
            problems.append(f"{line!r}: expected a source and a destination, got {positional}")
        else:
            src, dst = positional
            if _name(src) != image:
                problems.append(f"{line!r}: source {src} is not the image {image}")
            if _name(dst).lower() == _name(src).lower():
                problems.append(f"{line!r}: the output is the input")
    return problems


HOST_COMMAND = re.compile(r"^\s*#?\s*(Convert-VHD|Resize-VHD|Merge-VHD|qemu-img)\b.*$", re.I | re.M)


def host_lines(text: str) -> list[str]:
    """The host-side command lines of a fix script or a result's fix text."""
    return [m.group(0).strip() for m in HOST_COMMAND.finditer(text)]
