"""Evidence as every format shows it: keys as keys, derived facts marked, values without Python reprs,
and Markdown that GitHub shows as written."""

from __future__ import annotations

import json
import re

import jsonschema
from reportkit import make_report

from azvhdaudit.render import render
from azvhdaudit.render._common import describe_evidence, format_value
from azvhdaudit.render.json import load_schema
from azvhdaudit.report import Evidence, Result, Severity, Status

NETWORK = r"HKLM\SYSTEM\ControlSet001\Control\Network"
ROUTES = r"HKLM\SYSTEM\ControlSet001\Services\Tcpip\Parameters\PersistentRoutes"
SUMMARY = Evidence(
    source="registry",
    hive="SYSTEM",
    key=NETWORK,
    actual=["acme_filter (Acme), a filter"],
    present=True,
    note="non-Microsoft ComponentId values under 2 component class key(s)",
    derived=True,
)
ROUTE_KEY = Evidence(source="registry", hive="SYSTEM", key=ROUTES, present=True, note="1 route(s), one value each")
PROXY = Result(
    rule_id="network.winhttp_proxy",
    title="WinHTTP proxy",
    area="network",
    severity=Severity.REQUIRED,
    status=Status.FAIL,
    message="WinHTTP proxy 'proxy:8080' bypass list '<local>;10.*' lacks 168.63.129.16 "
    r"under HKLM\SOFTWARE\{x}",
    expected="direct or bypass 168.63.129.16",
    actual={"64-bit": "proxy proxy:8080, bypass <local>;10.*"},
    evidence=(SUMMARY, ROUTE_KEY),
    remediation='netsh.exe winhttp set proxy <proxy> "<bypass list>;168.63.129.16"',
)


def test_key_evidence_reads_as_a_key() -> None:
    line = describe_evidence(ROUTE_KEY)
    assert line == rf"{ROUTES}  (key exists)  (1 route(s), one value each)"
    absent = describe_evidence(Evidence(source="registry", hive="SYSTEM", key=ROUTES))
    assert absent == rf"{ROUTES}  (key absent)"


def test_derived_evidence_is_marked() -> None:
    line = describe_evidence(SUMMARY)
    assert line.startswith(rf"{NETWORK}  (key exists)  = [acme_filter (Acme), a filter]  (derived)")


def test_values_are_words_not_reprs() -> None:
    assert format_value({"TEMP": "REG_SZ x", "n": 10}) == "TEMP: REG_SZ x, n: 10 (0xA)"
    assert format_value([{"a": None, "b": True}]) == "[(a: (none), b: true)]"
    assert format_value(b"\x01\x02") == "0102"
    assert format_value(Evidence(source="file", key="k")).startswith("source: file, hive: , key: k")


def test_every_format_shows_derived() -> None:
    report = make_report(results=[PROXY])
    for fmt in ("text", "junit", "sarif", "html", "markdown"):
        text = render(report, fmt)
        assert "(derived)" in text, fmt
    data = json.loads(render(report, "json"))
    assert [e["derived"] for e in data["results"][0]["evidence"]] == [True, False]
    jsonschema.Draft202012Validator(load_schema()).validate(data)


def test_markdown_keeps_what_github_would_strip() -> None:
    text = render(make_report(results=[PROXY]), "markdown")
    row = next(line for line in text.splitlines() if "`network.winhttp_proxy`" in line)
    # outside code spans every "<" is escaped, so GitHub shows <local> rather than dropping it as a tag
    outside = re.sub(r"`[^`]*`", "", row)
    assert "<local>" not in outside and r"\<local\>" in outside
    assert r"\{x\}" not in outside and r"\\\{x}" not in outside and r"\\SOFTWARE\\{x}" in outside
    assert r"10.\*" in outside
    assert "`64-bit: proxy proxy:8080, bypass <local>;10.*`" in row
    assert re.search(r"^- `network.winhttp_proxy`: .*\(derived\)", text, re.M)
