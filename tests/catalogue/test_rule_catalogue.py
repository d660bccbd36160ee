"""Every registered rule, walked once: metadata complete, references that follow the baselines, the status an
unmet requirement gets, and a compliant, a problem and a not-checked case somewhere in the suite.

The cases are the suite's own: this directory's conftest records the status of every rule evaluation the session
makes (the area tests' overlays on tests/rules/guestkit.py, the image-rule contexts, the sample images), and this
module runs last. A rule added without one of the three cases is named here with what it lacks; so is a baseline
(``azure-marketplace`` ...) that :data:`~azvhdaudit.rules.base.BASELINE_DOCUMENTS` or the profiles do not know.
"""

from __future__ import annotations

import re

import pytest
from rules.guestkit import build_view, facts

from azvhdaudit.engine import catalogue, evaluate, judged
from azvhdaudit.facts import ContainerFacts, ImageFacts
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.report import Outcome, Severity, Status
from azvhdaudit.rules.base import (
    BASELINE_DOCUMENTS,
    BASELINES,
    PROFILES,
    AuditContext,
    AuditOptions,
    Rule,
    Target,
    derive_references,
)
from azvhdaudit.rules.manual import MANUAL_STEP_IDS

from .conftest import PARTIAL, SEEN

RULES = catalogue()
ROLES = {"os", "data", "vm"}
HIVES = {"SYSTEM", "SOFTWARE", "SECURITY", "SAM", "BCD"}
PROBLEMS = {Status.FAIL, Status.WARNING}
#: what a rule of the manual area is instead of pass / problem / not checked: a step for the running VM
MANUAL_AREA = "manual"
#: rules that cannot be "not checked": what they read is what opening the image read, or the image is not audited
_OPENED = "the container's own header and size, read to open the image at all"
NEVER_NOT_CHECKED: dict[str, str] = {
    "disk.container_format": _OPENED,
    "disk.not_differencing": _OPENED + " (a differencing disk opens only with its parent chain)",
    "disk.size_aligned_1mib": _OPENED,
    "disk.os_max_size": _OPENED,
    "disk.data_max_size": _OPENED,
    "disk.vhdx_logical_sector_512": "the VHDX metadata region, read to open a VHDX at all",
    "disk.first_partition_offset": "the partition table, read to find the volumes (a disk without one is judged "
    "as such)",
    "vm.disk_sizes": "each disk's container size, read to open the disk",
    "vm.disk_ids_unique": "each disk's MBR signature or GPT disk GUID, read to find its volumes",
    "marketplace.data_disk_count": "the number of data disks the audit was given",
}


def _ctx(target: Target) -> AuditContext:
    container = ContainerFacts(path="<catalogue>", format="vhd", subtype="fixed", virtual_size=0, file_size=0)
    return AuditContext(
        registry=RegistryView(hives={}),
        facts=ImageFacts(source="<catalogue>", container=container, generation=2),
        options=AuditOptions(target=target),
    )


#: the deployment targets every rule's mapping is asserted under: the least and the most demanding
TARGETS = (Target("Standard", "SCSI"), Target("TrustedLaunch", "NVMe"))


