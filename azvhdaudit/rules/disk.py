"""Disk format rules: what Azure accepts as an uploaded disk, and what boots.

References: "Prepare a Windows VHD or VHDX to upload to Azure" (current, ms.date 2022-08-04,
https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image): the
introduction (VHD, fixed, Gen1 and Gen2, OS disk 2 TiB on Gen1, data disk 32,767 GiB), "Convert the virtual
disk to a fixed size VHD" (Convert-VHD, Resize-VHD, size a whole number of MiB, file = size + 512),
"Determine when to use Sysprep" (drives fully decrypted), "Verify the VM" (chkdsk); the 2017 version (VHD
fixed, Gen1 only, at most 1,023 GB; MicrosoftDocs/azure-docs articles/virtual-machines/windows/
prepare-for-upload-vhd-image.md, ms.date 2017-08-01). Virtual Hard Disk Image Format Specification (footer, CHS
geometry); [MS-VHDX] (log, logical sector size).

The rules read :class:`~azvhdaudit.facts.ContainerFacts` and the partition facts; they never read the
disk themselves.
"""

from __future__ import annotations

from azvhdaudit.errors import NotApplicable, NotChecked
from azvhdaudit.facts import ContainerFacts, PartitionFacts
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.values import HiveUnavailable, Read, printable, ps_arg, read_value, sh_arg

MiB = 1024 * 1024
GiB = 1024 * MiB
#: 2017 doc: "De maximale grootte van de VHD is 1023 GB"
OS_MAX_2017 = 1023 * GiB
#: current doc: Gen1 OS disk at most 2 TiB
OS_MAX_GEN1 = 2048 * GiB
#: current doc: data disk at most 32,767 GiB (also the largest managed disk, so the cap for a Gen2 OS disk)
DATA_MAX = 32767 * GiB

CONVERT_SECTION = "Convert the virtual disk to a fixed size VHD"

#: the container and the partitions: read without the guest, so they run on a disk without Windows too
DISK = Group(area="disk-format", hives=(), needs_guest=False)
BOTH_ROLES = ("os", "data")
CURRENT_ONLY = ("azure-2022",)


def _container_evidence(c: ContainerFacts, note: str = "", **actual: object) -> Evidence:
    return Evidence(
        source="container", key=c.path, actual=dict(actual) if actual else c.format, present=True, note=note
    )


def _evidence_of(c: ContainerFacts, actual: dict[str, object]) -> Evidence:
    return Evidence(source="container", key=c.path, actual=dict(actual), present=True)


def _fmt_size(size: int) -> str:
    if size % GiB == 0:
        return f"{size} bytes ({size // GiB} GiB)"
    if size % MiB == 0:
        return f"{size} bytes ({size // MiB} MiB)"
    return f"{size} bytes ({size / GiB:.3f} GiB)"


#: qemu-img's name of each container format
QEMU_FORMATS = {"vhd": "vpc", "vhdx": "vhdx", "vmdk": "vmdk", "qcow2": "qcow2", "raw": "raw"}


def _name(path: str) -> str:
    """The image's file name (the fix runs where the file is)."""
    return path.replace("\\", "/").rsplit("/", 1)[-1] or "disk"


def _sh(name: str) -> str:
    return sh_arg(name)


def fixed_vhd_name(path: str) -> str:
    """Where a converted fixed VHD goes: the image's name with ``.vhd``, or ``-fixed.vhd`` when that would be
    the image itself (a conversion never writes over its input)."""
    name = _name(path)
    stem = name.rsplit(".", 1)[0] if "." in name else name
    target = f"{stem}.vhd"
    return f"{stem}-fixed.vhd" if target.lower() == name.lower() else target


def _conversion(c: ContainerFacts) -> str:
    """The command that makes a fixed VHD of this container: Hyper-V's Convert-VHD for VHD and VHDX (it reads
    no other format), qemu-img with the container's own input format for the rest."""
    name, target = _name(c.path), fixed_vhd_name(c.path)
    if c.format in ("vhd", "vhdx"):
        return f"Convert-VHD -Path {ps_arg(name)} -DestinationPath {ps_arg(target)} -VHDType Fixed"
    src = QEMU_FORMATS.get(c.format, c.format)
    return f"qemu-img convert -f {src} -O vpc -o subformat=fixed,force_size {_sh(name)} {_sh(target)}"


