"""The fleet at a glance: the page rendered in headless Chromium over more than 50 images, its JSON and CSV
forms, the long DataFrame, progress, and the duplicate-identity warning on cloned images."""

from __future__ import annotations

import csv
import html.parser
import io
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import azvhdaudit
from azvhdaudit import cli
from azvhdaudit.overview import fleet_report, machine_sid
from azvhdaudit.render.fleet import csv_columns, load_schema
from azvhdaudit.render.json import to_jsonable
from azvhdaudit.report import Report

from .buildkit import CLONE_GUID, CLONE_NAME, CLONE_SID, OTHER_NAME, polacdms, sid_text

#: slow: builds images with the real tools; Chromium
pytestmark = pytest.mark.slow

#: how many links of each image the fleet directory holds
COPIES = {
    "gen1-azure.vhd": 12,
    "gen1-week2.vhd": 12,
    "gen2-misconfigured.vhdx": 10,
    "gen1-misaligned.vhd": 8,
    "gen1-azure-child.vhd": 6,
    "web-clone.vhd": 5,
    "web-other.vhd": 1,
}
#: images failing rdp.port: week2 (3390), gen2 (3390) and the gen1 child (3391)
RDP_PORT_FAILING = COPIES["gen1-week2.vhd"] + COPIES["gen2-misconfigured.vhdx"] + COPIES["gen1-azure-child.vhd"]


def run(argv: list[str], *, tty: bool = False) -> tuple[int, str, str]:
    class TTY(io.StringIO):
        def isatty(self) -> bool:
            return True

    if argv[0] == "audit" and "--profile" not in argv:
        argv = [*argv, "--profile", "azure-2022"]  # the document the samples' verdicts are built for
    out, err = (TTY(), TTY()) if tty else (io.StringIO(), io.StringIO())
    code = cli.main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)  # the images are only read: a hard link is a copy that costs nothing
    except OSError:
        shutil.copyfile(source, target)


@pytest.fixture(scope="module")
def fleet_dir(
    tmp_path_factory: pytest.TempPathFactory, built: dict[str, Path], sample_path: Callable[[str], Path]
) -> list[Path]:
    """54 images (links to the samples and the built variants) and one file that is not an image."""
    out = tmp_path_factory.mktemp("fleet")
    sources = {
        name: sample_path(name)
        for name in ("gen1-azure.vhd", "gen2-misconfigured.vhdx", "gen1-misaligned.vhd", "gen1-azure-child.vhd")
    }
    sources.update(built)
    _link(sources["gen1-azure.vhd"], out / "gen1-azure.vhd")  # the children's parent, by its locator's name
    paths = []
    for name, count in COPIES.items():
        stem, ext = name.rsplit(".", 1)
        for n in range(count):
            target = out / f"{stem}-{n:02d}.{ext}"
            _link(sources[name], target)
            paths.append(target)
    junk = out / "truncated.vhd"
    junk.write_bytes(b"conectix" + bytes(100))
    paths.append(junk)
    return paths


