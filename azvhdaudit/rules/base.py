"""What a rule is: metadata, a check, and the context it reads.

A rule never opens a file or parses bytes: it asks ``ctx.registry`` (a :class:`RegistryView`),
``ctx.facts`` (an :class:`ImageFacts`), ``ctx.files`` (guest file facts) and ``ctx.bcd``.
Declaring a rule is its area's :class:`Group`, the rule's own fields and one function::

    TIME = Group(area="time", source="Set Windows configurations for Azure")

    @rule(TIME, id="time.w32time_auto", title="...", severity=Severity.REQUIRED, rationale="...", remediation="...")
    def check_w32time(ctx: AuditContext) -> Outcome: ...

The group gives the area, the doc section (unless the rule names its own ``source``), the baselines, the hives the
rules may read, whether they need the guest's Windows and which deployment targets require them; the references
are derived: the documents of the rule's baselines
(:data:`BASELINE_DOCUMENTS`), then the group's and the rule's own further references. Most rules are data rows
instead (see :mod:`azvhdaudit.rules.values`), declared with the same group.

A check says what it found; the engine decides the status:

- ``Status.FAIL`` means "the requirement is not met". The engine reports it as ``fail`` for a REQUIRED rule the
  deployment target requires, else as ``warning`` (RECOMMENDED, ADVISORY and INFORMATIONAL rules never fail; a
  platform rule states through its group's ``required_for``, or an outcome's ``required``, whether the target
  requires it).
- ``Status.WARNING`` is a lesser finding: never more than a warning, whatever the severity.
- A rule that does not apply raises :class:`azvhdaudit.errors.NotApplicable`; one whose evidence is missing or
  unreadable raises :class:`azvhdaudit.errors.NotChecked` (both with the reason).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from azvhdaudit.errors import ProfileError
from azvhdaudit.report import Outcome, Severity, Status

if TYPE_CHECKING:
    from azvhdaudit.facts import ImageFacts
    from azvhdaudit.registry.model import RegistryView

__all__ = [
    "BASELINES",
    "PROFILES",
    "DEFAULT_PROFILE",
    "SECURITY_TYPES",
    "DISK_CONTROLLERS",
    "Target",
    "effective_security_type",
    "DOC_CURRENT",
    "DOC_2017",
    "BASELINE_DOCUMENTS",
    "PLATFORM_BASELINE",
    "GUEST_HIVES",
    "derive_references",
    "problem_status",
    "Group",
    "RuleMeta",
    "Rule",
    "AuditOptions",
    "AuditContext",
    "GuestFiles",
    "rule",
    "register",
    "all_rules",
]

#: baseline name -> the document(s) it stands for. A rule declares the baselines it belongs to; a profile
#: (:data:`PROFILES`) runs the rules of one or more baselines.
BASELINES: dict[str, str] = {
    "azure-2022": "Prepare a Windows VHD or VHDX to upload to Azure (learn.microsoft.com, ms.date 2022-08-04)",
    "azure-2017": (
        "Prepare a Windows VHD or VHDX to upload to Azure (MicrosoftDocs/azure-docs, "
        "articles/virtual-machines/windows/prepare-for-upload-vhd-image.md, ms.date 2017-08-01)"
    ),
    "azure-platform": (
        "Azure platform requirements since 2022: Trusted Launch / Secure Boot, the 2023 boot certificates, NVMe, "
        "Azure Boost networking (each rule cites its own Microsoft document)"
    ),
    "azure-marketplace": (
        "Azure Marketplace VM certification: Troubleshoot virtual machine certification (learn.microsoft.com/"
        "partner-center/marketplace-offers/azure-vm-certification-faq, ms.date 2021-09-27) and Plan a virtual machine "
        "offer, Technical requirements (ms.date 2021-11-17): what they ask beyond azure-2022 and azure-platform"
    ),
}

#: profile -> the baselines whose rules it runs. ``azure`` is what Azure needs today: the 2022-08 document plus
#: the platform rules; ``azure-2022`` is that document alone; ``azure-2017`` the 2017 text.
PROFILES: dict[str, tuple[str, ...]] = {
    "azure": ("azure-2022", "azure-platform"),
    "azure-2022": ("azure-2022",),
    "azure-2017": ("azure-2017",),
    "azure-marketplace": ("azure-2022", "azure-platform", "azure-marketplace"),
}
DEFAULT_PROFILE = "azure"

#: the security types of an Azure VM (``securityProfile.securityType``; "Standard" = neither)
SECURITY_TYPES: tuple[str, ...] = ("Standard", "TrustedLaunch", "ConfidentialVM")
#: the disk controllers an Azure VM attaches its disks over (``storageProfile.diskControllerType``)
DISK_CONTROLLERS: tuple[str, ...] = ("SCSI", "NVMe")
DOC_CURRENT = "https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image"
DOC_2017 = "prepare-for-upload-vhd-image.md (azure-docs, ms.date 08/01/2017)"

#: the baseline of the Azure platform requirements since 2022 (each of its rules cites its own documents)
PLATFORM_BASELINE: tuple[str, ...] = ("azure-platform",)

#: baseline -> the references every rule of that baseline cites (a platform rule cites its own documents)
BASELINE_DOCUMENTS: dict[str, tuple[str, ...]] = {
    "azure-2022": (DOC_CURRENT,),
    "azure-2017": (DOC_2017,),
    "azure-platform": (),
    "azure-marketplace": ("https://learn.microsoft.com/partner-center/marketplace-offers/azure-vm-certification-faq",),
}
#: the hives of the guest's configuration: what a guest rule reads unless its group or itself says otherwise
GUEST_HIVES: tuple[str, ...] = ("SYSTEM", "SOFTWARE")


def derive_references(baselines: tuple[str, ...], *further: str) -> tuple[str, ...]:
    """A rule's references: the documents of its baselines (in :data:`BASELINES` order), then ``further``, each
    once. A baseline missing from :data:`BASELINE_DOCUMENTS` contributes nothing (the catalogue test names it)."""
    ordered = [b for b in BASELINES if b in baselines] + [b for b in baselines if b not in BASELINES]
    docs = [doc for b in ordered for doc in BASELINE_DOCUMENTS.get(b, ())]
    return tuple(dict.fromkeys((*docs, *further)))


def problem_status(severity: Severity, required: bool = True) -> Status:
    """The status of an unmet requirement: ``fail`` for a REQUIRED rule whose requirement applies (the deployment
    target requires it), ``warning`` otherwise: RECOMMENDED, ADVISORY and INFORMATIONAL rules never fail."""
    return Status.FAIL if severity is Severity.REQUIRED and required else Status.WARNING


@dataclass(frozen=True)
class RuleMeta:
    """A rule's identity and references, as the report shows them. ``id`` is stable and never reused.

    Rules do not build it themselves: :meth:`Group.meta` (and :func:`rule`) derive the area, the doc section
    and the references from the rule's group and baselines.
    """

    id: str
    title: str
    area: str
    severity: Severity
    #: why Azure needs it (and, where an earlier reading of the doc was wrong, what the evidence showed)
    rationale: str = ""
    #: the doc section the rule comes from
    source: str = ""
    #: which baselines (profiles) hold the rule
    baselines: tuple[str, ...] = ("azure-2022", "azure-2017")
    #: the exact fix line from the doc (PowerShell or cmd)
    remediation: str = ""
    references: tuple[str, ...] = (DOC_CURRENT,)
    #: the rule applies to OS disks, data disks or both
    disk_roles: tuple[str, ...] = ("os",)
    #: the hives the rule may read (guest rules: SYSTEM and SOFTWARE unless they say otherwise); the engine opens
    #: SECURITY and SAM only for the rules that name them
    hives: tuple[str, ...] = GUEST_HIVES
    #: whether the rule reads the guest's Windows (hives, files, BCD); a rule that reads only the container and
    #: the partitions (``False``) runs on a disk without Windows too
    needs_guest: bool = True
    #: the rule reports whether the disk holds a Windows the guest rules can read: the engine cites it when the
    #: guest rules are not checked for want of one
    finds_guest: bool = False
    #: whether the deployment target requires the rule (``None``: always): an unmet requirement of a rule the
    #: target does not require is a warning
    required_for: Callable[[AuditContext], bool] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Group:
    """What the rules of one area share, declared once: the area, the doc section most of them come from,
    references beyond their baselines' documents, a shared rationale, the hives they read, whether they need the
    guest's Windows, and (platform rules) whether the deployment target requires them."""

    area: str
    source: str = ""
    #: references every rule of the group cites besides its baselines' documents (:data:`BASELINE_DOCUMENTS`)
    references: tuple[str, ...] = ()
    rationale: str = ""
    #: the baselines its rules belong to unless a rule names its own
    baselines: tuple[str, ...] = ("azure-2022", "azure-2017")
    hives: tuple[str, ...] = GUEST_HIVES
    needs_guest: bool = True
    required_for: Callable[[AuditContext], bool] | None = field(default=None, compare=False)

    def meta(
        self,
        *,
        id: str,
        title: str,
        severity: Severity,
        rationale: str = "",
        source: str = "",
        baselines: tuple[str, ...] | None = None,
        remediation: str = "",
        references: tuple[str, ...] = (),
        disk_roles: tuple[str, ...] = ("os",),
        hives: tuple[str, ...] | None = None,
        needs_guest: bool | None = None,
        finds_guest: bool = False,
    ) -> RuleMeta:
        """The metadata of one rule of this group. ``references`` are the rule's own documents beyond its
        baselines' and the group's; ``source``, ``baselines``, ``hives`` and ``needs_guest`` replace the
        group's."""
        baselines = self.baselines if baselines is None else baselines
        own = [r for b in baselines for r in BASELINE_DOCUMENTS.get(b, ()) if r in references]
        if own:
            raise ValueError(
                f"rule {id}: references {', '.join(own)} come from its baselines; list only further documents"
            )
        return RuleMeta(
            id=id,
            title=title,
            area=self.area,
            severity=severity,
            rationale=rationale or self.rationale,
            source=source or self.source,
            baselines=baselines,
            remediation=remediation,
            references=derive_references(baselines, *self.references, *references),
            disk_roles=disk_roles,
            hives=self.hives if hives is None else hives,
            needs_guest=self.needs_guest if needs_guest is None else needs_guest,
            finds_guest=finds_guest,
            required_for=self.required_for,
        )


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


