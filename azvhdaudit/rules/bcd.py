"""Boot configuration rules: the BCD settings the doc's bcdedit lines make.

References: "Prepare a Windows VHD or VHDX to upload to Azure", "Verify the VM: Set the Boot Configuration
Data (BCD) settings" (current: the six 2017 lines plus the serial console lines ``displaybootmenu``,
``timeout 5``, ``bootems``, ``/ems {current} ON``, ``/emssettings EMSPORT:1 EMSBAUDRATE:115200``);
``bcdedit /? TYPES``; the BCD WMI provider's element type enumerations (BcdLibraryElementTypes,
BcdOSLoaderElementTypes, BcdBootMgrElementTypes). Values are effective values: an element not set on an
object is taken from the objects it inherits from (element 14000006), as the boot manager does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azvhdaudit import osinfo
from azvhdaudit.bcd import ELEMENT_IDS, EMSSETTINGS, BCDDevice, BCDObject, BCDStore, Effective
from azvhdaudit.bcd_elements import OBJECT_TYPE_BOOTMGR, OBJECT_TYPE_OSLOADER
from azvhdaudit.boot_facts import bcd_of
from azvhdaudit.errors import NotChecked
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, Rule, RuleMeta, register, rule
from azvhdaudit.rules.values import plain

SECTION = "Verify the VM: Set the Boot Configuration Data (BCD) settings"
BCD = Group(area="bcd", source=SECTION, hives=("BCD", "SYSTEM"))
BOTH = ("azure-2022", "azure-2017")
CURRENT_ONLY = ("azure-2022",)

BOOTSTATUSPOLICY = {
    0: "DisplayAllFailures",
    1: "IgnoreAllFailures",
    2: "IgnoreShutdownFailures",
    3: "IgnoreBootFailures",
    4: "IgnoreCheckpointFailures",
    5: "DisplayShutdownFailures",
    6: "DisplayBootFailures",
    7: "DisplayCheckpointFailures",
}
INTEGRITYSERVICES = {0: "Default", 1: "Enable", 2: "Disable"}


_UNDECODABLE = "the BCD store cannot be decoded: "


def decoded_store(ctx: AuditContext) -> tuple[BCDStore | None, str]:
    """The decoded BCD store (:func:`azvhdaudit.boot_facts.bcd_of`: ``ctx.bcd``), or ``None`` and why not."""
    found = bcd_of(ctx)
    if found is None:
        return None, ctx.registry.why_unavailable("BCD")
    if isinstance(found, str):
        return None, _UNDECODABLE + found
    return found, ""


def store_of(ctx: AuditContext) -> BCDStore | None:
    """The decoded BCD store, ``None`` when the image has none; an undecodable one makes the rule not checked."""
    store, why = decoded_store(ctx)
    if store is None and why.startswith(_UNDECODABLE):
        raise NotChecked(why[len(_UNDECODABLE) :], f"not checked: {why}")
    return store


def _require_store(ctx: AuditContext) -> BCDStore:
    store = store_of(ctx)
    if store is None:
        why = ctx.registry.why_unavailable("BCD")
        raise NotChecked(why)
    return store


def _require_default(ctx: AuditContext, store: BCDStore) -> BCDObject:
    loader = store.default_loader
    if loader is None:
        why = "the BCD store has no {bootmgr} default OS loader (see bcd.store_present)"
        raise NotChecked(why)
    return loader


def _require_bootmgr(store: BCDStore) -> BCDObject:
    mgr = store.bootmgr
    if mgr is None:
        why = "the BCD store has no {bootmgr} object (see bcd.store_present)"
        raise NotChecked(why)
    return mgr


def _evidence(
    ctx: AuditContext, obj: BCDObject, eid: int, eff: Effective | None, actual: Any, note: str = ""
) -> Evidence:
    holder = eff.holder if eff is not None else obj
    inherited = f"inherited from {holder.label}" if eff is not None and eff.inherited else ""
    return Evidence(
        source="bcd",
        hive="BCD",
        key=f"{ctx.facts.bcd_path or 'BCD'}: Objects\\{holder.guid}\\Elements\\{eid:08X}",
        value_name="Element",
        type=None if eff is None else eff.element.format,
        raw=None if eff is None else eff.element.raw.hex(),
        actual=actual,
        present=eff is not None,
        note="; ".join(n for n in (inherited, note) if n),
    )


#: the object an element row reads, by its object type: the boot manager, or the OS loader it boots by default
TARGETS: dict[int, str] = {OBJECT_TYPE_BOOTMGR: "{bootmgr}", OBJECT_TYPE_OSLOADER: "{default}"}


@dataclass(frozen=True)
class ElementRow:
    """One "the effective value of an element of ``{bootmgr}`` or ``{default}`` equals X" rule, as data.

    ``object_type`` picks the object (:data:`TARGETS`), ``element`` is the bcdedit name (a key of
    :data:`~azvhdaudit.bcd.ELEMENT_IDS`), ``show`` renders a value as bcdedit does. ``absent`` is the status and
    words for an element set nowhere (``Status.FAIL``: not met, which the severity turns into fail or warning).
    ``lesser`` names found values (as shown) that are a warning only, with the reason.
    """

    id: str
    title: str
    severity: Severity
    object_type: int
    element: str
    expected: Any
    show: Callable[[Any], str]
    absent: tuple[Status, str]
    rationale: str
    remediation: str
    baselines: tuple[str, ...] = BOTH
    lesser: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.object_type not in TARGETS:
            raise ValueError(f"{self.id}: object type 0x{self.object_type:08X} is neither {{bootmgr}} nor an OS loader")
        if self.element not in ELEMENT_IDS:
            raise ValueError(f"{self.id}: unknown BCD element {self.element!r}")

    def meta(self) -> RuleMeta:
        return BCD.meta(
            id=self.id,
            title=self.title,
            severity=self.severity,
            rationale=self.rationale,
            baselines=self.baselines,
            remediation=self.remediation,
        )

    def check(self, ctx: AuditContext) -> Outcome:
        """Compare the element's effective value on the object with the expected one."""
        target = TARGETS[self.object_type]
        eid = ELEMENT_IDS[self.element]
        store = _require_store(ctx)
        obj = _require_bootmgr(store) if self.object_type == OBJECT_TYPE_BOOTMGR else _require_default(ctx, store)
        eff = store.effective(obj, eid)
        show, element, expected = self.show, self.element, self.expected
        where = f"{target} ({obj.label})" if self.object_type == OBJECT_TYPE_OSLOADER else target
        if eff is None:
            status, words = self.absent
            ev = (_evidence(ctx, obj, eid, None, None),)
            return Outcome(status, f"{element} is not set on {where} nor inherited: {words}", show(expected), None, ev)
        value = eff.value
        ev = (_evidence(ctx, obj, eid, eff, show(value)),)
        src = f" (inherited from {eff.holder.label})" if eff.inherited else ""
        if value == expected:
            return Outcome(Status.PASS, f"{where} {element} {show(value)}{src}", show(expected), show(value), ev)
        message = f"{where} {element} is {show(value)}{src}, {show(expected)} expected"
        if show(value) in self.lesser:
            return Outcome(Status.WARNING, f"{message} ({self.lesser[show(value)]})", show(expected), show(value), ev)
        return Outcome(Status.FAIL, message, show(expected), show(value), ev)


