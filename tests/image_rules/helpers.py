"""Builders for the image-level rule tests: BCD stores, a fake guest file system, facts, contexts."""

from __future__ import annotations

import io
import lzma
import struct
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dissect.regf import RegistryHive

from azvhdaudit.facts import ContainerFacts, ImageFacts, OSFacts, PartitionFacts
from azvhdaudit.registry.memory import MemoryHive, MemoryKey
from azvhdaudit.registry.model import Hive, RegistryView, RegType
from azvhdaudit.report import Outcome
from azvhdaudit.rules.base import AuditContext, AuditOptions, all_rules

REALDATA = Path(__file__).resolve().parent.parent / "data" / "realdata"

BOOTMGR = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
LOADER = "{11111111-2222-3333-4444-555555555555}"
EMS = "{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}"
GLOBALSETTINGS = "{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}"
BOOTLOADERSETTINGS = "{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}"

DISK_GUID = "a994230b-5e09-487d-8d48-719ecd4d78ca"
PART_GUID = "8e0f2c38-e4ea-47ba-b7fc-9d8c74dccf0b"
MBR_SIG = 0xB3EBA8F1
MBR_OFFSET = 1048576 * 501


def hive_from_regf(name: str, data: bytes) -> MemoryHive:
    """A MemoryHive with the same keys and (raw, typed) values as the regf hive ``data``."""
    regf = RegistryHive(io.BytesIO(data))
    hive = MemoryHive(name, source=f"realdata/{name}")

    def copy(src: Any, dst: MemoryKey) -> None:
        for value in src.values():
            dst.set(value.name, (value.type, bytes(value.data)))
        for sub in src.subkeys():
            copy(sub, dst.add_key(sub.name))

    copy(regf.root(), hive.root())
    return hive


def load_real_bcd() -> MemoryHive:
    with lzma.open(REALDATA / "BCD.xz") as fh:
        return hive_from_regf("BCD", fh.read())


# --- building BCD stores ---------------------------------------------------------------------


def gpt_device(part_guid: str = PART_GUID, disk_guid: str = DISK_GUID) -> bytes:
    """A ``partition=`` device element for a GPT partition, in the stored layout."""
    body = uuid.UUID(part_guid).bytes_le + struct.pack("<II", 0, 0) + uuid.UUID(disk_guid).bytes_le + bytes(16)
    return bytes(16) + struct.pack("<IIII", 6, 0, 16 + len(body), 0) + body


def mbr_device(offset: int = MBR_OFFSET, signature: int = MBR_SIG) -> bytes:
    body = struct.pack("<Q", offset) + bytes(8) + struct.pack("<II", 0, 1) + struct.pack("<I", signature)
    body += bytes(12) + bytes(16)
    return bytes(16) + struct.pack("<IIII", 6, 0, 16 + len(body), 0) + body


def boot_device() -> bytes:
    return bytes(16) + struct.pack("<IIII", 5, 0, 0x48, 0) + bytes(0x38)


def boolean(v: bool) -> tuple[int, bytes]:
    return (RegType.BINARY, b"\x01" if v else b"\x00")


def integer(v: int) -> tuple[int, bytes]:
    return (RegType.BINARY, v.to_bytes(8, "little"))


def element_tree(objects: Mapping[str, tuple[int, Mapping[int, Any]]]) -> dict[str, dict[str, Any]]:
    """``{guid: (type, {element id: data})}`` -> a MemoryHive tree."""
    tree: dict[str, dict[str, Any]] = {"Description": {"KeyName": "BCD00000000"}}
    for guid, (otype, elements) in objects.items():
        tree[f"Objects\\{guid}\\Description"] = {"Type": otype}
        tree[f"Objects\\{guid}\\Elements"] = {}
        for eid, data in elements.items():
            tree[f"Objects\\{guid}\\Elements\\{eid:08X}"] = {"Element": data}
    return tree


def good_bcd_objects(device: bytes | None = None) -> dict[str, tuple[int, dict[int, Any]]]:
    """A store configured as the current doc asks (every bcdedit line run)."""
    dev = device if device is not None else gpt_device()
    return {
        BOOTMGR: (
            0x10100002,
            {
                0x11000001: (RegType.BINARY, gpt_device(PART_GUID.replace("8e", "11", 1))),
                0x12000004: "Windows Boot Manager",
                0x14000006: [GLOBALSETTINGS],
                0x23000003: LOADER,
                0x24000001: [LOADER],
                0x25000004: integer(5),
                0x26000020: boolean(True),
                0x16000020: boolean(True),
                0x1500004B: integer(1),
            },
        ),
        LOADER: (
            0x10200003,
            {
                0x11000001: (RegType.BINARY, dev),
                0x21000001: (RegType.BINARY, dev),
                0x12000002: "\\Windows\\system32\\winload.efi",
                0x12000004: "Windows Server",
                0x14000006: [BOOTLOADERSETTINGS],
                0x16000009: boolean(False),
                0x1500004B: integer(1),
                0x250000E0: integer(1),
                0x260000B0: boolean(True),
                0x22000002: "\\Windows",
            },
        ),
        BOOTLOADERSETTINGS: (0x20200003, {0x14000006: [GLOBALSETTINGS]}),
        GLOBALSETTINGS: (0x20100000, {0x14000006: [EMS]}),
        EMS: (0x20100000, {0x16000020: boolean(False), 0x15000022: integer(1), 0x15000023: integer(115200)}),
    }


