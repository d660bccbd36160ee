"""audit_many: a fleet of 50 images (good, bad, unreadable; local, file://, http://, az://) audited in a process
pool and on a Dask LocalCluster gives one report per image, the same verdicts both ways, and errors as reports."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import remote_servers as rs

from azvhdaudit.errors import ProfileError, WaiverError
from azvhdaudit.fleet import UNREADABLE_ID, audit_many, audit_source, error_report
from azvhdaudit.report import Status

# Azurite, the HTTP server and the images they serve are built with qemu-img, mkntfs and ntfs-3g
#: slow: worker processes over built images
pytestmark = [pytest.mark.slow, pytest.mark.tools]

#: (kind, count) of local copies (symlinks) in the fleet
LOCAL = [("win7", 12), ("win10-dirty", 12), ("win7-dynamic", 4), ("garbage", 3), ("truncated", 3)]
#: what each unreadable kind reports
ERRORS = {
    "garbage": "UnsupportedFormatError",
    "truncated": "VolumeError",
    "missing": "ImageNotFoundError",
}


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory,
    images: dict[str, Path],
    http_server: rs.HttpServer,
    blob_store: rs.BlobStore,
) -> dict[str, str]:
    """source -> kind, 50 sources."""
    where = tmp_path_factory.mktemp("fleet")
    sources: dict[str, str] = {}
    for kind, count in LOCAL:
        for n in range(count):
            link = where / f"{kind}-{n:02d}.vhd"
            link.symlink_to(images[kind])
            sources[str(link)] = kind
    for n in range(3):
        link = where / f"url-win7-{n}.vhd"
        link.symlink_to(images["win7"])
        sources[link.as_uri()] = "win7"
    sources[str(where / "missing-1.vhd")] = "missing"
    sources[str(where / "missing-2.vhd")] = "missing"
    for kind in ("win7", "win10-dirty", "garbage"):
        sources[f"{http_server.url}/{images[kind].name}"] = kind
    sources[f"{http_server.url}/no-such.vhd"] = "missing"
    for blob, kind in [
        ("page/win7.vhd", "win7"),
        ("page/win10-dirty.vhd", "win10-dirty"),
        ("page/win7-dynamic.vhd", "win7-dynamic"),
        ("page/truncated.vhd", "truncated"),
        ("block/win7.vhd", "win7"),
        ("block/garbage.vhd", "garbage"),
        ("page/no-such.vhd", "missing"),
    ]:
        sources[blob_store.url(blob)] = kind
    assert len(sources) == 50
    return sources


@pytest.fixture(scope="module")
def expected(images: dict[str, Path], compare: Any) -> dict[str, Any]:
    """kind -> the comparable report of the single audit of the sample, for the readable kinds."""
    return {kind: compare(audit_source(images[kind])) for kind in ("win7", "win10-dirty", "win7-dynamic")}


@pytest.fixture(scope="module")
def options(blob_store: rs.BlobStore) -> dict[str, Any]:
    # a mixed fleet: credentials for az://, none for http:// and file://
    return {"az": blob_store.options}


def check_fleet(reports: list[Any], fleet: dict[str, str], expected: dict[str, Any], compare: Any) -> None:
    assert sorted(r.source for r in reports) == sorted(fleet)
    for report in reports:
        kind = fleet[report.source]
        if kind in ERRORS:
            assert [r.rule_id for r in report.results] == [UNREADABLE_ID], report.source
            result = report.results[0]
            assert result.status is Status.ERROR and result.actual == ERRORS[kind], (report.source, result.message)
            assert report.exit_code() == 1 and not report.passed and report.facts == {}
        else:
            assert compare(report) == expected[kind], report.source
            assert report.facts["extra"]["io"]["bytes_read"] > 0


@pytest.fixture(scope="module")
def pool_reports(fleet: dict[str, str], options: dict[str, Any]) -> list[Any]:
    return list(audit_many(list(fleet), workers=2, storage_options=options))


@pytest.mark.slow
def test_fleet_in_a_process_pool(
    pool_reports: list[Any], fleet: dict[str, str], expected: dict[str, Any], compare: Any
) -> None:
    check_fleet(pool_reports, fleet, expected, compare)
    kinds = [fleet[r.source] for r in pool_reports]
    assert kinds.count("missing") == 4 and kinds.count("win7") == 12 + 3 + 2 + 1


@pytest.mark.slow
def test_fleet_on_dask_matches_the_pool(
    pool_reports: list[Any], fleet: dict[str, str], expected: dict[str, Any], options: dict[str, Any], compare: Any
) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        dask_reports = list(audit_many(list(fleet), client=client, storage_options=options))
    check_fleet(dask_reports, fleet, expected, compare)
    by_source = {r.source: compare(r) for r in pool_reports}
    assert {r.source: compare(r) for r in dask_reports} == by_source


@pytest.mark.parametrize("kind", ["win7", "win10-dirty", "child"])
@pytest.mark.parametrize("kwargs", [{}, {"ignore": "rdp*"}, {"profile": "azure-2017"}])
def test_audit_source_equals_the_engine_audit(
    images: dict[str, Path], compare: Any, kind: str, kwargs: dict[str, Any]
) -> None:
    from azvhdaudit.engine import audit

    ours = audit_source(images[kind], **kwargs)
    theirs = audit(images[kind], **kwargs)
    assert compare(ours) == compare(theirs)
    assert ours.facts["extra"]["io"]["bytes_read"] > 0 and "io" not in theirs.facts["extra"]


def test_in_process_keeps_the_order(images: dict[str, Path], tmp_path: Path) -> None:
    sources = [images["garbage"], images["win7"], tmp_path / "nope.vhd"]
    reports = list(audit_many(sources, workers=1))
    assert [r.source for r in reports] == [str(s) for s in sources]
    assert [bool(r.get(UNREADABLE_ID)) for r in reports] == [True, False, True]


class DiesInWorker(os.PathLike):  # type: ignore[type-arg]
    """A path whose use kills the process that is not the test's own: a crash in a native library."""

    def __init__(self, path: str, home: int) -> None:
        self.path, self.home = path, home

    def __fspath__(self) -> str:
        if os.getpid() != self.home:
            os._exit(70)
        return self.path


