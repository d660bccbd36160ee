"""updates.* rules: the doc's minimum-version table, MS17-010, CVE-2018-0886, pending restarts."""

from __future__ import annotations

from typing import Any

import pytest

from azvhdaudit.pe import parse_version
from azvhdaudit.report import Status
from azvhdaudit.rules.updates import column_for, minimum_for, update_table

from .helpers import CCS, FakeFiles, MakeCtx, image_facts, layered, run, software_tree, system_tree

PACKAGES = r"Microsoft\Windows\CurrentVersion\Component Based Servicing\Packages"


def table_files(
    column: str, bump: int = 0, drop: tuple[str, ...] = (), override: dict[str, str] | None = None
) -> dict[str, Any]:
    """Every binary of ``column`` at its minimum (+ ``bump`` on the revision; GDR value for GDR/LDR pairs)."""
    files: dict[str, Any] = {}
    for row in update_table()["rows"]:
        cell = row["minimums"].get(column)
        if not cell or row["binary"] in drop:
            continue
        v = minimum_for(cell, None)
        files[row["path"]] = (v[0], v[1], v[2], v[3] + bump)
    for binary, version in (override or {}).items():
        path = next(r["path"] for r in update_table()["rows"] if r["binary"] == binary)
        files[path] = parse_version(version)
    return files


def ctx(
    make_ctx: MakeCtx,
    build: int,
    ubr: int | None = 0,
    files: dict[str, Any] | None = None,
    software_extra: dict[str, Any] | None = None,
    system: dict[str, Any] | None = None,
    profile: str = "azure",
    with_files: bool = True,
):
    software = layered(software_tree(build, ubr=ubr), software_extra or {})
    return make_ctx(
        facts=image_facts("mbr", os=None),
        hives={"SOFTWARE": software, "SYSTEM": system or system_tree()},
        files=FakeFiles(files or {}) if with_files else None,
        profile=profile,
    )


def test_table_copied_from_the_doc() -> None:
    table = update_table()
    assert [c["build"] for c in table["columns"]] == [7601, 9200, 9600, 14393, 15063, 16299, 17134]
    rows = {r["binary"]: r for r in table["rows"]}
    assert len(rows) == 29
    # spot checks against the doc's table
    assert rows["disk.sys"]["minimums"]["win7sp1_2008r2sp1"] == {"min": "6.1.7601.23403", "kb": "KB3125574"}
    assert rows["storport.sys"]["minimums"]["win8_2012"]["min_ldr"] == "6.2.9200.21306"
    assert rows["vmstorfl.sys"]["in_2017_table"] is False
    assert "win10_1607_2016" not in rows["disk.sys"]["minimums"]  # "-" in the doc
    assert "win7sp1_2008r2sp1" not in rows["volmgr.sys"]["minimums"]  # empty cell in the doc
    kb = {r["name"]: r for r in table["kb_rows"]}
    assert kb["MS17-010"]["kbs_any_of"]["win7sp1_2008r2sp1"] == ["KB4012212", "KB4012215"]


@pytest.mark.parametrize(
    ("build", "profile", "column"),
    [
        (7601, "azure", "win7sp1_2008r2sp1"),
        (17134, "azure", "win10_1803_2016_1803"),
        (17134, "azure-2017", None),
        (17763, "azure", None),
        (7600, "azure", None),
        (None, "azure", None),
    ],
)
def test_column_for(build: int | None, profile: str, column: str | None) -> None:
    found = column_for(build, profile)
    assert (found["id"] if found else None) == column


@pytest.mark.parametrize(
    ("cell", "version", "minimum"),
    [
        ({"min_gdr": "6.2.9200.17638", "min_ldr": "6.2.9200.21757"}, (6, 2, 9200, 17000), (6, 2, 9200, 17638)),
        ({"min_gdr": "6.2.9200.17638", "min_ldr": "6.2.9200.21757"}, (6, 2, 9200, 21000), (6, 2, 9200, 21757)),
        ({"min": "6.3.9600.18907"}, (6, 1, 7601, 1), (6, 3, 9600, 18907)),
    ],
)
def test_gdr_ldr(cell: dict[str, str], version: tuple[int, int, int, int], minimum: tuple[int, ...]) -> None:
    assert minimum_for(cell, version) == minimum


