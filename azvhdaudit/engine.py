"""The audit engine: which rules run on an image, and what their outcomes mean.

References: the XCCDF idea of a small closed result set where the engine — not the rule — decides
"not selected", "not applicable", "not checked", "error" and "waived" (NIST IR 7275r4, 6.6.4.2);
profiles (:data:`azvhdaudit.rules.base.PROFILES`) run the rules of one or more baselines, the documents in
:data:`azvhdaudit.rules.base.BASELINES`.

The pure part is :func:`audit_context` (a registry view and facts in, results out); :func:`audit`
opens the image read-only, runs it and builds the :class:`~azvhdaudit.report.Report`.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import IO, Any

from azvhdaudit.errors import (
    BCDError,
    FileSystemError,
    NoPartitionTableError,
    NotApplicable,
    NotChecked,
    ProfileError,
    RegistryError,
)
from azvhdaudit.facts import ImageFacts
from azvhdaudit.prefetch import Kept, read_ahead
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.report import Outcome, Report, Result, Status
from azvhdaudit.rules.base import PROFILES as _PROFILE_BASELINES
from azvhdaudit.rules.base import AuditContext, AuditOptions, Rule, Target, all_rules, problem_status
from azvhdaudit.rules.vm import VM_ROLE, DiskInfo, VMContext
from azvhdaudit.waivers import Waiver, WaiverInput, check_known, load_waivers, split_expired

__all__ = [
    "audit",
    "audit_context",
    "audit_vm_context",
    "evaluate",
    "judged",
    "select_rules",
    "catalogue",
    "in_profile",
    "PROFILES",
    "ROLES",
    "DISK_AREAS",
]

log = logging.getLogger(__name__)

#: the profiles an audit can be run against (what each runs: :data:`azvhdaudit.rules.base.PROFILES`)
PROFILES: tuple[str, ...] = tuple(_PROFILE_BASELINES)

#: the roles a disk is audited in
ROLES: tuple[str, ...] = ("os", "data")

#: hives opened only with ``with_lsa`` and only for the rules that read them (user rights, the built-in account)
_EXTRA_HIVES = ("SECURITY", "SAM")


def catalogue() -> list[Rule]:
    """Every rule the package declares, in registration order."""
    import azvhdaudit.rules  # noqa: F401 - registers the rule modules

    return list(all_rules())


#: the areas of the rules that read only the container and the partitions (:attr:`RuleMeta.needs_guest` false):
#: they run on an OS disk without Windows too
DISK_AREAS: frozenset[str] = frozenset(r.meta.area for r in catalogue() if not r.meta.needs_guest)


def _check_profile(profile: str) -> None:
    if profile not in _PROFILE_BASELINES:
        raise ProfileError(f"unknown profile {profile!r}; valid profiles: {', '.join(_PROFILE_BASELINES)}")


def in_profile(rule: Rule, profile: str) -> bool:
    """Whether ``rule`` belongs to one of the baselines ``profile`` runs."""
    return any(b in rule.meta.baselines for b in _PROFILE_BASELINES[profile])


def _target(target: Target | dict[str, Any] | None) -> Target:
    try:
        return Target.of(target)
    except ValueError as err:
        raise ProfileError(str(err)) from err


def _patterns(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    return [p.strip() for p in value if p and p.strip()]


def _matches(rule: Rule, pattern: str) -> bool:
    pat = pattern.lower()
    return fnmatch.fnmatchcase(rule.id.lower(), pat) or fnmatch.fnmatchcase(rule.meta.area.lower(), pat)


def _in_profile(
    profile: str,
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
) -> list[Rule]:
    """The rules of ``profile``, selected and not ignored, for every disk role."""
    _check_profile(profile)
    every = catalogue()
    chosen, dropped = _patterns(select), _patterns(ignore)
    for kind, pats in (("select", chosen), ("ignore", dropped)):
        for pat in pats:
            if not any(_matches(r, pat) for r in every):
                areas = sorted({r.meta.area for r in every})
                raise ProfileError(f"{kind} pattern {pat!r} matches no rule id or area; areas: {', '.join(areas)}")
    rules = [r for r in every if in_profile(r, profile)]
    if chosen:
        rules = [r for r in rules if any(_matches(r, p) for p in chosen)]
    if dropped:
        rules = [r for r in rules if not any(_matches(r, p) for p in dropped)]
    return rules


def select_rules(
    profile: str,
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    role: str = "os",
) -> list[Rule]:
    """The rules an audit runs: in the profile, for the disk role, selected and not ignored.

    ``role`` is ``os``, ``data`` or ``vm`` (the checks across a VM's disks). ``select``/``ignore`` are glob
    patterns over the rule id or the area (case-insensitive). A pattern that matches no rule of the catalogue
    raises :class:`ProfileError` — a typo never silently selects nothing.
    """
    return [r for r in _in_profile(profile, select, ignore) if role in r.meta.disk_roles]


def _planned(profile: str, select: Any, ignore: Any, role: str) -> list[Rule]:
    """What an audit of a disk in ``role`` reports: on a data disk every per-disk rule of the profile (those
    for the OS disk only come out not applicable, so nothing is silently left out); else the role's rules."""
    if role == "data":
        return [r for r in _in_profile(profile, select, ignore) if VM_ROLE not in r.meta.disk_roles]
    return select_rules(profile, select, ignore, role=role)


def _decided(rule: Rule, role: str, disk: str, no_windows: str | None) -> Outcome | None:
    """The outcome the engine gives without running the rule, or ``None`` to run it."""
    if role not in rule.meta.disk_roles:
        why = (
            f"a check of the OS disk's Windows; {disk} is audited as a data disk, whose guest settings are "
            "those of the VM's OS disk"
            if rule.meta.needs_guest
            else f"a check of the OS disk; {disk} is audited as a data disk"
        )
        return Outcome(Status.NOT_APPLICABLE, why, reason=why)
    if no_windows and rule.meta.needs_guest:
        return Outcome(Status.NOT_CHECKED, f"not checked: {no_windows}", reason=no_windows)
    return None


def judged(rule: Rule, outcome: Outcome, ctx: AuditContext) -> Outcome:
    """The outcome with the status the rule's severity gives an unmet requirement (``Status.FAIL`` from the
    check): fail for a REQUIRED rule the target requires, else warning (:func:`~azvhdaudit.rules.base.problem_status`).
    Whether the target requires it is the outcome's ``required``, else the rule's ``required_for``."""
    if outcome.status is not Status.FAIL:
        return outcome
    required = outcome.required
    if required is None:
        required = rule.meta.required_for(ctx) if rule.meta.required_for is not None else True
    status = problem_status(rule.meta.severity, required)
    return outcome if status is Status.FAIL else replace(outcome, status=status)


def evaluate(rule: Rule, ctx: AuditContext, kept: Kept | None = None) -> Outcome:
    """Run one rule on a context and make its outcome: the signals a rule raises (:class:`NotApplicable`,
    :class:`NotChecked`) and evidence that cannot be read become not applicable / not checked, any other
    exception an error of the rule; an unmet requirement gets the status the rule's severity gives it
    (:func:`judged`, which sees every outcome). ``kept``: the rule's check as a remote image's read-ahead ran it
    (:class:`azvhdaudit.prefetch.Kept`), taken instead of running it again."""
    return judged(rule, _checked(rule, ctx, kept), ctx)


def _checked(rule: Rule, ctx: AuditContext, kept: Kept | None = None) -> Outcome:
    try:
        return rule.check(ctx) if kept is None else kept.replay()  # type: ignore[no-any-return]
    except NotApplicable as signal:
        return Outcome(Status.NOT_APPLICABLE, signal.reason, reason=signal.reason)
    except NotChecked as missing:
        return Outcome(
            Status.NOT_CHECKED,
            missing.message,
            missing.expected,
            missing.actual,
            missing.evidence,
            reason=missing.reason,
        )
    except BCDError as err:
        # an element of the BCD store that cannot be decoded: the boot settings are not known
        return Outcome(Status.NOT_CHECKED, f"not checked: malformed BCD data: {err}", reason=str(err))
    except (RegistryError, FileSystemError) as unreadable:
        # A corrupt hive cell, BCD element or file record met while the rule read it: the evidence could not
        # be read, which is "not checked", not a failure of the rule.
        log.debug("rule %s could not read its evidence", rule.id, exc_info=True)
        why = f"the evidence could not be read: {unreadable}"
        return Outcome(Status.NOT_CHECKED, f"not checked: {why}", reason=why)
    except Exception as err:
        log.debug("rule %s raised on %s", rule.id, getattr(ctx.facts, "source", "?"), exc_info=True)
        text = f"{type(err).__name__}: {err}"
        return Outcome(Status.ERROR, f"the rule failed on this image: {text}", reason=text)


def _result(rule: Rule, outcome: Outcome, disk: str, duration_ms: float) -> Result:
    meta = rule.meta
    return Result(
        rule_id=meta.id,
        title=meta.title,
        area=meta.area,
        severity=meta.severity,
        status=outcome.status,
        message=outcome.message,
        expected=outcome.expected,
        actual=outcome.actual,
        evidence=outcome.evidence,
        reason=outcome.reason,
        # a fix computed from the finding (the exact control set, value ...) replaces the rule's general one
        remediation=outcome.remediation or meta.remediation,
        rationale=meta.rationale,
        source=meta.source,
        baselines=meta.baselines,
        references=meta.references,
        disk=disk,
        duration_ms=duration_ms,
    )


def _waive(result: Result, waiver: Waiver) -> Result:
    until = f" until {waiver.expires.isoformat()}" if waiver.expires else ""
    return Result(
        **{
            **{f: getattr(result, f) for f in result.__dataclass_fields__},
            "status": Status.WAIVED,
            "waived_status": result.status,
            "reason": f"waived{until}: {waiver.reason}",
        }
    )


def _resolve_waivers(waivers: WaiverInput | Sequence[Waiver] | None) -> list[Waiver]:
    if waivers is None:
        return []
    loaded = load_waivers(waivers)
    check_known(loaded, (r.id for r in catalogue()))
    return loaded


def _run(
    ctx: AuditContext,
    rules: list[Rule],
    role: str,
    disk: str,
    waivers: Sequence[Waiver],
    no_windows: str | None,
) -> list[Result]:
    by_rule = {w.rule: w for w in waivers}
    results = []
    decisions = [(rule, _decided(rule, role, disk, no_windows)) for rule in rules]
    # a generator: on a local image read_ahead returns before asking for any rule (and keeps none)
    kept = read_ahead(ctx, (rule for rule, decided in decisions if decided is None))
    for rule, decided in decisions:
        started = time.perf_counter()
        outcome = decided if decided is not None else evaluate(rule, ctx, kept.get(rule.id))
        result = _result(rule, outcome, disk, (time.perf_counter() - started) * 1000)
        waiver = by_rule.get(rule.id)
        # a waiver sets aside a verdict; "not applicable to this disk's role" is none
        if waiver is not None and not (decided is not None and decided.status is Status.NOT_APPLICABLE):
            result = _waive(result, waiver)
        results.append(result)
    return results


def audit_context(
    ctx: AuditContext,
    profile: str | None = None,
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    waivers: WaiverInput | Sequence[Waiver] | None = None,
    *,
    disk: str = "os",
    today: _dt.date | None = None,
    no_windows: str | None = None,
) -> list[Result]:
    """Run the rules of ``profile`` on an already built context; the pure part of an audit.

    ``ctx.options.role`` says what the disk is: ``"os"`` (or ``None``) runs the OS-disk rules; ``"data"``
    runs the data-disk rules and reports every other rule as not applicable, with the reason.
    ``no_windows`` (why the disk has no readable Windows) makes every rule outside the disk-format area
    not checked, with that reason; the disk-format rules still run. Expired waivers are ignored here
    (:func:`audit` lists them in the report). ``today`` fixes the date waivers are judged against
    (default: today, UTC).
    """
    profile = profile or ctx.profile
    _check_profile(profile)
    ctx.profile = profile
    role = ctx.options.role or "os"
    if role not in ROLES:
        raise ProfileError(f"role must be 'os' or 'data', not {role!r}")
    rules = _planned(profile, select, ignore, role)
    active, _expired = split_expired(_resolve_waivers(waivers), today or _dt.datetime.now(_dt.timezone.utc).date())
    return _run(ctx, rules, role, disk, active, no_windows if role == "os" else None)


def audit_vm_context(
    ctx: VMContext,
    profile: str | None = None,
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    waivers: WaiverInput | Sequence[Waiver] | None = None,
    *,
    today: _dt.date | None = None,
) -> list[Result]:
    """Run the checks across a VM's disks (rules with the ``vm`` role) once; their results' disk is ``vm``.

    ``ctx`` is a :class:`~azvhdaudit.rules.vm.VMContext`: the OS disk's registry and facts, and every
    disk's facts.
    """
    profile = profile or ctx.profile
    _check_profile(profile)
    ctx.profile = profile
    rules = select_rules(profile, select, ignore, role=VM_ROLE)
    active, _expired = split_expired(_resolve_waivers(waivers), today or _dt.datetime.now(_dt.timezone.utc).date())
    return _run(ctx, rules, VM_ROLE, VM_ROLE, active, None)


def _looks_opened(source: Any) -> bool:
    return hasattr(source, "registry") and hasattr(source, "facts")


def _source_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "source", None) or getattr(source, "name", None) or "<stream>")


