"""The audit engine: which rules run on an image, and what their outcomes mean.

References: the XCCDF idea of a small closed result set where the engine — not the rule — decides
"not selected", "not applicable", "not checked", "error" and "waived" (NIST IR 7275r4, 6.6.4.2);
profiles are the documents in :data:`azvhdaudit.rules.base.BASELINES`.

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
from typing import IO, Any

from azvhdaudit.errors import NotApplicable, ProfileError
from azvhdaudit.report import Outcome, Report, Result, Status
from azvhdaudit.rules.base import BASELINES, AuditContext, AuditOptions, Rule, all_rules
from azvhdaudit.rules.values import HiveUnavailable
from azvhdaudit.waivers import Waiver, WaiverInput, check_known, load_waivers, split_expired

__all__ = ["audit", "audit_context", "select_rules", "catalogue", "PROFILES"]

log = logging.getLogger(__name__)

#: the profiles an audit can be run against
PROFILES: tuple[str, ...] = tuple(BASELINES)

#: hives the rules read besides SYSTEM and SOFTWARE (user rights, the built-in account)
_EXTRA_HIVES = ("SECURITY", "SAM")


def catalogue() -> list[Rule]:
    """Every rule the package declares, in registration order."""
    import azvhdaudit.rules  # noqa: F401 - registers the rule modules

    return list(all_rules())


def _check_profile(profile: str) -> None:
    if profile not in BASELINES:
        raise ProfileError(f"unknown profile {profile!r}; valid profiles: {', '.join(BASELINES)}")


def _patterns(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    return [p.strip() for p in value if p and p.strip()]


def _matches(rule: Rule, pattern: str) -> bool:
    pat = pattern.lower()
    return fnmatch.fnmatchcase(rule.id.lower(), pat) or fnmatch.fnmatchcase(rule.meta.area.lower(), pat)


def select_rules(
    profile: str,
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    role: str = "os",
) -> list[Rule]:
    """The rules an audit runs: in the profile, for the disk role, selected and not ignored.

    ``select``/``ignore`` are glob patterns over the rule id or the area (case-insensitive). A pattern
    that matches no rule of the catalogue raises :class:`ProfileError` — a typo never silently selects
    nothing.
    """
    _check_profile(profile)
    every = catalogue()
    chosen, dropped = _patterns(select), _patterns(ignore)
    for kind, pats in (("select", chosen), ("ignore", dropped)):
        for pat in pats:
            if not any(_matches(r, pat) for r in every):
                areas = sorted({r.meta.area for r in every})
                raise ProfileError(f"{kind} pattern {pat!r} matches no rule id or area; areas: {', '.join(areas)}")
    rules = [r for r in every if profile in r.meta.baselines and role in r.meta.disk_roles]
    if chosen:
        rules = [r for r in rules if any(_matches(r, p) for p in chosen)]
    if dropped:
        rules = [r for r in rules if not any(_matches(r, p) for p in dropped)]
    return rules


def _run_one(rule: Rule, ctx: AuditContext) -> Outcome:
    try:
        return rule.check(ctx)
    except NotApplicable as signal:
        return Outcome(Status.NOT_APPLICABLE, signal.reason, reason=signal.reason)
    except HiveUnavailable as missing:
        return Outcome(Status.NOT_CHECKED, f"not checked: {missing.reason}", reason=missing.reason)
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
        remediation=meta.remediation,
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


def audit_context(
    ctx: AuditContext,
    profile: str | None = None,
    select: str | Iterable[str] | None = None,
    ignore: str | Iterable[str] | None = None,
    waivers: WaiverInput | Sequence[Waiver] | None = None,
    *,
    disk: str = "os",
    today: _dt.date | None = None,
) -> list[Result]:
    """Run the rules of ``profile`` on an already built context; the pure part of an audit.

    Expired waivers are ignored here (:func:`audit` lists them in the report). ``today`` fixes the
    date waivers are judged against (default: today, UTC).
    """
    profile = profile or ctx.profile
    _check_profile(profile)
    ctx.profile = profile
    role = ctx.options.role or "os"
    rules = select_rules(profile, select, ignore, role=role)
    active, _expired = split_expired(_resolve_waivers(waivers), today or _dt.datetime.now(_dt.timezone.utc).date())
    by_rule = {w.rule: w for w in active}
    results = []
    for rule in rules:
        started = time.perf_counter()
        outcome = _run_one(rule, ctx)
        result = _result(rule, outcome, disk, (time.perf_counter() - started) * 1000)
        waiver = by_rule.get(rule.id)
        if waiver is not None:
            result = _waive(result, waiver)
        results.append(result)
    return results


def _looks_opened(source: Any) -> bool:
    return hasattr(source, "registry") and hasattr(source, "facts")


def _source_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "source", None) or getattr(source, "name", None) or "<stream>")


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
) -> Report:
    """Audit one image (a path, a binary file object or an opened :class:`~azvhdaudit.image.Image`).

    ``profile`` is ``"azure"`` (the current doc) or ``"azure-2017"``; ``select``/``ignore`` are glob
    patterns over rule ids and areas; ``waivers`` a TOML/JSON file or a list of entries;
    ``image_type`` is ``"generalized"`` or ``"specialized"`` when known. ``data_disks`` are audited
    with the data-disk rules and reported per disk. Nothing is ever opened for writing.
    """
    import azvhdaudit

    started = time.perf_counter()
    _check_profile(profile)
    if image_type not in (None, "generalized", "specialized"):
        raise ProfileError(f"image_type must be 'generalized' or 'specialized', not {image_type!r}")
    if role not in (None, "os", "data"):
        raise ProfileError(f"role must be 'os' or 'data', not {role!r}")
    loaded = _resolve_waivers(waivers)
    today = _dt.datetime.now(_dt.timezone.utc).date()
    active, expired = split_expired(loaded, today)
    for waiver in expired:
        log.warning("waiver for %s expired on %s; the rule's result stands", waiver.rule, waiver.expires)
    options = AuditOptions(image_type=image_type, role=role)
    # Validate the patterns before opening anything: a typo should cost nothing.
    rules = select_rules(profile, select, ignore, role=role or "os")
    needs_lsa = any(r.id.startswith("rdp.user_right") or r.id == "rdp.builtin_admin_known" for r in rules)
    wanted_hives = ("SYSTEM", "SOFTWARE") + (_EXTRA_HIVES if needs_lsa else ())

    report = Report(source=_source_name(source), profile=profile, tool_version=azvhdaudit.__version__)
    report.options = {
        "select": _patterns(select),
        "ignore": _patterns(ignore),
        "image_type": image_type,
        "role": role,
        "backend": backend,
        "waivers": [w.to_dict() for w in active],
        "waivers_expired": [w.to_dict() for w in expired],
        "notes": [
            f"waiver for {w.rule} expired on {w.expires.isoformat() if w.expires else '?'}: not applied"
            for w in expired
        ],
    }

    def run(image: Any, disk: str, disk_options: AuditOptions) -> list[Result]:
        ctx = AuditContext(
            registry=image.registry,
            facts=image.facts,
            profile=profile,
            options=disk_options,
            files=getattr(image, "files", None),
            bcd=getattr(image, "bcd", None),
        )
        return audit_context(ctx, profile, select, ignore, active, disk=disk, today=today)

    if _looks_opened(source):
        opened = time.perf_counter()
        given: Any = source
        report.results = run(given, "os", options)
        report.facts = given.facts.to_dict()
        report.timings_ms["rules"] = (time.perf_counter() - opened) * 1000
    else:
        from azvhdaudit.image import open_image

        opened = time.perf_counter()
        with open_image(source, backend=backend, hives=wanted_hives, require_windows=role != "data") as image:  # type: ignore[arg-type]
            report.timings_ms["open"] = (time.perf_counter() - opened) * 1000
            for stage, ms in getattr(image, "timings_ms", {}).items():
                report.timings_ms[f"open.{stage}"] = ms
            ran = time.perf_counter()
            report.results = run(image, "os", options)
            report.timings_ms["rules"] = (time.perf_counter() - ran) * 1000
            report.facts = image.facts.to_dict()

    for number, data_disk in enumerate(data_disks or (), 1):
        from azvhdaudit.image import open_image

        name = f"data{number}:{os.path.basename(os.fspath(data_disk))}"
        ran = time.perf_counter()
        with open_image(data_disk, backend=backend, require_windows=False) as image:
            disk_options = AuditOptions(image_type=image_type, role="data")
            report.results.extend(run(image, name, disk_options))
            report.disks[name] = image.facts.to_dict()
        report.timings_ms[f"disk.{name}"] = (time.perf_counter() - ran) * 1000

    report.timings_ms["total"] = (time.perf_counter() - started) * 1000
    return report
