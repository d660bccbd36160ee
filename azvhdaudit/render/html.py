"""HTML: one self-contained page (inline CSS and JS, no external assets) to read and filter a report.

Each rule is a ``<details>`` row with its evidence and fix; buttons filter by status and a menu by area.
The page's state can be set from the address: ``report.html#status=fail,warning&area=rdp``.
Everything from the report is escaped (``html.escape``); the script only shows and hides rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from azvhdaudit.render import as_reports
from azvhdaudit.render._common import (
    STATUS_ORDER,
    count_label,
    describe_evidence,
    format_value,
    identity,
    verdict,
)
from azvhdaudit.report import Report, Result, Status

__all__ = ["render", "render_fragment"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:70em;color:#1b1b1b}
h1{font-size:1.4em}h2{font-size:1.2em;margin-top:2em}h3{font-size:1.05em;margin-top:1.5em}
section.disk{border-top:1px solid #ddd;margin-top:1em}
.ident{color:#555}.verdict{font-weight:bold;padding:.1em .5em;border-radius:3px}
.verdict.bad{background:#fde2e1;color:#a4000f}.verdict.good{background:#dff6dd;color:#0b6a0b}
.counts span{display:inline-block;margin:.2em .6em .2em 0}
.filters{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd}
.filters button{margin:.1em;border:1px solid #bbb;background:#f4f4f4;border-radius:3px;padding:.2em .6em;cursor:pointer}
.filters button[aria-pressed=true]{background:#0f6cbd;color:#fff;border-color:#0f6cbd}
details.rule{border-left:4px solid #ccc;margin:.3em 0;padding:.2em .6em;background:#fafafa}
details.rule summary{cursor:pointer}
.s-fail{border-color:#d13438!important}.s-error{border-color:#8a2be2!important}
.s-warning{border-color:#f7a000!important}.s-not_checked{border-color:#038387!important}
.s-manual{border-color:#0f6cbd!important}.s-pass{border-color:#107c10!important}
.badge{display:inline-block;min-width:7em;font-weight:bold;font-size:.85em}
code,pre{font:12.5px ui-monospace,Consolas,monospace}pre{background:#f0f0f0;padding:.5em;overflow-x:auto}
table.kv td,table.kv th{text-align:left;padding:.1em .8em .1em 0;vertical-align:top}
.muted{color:#666}
"""

_JS = """
(function(){
  var statusButtons=[].slice.call(document.querySelectorAll('button[data-status]'));
  var areaSelect=document.getElementById('area-filter');
  var rows=[].slice.call(document.querySelectorAll('details.rule'));
  function apply(){
    var on={};statusButtons.forEach(function(b){if(b.getAttribute('aria-pressed')==='true'){on[b.dataset.status]=1;}});
    var area=areaSelect.value,shown=0;
    rows.forEach(function(r){
      var ok=on[r.dataset.status]&&(!area||r.dataset.area===area);
      r.hidden=!ok;if(ok){shown++;}
    });
    document.getElementById('shown-count').textContent=shown+' of '+rows.length+' rules shown';
  }
  statusButtons.forEach(function(b){b.addEventListener('click',function(){
    b.setAttribute('aria-pressed',b.getAttribute('aria-pressed')==='true'?'false':'true');apply();});});
  areaSelect.addEventListener('change',apply);
  var hash=location.hash.replace(/^#/,''),params={};
  hash.split('&').forEach(function(p){var kv=p.split('=');if(kv[0]){params[kv[0]]=decodeURIComponent(kv[1]||'');}});
  if(params.status){var want=params.status.split(',');statusButtons.forEach(function(b){
    b.setAttribute('aria-pressed',want.indexOf(b.dataset.status)>=0?'true':'false');});}
  if(params.area){areaSelect.value=params.area;}
  apply();
  document.body.setAttribute('data-filters-ready','true');
})();
"""

#: shown when the page opens: everything but passes and not-applicable
_SHOWN_FIRST = {s for s in Status} - {Status.PASS, Status.NOT_APPLICABLE}


