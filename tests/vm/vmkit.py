"""Builders for the VM tests: disk facts by hand, a SYSTEM hive with MountedDevices, and hive files for images.

MountedDevices data as Windows writes it: 12 bytes (MBR disk signature u32 + partition byte offset u64,
little-endian) or ``DMIO:ID:`` + the GPT partition GUID in mixed-endian order.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azvhdaudit.facts import ContainerFacts, ImageFacts, PartitionFacts
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView, RegType
from azvhdaudit.rules.base import AuditOptions
from azvhdaudit.rules.vm import DiskInfo, VMContext

MiB = 1024 * 1024
GiB = 1024 * MiB
MM = r"ControlSet001\Control\Session Manager\Memory Management"

OS_SIG = 0x0051D15C
DATA_SIG = 0xDA7A0001
UNKNOWN_SIG = 0xDA7A0099
DATA_PART_GUID = "00000000-0000-0000-0000-000000000001"


def mbr_value(signature: int, offset: int = MiB) -> bytes:
    return struct.pack("<IQ", signature, offset)


def gpt_value(guid: str) -> bytes:
    return b"DMIO:ID:" + uuid.UUID(guid).bytes_le


def letter(x: str) -> str:
    return f"\\DosDevices\\{x.upper()}:"


def part(
    index: int = 0,
    offset: int = MiB,
    size: int = 6 * MiB,
    scheme: str = "mbr",
    guid: str | None = None,
    filesystem: str = "ntfs",
) -> PartitionFacts:
    type_id = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7" if scheme == "gpt" else "0x07"
    return PartitionFacts(
        index=index,
        scheme=scheme,
        offset=offset,
        size=size,
        type_id=type_id,
        type_name="Basic data" if scheme == "gpt" else "NTFS/exFAT",
        guid=guid,
        filesystem=filesystem,
    )


def disk_facts(
    name: str,
    style: str = "mbr",
    signature: int | None = None,
    disk_guid: str | None = None,
    partitions: list[PartitionFacts] | None = None,
    size: int = 8 * MiB,
    generation: int | None = None,
    windows_partition: int | None = None,
) -> ImageFacts:
    container = ContainerFacts(path=name, format="vhd", subtype="fixed", virtual_size=size, file_size=size + 512)
    if partitions is None:
        partitions = [part(scheme=style, guid=DATA_PART_GUID if style == "gpt" else None)]
    return ImageFacts(
        source=name,
        container=container,
        partition_style=style if partitions else None,
        mbr_disk_signature=signature,
        gpt_disk_guid=disk_guid,
        partitions=partitions,
        generation=generation,
        windows_partition=windows_partition,
    )


def os_facts(size: int = 20 * MiB, generation: int = 1) -> ImageFacts:
    return disk_facts("os.vhd", "mbr", OS_SIG, size=size, generation=generation, windows_partition=0)


def data_mbr(signature: int = DATA_SIG, offset: int = MiB, size: int = 8 * MiB) -> ImageFacts:
    return disk_facts("data-mbr.vhd", "mbr", signature, partitions=[part(offset=offset)], size=size)


def data_gpt(guid: str = DATA_PART_GUID, disk_guid: str = "11111111-2222-3333-4444-555555555555") -> ImageFacts:
    return disk_facts("data-gpt.vhd", "gpt", disk_guid=disk_guid, partitions=[part(scheme="gpt", guid=guid)])


def system_view(mounted: Mapping[str, bytes] | None, paging: Any = None) -> RegistryView:
    """A SYSTEM hive with ``MountedDevices`` (``None``: no hive at all) and optionally PagingFiles."""
    if mounted is None:
        return RegistryView(hives={}, unavailable={"SYSTEM": "the SYSTEM hive is not present (test)"})
    tree: dict[str, dict[str, Any]] = {"Select": {"Current": 1, "Default": 1}, "MountedDevices": dict(mounted), MM: {}}
    if paging is not None:
        tree[MM]["PagingFiles"] = paging
    return RegistryView(hives={"SYSTEM": MemoryHive.build("SYSTEM", tree)})


def vm_context(
    mounted: Mapping[str, bytes] | None,
    data: Mapping[str, ImageFacts],
    *,
    os: ImageFacts | None = None,
    paging: Any = None,
    profile: str = "azure",
) -> VMContext:
    facts = os or os_facts()
    disks = (DiskInfo("os", "os", facts),) + tuple(
        DiskInfo(f"data{n}:{name}", "data", f) for n, (name, f) in enumerate(data.items(), 1)
    )
    return VMContext(
        registry=system_view(mounted, paging),
        facts=facts,
        profile=profile,
        options=AuditOptions(role="os"),
        disks=disks,
    )


# --- a SYSTEM hive file for images (hivexregedit) ------------------------------------------------------


def _reg_hex(data: bytes) -> str:
    return ",".join(f"{b:02x}" for b in data)


def _reg_name(name: str) -> str:
    return '"' + name.replace("\\", "\\\\") + '"'


def system_hive_file(builder: Any, out: Path, mounted: Mapping[str, bytes], paging: list[str] | None = None) -> Path:
    """A SYSTEM hive file made by hivex: Select, an empty ControlSet001 and ``MountedDevices``."""
    root = "HKEY_LOCAL_MACHINE\\SYSTEM"
    lines = [
        "Windows Registry Editor Version 5.00",
        "",
        f"[{root}\\Select]",
        '"Current"=dword:00000001',
        '"Default"=dword:00000001',
        "",
        f"[{root}\\ControlSet001]",
        "",
        f"[{root}\\ControlSet001\\Control]",
        "",
        f"[{root}\\ControlSet001\\Control\\Session Manager]",
        "",
        f"[{root}\\ControlSet001\\Control\\Session Manager\\Memory Management]",
    ]
    if paging is not None:
        multi = ("\0".join(paging) + "\0\0").encode("utf-16-le")
        lines.append(f'"PagingFiles"=hex({RegType.MULTI_SZ:x}):{_reg_hex(multi)}')
    lines += ["", f"[{root}\\MountedDevices]"]
    lines += [f"{_reg_name(name)}=hex:{_reg_hex(data)}" for name, data in mounted.items()]
    reg = out.with_suffix(".reg")
    reg.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out.write_bytes(builder.empty_hive("SYSTEM"))
    builder.run("hivexregedit", "--merge", "--prefix", root, out, reg)
    reg.unlink()
    return out