def build_bcd(objects: Mapping[str, tuple[int, Mapping[int, Any]]]) -> MemoryHive:
    return MemoryHive.build("BCD", element_tree(objects), source="EFI\\Microsoft\\Boot\\BCD")


# --- a fake guest file system ----------------------------------------------------------------


class FakeFiles:
    """GuestFiles over a dict: path -> bytes, or path -> (a, b, c, d) version tuple for a PE file,
    or path -> None for a directory. Paths are case-insensitive, backslash separated."""

    def __init__(self, entries: Mapping[str, bytes | tuple[int, int, int, int] | None] | None = None) -> None:
        self.entries = {self._norm(k): v for k, v in (entries or {}).items()}

    @staticmethod
    def _norm(path: str) -> str:
        return path.replace("/", "\\").strip("\\").lower()

    def _dirs(self) -> set[str]:
        dirs = set()
        for key, value in self.entries.items():
            parts = key.split("\\")
            for i in range(1, len(parts)):
                dirs.add("\\".join(parts[:i]))
            if value is None:
                dirs.add(key)
        return dirs

    def exists(self, path: str) -> bool:
        p = self._norm(path)
        return p in self.entries or p in self._dirs()

    def is_dir(self, path: str) -> bool:
        return self._norm(path) in self._dirs()

    def listdir(self, path: str) -> list[str] | None:
        p = self._norm(path)
        if p not in self._dirs():
            return None
        names = set()
        for key in list(self.entries) + list(self._dirs()):
            if key.startswith(p + "\\"):
                names.add(key[len(p) + 1 :].split("\\")[0])
        return sorted(names)

    def read(self, path: str, max_size: int = 16 * 1024 * 1024) -> bytes | None:
        value = self.entries.get(self._norm(path))
        if isinstance(value, bytes):
            return value[:max_size]
        if isinstance(value, tuple):
            return b"MZ"
        return None

    def file_version(self, path: str) -> tuple[int, int, int, int] | None:
        value = self.entries.get(self._norm(path))
        return value if isinstance(value, tuple) else None


# --- facts and contexts ----------------------------------------------------------------------


def container(**kw: Any) -> ContainerFacts:
    size = kw.pop("virtual_size", 30 * 1024**3)
    base: dict[str, Any] = dict(
        path="disk.vhd",
        format="vhd",
        subtype="fixed",
        virtual_size=size,
        file_size=size + 512,
        footer_cookie_valid=True,
        footer_checksum_valid=True,
        footer_version="1.0",
        footer_at_end=True,
        creator_app="win ",
        geometry=(65535, 16, 255),
        geometry_size=65535 * 16 * 255 * 512,
        original_size=size,
    )
    base.update(kw)
    return ContainerFacts(**base)


def gpt_partitions() -> list[PartitionFacts]:
    return [
        PartitionFacts(
            index=0,
            scheme="gpt",
            offset=1048576,
            size=100 * 1048576,
            type_id="c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
            type_name="EFI System",
            guid="0be9fc2c-9764-4b15-896e-66d154619b4d",
            filesystem="fat",
        ),
        PartitionFacts(
            index=1,
            scheme="gpt",
            offset=101 * 1048576,
            size=16 * 1048576,
            type_id="e3c9e316-0b5c-4db8-817d-f92df00215ae",
            type_name="Microsoft reserved",
            guid="b1352d5d-d560-4b2c-9f3e-000000000001",
        ),
        PartitionFacts(
            index=2,
            scheme="gpt",
            offset=117 * 1048576,
            size=20 * 1024**3,
            type_id="ebd0a0a2-b9e5-4433-87c0-68b6b72699c7",
            type_name="Basic data",
            guid=PART_GUID,
            filesystem="ntfs",
            ntfs_dirty=False,
        ),
    ]