def _no_windows(image: Any) -> str | None:
    """Why the opened image has no readable Windows, or ``None`` when it has one (or was given as hives)."""
    if getattr(image, "windows_volume", True) is not None:
        return None
    why = image.registry.why_unavailable("SYSTEM") or "no Windows volume found"
    finder = next((r.id for r in catalogue() if r.meta.finds_guest), None)
    return f"no Windows on this disk (see {finder}): {why}" if finder else f"no Windows on this disk: {why}"


class _Unpartitioned:
    """A disk without a partition table (a new disk no one initialized): its container and nothing else.

    Such a disk is a legitimate data disk and a clear finding on an OS disk, so it is audited (the
    disk-format rules read its container facts) rather than raised.
    """

    def __init__(self, source: str, err: NoPartitionTableError, hives: Sequence[str]) -> None:
        from azvhdaudit.container import open_container

        self.container = open_container(source)
        self.source = source
        self.facts = ImageFacts(source=source, container=self.container.facts)
        why = f"the disk has no partition table ({err})"
        self.facts.extra["partition_table"] = why
        self.registry = RegistryView(
            hives={}, unavailable={h: f"the {h} hive cannot be read: {why}" for h in (*hives, "BCD")}
        )
        self.windows_volume = None
        self.files = None
        self.bcd = None
        self.timings_ms: dict[str, float] = {}

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> _Unpartitioned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_disk(source: Any, backend: str, hives: Sequence[str], storage_options: dict[str, Any] | None = None) -> Any:
    """Open a disk read-only for the audit; one without a partition table opens as :class:`_Unpartitioned`."""
    from azvhdaudit.image import open_image

    try:
        return open_image(
            source,
            backend=backend,
            hives=hives,
            require_windows=False,
            storage_options=storage_options,
            read_ahead=True,
        )
    except NoPartitionTableError as err:
        if not isinstance(source, (str, os.PathLike)) or "://" in os.fspath(source):
            raise
        log.info("%s", err)
        return _Unpartitioned(os.fspath(source), err, hives)