def _canonical(value: str | None, valid: tuple[str, ...], what: str) -> str | None:
    if value is None:
        return None
    for name in valid:
        if isinstance(value, str) and value.lower() == name.lower():
            return name
    raise ProfileError(f"{what} must be one of {', '.join(valid)} (or None for Azure's default), not {value!r}")


@dataclass(frozen=True)
class Target:
    """Where the image is to run in Azure: which platform rules are required and which are advice.

    ``security_type`` is ``Standard``, ``TrustedLaunch`` or ``ConfidentialVM``; ``None`` is Azure's default
    (Trusted Launch for a Generation 2 VM, Standard for Generation 1). ``disk_controller`` is ``SCSI`` or
    ``NVMe``; ``None`` is SCSI, NVMe readiness then reported as a warning. Names are matched
    case-insensitively and stored in Azure's spelling; anything else raises
    :class:`~azvhdaudit.errors.ProfileError` (a :class:`ValueError`).
    """

    security_type: str | None = None
    disk_controller: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "security_type", _canonical(self.security_type, SECURITY_TYPES, "security_type"))
        object.__setattr__(
            self, "disk_controller", _canonical(self.disk_controller, DISK_CONTROLLERS, "disk_controller")
        )

    @classmethod
    def of(cls, value: Target | dict[str, Any] | None) -> Target:
        """A target from a :class:`Target`, a dict (``security_type``, ``disk_controller``) or ``None``."""
        if value is None:
            return cls()
        if isinstance(value, Target):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"security_type", "disk_controller"}
            if unknown:
                raise ProfileError(
                    f"unknown target field(s) {', '.join(sorted(map(str, unknown)))}; "
                    "valid: security_type, disk_controller"
                )
            return cls(value.get("security_type"), value.get("disk_controller"))
        raise ProfileError(f"target must be a Target, a dict or None, not {type(value).__name__}")

    def resolved(self, generation: int | None) -> dict[str, Any]:
        """The target as given and as it applies to an image of this generation (defaults resolved)."""
        return {
            "security_type": self.security_type,
            "disk_controller": self.disk_controller,
            "effective_security_type": effective_security_type(self, generation),
            "effective_disk_controller": self.disk_controller or "SCSI",
        }

    def to_dict(self) -> dict[str, Any]:
        return {"security_type": self.security_type, "disk_controller": self.disk_controller}