def register_elements(rows: tuple[ElementRow, ...]) -> list[Rule]:
    """Register element rows as rules."""
    return [register(Rule(row.meta(), row.check)) for row in rows]


def _yes_no(v: Any) -> str:
    return "Yes" if v else "No"


def _on_off(v: Any) -> str:
    return "On" if v else "Off"


@rule(
    BCD,
    id="bcd.store_present",
    title="BCD store found and {default} resolvable",
    severity=Severity.REQUIRED,
    rationale="Without a BCD store with a {bootmgr} whose default names an existing Windows Boot Loader, the "
    "VM does not boot. Prerequisite of every bcd.* rule.",
    source=SECTION + " (derived)",
    remediation="bcdboot C:\\Windows /s <system partition> /f ALL (inside the VM)",
)
def check_store_present(ctx: AuditContext) -> Outcome:
    store = store_of(ctx)
    if store is None:
        why = ctx.registry.why_unavailable("BCD")
        if "cannot be read" in why:
            raise NotChecked(why, expected="a BCD store")
        return Outcome(
            Status.FAIL, f"no BCD store: {why}", "a BCD store", None, (Evidence(source="bcd", key="BCD", note=why),)
        )
    path = ctx.facts.bcd_path or store.source
    mgr = store.bootmgr
    if mgr is None:
        return Outcome(
            Status.FAIL,
            f"the store {path} has no {{bootmgr}} object",
            "{bootmgr} present",
            None,
            (Evidence(source="bcd", hive="BCD", key=f"{path}: Objects", actual=len(store)),),
        )
    guid = store.default_guid
    default = ELEMENT_IDS["default"]
    ev = (_evidence(ctx, mgr, default, store.effective(mgr, default), guid),)
    if guid is None:
        return Outcome(Status.FAIL, "{bootmgr} has no default (element 23000003)", "a default OS loader", None, ev)
    loader = store.default_loader
    if loader is None:
        return Outcome(
            Status.FAIL, f"{{bootmgr}} default {guid} names no object in the store", "an existing OS loader", guid, ev
        )
    if loader.type != OBJECT_TYPE_OSLOADER:
        return Outcome(
            Status.FAIL,
            f"{{bootmgr}} default {guid} is a {loader.type_name}, not a Windows Boot Loader",
            "type 0x10200003",
            loader.type_name,
            ev,
        )
    return Outcome(Status.PASS, f"{path}: {{bootmgr}} boots {loader.label} by default", "an OS loader", loader.guid, ev)