def mbr_partitions() -> list[PartitionFacts]:
    return [
        PartitionFacts(
            index=0,
            scheme="mbr",
            offset=1048576,
            size=500 * 1048576,
            type_id="0x07",
            type_name="NTFS/exFAT",
            bootable=True,
            filesystem="ntfs",
        ),
        PartitionFacts(
            index=1,
            scheme="mbr",
            offset=MBR_OFFSET,
            size=20 * 1024**3,
            type_id="0x07",
            type_name="NTFS/exFAT",
            filesystem="ntfs",
            ntfs_dirty=False,
        ),
    ]


SERVER_2019 = OSFacts(
    product_name="Windows Server 2019 Datacenter",
    edition_id="ServerDatacenter",
    display_version=None,
    current_version="6.3",
    build=17763,
    ubr=5458,
    installation_type="Server",
    product_type="ServerNT",
    architecture="AMD64",
)


def image_facts(style: str = "gpt", **kw: Any) -> ImageFacts:
    if style == "gpt":
        base: dict[str, Any] = dict(
            partition_style="gpt",
            gpt_disk_guid=DISK_GUID,
            partitions=gpt_partitions(),
            windows_partition=2,
            boot_partition=0,
            bcd_path="EFI\\Microsoft\\Boot\\BCD",
            generation=2,
        )
    else:
        base = dict(
            partition_style="mbr",
            mbr_disk_signature=MBR_SIG,
            partitions=mbr_partitions(),
            windows_partition=1,
            boot_partition=0,
            bcd_path="Boot\\BCD",
            generation=1,
        )
    base.update(dict(os=SERVER_2019, ntfs_dirty=False, hiberfil_present=False))
    base.update(kw)
    cont = base.pop("container", None) or container()
    return ImageFacts(source="disk.vhd", container=cont, **base)


MakeCtx = Callable[..., AuditContext]


def make_context(
    facts: ImageFacts | None = None,
    hives: Mapping[str, Any] | None = None,
    files: Mapping[str, Any] | FakeFiles | None = None,
    bcd: Any = None,
    image_type: str | None = None,
    role: str | None = None,
    profile: str = "azure",
    unavailable: Mapping[str, str] | None = None,
) -> AuditContext:
    built = {}
    for name, tree in (hives or {}).items():
        built[name] = tree if isinstance(tree, Hive) else MemoryHive.build(name, tree)
    view = RegistryView(hives=built, unavailable=dict(unavailable or {}))
    fake = files if isinstance(files, FakeFiles) or files is None else FakeFiles(files)
    return AuditContext(
        registry=view,
        facts=facts or image_facts(),
        profile=profile,
        options=AuditOptions(image_type=image_type, role=role),
        files=fake,
        bcd=bcd,
    )


def run(rule_id: str, ctx: AuditContext) -> Outcome:
    """Run one rule the way the engine does (:func:`azvhdaudit.engine.evaluate`): its signals become not
    applicable / not checked outcomes."""
    import azvhdaudit.rules  # noqa: F401 - registers the rules
    from azvhdaudit.engine import evaluate

    found = [r for r in all_rules() if r.id == rule_id]
    assert found, f"no rule {rule_id}"
    return evaluate(found[0], ctx)


# --- hive trees ----------------------------------------------------------------------------------

CV = r"Microsoft\Windows NT\CurrentVersion"
CCS = "ControlSet001"


def software_tree(
    build: int = 17763,
    ubr: int | None = 5458,
    product: str = "Windows Server 2019 Datacenter",
    installation: str | None = "Server",
    major: int | None = 10,
    **extra: Any,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ProductName": product,
        "EditionID": "ServerDatacenter",
        "CurrentVersion": "6.3",
        "CurrentBuild": str(build),
        "CurrentBuildNumber": str(build),
    }
    if ubr is not None:
        values["UBR"] = ubr
    if major is not None:
        values["CurrentMajorVersionNumber"] = major
        values["CurrentMinorVersionNumber"] = 0
    if installation is not None:
        values["InstallationType"] = installation
    values.update(extra)
    return {CV: values}


def system_tree(product_type: str = "ServerNT", arch: str | None = "AMD64") -> dict[str, Any]:
    env: dict[str, Any] = {}
    if arch is not None:
        env["PROCESSOR_ARCHITECTURE"] = arch
    return {
        "Select": {"Current": 1, "Default": 1},
        rf"{CCS}\Control\ProductOptions": {"ProductType": product_type},
        rf"{CCS}\Control\Session Manager\Environment": env,
        rf"{CCS}\Services\storvsc": {"Start": 0},
        rf"{CCS}\Services\vmbus": {"Start": 0},
        rf"{CCS}\Services\netvsc": {"Start": 3},
    }


def layered(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s keys merged in (``None`` deletes a key)."""
    out = {k: dict(v) for k, v in base.items()}
    for key, values in extra.items():
        if values is None:
            out.pop(key, None)
        else:
            out.setdefault(key, {}).update(values)
    return out
