"""HTML: one self-contained page (inline CSS and JS, no external assets) to read and filter a report.

Each rule is a ``<details>`` row whose summary already says the finding (the message, and what was found
against what was expected), with its evidence and fix inside; buttons filter by status and a menu by area.
The page's state can be set from the address: ``report.html#status=fail,warning&area=rdp``.
Everything from the report is escaped (``html.escape``); the script only shows and hides rows.

A disk without Windows audited as an OS disk leads with that finding; many results of one status that share
their reason (the rules a missing Windows leaves unchecked, the guest rules on a data disk) are one row.

:func:`render_fragment` is the notebook's display (Jupyter's ``_repr_html_``): the same rows and badges with
their style scoped to the fragment, and a filter made of checkboxes and CSS alone (notebooks do not run a
displayed object's script); passes and not-applicable rows start hidden.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from html import escape
from typing import Any
from urllib.parse import urlsplit

from azvhdaudit.render import as_reports
from azvhdaudit.render._common import (
    STATUS_ORDER,
    count_label,
    describe_evidence,
    format_value,
    identity,
    verdict,
)
from azvhdaudit.render._lead import Group, data_disk_not_applicable, groups, no_windows
from azvhdaudit.report import Report, Result, Status

__all__ = ["render", "render_fragment"]

_PAGE_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em auto;max-width:70em;color:#1b1b1b}
h1{font-size:1.4em}
.filters{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ddd}
.filters button{margin:.1em;border:1px solid #bbb;background:#f4f4f4;border-radius:3px;padding:.2em .6em;cursor:pointer}
.filters button[aria-pressed=true]{background:#0f6cbd;color:#fff;border-color:#0f6cbd}
"""

#: the look of a report, on the page and in a notebook (there scoped to ``.azvhdaudit``)
_REPORT_CSS = """
h2{font-size:1.2em;margin-top:2em}h3{font-size:1.05em;margin-top:1.5em}
section.disk{border-top:1px solid #ddd;margin-top:1em}
.ident{color:#555}.verdict{font-weight:bold;padding:.1em .5em;border-radius:3px}
.verdict.bad{background:#fde2e1;color:#a4000f}.verdict.good{background:#dff6dd;color:#0b6a0b}
.counts .count{display:inline-block;margin:.2em .4em .2em 0;padding:.05em .5em;border-radius:1em;border:1px solid #ccc}
.counts .sep{color:#999}
.lead{border:2px solid #d13438;background:#fde2e1;padding:.6em .8em;border-radius:4px;margin:.8em 0}
details.rule{border-left:4px solid #ccc;margin:.3em 0;padding:.2em .6em;background:#fafafa}
details.rule summary{cursor:pointer}
.finding{display:block;margin:.15em 0 .1em 7.6em;color:#333}
.finding code{background:#eee;padding:0 .2em}
.s-fail{border-color:#d13438!important}.s-error{border-color:#8a2be2!important}
.s-warning{border-color:#f7a000!important}.s-not_checked{border-color:#038387!important}
.s-manual{border-color:#0f6cbd!important}.s-pass{border-color:#107c10!important}
.badge{display:inline-block;min-width:7em;font-weight:bold;font-size:.85em}
.s-fail .badge,.count.s-fail{color:#a4000f}.s-warning .badge,.count.s-warning{color:#8a5300}
.s-pass .badge,.count.s-pass{color:#0b6a0b}.s-not_checked .badge,.count.s-not_checked{color:#025c5f}
code,pre{font:12.5px ui-monospace,Consolas,monospace}pre{background:#f0f0f0;padding:.5em;overflow-x:auto}
table.kv td,table.kv th{text-align:left;padding:.1em .8em .1em 0;vertical-align:top}
.muted{color:#666}
.toggles{margin:.4em 0}.toggles input{position:absolute;opacity:0;width:1px;height:1px}
.toggles label{display:inline-block;margin:.1em .3em .1em 0;padding:.1em .6em;border-radius:1em;cursor:pointer;
border:1px solid #0f6cbd;background:#0f6cbd;color:#fff}
"""


