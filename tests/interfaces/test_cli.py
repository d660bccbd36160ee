"""The command line, through main(argv) (with the engine and the data path replaced by fixtures)
and through a real subprocess (``python -m azvhdaudit``) for what needs no image."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from reportkit import make_clean_report, make_facts, make_report

from azvhdaudit import cli
from azvhdaudit.errors import CorruptHiveError, ProfileError
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import HiveState, RegistryView, RegType
from azvhdaudit.report import Report

REPO = Path(__file__).resolve().parents[2]


class TTY(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def run(argv: list[str], *, tty: bool = False) -> tuple[int, str, str]:
    out, err = (TTY(), TTY()) if tty else (io.StringIO(), io.StringIO())
    code = cli.main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def audits(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the engine: image name -> Report (or exception); records the calls."""
    table: dict[str, Any] = {"bad.vhd": make_report("bad.vhd"), "clean.vhd": make_clean_report("clean.vhd")}
    calls: list[dict[str, Any]] = []

    def fake(source: str, **kwargs: Any) -> Report:
        calls.append({"source": source, **kwargs})
        outcome = table[os.path.basename(source)]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]

    monkeypatch.setattr(cli, "_run_audit", fake)
    table["calls"] = calls
    return table


# --- the lists the parser offers ------------------------------------------------------------------


def test_the_parser_lists_agree_with_their_owners() -> None:
    from azvhdaudit import pytest_plugin
    from azvhdaudit.registry.open import BACKENDS
    from azvhdaudit.render import FORMATS
    from azvhdaudit.rules.base import DISK_CONTROLLERS, PROFILES, SECURITY_TYPES

    assert cli.PROFILES == tuple(PROFILES)
    assert cli.BACKENDS == BACKENDS
    assert cli.SECURITY_TYPES == SECURITY_TYPES and cli.DISK_CONTROLLERS == DISK_CONTROLLERS
    assert cli.AUDIT_FORMATS[: len(FORMATS)] == tuple(FORMATS)
    assert (pytest_plugin.PROFILES, pytest_plugin.BACKENDS) == (cli.PROFILES, cli.BACKENDS)


def test_importing_the_cli_loads_no_rule_module_and_no_reader() -> None:
    code = (
        "import sys, azvhdaudit.cli\n"
        "azvhdaudit.cli.build_parser().parse_args(['audit', 'x.vhd'])\n"
        "heavy = ('dissect', 'Registry', 'pefile', 'construct', 'azvhdaudit.engine', 'azvhdaudit.image',"
        " 'azvhdaudit.rules', 'azvhdaudit.registry', 'azvhdaudit.container')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=True,
    )
    assert proc.stdout.strip() == "[]"


# --- audit ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["audit", "clean.vhd"], 0),
        (["audit", "bad.vhd"], 1),
        (["audit", "clean.vhd", "bad.vhd"], 1),
        (["audit", "clean.vhd", "--fail-on", "warning"], 0),
        (["audit", "--format", "json", "bad.vhd"], 1),
        (["audit"], 2),
        (["audit", "x.vhd", "--format", "pdf"], 2),
        (["audit", "x.vhd", "--profile", "aws"], 2),
        (["frobnicate"], 2),
        (["--help"], 0),
        (["--version"], 0),
    ],
)
def test_exit_codes(audits: dict[str, Any], argv: list[str], code: int) -> None:
    assert run(argv)[0] == code


def test_options_reach_the_engine(audits: dict[str, Any]) -> None:
    run(
        [
            "audit",
            "bad.vhd",
            "--profile",
            "azure-2017",
            "--select",
            "rdp.*",
            "--select",
            "firewall",
            "--ignore",
            "rdp.port",
            "--waivers",
            "w.toml",
            "--image-type",
            "specialized",
            "--backend",
            "python-registry",
            "--data-disk",
            "d1.vhd",
            "--with-lsa",
        ]
    )
    call = audits["calls"][0]
    assert call == {
        "source": "bad.vhd",
        "profile": "azure-2017",
        "select": ["rdp.*", "firewall"],
        "ignore": ["rdp.port"],
        "waivers": "w.toml",
        "image_type": "specialized",
        "backend": "python-registry",
        "data_disks": ["d1.vhd"],
        "with_lsa": True,
    }