def test_ids_are_unique_and_well_formed() -> None:
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    bad = [i for i in ids if not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", i)]
    assert not bad, f"ids not of the form area.name: {bad}"


def test_every_baseline_has_its_documents_and_a_profile() -> None:
    used = {b for r in RULES for b in r.meta.baselines}
    unknown = sorted(used - set(BASELINES))
    assert not unknown, f"baselines used by rules but not in rules.base.BASELINES: {unknown}"
    no_docs = sorted(b for b in BASELINES if b not in BASELINE_DOCUMENTS)
    assert not no_docs, (
        f"baselines without an entry in rules.base.BASELINE_DOCUMENTS (the references every rule "
        f"of the baseline cites; () when each rule cites its own): {no_docs}"
    )
    profiled = {b for bs in PROFILES.values() for b in bs}
    assert not sorted(set(BASELINES) - profiled), "baselines no profile of rules.base.PROFILES runs"


def test_exactly_one_rule_finds_the_guest() -> None:
    assert [r.id for r in RULES if r.meta.finds_guest] == ["disk.windows_volume"]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_metadata_is_complete(rule: Rule) -> None:
    meta = rule.meta
    missing = [name for name in ("title", "area", "rationale", "source") if not getattr(meta, name)]
    if meta.severity is not Severity.INFORMATIONAL:
        missing += [] if meta.remediation else ["remediation"]
    assert not missing, f"{meta.id}: no {', '.join(missing)}"
    assert isinstance(meta.severity, Severity)
    assert meta.baselines, f"{meta.id}: in no baseline"
    assert set(meta.disk_roles) <= ROLES and meta.disk_roles, f"{meta.id}: disk roles {meta.disk_roles}"
    assert set(meta.hives) <= HIVES, f"{meta.id}: unknown hives {set(meta.hives) - HIVES}"
    if not meta.needs_guest:
        assert not set(meta.hives) & {"SECURITY", "SAM"}, f"{meta.id}: reads LSA hives without the guest"


@pytest.mark.parametrize("rule", [r for r in RULES if r.meta.needs_guest], ids=lambda r: r.id)
def test_a_rule_reads_no_hive_it_does_not_declare(rule: Rule) -> None:
    """On the compliant hives of tests/rules/guestkit.py, leaving out every hive the rule does not declare changes
    nothing (the engine opens SECURITY and SAM only for the rules that declare them)."""
    every = evaluate(rule, AuditContext(registry=build_view(), facts=facts()))
    others = tuple(h for h in ("SYSTEM", "SOFTWARE", "SECURITY", "SAM") if h not in rule.meta.hives)
    declared = evaluate(rule, AuditContext(registry=build_view(drop=others), facts=facts()))
    assert (declared.status, declared.message) == (every.status, every.message), (rule.id, rule.meta.hives)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_references_follow_the_baselines(rule: Rule) -> None:
    meta = rule.meta
    docs = derive_references(meta.baselines)
    assert meta.references, f"{meta.id}: no references"
    assert meta.references[: len(docs)] == docs, f"{meta.id}: cites {meta.references}, its baselines ask {docs}"
    if all(BASELINE_DOCUMENTS.get(b) for b in meta.baselines):
        # a rule of the documents' baselines cites no document of a baseline it is not in
        other = {d for b, ds in BASELINE_DOCUMENTS.items() if b not in meta.baselines for d in ds} - set(docs)
        assert not other & set(meta.references), f"{meta.id}: cites {other & set(meta.references)}"
    else:
        # a platform rule names each of its own Microsoft documents, dated, and links them
        assert re.search(r"20\d\d-\d\d-\d\d", meta.source), f"{meta.id}: undated source {meta.source!r}"
        assert all(r.startswith("https://") for r in meta.references), meta.references


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_severity_and_target_decide_an_unmet_requirement(rule: Rule) -> None:
    meta = rule.meta
    if "azure-platform" in meta.baselines and meta.severity is Severity.REQUIRED:
        assert meta.required_for is not None, f"{meta.id}: a required platform rule states which targets need it"
    for target in TARGETS:
        ctx = _ctx(target)
        required = meta.required_for(ctx) if meta.required_for is not None else True
        want = Status.FAIL if meta.severity is Severity.REQUIRED and required else Status.WARNING
        assert judged(rule, Outcome(Status.FAIL, "not met"), ctx).status is want, (meta.id, target)
        assert judged(rule, Outcome(Status.WARNING, "lesser"), ctx).status is Status.WARNING
        assert judged(rule, Outcome(Status.PASS, "met"), ctx).status is Status.PASS


def test_only_required_rules_failed_in_the_suite() -> None:
    """What the suite's evaluations gave: a fail only ever for a REQUIRED rule (severity decides status)."""
    failed_below = sorted(
        r.id for r in RULES if Status.FAIL in SEEN.get(r.id, ()) and r.meta.severity is not Severity.REQUIRED
    )
    assert not failed_below, f"rules below REQUIRED that failed: {failed_below}"


def _lacking(rule: Rule) -> list[str]:
    seen = SEEN.get(rule.id, set())
    if rule.meta.area == MANUAL_AREA or rule.id in MANUAL_STEP_IDS:
        return [] if Status.MANUAL in seen else ["no manual case (Status.MANUAL) in the suite"]
    lacking = []
    if Status.PASS not in seen:
        lacking.append("no compliant case (pass) in the suite")
    if not seen & PROBLEMS and rule.meta.severity is not Severity.INFORMATIONAL:
        lacking.append("no problem case (fail or warning) in the suite")
    if rule.id in NEVER_NOT_CHECKED:
        if Status.NOT_CHECKED in seen:
            lacking.append("exemption: it was seen not checked, so drop it from NEVER_NOT_CHECKED")
    elif Status.NOT_CHECKED not in seen:
        lacking.append("no not-checked case (evidence missing or unreadable) in the suite")
    return lacking


def test_the_exemptions_name_rules() -> None:
    assert set(NEVER_NOT_CHECKED) <= {r.id for r in RULES}
    assert {r.id for r in RULES if r.meta.area == MANUAL_AREA} <= MANUAL_STEP_IDS


def test_every_rule_has_a_pass_a_problem_and_a_not_checked_case() -> None:
    """Judged on the whole suite only: a run that leaves tests out cannot tell what the left-out tests cover."""
    if PARTIAL:
        pytest.skip("the case coverage is judged on the whole suite; this run: " + "; ".join(PARTIAL))
    lacking = {r.id: _lacking(r) for r in RULES}
    lacking = {rule_id: what for rule_id, what in lacking.items() if what}
    report = "\n".join(f"{rule_id}: {'; '.join(what)}" for rule_id, what in sorted(lacking.items()))
    assert not lacking, f"{len(lacking)} rule(s) lack cases (add them to the area's tests):\n{report}"
