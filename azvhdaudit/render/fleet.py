"""A :class:`~azvhdaudit.overview.FleetReport` as one self-contained HTML page, JSON or CSV.

The page has no external asset (inline CSS, JS and SVG; nothing fetched): the images × areas matrix
coloured by each area's worst status, each cell linking to that image's findings in the area; a bar
chart (inline SVG) of how many images fail each rule; filters by verdict, failing rule and name, also
settable from the address (``fleet.html#verdict=failing&rule=rdp.port&name=web``); the duplicate
identities as warnings at the top. Everything from the reports is escaped; the script only shows and
hides rows. JSON is :meth:`FleetReport.to_dict` (``schemas/fleet.schema.json``); CSV is the matrix, one
row per image.
"""

from __future__ import annotations

import csv
import io
import json
from html import escape
from typing import Any

from azvhdaudit.overview import FleetReport, ImageRow
from azvhdaudit.render._common import STATUS_ORDER, describe_evidence, format_value
from azvhdaudit.report import Report, Result, Status

__all__ = ["render_html", "render_json", "render_csv", "csv_columns", "SCHEMA_RESOURCE"]

SCHEMA_RESOURCE = "fleet.schema.json"

_COLOURS = {
    "fail": "#d13438",
    "error": "#8a2be2",
    "warning": "#f7a000",
    "not_checked": "#038387",
    "manual": "#0f6cbd",
    "waived": "#7a7574",
    "not_applicable": "#c8c6c4",
    "pass": "#107c10",
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1b1b1b}
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:1.8em}h3{font-size:1.05em}h4{font-size:1em;margin:.8em 0 .2em}
.filters{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd;z-index:2}
.filters label{margin-right:1em}
table.matrix{border-collapse:collapse}table.matrix th,table.matrix td{border:1px solid #e1e1e1;padding:.15em .4em;
font-size:12.5px;text-align:left;white-space:nowrap}
table.matrix thead th{position:sticky;top:2.6em;background:#f4f4f4}
td.cell a{color:inherit;text-decoration:none;display:block}
.warn{background:#fff4ce;border-left:4px solid #f7a000;padding:.4em .8em;margin:.3em 0}
.muted{color:#666}code,pre{font:12.5px ui-monospace,Consolas,monospace}pre{background:#f0f0f0;padding:.4em}
section.image-findings{border-top:1px solid #ddd;margin-top:1em}
li.finding{margin:.3em 0}.badge{display:inline-block;min-width:6.5em;font-weight:bold;font-size:.85em}
"""

_CELL_CSS = (
    "".join(
        f".s-{status}{{background:{colour};color:{'#000' if status in ('warning', 'not_applicable') else '#fff'}}}"
        for status, colour in _COLOURS.items()
    )
    + ".s-none{background:#fff;color:#999}"
)

_JS = """
(function(){
  var rows=[].slice.call(document.querySelectorAll('tr.image'));
  var sections=[].slice.call(document.querySelectorAll('section.image-findings'));
  var verdict=document.getElementById('verdict-filter'),rule=document.getElementById('rule-filter'),
      name=document.getElementById('name-filter');
  function apply(){
    var v=verdict.value,r=rule.value,n=name.value.toLowerCase(),shown={},count=0;
    rows.forEach(function(row){
      var ok=(!v||row.dataset.verdict===v)&&(!r||row.dataset.failing.indexOf(' '+r+' ')>=0)&&
             (!n||row.dataset.name.indexOf(n)>=0);
      row.hidden=!ok;if(ok){shown[row.dataset.index]=1;count++;}
    });
    sections.forEach(function(s){s.hidden=!shown[s.dataset.index];});
    document.getElementById('shown-count').textContent=count+' of '+rows.length+' images shown';
  }
  [verdict,rule].forEach(function(el){el.addEventListener('change',apply);});
  name.addEventListener('input',apply);
  [].slice.call(document.querySelectorAll('g.bar')).forEach(function(bar){
    bar.addEventListener('click',function(){rule.value=bar.dataset.rule;apply();});});
  var params={};
  location.hash.replace(/^#/,'').split('&').forEach(function(p){var kv=p.split('=');
    if(kv[0]){params[kv[0]]=decodeURIComponent(kv[1]||'');}});
  if(params.verdict){verdict.value=params.verdict;}
  if(params.rule){rule.value=params.rule;}
  if(params.name){name.value=params.name;}
  apply();
  document.body.setAttribute('data-filters-ready','true');
})();
"""

#: statuses listed among an image's findings (passes and not-applicable are only counted)
_LISTED = [s for s in STATUS_ORDER if s not in (Status.PASS, Status.NOT_APPLICABLE)]


def _anchor(row: ImageRow, area: str | None = None) -> str:
    return f"img-{row.index}" + (f"-{area}" if area else "")


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{counts[s.value]} {s.value.replace('_', ' ')}" for s in STATUS_ORDER if counts.get(s.value))


def _cell(row: ImageRow, area: str) -> str:
    e = escape
    entry = row.areas.get(area)
    if not entry:
        return f'<td class="cell s-none" data-area="{e(area)}"><a href="#{_anchor(row)}">—</a></td>'
    status = entry["worst"]
    shown = entry["counts"][status]
    label = f"{shown} {status.replace('_', ' ')}"
    return (
        f'<td class="cell s-{e(status)}" data-area="{e(area)}" data-status="{e(status)}">'
        f'<a href="#{_anchor(row, area)}" title="{e(_counts_text(entry["counts"]))}">{e(label)}</a></td>'
    )


def _matrix(fleet: FleetReport) -> str:
    e = escape
    head = "".join(f"<th>{e(a)}</th>" for a in fleet.areas)
    body = []
    for row in fleet.images:
        failing = " " + " ".join(r.split(" ", 1)[0] for r in row.failing) + " "
        verdict = row.verdict + (f" ({len(row.failing)})" if row.failing else "")
        body.append(
            f'<tr class=image data-index="{row.index}" data-verdict="{e(row.verdict)}" '
            f'data-name="{e(row.name.lower())}" data-failing="{e(failing)}">'
            f'<th><a href="#{_anchor(row)}">{e(row.name)}</a></th><td class="verdict v-{e(row.verdict)}">'
            f"{e(verdict)}</td>{''.join(_cell(row, a) for a in fleet.areas)}</tr>"
        )
    return (
        f"<table class=matrix id=matrix><thead><tr><th>image</th><th>verdict</th>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def _chart(fleet: FleetReport) -> str:
    """A horizontal bar per rule that fails or warns somewhere: failing images, then warning images."""
    e = escape
    rules = [r for r in fleet.rules if r.failing or r.warning]
    if not rules:
        return "<p id=rule-chart-empty>No rule fails or warns on any image.</p>"
    total = max(len(fleet.images), 1)
    label_w, bar_w, line = 260, 420, 20
    height = line * len(rules) + 24
    parts = [
        f'<svg id=rule-chart xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 90}" '
        f'height="{height}" role="img" aria-label="images failing each rule">'
    ]
    for n, rule in enumerate(rules):
        y = 4 + n * line
        fail_w = round(bar_w * rule.failing / total, 1)
        warn_w = round(bar_w * rule.warning / total, 1)
        parts.append(
            f'<g class=bar data-rule="{e(rule.rule_id)}" data-failing="{rule.failing}" data-warning="{rule.warning}"'
            f' style="cursor:pointer"><title>{e(rule.rule_id)}: {rule.failing} of {total} images fail, '
            f"{rule.warning} warn — {e(rule.title)}</title>"
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" font-size="12">{e(rule.rule_id)}</text>'
            f'<rect class=fail x="{label_w}" y="{y + 2}" width="{fail_w}" height="{line - 6}" '
            f'fill="{_COLOURS["fail"]}"/>'
            f'<rect class=warning x="{label_w + fail_w}" y="{y + 2}" width="{warn_w}" height="{line - 6}" '
            f'fill="{_COLOURS["warning"]}"/>'
            f'<text x="{label_w + fail_w + warn_w + 6}" y="{y + 13}" font-size="12">{rule.failing}'
            + (f" + {rule.warning} warn" if rule.warning else "")
            + "</text></g>"
        )
    axis_y = 4 + len(rules) * line + 14
    parts.append(
        f'<text x="{label_w}" y="{axis_y}" font-size="11" fill="#666">0</text>'
        f'<text x="{label_w + bar_w}" y="{axis_y}" font-size="11" fill="#666" text-anchor="end">'
        f"{total} images</text></svg>"
    )
    return "".join(parts)


def _finding(result: Result) -> str:
    e = escape
    lines = [
        f'<li class="finding s-line-{result.status.value}" data-rule="{e(result.rule_id)}" '
        f'data-status="{result.status.value}"><span class=badge style="color:{_COLOURS[result.status.value]}">'
        f"{e(result.status.value.replace('_', ' '))}</span> <code>{e(result.rule_id)}</code>"
        + (f" <span class=muted>[{e(result.disk)}]</span>" if result.disk != "os" else "")
        + f" — {e(result.title)}<br>{e(result.message or result.reason)}"
    ]
    if result.expected is not None or result.actual is not None:
        lines.append(
            f"<br><span class=muted>expected</span> <code>{e(format_value(result.expected))}</code> "
            f"<span class=muted>found</span> <code>{e(format_value(result.actual))}</code>"
        )
    lines.extend(f"<br><code class=evidence>{e(describe_evidence(ev))}</code>" for ev in result.evidence)
    if result.remediation and result.status in (Status.FAIL, Status.ERROR, Status.WARNING):
        lines.append(f"<pre class=fix>{e(result.remediation.strip())}</pre>")
    return "".join(lines) + "</li>"


def _findings(row: ImageRow, report: Report, areas: list[str]) -> str:
    e = escape
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    blocks = []
    for area in areas:
        results = sorted((r for r in report.results if r.area == area), key=lambda r: (order[r.status], r.rule_id))
        if not results:
            continue
        listed = [r for r in results if r.status in _LISTED]
        rest = len(results) - len(listed)
        worst = row.areas[area]["worst"]
        items = "".join(_finding(r) for r in listed)
        tail = f"<p class=muted>{rest} more passed or not applicable</p>" if rest else ""
        blocks.append(
            f'<div class=area id="{_anchor(row, area)}" data-area="{e(area)}"><h4>{e(area)} — '
            f'<span class="s-{e(worst)}" style="padding:0 .3em">{e(worst.replace("_", " "))}</span></h4>'
            f"<ul>{items}</ul>{tail}</div>"
        )
    ident = []
    if row.identity:
        ident.append(e(row.identity))
    if row.sysprep_state:
        ident.append(f"Sysprep state {e(row.sysprep_state)}")
    for label, value in (
        ("ComputerName", row.computer_name),
        ("MachineGuid", row.machine_guid),
        ("machine SID", row.machine_sid),
    ):
        if value:
            ident.append(f"{label} <code>{e(value)}</code>")
    return (
        f'<section class=image-findings id="{_anchor(row)}" data-index="{row.index}">'
        f"<h3>{e(row.name)} <span class=muted>({e(row.verdict)})</span></h3>"
        f"<p class=muted>{' · '.join(ident)}</p><p>{e(_counts_text(row.summary))}</p>"
        f"{''.join(blocks)}</section>"
    )


def render_html(fleet: FleetReport, *, title: str | None = None) -> str:
    """The fleet as one self-contained HTML page."""
    e = escape
    s = fleet.summary
    heading = title or f"azvhdaudit fleet: {s['images']} images"
    warnings = "".join(
        f'<p class=warn data-kind="{e(d.kind)}" data-value="{e(d.value)}">{e(d.message)}</p>' for d in fleet.duplicates
    )
    notes = "".join(f"<p class=muted>{e(n)}</p>" for n in fleet.notes)
    failing_rules = [r for r in fleet.rules if r.failing]
    rule_options = "".join(
        f'<option value="{e(r.rule_id)}">{e(r.rule_id)} ({r.failing})</option>' for r in failing_rules
    )
    by_index = dict(zip((row.index for row in fleet.images), fleet.reports, strict=False))
    sections = "".join(
        _findings(row, by_index[row.index], fleet.areas) for row in fleet.images if row.index in by_index
    )
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{e(heading)}</title><style>{_CSS}{_CELL_CSS}</style></head><body>"
        f"<h1>{e(heading)}</h1>"
        f'<p id=fleet-summary data-images="{s["images"]}" data-failing="{s["failing"]}" '
        f'data-compliant="{s["compliant"]}" data-unreadable="{s["unreadable"]}">{s["images"]} images: '
        f"{s['compliant']} compliant, {s['failing']} failing, {s['unreadable']} unreadable; "
        f"{s['duplicate_identities']} duplicate identities</p>"
        f"<section id=duplicates>{warnings}</section>{notes}"
        '<nav class=filters aria-label="filters"><label>Verdict <select id=verdict-filter><option value="">all'
        "</option><option value=failing>failing</option><option value=compliant>compliant</option>"
        "<option value=unreadable>unreadable</option></select></label>"
        f'<label>Failing rule <select id=rule-filter><option value="">any</option>{rule_options}</select></label>'
        '<label>Name <input id=name-filter type=search placeholder="part of the name"></label>'
        "<span id=shown-count class=muted></span></nav>"
        f"<h2>Images × areas (worst status)</h2>{_matrix(fleet)}"
        f"<h2>Images failing each rule</h2>{_chart(fleet)}"
        f"<h2>Findings per image</h2>{sections}"
        f"<footer class=muted><p>azvhdaudit {e(fleet.tool_version)}. Not checked means the evidence could not be "
        "read — it is not a pass.</p></footer>"
        f"<script>{_JS}</script></body></html>\n"
    )


def render_json(fleet: FleetReport) -> str:
    """The fleet as JSON (``schemas/fleet.schema.json``)."""
    from azvhdaudit.render.json import _default

    data = json.loads(json.dumps(fleet.to_dict(), default=_default))
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def csv_columns(fleet: FleetReport) -> list[str]:
    """The CSV header: the image, its verdict and counts, identity, then one column per area."""
    return (
        ["index", "image", "source", "verdict"]
        + [s.value for s in STATUS_ORDER]
        + ["sysprep_state", "computer_name", "machine_guid", "machine_sid", "failing_rules"]
        + [f"area:{a}" for a in fleet.areas]
    )


def render_csv(fleet: FleetReport) -> str:
    """The matrix as CSV, one row per image (an area's cell is its worst status; empty: no result)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns(fleet))
    for row in fleet.images:
        writer.writerow(
            [row.index, row.name, row.source, row.verdict]
            + [row.summary.get(s.value, 0) for s in STATUS_ORDER]
            + [
                row.sysprep_state or "",
                row.computer_name or "",
                row.machine_guid or "",
                row.machine_sid or "",
                " ".join(row.failing),
            ]
            + [(row.areas.get(a) or {}).get("worst") or "" for a in fleet.areas]
        )
    return out.getvalue()


def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema of the fleet JSON."""
    from importlib.resources import files

    schema: dict[str, Any] = json.loads(
        files("azvhdaudit.schemas").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    )
    return schema