def test_fail_on_warning(audits: dict[str, Any]) -> None:
    base = make_report("warn.vhd")
    audits["warn.vhd"] = make_report("warn.vhd", [r for r in base.results if r.status.value in ("pass", "warning")])
    assert run(["audit", "warn.vhd"])[0] == 0
    assert run(["audit", "warn.vhd", "--fail-on", "warning"])[0] == 1


@pytest.mark.parametrize("fmt", ["text", "json", "junit", "sarif", "html", "markdown"])
def test_every_format_to_a_file(audits: dict[str, Any], tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"report.{fmt}"
    code, out, err = run(["audit", "bad.vhd", "clean.vhd", "--format", fmt, "-o", str(target)], tty=True)
    assert code == 1 and out == ""
    text = target.read_text(encoding="utf-8")
    assert "bad.vhd" in text and "clean.vhd" in text
    assert "\033[" not in text  # no colour in a file, even from a terminal


@pytest.mark.parametrize(("fail_on", "code"), [("fail", 0), ("warning", 1)])
def test_sarif_lists_every_finding_whatever_fails_the_run(audits: dict[str, Any], fail_on: str, code: int) -> None:
    # a report with warnings and not-checked rules but no failure: --fail-on decides only the exit code
    base = make_report("warn.vhd")
    audits["warn.vhd"] = make_report("warn.vhd", [r for r in base.results if r.status.value not in ("fail", "error")])
    rc, out, _ = run(["audit", "warn.vhd", "--format", "sarif", "--fail-on", fail_on])
    got = sorted((r["properties"]["status"], r["level"]) for r in json.loads(out)["runs"][0]["results"])
    wanted = sorted(
        (r.status.value, "warning" if r.status.value == "warning" or r.severity.value == "required" else "note")
        for r in audits["warn.vhd"].results
        if r.status.value in ("warning", "not_checked")
    )
    assert rc == code and got == wanted and {s for s, _ in got} == {"warning", "not_checked"}


@pytest.mark.parametrize("fmt", ["json", "sarif", "html", "junit", "markdown", "text"])
def test_a_report_written_to_a_file_leaves_one_summary_line(audits: dict[str, Any], tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"out.{fmt}"
    code, out, err = run(["audit", "bad.vhd", "--format", fmt, "-o", str(target)])
    counts = "5 failed, 1 error, 2 warnings, 1 not checked, 1 manual, 1 waived, 1 not applicable, 3 passed"
    assert code == 1 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"azvhdaudit: NOT COMPLIANT: bad.vhd: {counts}")
    assert line.endswith(f"; {fmt} report written to {target}")


def test_several_images_end_with_one_summary_line(audits: dict[str, Any]) -> None:
    audits["broken.vhd"] = CorruptHiveError("broken.vhd: SYSTEM hive: bad base block signature")
    code, out, err = run(["audit", "clean.vhd", "bad.vhd", "broken.vhd"])
    assert code == 2
    last = out.rstrip("\n").splitlines()[-1]
    assert last.startswith(
        "azvhdaudit: ERROR: 3 images: 1 compliant, 1 not compliant, 1 could not be read "
        "(broken.vhd); rules: 5 failed, 1 error, 2 warnings"
    )
    assert sum("images" in line for line in out.splitlines()) == 1  # the one line, not one per renderer
    code, out, err = run(["audit", "clean.vhd", "bad.vhd", "--format", "json"])
    json.loads(out)  # stdout stays JSON; the verdict goes to the log
    assert err.splitlines()[-1].startswith("azvhdaudit: NOT COMPLIANT: 2 images: 1 compliant, 1 not compliant")


@pytest.mark.parametrize(
    ("env", "tty", "colour"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": "0"}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False, False),
        ({"TERM": "dumb"}, True, False),
        ({"TERM": "dumb", "FORCE_COLOR": "1"}, False, True),
    ],
)
def test_colour(
    audits: dict[str, Any], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tty: bool, colour: bool
) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _, out, _ = run(["audit", "bad.vhd"], tty=tty)
    assert ("\033[" in out) is colour


def test_a_dumb_terminal_gets_no_cursor_escapes(audits: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "dumb")
    _, _, err = run(["audit", "clean.vhd", "bad.vhd"], tty=True)
    assert "\033" not in err and "\r" not in err
    first, second = err.splitlines()[:2]
    assert first.startswith("[1/2] clean.vhd: compliant (0.0 s, ") and first.endswith(" s left)")
    assert second.startswith("[2/2] bad.vhd: 6 failed (0.0 s, ") and second.endswith(" images/s)")
    monkeypatch.setenv("TERM", "xterm")
    _, _, err = run(["audit", "clean.vhd", "bad.vhd"], tty=True)
    assert "\r\033[K[1/2] auditing clean.vhd" in err


def test_unreadable_image_is_one_line_and_exit_2(audits: dict[str, Any]) -> None:
    audits["broken.vhd"] = CorruptHiveError("broken.vhd: SYSTEM hive: bad base block signature b'xxxx' at 0")
    code, out, err = run(["audit", "clean.vhd", "broken.vhd"])
    assert code == 2
    assert "clean.vhd" in out  # the readable image is still reported
    lines = err.strip().splitlines()
    assert lines == [
        "azvhdaudit: error: broken.vhd: SYSTEM hive: bad base block signature b'xxxx' at 0 "
        "(try --backend python-registry, or check the hive with hivexsh on a copy)"
    ]


def test_bad_selector_stops_at_once(audits: dict[str, Any]) -> None:
    audits["clean.vhd"] = ProfileError("select pattern 'rpd' matches no rule id or area")
    code, out, err = run(["audit", "clean.vhd", "bad.vhd"])
    assert code == 2 and out == ""
    assert len(audits["calls"]) == 1
    assert err.startswith("azvhdaudit: error: select pattern 'rpd'") and err.count("\n") == 1


def test_internal_error_is_one_line_unless_debug(audits: dict[str, Any]) -> None:
    audits["clean.vhd"] = RuntimeError("boom\nsecond line")
    code, _, err = run(["audit", "clean.vhd"])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "--debug" in err
    code, _, err = run(["audit", "clean.vhd", "--debug"])
    assert code == 2 and "Traceback (most recent call last)" in err


@pytest.mark.parametrize(
    ("tty", "no_color", "colour"),
    [(True, None, True), (True, "1", False), (False, None, False)],
    ids=["terminal", "NO_COLOR", "piped"],
)
def test_colour_only_on_a_terminal_without_no_color(
    audits: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tty: bool, no_color: str | None, colour: bool
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    if no_color:
        monkeypatch.setenv("NO_COLOR", no_color)
    _, out, _ = run(["audit", "bad.vhd"], tty=tty)
    assert ("\033[" in out) is colour


@pytest.mark.parametrize(("tty", "shown"), [(True, True), (False, False)])
def test_progress_only_on_a_terminal(audits: dict[str, Any], tty: bool, shown: bool) -> None:
    _, _, err = run(["audit", "clean.vhd", "bad.vhd"], tty=tty)
    assert ("[2/2] auditing bad.vhd" in err) is shown
    assert ("[1/2] clean.vhd: compliant" in err) is shown


def test_verbose_logs_to_stderr(audits: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    _, _, quiet = run(["audit", "clean.vhd", "--format", "json", "-o", str(target)])
    _, _, loud = run(["-v", "audit", "clean.vhd", "--format", "json", "-o", str(target)])
    assert "INFO" not in quiet and len(quiet.splitlines()) == 1  # only the summary line
    assert f"azvhdaudit: INFO: wrote {target}" in loud


def test_data_disk_needs_one_image(audits: dict[str, Any]) -> None:
    code, _, err = run(["audit", "a.vhd", "b.vhd", "--data-disk", "d.vhd"])
    assert code == 2 and "--data-disk needs exactly one IMAGE" in err


# --- fix ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "marker"), [("ps1", "#Requires -RunAsAdministrator"), ("reg", "Windows Registry Editor Version 5.00")]
)
def test_fix_writes_the_script(audits: dict[str, Any], tmp_path: Path, fmt: str, marker: str) -> None:
    target = tmp_path / f"fix.{fmt}"
    code, out, err = run(["fix", "bad.vhd", "-o", str(target), "--format", fmt])
    fixable = sum(1 for r in audits["bad.vhd"].filter(status="fail") if r.remediation)
    assert (code, out, err) == (0, "", f"azvhdaudit: fix script for {fixable} rules of bad.vhd written to {target}\n")
    data = target.read_bytes()
    # Windows PowerShell 5.1 reads a script as UTF-8 only with a byte-order mark; the .reg file is ASCII
    assert data.startswith(b"\xef\xbb\xbf") is (fmt == "ps1")
    text = data.decode("utf-8-sig")
    assert text.startswith(marker)
    assert "rdp.port" in text
    if fmt == "reg":
        assert "\r\n" in text  # regedit's own line ends, kept when written


# --- rules ----------------------------------------------------------------------------------------


def test_rules_json_lists_the_catalogue() -> None:
    from azvhdaudit.engine import catalogue

    code, out, _ = run(["rules", "--format", "json"])
    rows = json.loads(out)
    assert code == 0
    assert [r["id"] for r in rows] == [r.id for r in catalogue()]
    assert {"id", "area", "severity", "baselines", "source"} <= set(rows[0])


def test_rules_profile_filter() -> None:
    from azvhdaudit.engine import catalogue

    _, out, _ = run(["rules", "--format", "json", "--profile", "azure-2017"])
    ids = {r["id"] for r in json.loads(out)}
    assert ids == {r.id for r in catalogue() if "azure-2017" in r.meta.baselines}


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_rules_text_and_markdown(fmt: str) -> None:
    from azvhdaudit.engine import catalogue

    code, out, _ = run(["rules", "--format", fmt])
    first = next(iter(catalogue()))
    assert code == 0 and first.id in out and first.meta.title in out
    if fmt == "text":
        assert out.rstrip().endswith(f"{len(list(catalogue()))} rules")


# --- info and reg ---------------------------------------------------------------------------------


class FakeImage:
    def __init__(self) -> None:
        self.source = "gen2-sample.vhdx"
        self.facts = make_facts()
        system = MemoryHive.build(
            "SYSTEM",
            {
                "Select": {"Current": 1, "Default": 1},
                r"ControlSet001\Control\TimeZoneInformation": {
                    "RealTimeIsUniversal": 1,
                    "TimeZoneKeyName": "UTC",
                    "Bias": (RegType.DWORD, 0),
                },
                r"ControlSet001\Control\TimeZoneInformation\Dynamic": {},
                r"ControlSet001\Services\Tcpip\Parameters": {
                    "SearchList": ["a.example", "b.example"],
                    "Blob": b"\x01\xab",
                    "": "default data",
                },
            },
            state=HiveState(dirty=True, replayed=True, logs=("SYSTEM.LOG1",)),
        )
        self.registry = RegistryView({"SYSTEM": system}, unavailable={"SOFTWARE": "not found at ..."})
        self.bcd = None
        self.bcd_error = None

    def __enter__(self) -> FakeImage:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def fake_image(monkeypatch: pytest.MonkeyPatch) -> FakeImage:
    image = FakeImage()
    monkeypatch.setattr(cli, "_open_image", lambda source, backend, require_windows=True: image)
    return image


def test_reg_query_key(fake_image: FakeImage) -> None:
    code, out, _ = run(["reg", "img.vhdx", r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation"])
    assert code == 0
    key = r"HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Control\TimeZoneInformation"
    assert out.splitlines()[1] == key
    assert "    RealTimeIsUniversal    REG_DWORD    0x1" in out.splitlines()
    assert "    TimeZoneKeyName    REG_SZ    UTC" in out.splitlines()
    assert key + r"\Dynamic" in out.splitlines()


@pytest.mark.parametrize(
    ("value", "line"),
    [
        ("SearchList", "    SearchList    REG_MULTI_SZ    a.example\\0b.example"),
        ("blob", "    Blob    REG_BINARY    01AB"),
        ("", "    (Default)    REG_SZ    default data"),
    ],
)
def test_reg_query_value(fake_image: FakeImage, value: str, line: str) -> None:
    code, out, _ = run(["reg", "img.vhdx", r"SYSTEM\CurrentControlSet\Services\Tcpip\Parameters", value])
    assert code == 0 and line in out.splitlines()
    assert sum(1 for row in out.splitlines() if row.startswith("    ")) == 1


def test_reg_json(fake_image: FakeImage) -> None:
    code, out, _ = run(["reg", "img.vhdx", r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters", "--json"])
    data = json.loads(out)
    values = {v["name"]: v for v in data["values"]}
    assert code == 0
    assert values["Blob"] == {"name": "Blob", "type": "REG_BINARY", "data": "01ab", "raw": "01ab"}
    assert values["SearchList"]["data"] == ["a.example", "b.example"]
    assert data["key"] == r"HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Services\Tcpip\Parameters"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (r"HKLM\SYSTEM\CurrentControlSet\Nope", None, "the key does not exist"),
        (r"HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation", "Nope", "no value named 'Nope'"),
        (r"HKLM\SOFTWARE\Microsoft", None, "not found at"),
    ],
)
def test_reg_missing_is_exit_1(fake_image: FakeImage, key: str, value: str | None, message: str) -> None:
    code, out, err = run(["reg", "img.vhdx", key] + ([value] if value else []))
    assert code == 1 and out == "" and message in err and err.count("\n") == 1


def test_info_text(fake_image: FakeImage) -> None:
    code, out, _ = run(["info", "img.vhdx"])
    assert code == 0
    assert "VHDX dynamic, virtual 4.0 GiB" in out
    assert "Windows Server 2019 Datacenter, build 17763.3650, AMD64, Server" in out
    assert "generation   2" in out
    assert "SYSTEM: dirty, logs replayed" in out
    assert "SOFTWARE: unavailable — not found at" in out
    assert "EFI System" in out and "Windows" in out


def test_info_json(fake_image: FakeImage) -> None:
    code, out, _ = run(["info", "img.vhdx", "--json"])
    data = json.loads(out)
    assert code == 0
    assert data["facts"]["generation"] == 2
    assert data["hive_states"]["SYSTEM"] == {"dirty": True, "replayed": True, "logs": ["SYSTEM.LOG1"], "note": ""}


# --- a real process -------------------------------------------------------------------------------


def _process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "azvhdaudit", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


@pytest.fixture
def not_an_image(tmp_path: Path) -> Path:
    path = tmp_path / "notes.vhd"
    path.write_bytes(b"these are not the sectors you are looking for\n" * 40)
    return path


@pytest.mark.parametrize("command", [["audit"], ["info"], ["fix"], ["reg"]])
def test_process_not_an_image_is_one_line(not_an_image: Path, command: list[str]) -> None:
    extra = ["HKLM\\SYSTEM"] if command == ["reg"] else []
    proc = _process(*command, str(not_an_image), *extra)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("azvhdaudit: error: ") and str(not_an_image) in lines[0]
    assert "(give a VHD, VHDX, VMDK, QCOW2 or raw disk image)" in lines[0]


def test_process_debug_shows_the_traceback(not_an_image: Path) -> None:
    proc = _process("audit", "--debug", str(not_an_image))
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("azvhdaudit: error: ")


def test_process_missing_file(tmp_path: Path) -> None:
    proc = _process("audit", str(tmp_path / "nope.vhd"))
    assert proc.returncode == 2
    missing = tmp_path / "nope.vhd"
    assert proc.stderr.strip() == f"azvhdaudit: error: {missing}: no such image file (check the path)"


def test_process_help_documents_exit_codes() -> None:
    proc = _process("audit", "--help")
    assert proc.returncode == 0
    for line in ("0  compliant", "1  at least one rule failed", "2  usage error, or an image that could not be read"):
        assert line in proc.stdout


def test_process_usage_error_is_2() -> None:
    proc = _process("audit", "--format", "pdf", "x.vhd")
    assert proc.returncode == 2 and "invalid choice: 'pdf'" in proc.stderr


def test_process_rules_piped_has_no_colour() -> None:
    proc = _process("rules", env={"NO_COLOR": ""})
    assert proc.returncode == 0 and "\033[" not in proc.stdout and "rules" in proc.stdout.splitlines()[-1]


def test_process_on_a_console_that_cannot_show_every_character() -> None:
    proc = _process("rules", env={"PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 0, proc.stderr
    assert "? " in proc.stdout  # the section sign of the source lines, replaced