_INTEGRITY_RATIONALE = (
    "The doc sets integrityservices (BcdLibraryInteger_SiPolicy, 0x1500004B; not 0x16000048, which is "
    "nointegritychecks) to Enable. Absent means Default, which Windows treats as enabled, so absence is a warning "
    "(the doc's line was not run) and only Disable fails."
)
_INTEGRITY_ABSENT = (Status.WARNING, "the Windows default (enabled) applies; the doc sets Enable explicitly")


def _integrityservices(v: Any) -> str:
    return INTEGRITYSERVICES.get(v, str(v))


def _bootstatuspolicy(v: Any) -> str:
    return BOOTSTATUSPOLICY.get(v, str(v))


def _seconds(v: Any) -> str:
    return f"{v}s"


BOOT_ROWS: tuple[ElementRow, ...] = (
    ElementRow(
        id="bcd.bootmgr_integrityservices",
        title="{bootmgr} integrityservices enable",
        severity=Severity.REQUIRED,
        object_type=OBJECT_TYPE_BOOTMGR,
        element="integrityservices",
        expected=1,
        show=_integrityservices,
        absent=_INTEGRITY_ABSENT,
        lesser={"Default": "Default behaves as enabled"},
        rationale=_INTEGRITY_RATIONALE,
        remediation='bcdedit.exe /set "{bootmgr}" integrityservices enable',
    ),
    ElementRow(
        id="bcd.default_integrityservices",
        title="{default} integrityservices enable",
        severity=Severity.REQUIRED,
        object_type=OBJECT_TYPE_OSLOADER,
        element="integrityservices",
        expected=1,
        show=_integrityservices,
        absent=_INTEGRITY_ABSENT,
        lesser={"Default": "Default behaves as enabled"},
        rationale=_INTEGRITY_RATIONALE,
        remediation='bcdedit.exe /set "{default}" integrityservices enable',
    ),
    ElementRow(
        id="bcd.default_recovery_disabled",
        title="{default} recoveryenabled Off",
        severity=Severity.REQUIRED,
        object_type=OBJECT_TYPE_OSLOADER,
        element="recoveryenabled",
        expected=False,
        show=_yes_no,
        absent=(Status.FAIL, "Windows RE recovery is enabled by default"),
        rationale="With recovery enabled, a failed boot starts Windows RE, which waits for a console nobody sees in "
        "Azure. Absent means enabled (the Windows default).",
        remediation='bcdedit.exe /set "{default}" recoveryenabled Off',
    ),
    ElementRow(
        id="bcd.default_bootstatuspolicy",
        title="{default} bootstatuspolicy IgnoreAllFailures",
        severity=Severity.REQUIRED,
        object_type=OBJECT_TYPE_OSLOADER,
        element="bootstatuspolicy",
        expected=1,
        show=_bootstatuspolicy,
        absent=(Status.FAIL, "the default policy DisplayAllFailures applies"),
        rationale="After an unclean shutdown the default policy (DisplayAllFailures) stops at the boot error menu, "
        "which an Azure VM cannot answer.",
        remediation='bcdedit.exe /set "{default}" bootstatuspolicy IgnoreAllFailures',
    ),
)
register_elements(BOOT_ROWS)


