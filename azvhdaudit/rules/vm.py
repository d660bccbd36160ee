"""The VM's disks as a set: the OS disk's Windows volume, the data disks Windows knows, drive letters, sizes.

References:
- "Prepare a Windows VHD or VHDX to upload to Azure" (current): the introduction (OS disk at most 2 TiB on
  generation 1, data disk at most 32,767 GiB); "Complete the recommended configurations" (the page file
  on the temporary disk, ``D:\\pagefile.sys``). The 2017 text: "De maximale grootte van de VHD is 1023 GB"
  (every VHD), and "if a data disk is attached to the VM, the temporary drive volume's letter is typically
  D; this designation could differ depending on the number of available drives".
- "About images for Windows virtual machines" (classic deployment model; MicrosoftDocs/azure-docs
  articles/virtual-machines/windows/classic/about-images.md, ms.date 2017-03-20): a *VM image* holds the OS disk
  and every data disk attached when it was made.
- ``SYSTEM\\MountedDevices``: ``\\DosDevices\\X:`` and ``\\??\\Volume{...}`` values, 12 bytes (MBR disk
  signature u32 + partition offset u64) or ``DMIO:ID:`` + the GPT partition GUID (decoded in
  :mod:`azvhdaudit.osinfo`).
- "Use the D: drive as a data drive on a Windows VM" (learn.microsoft.com/azure/virtual-machines/windows/
  change-drive-letter): the temporary disk takes D: unless the page file is moved first.

Two kinds of rules live here. ``disk.windows_volume`` runs on each OS disk like the disk-format rules and
says whether the disk holds Windows at all. The ``vm.*`` rules (``disk_roles=("vm",)``) run once per VM
audit — an OS disk given with its data disks — with a :class:`VMContext`: the OS disk's registry and facts,
and every disk's facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from azvhdaudit import osinfo
from azvhdaudit.errors import NotApplicable, NotChecked
from azvhdaudit.facts import ImageFacts, PartitionFacts
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.disk import DISK
from azvhdaudit.rules.values import HiveUnavailable

__all__ = ["VM_ROLE", "DiskInfo", "VMContext", "WINDOWS_VOLUME_RULE", "TEMP_DRIVE"]

#: the role of the cross-disk rules in :attr:`RuleMeta.disk_roles`
VM_ROLE = "vm"
VM = Group(area="vm", hives=("SYSTEM",))
#: the rule that says whether an OS disk holds Windows; it runs when the guest rules cannot
WINDOWS_VOLUME_RULE = "disk.windows_volume"
#: the letter Azure gives the temporary (resource) disk
TEMP_DRIVE = "D:"

MiB = 1024 * 1024
GiB = 1024 * MiB
#: 2017 doc: every VHD at most 1,023 GB (read as GiB, the unit Azure sizes disks in)
MAX_2017 = 1023 * GiB
#: current doc: a generation 1 OS disk at most 2 TiB
OS_MAX_GEN1 = 2048 * GiB
#: current doc: a data disk at most 32,767 GiB (also the managed-disk limit for a generation 2 OS disk)
DATA_MAX = 32767 * GiB

CHANGE_LETTER = "https://learn.microsoft.com/azure/virtual-machines/windows/change-drive-letter"
VM_IMAGES_2017 = "virtual-machines-windows-about-images (azure-docs, 2017): VM images and OS images"
MEMORY_MANAGEMENT = r"SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management"
PARTMGR = r"SYSTEM\CurrentControlSet\Services\partmgr\Parameters"
#: VDS_SAN_POLICY values (diskpart san policy=...)
SAN_POLICIES = {1: "OnlineAll", 2: "OfflineShared", 3: "OfflineAll", 4: "OfflineInternal"}


@dataclass(frozen=True)
class DiskInfo:
    """One disk of the VM as the cross-disk rules see it."""

    #: ``os`` or a data disk's name (``data1:sql.vhd``), as in :attr:`Result.disk`
    name: str
    #: ``os`` or ``data``
    role: str
    facts: ImageFacts

    @property
    def size(self) -> int:
        return self.facts.container.virtual_size


@dataclass
class VMContext(AuditContext):
    """An :class:`AuditContext` for the OS disk (``registry``, ``facts``) plus every disk of the VM."""

    disks: tuple[DiskInfo, ...] = field(default_factory=tuple)

    @property
    def data_disks(self) -> tuple[DiskInfo, ...]:
        return tuple(d for d in self.disks if d.role == "data")

    def facts_by_name(self) -> dict[str, ImageFacts]:
        return {d.name: d.facts for d in self.disks}


def _vm(ctx: AuditContext) -> VMContext:
    if not isinstance(ctx, VMContext):
        raise NotApplicable("a check across the VM's disks; it runs when an OS disk is audited with its data disks")
    return ctx


def _require_system(ctx: AuditContext) -> None:
    if not ctx.registry.has_hive("SYSTEM"):
        raise HiveUnavailable("SYSTEM", ctx.registry.why_unavailable("SYSTEM"))


def _fmt_size(size: int) -> str:
    if size % GiB == 0:
        return f"{size // GiB} GiB"
    return f"{size / GiB:.3f} GiB"


def _where(disk: str, part: PartitionFacts) -> str:
    return f"{disk} partition #{part.index} ({part.scheme.upper()}, offset {part.offset})"


def _partitions_text(facts: ImageFacts) -> str:
    if not facts.partitions:
        return "no partitions"
    return ", ".join(f"#{p.index} {p.type_name} {p.filesystem or '?'}" for p in facts.partitions)


# --- the OS disk holds Windows ----------------------------------------------------------------------


@rule(
    DISK,
    id=WINDOWS_VOLUME_RULE,
    title="OS disk holds a Windows volume (Windows\\System32\\config\\SYSTEM on NTFS)",
    severity=Severity.REQUIRED,
    rationale="Every other check of an OS disk reads the Windows installation on it. A disk without one is a "
    "data disk (audit it as one, beside its OS disk), an encrypted volume, or the wrong file. When "
    "this fails the guest rules are reported as not checked and the disk-format rules still run.",
    source="intro: an OS image holds an operating system (VM images and OS images)",
    remediation="Give the OS disk of the VM; audit a disk without Windows as a data disk "
    "(audit(os_disk, data_disks=[...]) or azvhdaudit audit OS.vhd --data-disk DATA.vhd)",
    references=(VM_IMAGES_2017,),
    hives=("SYSTEM",),
    finds_guest=True,
)
def check_windows_volume(ctx: AuditContext) -> Outcome:
    facts = ctx.facts
    if facts.windows_partition is not None:
        part = next((p for p in facts.partitions if p.index == facts.windows_partition), None)
        where = f"partition #{part.index} (offset {part.offset})" if part is not None else "a volume"
        ev = (Evidence(source="facts", key="windows_partition", actual=facts.windows_partition, present=True),)
        return Outcome(Status.PASS, f"Windows is on {where}", "a Windows volume", facts.windows_partition, ev)
    if ctx.registry.has_hive("SYSTEM"):
        # the hives were given directly (no partition facts): the SYSTEM hive is the evidence
        hive = ctx.registry.hive("SYSTEM")
        source = getattr(hive, "source", "")
        ev = (Evidence(source="facts", key="SYSTEM hive", actual=source, present=True),)
        return Outcome(Status.PASS, f"the SYSTEM hive was read ({source})", "a Windows volume", source, ev)
    ev = (
        Evidence(
            source="facts",
            key="partitions",
            actual=_partitions_text(facts),
            present=bool(facts.partitions),
            note=ctx.registry.why_unavailable("SYSTEM"),
        ),
    )
    if facts.bitlocker:
        raise NotChecked(
            "the volume is BitLocker-encrypted",
            "the disk's NTFS volume is BitLocker-encrypted: whether it holds Windows "
            "cannot be read (see disk.os_volume_not_bitlocker)",
            expected="a Windows volume",
            actual="encrypted",
            evidence=ev,
        )
    text = f"no NTFS volume holds Windows\\System32\\config\\SYSTEM ({_partitions_text(facts)})"
    if ctx.options.role is None:
        text += (
            "; if this is a data disk, audit it as one: role='data', or beside its OS disk with "
            "data_disks=[...] (CLI: --data-disk)"
        )
    return Outcome(Status.FAIL, text, "a Windows volume", None, ev)


# --- cross-disk checks --------------------------------------------------------------------------------


@rule(
    VM,
    id="vm.data_disks_known",
    title="Every data disk is known to the OS disk's Windows (SYSTEM\\MountedDevices), with its drive letters",
    severity=Severity.RECOMMENDED,
    rationale="Windows records each volume it has mounted in SYSTEM\\MountedDevices by MBR disk signature and "
    "partition offset, or by GPT partition GUID, with the drive letter it gave. A data disk found "
    "there keeps its letter in Azure; one that is not gets the next free letter when it is first "
    "seen — or stays offline under a Windows Server SAN policy — so paths that services and scripts "
    "use may not be there. The letters found are reported. Derived, not in the doc.",
    source="intro: a VM image holds the OS disk and its data disks (VM images and OS images)",
    remediation="Attach the data disks to the VM before it is captured (so Windows records them), or after "
    "deployment bring the disk online and set its letter: Get-Disk | Where-Object IsOffline | "
    "Set-Disk -IsOffline $false; Get-Partition -DiskNumber <n> -PartitionNumber <p> | "
    "Set-Partition -NewDriveLetter <X>",
    references=(VM_IMAGES_2017,),
    disk_roles=(VM_ROLE,),
)
def check_data_disks_known(ctx: AuditContext) -> Outcome:
    vm = _vm(ctx)
    if not vm.data_disks:
        raise NotApplicable("the VM has no data disks")
    _require_system(ctx)
    devices = osinfo.mounted_devices(ctx.registry)
    per_disk: dict[str, dict[str, list[str]]] = {}
    known, unknown = [], []
    for disk in vm.data_disks:
        parts: dict[str, list[str]] = {}
        for part in disk.facts.partitions:
            names = [d.letter or d.name for d in devices if d.matches(disk.facts, part)]
            if names:
                parts[f"#{part.index}"] = names
        per_disk[disk.name] = parts
        if parts:
            where = "; ".join(f"partition {p} as {', '.join(n)}" for p, n in parts.items())
            known.append(f"{disk.name}: {where}")
        elif not disk.facts.partitions:
            unknown.append(f"{disk.name} (no partition table: Windows sees an uninitialized disk)")
        else:
            ident = (
                f"MBR signature 0x{disk.facts.mbr_disk_signature:08X}"
                if disk.facts.partition_style == "mbr" and disk.facts.mbr_disk_signature is not None
                else f"{disk.facts.partition_style or '?'} partitions "
                + ", ".join(p.guid or str(p.offset) for p in disk.facts.partitions)
            )
            unknown.append(f"{disk.name} ({ident})")
    key = ctx.registry.display_path(osinfo.MOUNTED_DEVICES)
    ev = [
        Evidence(
            source="registry",
            hive="SYSTEM",
            key=key,
            actual=per_disk if devices else None,
            present=ctx.registry.key(osinfo.MOUNTED_DEVICES) is not None,
            note=f"{len(devices)} values, matched to the disks by signature or GUID",
            derived=bool(devices),
        )
    ]
    if unknown:
        text = f"not in {key}: " + "; ".join(unknown)
        if known:
            text += "; known: " + "; ".join(known)
        san = ctx.registry.value(PARTMGR, "SanPolicy")
        policy = san.data if san is not None and isinstance(san.data, int) else None
        if san is not None:
            ev.append(
                Evidence(
                    source="registry",
                    hive="SYSTEM",
                    key=ctx.registry.display_path(PARTMGR),
                    value_name="SanPolicy",
                    type=san.type_name,
                    actual=san.data,
                    present=True,
                )
            )
        if policy == 1:
            then = "they come online with the next free drive letters (SAN policy OnlineAll)"
        elif policy is not None:
            then = (
                f"they stay offline until someone brings them online (SAN policy "
                f"{SAN_POLICIES.get(policy, policy)}; see san.policy_onlineall)"
            )
        else:
            then = "the edition's default SAN policy decides whether they come online (see san.policy_onlineall)"
        return Outcome(
            Status.WARNING,
            f"{text}. Windows sees the unknown disks as new disks: {then}",
            "every data disk known",
            per_disk,
            tuple(ev),
        )
    return Outcome(
        Status.PASS,
        "every data disk is known to Windows: " + "; ".join(known),
        "every data disk known",
        per_disk,
        tuple(ev),
    )


@rule(
    VM,
    id="vm.temp_drive_letter_free",
    title="No disk of the VM takes drive letter D: (Azure's temporary disk, where the page file goes)",
    severity=Severity.RECOMMENDED,
    rationale="In Azure the temporary (resource) disk of the VM sizes that have one is D:, and the doc puts the "
    "page file on it "
    "(D:\\pagefile.sys). A data volume that Windows already gives D: keeps it: the temporary disk "
    "moves to another letter, and a page file set to D: lands on the data disk. The 2017 doc warns "
    "the temporary drive's letter 'could differ depending on the number of available drives'.",
    source="Complete the recommended configurations (page file on the temporary disk D:)",
    remediation="Inside the VM before capture, give the data volume another letter: Get-Partition -DriveLetter D "
    "| Set-Partition -NewDriveLetter F (or, to keep D: for data on purpose, follow 'Use the D: drive "
    "as a data drive on a Windows VM' and move the page file)",
    references=(CHANGE_LETTER,),
    disk_roles=(VM_ROLE,),
)
def check_temp_drive_letter(ctx: AuditContext) -> Outcome:
    vm = _vm(ctx)
    if not vm.data_disks:
        raise NotApplicable("the VM has no data disks")
    _require_system(ctx)
    letters = osinfo.drive_letter_map(ctx.registry, vm.facts_by_name())
    entry = letters.get(TEMP_DRIVE)
    paging = ctx.registry.value(MEMORY_MANAGEMENT, "PagingFiles")
    paging_data = paging.data if paging is not None else None
    entries = paging_data if isinstance(paging_data, list) else [paging_data] if paging_data else []
    on_d = [str(e) for e in entries if str(e).strip().upper().startswith(TEMP_DRIVE)]
    key = ctx.registry.display_path(osinfo.MOUNTED_DEVICES)
    ev = [
        Evidence(
            source="registry",
            hive="SYSTEM",
            key=key,
            value_name="\\DosDevices\\D:",
            actual=entry,
            present=entry is not None,
            derived=entry is not None,
            note="the volume the value names, matched to the disks" if entry is not None else "",
        )
    ]
    if paging is not None:
        ev.append(
            Evidence(
                source="registry",
                hive="SYSTEM",
                key=ctx.registry.display_path(MEMORY_MANAGEMENT),
                value_name="PagingFiles",
                type=paging.type_name,
                actual=paging_data,
                present=True,
            )
        )
    if entry is None:
        return Outcome(
            Status.PASS,
            "no volume has the letter D: in MountedDevices: the temporary disk can take it",
            "D: free",
            None,
            tuple(ev),
        )
    if entry["disk"] is None:
        return Outcome(
            Status.PASS,
            "D: names a volume on none of the audited disks (a DVD drive or a disk not "
            "given); check it is not attached in Azure",
            "D: free",
            entry,
            tuple(ev),
        )
    disk = next(d for d in vm.disks if d.name == entry["disk"])
    part = next(p for p in disk.facts.partitions if p.index == entry["partition"])
    text = (
        f"{_where(disk.name, part)} has drive letter D: in MountedDevices; in Azure D: is the temporary disk, "
        "which then gets another letter"
    )
    if on_d:
        text += f", and the page file set to {', '.join(on_d)} would be put on this {disk.role} disk"
    else:
        text += f", and the doc's D:\\pagefile.sys would land on this {disk.role} disk"
    return Outcome(
        Status.WARNING,
        text,
        "D: free",
        {"letter": TEMP_DRIVE, "disk": disk.name, "partition": part.index, "paging_files": on_d},
        tuple(ev),
    )


def _limit(ctx: AuditContext, disk: DiskInfo) -> tuple[int, str]:
    if ctx.profile == "azure-2017":
        return MAX_2017, "the 2017 doc's 1,023 GB per VHD"
    if disk.role == "os":
        if disk.facts.generation == 2:
            return DATA_MAX, "32,767 GiB (generation 2 OS disk)"
        return OS_MAX_GEN1, "2 TiB (generation 1 OS disk)"
    return DATA_MAX, "32,767 GiB per data disk"


@rule(
    VM,
    id="vm.disk_sizes",
    title="Each disk of the VM within the baseline's size limit; the VM's total reported",
    severity=Severity.REQUIRED,
    rationale="The current doc limits a generation 1 OS disk to 2 TiB and a data disk to 32,767 GiB; the "
    "2017 doc every VHD to 1,023 GB — data disks too, which disk.data_max_size (current baseline "
    "only) does not cover. Neither doc limits the total; it is reported, since the VM size chosen in "
    "Azure limits the number of data disks.",
    source="intro (disk sizes)",
    remediation="Shrink the volume and Resize-VHD -SizeBytes, or split the data over more disks",
    disk_roles=(VM_ROLE,),
)
def check_disk_sizes(ctx: AuditContext) -> Outcome:
    vm = _vm(ctx)
    sizes = {d.name: d.size for d in vm.disks}
    total = sum(sizes.values())
    over = []
    for disk in vm.disks:
        limit, why = _limit(ctx, disk)
        if disk.size > limit:
            over.append(f"{disk.name} is {_fmt_size(disk.size)}, over {why}")
    actual = {"disks": sizes, "total": total, "data_disks": len(vm.data_disks)}
    ev = (Evidence(source="facts", key="virtual sizes", actual=actual, present=True),)
    if over:
        return Outcome(Status.FAIL, "; ".join(over), "each disk within its limit", actual, ev)
    return Outcome(
        Status.PASS,
        f"{len(vm.disks)} disks, {_fmt_size(total)} in all, each within its limit",
        "each disk within its limit",
        actual,
        ev,
    )


def _disk_id(disk: DiskInfo) -> str | None:
    f = disk.facts
    if f.partition_style == "mbr" and f.mbr_disk_signature:
        return f"MBR signature 0x{f.mbr_disk_signature:08X}"
    if f.partition_style == "gpt" and f.gpt_disk_guid:
        return f"GPT disk GUID {f.gpt_disk_guid.lower()}"
    return None


@rule(
    VM,
    id="vm.disk_ids_unique",
    title="Disk signatures and GPT disk GUIDs are unique across the VM's disks",
    severity=Severity.RECOMMENDED,
    rationale="Windows takes a disk whose MBR signature or GPT disk GUID equals that of a disk already online "
    "offline (a signature collision), and MountedDevices cannot tell the two apart. It happens with "
    "disks copied from one another. Derived, not in the doc.",
    source="derived (disk identity across the VM's disks)",
    remediation="Give the copy a new identity inside a VM: diskpart: select disk <n>, uniqueid disk "
    "id=<new signature or GUID>",
    disk_roles=(VM_ROLE,),
)
def check_disk_ids_unique(ctx: AuditContext) -> Outcome:
    vm = _vm(ctx)
    if not vm.data_disks:
        raise NotApplicable("the VM has no data disks")
    seen: dict[str, list[str]] = {}
    for disk in vm.disks:
        ident = _disk_id(disk)
        if ident is not None:
            seen.setdefault(ident, []).append(disk.name)
    clashes = {ident: names for ident, names in seen.items() if len(names) > 1}
    ev = (Evidence(source="facts", key="disk identities", actual=seen, present=bool(seen)),)
    if clashes:
        text = "; ".join(f"{' and '.join(names)} share the {ident}" for ident, names in clashes.items())
        return Outcome(Status.WARNING, text + ": Windows takes one of them offline", "unique", clashes, ev)
    return Outcome(Status.PASS, f"{len(seen)} disk identities, all different", "unique", seen, ev)