def _hives_for(rules: Iterable[Rule], with_lsa: bool) -> tuple[str, ...]:
    """SYSTEM and SOFTWARE (the OS facts read them), and with ``with_lsa`` the extra hives the rules declare."""
    declared = {h for r in rules for h in r.meta.hives} if with_lsa else set()
    return ("SYSTEM", "SOFTWARE") + tuple(h for h in _EXTRA_HIVES if h in declared)


def wanted_hives(
    profile: str = "azure",
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    role: str | None = None,
    with_lsa: bool = False,
) -> tuple[str, ...]:
    """The hives :func:`audit` opens for these options: SYSTEM and SOFTWARE, and SECURITY / SAM only when
    ``with_lsa`` is given and a selected rule reads them (:attr:`RuleMeta.hives`)."""
    return _hives_for(_planned(profile, select, ignore, role or "os"), with_lsa)


def _disk_entry(role: str, source: str, windows: bool) -> dict[str, Any]:
    return {"role": role, "source": source, "windows": windows, "drive_letters": None, "summary": {}}


def audit(
    source: str | os.PathLike[str] | IO[bytes] | Any,
    profile: str = "azure",
    *,
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    waivers: WaiverInput | Sequence[Waiver] | None = None,
    image_type: str | None = None,
    role: str | None = None,
    backend: str = "regf",
    data_disks: Iterable[str | os.PathLike[str]] | None = None,
    with_lsa: bool = False,
    storage_options: dict[str, Any] | None = None,
    target: Target | dict[str, Any] | None = None,
    verify_signatures: bool = False,
) -> Report:
    """Audit one image (a path, a binary file object or an opened :class:`~azvhdaudit.image.Image`), or a
    whole VM: its OS disk with ``data_disks``.

    ``profile`` is ``"azure"`` (what Azure needs today: the 2022-08 document plus the platform rules),
    ``"azure-2022"`` (the 2022-08 document alone) or ``"azure-2017"``; ``select``/``ignore`` are glob
    patterns over rule ids and areas; ``waivers`` a TOML/JSON file or a list of entries;
    ``image_type`` is ``"generalized"`` or ``"specialized"`` when known.

    ``target`` (a :class:`~azvhdaudit.rules.base.Target` or a dict with ``security_type`` and
    ``disk_controller``) says where the VM is to run: which platform rules are required (fail) and which are
    advice (warning). Unset fields take Azure's defaults: Trusted Launch for Generation 2, Standard for
    Generation 1; SCSI. ``Report.target`` holds it as given and resolved. ``verify_signatures=True`` runs the
    complete signature check (digests and catalogs) instead of the fast certificate-table path.

    ``role`` is what ``source`` is: ``"os"``, ``"data"`` or ``None`` (not said). A data disk gets the
    disk-format rules that apply to it and every other rule as not applicable, with the reason. An OS disk
    (or one whose role is not said) without a Windows volume is not an error: ``disk.windows_volume``
    fails and says so, every guest rule is not checked with the reason, and the disk-format rules run.

    The SECURITY and SAM hives (logon rights, the built-in administrator) are opened only with
    ``with_lsa=True``; without it the rules that read them are "not checked" and say so. A URL ``source`` is
    read in place; ``storage_options`` go to its file system (credentials, SAS token ...).

    ``data_disks`` (local paths) make one report for the VM: each data disk's results (``Result.disk``
    ``data1:<file name>``, ``data2:...``), and the checks across the disks (``vm.*``, disk ``vm``) —
    whether Windows knows each data disk (``SYSTEM\\MountedDevices``), drive letters, D: (the temporary
    disk), sizes. ``Report.disks`` holds each disk's role, source, drive letters and result counts (and a
    data disk's facts); the OS disk's entry ``os`` holds the VM's ``drive_letter_map``. Nothing is ever
    opened for writing.
    """
    import azvhdaudit

    started = time.perf_counter()
    _check_profile(profile)
    if image_type not in (None, "generalized", "specialized"):
        raise ProfileError(f"image_type must be 'generalized' or 'specialized', not {image_type!r}")
    if role not in (None, *ROLES):
        raise ProfileError(f"role must be 'os' or 'data', not {role!r}")
    extra_disks = [os.fspath(d) for d in (data_disks or ())]
    if role == "data" and extra_disks:
        raise ProfileError(
            "data_disks belong to an OS disk: give the OS disk as the image (role 'os' or not given), not a data disk"
        )
    loaded = _resolve_waivers(waivers)
    today = _dt.datetime.now(_dt.timezone.utc).date()
    active, expired = split_expired(loaded, today)
    for waiver in expired:
        log.warning("waiver for %s expired on %s; the rule's result stands", waiver.rule, waiver.expires)
    chosen_target = _target(target)
    options = AuditOptions(
        image_type=image_type, role=role, target=chosen_target, verify_signatures=bool(verify_signatures)
    )
    # Validate the patterns before opening anything: a typo should cost nothing.
    rules = _planned(profile, select, ignore, role or "os")
    wanted_hives = _hives_for(rules, with_lsa)

    report = Report(source=_source_name(source), profile=profile, tool_version=azvhdaudit.__version__)
    report.options = {
        "select": _patterns(select),
        "ignore": _patterns(ignore),
        "image_type": image_type,
        "role": role,
        "backend": backend,
        "with_lsa": with_lsa,
        "verify_signatures": bool(verify_signatures),
        "waivers": [w.to_dict() for w in active],
        "waivers_expired": [w.to_dict() for w in expired],
        "notes": [
            f"waiver for {w.rule} expired on {w.expires.isoformat() if w.expires else '?'}: not applied"
            for w in expired
        ],
    }
    if extra_disks:
        report.options["data_disks"] = list(extra_disks)
    main_name = f"data:{os.path.basename(report.source)}" if role == "data" else "os"

    def run(image: Any, disk: str, disk_options: AuditOptions, no_windows: str | None) -> list[Result]:
        from azvhdaudit.secureboot_facts import boot_volume_files  # pefile: loaded when an audit runs

        ctx = AuditContext(
            registry=image.registry,
            facts=image.facts,
            profile=profile,
            options=disk_options,
            files=getattr(image, "files", None),
            boot_files=boot_volume_files(image),
            bcd=getattr(image, "bcd", None),
        )
        return audit_context(ctx, profile, select, ignore, active, disk=disk, today=today, no_windows=no_windows)

    def audit_main(image: Any) -> None:
        no_windows = _no_windows(image)
        if no_windows:
            log.info("%s: %s", report.source, no_windows)
        ran = time.perf_counter()
        report.results = run(image, main_name, options, no_windows)
        report.timings_ms["rules"] = (time.perf_counter() - ran) * 1000
        report.facts = image.facts.to_dict()
        report.target = chosen_target.resolved(image.facts.generation)
        report.disks[main_name] = _disk_entry(role or "os", report.source, no_windows is None)
        if extra_disks:
            _audit_data_disks(image, report, extra_disks, run, backend, options, profile, select, ignore, active, today)
        elif role != "data" and image.registry.has_hive("SYSTEM"):
            _letters(report, image.registry, {main_name: image.facts})

    if _looks_opened(source):
        audit_main(source)
    else:
        opened = time.perf_counter()
        # Opened without requiring Windows: a disk without it is reported (disk.windows_volume), not raised.
        with _open_disk(source, backend, wanted_hives, storage_options) as image:
            report.timings_ms["open"] = (time.perf_counter() - opened) * 1000
            for stage, ms in getattr(image, "timings_ms", {}).items():
                report.timings_ms[f"open.{stage}"] = ms
            audit_main(image)

    for name, entry in report.disks.items():
        entry["summary"] = report.disk_summary(name)
    report.timings_ms["total"] = (time.perf_counter() - started) * 1000
    return report