_JS = """
(function(){
  var statusButtons=[].slice.call(document.querySelectorAll('button[data-status]'));
  var areaSelect=document.getElementById('area-filter');
  var rows=[].slice.call(document.querySelectorAll('details.rule'));
  function apply(){
    var on={};statusButtons.forEach(function(b){if(b.getAttribute('aria-pressed')==='true'){on[b.dataset.status]=1;}});
    var area=areaSelect.value,shown=0,total=0;
    rows.forEach(function(r){
      var ok=on[r.dataset.status]&&(!area||r.dataset.area===area),n=parseInt(r.dataset.count||'1',10);
      r.hidden=!ok;total+=n;if(ok){shown+=n;}
    });
    document.getElementById('shown-count').textContent=shown+' of '+total+' rules shown';
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


def _is_url(ref: str) -> bool:
    parts = urlsplit(ref)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _finding(result: Result) -> str:
    """The finding in the row's summary: the message, and what was found against what was expected."""
    e = escape
    bits = [e(result.reason or result.message)] if (result.reason or result.message) else []
    if result.expected is not None or result.actual is not None:
        bits.append(
            f"found <code>{e(format_value(result.actual))}</code>, "
            f"expected <code>{e(format_value(result.expected))}</code>"
        )
    return f"<span class=finding>{' — '.join(bits)}</span>" if bits else ""


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
        # a reference is a link only when it is one; a document's name stays text
        shown = f'<a href="{e(ref)}">{e(ref)}</a>' if _is_url(ref) else e(ref)
        rows.append(f"<tr><th>reference</th><td>{shown}</td></tr>")
    fix = f"<pre class=fix>{e(result.remediation.strip())}</pre>" if result.remediation else ""
    return (
        f'<details class="rule s-{result.status.value}" data-status="{result.status.value}" '
        f'data-area="{e(result.area)}" id="{e(result.disk)}-{e(result.rule_id)}">'
        f"<summary><span class=badge>{e(result.status.value.replace('_', ' '))}</span> "
        f"<code class=rule-id>{e(result.rule_id)}</code>{disk} — {e(result.title)}{_finding(result)}</summary>"
        f"<table class=kv>{''.join(rows)}</table>{fix}</details>"
    )


def _group(group: Group) -> str:
    """Many results of one status and disk with the same reason: one row, the rule ids inside."""
    e = escape
    label = "not checked" if group.status is Status.NOT_CHECKED else "not applicable"
    disk = f" <span class=muted>[{e(group.disk)}]</span>" if group.disk != "os" else ""
    # each rule keeps its anchor (report.html#data1:data.vhd-rdp.port still lands on it)
    ids = ", ".join(f'<code id="{e(group.disk)}-{e(i)}">{e(i)}</code>' for i in group.rule_ids)
    return (
        f'<details class="rule group s-{group.status.value}" data-status="{group.status.value}" data-area="" '
        f'data-count="{len(group.results)}">'
        f"<summary><span class=badge>{e(group.status.value.replace('_', ' '))}</span> "
        f"<span class=group-count>{len(group.results)} rules {label}</span>{disk}"
        f"<span class=finding>{e(group.reason)}</span></summary><p>{ids}</p></details>"
    )


def _rows(results: Sequence[Result]) -> str:
    return "".join(_group(item) if isinstance(item, Group) else _rule(item) for item in groups(results))


