"""What a rule is: metadata, a check, and the context it reads.

A rule never opens a file or parses bytes: it asks ``ctx.registry`` (a :class:`RegistryView`),
``ctx.facts`` (an :class:`ImageFacts`), ``ctx.files`` (guest file facts) and ``ctx.bcd``.
Declaring a rule is one metadata object and one function::

    @rule(RuleMeta(id="time.utc", title="...", area="time", severity=Severity.REQUIRED, ...))
    def check_utc(ctx: AuditContext) -> Outcome: ...

Most rules are data rows instead (see :mod:`azvhdaudit.rules.values`).
A rule that does not apply raises :class:`azvhdaudit.errors.NotApplicable` with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from azvhdaudit.report import Outcome, Severity

if TYPE_CHECKING:
    from azvhdaudit.facts import ImageFacts
    from azvhdaudit.registry.model import RegistryView

__all__ = [
    "BASELINES",
    "DOC_CURRENT",
    "DOC_2017",
    "RuleMeta",
    "Rule",
    "AuditOptions",
    "AuditContext",
    "GuestFiles",
    "rule",
    "register",
    "all_rules",
]

#: baseline name -> the document it stands for
BASELINES: dict[str, str] = {
    "azure": "Prepare a Windows VHD or VHDX to upload to Azure (learn.microsoft.com, ms.date 2022-08-04)",
    "azure-2017": "Prepare a Windows VHD or VHDX to upload to Azure (ms.date 2017-08-01, the seed text)",
}
DOC_CURRENT = "https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image"
DOC_2017 = "prepare-for-upload-vhd-image.md (azure-docs, ms.date 08/01/2017)"


@dataclass(frozen=True)
class RuleMeta:
    """A rule's identity and references. ``id`` is stable and never reused."""

    id: str
    title: str
    area: str
    severity: Severity
    #: why Azure needs it (and, where the catalog fact was wrong, what the evidence showed)
    rationale: str = ""
    #: the doc section the rule comes from
    source: str = ""
    #: which baselines (profiles) hold the rule
    baselines: tuple[str, ...] = ("azure", "azure-2017")
    #: the exact fix line from the doc (PowerShell or cmd)
    remediation: str = ""
    references: tuple[str, ...] = (DOC_CURRENT,)
    #: the rule applies to OS disks, data disks or both
    disk_roles: tuple[str, ...] = ("os",)


class Rule:
    """A rule: metadata plus a check function returning an :class:`Outcome`."""

    def __init__(self, meta: RuleMeta, check: Callable[[AuditContext], Outcome]) -> None:
        self.meta = meta
        self._check = check

    @property
    def id(self) -> str:
        return self.meta.id

    def check(self, ctx: AuditContext) -> Outcome:
        return self._check(ctx)

    def __repr__(self) -> str:
        return f"<Rule {self.meta.id}>"


class GuestFiles(Protocol):
    """File facts of the guest's Windows volume (and the boot volume), read-only."""

    def exists(self, path: str) -> bool:
        """Whether the Windows path (``Windows\\System32\\drivers\\storvsc.sys``) exists."""
        ...

    def is_dir(self, path: str) -> bool: ...

    def listdir(self, path: str) -> list[str] | None:
        """Names in a directory, or ``None`` when it does not exist."""
        ...

    def read(self, path: str, max_size: int = 16 * 1024 * 1024) -> bytes | None:
        """The file's bytes (at most ``max_size``), or ``None`` when it does not exist."""
        ...

    def file_version(self, path: str) -> tuple[int, int, int, int] | None:
        """The PE file's VS_FIXEDFILEINFO FileVersion, or ``None`` when absent or unreadable."""
        ...


@dataclass(frozen=True)
class AuditOptions:
    """What the user asked of the audit beyond the profile."""

    #: ``generalized`` or ``specialized``; ``None`` = not stated
    image_type: str | None = None
    #: ``os`` or ``data``; ``None`` = not stated (decided by whether Windows is found)
    role: str | None = None


@dataclass
class AuditContext:
    """Everything a rule may read."""

    registry: RegistryView
    facts: ImageFacts
    profile: str = "azure"
    options: AuditOptions = field(default_factory=AuditOptions)
    files: GuestFiles | None = None
    #: the decoded BCD store (:class:`azvhdaudit.bcd.BCDStore`), when one was found
    bcd: Any = None
    #: scratch space shared by rules within one audit (e.g. parsed firewall rules), keyed by name
    cache: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """Compute ``make()`` once per audit (parsed firewall rules, decoded blobs ...)."""
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]


_CATALOGUE: dict[str, Rule] = {}


def register(r: Rule) -> Rule:
    """Add a rule to the catalogue; ids must be unique."""
    if r.id in _CATALOGUE and _CATALOGUE[r.id] is not r:
        raise ValueError(f"duplicate rule id {r.id!r}")
    _CATALOGUE[r.id] = r
    return r


def rule(meta: RuleMeta) -> Callable[[Callable[[AuditContext], Outcome]], Rule]:
    """Decorator: declare and register a rule from a metadata object and a check function."""

    def wrap(func: Callable[[AuditContext], Outcome]) -> Rule:
        return register(Rule(meta, func))

    return wrap


def all_rules() -> Iterator[Rule]:
    """Every registered rule, in registration order (importing :mod:`azvhdaudit.rules` loads them)."""
    return iter(list(_CATALOGUE.values()))
