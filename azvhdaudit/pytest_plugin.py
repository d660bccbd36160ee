"""pytest plugin: every rule on every image becomes a test.

References: pytest's "Writing plugins" and "Working with non-python tests" guides (collectors and items,
the ``pytest_make_collect_report`` collection hook, ``pytest_addoption``, ``config.stash``,
``pytest_generate_tests``); the result states of :class:`azvhdaudit.report.Status`.

Run ``pytest --azvhd-image gen2-sample.vhdx`` (or list the images under the ``azvhd_images`` ini option)
and one test per image and rule is added to the session, with ids like ``gen2-sample.vhdx::rdp.port``:

* pass -> passed; fail and error -> failed, printing expected vs actual, the evidence and the fix;
* warning -> passed with an :class:`AzvhdWarning` (failed with ``--azvhd-fail-on warning``);
* waived -> xfailed with the waiver's reason;
* not applicable, manual and **not checked** -> skipped with the reason. A skipped "not checked" rule is
  *not* a pass: its evidence could not be read (hive missing, volume encrypted).

``-k rdp``, ``-k "firewall and not warning"`` and ``-m azvhdaudit`` select among them (the area,
severity and status are keywords). For your own tests the fixtures ``azvhd_image`` (the opened image,
session-scoped), ``azvhd_registry`` (its registry view) and ``azvhd_report`` (the audit, session-scoped)
are parametrized over the images; override any of them in your ``conftest.py``.

The plugin imports nothing heavy until an image is given: pytest runs that do not use it do not pay for it.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# the command line's copies of the owners' lists, light to import (tests prove they agree)
from azvhdaudit.cli import BACKENDS, DISK_CONTROLLERS, PROFILES, SECURITY_TYPES

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

    from azvhdaudit.report import Report, Result

__all__ = ["AzvhdWarning", "RuleFailed", "AuditItem", "ImageCollector"]


class AzvhdWarning(UserWarning):
    """A recommended setting of the image is not met (a rule's ``warning`` status)."""


class RuleFailed(Exception):
    """A rule failed (or errored) on the image; carries the result for the failure report."""

    def __init__(self, result: Result) -> None:
        super().__init__(f"{result.rule_id}: {result.message or result.title}")
        self.result = result


class ImageUnreadable(Exception):
    """The image could not be opened or audited (the library's one-line message)."""


@dataclass
class _State:
    images: list[str]
    profile: str
    waivers: str | None
    image_type: str | None
    fail_on: str
    backend: str
    #: the deployment target (``security_type``, ``disk_controller``; ``None`` = Azure's default)
    target: dict[str, str | None] = field(default_factory=dict)
    verify_signatures: bool = False
    reports: dict[str, Report] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    #: node ids given as arguments (``os.vhd::rdp.port``, ``os.vhd``): only those generated tests run
    selected: list[str] | None = None
    #: the golden baseline file (``--azvhd-baseline`` / ``azvhd_baseline``): accepted failures are xfail
    baseline: str | None = None
    accepted: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def accepted_by_baseline(self, image: str, result: Result) -> bool:
        """True when the baseline records this failure (same rule and disk, failing at least as badly)."""
        if not self.baseline:
            return False
        if image not in self.accepted:
            from azvhdaudit.baseline import load_baseline
            from azvhdaudit.errors import AuditError

            try:
                judgement = load_baseline(self.baseline).judge(self.report(image), self.fail_on)
            except AuditError as err:
                pytest.fail(f"azvhdaudit baseline: {err}", pytrace=False)
            self.accepted[image] = {(r.rule_id, r.disk) for r in judgement.accepted}
        return (result.rule_id, result.disk) in self.accepted[image]

    def report(self, image: str) -> Report:
        """The audit of ``image``, run once per session and shared by the items and the fixtures."""
        if image in self.errors:
            raise ImageUnreadable(str(self.errors[image])) from self.errors[image]
        if image not in self.reports:
            try:
                self.reports[image] = _run_audit(
                    image,
                    profile=self.profile,
                    waivers=self.waivers,
                    image_type=self.image_type,
                    backend=self.backend,
                    target=self.target or None,
                    verify_signatures=self.verify_signatures,
                )
            except Exception as err:
                from azvhdaudit.errors import AuditError

                if not isinstance(err, (AuditError, OSError)):
                    raise
                self.errors[image] = err
                raise ImageUnreadable(str(err)) from err
        return self.reports[image]


_STATE_KEY = pytest.StashKey[_State]()


def _run_audit(image: str, **kwargs: Any) -> Report:
    """The engine's audit (imported on first use; a seam for tests)."""
    from azvhdaudit.engine import audit

    return audit(image, **kwargs)


# --- options ----------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("azvhdaudit", "azvhdaudit: audit Windows disk images as tests")
    group.addoption(
        "--azvhd-image",
        action="append",
        dest="azvhd_images",
        default=[],
        metavar="PATH",
        help="a disk image to audit: one test per rule (repeatable; adds to the azvhd_images ini option)",
    )
    group.addoption(
        "--azvhd-profile",
        dest="azvhd_profile",
        choices=PROFILES,
        default=None,
        help="profile to audit against (default: the azvhd_profile ini option, else azure)",
    )
    group.addoption("--azvhd-waivers", dest="azvhd_waivers", metavar="FILE", help="TOML or JSON waiver file")
    group.addoption(
        "--azvhd-image-type",
        dest="azvhd_image_type",
        choices=("generalized", "specialized"),
        default=None,
        help="what the images should be (generalized for a gallery image, specialized for a migrated VM)",
    )
    group.addoption(
        "--azvhd-fail-on",
        dest="azvhd_fail_on",
        choices=("fail", "warning"),
        default=None,
        help="fail the test of a rule that warns too (default: fail only on failures)",
    )
    group.addoption(
        "--azvhd-backend",
        dest="azvhd_backend",
        choices=BACKENDS,
        default=None,
        help="registry reader (default: regf)",
    )
    group.addoption(
        "--azvhd-security-type",
        dest="azvhd_security_type",
        choices=SECURITY_TYPES,
        default=None,
        help="the VM's security type (default: the azvhd_security_type ini option, else Azure's default: "
        "TrustedLaunch for Generation 2, Standard for Generation 1)",
    )
    group.addoption(
        "--azvhd-disk-controller",
        dest="azvhd_disk_controller",
        choices=DISK_CONTROLLERS,
        default=None,
        help="the VM's disk controller (default: the azvhd_disk_controller ini option, else SCSI)",
    )
    group.addoption(
        "--azvhd-verify-signatures",
        dest="azvhd_verify_signatures",
        action="store_true",
        default=None,
        help="complete signature check: file digests and catalogs (default: the certificate-table path)",
    )
    group.addoption(
        "--azvhd-baseline",
        dest="azvhd_baseline",
        metavar="FILE",
        default=None,
        help="golden baseline (a JSON report): failures it records are xfail, only what got worse fails",
    )
    parser.addini("azvhd_baseline", "golden baseline JSON report (relative to the rootdir)", default="")
    parser.addini(
        "azvhd_images", "disk images to audit, one per line (relative to the ini file)", type="paths", default=[]
    )
    parser.addini("azvhd_profile", "profile: azure, azure-2022, azure-2017 or azure-marketplace", default="azure")
    parser.addini("azvhd_waivers", "waiver file (relative to the rootdir)", default="")
    parser.addini("azvhd_image_type", "generalized or specialized", default="")
    parser.addini("azvhd_fail_on", "fail or warning", default="fail")
    parser.addini("azvhd_security_type", "Standard, TrustedLaunch or ConfidentialVM (default: Azure's)", default="")
    parser.addini("azvhd_disk_controller", "SCSI or NVMe (default: SCSI)", default="")
    parser.addini("azvhd_verify_signatures", "complete signature check (digests, catalogs)", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "azvhdaudit(rule, area, severity, status, image): a test azvhdaudit generated for one rule on one image",
    )
    images = [str(p) for p in config.getini("azvhd_images")] + list(config.getoption("azvhd_images") or [])
    waivers = config.getoption("azvhd_waivers") or config.getini("azvhd_waivers") or None
    if waivers and not os.path.isabs(waivers) and not config.getoption("azvhd_waivers"):
        waivers = str(config.rootpath / waivers)
    config.stash[_STATE_KEY] = _State(
        images=list(dict.fromkeys(images)),
        profile=config.getoption("azvhd_profile") or config.getini("azvhd_profile") or "azure",
        waivers=waivers,
        image_type=config.getoption("azvhd_image_type") or config.getini("azvhd_image_type") or None,
        fail_on=config.getoption("azvhd_fail_on") or config.getini("azvhd_fail_on") or "fail",
        backend=config.getoption("azvhd_backend") or "regf",
        target=_target_option(config),
        verify_signatures=bool(config.getoption("azvhd_verify_signatures") or config.getini("azvhd_verify_signatures")),
        baseline=_baseline_path(config),
    )
    config.stash[_STATE_KEY].selected = _take_node_ids(config, config.stash[_STATE_KEY])


def _take_node_ids(config: pytest.Config, state: _State) -> list[str] | None:
    """Take the arguments that name generated tests out of pytest's file arguments.

    The ids printed for the generated tests (``os.vhd::rdp.port``) name an image, not a file pytest could
    collect, so pytest would answer "file or directory not found". An argument whose part before ``::`` is an
    image's test id or its path (as given, or the same file) selects among the generated tests instead.
    """
    if not state.images:
        return None
    known: dict[str, str] = {}
    for image_id, image in zip(_ids(state.images), state.images, strict=True):
        known[image_id] = image_id
        known[image.replace(os.sep, "/")] = image_id
        known[os.path.abspath(image)] = image_id
    taken: list[str] = []
    kept: list[str] = []
    for arg in config.args:
        head, sep, rest = arg.partition("::")
        node_id: str | None = known.get(head.replace(os.sep, "/")) or known.get(os.path.abspath(head))
        if node_id is None:
            kept.append(arg)
        else:
            taken.append(node_id + sep + rest)
    if not taken:
        return None
    config.args[:] = kept  # nothing else to collect when every argument named a generated test
    return taken


def _is_selected(node_id: str, selected: list[str]) -> bool:
    return any(node_id == want or ("::" not in want and node_id.startswith(want + "::")) for want in selected)


def _target_option(config: pytest.Config) -> dict[str, str | None]:
    """The target the options and ini give; empty when neither field is given (Azure's defaults)."""
    security = config.getoption("azvhd_security_type") or config.getini("azvhd_security_type") or None
    controller = config.getoption("azvhd_disk_controller") or config.getini("azvhd_disk_controller") or None
    if security is None and controller is None:
        return {}
    return {"security_type": security, "disk_controller": controller}


def _baseline_path(config: pytest.Config) -> str | None:
    given = config.getoption("azvhd_baseline")
    if given:
        return str(given)
    ini = config.getini("azvhd_baseline")
    return str(config.rootpath / ini) if ini else None


def _state(config: pytest.Config) -> _State:
    return config.stash[_STATE_KEY]


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(_STATE_KEY, None)
    if state is None or not state.images:
        return None
    target = ", ".join(f"{k} {v}" for k, v in state.target.items() if v)
    return (
        f"azvhdaudit: {len(state.images)} image(s), profile {state.profile}"
        + (f", waivers {state.waivers}" if state.waivers else "")
        + (f", target {target}" if target else "")
        + (", verify signatures" if state.verify_signatures else "")
    )


def _ids(images: list[str]) -> list[str]:
    """Test ids: the file name, or the path as given where two images share a name."""
    names = [os.path.basename(p) for p in images]
    return [
        name if names.count(name) == 1 else image.replace(os.sep, "/")
        for name, image in zip(names, images, strict=True)
    ]


# --- generated tests --------------------------------------------------------------------------------


class AuditItem(pytest.Item):
    """One rule's verdict on one image."""

    def __init__(self, *, image: str, result: Result | None, error: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image = image
        self.result = result
        self.error = error
        if result is not None:
            self.add_marker(
                pytest.mark.azvhdaudit(
                    rule=result.rule_id,
                    area=result.area,
                    severity=result.severity.value,
                    status=result.status.value,
                    image=image,
                )
            )
            self.extra_keyword_matches.update({result.area, result.severity.value, result.status.value})
        else:
            self.add_marker(pytest.mark.azvhdaudit(image=image))

    def runtest(self) -> None:
        from azvhdaudit.report import Status

        if self.result is None:
            raise ImageUnreadable(self.error or "the image could not be audited")
        result = self.result
        status = result.status
        why = result.reason or result.message
        if status is Status.PASS:
            return
        if status is Status.WAIVED:
            was = f" (was {result.waived_status.value})" if result.waived_status else ""
            pytest.xfail(f"waived{was}: {why}")
        if status is Status.NOT_APPLICABLE:
            _skip(f"{result.rule_id}: not applicable: {why}")
        if status is Status.NOT_CHECKED:
            _skip(f"{result.rule_id}: NOT CHECKED (not a pass): {why}")
        if status is Status.MANUAL:
            _skip(f"{result.rule_id}: manual, needs the running VM: {why}")
        if status is Status.WARNING and _state(self.config).fail_on != "warning":
            warnings.warn(AzvhdWarning(f"{self.image}: {result.rule_id}: {result.message}"), stacklevel=1)
            return
        state = _state(self.config)
        if state.accepted_by_baseline(self.image, result):
            pytest.xfail(f"accepted by the baseline {state.baseline} ({status.value}): {result.message}")
        raise RuleFailed(result)

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, RuleFailed):
            return _describe(excinfo.value.result)
        if isinstance(excinfo.value, ImageUnreadable):
            return f"azvhdaudit could not audit {self.image}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path | str, int, str]:
        return self.path, 0, f"azvhdaudit: {self.name}"


def _skip(reason: str) -> None:
    """Skip, reported at the item (the image and rule) rather than at this line of the plugin."""
    try:
        exc = pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:  # a pytest without item locations for skips
        exc = pytest.skip.Exception(reason)
    raise exc


def _describe(result: Result) -> str:
    from azvhdaudit.render._common import describe_evidence, format_value

    lines = [f"{result.rule_id} {result.status.value.upper()} ({result.severity.value}): {result.title}"]
    if result.message:
        lines.append(f"  {result.message}")
    if result.expected is not None or result.actual is not None:
        lines.append(f"  expected: {format_value(result.expected)}")
        lines.append(f"  actual:   {format_value(result.actual)}")
    lines.extend(f"  evidence: {describe_evidence(ev)}" for ev in result.evidence)
    if result.remediation:
        lines.append("  fix:")
        lines.extend(f"    {line}" for line in result.remediation.strip().splitlines())
    if result.source:
        lines.append(f"  doc: {result.source}")
    return "\n".join(lines)


class ImageCollector(pytest.Collector):
    """The tests of one image: audited once, one item per result (only the named ones when the command line
    names generated tests)."""

    def __init__(self, *, image: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.image = image

    def collect(self) -> Iterator[AuditItem]:
        state = _state(self.config)
        try:
            report = state.report(self.image)
        except ImageUnreadable as err:
            if state.selected is None or _is_selected(
                self.nodeid, [want.partition("::")[0] for want in state.selected]
            ):
                yield AuditItem.from_parent(self, name="open", image=self.image, result=None, error=str(err))
            return
        for result in report.results:
            name = result.rule_id if result.disk == "os" else f"{result.rule_id}[{result.disk}]"
            if state.selected is None or _is_selected(f"{self.nodeid}::{name}", state.selected):
                yield AuditItem.from_parent(self, name=name, image=self.image, result=result)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """The session's own collection gains one :class:`ImageCollector` per image, after what the arguments
    name; pytest then collects them as it collects files (collection reports, ``-k`` / ``-m``, counts).

    The images are not files under the test paths (a URL is not a file at all), so ``pytest_collect_file``
    cannot find them; their node ids are the image ids (``os.vhd::rdp.port``), not paths under the rootdir.
    """
    outcome = yield
    if not isinstance(collector, pytest.Session):
        return
    state = collector.config.stash.get(_STATE_KEY, None)
    report = outcome.get_result()
    if state is None or not state.images or not report.passed:
        return
    for image, node_id in zip(state.images, _ids(state.images), strict=True):
        report.result.append(
            ImageCollector.from_parent(
                collector, name=node_id, nodeid=node_id, path=Path(os.path.abspath(image)), image=image
            )
        )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # tryfirst: a generated test named on the command line is looked for before -k / -m deselect.
    state = config.stash.get(_STATE_KEY, None)
    if state is None or state.selected is None:
        return
    found = {item.nodeid for item in items}
    missing = [want for want in state.selected if not any(_is_selected(n, [want]) for n in found)]
    if missing:
        raise pytest.UsageError(
            f"azvhdaudit: no generated test {', '.join(missing)} (run with --collect-only -q to list them)"
        )


# --- fixtures for the user's own tests --------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "azvhd_image_path" not in metafunc.fixturenames:
        return
    state = _state(metafunc.config)
    if state.images:
        metafunc.parametrize("azvhd_image_path", state.images, ids=_ids(state.images), indirect=True, scope="session")


@pytest.fixture(scope="session")
def azvhd_image_path(request: pytest.FixtureRequest) -> str:
    """The image the test runs on (parametrized over ``--azvhd-image`` / ``azvhd_images``)."""
    if not hasattr(request, "param"):
        pytest.fail("no disk image given: use --azvhd-image PATH or the azvhd_images ini option", pytrace=False)
    image: str = request.param
    return image


@pytest.fixture(scope="session")
def azvhd_image(azvhd_image_path: str, pytestconfig: pytest.Config) -> Iterator[Any]:
    """The image opened read-only for the whole session (an :class:`azvhdaudit.image.Image`)."""
    from azvhdaudit.image import open_image

    with open_image(azvhd_image_path, backend=_state(pytestconfig).backend) as image:
        yield image


@pytest.fixture
def azvhd_registry(azvhd_image: Any) -> Any:
    """The image's :class:`~azvhdaudit.registry.model.RegistryView` (HKLM paths, CurrentControlSet resolved)."""
    return azvhd_image.registry


@pytest.fixture(scope="session")
def azvhd_capabilities(azvhd_report: Report) -> Any:
    """What the image can run as (:class:`azvhdaudit.capabilities.Capabilities`), from ``azvhd_report``:
    ``assert azvhd_capabilities.disk_controllers >= {"SCSI", "NVMe"}``."""
    return azvhd_report.capabilities


@pytest.fixture(scope="session")
def azvhd_report(azvhd_image_path: str, pytestconfig: pytest.Config) -> Report:
    """The image's audit with the session's profile, waivers and image type (run once per image)."""
    try:
        return _state(pytestconfig).report(azvhd_image_path)
    except ImageUnreadable as err:
        pytest.fail(f"azvhdaudit could not audit {azvhd_image_path}: {err}", pytrace=False)
