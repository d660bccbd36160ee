"""Builders for the Secure Boot tests: hive files made by hivex, EFI binaries made by mingw-w64 and signed by
osslsigncode, and whole disk images (GPT with an EFI system partition, or MBR) made by sgdisk/sfdisk, mkfs.fat +
mtools and mkntfs + ntfs-3g (see tests/diskbuild.py).

The hive trees are ``{key path: {value name: data}}``: ``int`` is REG_DWORD, ``str`` REG_SZ, ``list[str]``
REG_MULTI_SZ and ``(type, bytes)`` any other type.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import diskbuild as db
from image_rules.helpers import element_tree

from azvhdaudit.image import Image, open_image
from azvhdaudit.registry.model import RegType
from azvhdaudit.rules.base import AuditContext, AuditOptions, Target
from azvhdaudit.secureboot_facts import boot_volume_files

SB = r"ControlSet001\Control\SecureBoot"
SERVICING = SB + r"\Servicing"
CV = r"Microsoft\Windows NT\CurrentVersion"
ESP_FILES_BCD = r"EFI\Microsoft\Boot\BCD"
BOOTMGFW = r"EFI\Microsoft\Boot\bootmgfw.efi"


def _reg_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _reg_hex(data: bytes) -> str:
    return ",".join(f"{b:02x}" for b in data)


def _reg_data(data: Any) -> str:
    if isinstance(data, bool):
        raise TypeError("booleans are not registry data; use (RegType.BINARY, b'\\x01')")
    if isinstance(data, int):
        return f"dword:{data:08x}"
    if isinstance(data, str):
        return _reg_string(data)
    if isinstance(data, list):
        raw = b"".join(item.encode("utf-16-le") + b"\0\0" for item in data) + b"\0\0"
        return f"hex({RegType.MULTI_SZ:x}):{_reg_hex(raw)}"
    kind, raw = data
    if kind == RegType.BINARY:
        return f"hex:{_reg_hex(raw)}"
    return f"hex({kind:x}):{_reg_hex(raw)}"


def hive_file(builder: ModuleType, out: Path, root: str, tree: Mapping[str, Mapping[str, Any]]) -> Path:
    """A hive file ``out`` holding ``tree``, written by hivexregedit into an empty hive named ``root``."""
    prefix = f"HKEY_LOCAL_MACHINE\\{root}"
    lines = ["Windows Registry Editor Version 5.00", ""]
    for key, values in tree.items():
        lines.append(f"[{prefix}\\{key}]")
        lines += [f"{_reg_string(name)}={_reg_data(data)}" for name, data in values.items()]
        lines.append("")
    reg = out.with_suffix(".reg")
    reg.write_text(builder.render_reg("\n".join(lines), prefix, {}), encoding="utf-8")
    out.write_bytes(builder.empty_hive(root))
    builder.run("hivexregedit", "--merge", "--prefix", prefix, out, reg)
    reg.unlink()
    return out


def bcd_tree(objects: Mapping[str, tuple[int, Mapping[int, Any]]]) -> dict[str, dict[str, Any]]:
    """``{guid: (object type, {element id: data})}`` as a BCD hive tree."""
    return element_tree(objects)


def system_tree(
    servicing: Mapping[str, Any] | None = None,
    secureboot: Mapping[str, Any] | None = None,
    product_type: str = "ServerNT",
) -> dict[str, dict[str, Any]]:
    tree: dict[str, dict[str, Any]] = {
        "Select": {"Current": 1, "Default": 1, "LastKnownGood": 1},
        r"ControlSet001\Control\ProductOptions": {"ProductType": product_type},
        r"ControlSet001\Control\Session Manager\Environment": {"PROCESSOR_ARCHITECTURE": "AMD64"},
    }
    if secureboot is not None:
        tree[SB] = dict(secureboot)
    if servicing is not None:
        tree.setdefault(SB, {})
        tree[SERVICING] = dict(servicing)
    return tree


def software_tree(product: str, edition: str, build: int, installation: str) -> dict[str, dict[str, Any]]:
    return {
        CV: {
            "ProductName": product,
            "EditionID": edition,
            "CurrentBuild": str(build),
            "CurrentBuildNumber": str(build),
            "CurrentMajorVersionNumber": 10,
            "CurrentMinorVersionNumber": 0,
            "InstallationType": installation,
            "UBR": 1,
        }
    }


def efi_binary(builder: ModuleType, work: Path, name: str = "bootmgfw.efi") -> bytes:
    """An x86-64 EFI application (subsystem 10) made by mingw-w64, unsigned."""
    return bytes(builder.build_pe(name, "10.0.26100.1", work))


def self_signed(data: bytes, work: Path, subject: str = "/CN=Lookalike Windows Production PCA 2011") -> bytes:
    """``data`` signed by osslsigncode with a key and a self-signed certificate made by openssl here."""
    key, cert = work / "sign.key", work / "sign.crt"
    if not cert.exists():
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "3650",
                "-subj",
                subject,
            ],
            check=True,
            capture_output=True,
        )
    src, out = work / "unsigned.efi", work / "signed.efi"
    src.write_bytes(data)
    out.unlink(missing_ok=True)
    subprocess.run(
        [
            "osslsigncode",
            "sign",
            "-certs",
            str(cert),
            "-key",
            str(key),
            "-h",
            "sha256",
            "-in",
            str(src),
            "-out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


def gpt_image(work: Path, name: str, esp: Mapping[str, bytes], windows: Mapping[str, bytes]) -> Path:
    """A raw GPT disk: a 40 MiB FAT32 EFI system partition with ``esp``, a 32 MiB NTFS volume with ``windows``."""
    raw = db.gpt_disk(
        work / f"{name}.raw",
        80 * db.MiB,
        [(1, 40, "EF00"), (41, 32, "0700")],
        disk_guid="5ec0b007-0000-4000-8000-000000000001",
    )
    db.place(db.make_fat(work / f"{name}.fat", 40 * db.MiB, esp), raw, db.MiB)
    db.place(db.make_ntfs(work / f"{name}.ntfs", 32 * db.MiB, windows), raw, 41 * db.MiB)
    (work / f"{name}.fat").unlink()
    (work / f"{name}.ntfs").unlink()
    return raw


def mbr_image(work: Path, name: str, windows: Mapping[str, bytes]) -> Path:
    """A raw MBR disk with one active NTFS partition holding ``windows`` (\\Boot\\BCD and the hives)."""
    raw = db.mbr_disk(work / f"{name}.raw", 40 * db.MiB, [(1, 32, "7", True)], label_id=0x5EC0B007)
    db.place(db.make_ntfs(work / f"{name}.ntfs", 32 * db.MiB, windows), raw, db.MiB)
    (work / f"{name}.ntfs").unlink()
    return raw


def context(
    image: Image, security_type: str | None = None, *, boot: bool = True, verify_signatures: bool = False
) -> AuditContext:
    """The audit context the engine makes for ``image``, plus the boot volume's files (``boot_files``)."""
    ctx = AuditContext(
        registry=image.registry,
        facts=image.facts,
        options=AuditOptions(target=Target(security_type=security_type), verify_signatures=verify_signatures),
        files=image.files,
        bcd=image.bcd,
    )
    ctx.boot_files = boot_volume_files(image) if boot else None  # type: ignore[attr-defined]
    return ctx


def opened(path: Path, **kw: Any) -> Image:
    return open_image(path, **kw)