def _rule(result: Result) -> str:
    e = escape
    disk = f" <span class=muted>[{e(result.disk)}]</span>" if result.disk != "os" else ""
    rows: list[str] = []
    if result.message:
        rows.append(f"<tr><th>finding</th><td>{e(result.message)}</td></tr>")
    if result.expected is not None or result.actual is not None:
        rows.append(f"<tr><th>expected</th><td><code>{e(format_value(result.expected))}</code></td></tr>")
        rows.append(f"<tr><th>found</th><td><code>{e(format_value(result.actual))}</code></td></tr>")
    if result.reason:
        rows.append(f"<tr><th>reason</th><td>{e(result.reason)}</td></tr>")
    if result.waived_status is not None:
        rows.append(f"<tr><th>before waiver</th><td>{e(result.waived_status.value)}</td></tr>")
    for ev in result.evidence:
        rows.append(f"<tr><th>evidence</th><td><code>{e(describe_evidence(ev))}</code></td></tr>")
    rows.append(f"<tr><th>severity</th><td>{e(result.severity.value)}</td></tr>")
    if result.rationale:
        rows.append(f"<tr><th>why</th><td>{e(result.rationale)}</td></tr>")
    if result.source:
        rows.append(f"<tr><th>doc section</th><td>{e(result.source)}</td></tr>")
    for ref in result.references:
        rows.append(f'<tr><th>reference</th><td><a href="{e(ref)}">{e(ref)}</a></td></tr>')
    fix = f"<pre class=fix>{e(result.remediation.strip())}</pre>" if result.remediation else ""
    return (
        f'<details class="rule s-{result.status.value}" data-status="{result.status.value}" '
        f'data-area="{e(result.area)}" id="{e(result.disk)}-{e(result.rule_id)}">'
        f"<summary><span class=badge>{e(result.status.value.replace('_', ' '))}</span> "
        f"<code class=rule-id>{e(result.rule_id)}</code>{disk} — {e(result.title)}</summary>"
        f"<table class=kv>{''.join(rows)}</table>{fix}</details>"
    )


def _facts(report: Report, facts: dict[str, Any] | None = None, label: str = "Image facts") -> str:
    """A folded table of what the image is: container, partitions, Windows, hives."""
    e = escape
    facts = (report.facts if facts is None else facts) or {}
    if not facts:
        return ""
    rows: list[tuple[str, str]] = []
    container = facts.get("container") or {}
    if container:
        rows.append(("container", f"{container.get('format')} {container.get('subtype') or ''}, "
                                  f"{container.get('virtual_size', 0):,} bytes"))
        for parent in container.get("parents") or []:
            rows.append(("parent", str(parent.get("path"))))
        for warning in container.get("warnings") or []:
            rows.append(("container warning", str(warning)))
    for part in facts.get("partitions") or []:
        marks = [m for m, idx in (("Windows", facts.get("windows_partition")), ("boot", facts.get("boot_partition")))
                 if idx == part.get("index")]
        rows.append((f"partition #{part.get('index')}",
                     f"{part.get('type_name')} ({part.get('filesystem') or '?'}), {part.get('size', 0):,} bytes "
                     f"at {part.get('offset', 0):,}" + (f" — {', '.join(marks)}" if marks else "")))
    os_facts = facts.get("os") or {}
    if os_facts:
        rows.append(("Windows", " ".join(str(x) for x in (os_facts.get("name"), os_facts.get("build"),
                                                            os_facts.get("architecture")) if x)))
    for name, hive in sorted((facts.get("hives") or {}).items()):
        state = "dirty" if hive.get("dirty") else "clean"
        if hive.get("replayed"):
            state += ", logs replayed"
        rows.append((f"hive {name}", state))
    body = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f"<details class=facts><summary>{e(label)}</summary><table class=kv>{body}</table></details>"


def _counts(counts: dict[str, int]) -> str:
    return "".join(
        f'<span class="count s-{s.value}">{escape(count_label(s, counts[s.value]))}</span>'
        for s in STATUS_ORDER
        if counts.get(s.value)
    )


def _disk_names(report: Report) -> list[str]:
    """The disks of a VM report in order: the report's disks, then the checks across them (``vm``)."""
    names = sorted(report.disks, key=lambda n: n != "os")
    for result in report.results:
        if result.disk not in names and result.disk != "vm":
            names.append(result.disk)
    if any(r.disk == "vm" for r in report.results):
        names.append("vm")
    return names


def _letters(letters: dict[str, Any]) -> str:
    e = escape
    rows = "".join(
        f"<tr><th>{e(letter)}</th><td>"
        + (e(f"{where.get('disk')} partition #{where.get('partition')}") if where.get("disk")
           else "<span class=muted>a volume on none of the audited disks</span>")
        + "</td></tr>"
        for letter, where in sorted(letters.items())
    )
    return f"<table class=\"kv letters\"><caption>Drive letters (SYSTEM\\MountedDevices)</caption>{rows}</table>"