def _windows_partition_identity(ctx: AuditContext) -> dict[str, Any] | None:
    facts = ctx.facts
    if facts.windows_partition is None:
        return None
    part = next((p for p in facts.partitions if p.index == facts.windows_partition), None)
    if part is None:
        return None
    return {
        "index": part.index,
        "style": facts.partition_style,
        "offset": part.offset,
        "guid": (part.guid or "").strip("{}").lower() or None,
        "mbr_signature": facts.mbr_disk_signature,
        "disk_guid": (facts.gpt_disk_guid or "").strip("{}").lower() or None,
    }


def _mounted_c(ctx: AuditContext) -> dict[str, Any] | None:
    if not ctx.registry.has_hive("SYSTEM"):
        return None
    return ctx.cached("osinfo.mounted_c", lambda: osinfo.mounted_volume(ctx.registry, "C:"))  # type: ignore[no-any-return]


def _from_mounted(ctx: AuditContext, c_drive: dict[str, Any]) -> dict[str, Any]:
    """The Windows partition's identity as SYSTEM\\MountedDevices records C: (when the partition facts lack it)."""
    if c_drive["style"] == "gpt":
        disk = (ctx.facts.gpt_disk_guid or "").strip("{}").lower() or None
        return {
            "index": "C:",
            "style": "gpt",
            "guid": c_drive["guid"],
            "disk_guid": disk,
            "offset": None,
            "mbr_signature": None,
        }
    return {
        "index": "C:",
        "style": "mbr",
        "offset": c_drive["offset"],
        "mbr_signature": c_drive["mbr_signature"],
        "guid": None,
        "disk_guid": None,
    }