def _truncated_vhd(c: ContainerFacts) -> bool:
    """A file named .vhd read as a raw disk: a fixed VHD whose last 512 bytes (the footer) are missing."""
    return c.format == "raw" and _name(c.path).lower().endswith(".vhd")


def _truncated_text(c: ContainerFacts) -> str:
    return (
        f"{_name(c.path)} has no VHD footer at its end (and no footer copy at its start), so it was read as "
        "a raw disk: it is probably truncated (an interrupted copy or download of a fixed VHD)"
    )


def _truncated_fix(c: ContainerFacts) -> str:
    return (
        f"Copy {printable(_name(c.path))} again from its source: its last 512 bytes, the VHD footer, are missing\n"
        + _conversion(c)
    )


@rule(
    DISK,
    id="disk.container_format",
    title="Image container is VHD (VHDX must be converted before upload)",
    severity=Severity.REQUIRED,
    rationale="Azure stores uploaded disks as page blobs in the VHD format; other containers must be converted "
    "first (the audit reads the guest either way). The current doc notes that Add-AzVhd converts "
    "a VHDX itself on a host with Hyper-V.",
    source="intro / " + CONVERT_SECTION,
    remediation="Convert-VHD -Path <image.vhdx> -DestinationPath <image.vhd> -VHDType Fixed  (the audit names the "
    "image and, for QCOW2, VMDK and raw images, gives the qemu-img line)",
    disk_roles=BOTH_ROLES,
)
def check_container_format(ctx: AuditContext) -> Outcome:
    c = ctx.facts.container
    ev = (_container_evidence(c, format=c.format, subtype=c.subtype),)
    if c.format == "vhd":
        return Outcome(Status.PASS, f"the image is a VHD ({c.subtype or 'unknown type'})", "vhd", c.format, ev)
    what = {"vhdx": "a VHDX", "raw": "a raw disk image", "vmdk": "a VMware VMDK", "qcow2": "a QEMU QCOW2"}.get(
        c.format, f"a {c.format} file"
    )
    if _truncated_vhd(c):
        return Outcome(
            Status.FAIL,
            f"{_truncated_text(c)}; Azure takes only a VHD with its footer",
            "vhd",
            c.format,
            ev,
            remediation=_truncated_fix(c),
        )
    return Outcome(
        Status.FAIL,
        f"the image is {what}, Azure takes only VHD: convert it with `{_conversion(c)}`",
        "vhd",
        c.format,
        ev,
        remediation=_conversion(c),
    )


@rule(
    DISK,
    id="disk.vhd_fixed",
    title="VHD disk type is Fixed",
    severity=Severity.REQUIRED,
    rationale="Azure accepts only fixed-size VHDs; a dynamic or differencing VHD must be converted.",
    source=CONVERT_SECTION,
    remediation="Convert-VHD -Path <image.vhd> -DestinationPath <image-fixed.vhd> -VHDType Fixed",
    disk_roles=BOTH_ROLES,
)
def check_vhd_fixed(ctx: AuditContext) -> Outcome:
    c = ctx.facts.container
    if c.format != "vhd":
        raise NotApplicable(f"the image is {c.format}, not a VHD (see disk.container_format)")
    ev = (_container_evidence(c, disk_type=c.subtype),)
    if c.subtype == "fixed":
        return Outcome(Status.PASS, "the VHD is fixed-size", "fixed", c.subtype, ev)
    if c.subtype is None:
        raise NotChecked(
            "unknown VHD disk type", "the VHD footer's disk type could not be read", expected="fixed", evidence=ev
        )
    if c.subtype == "differencing":
        return Outcome(
            Status.FAIL,
            "the VHD is differencing (merge it into its parent first, see "
            "disk.not_differencing); convert the merged disk to a fixed VHD",
            "fixed",
            c.subtype,
            ev,
            remediation=_merge_fix(c),
        )
    return Outcome(
        Status.FAIL,
        f"the VHD is {c.subtype}; convert it to a fixed VHD: `{_conversion(c)}`",
        "fixed",
        c.subtype,
        ev,
        remediation=_conversion(c),
    )


