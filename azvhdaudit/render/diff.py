"""A :class:`~azvhdaudit.diff.Diff` as text, JSON, Markdown (a pull-request comment) or one HTML page.

Each renderer reads the finished diff and never judges anything. The JSON is :meth:`Diff.to_dict`,
described by ``azvhdaudit/schemas/diff.schema.json``.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from azvhdaudit.diff import Diff, VerdictChange
from azvhdaudit.render._common import format_value, terminal_safe

__all__ = ["render_diff", "DIFF_FORMATS", "SCHEMA_RESOURCE"]

DIFF_FORMATS = ("text", "json", "markdown", "html")

#: the diff schema's file name inside ``azvhdaudit.schemas``
SCHEMA_RESOURCE = "diff.schema.json"

#: section heading per verdict kind, in the order shown
_SECTIONS: tuple[tuple[str, str], ...] = (
    ("new_failure", "New failures"),
    ("newly_not_checked", "Newly not checked (the evidence can no longer be read)"),
    ("new_warning", "New warnings"),
    ("fixed", "Fixed"),
    ("improved", "Improved"),
    ("changed", "Other verdict changes"),
    ("added", "Rules only in the new report"),
    ("removed", "Rules only in the old report"),
)


def _status(value: str | None) -> str:
    return value.replace("_", " ") if value else "(absent)"


def _rule_label(v: VerdictChange) -> str:
    return v.rule_id + (f" [{v.disk}]" if v.disk != "os" else "")


def _value(value: Any, present: bool = True, type_: str | None = None) -> str:
    if not present:
        return "(absent)"
    return (f"{type_} " if type_ else "") + format_value(value)


def _fact_value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


def _headline(d: Diff, fail_on: str) -> str:
    def n(count: int, one: str, many: str) -> str:
        return f"{count} {one if count == 1 else many}"

    parts = [
        n(len(d.new_failures), "new failure", "new failures"),
        f"{len(d.fixed)} fixed",
        f"{len(d.newly_not_checked)} newly not checked",
        n(len(d.new_warnings), "new warning", "new warnings"),
        n(len(d.facts), "fact changed", "facts changed"),
        n(len(d.evidence), "registry value changed", "registry values changed"),
    ]
    verdict = "REGRESSED" if d.regressed(fail_on) else ("CHANGED, NO REGRESSION" if d.changed else "NO CHANGE")
    return f"{verdict}: " + ", ".join(parts)


def _by_kind(d: Diff) -> list[tuple[str, list[VerdictChange]]]:
    return [
        (title, [v for v in d.verdicts if v.kind == kind])
        for kind, title in _SECTIONS
        if any(v.kind == kind for v in d.verdicts)
    ]


def _text(d: Diff, fail_on: str) -> str:
    lines = [f"azvhdaudit diff  {d.old_source}  ->  {d.new_source}", _headline(d, fail_on)]
    lines.extend(f"note: {n}" for n in d.notes)
    for title, items in _by_kind(d):
        lines.append("")
        lines.append(f"{title} ({len(items)})")
        for v in items:
            lines.append(f"  {_rule_label(v)}: {_status(v.old)} -> {_status(v.new)}  {v.title}")
            if v.new_message and v.new:
                lines.append(f"      now: {v.new_message}")
            if v.old_message and v.old and v.kind in ("fixed", "removed", "newly_not_checked"):
                lines.append(f"      was: {v.old_message}")
    if d.facts:
        lines.append("")
        lines.append(f"Facts changed ({len(d.facts)})")
        for f in d.facts:
            lines.append(f"  {f.name}: {_fact_value(f.old)} -> {_fact_value(f.new)}")
    if d.evidence:
        lines.append("")
        lines.append(f"Registry values changed ({len(d.evidence)})")
        for e in d.evidence:
            lines.append(f"  HKLM\\{e.location}" if not e.location.upper().startswith("HKLM") else f"  {e.location}")
            before, after = _value(e.old, e.old_present, e.old_type), _value(e.new, e.new_present, e.new_type)
            lines.append(f"      {before} -> {after}   (read by {', '.join(e.rules)})")
    return terminal_safe("\n".join(lines) + "\n")


def _md_cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _markdown(d: Diff, fail_on: str) -> str:
    icon = ":x:" if d.regressed(fail_on) else ":white_check_mark:"
    lines = [
        f"### azvhdaudit diff: `{_md_cell(d.old_source)}` → `{_md_cell(d.new_source)}`",
        "",
        f"{icon} **{_headline(d, fail_on)}**",
    ]
    lines.extend(f"> {n}" for n in d.notes)
    for title, items in _by_kind(d):
        lines += [
            "",
            f"#### {title} ({len(items)})",
            "",
            "| Rule | Before | Now | Title | Finding now |",
            "|---|---|---|---|---|",
        ]
        for v in items:
            lines.append(
                f"| `{_md_cell(_rule_label(v))}` | {_status(v.old)} | {_status(v.new)} | "
                f"{_md_cell(v.title)} | {_md_cell(v.new_message)} |"
            )
    if d.facts:
        lines += ["", f"#### Facts changed ({len(d.facts)})", "", "| Fact | Before | Now |", "|---|---|---|"]
        lines.extend(
            f"| `{_md_cell(f.name)}` | {_md_cell(_fact_value(f.old))} | {_md_cell(_fact_value(f.new))} |"
            for f in d.facts
        )
    if d.evidence:
        lines += [
            "",
            f"#### Registry values changed ({len(d.evidence)})",
            "",
            "| Value | Before | Now | Read by |",
            "|---|---|---|---|",
        ]
        lines.extend(
            f"| `{_md_cell(e.location)}` | `{_md_cell(_value(e.old, e.old_present, e.old_type))}` | "
            f"`{_md_cell(_value(e.new, e.new_present, e.new_type))}` | {_md_cell(', '.join(e.rules))} |"
            for e in d.evidence
        )
    return "\n".join(lines) + "\n"


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:70em;color:#1b1b1b}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e3e3e3;text-align:left;padding:.25em .5em;
vertical-align:top}code{font:12.5px ui-monospace,Consolas,monospace}
.bad{background:#fde2e1;color:#a4000f}.good{background:#dff6dd;color:#0b6a0b}
.verdict{padding:.2em .5em;font-weight:bold}
tr.new_failure td:first-child{border-left:4px solid #d13438}
tr.newly_not_checked td:first-child{border-left:4px solid #038387}
tr.fixed td:first-child{border-left:4px solid #107c10}tr.new_warning td:first-child{border-left:4px solid #f7a000}
.muted{color:#666}
"""