@pytest.mark.parametrize("build", [7601, 9200, 9600, 14393, 15063, 16299])
def test_min_versions_all_met(make_ctx: MakeCtx, build: int) -> None:
    column = column_for(build)
    assert column is not None
    out = run("updates.min_file_versions", ctx(make_ctx, build, files=table_files(column["id"], bump=1)))
    assert out.status == Status.PASS, out.message


def test_min_versions_one_low(make_ctx: MakeCtx) -> None:
    files = table_files("win7sp1_2008r2sp1", override={"storport.sys": "6.1.7601.17514"})
    out = run("updates.min_file_versions", ctx(make_ctx, 7601, files=files))
    assert out.status == Status.FAIL
    assert "storport.sys 6.1.7601.17514 < 6.1.7601.23403 (KB3125574)" in out.message
    low = [r for r in out.actual if r["status"] == "low"]
    assert [r["binary"] for r in low] == ["storport.sys"]


def test_min_versions_ldr_file_below_ldr_minimum(make_ctx: MakeCtx) -> None:
    # a 2012 LDR disk.sys (revision >= 20000) is held to the LDR minimum
    files = table_files("win8_2012", override={"disk.sys": "6.2.9200.21000"})
    out = run("updates.min_file_versions", ctx(make_ctx, 9200, files=files))
    assert out.status == Status.FAIL and "disk.sys 6.2.9200.21000 < 6.2.9200.21757" in out.message


def test_min_versions_missing_component_warns(make_ctx: MakeCtx) -> None:
    files = table_files("win81_2012r2", drop=("vmswitch.sys", "msdsm.sys"))
    out = run("updates.min_file_versions", ctx(make_ctx, 9600, files=files))
    assert out.status == Status.WARNING and "vmswitch.sys (missing)" in out.message
    assert any(not e.present and e.actual is None and "missing" in e.note for e in out.evidence)


def test_min_versions_vmstorfl_only_in_current_table(make_ctx: MakeCtx) -> None:
    files = table_files("win7sp1_2008r2sp1", override={"vmstorfl.sys": "6.1.7601.17514"})
    assert run("updates.min_file_versions", ctx(make_ctx, 7601, files=files)).status == Status.FAIL
    out = run("updates.min_file_versions", ctx(make_ctx, 7601, files=files, profile="azure-2017"))
    assert out.status == Status.PASS and all(r["binary"] != "vmstorfl.sys" for r in out.actual)


@pytest.mark.parametrize(
    ("build", "words"),
    [(17763, "no column"), (20348, "no column"), (10240, "no column"), (7600, "install SP1")],
)
def test_min_versions_not_applicable(make_ctx: MakeCtx, build: int, words: str) -> None:
    out = run("updates.min_file_versions", ctx(make_ctx, build))
    assert out.status == Status.NOT_APPLICABLE and words in out.message


def test_min_versions_no_files(make_ctx: MakeCtx) -> None:
    assert run("updates.min_file_versions", ctx(make_ctx, 7601, with_files=False)).status == Status.NOT_CHECKED
    # every binary unreadable: not checked, not a pass and not a wall of warnings
    assert run("updates.min_file_versions", ctx(make_ctx, 7601, files={})).status == Status.NOT_CHECKED


def test_min_versions_no_build(make_ctx: MakeCtx) -> None:
    c = make_ctx(facts=image_facts("mbr", os=None), hives={})
    assert run("updates.min_file_versions", c).status == Status.NOT_CHECKED


# --- MS17-010 --------------------------------------------------------------------------------------------


def package(kb: str, state: int = 0x70) -> dict[str, Any]:
    return {rf"{PACKAGES}\Package_for_{kb}~31bf3856ad364e35~amd64~~6.1.1.2": {"CurrentState": state}}


SRV = r"Windows\System32\drivers\srv.sys"


