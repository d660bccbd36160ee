"""The ``azvhdaudit`` command line: info, reg, audit, rules, fix and diff.

References: "Prepare a Windows VHD or VHDX to upload to Azure" (the rules); ``reg query`` output
format (name, REG_TYPE, data, four-space columns); https://no-color.org (``NO_COLOR``).

Exit codes: 0 compliant (or the command did what was asked), 1 rules failed (``audit``; ``reg`` when the
key or value does not exist), 2 usage error or an image that could not be read. Errors are one line;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import IO, Any

from azvhdaudit.errors import (
    AuditError,
    EncryptedVolumeError,
    HiveNotFoundError,
    ImageError,
    ImageNotFoundError,
    NoWindowsVolumeError,
    ParentError,
    ProfileError,
    RegistryError,
    UnsupportedFormatError,
    VolumeError,
    WaiverError,
)
from azvhdaudit.render import FORMATS as _REPORT_FORMATS
from azvhdaudit.render.rules import FORMATS as RULES_FORMATS
from azvhdaudit.report import Report

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_ERROR"]

log = logging.getLogger("azvhdaudit.cli")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2

# The owners of the next four lists are azvhdaudit.rules.base (PROFILES, SECURITY_TYPES, DISK_CONTROLLERS) and
# azvhdaudit.registry.open (BACKENDS). Importing either loads the rule modules or the hive readers, so the
# lists are spelled out here, where parsing arguments (and loading the pytest plugin) must stay light;
# tests/interfaces/test_cli.py proves they agree with their owners.
PROFILES: tuple[str, ...] = ("azure", "azure-2022", "azure-2017", "azure-marketplace")
_PROFILE_HELP = (
    "azure (the 2022-08 document plus the platform rules; default), azure-2022, azure-2017 or "
    "azure-marketplace (azure plus the Marketplace certification's own checks)"
)
BACKENDS: tuple[str, ...] = ("regf", "python-registry")
SECURITY_TYPES: tuple[str, ...] = ("Standard", "TrustedLaunch", "ConfidentialVM")
DISK_CONTROLLERS: tuple[str, ...] = ("SCSI", "NVMe")
#: the report formats (owned by azvhdaudit.render, light to import) and the fleet's own
AUDIT_FORMATS: tuple[str, ...] = (*_REPORT_FORMATS, "csv", "fleet-json")
#: formats that show several images as one fleet (html only with more than one image)
FLEET_FORMATS = ("html", "csv", "fleet-json")

_EPILOG = """\
exit codes:
  0  compliant (no rule failed), or the command did what was asked
  1  at least one rule failed (with --fail-on warning: or warned);
     with --baseline: something got worse than the baseline;
     for 'diff': something regressed; for 'reg': the key or value does not exist
  2  usage error, or an image that could not be read