def _facts(report: Report, facts: dict[str, Any] | None = None, label: str = "Image facts") -> str:
    """A folded table of what the image is: container, partitions, Windows, hives."""
    e = escape
    facts = (report.facts if facts is None else facts) or {}
    if not facts:
        return ""
    rows: list[tuple[str, str]] = []
    container = facts.get("container") or {}
    if container:
        rows.append(
            (
                "container",
                f"{container.get('format')} {container.get('subtype') or ''}, "
                f"{container.get('virtual_size', 0):,} bytes",
            )
        )
        for parent in container.get("parents") or []:
            rows.append(("parent", str(parent.get("path"))))
        for warning in container.get("warnings") or []:
            rows.append(("container warning", str(warning)))
    for part in facts.get("partitions") or []:
        marks = [
            m
            for m, idx in (("Windows", facts.get("windows_partition")), ("boot", facts.get("boot_partition")))
            if idx == part.get("index")
        ]
        rows.append(
            (
                f"partition #{part.get('index')}",
                f"{part.get('type_name')} ({part.get('filesystem') or '?'}), {part.get('size', 0):,} bytes "
                f"at {part.get('offset', 0):,}" + (f" — {', '.join(marks)}" if marks else ""),
            )
        )
    os_facts = facts.get("os") or {}
    if os_facts:
        rows.append(
            (
                "Windows",
                " ".join(
                    str(x) for x in (os_facts.get("name"), os_facts.get("build"), os_facts.get("architecture")) if x
                ),
            )
        )
    for name, hive in sorted((facts.get("hives") or {}).items()):
        if hive.get("error") or "dirty" not in hive:
            # never read: nothing is known about its state
            rows.append((f"hive {name}", f"not read: {hive.get('error') or 'no details recorded'}"))
            continue
        state = "dirty" if hive.get("dirty") else "clean"
        if hive.get("replayed"):
            state += ", logs replayed"
        rows.append((f"hive {name}", state))
    body = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return f"<details class=facts><summary>{e(label)}</summary><table class=kv>{body}</table></details>"


def _counts(counts: dict[str, int], aside: str = "") -> str:
    """The counts as separate pills (a separator in the text too, for a reader without the style)."""
    pills = [
        f'<span class="count s-{s.value}">{escape(count_label(s, counts[s.value]))}</span>'
        for s in STATUS_ORDER
        if counts.get(s.value)
    ]
    if aside:
        pills.append(f'<span class="count aside muted">{escape(aside)}</span>')
    return "<span class=sep> · </span>".join(pills)


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
        + (
            e(f"{where.get('disk')} partition #{where.get('partition')}")
            if where.get("disk")
            else "<span class=muted>a volume on none of the audited disks</span>"
        )
        + "</td></tr>"
        for letter, where in sorted(letters.items())
    )
    return f'<table class="kv letters"><caption>Drive letters (SYSTEM\\MountedDevices)</caption>{rows}</table>'


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
        f"<p class=counts>{_counts(counts)}</p>{extra}{_rows(results)}</section>"
    )


def _headline_counts(report: Report) -> tuple[dict[str, int], str]:
    """The report's counts, a VM's data-disk not-applicable results taken out and described apart."""
    counts = dict(report.summary)
    aside = data_disk_not_applicable(report)
    if not aside:
        return counts, ""
    counts[Status.NOT_APPLICABLE.value] -= aside
    disks = sum(1 for entry in report.disks.values() if entry.get("role") == "data")
    return counts, f"+ {aside} OS-disk rules not applicable to the {disks} data disk{'s' if disks != 1 else ''}"


_IDS = itertools.count(1)


def _toggles(report: Report, uid: str) -> str:
    """Checkboxes that show and hide rows by status with CSS alone (a notebook runs no script of ours)."""
    e = escape
    counts = report.summary
    inputs, rules = [], []
    for status in STATUS_ORDER:
        if not counts[status.value]:
            continue
        box = f"{uid}-{status.value}"
        checked = "" if status in (Status.PASS, Status.NOT_APPLICABLE) else " checked"
        inputs.append(
            f'<input type=checkbox id="{box}" class="f f-{status.value}"{checked}>'
            f'<label for="{box}" class="toggle s-{status.value}" title="show or hide these rules">'
            f"{e(count_label(status, counts[status.value]))}</label>"
        )
        rules.append(
            f"#{uid} .f-{status.value}:not(:checked)~.rows [data-status={status.value}]{{display:none}}"
            f"#{uid} .f-{status.value}:not(:checked)+label{{background:#fff;color:#0f6cbd}}"
        )
    return f"<style>{''.join(rules)}</style>" + " ".join(inputs)