def test_a_dying_worker_fails_only_its_image(images: dict[str, Path], compare: Any) -> None:
    killer = DiesInWorker(str(images["win7"].parent / "killer.vhd"), os.getpid())
    sources: list[Any] = [images["win7"], killer, images["win10-dirty"], images["win7-dynamic"], images["garbage"]]
    reports = {r.source: r for r in audit_many(sources, workers=2)}
    assert sorted(reports) == sorted(os.fspath(s) for s in sources)
    died = reports[os.fspath(killer)].results
    assert [r.rule_id for r in died] == [UNREADABLE_ID] and died[0].actual == "WorkerDied"
    assert "died" in died[0].message
    for kind in ("win7", "win10-dirty", "win7-dynamic"):
        assert compare(reports[str(images[kind])]) == compare(audit_source(images[kind])), kind
    assert reports[str(images["garbage"])].results[0].actual == "UnsupportedFormatError"


def test_stopping_early_cancels_the_rest(images: dict[str, Path]) -> None:
    reports = audit_many([images["win7"]] * 6, workers=2)
    first = next(reports)
    reports.close()  # type: ignore[attr-defined]
    assert first.results and not first.get(UNREADABLE_ID)


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"profile": "nosuch"}, ProfileError, "unknown profile"),
        ({"select": "nosuch.*"}, ProfileError, "nosuch"),
        ({"image_type": "sysprepped"}, ProfileError, "image_type"),
        ({"role": "boot"}, ProfileError, "role"),
        ({"colour": "red"}, TypeError, "colour"),
        ({"waivers": [{"rule": "no.such_rule", "reason": "x"}]}, WaiverError, "no.such_rule"),
    ],
)
def test_bad_options_raise_before_any_audit(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        audit_many([tmp_path / "never-opened.vhd"], workers=2, **kwargs)


def test_waiver_file_is_read_once_and_applies_everywhere(images: dict[str, Path], tmp_path: Path) -> None:
    local = audit_source(images["win7"])
    failing = next(r for r in local.results if r.status is Status.FAIL)
    waivers = tmp_path / "waivers.json"
    waivers.write_text(json.dumps([{"rule": failing.rule_id, "reason": "accepted for the test fleet"}]))
    running = audit_many([images["win7"], images["win7"]], workers=2, waivers=waivers)
    waivers.unlink()  # read when audit_many was called: the workers get the waivers as data, not the path
    reports = list(running)
    assert len(reports) == 2
    for report in reports:
        result = report.get(failing.rule_id)
        assert result is not None and result.status is Status.WAIVED and result.waived_status is Status.FAIL


def test_error_report_validates_against_the_schema(tmp_path: Path) -> None:
    import importlib.resources

    import jsonschema

    schema = json.loads(importlib.resources.files("azvhdaudit.schemas").joinpath("report.schema.json").read_text())
    report = error_report(tmp_path / "x.vhd", FileNotFoundError(2, "No such file or directory"))
    jsonschema.validate(report.to_dict(), schema)
    assert report.summary["error"] == 1 and report.results[0].actual == "FileNotFoundError"
    assert "No such file or directory" in report.results[0].message


# --- README's fleet example as a plain script --------------------------------------------------------------


def readme_fleet_script(http_server: rs.HttpServer, images: dict[str, Path]) -> str:
    """README's fleet block, its example locations replaced by the test servers' (a mix of kinds)."""
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    block = next(code for code in re.findall(r"```python\n(.*?)```", readme, re.S) if "audit_many(" in code)
    places = {
        "https://artifacts.example.com/os.vhd": f"{http_server.url}/win7.vhd",
        "az://images/os.vhd": "az://images/page/win7.vhd",
        "az://images/web-01.vhd": "az://images/page/win10-dirty.vhd",
        "https://store.example/builds/app.vhd?sv=...&sig=...": f"{http_server.url}/win7-dynamic.vhd?sv=1&sig=2",
        "/srv/images/db.vhd": str(images["garbage"]),
    }
    for example, real in places.items():
        assert example in block, example
        block = block.replace(example, real)
    assert "__main__" not in block
    return 'print("the script runs", flush=True)\n' + block


def run_script(path: Path, blob_store: rs.BlobStore) -> Any:
    import subprocess
    import sys

    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": blob_store.azurite.connection_string}
    return subprocess.run(
        [sys.executable, str(path)], cwd=path.parent, env=env, capture_output=True, text=True, timeout=300
    )


def test_readme_fleet_example_runs_as_a_plain_script(
    tmp_path: Path, http_server: rs.HttpServer, images: dict[str, Path], blob_store: rs.BlobStore
) -> None:
    script = tmp_path / "fleet.py"
    script.write_text(readme_fleet_script(http_server, images))
    proc = run_script(script, blob_store)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines.count("the script runs") == 1  # the workers did not run the script again
    assert "Traceback" not in proc.stderr and "BrokenProcessPool" not in proc.stdout + proc.stderr
    by_source = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines[1:]}
    assert by_source["az://images/page/win10-dirty.vhd"].startswith("failed: [")
    assert by_source[f"{http_server.url}/win7-dynamic.vhd?sv=1&sig=2"].startswith(("passed", "failed: ["))
    assert by_source[str(images["garbage"])].startswith(
        "could not be audited: the image could not be audited: UnsupportedFormatError"
    )
    assert len(by_source) == 3