def _merge_fix(c: ContainerFacts) -> str:
    """Merge the chain into its base disk (Merge-VHD writes into the parent: work on a copy of the chain),
    then convert the base to a fixed VHD. Without the chain's names, the doc's line."""
    if not c.parents:
        return f"Merge-VHD -Path {ps_arg(_name(c.path))} -DestinationPath <its parent>"
    base = c.parents[-1]
    base_name = _name(base.path)
    merge = f"Merge-VHD -Path {ps_arg(_name(c.path))} -DestinationPath {ps_arg(base_name)}"
    convert = (
        f"Convert-VHD -Path {ps_arg(base_name)} -DestinationPath {ps_arg(fixed_vhd_name(base.path))} -VHDType Fixed"
    )
    return f"{merge}  (it writes into {printable(base_name)}: merge a copy of the chain)\n{convert}"


@rule(
    DISK,
    id="disk.not_differencing",
    title="Disk is not a differencing disk (merge the chain first)",
    severity=Severity.REQUIRED,
    rationale="A differencing disk holds only the changes against its parent; uploaded alone it is not a "
    "bootable disk. Derived from the doc's fixed-VHD requirement.",
    source=CONVERT_SECTION,
    remediation="Merge-VHD -Path <child> -DestinationPath <its parent>; then Convert-VHD -VHDType Fixed",
    disk_roles=BOTH_ROLES,
)
def check_not_differencing(ctx: AuditContext) -> Outcome:
    c = ctx.facts.container
    chain = [p.path for p in c.parents]
    ev = (_container_evidence(c, subtype=c.subtype, parents=chain),)
    if c.is_differencing or chain:
        where = f" (parents: {' -> '.join(chain)})" if chain else ""
        return Outcome(
            Status.FAIL,
            f"the image is a differencing disk{where}: merge the chain into one disk before converting and uploading",
            "a self-contained disk",
            "differencing",
            ev,
            remediation=_merge_fix(c),
        )
    return Outcome(
        Status.PASS, "the image is self-contained (no parent)", "a self-contained disk", c.subtype or c.format, ev
    )


@rule(
    DISK,
    id="disk.vhd_footer_valid",
    title="VHD footer is structurally valid (cookie, version, checksum)",
    severity=Severity.REQUIRED,
    rationale="Azure reads the 512-byte footer at the end of the page blob; a bad cookie, version or checksum "
    "makes the upload unusable. Test-VHD checks the same.",
    source='intro: "You can validate your VHD or VHDX file by referring to Test-VHD"',
    baselines=CURRENT_ONLY,
    remediation="Test-VHD -Path <image.vhd>",
    disk_roles=BOTH_ROLES,
)
def check_vhd_footer(ctx: AuditContext) -> Outcome:
    c = ctx.facts.container
    if _truncated_vhd(c):
        ev = (_container_evidence(c, note="; ".join(c.warnings), footer=None, file_size=c.file_size),)
        return Outcome(Status.FAIL, _truncated_text(c), "valid", "no footer", ev, remediation=_truncated_fix(c))
    if c.format != "vhd":
        raise NotApplicable(f"the image is {c.format}; only a VHD has a footer")
    checks = {
        "cookie conectix": c.footer_cookie_valid,
        "checksum": c.footer_checksum_valid,
        "footer at the end of the file": c.footer_at_end,
    }
    if c.subtype in ("dynamic", "differencing"):
        checks["footer copy at offset 0 matches"] = c.footer_copy_matches
        checks["dynamic header checksum"] = c.dynamic_header_checksum_valid
    version_ok = None if c.footer_version is None else c.footer_version in ("1.0", "0x00010000", "65536")
    checks["format version 1.0"] = version_ok
    ev = (
        _container_evidence(
            c, note="; ".join(c.warnings), **{k: v for k, v in checks.items()}, footer_version=c.footer_version
        ),
    )
    bad = [name for name, ok in checks.items() if ok is False]
    unknown = [name for name, ok in checks.items() if ok is None]
    if bad:
        return Outcome(
            Status.FAIL,
            "the VHD footer is invalid: " + ", ".join(bad) + " wrong",
            "valid",
            bad,
            ev,
            remediation=f"Test-VHD -Path {ps_arg(_name(c.path))}",
        )
    if unknown:
        raise NotChecked(
            "the container layer did not report " + ", ".join(unknown),
            "footer fields not established: " + ", ".join(unknown),
            expected="valid",
            evidence=ev,
        )
    return Outcome(
        Status.PASS, "the VHD footer is valid (cookie, version 1.0, checksum, position)", "valid", "valid", ev
    )