def _device_rule(ctx: AuditContext, element: str, eid: int) -> Outcome:
    store = _require_store(ctx)
    loader = _require_default(ctx, store)
    eff = store.effective(loader, eid)
    want = _windows_partition_identity(ctx)
    c_drive = _mounted_c(ctx)
    if want is None and c_drive is not None:
        want = _from_mounted(ctx, c_drive)
    expected = "partition=C: (the Windows partition)"
    if eff is None:
        return Outcome(
            Status.FAIL, f"{{default}} has no {element}", expected, None, (_evidence(ctx, loader, eid, None, None),)
        )
    dev = eff.value
    assert isinstance(dev, BCDDevice)
    note = f"Windows partition: {plain(want)}"
    if c_drive is not None:
        note += f"; SYSTEM\\MountedDevices \\DosDevices\\C: = {plain(c_drive)}"
    ev = (_evidence(ctx, loader, eid, eff, dev.to_dict(), note=note),)
    shown = dev.describe()
    if dev.kind == "boot":
        if want is not None and ctx.facts.boot_partition == want["index"]:
            return Outcome(
                Status.PASS, f"{{default}} {element} is boot, and Windows is on the boot partition", expected, shown, ev
            )
        return Outcome(
            Status.FAIL,
            f"{{default}} {element} is boot (the partition bootmgr started from), but Windows is on another partition",
            expected,
            shown,
            ev,
        )
    if dev.kind == "locate":
        return Outcome(
            Status.WARNING,
            f"{{default}} {element} is a locate device: it finds Windows by a path, "
            "which works but differs from the doc's partition=C:",
            expected,
            shown,
            ev,
        )
    if dev.kind != "partition":
        return Outcome(Status.FAIL, f"{{default}} {element} is {shown}, not a partition", expected, shown, ev)
    if want is None:
        raise NotChecked(
            "no Windows partition in the image facts",
            f"{{default}} {element} is {shown}; the Windows partition was not identified, so it cannot be compared",
            expected=expected,
            actual=shown,
            evidence=ev,
        )
    if dev.partition_style == "gpt":
        same_part = dev.partition_guid == want["guid"]
        same_disk = want["disk_guid"] is None or dev.disk_guid == want["disk_guid"]
        if same_part and same_disk:
            return Outcome(
                Status.PASS,
                f"{{default}} {element} is the Windows partition {want['index']} "
                f"(GPT partition {{{dev.partition_guid}}})",
                expected,
                shown,
                ev,
            )
        what = "partition GUID" if not same_part else "disk GUID"
        return Outcome(
            Status.FAIL,
            f"{{default}} {element} is {shown}; its {what} is not the Windows partition's "
            f"(partition {{{want['guid']}}} on disk {{{want['disk_guid']}}})",
            expected,
            shown,
            ev,
        )
    if dev.partition_style == "mbr":
        same_part = dev.partition_offset == want["offset"]
        same_disk = want["mbr_signature"] is None or dev.mbr_signature == want["mbr_signature"]
        if same_part and same_disk:
            return Outcome(
                Status.PASS,
                f"{{default}} {element} is the Windows partition {want['index']} (MBR "
                f"signature 0x{dev.mbr_signature:08X}, offset {dev.partition_offset})",
                expected,
                shown,
                ev,
            )
        sig = want["mbr_signature"]
        what = "partition offset" if not same_part else "disk signature"
        return Outcome(
            Status.FAIL,
            f"{{default}} {element} is {shown}; its {what} is not the Windows partition's "
            f"(offset {want['offset']}, signature {'?' if sig is None else f'0x{sig:08X}'})",
            expected,
            shown,
            ev,
        )
    return Outcome(Status.FAIL, f"{{default}} {element} is {shown}", expected, shown, ev)


@rule(
    BCD,
    id="bcd.default_device",
    title="{default} device partition=C:",
    severity=Severity.REQUIRED,
    rationale="The OS loader's device must be the Windows partition of this disk: the partition's identity in "
    "the element (MBR disk signature and offset, or GPT disk and partition GUIDs) must match the disk. "
    "A device left pointing at another disk (after a P2V copy or a disk clone) does not boot.",
    remediation='bcdedit.exe /set "{default}" device partition=C:',
)
def check_device(ctx: AuditContext) -> Outcome:
    return _device_rule(ctx, "device", ELEMENT_IDS["device"])


@rule(
    BCD,
    id="bcd.default_osdevice",
    title="{default} osdevice partition=C:",
    severity=Severity.REQUIRED,
    rationale=check_device.meta.rationale,
    remediation='bcdedit.exe /set "{default}" osdevice partition=C:',
)
def check_osdevice(ctx: AuditContext) -> Outcome:
    return _device_rule(ctx, "osdevice", ELEMENT_IDS["osdevice"])