Nothing is ever written to an image: every file is opened read-only.
Colour is used only on a terminal, never when NO_COLOR is set or the output is
piped, unless FORCE_COLOR is set. With -o FILE (or several images) the last line
on stderr is the verdict, the counts and where the report went.
"""

#: what to do, per error class (most specific first)
_HINTS: tuple[tuple[type[BaseException], str], ...] = (
    (UnsupportedFormatError, "give a VHD, VHDX, VMDK, QCOW2 or raw disk image"),
    (ParentError, "put the parent disk beside the child (or at the path its locator names) and retry"),
    (EncryptedVolumeError, "decrypt the volume inside the VM (manage-bde -off C:) and export the disk again"),
    (NoWindowsVolumeError, "audit a data disk with --data-disk beside its OS disk"),
    (VolumeError, "check the disk's partition table (e.g. with sfdisk -l or sgdisk -p on a copy)"),
    (HiveNotFoundError, "the image's Windows installation looks incomplete; is this the right disk?"),
    (RegistryError, "try --backend python-registry, or check the hive with hivexsh on a copy"),
    (ImageNotFoundError, "check the path"),
    (ImageError, "check that the file is a complete disk image (e.g. qemu-img check FILE)"),
    (WaiverError, "fix the waiver file: [[waiver]] tables with rule, reason, optional expires; README, Waivers"),
    (ProfileError, "see 'azvhdaudit rules' for rule ids and areas"),
    (FileNotFoundError, "check the path"),
    (PermissionError, "check the file's permissions (read access is all that is needed)"),
    (IsADirectoryError, "give a disk image file, not a directory"),
)


# --- parser -----------------------------------------------------------------------------------------


def _terminal_columns() -> int:
    """The width :func:`shutil.get_terminal_size` gives (``COLUMNS``, else the terminal on stdout, else 80)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):  # no stdout, closed, detached or not a terminal
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, as wide as argparse makes it (the terminal's columns less 2) without the import of
    shutil that argparse does for it: shutil loads the bz2 and lzma modules, and every argument declared makes a
    formatter."""

    def __init__(
        self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None
    ) -> None:
        super().__init__(prog, indent_increment, max_help_position, _terminal_columns() - 2 if width is None else width)


def _common(suppress: bool) -> argparse.ArgumentParser:
    """-v/--debug, accepted before and after the sub-command (the sub-command's copy suppresses its
    defaults so it does not reset what was given before it)."""
    parent = argparse.ArgumentParser(add_help=False, formatter_class=_HelpFormatter)
    parent.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="log progress to stderr (-vv for debug detail)",
    )
    parent.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show the traceback of an error",
    )
    return parent


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation tools). With ``command``, only that sub-command is declared:
    what :func:`main` parses when the arguments name it (argparse's help and errors for it are the same; the
    top-level help and an unknown command get the whole parser). Each parser argparse builds costs a few
    gettext look-ups on disk, several milliseconds for all of them."""
    from azvhdaudit import __version__

    sub_common = _common(suppress=True)
    parser = argparse.ArgumentParser(
        prog="azvhdaudit",
        description="Audit a Windows VM disk image (VHD, VHDX, VMDK, QCOW2, raw) offline and read-only "
        "against Microsoft's 'Prepare a Windows VHD or VHDX to upload to Azure'.",
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
        parents=[_common(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"azvhdaudit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=_EPILOG,
            formatter_class=_HelpFormatter,
            parents=[sub_common],
        )

    for name, (help_text, declare) in _SUBCOMMANDS.items():
        if command is None or command == name:
            declare(add(name, help_text))
    return parser


def _command_of(argv: Sequence[str]) -> str | None:
    """The sub-command ``argv`` names (its first word that is not an option: the top-level options take no
    value), or ``None`` when it names none that exists (the full parser then reports it)."""
    for arg in argv:
        if arg == "--":
            return None
        if not arg.startswith("-"):
            return arg if arg in _SUBCOMMANDS else None
    return None


def _add_info_parser(info: argparse.ArgumentParser) -> None:
    info.add_argument("image", metavar="IMAGE")
    info.add_argument(
        "--data-disk",
        metavar="PATH",
        action="append",
        default=[],
        help="a data disk of the VM: shown too, with the drive letters IMAGE's Windows gives it (repeatable)",
    )
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--backend", choices=BACKENDS, default="regf", help="registry reader (default: regf)")


def _add_reg_parser(reg: argparse.ArgumentParser) -> None:
    reg.add_argument("image", metavar="IMAGE")
    reg.add_argument("key", metavar="KEY", help=r"e.g. HKLM\SYSTEM\CurrentControlSet\Control\TimeZoneInformation")
    reg.add_argument("value", metavar="VALUE", nargs="?", help="one value name ('' for the default value)")
    reg.add_argument("--json", action="store_true", help="print JSON (bytes as hex)")
    reg.add_argument("--backend", choices=BACKENDS, default="regf", help="registry reader (default: regf)")


def _add_audit_parser(audit: argparse.ArgumentParser) -> None:
    audit.add_argument("images", metavar="IMAGE", nargs="+")
    audit.add_argument("--profile", choices=PROFILES, default="azure", help=_PROFILE_HELP)
    audit.add_argument(
        "--select",
        metavar="PATTERN",
        action="append",
        default=[],
        help="only rules whose id or area matches this glob (repeatable)",
    )
    audit.add_argument(
        "--ignore", metavar="PATTERN", action="append", default=[], help="skip matching rules (repeatable)"
    )
    audit.add_argument("--waivers", metavar="FILE", help="TOML or JSON waiver file")
    audit.add_argument("--image-type", choices=("generalized", "specialized"), help="what the image should be")
    audit.add_argument(
        "--data-disk",
        metavar="PATH",
        action="append",
        default=[],
        help="a data disk of the VM, audited with the data-disk rules (one IMAGE only; repeatable)",
    )
    audit.add_argument(
        "--role",
        choices=("os", "data"),
        help="what IMAGE is: os (the default; a disk without Windows is reported as such) or data "
        "(a data disk audited alone: the disk rules, guest rules not applicable)",
    )
    audit.add_argument("--format", choices=AUDIT_FORMATS, default="text", help="report format (default: text)")
    audit.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    audit.add_argument(
        "--fail-on",
        choices=("fail", "warning"),
        default="fail",
        help="exit 1 on failed rules (default) or also on warnings",
    )
    audit.add_argument("--backend", choices=BACKENDS, default="regf", help="registry reader (default: regf)")
    audit.add_argument(
        "--with-lsa",
        action="store_true",
        help="also read the SECURITY and SAM hives (logon rights, built-in administrator); off by default",
    )
    audit.add_argument("--show-passed", action="store_true", help="text format: list passed rules too")
    _add_target_flags(audit)
    audit.add_argument(
        "--baseline",
        metavar="FILE",
        help="judge against a recorded JSON report: only what got worse fails the run; "
        "failures accepted by the baseline stay in the report",
    )
    audit.add_argument(
        "--update-baseline",
        action="store_true",
        help="record this audit as the --baseline FILE (exit 0 unless an image could not be read)",
    )


def _add_rules_parser(rules: argparse.ArgumentParser) -> None:
    rules.add_argument("--profile", choices=PROFILES, help="only the rules of this profile")
    rules.add_argument("--format", choices=RULES_FORMATS, default="text", help="output format (default: text)")


def _add_fix_parser(fix: argparse.ArgumentParser) -> None:
    fix.add_argument("image", metavar="IMAGE")
    fix.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    fix.add_argument("--format", choices=("ps1", "reg"), default="ps1", help="PowerShell (default) or .reg")
    fix.add_argument("--profile", choices=PROFILES, default="azure", help=_PROFILE_HELP)
    fix.add_argument("--select", metavar="PATTERN", action="append", default=[], help="as for audit")
    fix.add_argument("--ignore", metavar="PATTERN", action="append", default=[], help="as for audit")
    fix.add_argument("--waivers", metavar="FILE", help="waived rules get no fix")
    fix.add_argument("--image-type", choices=("generalized", "specialized"))
    fix.add_argument("--include-warnings", action="store_true", help="also fix recommended settings not met")
    fix.add_argument("--backend", choices=BACKENDS, default="regf", help="registry reader (default: regf)")
    _add_target_flags(fix)


def _add_capabilities_parser(caps: argparse.ArgumentParser) -> None:
    caps.add_argument("image", metavar="IMAGE")
    caps.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    caps.add_argument(
        "--format",
        choices=("text", "json", "markdown", "az", "bicep"),
        default="text",
        help="output format (default: text)",
    )
    caps.add_argument("--profile", choices=PROFILES, default="azure", help=_PROFILE_HELP)
    caps.add_argument("--backend", choices=BACKENDS, default="regf", help="registry reader (default: regf)")
    _add_target_flags(caps)


def _cmd_capabilities(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from azvhdaudit.render import capabilities as render_caps

    report = _run_audit(args.image, profile=args.profile, backend=args.backend, **_target_kwargs(args))
    caps = report.capabilities
    if args.format == "json":
        text = json.dumps({"source": report.source, "profile": report.profile, **caps.to_dict()}, indent=2) + "\n"
    elif args.format == "markdown":
        text = render_caps.render_markdown(caps)
    elif args.format == "az":
        text = render_caps.render_az(caps, report.facts)
    elif args.format == "bicep":
        text = render_caps.render_bicep(caps)
    else:
        text = render_caps.render_text(caps)
    _write(text, args.output, stdout)
    return EXIT_OK


def _add_target_flags(command: argparse.ArgumentParser) -> None:
    """The deployment target and the signature check mode, for audit and fix."""
    command.add_argument(
        "--security-type",
        choices=SECURITY_TYPES,
        help="the VM's security type: Secure Boot rules are required under TrustedLaunch and ConfidentialVM "
        "(default: Azure's, TrustedLaunch for Generation 2, Standard for Generation 1)",
    )
    command.add_argument(
        "--disk-controller",
        choices=DISK_CONTROLLERS,
        help="the VM's disk controller: NVMe makes the NVMe rules required (default: SCSI, NVMe readiness "
        "reported as warnings)",
    )
    command.add_argument(
        "--verify-signatures",
        action="store_true",
        help="complete signature check: file digests and catalogs (slower; default: the certificate-table path)",
    )


def _target_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The audit keywords of the target flags that were given."""
    kwargs: dict[str, Any] = {}
    if args.security_type or args.disk_controller:
        kwargs["target"] = {"security_type": args.security_type, "disk_controller": args.disk_controller}
    if args.verify_signatures:
        kwargs["verify_signatures"] = True
    return kwargs


def _add_diff_parser(diff: argparse.ArgumentParser) -> None:
    diff.add_argument(
        "old", metavar="OLD", help="the earlier image, or its JSON report (azvhdaudit audit --format json)"
    )
    diff.add_argument("new", metavar="NEW", help="the later image, or its JSON report")
    diff.add_argument(
        "--format", choices=("text", "json", "markdown", "html"), default="text", help="output format (default: text)"
    )
    diff.add_argument("-o", "--output", metavar="FILE", help="write the diff to FILE instead of stdout")
    diff.add_argument(
        "--fail-on",
        choices=("fail", "warning"),
        default="fail",
        help="exit 1 on new failures and newly not checked rules (default), or on new warnings too",
    )
    diff.add_argument("--profile", choices=PROFILES, default="azure", help="baseline for images (default: azure)")
    diff.add_argument("--select", metavar="PATTERN", action="append", default=[], help="as for audit")
    diff.add_argument("--ignore", metavar="PATTERN", action="append", default=[], help="as for audit")
    diff.add_argument("--waivers", metavar="FILE", help="as for audit")
    diff.add_argument("--image-type", choices=("generalized", "specialized"))
    diff.add_argument("--backend", choices=BACKENDS, default="regf", help="registry reader (default: regf)")
    diff.add_argument("--with-lsa", action="store_true", help="as for audit")


# --- helpers ----------------------------------------------------------------------------------------


def _isatty(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _use_color(stream: IO[str]) -> bool:
    """Colour on a terminal; ``NO_COLOR`` (non-empty) turns it off, ``FORCE_COLOR`` (non-empty, not ``0``) on
    even when piped (CI logs that show ANSI colours); ``TERM=dumb`` has none."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR", "") not in ("", "0"):
        return True
    if os.environ.get("TERM") == "dumb":
        return False
    return _isatty(stream)


def _hint(err: BaseException) -> str:
    from azvhdaudit.hints import cause_hint

    fitting = cause_hint(err)  # what caused the error, where its class alone would mislead
    if fitting:
        return fitting
    for cls, hint in _HINTS:
        if isinstance(err, cls):
            return hint
    return ""


def _error_line(err: BaseException) -> str:
    from azvhdaudit.hints import unreachable_text

    message = unreachable_text(err, str(err) or type(err).__name__)
    if isinstance(err, OSError) and err.filename and str(err.filename) not in message:
        message = f"{err.filename}: {message}"
    elif isinstance(err, OSError) and err.strerror and err.filename:
        message = f"{err.filename}: {err.strerror}"
    message = " ".join(message.split())  # one line
    hint = _hint(err)
    return f"azvhdaudit: error: {message}" + (f" ({hint})" if hint else "")


def _write(text: str, output: str | None, stdout: IO[str], *, bom: bool = False) -> None:
    if output and output != "-":
        # newline="" keeps the renderer's own line ends (CRLF in .reg files); a byte-order mark where the reader
        # needs one to read UTF-8 (Windows PowerShell 5.1 reads a script without one in the ANSI code page)
        try:
            with open(output, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
                fh.write(text)
        except OSError as err:
            from azvhdaudit.hints import OutputError  # imports socket: only when there is an error to name

            raise OutputError(err.errno, f"cannot write the report: {err.strerror or err}", output) from err
        log.info("wrote %s", output)
    else:
        stdout.write(text)
        stdout.flush()


class _Progress:
    """Progress on stderr while images are audited, only when stderr is a terminal: one status line rewritten
    in place, or, on a terminal without cursor control (``TERM=dumb``), one plain line per image. With several
    images it says the rate and the time left, estimated from the images done so far."""

    def __init__(self, stream: IO[str], total: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.total = total
        self.enabled = _isatty(stream)
        self.cursor = self.enabled and os.environ.get("TERM") != "dumb"
        self.clock = clock
        self.began = clock()

    def pace(self, finished: int) -> str:
        """``2.5 images/s, about 12 s left`` from ``finished`` images so far ("" before the first)."""
        elapsed = self.clock() - self.began
        if self.total < 2 or finished < 1 or elapsed <= 0:
            return ""
        rate = finished / elapsed
        left = (self.total - finished) / rate
        return f", {rate:.1f} images/s, about {left:.0f} s left" if finished < self.total else f", {rate:.1f} images/s"

    def start(self, index: int, name: str) -> None:
        if self.cursor:
            self.stream.write(f"\r\033[K[{index}/{self.total}] auditing {name}{self.pace(index - 1)} …")
            self.stream.flush()

    def done(self, index: int, name: str, outcome: str, seconds: float) -> None:
        if self.enabled:
            erase = "\r\033[K" if self.cursor else ""
            self.stream.write(f"{erase}[{index}/{self.total}] {name}: {outcome} ({seconds:.1f} s{self.pace(index)})\n")
            self.stream.flush()


def _run_summary(
    reports: Sequence[Report], unreadable: Sequence[str], fail_on: str, fmt: str, output: str | None
) -> str:
    """One line for a CI log: the verdict, the counts, and where the report went.

    ``ERROR`` when an image could not be read (exit code 2), else the verdict the exit code gives.
    """
    from azvhdaudit.render._common import STATUS_ORDER, count_label
    from azvhdaudit.render._lead import headline

    failing = [r for r in reports if r.exit_code(fail_on)]
    word = "ERROR" if unreadable else "NOT COMPLIANT" if failing else "COMPLIANT"
    if len(reports) == 1 and not unreadable:
        what = f"{reports[0].source}: {headline(reports[0])}"
    else:
        total = len(reports) + len(unreadable)
        parts = [f"{len(reports) - len(failing)} compliant", f"{len(failing)} not compliant"]
        if unreadable:
            parts.append(f"{len(unreadable)} could not be read ({', '.join(unreadable)})")
        what = f"{total} image{'s' if total != 1 else ''}: " + ", ".join(parts)
        counts: dict[str, int] = {}
        for report in reports:
            for key, value in report.summary.items():
                counts[key] = counts.get(key, 0) + value
        if reports:
            what += "; rules: " + ", ".join(
                count_label(st, counts[st.value]) for st in STATUS_ORDER if counts.get(st.value)
            )
    line = f"azvhdaudit: {word}: {what}"
    if output and output != "-" and reports:
        line += f"; {fmt} report written to {output}"
    return line


def _run_audit(source: str, **kwargs: Any) -> Report:
    """The engine's audit, with the image's identity recorded for the fleet view (a seam for tests)."""
    from azvhdaudit.identity import audit_with_identity

    return audit_with_identity(source, **kwargs)


def _open_image(source: str, backend: str, *, require_windows: bool = True) -> Any:
    """The data path's open_image (a seam for tests)."""
    from azvhdaudit.image import open_image

    return open_image(source, backend=backend, require_windows=require_windows)


# --- commands ---------------------------------------------------------------------------------------


def _cmd_audit(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from azvhdaudit.render import render

    if args.data_disk and len(args.images) > 1:
        raise ProfileError("--data-disk needs exactly one IMAGE (the OS disk the data disks belong to)")
    if args.data_disk and args.role == "data":
        raise ProfileError("--data-disk belongs beside an OS disk: drop --role data")
    role = {"role": args.role} if args.role else {}
    baseline = _load_baseline(args)
    progress = _Progress(stderr, len(args.images))
    reports: list[Report] = []
    unreadable: list[str] = []
    fleet_items: list[Report] = []  # every image in order, an unreadable one as its error report
    for index, image in enumerate(args.images, 1):
        name = os.path.basename(image)
        progress.start(index, name)
        started = time.perf_counter()
        try:
            report = _run_audit(
                image,
                profile=args.profile,
                select=args.select or None,
                ignore=args.ignore or None,
                waivers=args.waivers,
                image_type=args.image_type,
                backend=args.backend,
                with_lsa=args.with_lsa,
                data_disks=args.data_disk or None,
                **role,
                **_target_kwargs(args),
            )
        except (AuditError, OSError) as err:
            if isinstance(err, (ProfileError, WaiverError)):
                raise  # the same for every image: stop now
            progress.done(index, name, "could not be read", time.perf_counter() - started)
            if args.debug:
                traceback.print_exc(file=stderr)
            stderr.write(_error_line(err) + "\n")
            unreadable.append(image)
            from azvhdaudit.fleet import error_report

            fleet_items.append(error_report(image, err, args.profile))
            continue
        reports.append(report)
        fleet_items.append(report)
        log.info("audited %s: %d rules in %.1f s", image, len(report.results), time.perf_counter() - started)
        failed = len(report.filter(status=("fail", "error")))
        progress.done(index, name, f"{failed} failed" if failed else "compliant", time.perf_counter() - started)
    to_file = bool(args.output) and args.output != "-"
    several = len(args.images) > 1
    summary = _run_summary(reports, unreadable, args.fail_on, args.format, args.output)
    judged = _apply_baseline(args, baseline, reports)
    if reports:
        options: dict[str, Any] = {}
        if args.format == "text":
            options = {
                "color": not to_file and _use_color(stdout),
                "fail_on": args.fail_on,
                "show_passed": args.show_passed,
            }
        elif args.format in ("html", "markdown"):
            options = {"fail_on": args.fail_on}
        if args.format in FLEET_FORMATS and (several or args.format != "html"):
            text = _fleet_output(args, fleet_items, stderr)
        elif args.format == "text" and several:
            # each image's block, then the run's one summary line (which counts the unreadable images too)
            text = "\n".join(render(report, "text", **options) for report in reports) + "\n" + summary + "\n"
        else:
            text = render(reports if several else reports[0], args.format, **options)
        if judged is not None and args.format == "text":
            text += "\n" + judged[1]
        elif judged is not None:
            stderr.write(judged[1])
        _write(text, args.output, stdout)
    if to_file or (several and not (args.format == "text" and reports)):
        # the report went to a file (or is JSON, SARIF ... on stdout): the log still gets the verdict
        stderr.write(summary + "\n")
    if unreadable:
        return EXIT_ERROR
    if judged is not None:
        return judged[0]
    return max((r.exit_code(args.fail_on) for r in reports), default=EXIT_OK)


def _fleet_output(args: argparse.Namespace, items: list[Report], stderr: IO[str]) -> str:
    """The fleet page, CSV or JSON of every image; its summary and warnings go to stderr."""
    from azvhdaudit.overview import fleet_report

    fleet = fleet_report(items)
    s = fleet.summary
    stderr.write(
        f"azvhdaudit: {s['images']} images: {s['compliant']} compliant, {s['failing']} failing, "
        f"{s['unreadable']} unreadable\n"
    )
    for warning in fleet.warnings:
        stderr.write(f"azvhdaudit: warning: {warning}\n")
    if args.format == "html":
        return fleet.to_html()
    return fleet.to_csv() if args.format == "csv" else fleet.to_json()


def _load_baseline(args: argparse.Namespace) -> Any:
    """The --baseline file, read before any image is audited (``None`` without it or when recording one)."""
    if args.update_baseline and not args.baseline:
        raise ProfileError("--update-baseline needs --baseline FILE (where to record it)")
    if not args.baseline or args.update_baseline:
        return None
    from azvhdaudit.baseline import load_baseline

    return load_baseline(args.baseline)


def _apply_baseline(args: argparse.Namespace, baseline: Any, reports: list[Report]) -> tuple[int, str] | None:
    """Record the baseline, or judge the reports by it: (exit code, summary), ``None`` without --baseline."""
    if not args.baseline:
        return None
    from azvhdaudit.baseline import record_baseline

    if args.update_baseline:
        if not reports:
            return EXIT_OK, f"baseline {args.baseline}: nothing recorded, no image could be read\n"
        record_baseline(reports, args.baseline)
        count = sum(len(r.failed) for r in reports)
        return EXIT_OK, (
            f"baseline {args.baseline}: recorded {len(reports)} report{'s' if len(reports) != 1 else ''}"
            f" with {count} failing rule{'s' if count != 1 else ''} accepted\n"
        )
    judgements = [baseline.judge(r, args.fail_on) for r in reports]
    for report, judgement in zip(reports, judgements, strict=True):
        report.options["baseline"] = judgement.to_dict()
    return max((j.exit_code() for j in judgements), default=EXIT_OK), "".join(j.summary() for j in judgements)


def _cmd_diff(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from azvhdaudit.diff import compare, is_json_file, load_report
    from azvhdaudit.render.diff import render_diff

    def side(path: str) -> Report:
        if "://" not in path and is_json_file(path):
            return load_report(path)
        return _run_audit(
            path,
            profile=args.profile,
            select=args.select or None,
            ignore=args.ignore or None,
            waivers=args.waivers,
            image_type=args.image_type,
            backend=args.backend,
            with_lsa=args.with_lsa,
        )

    result = compare(side(args.old), side(args.new))
    _write(render_diff(result, args.format, fail_on=args.fail_on), args.output, stdout)
    return result.exit_code(args.fail_on)


def _cmd_fix(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from azvhdaudit.fix import fix_script

    report = _run_audit(
        args.image,
        profile=args.profile,
        select=args.select or None,
        ignore=args.ignore or None,
        waivers=args.waivers,
        image_type=args.image_type,
        backend=args.backend,
        **_target_kwargs(args),
    )
    script = fix_script(report, args.format, include_warnings=args.include_warnings)
    _write(script, args.output, stdout, bom=args.format == "ps1")
    if args.output and args.output != "-":
        # the script went to a file: the log still says what it covers
        wanted = ("fail", "warning") if args.include_warnings else ("fail",)
        count = sum(1 for r in report.filter(status=wanted) if r.remediation)
        stderr.write(
            f"azvhdaudit: fix script for {count} rule{'s' if count != 1 else ''} of {report.source} "
            f"written to {args.output}\n"
        )
    return EXIT_OK


def _rule_rows(profile: str | None) -> list[dict[str, Any]]:
    from azvhdaudit.engine import catalogue, in_profile

    rows = []
    for r in catalogue():
        meta = r.meta
        if profile and not in_profile(r, profile):
            continue
        rows.append(
            {
                "id": meta.id,
                "title": meta.title,
                "area": meta.area,
                "severity": meta.severity.value,
                "baselines": list(meta.baselines),
                "source": meta.source,
                "disk_roles": list(meta.disk_roles),
                "remediation": meta.remediation,
                "rationale": meta.rationale,
                "references": list(meta.references),
            }
        )
    return rows


def _cmd_rules(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from azvhdaudit.render.rules import render_rules

    _write(render_rules(_rule_rows(args.profile), args.format, profile=args.profile), None, stdout)
    return EXIT_OK


# reg query --------------------------------------------------------------------------------------------


def _reg_data_text(value: Any) -> str:
    """Data as ``reg query`` prints it."""
    from azvhdaudit.registry.model import RegType

    data = value.data
    if value.type in (RegType.DWORD, RegType.DWORD_BIG_ENDIAN, RegType.QWORD) and isinstance(data, int):
        return f"0x{data:x}"
    if value.type == RegType.MULTI_SZ and isinstance(data, list):
        return "\\0".join(data)
    if isinstance(data, bytes):
        return data.hex().upper()
    if data is None:
        return ""
    return str(data)


def _reg_json_value(value: Any) -> dict[str, Any]:
    data = value.data
    return {
        "name": value.name,
        "type": value.type_name,
        "data": data.hex() if isinstance(data, bytes) else data,
        "raw": bytes(value.raw).hex(),
    }


def _cmd_reg(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    with _open_image(args.image, args.backend) as image:
        registry = image.registry
        resolved = registry.resolve(args.key)
        if resolved is None:
            hives = ", ".join(sorted(registry.hives)) or "none"
            raise ProfileError(
                f"{args.key}: not a key of a loaded hive (hives: {hives}; CurrentControlSet needs SYSTEM\\Select)"
            )
        hive_name = resolved[0]
        if not registry.has_hive(hive_name):
            stderr.write(f"azvhdaudit: error: {registry.why_unavailable(hive_name)}\n")
            return EXIT_FAILED
        display = registry.display_path(args.key).replace("HKLM\\", "HKEY_LOCAL_MACHINE\\", 1)
        key = registry.key(args.key)
        if key is None:
            stderr.write(f"azvhdaudit: error: {display}: the key does not exist in the image\n")
            return EXIT_FAILED
        values = key.values()
        if args.value is not None:
            one = key.value(args.value)
            if one is None:
                stderr.write(f"azvhdaudit: error: {display}: no value named {args.value!r}\n")
                return EXIT_FAILED
            values = [one]
        if args.json:
            data: dict[str, Any] = {"key": display, "values": [_reg_json_value(v) for v in values]}
            if args.value is None:
                data["subkeys"] = key.subkey_names()
            stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            return EXIT_OK
        lines = ["", display]
        for value in values:
            lines.append(f"    {value.name or '(Default)'}    {value.type_name}    {_reg_data_text(value)}")
        if args.value is None:
            subkeys = key.subkey_names()
            if subkeys:
                lines.append("")
                lines.extend(f"{display}\\{name}" for name in subkeys)
        stdout.write("\n".join(lines) + "\n\n")
    return EXIT_OK


# info -------------------------------------------------------------------------------------------------


def _bcd_summary(image: Any) -> dict[str, Any] | None:
    try:
        store = image.bcd
    except AuditError as err:
        return {"error": str(err)}
    error = getattr(image, "bcd_error", None)
    if store is None:
        return {"error": error} if error else None
    summary: dict[str, Any] = {"source": getattr(store, "source", None), "objects": len(store)}
    for label, obj in (("bootmgr", getattr(store, "bootmgr", None)),):
        summary[label] = obj.to_dict() if obj is not None else None
    try:
        loader = store.default_loader
        summary["default"] = loader.to_dict() if loader is not None else None
    except AuditError as err:
        summary["default"] = {"error": str(err)}
    if getattr(store, "warnings", None):
        summary["warnings"] = list(store.warnings)
    return summary


def _info_data(image: Any) -> dict[str, Any]:
    facts = image.facts.to_dict()
    states = {}
    for name, state in image.registry.states().items():
        states[name] = {"dirty": state.dirty, "replayed": state.replayed, "logs": list(state.logs), "note": state.note}
    return {
        "source": image.source,
        "facts": facts,
        "hive_states": states,
        "hives_unavailable": dict(image.registry.unavailable),
        "bcd": _bcd_summary(image),
    }


def _cmd_info(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    from azvhdaudit.osinfo import drive_letter_map
    from azvhdaudit.render.info import render_info

    # info describes any disk, a data disk without Windows too
    with _open_image(args.image, args.backend, require_windows=False) as image:
        data = _info_data(image)
        data["role"] = "os" if args.data_disk or image.facts.windows_partition is not None else None
        disks = [data]
        facts = {"os": image.facts}
        for number, path in enumerate(args.data_disk, 1):
            name = f"data{number}:{os.path.basename(path)}"
            with _open_image(path, args.backend, require_windows=False) as data_image:
                entry = _info_data(data_image)
                facts[name] = data_image.facts
            entry["role"], entry["name"] = "data", name
            disks.append(entry)
        letters = drive_letter_map(image.registry, facts) if image.registry.has_hive("SYSTEM") else None
    if letters is not None:
        for entry in disks:
            name = entry.get("name", "os")
            entry["drive_letters"] = sorted(k for k, v in letters.items() if v["disk"] == name)
    out: dict[str, Any] = data
    if args.data_disk:
        out = {"disks": disks, "drive_letter_map": letters}
    if args.json:
        stdout.write(json.dumps(out, indent=2, default=str, ensure_ascii=False) + "\n")
        return EXIT_OK
    stdout.write(render_info(disks, letters, with_data_disks=bool(args.data_disk)))
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, IO[str], IO[str]], int]] = {
    "audit": _cmd_audit,
    "fix": _cmd_fix,
    "rules": _cmd_rules,
    "reg": _cmd_reg,
    "info": _cmd_info,
    "diff": _cmd_diff,
    "capabilities": _cmd_capabilities,
}


def _setup_logging(verbose: int, stderr: IO[str]) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger("azvhdaudit")
    for handler in list(root.handlers):
        if getattr(handler, "_azvhdaudit_cli", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stderr)
    handler.setFormatter(logging.Formatter("azvhdaudit: %(levelname)s: %(message)s"))
    handler._azvhdaudit_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


#: each sub-command in the order the help lists them: (its help, what declares its arguments)
_SUBCOMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "info": ("show what the image holds: container, partitions, Windows, hives, boot store", _add_info_parser),
    "reg": ("query a registry key or value of the image, like 'reg query'", _add_reg_parser),
    "audit": ("audit one or more images against a profile", _add_audit_parser),
    "rules": ("list the rule catalogue", _add_rules_parser),
    "fix": ("write a remediation script for the failing rules (the image is not modified)", _add_fix_parser),
    "diff": ("what changed between two images or JSON reports; exit 1 when anything regressed", _add_diff_parser),
    "capabilities": (
        "what the image can run as in Azure, and the az/Bicep lines that register it",
        _add_capabilities_parser,
    ),
}


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run the command line and return its exit code; errors are reported on ``stderr``, not raised."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    for stream in (out, err):
        # a console that cannot show a character (an em dash on a legacy code page) gets "?", not a crash
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and stream in (sys.stdout, sys.stderr):
            reconfigure(errors="replace")
    # only the sub-command asked for is declared: the others' dozens of options are not needed to parse it
    parser = build_parser(_command_of(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_ERROR
    _setup_logging(args.verbose, err)
    try:
        return _COMMANDS[args.command](args, out, err)
    except KeyboardInterrupt:
        err.write("azvhdaudit: interrupted\n")
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except (AuditError, OSError) as exc:
        if args.debug:
            traceback.print_exc(file=err)
        err.write(_error_line(exc) + "\n")
        return EXIT_ERROR
    except Exception as exc:  # a bug: still one line, with the way to get more
        if args.debug:
            traceback.print_exc(file=err)
            err.write(f"azvhdaudit: internal error: {type(exc).__name__}: {exc}\n")
        else:
            err.write(
                f"azvhdaudit: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
                "(run again with --debug for the traceback, and report it)\n"
            )
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