def _disk_section(report: Report, name: str, results: list[Result]) -> str:
    """One disk of a VM report: its role, letters, counts, facts (data disks) and rules."""
    e = escape
    entry = report.disks.get(name, {})
    if name == "vm":
        heading = "VM: checks across the disks"
        extra = _letters(report.disks.get("os", {}).get("drive_letter_map") or {})
    else:
        role = entry.get("role") or ("os" if name == "os" else "data")
        heading = "OS disk" if name == "os" else f"{'OS' if role == 'os' else 'Data'} disk {name}"
        if entry.get("source") and entry.get("source") != name:
            heading += f" — {entry['source']}"
        letters = entry.get("drive_letters")
        extra = ""
        if letters is not None:
            extra = f"<p class=letters>drive letters: {e(', '.join(letters) or 'none recorded')}</p>"
        if entry.get("facts"):
            extra += _facts(report, entry["facts"], "Disk facts")
    counts = {s.value: sum(r.status is s for r in results) for s in Status}
    return (
        f'<section class=disk id="disk-{e(name)}" data-disk="{e(name)}"><h3>{e(heading)}</h3>'
        f"<p class=counts>{_counts(counts)}</p>{extra}{''.join(_rule(r) for r in results)}</section>"
    )


def _report_section(report: Report, fail_on: str) -> str:
    e = escape
    bad = report.exit_code(fail_on)
    counts = report.summary
    count_html = "".join(
        f'<span class="count s-{s.value}">{e(count_label(s, counts[s.value]))}</span>'
        for s in STATUS_ORDER
        if counts[s.value]
    )
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    results = sorted(report.results, key=lambda r: (order[r.status], r.area, r.rule_id))
    names = _disk_names(report)
    if len(names) > 1:  # a VM: a section per disk, then the checks across them
        body = "".join(_disk_section(report, n, [r for r in results if r.disk == n]) for n in names)
    else:
        body = "".join(_rule(r) for r in results)
    from azvhdaudit.render.capabilities import render_html as capability_table

    caps = capability_table(report.capabilities) if report.facts else ""
    return (
        f"<section class=report><h2>{e(report.source)}</h2>{caps}"
        f"<p class=ident>{e(identity(report))} · profile <code>{e(report.profile)}</code>"
        f"{' · target ' + e(report.target_text) if report.target_text else ''}</p>"
        f'<p><span class="verdict {"bad" if bad else "good"}">{e(verdict(report, fail_on))}</span></p>'
        f"<p class=counts>{count_html}</p>{_facts(report)}"
        f"{body}</section>"
    )


def render_fragment(reports: Report | Sequence[Report], *, fail_on: str = "fail") -> str:
    """The report(s) as an HTML fragment without script (for Jupyter's ``_repr_html_``)."""
    return "<div class=azvhdaudit>" + "".join(_report_section(r, fail_on) for r in as_reports(reports)) + "</div>"


def render(reports: Report | Sequence[Report], *, fail_on: str = "fail", title: str | None = None) -> str:
    """The report(s) as one self-contained HTML page."""
    e = escape
    items = as_reports(reports)
    areas = sorted({r.area for report in items for r in report.results})
    present = {r.status for report in items for r in report.results}
    buttons = "".join(
        f'<button type=button data-status="{s.value}" '
        f'aria-pressed="{"true" if s in _SHOWN_FIRST else "false"}">{e(s.value.replace("_", " "))}</button>'
        for s in STATUS_ORDER
        if s in present
    )
    options = "".join(f'<option value="{e(a)}">{e(a)}</option>' for a in areas)
    heading = title or ("azvhdaudit report: " + ", ".join(r.source for r in items))
    version = items[0].tool_version if items else ""
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{e(heading)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(heading)}</h1>"
        f'<nav class=filters aria-label="filters">Status: {buttons} Area: '
        f'<select id=area-filter><option value="">all</option>{options}</select> '
        f"<span id=shown-count class=muted></span></nav>"
        f"{''.join(_report_section(r, fail_on) for r in items)}"
        f"<footer class=muted><p>azvhdaudit {e(version)}. Not checked means the evidence could not be "
        "read — it is not a pass.</p></footer>"
        f"<script>{_JS}</script></body></html>\n"
    )