def _html(d: Diff, fail_on: str) -> str:
    e = escape
    bad = d.regressed(fail_on)
    parts = [
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>",
        f"<title>azvhdaudit diff: {e(d.old_source)} → {e(d.new_source)}</title><style>{_CSS}</style></head><body>",
        f"<h1>azvhdaudit diff: <code>{e(d.old_source)}</code> → <code>{e(d.new_source)}</code></h1>",
        f'<p><span class="verdict {"bad" if bad else "good"}" id=verdict>{e(_headline(d, fail_on))}</span></p>',
    ]
    parts.extend(f"<p class=muted>{e(n)}</p>" for n in d.notes)
    for title, items in _by_kind(d):
        rows = "".join(
            f'<tr class="{e(v.kind)}" data-rule="{e(v.rule_id)}"><td><code>{e(_rule_label(v))}</code></td>'
            f"<td>{e(_status(v.old))}</td><td>{e(_status(v.new))}</td><td>{e(v.title)}</td>"
            f"<td>{e(v.new_message)}</td></tr>"
            for v in items
        )
        parts.append(
            f"<h2>{e(title)} ({len(items)})</h2><table class=verdicts><tr><th>rule</th><th>before</th>"
            f"<th>now</th><th>title</th><th>finding now</th></tr>{rows}</table>"
        )
    if d.facts:
        rows = "".join(
            f"<tr><td><code>{e(f.name)}</code></td><td>{e(_fact_value(f.old))}</td>"
            f"<td>{e(_fact_value(f.new))}</td></tr>"
            for f in d.facts
        )
        parts.append(
            f"<h2>Facts changed ({len(d.facts)})</h2><table class=facts><tr><th>fact</th><th>before</th>"
            f"<th>now</th></tr>{rows}</table>"
        )
    if d.evidence:
        rows = "".join(
            f"<tr><td><code>{e(x.location)}</code></td><td><code>{e(_value(x.old, x.old_present, x.old_type))}"
            f"</code></td><td><code>{e(_value(x.new, x.new_present, x.new_type))}</code></td>"
            f"<td>{e(', '.join(x.rules))}</td></tr>"
            for x in d.evidence
        )
        parts.append(
            f"<h2>Registry values changed ({len(d.evidence)})</h2><table class=evidence><tr><th>value</th>"
            f"<th>before</th><th>now</th><th>read by</th></tr>{rows}</table>"
        )
    parts.append("</body></html>\n")
    return "".join(parts)


def _json(d: Diff, fail_on: str) -> str:
    from azvhdaudit.render.json import _default

    data = json.loads(json.dumps(d.to_dict(fail_on), default=_default))
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def render_diff(d: Diff, fmt: str = "text", *, fail_on: str = "fail") -> str:
    """``d`` in ``fmt`` (one of :data:`DIFF_FORMATS`)."""
    renderers = {"text": _text, "json": _json, "markdown": _markdown, "html": _html}
    if fmt not in renderers:
        from azvhdaudit.errors import ProfileError

        raise ProfileError(f"unknown diff format {fmt!r}; choose one of {', '.join(DIFF_FORMATS)}")
    return renderers[fmt](d, fail_on)


def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema of the diff."""
    from importlib.resources import files

    schema: dict[str, Any] = json.loads(
        files("azvhdaudit.schemas").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    )
    return schema
