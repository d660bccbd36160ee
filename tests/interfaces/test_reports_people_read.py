"""Reports people look at, on the real samples, read back from headless Chromium as a reader sees them
(``innerText``: the text that is rendered, without the closed rows' insides or the rows a filter hides).

- the HTML page: each row's finding is visible without a click; a disk without Windows leads with that and
  shows its unchecked rules as one row; a VM's data-disk not-applicable results do not swamp the counts;
- the notebook display (``Report._repr_html_``, no script of ours runs there): badges and counts set apart,
  failures first, passes hidden until their toggle is clicked;
- the same grouping and lead in the text, Markdown and SARIF renderers.
"""

from __future__ import annotations

import json
import lzma
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from browser import shown

import azvhdaudit
from azvhdaudit.render import render
from azvhdaudit.report import Report

ROOT = Path(__file__).resolve().parents[2]
NO_WINDOWS_LEAD = "No Windows on this disk: it was audited as an OS disk, so 100 rules could not be checked."


@pytest.fixture(scope="module")
def data_disks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("data-disks")
    out = {}
    for name in ("data-mbr.vhd", "data-gpt.vhd"):
        with lzma.open(ROOT / "samples" / "vm" / f"{name}.xz") as src, open(where / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
        out[name] = where / name
    return out


@pytest.fixture(scope="module")
def misconfigured(sample_path: Callable[[str], Path]) -> Report:
    return azvhdaudit.audit(sample_path("gen2-misconfigured.vhdx"), profile="azure-2022")  # its stated counts


@pytest.fixture(scope="module")
def no_windows(data_disks: dict[str, Path]) -> Report:
    return azvhdaudit.audit(data_disks["data-mbr.vhd"], profile="azure-2022")  # a data disk, as an OS disk


@pytest.fixture(scope="module")
def vm(sample_path: Callable[[str], Path], data_disks: dict[str, Path]) -> Report:
    return azvhdaudit.audit(sample_path("gen1-azure.vhd"), data_disks=list(data_disks.values()), profile="azure-2022")


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- the HTML page ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_page_rows_show_the_finding_without_a_click(misconfigured: Report, tmp_path: Path) -> None:
    (text,) = shown(render(misconfigured, "html"), tmp_path)
    seen = lines(text)
    row = seen.index("fail rdp.port — RDP listener port is 3389")
    assert seen[row + 1] == "PortNumber is 3390, Azure expects 3389 — found 3390 (0xD3E), expected 3389 (0xD3D)"
    assert "Set-ItemProperty" not in text  # the fix stays folded inside the row
    assert "16 failed · 2 warnings · 4 not checked · 7 manual · 6 not applicable · 78 passed" in seen
    assert "Status: fail warning not checked manual not applicable pass Area:" in seen
    assert "29 of 113 rules shown" in text  # passes and not applicable start hidden


@pytest.mark.slow
def test_page_of_a_disk_without_windows_leads_with_it(no_windows: Report, tmp_path: Path) -> None:
    (text,) = shown(render(no_windows, "html"), tmp_path)
    seen = lines(text)
    lead = next(n for n, line in enumerate(seen) if line.startswith("No Windows on this disk"))
    first_row = next(n for n, line in enumerate(seen) if line.startswith(("fail ", "not checked ")))
    assert lead < first_row
    assert seen[lead].startswith(NO_WINDOWS_LEAD) and "--role data" in seen[lead]
    assert "not checked 99 rules not checked" in seen  # one row for the 99 ...
    assert not any(line.startswith("not checked rdp.port") for line in seen)  # ... not 99 rows
    assert "102 of 113 rules shown" in text


@pytest.mark.slow
def test_page_of_a_vm_sets_data_disk_not_applicable_apart(vm: Report, tmp_path: Path) -> None:
    (text,) = shown(render(vm, "html"), tmp_path)
    seen = lines(text)
    assert (
        "1 warning · 4 not checked · 7 manual · 6 not applicable · 115 passed · "
        "+ 212 OS-disk rules not applicable to the 2 data disks"
    ) in seen
    assert "218 not applicable" not in text
    page = render(vm, "html")  # a grouped rule keeps its anchor
    assert re.search(
        r'<details class="rule group s-not_applicable"[^>]*>.*?<code id="data1:data-mbr.vhd-rdp.port">', page, re.S
    )


def test_facts_say_which_hives_were_never_read(misconfigured: Report) -> None:
    page = render(misconfigured, "html")
    for hive in ("SAM", "SECURITY"):
        shown = re.search(rf"<th>hive {hive}</th><td>([^<]*)</td>", page)
        assert shown and shown.group(1).startswith("not read: ")
        assert f"the {hive} hive is read only on request" in shown.group(1)
    assert "<th>hive SYSTEM</th><td>clean</td>" in page


def test_only_urls_are_links(vm: Report) -> None:
    page = render(vm, "html")
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs and all(h.startswith(("https://", "http://")) for h in hrefs)
    names = {ref for r in vm.results for ref in r.references if not ref.startswith("http")}
    assert names  # the catalogue cites documents by name too: those are shown as text
    assert all(f"<td>{n}</td>".replace("&", "&amp;") in page or n in page for n in names)


# --- the notebook display --------------------------------------------------------------------------


def test_notebook_display_reads_like_the_report(misconfigured: Report, tmp_path: Path) -> None:
    before, after = shown(misconfigured._repr_html_(), tmp_path, clicks=("label[for$='-pass']",))
    seen = lines(before)
    assert "NOT COMPLIANT" in seen
    assert "16 failed · 2 warnings · 4 not checked · 7 manual · 6 not applicable · 78 passed" in seen
    rows = [line for line in seen if re.match(r"^(fail|warning|not checked|manual|pass|not applicable) \S+\.", line)]
    statuses = [row.split(" ")[0] for row in rows]
    assert statuses[:16] == ["fail"] * 16 and statuses[16:18] == ["warning"] * 2  # failures first
    assert "pass" not in statuses and "fail rdp.port — RDP listener port is 3389" in rows  # passes hidden
    assert "PortNumber is 3390, Azure expects 3389 — found 3390 (0xD3E), expected 3389 (0xD3D)" in seen
    shown_after = [
        line.split(" ")[0]
        for line in lines(after)
        if re.match(r"^(fail|warning|not checked|manual|pass|not applicable) \S+\.", line)
    ]
    assert shown_after.count("pass") == 78  # the "78 passed" toggle shows them


def test_notebook_display_of_a_disk_without_windows(no_windows: Report, tmp_path: Path) -> None:
    (text,) = shown(no_windows._repr_html_(), tmp_path)
    assert NO_WINDOWS_LEAD in text
    assert "99 rules not checked" in text and "not checked rdp.port" not in text


# --- the other formats -----------------------------------------------------------------------------


def test_text_leads_and_groups(no_windows: Report) -> None:
    text = render(no_windows, "text")
    out = text.splitlines()
    assert " ".join(line.strip() for line in out[3:6]).startswith(NO_WINDOWS_LEAD)
    assert sum(" n/c " in f" {line} " for line in out) == 2  # the group of 99, and disk.ntfs_clean
    assert "    n/c    99 rules: no Windows on this disk (see disk.windows_volume)" in text


def test_markdown_leads(no_windows: Report) -> None:
    text = render(no_windows, "markdown")
    assert f"> **{NO_WINDOWS_LEAD}" in text
    assert text.index("No Windows on this disk") < text.index("| ❌ |")


def test_sarif_names_the_unchecked_rules_once(no_windows: Report) -> None:
    results = json.loads(render(no_windows, "sarif"))["runs"][0]["results"]
    by_id = {r["ruleId"]: r for r in results}
    assert sorted(by_id) == ["disk.boot_files_present", "disk.ntfs_clean", "disk.windows_volume"]
    assert len(by_id["disk.windows_volume"]["properties"]["notChecked"]) == 99
    assert by_id["disk.windows_volume"]["message"]["text"].endswith("(99 rules not checked for want of Windows)")


def test_text_counts_of_a_vm(vm: Report) -> None:
    head = render(vm, "text").splitlines()[2]
    assert head.endswith("6 not applicable, 115 passed (and 212 OS-disk rules not applicable to the 2 data disks)")
