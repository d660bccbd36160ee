"""The command line declares only the sub-command it parses: the same namespaces, help and errors as the parser
with every sub-command declared."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from azvhdaudit.cli import _SUBCOMMANDS, _command_of, build_parser, main

ARGVS = [
    ["audit", "x.vhdx", "--format", "json", "-o", "/dev/null"],
    ["-v", "audit", "a.vhd", "b.vhd", "--profile", "azure-2022", "--select", "rdp.*", "--security-type", "Standard"],
    ["--debug", "info", "x.vhd", "--json"],
    ["reg", "x.vhd", r"HKLM\SYSTEM\Select", "Current"],
    ["rules", "--format", "json"],
    ["fix", "x.vhd", "--format", "reg", "--include-warnings"],
    ["diff", "old.json", "new.json", "--fail-on", "warning"],
    ["capabilities", "x.vhd", "--format", "bicep"],
    ["audit", "x.vhd", "-vv", "--with-lsa"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=[" ".join(a) for a in ARGVS])
def test_the_same_namespace(argv: list[str]) -> None:
    command = _command_of(argv)
    assert command == next(a for a in argv if not a.startswith("-"))
    assert build_parser(command).parse_args(argv) == build_parser().parse_args(argv)


def _help(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[int | str | None, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), pytest.raises(SystemExit) as stop:
        parser.parse_args(argv)
    return stop.value.code, out.getvalue()


@pytest.mark.parametrize(
    "argv",
    [["--help"], *[[name, "--help"] for name in _SUBCOMMANDS], ["audit"], ["audit", "x", "--format", "nope"], ["nope"]],
)
def test_the_same_help_and_errors(argv: list[str]) -> None:
    assert _help(build_parser(_command_of(argv)), argv) == _help(build_parser(), argv)


def test_only_the_command_asked_for_is_declared() -> None:
    def commands(parser: argparse.ArgumentParser) -> dict[str, int]:
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return {name: len(sub._actions) for name, sub in subparsers.choices.items()}

    every = commands(build_parser())
    assert list(every) == list(_SUBCOMMANDS)
    for name in _SUBCOMMANDS:
        assert commands(build_parser(name)) == {name: every[name]}


@pytest.mark.parametrize(("argv", "command"), [([], None), (["--", "audit"], None), (["-v", "nope", "audit"], None)])
def test_no_known_command(argv: list[str], command: str | None) -> None:
    assert _command_of(argv) == command


def test_main_parses_with_the_lean_parser() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["rules", "--format", "json"], stdout=out, stderr=err) == 0
    assert out.getvalue().lstrip().startswith(("[", "{"))


@pytest.mark.parametrize("columns", [None, "100", "37", "0", "-5", "wide"])
def test_the_help_is_as_wide_as_argparse_makes_it(monkeypatch: pytest.MonkeyPatch, columns: str | None) -> None:
    import shutil

    from azvhdaudit.cli import _HelpFormatter, _terminal_columns

    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    assert _terminal_columns() == shutil.get_terminal_size().columns
    ours = _HelpFormatter("azvhdaudit")
    theirs = argparse.RawDescriptionHelpFormatter("azvhdaudit")
    assert (ours._width, ours._max_help_position) == (theirs._width, theirs._max_help_position)