def _report_section(report: Report, fail_on: str, *, toggles: bool = False) -> str:
    e = escape
    bad = report.exit_code(fail_on)
    counts, aside = _headline_counts(report)
    order = {s: i for i, s in enumerate(STATUS_ORDER)}
    results = sorted(report.results, key=lambda r: (order[r.status], r.area, r.rule_id))
    names = _disk_names(report)
    if len(names) > 1:  # a VM: a section per disk, then the checks across them
        body = "".join(_disk_section(report, n, [r for r in results if r.disk == n]) for n in names)
    else:
        body = _rows(results)
    lead = no_windows(report)
    lead_html = f"<p class=lead role=alert>{e(lead)}</p>" if lead else ""
    anchor = ""
    if toggles:
        uid = f"azvhdaudit-{next(_IDS)}"  # the checkboxes' ids, unique among the outputs of a notebook
        anchor = f" id={uid}"
        body = f"<div class=toggles>Show: {_toggles(report, uid)}<div class=rows>{body}</div></div>"
    from azvhdaudit.render.capabilities import render_html as capability_table

    caps = capability_table(report.capabilities) if report.facts else ""
    return (
        f"<section class=report{anchor}><h2>{e(report.source)}</h2>{caps}"
        f"<p class=ident>{e(identity(report))} · profile <code>{e(report.profile)}</code>"
        f"{' · target ' + e(report.target_text) if report.target_text else ''}</p>"
        f'<p><span class="verdict {"bad" if bad else "good"}">{e(verdict(report, fail_on))}</span></p>'
        f"{lead_html}<p class=counts>{_counts(counts, aside)}</p>{_facts(report)}"
        f"{body}</section>"
    )


def _scoped(css: str, scope: str) -> str:
    """``css`` with every selector put under ``scope`` (a notebook page has its own styles)."""
    out = []
    for block in css.split("}"):
        if "{" not in block:
            continue
        selectors, body = block.split("{", 1)
        scoped = ",".join(f"{scope} {sel.strip()}" for sel in selectors.split(",") if sel.strip())
        out.append(f"{scoped}{{{body}}}")
    return "".join(out)


def render_fragment(reports: Report | Sequence[Report], *, fail_on: str = "fail") -> str:
    """The report(s) as an HTML fragment without script, styled and filterable (Jupyter's ``_repr_html_``)."""
    style = f"<style>{_scoped(_REPORT_CSS, '.azvhdaudit')}.azvhdaudit{{font-family:system-ui,sans-serif}}</style>"
    sections = "".join(_report_section(r, fail_on, toggles=True) for r in as_reports(reports))
    return f"<div class=azvhdaudit>{style}{sections}</div>"


def render(reports: Report | Sequence[Report], *, fail_on: str = "fail", title: str | None = None) -> str:
    """The report(s) as one self-contained HTML page."""
    e = escape
    items = as_reports(reports)
    areas = sorted({r.area for report in items for r in report.results})
    present = {r.status for report in items for r in report.results}
    buttons = " ".join(
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
        f"<title>{e(heading)}</title><style>{_PAGE_CSS}{_REPORT_CSS}</style></head><body>"
        f"<h1>{e(heading)}</h1>"
        f'<nav class=filters aria-label="filters">Status: {buttons} Area: '
        f'<select id=area-filter><option value="">all</option>{options}</select> '
        f"<span id=shown-count class=muted></span></nav>"
        f"{''.join(_report_section(r, fail_on) for r in items)}"
        f"<footer class=muted><p>azvhdaudit {e(version)}. Not checked means the evidence could not be "
        "read — it is not a pass.</p></footer>"
        f"<script>{_JS}</script></body></html>\n"
    )