def test_workers_that_cannot_start_are_an_error_of_the_run(
    tmp_path: Path, http_server: rs.HttpServer, images: dict[str, Path], blob_store: rs.BlobStore
) -> None:
    # plain spawn runs the unguarded script again in each worker, which then dies starting a pool of its own
    code = readme_fleet_script(http_server, images).replace(
        "workers=4,", "workers=2, mp_context=__import__('multiprocessing').get_context('spawn'),"
    )
    script = tmp_path / "fleet_spawn.py"
    script.write_text(code)
    proc = run_script(script, blob_store)
    assert proc.returncode == 1
    assert "could not be audited" not in proc.stdout  # no image is blamed for the pool
    # the dying workers write to the same stderr and may finish after the parent's traceback: look at its tail
    tail = proc.stderr.strip().splitlines()[-20:]
    assert any(
        line.startswith("azvhdaudit.fleet.WorkerPoolError: audit_many: the worker processes die as they start")
        for line in tail
    ), tail


@pytest.mark.parametrize(("per_worker", "most_images"), [(None, 4), (1, 1)])
def test_remote_images_overlap_in_one_worker(
    images: dict[str, Path], tmp_path: Path, per_worker: int | None, most_images: int
) -> None:
    # four names for one image, served 20 ms late so that the requests of images audited at once overlap there
    for n in range(4):
        (tmp_path / f"copy{n}.vhd").symlink_to(images["win7"])
    (tmp_path / "missing.vhd").symlink_to(tmp_path / "nowhere")
    server = rs.start_http(tmp_path, delay=0.02)
    try:
        urls = [f"{server.url}/copy{n}.vhd" for n in range(4)] + [f"{server.url}/missing.vhd"]
        reports = list(audit_many(urls, workers=1, images_per_worker=per_worker))
        assert 1 <= server.log.most_paths_in_flight <= most_images
        if per_worker is None:  # the default for remote URLs: several at once
            assert server.log.most_paths_in_flight >= 2
    finally:
        server.stop()
    local = rs.comparable(audit_source(str(images["win7"])))
    assert sorted(r.source for r in reports) == sorted(urls)
    for report in reports:
        if report.source.endswith("missing.vhd"):
            assert report.get(UNREADABLE_ID) is not None and report.results[0].actual == "ImageNotFoundError"
        else:
            assert rs.comparable(report) == local


def test_images_per_worker_must_be_positive(images: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="images_per_worker"):
        audit_many([str(images["win7"])] * 2, workers=1, images_per_worker=0)