@pytest.fixture(scope="module")
def page(fleet_dir: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    target = tmp_path_factory.mktemp("page") / "fleet.html"
    code, out, err = run(["audit", *map(str, fleet_dir), "--with-lsa", "--format", "html", "-o", str(target)])
    return target, code, err


class DOM(html.parser.HTMLParser):
    """What the tests read from Chromium's DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str | None]] = []
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.bars: dict[str, dict[str, str | None]] = {}
        self.warnings: list[dict[str, str | None]] = []
        self.cells: dict[tuple[str, str], str] = {}
        self.sections: list[dict[str, str | None]] = []
        self.body: dict[str, str | None] = {}
        self.text: dict[str, str] = {}
        self._capture: str | None = None
        self._row: str | None = None
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "body":
            self.body = a
        if tag in ("script", "img", "link", "iframe") and (a.get("src") or a.get("href")):
            self.external.append(a.get("src") or a.get("href") or "")
        if tag == "a" and (a.get("href") or "").startswith("#"):
            self.links.append((a["href"] or "")[1:])
        if tag == "tr" and "image" in (a.get("class") or "").split():
            self.rows.append(a)
            self._row = a.get("data-index")
        if tag == "td" and self._row is not None and a.get("data-area"):
            self.cells[(self._row, a["data-area"] or "")] = a.get("class") or ""
        if tag == "g" and a.get("class") == "bar":
            self.bars[a.get("data-rule") or ""] = a
        if tag == "p" and a.get("class") == "warn":
            self.warnings.append(a)
            self._capture = f"warn{len(self.warnings) - 1}"
        if tag == "section" and "image-findings" in (a.get("class") or ""):
            self.sections.append(a)
        if a.get("id") in ("shown-count", "fleet-summary"):
            self._capture = a["id"]

    def handle_data(self, data: str) -> None:
        if self._capture:
            self.text[self._capture] = self.text.get(self._capture, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "span"):
            self._capture = None
        if tag == "tr":
            self._row = None


def chromium_dom(page: Path, fragment: str = "") -> DOM:
    """The page as headless Chromium has it after its script ran."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is needed to render the fleet page (apt-get install chromium)", pytrace=False)
    done = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
            page.as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    dom = DOM()
    dom.feed(done.stdout)
    return dom


def shown(dom: DOM) -> list[dict[str, str | None]]:
    return [row for row in dom.rows if "hidden" not in row]


def test_the_page_in_chromium_shows_the_fleet(page: tuple[Path, int, str], fleet_dir: list[Path]) -> None:
    path, code, err = page
    assert code == 2  # one file is not an image: the page still shows every other one
    dom = chromium_dom(path)
    assert dom.body.get("data-filters-ready") == "true"  # the script ran
    total = len(fleet_dir)
    assert total >= 50 and len(dom.rows) == total and len(shown(dom)) == total
    assert dom.text["shown-count"] == f"{total} of {total} images shown"
    summary = dom.text["fleet-summary"]
    compliant = COPIES["gen1-azure.vhd"] + COPIES["web-clone.vhd"] + COPIES["web-other.vhd"]
    assert summary.startswith(f"{total} images: {compliant} compliant, {total - compliant - 1} failing, 1 unreadable")
    assert dom.external == []  # nothing is fetched
    # every link of every cell and name lands on an element of the page
    assert dom.links and set(dom.links) <= dom.ids
    names = {row["data-index"]: row for row in dom.rows}
    week2 = next(i for i, row in names.items() if "gen1-week2-00" in (row.get("data-name") or ""))
    gen1 = next(i for i, row in names.items() if "gen1-azure-00" in (row.get("data-name") or ""))
    assert "s-fail" in dom.cells[(week2, "rdp")] and "s-fail" in dom.cells[(week2, "bcd")]
    assert "s-warning" in dom.cells[(week2, "crashdump")]
    assert "s-pass" in dom.cells[(gen1, "rdp")] and "s-fail" not in " ".join(
        v for (i, _), v in dom.cells.items() if i == gen1
    )
    assert f"img-{week2}-rdp" in dom.ids and f"img-{week2}-rdp" in dom.links
    # the bar chart: how many images fail each rule
    bar = dom.bars["rdp.port"]
    assert bar["data-failing"] == str(RDP_PORT_FAILING) and bar["data-warning"] == "0"
    assert dom.bars["disk.container_format"]["data-failing"] == str(COPIES["gen2-misconfigured.vhdx"])
    assert dom.bars["image.readable"]["data-failing"] == "1"
    assert dom.bars["crashdump.kernel_dump"]["data-warning"] == str(
        COPIES["gen1-week2.vhd"] + COPIES["gen2-misconfigured.vhdx"]
    )
    # the clones are the fleet's warnings, named; generalized copies sharing SAMPLE-VM are not
    clones = [f"web-clone-{n:02d}.vhd" for n in range(COPIES["web-clone.vhd"])]
    kinds = {w["data-kind"]: w["data-value"] for w in dom.warnings}
    assert kinds == {"computer_name": CLONE_NAME, "machine_guid": CLONE_GUID, "machine_sid": sid_text(CLONE_SID)}
    for n in range(len(dom.warnings)):
        text = dom.text[f"warn{n}"]
        assert all(name in text for name in clones) and "web-other" not in text and "SAMPLE-VM" not in text


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("#verdict=failing&rule=rdp.port", RDP_PORT_FAILING),
        ("#rule=disk.not_differencing", COPIES["gen1-azure-child.vhd"]),
        ("#name=web-clone", COPIES["web-clone.vhd"]),
        ("#verdict=unreadable", 1),
        ("#verdict=compliant&name=gen1-week2", 0),
    ],
)
def test_the_filters_in_chromium(page: tuple[Path, int, str], fragment: str, expected: int) -> None:
    dom = chromium_dom(page[0], fragment)
    rows = shown(dom)
    assert len(rows) == expected
    assert dom.text["shown-count"] == f"{expected} of {len(dom.rows)} images shown"
    visible_sections = {s["data-index"] for s in dom.sections if "hidden" not in s}
    assert visible_sections == {row["data-index"] for row in rows}
    if "rule=" in fragment:
        rule = fragment.split("rule=")[1].split("&")[0]
        assert all(f" {rule} " in (row.get("data-failing") or "") for row in rows)