def effective_security_type(target: Target, generation: int | None) -> str:
    """The security type the VM gets: the one given, else Azure's default for the generation (Trusted Launch
    for Generation 2, Standard for Generation 1 and for an image whose generation is not established)."""
    if target.security_type is not None:
        return target.security_type
    return "TrustedLaunch" if generation == 2 else "Standard"


@dataclass(frozen=True)
class AuditOptions:
    """What the user asked of the audit beyond the profile."""

    #: ``generalized`` or ``specialized``; ``None`` = not stated
    image_type: str | None = None
    #: ``os`` or ``data``; ``None`` = not stated (decided by whether Windows is found)
    role: str | None = None
    #: where the image is to run (security type, disk controller)
    target: Target = field(default_factory=Target)
    #: the complete signature check (digests, catalogs) instead of the fast certificate-table path
    verify_signatures: bool = False


@dataclass
class AuditContext:
    """Everything a rule may read."""

    registry: RegistryView
    facts: ImageFacts
    profile: str = DEFAULT_PROFILE
    options: AuditOptions = field(default_factory=AuditOptions)
    files: GuestFiles | None = None
    #: the files of the boot volume (the one holding the BCD store: the ESP on Generation 2), read-only
    boot_files: GuestFiles | None = None
    #: the decoded BCD store (:class:`azvhdaudit.bcd.BCDStore`), when one was found
    bcd: Any = None
    #: scratch space shared by rules within one audit (e.g. parsed firewall rules), keyed by name
    cache: dict[str, Any] = field(default_factory=dict)

    def security_type(self) -> str:
        """The effective security type: the target's, else Azure's default for the image's generation."""
        return effective_security_type(self.options.target, self.facts.generation)

    def disk_controller(self) -> str:
        """The effective disk controller: the target's, else SCSI."""
        return self.options.target.disk_controller or "SCSI"

    def secure_boot_required(self) -> bool:
        """Whether the VM boots with Secure Boot on (Trusted Launch or Confidential VM)."""
        return self.security_type() in ("TrustedLaunch", "ConfidentialVM")

    def nvme_required(self) -> bool:
        """Whether the VM's disks attach over NVMe."""
        return self.disk_controller() == "NVMe"

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


def rule(group: Group, **fields: Any) -> Callable[[Callable[[AuditContext], Outcome]], Rule]:
    """Decorator: declare and register a rule of ``group`` from its own fields (those of :meth:`Group.meta`) and a
    check function."""
    if not isinstance(group, Group):
        raise TypeError(
            "rule() takes the rule's Group and its fields: @rule(GROUP, id=..., title=..., ...), "
            "not a RuleMeta (drop area=, and the baselines' documents from references=)"
        )
    meta = group.meta(**fields)

    def wrap(func: Callable[[AuditContext], Outcome]) -> Rule:
        return register(Rule(meta, func))

    return wrap


def all_rules() -> Iterator[Rule]:
    """Every registered rule, in registration order (importing :mod:`azvhdaudit.rules` loads them)."""
    return iter(list(_CATALOGUE.values()))