def _resize(c: ContainerFacts, target: int) -> str:
    """Grow the disk to ``target`` bytes: Resize-VHD on a VHD or VHDX, qemu-img resize (in place: on a copy)
    on the other formats."""
    name = _name(c.path)
    if c.format in ("vhd", "vhdx"):
        return f"Resize-VHD -Path {ps_arg(name)} -SizeBytes {target}"
    return f"qemu-img resize -f {QEMU_FORMATS.get(c.format, c.format)} {_sh(name)} {target}"


@rule(
    DISK,
    id="disk.size_aligned_1mib",
    title="Virtual size is a multiple of 1 MiB; fixed VHD file size = virtual size + 512",
    severity=Severity.REQUIRED,
    rationale="Azure requires the virtual size of every uploaded VHD to be a whole number of MiB. Tools that "
    "size a VHD from its CHS geometry (old qemu-img without force_size, Disk2VHD, VirtualBox) "
    "round the size to cylinders and miss the MiB boundary.",
    source=CONVERT_SECTION + " > Resize",
    baselines=CURRENT_ONLY,
    remediation="Resize-VHD -Path <image.vhd> -SizeBytes <the virtual size rounded up to a whole MiB>",
    disk_roles=BOTH_ROLES,
)
def check_size_aligned(ctx: AuditContext) -> Outcome:
    c = ctx.facts.container
    size = c.virtual_size
    actual: dict[str, object] = {"virtual_size": size, "file_size": c.file_size}
    problems: list[str] = []
    if size % MiB:
        target = -(-size // MiB) * MiB
        text = f"the virtual size {_fmt_size(size)} is not a whole number of MiB"
        if c.geometry_size is not None and c.geometry_size == size and c.geometry:
            cyl, heads, spt = c.geometry
            text += (
                f"; it equals the CHS geometry {cyl}*{heads}*{spt}*512, so the tool that made the VHD "
                "rounded the size to whole cylinders"
            )
        elif c.original_size is not None and c.original_size != size:
            text += f" (original size {_fmt_size(c.original_size)})"
        text += f"; resize to {target} bytes: `{_resize(c, target)}`"
        problems.append(text)
        actual["suggested_size"] = target
    if c.format == "vhd" and c.subtype == "fixed" and c.file_size != size + 512:
        problems.append(
            f"the file is {c.file_size} bytes, the virtual size + 512 is {size + 512} "
            f"(difference {c.file_size - size - 512:+d} bytes)"
        )
    ev = (_evidence_of(c, actual),)
    if problems:
        fixes = [_resize(c, -(-size // MiB) * MiB)] if size % MiB else []
        if len(problems) > len(fixes):
            # the file is not size + 512: rewrite it as a fixed VHD of the right length
            fixes.append(_conversion(c))
        return Outcome(Status.FAIL, "; ".join(problems), "size % 1 MiB == 0", actual, ev, remediation="\n".join(fixes))
    extra = " and the file is size + 512 bytes" if c.format == "vhd" and c.subtype == "fixed" else ""
    return Outcome(
        Status.PASS,
        f"the virtual size {_fmt_size(size)} is a whole number of MiB{extra}",
        "size % 1 MiB == 0",
        actual,
        ev,
    )


@rule(
    DISK,
    id="disk.os_max_size",
    title="OS disk virtual size within the limit for its generation",
    severity=Severity.REQUIRED,
    rationale="Current doc: a generation 1 OS disk is at most 2 TiB (2,048 GiB); generation 2 allows more "
    "(generation-2 capability table), capped here at the 32,767 GiB managed-disk limit. The 2017 "
    "doc allowed at most 1,023 GB (read as GiB, the unit Azure sizes disks in).",
    source="intro",
    remediation="Shrink the guest partition and Resize-VHD -ToMinimumSize / -SizeBytes; or use a generation 2 "
    "(GPT/UEFI) image for more than 2 TiB",
)
def check_os_max_size(ctx: AuditContext) -> Outcome:
    facts = ctx.facts
    size = facts.container.virtual_size
    gen = facts.generation
    if ctx.profile == "azure-2017":
        limit, why = OS_MAX_2017, "the 2017 doc's 1,023 GB"
    elif gen == 2:
        limit, why = DATA_MAX, "the 32,767 GiB managed-disk limit (generation 2)"
    else:
        limit, why = OS_MAX_GEN1, "2 TiB for a generation 1 OS disk"
    ev = (_container_evidence(facts.container, virtual_size=size, generation=gen, limit=limit),)
    if size > limit:
        more = " (a generation 2 image may be larger)" if gen != 2 and ctx.profile != "azure-2017" else ""
        return Outcome(Status.FAIL, f"the OS disk is {_fmt_size(size)}, over {why}{more}", f"<= {limit}", size, ev)
    if gen is None and ctx.profile != "azure-2017":
        return Outcome(
            Status.PASS, f"the OS disk is {_fmt_size(size)}, within 2 TiB (any generation)", f"<= {limit}", size, ev
        )
    return Outcome(Status.PASS, f"the OS disk is {_fmt_size(size)}, within {why}", f"<= {limit}", size, ev)


@rule(
    DISK,
    id="disk.data_max_size",
    title="Data disk virtual size <= 32,767 GiB",
    severity=Severity.REQUIRED,
    rationale="The largest managed data disk is 32,767 GiB.",
    source="intro",
    baselines=CURRENT_ONLY,
    remediation="Split the data over several disks, or shrink the volume and Resize-VHD -SizeBytes",
    disk_roles=("data",),
)
def check_data_max_size(ctx: AuditContext) -> Outcome:
    c = ctx.facts.container
    ev = (_container_evidence(c, virtual_size=c.virtual_size, limit=DATA_MAX),)
    if c.virtual_size > DATA_MAX:
        return Outcome(
            Status.FAIL,
            f"the data disk is {_fmt_size(c.virtual_size)}, over 32,767 GiB",
            f"<= {DATA_MAX}",
            c.virtual_size,
            ev,
        )
    return Outcome(
        Status.PASS,
        f"the data disk is {_fmt_size(c.virtual_size)}, within 32,767 GiB",
        f"<= {DATA_MAX}",
        c.virtual_size,
        ev,
    )


def _esp(parts: list[PartitionFacts]) -> PartitionFacts | None:
    for p in parts:
        if p.type_name == "EFI System" or p.type_id.lower() in ("c12a7328-f81f-11d2-ba4b-00a0c93ec93b", "0xef"):
            return p
    return None


@rule(
    DISK,
    id="disk.generation",
    title="Partitioning matches a supported VM generation (Gen1 = MBR/BIOS, Gen2 = GPT/UEFI)",
    severity=Severity.REQUIRED,
    rationale="The generation cannot be changed by converting the disk: an MBR disk boots only as generation 1, "
    "a GPT disk with an EFI system partition only as generation 2 (create the image with "
    "HyperVGeneration V2). The 2017 doc supported generation 1 only.",
    source="intro",
    remediation="Upload an MBR disk as generation 1; a GPT/UEFI disk as generation 2 "
    "(New-AzDiskConfig -HyperVGeneration V2 / az disk create --hyper-v-generation V2)",
)
def check_generation(ctx: AuditContext) -> Outcome:
    facts = ctx.facts
    style = facts.partition_style
    esp = _esp(facts.partitions)
    ev = (
        Evidence(
            source="facts",
            key="partition table",
            actual={"style": style, "generation": facts.generation, "esp": esp.index if esp else None},
            present=True,
        ),
    )
    if style == "mbr":
        return Outcome(Status.PASS, "MBR partition table: a generation 1 (BIOS) image", "gen1 or gen2", "gen1", ev)
    if style == "gpt":
        if esp is None:
            return Outcome(
                Status.FAIL,
                "GPT partition table without an EFI system partition: boots neither as generation 1 nor 2",
                "MBR, or GPT with an ESP",
                "gpt without ESP",
                ev,
            )
        if ctx.profile == "azure-2017":
            return Outcome(
                Status.FAIL,
                "GPT/UEFI disk: a generation 2 image, which the 2017 doc does not support (generation 1 only)",
                "gen1",
                "gen2",
                ev,
            )
        return Outcome(
            Status.PASS,
            "GPT partition table with an EFI system partition: a generation 2 (UEFI) "
            "image; create the Azure disk/image with HyperVGeneration V2",
            "gen1 or gen2",
            "gen2",
            ev,
        )
    if style == "none":
        return Outcome(
            Status.FAIL,
            "the disk has no partition table (a bare file system): it cannot boot",
            "MBR or GPT",
            "none",
            ev,
        )
    raise NotChecked(
        "no partition style in the image facts",
        "the partition table was not established",
        expected="MBR or GPT",
        evidence=ev,
    )


@rule(
    DISK,
    id="disk.boot_files_present",
    title="Boot store where the detected generation's firmware looks for it",
    severity=Severity.REQUIRED,
    rationale="Generation 1 boots the active MBR partition's \\bootmgr with \\Boot\\BCD; generation 2 the ESP's "
    "\\EFI\\Microsoft\\Boot\\bootmgfw.efi with \\EFI\\Microsoft\\Boot\\BCD. Derived, not in the doc.",
    source="derived (boot files consistent with the generation)",
    remediation="bcdboot C:\\Windows /s <system partition> /f ALL (inside the VM), and mark the system partition "
    "active on an MBR disk (diskpart: active)",
)
def check_boot_files(ctx: AuditContext) -> Outcome:
    facts = ctx.facts
    if facts.boot_partition is None or not facts.bcd_path:
        return Outcome(
            Status.FAIL,
            "no boot store (\\Boot\\BCD or \\EFI\\Microsoft\\Boot\\BCD) was found on any partition",
            "a BCD store",
            None,
            (Evidence(source="facts", key="boot partition", actual=None),),
        )
    part = next((p for p in facts.partitions if p.index == facts.boot_partition), None)
    path = facts.bcd_path.replace("/", "\\").lstrip("\\")
    actual = {"partition": facts.boot_partition, "bcd_path": path, "active": part.bootable if part else None}
    ev = (
        Evidence(source="facts", key=f"partition {facts.boot_partition}", value_name=path, actual=actual, present=True),
    )
    uefi = path.lower().startswith("efi\\")
    if facts.partition_style == "mbr":
        if uefi:
            return Outcome(
                Status.WARNING,
                f"the MBR disk's store is {path}, a UEFI path; generation 1 boots "
                "\\Boot\\BCD from the active partition",
                "\\Boot\\BCD",
                path,
                ev,
            )
        if part is not None and not part.bootable and len(facts.partitions) > 1:
            return Outcome(
                Status.FAIL,
                f"the store is on partition {part.index}, which is not marked active: a BIOS does not boot it",
                "an active partition",
                actual,
                ev,
            )
        return Outcome(Status.PASS, f"\\{path} on the active partition {facts.boot_partition}", "\\Boot\\BCD", path, ev)
    if facts.partition_style == "gpt":
        esp = _esp(facts.partitions)
        if not uefi or esp is None or esp.index != facts.boot_partition:
            return Outcome(
                Status.WARNING,
                f"the GPT disk's store is \\{path} on partition {facts.boot_partition}; "
                "UEFI firmware boots \\EFI\\Microsoft\\Boot\\BCD on the ESP",
                "\\EFI\\Microsoft\\Boot\\BCD on the ESP",
                actual,
                ev,
            )
        return Outcome(Status.PASS, f"\\{path} on the EFI system partition", "\\EFI\\Microsoft\\Boot\\BCD", path, ev)
    raise NotChecked(
        "no partition style in the image facts", "the partition style is not known", actual=actual, evidence=ev
    )


@rule(
    DISK,
    id="disk.os_volume_not_bitlocker",
    title="OS volume is not BitLocker-encrypted",
    severity=Severity.REQUIRED,
    rationale="Sysprep needs the drives fully decrypted, and an Azure VM has no TPM protector for an uploaded "
    "BitLocker volume: it stops at the recovery-key prompt.",
    source='Determine when to use Sysprep: "Sysprep requires the drives to be fully decrypted"',
    baselines=CURRENT_ONLY,
    remediation="manage-bde -off C:  (then wait for full decryption) before sysprep",
    disk_roles=BOTH_ROLES,
)
def check_bitlocker(ctx: AuditContext) -> Outcome:
    facts = ctx.facts
    enc = [p.index for p in facts.partitions if p.encrypted or p.filesystem == "bitlocker"]
    ev = (Evidence(source="facts", key="partitions", actual={"encrypted": enc}, present=True),)
    if enc or facts.bitlocker:
        return Outcome(
            Status.FAIL,
            f"BitLocker-encrypted partition(s): {enc or 'yes'}; decrypt before sysprep and upload",
            "no encrypted volume",
            enc,
            ev,
        )
    if not facts.partitions:
        raise NotChecked("no partition facts", "no partitions were read", expected="no encrypted volume", evidence=ev)
    return Outcome(
        Status.PASS, "no partition carries the BitLocker signature (-FVE-FS-)", "no encrypted volume", [], ev
    )


SESSION_MANAGER = r"SYSTEM\CurrentControlSet\Control\Session Manager"


@rule(
    DISK,
    id="disk.ntfs_clean",
    title="NTFS volume not marked dirty (chkdsk clean)",
    severity=Severity.RECOMMENDED,
    rationale="A dirty volume makes the first boot in Azure run chkdsk (slow, and it can fail the provisioning "
    "timeout). Only the dirty bit and a scheduled autochk are visible offline; both are the evidence, so "
    "a clean volume whose SYSTEM hive (BootExecute) cannot be read is not checked.",
    source="Verify the VM: chkdsk",
    remediation="chkdsk.exe /f",
    hives=("SYSTEM",),
)
def check_ntfs_clean(ctx: AuditContext) -> Outcome:
    facts = ctx.facts
    part = None
    if facts.windows_partition is not None:
        part = next((p for p in facts.partitions if p.index == facts.windows_partition), None)
    dirty = part.ntfs_dirty if part is not None and part.ntfs_dirty is not None else facts.ntfs_dirty
    try:
        read: Read | None = read_value(ctx, SESSION_MANAGER, "BootExecute")
        system_why = ""
    except HiveUnavailable as err:
        read, system_why = None, err.reason
    boot_exec = read.value if read is not None else None
    scheduled: list[str] = []
    if boot_exec is not None and isinstance(boot_exec.data, list):
        scheduled = [s for s in boot_exec.data if "autochk" in s.lower() and s.strip().lower() != "autocheck autochk *"]
    ev = [
        Evidence(
            source="facts",
            key="Windows volume $Volume flags",
            value_name="VOLUME_IS_DIRTY",
            actual=dirty,
            present=dirty is not None,
        )
    ]
    if read is not None:
        ev.append(read.evidence)
    problems = []
    if dirty:
        problems.append("the Windows NTFS volume is marked dirty")
    if scheduled:
        problems.append(f"a chkdsk is scheduled at boot ({'; '.join(scheduled)})")
    if problems:
        return Outcome(Status.WARNING, "; ".join(problems) + ": run chkdsk /f in the VM", "clean", dirty, tuple(ev))
    if dirty is None:
        raise NotChecked(
            "no NTFS dirty flag in the image facts",
            "the Windows volume's dirty flag was not read",
            expected="clean",
            evidence=tuple(ev),
        )
    if system_why:
        # a chkdsk scheduled in BootExecute runs at the first boot just as a dirty volume does: the clean flag
        # alone does not show that no chkdsk will run
        raise NotChecked(
            f"BootExecute not read: {system_why}",
            "the Windows NTFS volume is not marked dirty; not checked, whether a "
            f"chkdsk is scheduled at boot (BootExecute) is unknown: {system_why}",
            expected="clean",
            actual=False,
            evidence=tuple(ev),
        )
    return Outcome(Status.PASS, "the Windows NTFS volume is clean", "clean", False, tuple(ev))


@rule(
    DISK,
    id="disk.vhdx_logical_sector_512",
    title="VHDX logical sector size is 512 (convertible to VHD)",
    severity=Severity.ADVISORY,
    rationale="The VHD format has 512-byte sectors only; a 4K-native VHDX cannot be converted with Convert-VHD "
    "and its file systems would not match. Derived, not in the doc.",
    source="derived (VHD format has 512-byte sectors)",
    baselines=CURRENT_ONLY,
    remediation="Recreate the disk with 512-byte logical sectors (New-VHD -LogicalSectorSizeBytes 512) and copy "
    "the volumes over",
    disk_roles=BOTH_ROLES,
)
def check_vhdx_sector(ctx: AuditContext) -> Outcome:
    c = ctx.facts.container
    if c.format != "vhdx":
        raise NotApplicable(f"the image is {c.format}, not a VHDX")
    ev = (_container_evidence(c, logical_sector_size=c.logical_sector_size),)
    if c.logical_sector_size != 512:
        return Outcome(
            Status.WARNING,
            f"the VHDX has {c.logical_sector_size}-byte logical sectors; a VHD has 512",
            512,
            c.logical_sector_size,
            ev,
        )
    return Outcome(Status.PASS, "the VHDX has 512-byte logical sectors", 512, 512, ev)


@rule(
    DISK,
    id="disk.vhdx_log_clean",
    title="VHDX has no unapplied log entries",
    severity=Severity.RECOMMENDED,
    rationale="A VHDX with a pending log was not closed cleanly; the audit read it with the log's changes "
    "applied in memory, but a converter that ignores the log would copy stale metadata. Derived from "
    "[MS-VHDX] 2.3 (log).",
    source="derived ([MS-VHDX] log replay)",
    baselines=CURRENT_ONLY,
    remediation="Attach and detach the VHDX once on a Hyper-V host (Mount-VHD / Dismount-VHD), which applies the "
    "log, before Convert-VHD",
    disk_roles=BOTH_ROLES,
)
def check_vhdx_log(ctx: AuditContext) -> Outcome:
    c = ctx.facts.container
    if c.format != "vhdx":
        raise NotApplicable(f"the image is {c.format}, not a VHDX")
    replay = c.log_replay or {}
    note = ""
    if replay.get("replayed"):
        first, last = replay["sequence_first"], replay["sequence_last"]
        seq = f"sequence {first}" if first == last else f"sequences {first} to {last}"
        count = replay["entries"]
        note = (
            f"{count} log entr{'y' if count == 1 else 'ies'} ({seq}, {replay['bytes']} bytes) replayed in "
            "memory; the file is unchanged"
        )
    elif replay:
        note = f"not replayed, because {replay['reason']}"
    ev = (_container_evidence(c, note=note, log_pending=c.log_pending, log_guid=c.log_guid),)
    if c.log_pending and replay.get("replayed"):
        return Outcome(
            Status.WARNING,
            f"the VHDX log (guid {c.log_guid}) holds updates the file may lack: "
            f"{note}; a converter that ignores the log may copy the disk without them",
            "no pending log",
            "pending (replayed)",
            ev,
        )
    if c.log_pending:
        return Outcome(
            Status.WARNING,
            f"the VHDX log (guid {c.log_guid}) is marked pending" + (f"; {note}" if note else ""),
            "no pending log",
            "pending",
            ev,
        )
    if c.log_pending is None:
        raise NotChecked(
            "no log state in the container facts",
            "the VHDX log state was not established",
            expected="no pending log",
            evidence=ev,
        )
    return Outcome(Status.PASS, "the VHDX log is empty", "no pending log", "clean", ev)


@rule(
    DISK,
    id="disk.first_partition_offset",
    title="First partition starts at 1 MiB or later (aligned)",
    severity=Severity.ADVISORY,
    rationale="Windows since Vista aligns the first partition at 1 MiB; a partition at sector 63 (XP/2003-era "
    "tools, some P2V converters) is misaligned on Azure storage and costs I/O. Derived, not in the doc.",
    source="derived (partition alignment)",
    baselines=CURRENT_ONLY,
    remediation="Recreate the partition layout aligned at 1 MiB (or convert with a tool that realigns, e.g. "
    "Disk2VHD from a current Windows)",
    disk_roles=BOTH_ROLES,
)
def check_first_partition(ctx: AuditContext) -> Outcome:
    parts = [p for p in ctx.facts.partitions if p.scheme in ("mbr", "gpt")]
    if not parts:
        raise NotApplicable("the disk has no partition table")
    first = min(parts, key=lambda p: p.offset)
    ev = (
        Evidence(
            source="facts", key=f"partition {first.index}", value_name="offset", actual=first.offset, present=True
        ),
    )
    if first.offset < MiB:
        return Outcome(
            Status.WARNING,
            f"the first partition starts at byte {first.offset} (sector {first.offset // 512}), before 1 MiB",
            f">= {MiB}",
            first.offset,
            ev,
        )
    if first.offset % MiB:
        return Outcome(
            Status.WARNING,
            f"the first partition starts at byte {first.offset}, not on a MiB boundary",
            f"multiple of {MiB}",
            first.offset,
            ev,
        )
    return Outcome(
        Status.PASS, f"the first partition starts at {first.offset // MiB} MiB", f">= {MiB}", first.offset, ev
    )