@pytest.mark.parametrize(
    ("build", "ubr", "software", "files", "status"),
    [
        (14393, 953, {}, {}, Status.PASS),
        (14393, 447, {}, {}, Status.FAIL),
        (14393, None, {}, {}, Status.NOT_CHECKED),
        (10240, 17319, {}, {}, Status.PASS),
        (17763, 1, {}, {}, Status.PASS),
        (7601, None, package("KB4012212"), {}, Status.PASS),
        (7601, None, package("KB4012215", 0x50), {}, Status.PASS),
        (7601, None, package("KB4012215", 0x60), {SRV: (6, 1, 7601, 17514)}, Status.FAIL),
        (7601, None, {}, {SRV: (6, 1, 7601, 23689)}, Status.PASS),
        (7601, None, {}, {SRV: (6, 1, 7601, 23677)}, Status.FAIL),
        (9200, None, {}, {SRV: (6, 2, 9200, 16384)}, Status.NOT_CHECKED),
        (9600, None, {}, {"Windows\\System32\\drivers\\srvnet.sys": (6, 3, 9600, 1)}, Status.PASS),
        (6002, None, {}, {}, Status.NOT_APPLICABLE),
    ],
)
def test_ms17_010(
    make_ctx: MakeCtx, build: int, ubr: int | None, software: dict[str, Any], files: dict[str, Any], status: Status
) -> None:
    out = run("updates.ms17_010", ctx(make_ctx, build, ubr=ubr, software_extra=software, files=files))
    assert out.status == status, out.message


@pytest.mark.parametrize(
    ("build", "ubr", "software", "status"),
    [
        (14393, 2248, {}, Status.PASS),
        (14393, 2247, {}, Status.FAIL),
        (17134, 48, {}, Status.PASS),
        (20348, 1, {}, Status.PASS),
        (9600, None, package("KB4103725"), Status.PASS),
        (9600, None, {}, Status.NOT_CHECKED),
        (10586, 1, {}, Status.NOT_APPLICABLE),
    ],
)
def test_cve_2018_0886(
    make_ctx: MakeCtx, build: int, ubr: int | None, software: dict[str, Any], status: Status
) -> None:
    out = run("updates.cve_2018_0886", ctx(make_ctx, build, ubr=ubr, software_extra=software))
    assert out.status == status, out.message


# --- pending restart ---------------------------------------------------------------------------------------

CBS = r"Microsoft\Windows\CurrentVersion\Component Based Servicing"


@pytest.mark.parametrize(
    ("software", "system", "files", "status", "words"),
    [
        ({}, {}, {}, Status.PASS, "no pending restart"),
        ({rf"{CBS}\RebootPending": {}}, {}, {}, Status.FAIL, "RebootPending"),
        (
            {r"Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired": {}},
            {},
            {},
            Status.FAIL,
            "RebootRequired",
        ),
        ({rf"{CBS}\PackagesPending\Package_1": {}}, {}, {}, Status.FAIL, "PackagesPending"),
        (
            {},
            {rf"{CCS}\Control\Session Manager": {"PendingFileRenameOperations": ["\\??\\C:\\a", ""]}},
            {},
            Status.FAIL,
            "PendingFileRenameOperations",
        ),
        ({}, {}, {r"Windows\WinSxS\pending.xml": b"<x/>"}, Status.FAIL, "pending.xml"),
    ],
)
def test_pending_reboot(
    make_ctx: MakeCtx,
    software: dict[str, Any],
    system: dict[str, Any],
    files: dict[str, Any],
    status: Status,
    words: str,
) -> None:
    c = ctx(make_ctx, 17763, software_extra=software, system=layered(system_tree(), system), files=files)
    out = run("updates.no_pending_reboot", c)
    assert out.status == status and words in out.message, out.message


def test_pending_reboot_without_hives(make_ctx: MakeCtx) -> None:
    c = make_ctx(facts=image_facts("mbr"), hives={})
    assert run("updates.no_pending_reboot", c).status == Status.NOT_CHECKED
    only_system = make_ctx(facts=image_facts("mbr"), hives={"SYSTEM": system_tree()})
    assert run("updates.no_pending_reboot", only_system).status == Status.NOT_CHECKED