SERIAL_CONSOLE_ROWS: tuple[ElementRow, ...] = (
    ElementRow(
        id="bcd.bootmgr_displaybootmenu",
        title="{bootmgr} displaybootmenu yes (serial console)",
        severity=Severity.RECOMMENDED,
        object_type=OBJECT_TYPE_BOOTMGR,
        element="displaybootmenu",
        expected=True,
        show=_yes_no,
        absent=(Status.WARNING, "the menu is not shown"),
        rationale="Shows the boot menu on the serial console so a broken boot can be steered from the Azure portal.",
        baselines=CURRENT_ONLY,
        remediation='bcdedit.exe /set "{bootmgr}" displaybootmenu yes',
    ),
    ElementRow(
        id="bcd.bootmgr_timeout",
        title="{bootmgr} timeout 5 (serial console)",
        severity=Severity.RECOMMENDED,
        object_type=OBJECT_TYPE_BOOTMGR,
        element="timeout",
        expected=5,
        show=_seconds,
        absent=(Status.WARNING, "the boot manager's built-in default applies"),
        rationale="Five seconds leave time to pick an entry on the serial console without slowing every boot.",
        baselines=CURRENT_ONLY,
        remediation='bcdedit.exe /set "{bootmgr}" timeout 5',
    ),
    ElementRow(
        id="bcd.bootmgr_bootems",
        title="{bootmgr} bootems yes (serial console)",
        severity=Severity.RECOMMENDED,
        object_type=OBJECT_TYPE_BOOTMGR,
        element="bootems",
        expected=True,
        show=_yes_no,
        absent=(Status.WARNING, "EMS is off by default"),
        rationale="Emergency Management Services on the boot manager put its menu on the serial console.",
        baselines=CURRENT_ONLY,
        remediation='bcdedit.exe /set "{bootmgr}" bootems yes',
    ),
    ElementRow(
        id="bcd.default_ems",
        title="{current}/{default} ems ON (serial console)",
        severity=Severity.RECOMMENDED,
        object_type=OBJECT_TYPE_OSLOADER,
        element="ems",
        expected=True,
        show=_on_off,
        absent=(Status.WARNING, "EMS is off by default"),
        rationale="EMS on the OS loader gives the Special Administration Console (SAC) on the serial console. "
        "Offline, the doc's {current} is the {default} loader.",
        baselines=CURRENT_ONLY,
        remediation='bcdedit.exe /ems "{current}" ON',
    ),
)
register_elements(SERIAL_CONSOLE_ROWS)


@rule(
    BCD,
    id="bcd.emssettings",
    title="{emssettings}: EMS port 1, 115200 baud (serial console)",
    severity=Severity.RECOMMENDED,
    rationale="Azure's serial console is COM1 at 115200 baud.",
    baselines=CURRENT_ONLY,
    remediation="bcdedit.exe /emssettings EMSPORT:1 EMSBAUDRATE:115200",
)
def check_emssettings(ctx: AuditContext) -> Outcome:
    store = _require_store(ctx)
    ems = store.get(EMSSETTINGS)
    if ems is None:
        return Outcome(
            Status.WARNING,
            "the store has no {emssettings} object",
            "EMSPORT:1 EMSBAUDRATE:115200",
            None,
            (Evidence(source="bcd", hive="BCD", key=f"Objects\\{EMSSETTINGS}"),),
        )
    found: dict[str, Any] = {}
    ev = []
    for name, eid in (("emsport", ELEMENT_IDS["emsport"]), ("emsbaudrate", ELEMENT_IDS["emsbaudrate"])):
        eff = store.effective(ems, eid)
        found[name] = None if eff is None else eff.value
        ev.append(_evidence(ctx, ems, eid, eff, found[name]))
    expected = {"emsport": 1, "emsbaudrate": 115200}
    if found == expected:
        return Outcome(Status.PASS, "{emssettings} EMSPORT:1 EMSBAUDRATE:115200", expected, found, tuple(ev))
    shown = ", ".join(f"{k} {'not set' if v is None else v}" for k, v in found.items())
    return Outcome(
        Status.WARNING, f"{{emssettings}} {shown}; EMSPORT:1 EMSBAUDRATE:115200 expected", expected, found, tuple(ev)
    )