def test_json_and_csv_have_the_shape_of_the_page(fleet_dir: list[Path], tmp_path: Path) -> None:
    paths = [str(p) for p in fleet_dir[::6]]
    code, out, err = run(["audit", *paths, "--format", "fleet-json"])
    data = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(load_schema())
    jsonschema.validate(data, load_schema())
    assert [row["source"] for row in data["images"]] == paths
    code, out_csv, _ = run(["audit", *paths, "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out_csv)))
    assert len(rows) == len(paths)
    assert list(rows[0]) == [
        "index",
        "image",
        "source",
        "verdict",
        "fail",
        "error",
        "warning",
        "not_checked",
        "manual",
        "waived",
        "not_applicable",
        "pass",
        "sysprep_state",
        "computer_name",
        "machine_guid",
        "machine_sid",
        "failing_rules",
    ] + [f"area:{a}" for a in data["areas"]]
    for image, row in zip(data["images"], rows, strict=True):
        assert row["verdict"] == image["verdict"] and int(row["fail"]) == image["summary"]["fail"]
        for area in data["areas"]:
            assert row[f"area:{area}"] == (image["areas"].get(area) or {}).get("worst", "")
        assert row["failing_rules"].split() == [r.split(" ", 1)[0] for r in image["failing"]]
    # off a terminal: the summary (and the warnings) only
    assert err.splitlines()[-1].startswith("azvhdaudit: ") and "images/s" not in err


def test_progress_on_a_terminal(fleet_dir: list[Path]) -> None:
    paths = [str(p) for p in fleet_dir[:4]]
    code, out, err = run(["audit", *paths, "--format", "csv"], tty=True)
    assert "[4/4] " in err and "images/s" in err and "s left" in err
    progress = cli._Progress(io.StringIO(), 10, clock=iter([0.0, 2.0, 4.0]).__next__)
    assert progress.pace(4) == ", 2.0 images/s, about 3 s left"
    assert progress.pace(10) == ", 2.5 images/s"
    assert cli._Progress(io.StringIO(), 1, clock=lambda: 1.0).pace(1) == ""


def test_from_python_and_one_long_dataframe(fleet_dir: list[Path]) -> None:
    reports = list(azvhdaudit.audit_many(fleet_dir[:12], workers=1, identity=True))
    fleet = fleet_report(reports)
    frame = fleet.to_dataframe()
    assert len(frame) == sum(len(r.results) for r in reports)
    assert frame["source"].nunique() == 12
    assert set(frame[frame.status == "fail"]["source"]) == {r.source for r in reports if r.failed}
    assert fleet.to_html().count("<tr class=image ") == 12
    assert azvhdaudit.to_dataframe(reports).equals(frame)


def _clones(built: dict[str, Path], tmp: Path, count: int) -> list[Path]:
    out = []
    for n in range(count):
        target = tmp / f"clone-{n}.vhd"
        shutil.copyfile(built["web-clone.vhd"], target)  # a true copy: the clone of a disk
        out.append(target)
    return out


def test_cloned_images_share_identities(built: dict[str, Path], gen1: Path, tmp_path: Path) -> None:
    clones = _clones(built, tmp_path, 3)
    generalized = [tmp_path / "gen1-a.vhd", tmp_path / "gen1-b.vhd"]
    for target in generalized:
        shutil.copyfile(gen1, target)
    images = [*clones, built["web-other.vhd"], *generalized]
    with_lsa = fleet_report(list(azvhdaudit.audit_many(images, workers=1, with_lsa=True, identity=True)))
    found = {(d.kind, d.value): d.images for d in with_lsa.duplicates}
    names = [p.name for p in clones]
    assert found == {
        ("computer_name", CLONE_NAME): names,
        ("machine_guid", CLONE_GUID): names,
        ("machine_sid", sid_text(CLONE_SID)): names,
    }
    assert with_lsa.images[3].computer_name == OTHER_NAME
    assert with_lsa.notes == [
        "2 generalized images not compared for duplicate identities: a generalized image "
        "takes a new computer name and SID when deployed"
    ]
    without = fleet_report([azvhdaudit.audit(p) for p in images])  # no identity recorded by plain audit()
    assert without.duplicates == []
    assert without.notes[-1].startswith("4 images without a recorded identity, not compared")
    cli_side = fleet_report([cli._run_audit(str(p)) for p in images])  # the command line's audit records it
    assert {d.kind for d in cli_side.duplicates} == {"computer_name", "machine_guid"}
    assert any("--with-lsa" in note for note in cli_side.notes)


def test_reports_read_back_keep_their_identity(built: dict[str, Path], tmp_path: Path) -> None:
    reports: list[Report] = [cli._run_audit(str(p)) for p in _clones(built, tmp_path, 2)]
    dicts: list[dict[str, Any]] = [to_jsonable(r) for r in reports]
    assert [d.kind for d in fleet_report(dicts).duplicates] == ["computer_name", "machine_guid"]
    for data in dicts:
        data["facts"]["extra"].pop("identity")  # a report from before identities were recorded
    assert fleet_report(dicts).duplicates == []


@pytest.mark.parametrize(
    ("data", "sid"),
    [
        (polacdms("WEB-01", CLONE_SID), sid_text(CLONE_SID)),
        (polacdms("WEB-01", CLONE_SID)[:-1], None),  # cut short: the tail is no SID
        (polacdms("X", (32, 544, 1, 2)), None),  # not a machine (21) SID
        (b"", None),
    ],
)
def test_machine_sid(data: bytes, sid: str | None) -> None:
    assert machine_sid(data) == sid


def test_csv_columns_name_every_area(fleet_dir: list[Path]) -> None:
    fleet = fleet_report([cli._run_audit(str(fleet_dir[0]))])
    assert csv_columns(fleet)[-len(fleet.areas) :] == [f"area:{a}" for a in fleet.areas]


def test_names_are_escaped(fleet_dir: list[Path], tmp_path: Path) -> None:
    odd = tmp_path / "<img src=x onerror=alert(1)>&.vhd"
    _link(fleet_dir[0], odd)
    html_text = azvhdaudit.fleet_report([cli._run_audit(str(odd))]).to_html()
    assert "<img" not in html_text and "&lt;img src=x onerror=alert(1)&gt;&amp;.vhd" in html_text
    assert html_text.count("<script>") == 1  # the page's own


def test_options_are_checked_before_the_image_is_opened(tmp_path: Path) -> None:
    from azvhdaudit.errors import ProfileError, WaiverError

    waivers = tmp_path / "w.toml"
    waivers.write_text('[[waiver]]\nrule = "no.such.rule"\nreason = "x"\n', encoding="utf-8")
    with pytest.raises(WaiverError):
        cli._run_audit(str(tmp_path / "missing.vhd"), waivers=str(waivers))
    with pytest.raises(ProfileError):
        cli._run_audit(str(tmp_path / "missing.vhd"), select=["no-such-area"])