def _letters(report: Report, registry: Any, disks: dict[str, Any]) -> None:
    """Record the drive letters the OS disk's Windows gives the audited disks (from MountedDevices)."""
    from azvhdaudit.osinfo import drive_letter_map

    try:
        letters = drive_letter_map(registry, disks)
    except (RegistryError, FileSystemError) as err:
        # one bad cell in MountedDevices: the letters stay unknown (None) and the vm.* rules not checked
        log.warning("%s: the drive letters cannot be read: %s", report.source, err)
        report.options.setdefault("notes", []).append(f"drive letters not read: {err}")
        return
    report.disks["os"]["drive_letter_map"] = letters
    for name, entry in report.disks.items():
        entry["drive_letters"] = sorted(letter for letter, where in letters.items() if where["disk"] == name)


def _audit_data_disks(
    os_image: Any,
    report: Report,
    paths: list[str],
    run: Any,
    backend: str,
    options: AuditOptions,
    profile: str,
    select: Any,
    ignore: Any,
    waivers: list[Waiver],
    today: _dt.date,
) -> None:
    """Audit each data disk, then the checks across the VM with the OS disk still open."""
    infos = [DiskInfo("os", "os", os_image.facts)]
    for number, path in enumerate(paths, 1):
        name = f"data{number}:{os.path.basename(path)}"
        ran = time.perf_counter()
        # A data disk's own hives are never read: its guest settings are the OS disk's.
        with _open_disk(path, backend, ()) as image:
            disk_options = AuditOptions(
                image_type=options.image_type,
                role="data",
                target=options.target,
                verify_signatures=options.verify_signatures,
            )
            report.results.extend(run(image, name, disk_options, None))
            entry = _disk_entry("data", path, image.windows_volume is not None)
            entry["facts"] = image.facts.to_dict()
            report.disks[name] = entry
            infos.append(DiskInfo(name, "data", image.facts))
        report.timings_ms[f"disk.{name}"] = (time.perf_counter() - ran) * 1000

    ran = time.perf_counter()
    ctx = VMContext(
        registry=os_image.registry,
        facts=os_image.facts,
        profile=profile,
        options=AuditOptions(
            image_type=options.image_type, role="os", target=options.target, verify_signatures=options.verify_signatures
        ),
        files=getattr(os_image, "files", None),
        disks=tuple(infos),
    )
    report.results.extend(audit_vm_context(ctx, profile, select, ignore, waivers, today=today))
    if os_image.registry.has_hive("SYSTEM"):
        _letters(report, os_image.registry, {d.name: d.facts for d in infos})
    report.timings_ms["vm"] = (time.perf_counter() - ran) * 1000
