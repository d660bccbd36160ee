#!/usr/bin/env python3
"""Build the sample disk images from readable text, with real tools, reproducibly.

References:
- Microsoft, "Prepare a Windows VHD or VHDX to upload to Azure" (current text, ms.date 08/04/2022):
  what the compliant sample is configured to and what the misconfigured one breaks.
- Microsoft, "Virtual Hard Disk Image Format Specification" v1.0 (2006) and "[MS-VHDX]" v20160714:
  the container metadata normalised here (unique ids, timestamps, sequence numbers, checksums).
- hivex / hivexregedit (libwin-hivex-perl): builds every hive from the .reg files in samples/hives.
- sfdisk / sgdisk, mkntfs + ntfs-3g, mkfs.fat + mtools, qemu-img, x86_64-w64-mingw32-{gcc,windres}, xz.

Usage::

    python samples/build.py [--out DIR] [--check] [--keep-work DIR]

``--check`` rebuilds everything into a temporary directory and compares it byte for byte with the
committed samples (exit 1 with a summary of what differs).

Reproducibility: every identifier a tool would draw at random is fixed here (MBR disk signature,
GPT disk and partition GUIDs, FAT volume id, VHD unique id, VHDX write GUIDs and page-83 id), every
clock the tools read is frozen with libfaketime (ntfs-3g, mtools, qemu-img), mkntfs runs with
``--zero-time`` (which also seeds its serial number), the PE files are linked without a timestamp,
and xz runs single-threaded.  Guest file times are then set explicitly.

Other code may import :func:`build_image`, :func:`build_hive`, :func:`build_large_vhdx`,
:data:`SAMPLES`, :data:`DATA_DISKS` and :func:`guest_files`.

The data disks (:data:`DATA_DISKS`, in ``samples/vm/``) belong to the gen1-azure VM: one NTFS data volume each,
no Windows.
gen1-azure's ``SYSTEM\\MountedDevices`` records data-mbr.vhd at E: and data-gpt.vhd at D: (the letter
Azure's temporary disk takes); data-unknown.vhd is not recorded.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
HIVES = HERE / "hives"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import diskwriter  # noqa: E402  (sibling module; samples/ is not a package)
import material  # noqa: E402  (real signed binaries from PyPI and Debian, SHA-256 pinned)

MiB = 1024 * 1024
SECTOR = 512

#: Every tool this script runs, with the Debian package that ships it.
TOOLS: dict[str, str] = {
    "hivexregedit": "libwin-hivex-perl",
    "qemu-img": "qemu-utils",
    "sfdisk": "fdisk",
    "sgdisk": "gdisk",
    "mkntfs": "ntfs-3g",
    "ntfs-3g": "ntfs-3g",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "x86_64-w64-mingw32-gcc": "gcc-mingw-w64-x86-64",
    "x86_64-w64-mingw32-windres": "binutils-mingw-w64-x86-64",
    "xz": "xz-utils",
    "umount": "mount",
    "openssl": "openssl",
    "osslsigncode": "osslsigncode",
}
FAKETIME_LIBS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
)

#: The frozen clock of the build (2018-05-08 12:00:00 UTC, a few days after the sample updates).
BUILD_TIME = "2018-05-08 12:00:00"
BUILD_EPOCH = 1525780800
#: Guest file times relative to BUILD_EPOCH: sysprep ran 30 minutes later than everything else,
#: a left-behind Panther folder is an hour older than the sysprep run.
SYSPREP_EPOCH = BUILD_EPOCH + 1800
PANTHER_EPOCH = BUILD_EPOCH - 3600


class BuildError(RuntimeError):
    """A tool failed or is missing; the message says which and how to install it."""


# --------------------------------------------------------------------------------------------
# tools


def missing_tools() -> list[str]:
    """Tools (with their Debian package) that are not installed."""
    out = [f"{tool} ({pkg})" for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    if faketime_lib() is None:
        out.append("libfaketime.so.1 (faketime)")
    return out


def require_tools() -> None:
    missing = missing_tools()
    if missing:
        raise BuildError(
            "samples/build.py needs Debian's image tools; missing: "
            + ", ".join(missing)
            + ".  apt-get install libwin-hivex-perl qemu-utils fdisk gdisk ntfs-3g dosfstools mtools"
            " gcc-mingw-w64-x86-64 binutils-mingw-w64-x86-64 xz-utils faketime"
        )


def faketime_lib() -> str | None:
    return next((lib for lib in FAKETIME_LIBS if os.path.exists(lib)), None)


def frozen_env() -> dict[str, str]:
    """Environment that freezes the clock of the process at BUILD_TIME (libfaketime)."""
    env = dict(os.environ)
    lib = faketime_lib()
    if lib is None:
        raise BuildError("libfaketime.so.1 not found (apt-get install faketime)")
    env.update(
        LD_PRELOAD=lib,
        FAKETIME=BUILD_TIME,
        FAKETIME_DONT_FAKE_MONOTONIC="1",
        TZ="UTC",
        SOURCE_DATE_EPOCH=str(BUILD_EPOCH),
        MTOOLS_SKIP_CHECK="1",
    )
    return env


def run(*args: str | os.PathLike[str], stdin: str | None = None, frozen: bool = False) -> str:
    cmd = [os.fspath(a) for a in args]
    proc = subprocess.run(
        cmd, input=stdin, text=True, capture_output=True, env=frozen_env() if frozen else None, check=False
    )
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


# --------------------------------------------------------------------------------------------
# hives


def empty_hive(root_name: str) -> bytes:
    """The smallest valid regf file: a base block and one 4 KiB hbin holding a root key.

    hivex edits hives but cannot create one, and Debian's hivex packages ship no empty hive, so
    this writes one (layout from the "Windows registry file format specification",
    github.com/msuhanov/regf): base block "regf" (sequence numbers equal = clean, version 1.3,
    root cell offset 0x20, hive bins size 4096, XOR checksum of its first 508 bytes); hbin "hbin"
    with an nk cell (flags KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME, no subkeys, no values),
    the sk cell it points to (a self-relative security descriptor: owner Administrators, group
    SYSTEM, DACL allowing Everyone KEY_ALL_ACCESS; hivex gives new keys their parent's sk), and
    one free cell for the rest.  All timestamps are zero.  Everything else is hivex's work.
    """
    name = root_name.encode("ascii")

    def sid(*sub: int, authority: int = 5) -> bytes:
        return (
            struct.pack("<BB", 1, len(sub)) + authority.to_bytes(6, "big") + b"".join(struct.pack("<I", s) for s in sub)
        )

    everyone = sid(0, authority=1)
    ace = struct.pack("<BBHI", 0, 0, 8 + len(everyone), 0xF003F) + everyone  # ACCESS_ALLOWED_ACE
    acl = struct.pack("<BBHHH", 2, 0, 8 + len(ace), 1, 0) + ace
    owner, group = sid(32, 544), sid(18)
    sd = struct.pack("<BBHIIII", 1, 0, 0x8004, 20, 20 + len(owner), 0, 20 + len(owner) + len(group))
    sd += owner + group + acl

    nk_off = 0x20
    nk_len = 4 + 0x4C + len(name)
    nk_size = (nk_len + 7) & ~7
    sk_off = nk_off + nk_size
    nk = (
        struct.pack("<i", -nk_size)
        + b"nk"
        + struct.pack(
            "<HQ" + "I" * 15 + "HH",
            0x2C,  # flags
            0,  # last written
            0,  # access bits
            0xFFFFFFFF,  # parent (none)
            0,
            0,  # subkeys, volatile subkeys
            0xFFFFFFFF,
            0xFFFFFFFF,  # subkey lists
            0,
            0xFFFFFFFF,  # values
            sk_off,
            0xFFFFFFFF,  # security, class name
            0,
            0,
            0,
            0,
            0,  # max name/class/value name/value data lengths, work var
            len(name),
            0,
        )
        + name
    )
    nk = nk.ljust(nk_size, b"\0")
    sk_body = b"sk" + struct.pack("<HIIII", 0, sk_off, sk_off, 1, len(sd)) + sd
    sk_size = (4 + len(sk_body) + 7) & ~7
    sk = (struct.pack("<i", -sk_size) + sk_body).ljust(sk_size, b"\0")
    free = 4096 - 0x20 - nk_size - sk_size
    hbin = b"hbin" + struct.pack("<IIIIQI", 0, 4096, 0, 0, 0, 0) + nk + sk + struct.pack("<i", free)
    hbin = hbin.ljust(4096, b"\0")

    base = bytearray(b"regf" + struct.pack("<IIQIIIIIII", 1, 1, 0, 1, 3, 0, 1, nk_off, 4096, 1))
    base = base.ljust(508, b"\0")
    checksum = 0
    for (dword,) in struct.iter_unpack("<I", bytes(base)):
        checksum ^= dword
    base += struct.pack("<I", checksum)
    return bytes(base).ljust(4096, b"\0") + hbin


_MULTI_SZ = re.compile(r'^(?P<name>@|".*?(?<!\\)")=multi_sz:(?P<items>.*)$')


def _hex_bytes(data: bytes) -> str:
    return ",".join(f"{b:02x}" for b in data)


def render_reg(text: str, prefix: str, tokens: Mapping[str, str]) -> str:
    """Turn a sample .reg file into plain hivexregedit input.

    Replaces ``{{TOKEN}}`` placeholders, expands ``multi_sz:"a","b"`` into ``hex(7):``, joins
    backslash-continued lines and inserts an empty section for every missing parent key (hivex
    creates one level at a time).
    """
    for key, value in tokens.items():
        text = text.replace("{{" + key + "}}", value)
    leftover = re.findall(r"\{\{\w+\}\}", text)
    if leftover:
        raise BuildError(f"unreplaced placeholders: {sorted(set(leftover))}")
    text = re.sub(r"\\\n\s*", "", text)
    out: list[str] = []
    seen: set[str] = {prefix.lower()}
    for line in text.splitlines():
        match = _MULTI_SZ.match(line)
        if match:
            items = re.findall(r'"((?:[^"\\]|\\.)*)"', match["items"])
            data = b"".join(re.sub(r"\\(.)", r"\1", item).encode("utf-16-le") + b"\0\0" for item in items) + b"\0\0"
            line = f"{match['name']}=hex(7):{_hex_bytes(data)}"
        section = re.match(r"^\[(-?)(.*)\]\s*$", line)
        if section and not section[1]:
            path = section[2]
            if not path.lower().startswith(prefix.lower() + "\\"):
                raise BuildError(f"key {path} is outside {prefix}")
            parts = path[len(prefix) + 1 :].split("\\")
            for depth in range(1, len(parts)):
                parent = prefix + "\\" + "\\".join(parts[:depth])
                if parent.lower() not in seen:
                    seen.add(parent.lower())
                    out += [f"[{parent}]", ""]
            seen.add(path.lower())
        out.append(line)
    return "\n".join(out) + "\n"


def build_hive(
    out: Path, reg_files: Sequence[Path], *, prefix: str, root_name: str = "ROOT", tokens: Mapping[str, str] = {}
) -> Path:
    """Create ``out`` as an empty hive and merge ``reg_files`` into it in order (hivexregedit)."""
    out.write_bytes(empty_hive(root_name))
    for reg in reg_files:
        rendered = out.with_name(out.name + "." + reg.name)
        rendered.write_text(render_reg(reg.read_text(encoding="utf-8"), prefix, tokens), encoding="utf-8")
        run("hivexregedit", "--merge", "--prefix", prefix, out, rendered)
        rendered.unlink()
    return out


# --------------------------------------------------------------------------------------------
# PE files with a real VERSIONINFO resource

#: Every binary of the catalogue's update_minimums table, plus the Hyper-V drivers the
#: legacy-OS check looks for and srv.sys (MS17-010).
UPDATE_BINARIES: tuple[str, ...] = (
    r"Windows\System32\drivers\disk.sys",
    r"Windows\System32\drivers\storport.sys",
    r"Windows\System32\drivers\ntfs.sys",
    r"Windows\System32\iologmsg.dll",
    r"Windows\System32\drivers\classpnp.sys",
    r"Windows\System32\drivers\volsnap.sys",
    r"Windows\System32\drivers\partmgr.sys",
    r"Windows\System32\drivers\volmgr.sys",
    r"Windows\System32\drivers\volmgrx.sys",
    r"Windows\System32\drivers\msiscsi.sys",
    r"Windows\System32\drivers\msdsm.sys",
    r"Windows\System32\drivers\mpio.sys",
    r"Windows\System32\drivers\vmstorfl.sys",
    r"Windows\System32\fveapi.dll",
    r"Windows\System32\fveapibase.dll",
    r"Windows\System32\drivers\netvsc.sys",
    r"Windows\System32\drivers\mrxsmb10.sys",
    r"Windows\System32\drivers\mrxsmb20.sys",
    r"Windows\System32\drivers\mrxsmb.sys",
    r"Windows\System32\drivers\tcpip.sys",
    r"Windows\System32\drivers\http.sys",
    r"Windows\System32\drivers\vmswitch.sys",
    r"Windows\System32\ntoskrnl.exe",
    r"Windows\System32\rdpcorets.dll",
    r"Windows\System32\termsrv.dll",
    r"Windows\System32\drivers\termdd.sys",
    r"Windows\System32\win32k.sys",
    r"Windows\System32\rdpdd.dll",
    r"Windows\System32\drivers\rdpwd.sys",
)
EXTRA_BINARIES: tuple[str, ...] = (
    r"Windows\System32\drivers\storvsc.sys",
    r"Windows\System32\drivers\vmbus.sys",
    r"Windows\System32\drivers\srv.sys",
)

_RC = """\
#include <winver.h>
1 VERSIONINFO
FILEVERSION {commas}
PRODUCTVERSION {commas}
FILEFLAGSMASK 0x3fL
FILEFLAGS 0x0L
FILEOS VOS_NT_WINDOWS32
FILETYPE {filetype}
FILESUBTYPE 0x0L
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904B0"
    BEGIN
      VALUE "CompanyName", "azvhdaudit sample image"
      VALUE "FileDescription", "Stand-in for {name} (version resource only)"
      VALUE "FileVersion", "{dots} (sample.180427-1811)"
      VALUE "InternalName", "{stem}"
      VALUE "OriginalFilename", "{name}"
      VALUE "ProductName", "azvhdaudit sample image"
      VALUE "ProductVersion", "{dots}"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
"""

_STUB_C = "int __stdcall entry(void) { return 0; }\n"


def build_pe(name: str, version: str, workdir: Path) -> bytes:
    """A tiny x86-64 PE named ``name`` whose VS_FIXEDFILEINFO says ``version`` (a.b.c.d).

    Compiled with mingw-w64 gcc and windres, linked without a timestamp so it is reproducible.
    """
    parts = [int(p) for p in version.split(".")]
    if len(parts) != 4:
        raise BuildError(f"version {version!r} of {name} is not a.b.c.d")
    ext = name.rsplit(".", 1)[-1].lower()
    filetype = {"sys": "VFT_DRV", "exe": "VFT_APP", "efi": "VFT_APP"}.get(ext, "VFT_DLL")
    key = hashlib.sha256(f"{name}|{version}".encode()).hexdigest()[:16]
    target = workdir / "pe" / f"{key}.bin"
    if target.exists():
        return target.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    rc = target.with_suffix(".rc")
    rc.write_text(
        _RC.format(
            commas=",".join(map(str, parts)), dots=version, name=name, stem=name.rsplit(".", 1)[0], filetype=filetype
        ),
        encoding="ascii",
    )
    stub = workdir / "pe" / "stub.c"
    if not stub.exists():
        stub.write_text(_STUB_C, encoding="ascii")
    res = target.with_suffix(".res.o")
    run("x86_64-w64-mingw32-windres", "-O", "coff", "-i", rc, "-o", res)
    subsystem = "native" if ext == "sys" else ("10" if ext == "efi" else "windows")
    run(
        "x86_64-w64-mingw32-gcc",
        "-O2",
        "-nostdlib",
        "-shared" if filetype == "VFT_DLL" else "-nostartfiles",
        "-Wl,--entry=entry",
        "-Wl,--no-insert-timestamp",
        "-Wl,--disable-auto-image-base",
        "-Wl,--image-base=0x180000000",
        f"-Wl,--subsystem,{subsystem}",
        "-s",
        "-o",
        target,
        stub,
        res,
    )
    return target.read_bytes()


# --------------------------------------------------------------------------------------------
# guest content


@dataclasses.dataclass(frozen=True)
class Partition:
    """One partition of a sample disk (sectors of 512 bytes)."""

    name: str
    start: int
    size: int
    #: "ntfs", "fat32" or "" (left empty)
    fs: str
    #: MBR type byte or GPT type code (sgdisk notation)
    type: str
    guid: str = ""
    bootable: bool = False

    @property
    def offset(self) -> int:
        return self.start * SECTOR

    @property
    def length(self) -> int:
        return self.size * SECTOR


@dataclasses.dataclass(frozen=True)
class Layout:
    """Partition table of a sample disk."""

    size: int
    scheme: str  # "mbr" or "gpt"
    partitions: tuple[Partition, ...]
    disk_id: str  # MBR disk signature (hex) or GPT disk GUID

    def windows(self) -> Partition:
        return next(p for p in self.partitions if p.fs == "ntfs")

    def boot(self) -> Partition:
        return next((p for p in self.partitions if p.fs == "fat32"), self.windows())


GEN1_LAYOUT = Layout(
    size=64 * MiB,
    scheme="mbr",
    disk_id="5a3c9e01",
    partitions=(Partition("Windows", 2048, 64 * 2048 - 2048, "ntfs", "7", bootable=True),),
)
GEN2_LAYOUT = Layout(
    size=128 * MiB,
    scheme="gpt",
    disk_id="7c1e4a52-93d8-4f0b-a6e2-51b0c3d9e801",
    partitions=(
        Partition("EFI system partition", 2048, 40 * 2048, "fat32", "EF00", "7c1e4a52-93d8-4f0b-a6e2-51b0c3d9e811"),
        Partition(
            "Microsoft reserved partition", 42 * 2048, 16 * 2048, "", "0C01", "7c1e4a52-93d8-4f0b-a6e2-51b0c3d9e812"
        ),
        Partition("Basic data partition", 58 * 2048, 69 * 2048, "ntfs", "0700", "7c1e4a52-93d8-4f0b-a6e2-51b0c3d9e813"),
    ),
)


DATA_MBR_LAYOUT = Layout(
    size=16 * MiB,
    scheme="mbr",
    disk_id="da7a0001",
    partitions=(Partition("Data", 2048, 14 * 2048, "ntfs", "7"),),
)
DATA_GPT_LAYOUT = Layout(
    size=16 * MiB,
    scheme="gpt",
    disk_id="da7a0002-5e1f-4c3b-8d2a-6b0e9f1c7a01",
    partitions=(
        Partition("Basic data partition", 2048, 14 * 2048, "ntfs", "0700", "da7a0002-5e1f-4c3b-8d2a-6b0e9f1c7a11"),
    ),
)
DATA_UNKNOWN_LAYOUT = Layout(
    size=16 * MiB,
    scheme="mbr",
    disk_id="da7a0099",
    partitions=(Partition("Data", 2048, 14 * 2048, "ntfs", "7"),),
)


def bcd_device(layout: Layout, part: Partition) -> bytes:
    """BCD partition device element data (11000001 / 21000001), shaped like the real store's.

    16 zero bytes, then a device header (type 6 = partition, flags 0, size 0x48, reserved) and a
    56-byte partition descriptor: at 0x20 the partition GUID (GPT) or byte offset (MBR) in 16
    bytes; at 0x30 the local device type (0 = hard disk); at 0x34 the partition style (0 GPT,
    1 MBR); at 0x38 the disk GUID (GPT) or disk signature (MBR) in 16; 16 zero bytes.  The GPT
    form matches the real store in tests/data/realdata/BCD.xz byte for byte.
    """
    head = bytes(16) + struct.pack("<IIII", 6, 0, 0x48, 0)
    if layout.scheme == "gpt":
        body = uuid.UUID(part.guid).bytes_le + struct.pack("<II", 0, 0) + uuid.UUID(layout.disk_id).bytes_le + bytes(16)
    else:
        body = (
            struct.pack("<Q", part.offset)
            + bytes(8)
            + struct.pack("<II", 0, 1)
            + struct.pack("<I", int(layout.disk_id, 16))
            + bytes(12)
            + bytes(16)
        )
    return head + body


def mounted_device(layout: Layout, part: Partition) -> bytes:
    """SYSTEM\\MountedDevices data for a volume: MBR signature + offset, or DMIO:ID: + GPT GUID."""
    if layout.scheme == "gpt":
        return b"DMIO:ID:" + uuid.UUID(part.guid).bytes_le
    return struct.pack("<IQ", int(layout.disk_id, 16), part.offset)


@dataclasses.dataclass(frozen=True)
class OSSpec:
    """What Windows the sample claims to be (the hives say the same)."""

    name: str
    build: int
    #: version given to every update-table binary
    file_version: str
    #: binary path -> version for binaries that deliberately differ
    file_overrides: tuple[tuple[str, str], ...] = ()
    loader_description: str = "Windows Server 2016"


@dataclasses.dataclass(frozen=True)
class SampleSpec:
    """One committed sample image."""

    name: str  # file name of the image (before .xz)
    layout: Layout
    os: OSSpec
    #: overlay .reg files per hive (file names in samples/hives), merged after the base
    overlays: tuple[tuple[str, str], ...] = ()
    control_set: str = "ControlSet001"
    container: str = "vhd-fixed"  # vhd-fixed, vhd-fixed-chs, vhdx-dynamic, vhd-diff, vhdx-diff
    unique_id: str = ""
    parent: str = ""
    panther: bool = False
    compress: bool = True
    #: guest path -> where its bytes come from: ``material:NAME`` (samples/material.py) or ``self-signed:NAME``
    #: (a mingw-w64 PE named NAME signed with samples/keys/contoso-selfsigned.key); written over the defaults
    drivers: tuple[tuple[str, str], ...] = ()
    #: the ESP's boot manager: ``material:NAME``, or "" for the mingw-w64 stand-in
    bootmgr: str = ""
    #: the profile and deployment target the manifest's expectations are for
    profile: str = "azure-2022"
    target: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class DataDiskSpec:
    """A committed data disk: one NTFS data volume, no Windows, attached to the VM of an OS sample."""

    name: str
    layout: Layout
    unique_id: str
    #: the OS sample whose VM the disk belongs to
    vm: str
    #: the drive letter the OS sample's MountedDevices records for the disk ("" = not recorded)
    letter: str
    description: str


def guest_files(spec: SampleSpec, hives: Mapping[str, Path], workdir: Path) -> dict[str, tuple[bytes, int]]:
    """Files of the Windows volume: guest path (backslashes) -> (content, mtime)."""
    files: dict[str, tuple[bytes, int]] = {}
    config = "Windows\\System32\\config\\"
    for hive in ("SYSTEM", "SOFTWARE", "SECURITY", "SAM"):
        files[config + hive] = (hives[hive].read_bytes(), BUILD_EPOCH)
    overrides = dict(spec.os.file_overrides)
    for path in UPDATE_BINARIES + EXTRA_BINARIES:
        version = overrides.get(path, spec.os.file_version)
        files[path] = (build_pe(path.rsplit("\\", 1)[-1], version, workdir), BUILD_EPOCH)
    files["Windows\\System32\\Sysprep\\Sysprep_succeeded.tag"] = (b"", SYSPREP_EPOCH)
    files["Windows\\Setup\\State\\State.ini"] = (
        b"[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n",
        SYSPREP_EPOCH,
    )
    files["Windows\\SysWOW64\\desktop.ini"] = (b"", BUILD_EPOCH)
    files["Windows\\Temp\\desktop.ini"] = (b"", BUILD_EPOCH)
    agent = "WindowsAzure\\GuestAgent_2.7.41491.1010_2021-05-11_000000\\WindowsAzureGuestAgent.exe"
    files[agent] = (build_pe("WindowsAzureGuestAgent.exe", "2.7.41491.1010", workdir), BUILD_EPOCH)
    files["WindowsAzure\\Packages\\WaAppAgent.exe"] = (
        build_pe("WaAppAgent.exe", "2.7.41491.1010", workdir),
        BUILD_EPOCH,
    )
    if spec.panther:
        files["Windows\\Panther\\setupact.log"] = (
            b"2018-05-08 11:00:00, Info  [setup.exe] sample log\r\n",
            PANTHER_EPOCH,
        )
        files["Windows\\Panther\\setuperr.log"] = (b"", PANTHER_EPOCH)
    if spec.layout.scheme == "mbr":
        files["bootmgr"] = (b"sample boot manager stand-in\r\n", BUILD_EPOCH)
        files["Boot\\BCD"] = (hives["BCD"].read_bytes(), BUILD_EPOCH)
    for path, source in spec.drivers:
        files[path] = (binary(source, workdir), BUILD_EPOCH)
    return files


SAMPLE_KEY = HERE / "keys" / "contoso-selfsigned.key"
SAMPLE_SIGNER = "/CN=Contoso Storage Driver (self-signed sample)"


def binary(source: str, workdir: Path) -> bytes:
    """The bytes of a ``material:NAME`` or ``self-signed:NAME`` source (see :attr:`SampleSpec.drivers`)."""
    kind, _, name = source.partition(":")
    if kind == "material":
        try:
            return material.fetch(name)
        except (material.MaterialError, OSError) as err:
            raise BuildError(str(err)) from err
    if kind == "self-signed":
        # the certificate and the signature are deterministic: a committed key, a fixed serial, the frozen clock
        sign = workdir / "sign"
        sign.mkdir(parents=True, exist_ok=True)
        cert = sign / "contoso.crt"
        if not cert.exists():
            run(
                "openssl",
                "req",
                "-x509",
                "-key",
                SAMPLE_KEY,
                "-set_serial",
                "0x5a3c",
                "-days",
                "3650",
                "-subj",
                SAMPLE_SIGNER,
                "-addext",
                "extendedKeyUsage=codeSigning",
                "-out",
                cert,
                frozen=True,
            )
        src, out = sign / f"{name}.unsigned", sign / name
        src.write_bytes(build_pe(name, "10.0.17763.1", workdir))
        out.unlink(missing_ok=True)
        run(
            "osslsigncode",
            "sign",
            "-certs",
            cert,
            "-key",
            SAMPLE_KEY,
            "-h",
            "sha256",
            "-in",
            src,
            "-out",
            out,
            frozen=True,
        )
        return out.read_bytes()
    raise BuildError(f"unknown binary source {source!r}")


def esp_files(hives: Mapping[str, Path], workdir: Path, bootmgr: str = "") -> dict[str, bytes]:
    bootmgfw = binary(bootmgr, workdir) if bootmgr else build_pe("bootmgfw.efi", "10.0.16299.15", workdir)
    return {
        "EFI\\Boot\\bootx64.efi": bootmgfw,
        "EFI\\Microsoft\\Boot\\BCD": hives["BCD"].read_bytes(),
        "EFI\\Microsoft\\Boot\\bootmgfw.efi": bootmgfw,
    }


# --------------------------------------------------------------------------------------------
# file systems


@contextlib.contextmanager
def ntfs_mounted(image: Path, mountpoint: Path) -> Iterator[Path]:
    """Mount an NTFS image read-write with ntfs-3g (FUSE) under a frozen clock."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        ["ntfs-3g", "-o", "no_detach,silent,windows_names", str(image), str(mountpoint)],
        env=frozen_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while not os.path.ismount(mountpoint):
        if proc.poll() is not None:
            raise BuildError(f"ntfs-3g {image} exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            raise BuildError(f"ntfs-3g did not mount {image} within 20 s")
        time.sleep(0.05)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=False, capture_output=True)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise BuildError(f"ntfs-3g did not finish writing {image}") from None


def write_tree(root: Path, files: Mapping[str, tuple[bytes, int]]) -> None:
    """Write guest files under ``root`` in sorted order (allocation order = reproducible layout)."""
    dirs: set[str] = set()
    for path in files:
        parts = path.split("\\")[:-1]
        dirs.update("\\".join(parts[: i + 1]) for i in range(len(parts)))
    for d in sorted(dirs, key=lambda p: (p.count("\\"), p.lower())):
        (root / d.replace("\\", "/")).mkdir(exist_ok=True)
    for path in sorted(files, key=str.lower):
        data, _ = files[path]
        (root / path.replace("\\", "/")).write_bytes(data)
    for path in sorted(files, key=str.lower):
        _, mtime = files[path]
        os.utime(root / path.replace("\\", "/"), (mtime, mtime))
    for d in sorted(dirs, key=lambda p: (-p.count("\\"), p.lower())):
        os.utime(root / d.replace("\\", "/"), (BUILD_EPOCH, BUILD_EPOCH))


def make_ntfs(
    image: Path, part: Partition, files: Mapping[str, tuple[bytes, int]], work: Path, label: str = "Windows"
) -> Path:
    """An NTFS volume image for ``part`` holding ``files`` (mkntfs, then ntfs-3g)."""
    with open(image, "wb") as fh:
        fh.truncate(part.length)
    run(
        "mkntfs",
        "-q",
        "-F",
        "-Q",
        "-T",
        "-s",
        "512",
        "-c",
        "4096",
        "-p",
        str(part.start),
        "-H",
        "255",
        "-S",
        "63",
        "-L",
        label,
        image,
    )
    with ntfs_mounted(image, work / (image.name + ".mnt")) as root:
        write_tree(root, files)
    return image


def make_fat32(image: Path, part: Partition, files: Mapping[str, bytes], volume_id: str) -> Path:
    """A FAT32 EFI system partition image holding ``files`` (mkfs.fat, then mmd/mcopy)."""
    with open(image, "wb") as fh:
        fh.truncate(part.length)
    run(
        "mkfs.fat",
        "-F",
        "32",
        "-s",
        "1",
        "-S",
        "512",
        "-h",
        str(part.start),
        "-i",
        volume_id,
        "-n",
        "SYSTEM",
        "--invariant",
        image,
    )
    made: set[str] = set()
    for path in sorted(files, key=str.lower):
        parts = path.split("\\")
        for depth in range(1, len(parts)):
            d = "/".join(parts[:depth])
            if d not in made:
                made.add(d)
                run("mmd", "-i", image, "::/" + d, frozen=True)
        src = image.with_name(image.name + ".tmp")
        src.write_bytes(files[path])
        os.utime(src, (BUILD_EPOCH, BUILD_EPOCH))
        run("mcopy", "-m", "-i", image, src, "::/" + "/".join(parts), frozen=True)
        src.unlink()
    return image


# --------------------------------------------------------------------------------------------
# disks and containers


def partition_table(raw: Path, layout: Layout) -> None:
    """Write the MBR (sfdisk) or GPT (sgdisk) of ``layout`` into the raw disk file."""
    if layout.scheme == "mbr":
        lines = ["label: dos", f"label-id: 0x{layout.disk_id}", "unit: sectors", ""]
        for p in layout.partitions:
            lines.append(f"start={p.start}, size={p.size}, type={p.type}" + (", bootable" if p.bootable else ""))
        run("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", raw, stdin="\n".join(lines) + "\n")
        return
    args: list[str] = ["sgdisk", "--clear", f"--disk-guid={layout.disk_id}"]
    for n, p in enumerate(layout.partitions, 1):
        args += [
            f"--new={n}:{p.start}:{p.start + p.size - 1}",
            f"--typecode={n}:{p.type}",
            f"--change-name={n}:{p.name}",
            f"--partition-guid={n}:{p.guid}",
        ]
    run(*args, raw)


def place(raw: Path, part_image: Path, offset: int) -> None:
    """Copy a partition image into the raw disk at ``offset`` (qemu-img convert -n, sparse)."""
    size = part_image.stat().st_size
    target = f"driver=raw,offset={offset},size={size},file.driver=file,file.filename={raw}"
    run("qemu-img", "convert", "-n", "-f", "raw", "--target-image-opts", part_image, target)


def assemble_raw(raw: Path, layout: Layout, images: Mapping[str, Path]) -> Path:
    """A sparse raw disk with ``layout``'s partition table and the given partition images."""
    with open(raw, "wb") as fh:
        fh.truncate(layout.size)
    partition_table(raw, layout)
    for p in layout.partitions:
        if p.name in images:
            place(raw, images[p.name], p.offset)
    return raw


def fixed_vhd(raw: Path, out: Path, unique_id: str, *, force_size: bool = True) -> Path:
    """Fixed VHD from a raw disk with qemu-img; the footer's random unique id and the timestamp
    are then set to fixed values and the checksum recomputed.

    Without ``force_size`` qemu-img rounds the size up to a whole CHS geometry (what Hyper-V
    and older tools do), so the virtual size is no longer a multiple of 1 MiB.
    """
    if force_size:
        run(
            "qemu-img",
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=fixed,force_size=on",
            raw,
            out,
            frozen=True,
        )
    else:
        run("qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=fixed", out, str(raw.stat().st_size), frozen=True)
        run("qemu-img", "convert", "-n", "-f", "raw", "-O", "vpc", raw, out, frozen=True)
    diskwriter.set_vhd_footer_identity(out, uuid.UUID(unique_id), diskwriter.vhd_timestamp(BUILD_EPOCH))
    return out


def dynamic_vhdx(raw: Path, out: Path, unique_id: str) -> Path:
    """Dynamic VHDX (1 MiB blocks) from a raw disk with qemu-img; the random GUIDs and sequence
    numbers qemu-img draws are then replaced by ones derived from ``unique_id`` (CRC32C redone)."""
    run(
        "qemu-img",
        "convert",
        "-f",
        "raw",
        "-O",
        "vhdx",
        "-o",
        "subformat=dynamic,block_size=1M,log_size=1M",
        raw,
        out,
        frozen=True,
    )
    diskwriter.set_vhdx_identity(out, uuid.UUID(unique_id))
    return out


def xz(path: Path) -> Path:
    """Compress ``path`` to ``path.xz`` (single-threaded, so the bytes are reproducible)."""
    out = path.with_name(path.name + ".xz")
    with open(out, "wb") as fh:
        subprocess.run(["xz", "-9", "-T1", "-c", str(path)], stdout=fh, check=True)
    return out


# --------------------------------------------------------------------------------------------
# the samples

SERVER_2016 = OSSpec("Windows Server 2016 Datacenter", 14393, "10.0.14393.2273")
WIN10_1709 = OSSpec(
    "Windows 10 Enterprise 1709",
    16299,
    "10.0.16299.431",
    # below the catalogue's 1709 minimum 10.0.16299.371 (KB4345420)
    file_overrides=((r"Windows\System32\drivers\vmstorfl.sys", "10.0.16299.15"),),
    loader_description="Windows 10",
)

SERVER_2019 = OSSpec("Windows Server 2019 Datacenter", 17763, "10.0.17763.1", loader_description="Windows Server 2019")

#: the boot-start and system-start drivers of gen2-ready.vhd (SYSTEM.reg plus gen2-ready.SYSTEM.reg), each a copy
#: of WinDivert 4.0.1's Dev Center-signed driver
READY_BOOT_DRIVERS = (
    "cdrom",
    "storvsc",
    "vmbus",
    "partmgr",
    "stornvme",
    "pci",
    "disk",
    "volmgr",
    "volume",
    "volsnap",
    "mountmgr",
)
_SIGNED = "material:WinDivert64-4.0.1.sys"

SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec(
        "gen1-azure.vhd",
        GEN1_LAYOUT,
        SERVER_2016,
        overlays=(("SYSTEM", "gen1-azure.SYSTEM.reg"),),
        unique_id="3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4a01",
    ),
    SampleSpec(
        "gen1-misaligned.vhd",
        GEN1_LAYOUT,
        SERVER_2016,
        container="vhd-fixed-chs",
        unique_id="3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4a02",
    ),
    SampleSpec(
        "gen2-misconfigured.vhdx",
        GEN2_LAYOUT,
        WIN10_1709,
        container="vhdx-dynamic",
        overlays=(
            ("SYSTEM", "gen2-misconfigured.SYSTEM.reg"),
            ("SOFTWARE", "gen2-misconfigured.SOFTWARE.reg"),
            ("BCD", "gen2-misconfigured.BCD.reg"),
        ),
        control_set="ControlSet002",
        unique_id="3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4a03",
        panther=True,
    ),
    SampleSpec(
        "gen1-azure-child.vhd",
        GEN1_LAYOUT,
        SERVER_2016,
        container="vhd-diff",
        parent="gen1-azure.vhd",
        overlays=(("SYSTEM", "gen1-azure-child.SYSTEM.reg"),),
        unique_id="3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4a04",
    ),
    SampleSpec(
        "gen2-misconfigured-child.vhdx",
        GEN2_LAYOUT,
        WIN10_1709,
        container="vhdx-diff",
        parent="gen2-misconfigured.vhdx",
        overlays=(("SYSTEM", "gen2-misconfigured-child.SYSTEM.reg"),),
        control_set="ControlSet002",
        unique_id="3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4a05",
        panther=True,
    ),
    SampleSpec(
        "gen2-ready.vhd",
        GEN2_LAYOUT,
        SERVER_2019,
        overlays=(("SYSTEM", "gen2-ready.SYSTEM.reg"), ("SOFTWARE", "gen2-ready.SOFTWARE.reg")),
        unique_id="3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4a06",
        drivers=tuple((f"Windows\\System32\\drivers\\{d}.sys", _SIGNED) for d in READY_BOOT_DRIVERS),
        bootmgr="material:shimx64.efi",
        profile="azure",
        target=(("security_type", "TrustedLaunch"), ("disk_controller", "NVMe")),
    ),
    SampleSpec(
        "gen2-blocked.vhd",
        GEN2_LAYOUT,
        SERVER_2019,
        overlays=(
            ("SYSTEM", "gen2-ready.SYSTEM.reg"),
            ("SYSTEM", "gen2-blocked.SYSTEM.reg"),
            ("SOFTWARE", "gen2-ready.SOFTWARE.reg"),
            ("BCD", "gen2-blocked.BCD.reg"),
        ),
        unique_id="3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4a07",
        drivers=(
            *((f"Windows\\System32\\drivers\\{d}.sys", _SIGNED) for d in READY_BOOT_DRIVERS),
            ("Windows\\System32\\drivers\\contosofs.sys", "self-signed:contosofs.sys"),
            ("Windows\\System32\\drivers\\msfilter.sys", "material:msvcp140.dll"),
        ),
        profile="azure",
        target=(("security_type", "TrustedLaunch"), ("disk_controller", "NVMe")),
    ),
)

DATA_DISKS: tuple[DataDiskSpec, ...] = (
    DataDiskSpec(
        "data-mbr.vhd",
        DATA_MBR_LAYOUT,
        "3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4b01",
        vm="gen1-azure.vhd",
        letter="E:",
        description="Data disk of the gen1-azure VM: MBR (signature 0xDA7A0001), one NTFS data volume at 1 MiB,"
        " fixed VHD of 16 MiB; gen1-azure's MountedDevices records it at E:.",
    ),
    DataDiskSpec(
        "data-gpt.vhd",
        DATA_GPT_LAYOUT,
        "3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4b02",
        vm="gen1-azure.vhd",
        letter="D:",
        description="Data disk of the gen1-azure VM: GPT, one NTFS basic data partition at 1 MiB, fixed VHD of"
        " 16 MiB; gen1-azure's MountedDevices records it at D:, the letter of Azure's temporary disk.",
    ),
    DataDiskSpec(
        "data-unknown.vhd",
        DATA_UNKNOWN_LAYOUT,
        "3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4b03",
        vm="gen1-azure.vhd",
        letter="",
        description="A data disk gen1-azure's Windows has never seen: MBR (signature 0xDA7A0099), one NTFS data"
        " volume, fixed VHD of 16 MiB; not in its MountedDevices.",
    ),
)

#: where the data disks go, below the samples directory (apart from the OS images)
DATA_DIR = "vm"

#: What the audit of gen1-azure.vhd with every data disk is built to find (rules across the VM's disks)
VM_EXPECTATIONS: dict[str, object] = {
    "os_disk": "gen1-azure.vhd",
    "data_disks": [d.name for d in DATA_DISKS],
    "expected_warning": ["vm.data_disks_known", "vm.temp_drive_letter_free"],
    "expected_pass": ["vm.disk_ids_unique", "vm.disk_sizes"],
    "drive_letters": {"C:": "os", **{d.letter: d.name for d in DATA_DISKS if d.letter}},
}

#: what gen2-misconfigured.vhdx is built to fail (its differencing child derives its list from this)
GEN2_FAILS = (
    "bcd.default_bootstatuspolicy",
    "bcd.default_recovery_disabled",
    "disk.container_format",
    "firewall.profiles_enabled",
    "network.no_persistent_routes",
    "network.winhttp_proxy",
    "os.temp_tmp_default",
    "rdp.enabled",
    "rdp.enabled_policy",
    "rdp.nla",
    "rdp.port",
    "san.policy_onlineall",
    "services.remoteregistry",
    "time.utc",
    "updates.min_file_versions",
    "updates.no_pending_reboot",
)

#: What each sample is built to fail under the "azure-2022" profile (the 2022-08 document), by check id
#: of the catalogue (plus disk.not_differencing, the project's own row for differencing disks).
#: Every misconfiguration names the check it breaks; everything else is left compliant.
EXPECTATIONS: dict[str, dict[str, object]] = {
    "gen1-azure.vhd": {
        "description": "Generation 1 (MBR, one active NTFS partition at 1 MiB), fixed VHD of 64 MiB, Windows Server"
        " 2016 Datacenter 14393.2273 generalized with sysprep and configured exactly as the current document asks."
        " Its MountedDevices also records the data disks data-mbr.vhd (E:) and data-gpt.vhd (D:).",
        "expected_fail": [],
        "expected_warning": [],
        "misconfigurations": [],
    },
    "gen1-misaligned.vhd": {
        "description": "The guest content of gen1-azure.vhd in a fixed VHD sized by CHS rounding (qemu-img without"
        " force_size): 67,125,248 bytes, not a whole number of MiB.",
        "expected_fail": ["disk.size_aligned_1mib"],
        "expected_warning": [],
        "misconfigurations": [
            {"check": "disk.size_aligned_1mib", "what": "virtual size 67125248 = 64 MiB + 16384 bytes (CHS geometry)"},
        ],
    },
    "gen2-misconfigured.vhdx": {
        "description": "Generation 2 (GPT: ESP FAT32, MSR, NTFS), dynamic VHDX of 128 MiB, Windows 10 Enterprise"
        " 1709 (16299.431) generalized, misconfigured on purpose; the current control set is ControlSet002 and a"
        " stale compliant-looking ControlSet001 is left beside it.",
        "expected_fail": list(GEN2_FAILS),
        "expected_warning": ["crashdump.kernel_dump", "sysprep.panther_deleted"],
        "misconfigurations": [
            {"check": "disk.container_format", "what": "VHDX container (must be converted to VHD before upload)"},
            {
                "check": "rdp.enabled_policy",
                "what": "SOFTWARE\\Policies\\Microsoft\\Windows NT\\Terminal Services fDenyTSConnections = 1",
            },
            {"check": "rdp.enabled", "what": "local fDenyTSConnections = 0 is overridden by the policy value 1"},
            {"check": "rdp.port", "what": "RDP-Tcp PortNumber = 3390"},
            {"check": "rdp.nla", "what": "RDP-Tcp UserAuthentication = 0"},
            {"check": "firewall.profiles_enabled", "what": "PublicProfile EnableFirewall = 0"},
            {"check": "network.no_persistent_routes", "what": "PersistentRoutes 10.0.0.0,255.0.0.0,192.168.1.1,1"},
            {
                "check": "network.winhttp_proxy",
                "what": "WinHTTP proxy proxy.contoso.com:8080, bypass <local>;10.* (no 168.63.129.16)",
            },
            {"check": "time.utc", "what": "TimeZoneInformation RealTimeIsUniversal missing"},
            {"check": "san.policy_onlineall", "what": "partmgr\\Parameters SanPolicy = 2 (OfflineShared)"},
            {"check": "services.remoteregistry", "what": "RemoteRegistry Start = 4 (Disabled)"},
            {"check": "os.temp_tmp_default", "what": "TEMP = %SystemRoot%\\TEMP as REG_SZ, not REG_EXPAND_SZ"},
            {"check": "crashdump.kernel_dump", "what": "CrashControl CrashDumpEnabled = 0"},
            {"check": "bcd.default_recovery_disabled", "what": "{default} recoveryenabled Yes"},
            {"check": "bcd.default_bootstatuspolicy", "what": "{default} has no bootstatuspolicy"},
            {"check": "updates.min_file_versions", "what": "vmstorfl.sys 10.0.16299.15 < 10.0.16299.371 (KB4345420)"},
            {
                "check": "sysprep.panther_deleted",
                "what": "Windows\\Panther left behind, older than Sysprep_succeeded.tag",
            },
            {"check": "updates.no_pending_reboot", "what": "Component Based Servicing\\RebootPending present"},
            {
                "check": "pagefile.temp_drive",
                "what": "PagingFiles C:\\pagefile.sys (reported, never failed: the document moves it after deployment)",
            },
        ],
    },
    "gen1-azure-child.vhd": {
        "description": "Differencing VHD child of gen1-azure.vhd; its SYSTEM hive sets RDP-Tcp PortNumber 3391.",
        "expected_fail": ["disk.not_differencing", "disk.vhd_fixed", "rdp.port"],
        "expected_warning": [],
        "misconfigurations": [
            {"check": "disk.not_differencing", "what": "differencing disk (merge it into its parent before upload)"},
            {"check": "disk.vhd_fixed", "what": "VHD disk type 4 (differencing), not 2 (fixed)"},
            {"check": "rdp.port", "what": "RDP-Tcp PortNumber = 3391 in the child only"},
        ],
    },
    "gen2-misconfigured-child.vhdx": {
        "description": "Differencing VHDX child of gen2-misconfigured.vhdx; its SYSTEM hive sets RealTimeIsUniversal"
        " = 1 again, so time.utc passes in the child and fails in the parent.",
        # the parent's failures, plus being a differencing disk, minus the one the child fixes
        "expected_fail": sorted({*GEN2_FAILS, "disk.not_differencing"} - {"time.utc"}),
        "expected_warning": ["crashdump.kernel_dump", "sysprep.panther_deleted"],
        "misconfigurations": [
            {"check": "disk.not_differencing", "what": "differencing disk (merge it into its parent before upload)"},
            {"check": "time.utc", "what": "fixed in the child: RealTimeIsUniversal = 1"},
        ],
    },
    # The platform samples' expectations are the "azure" profile's under their target (Trusted Launch, NVMe).
    # gen2-ready's shim-as-boot-manager is a warning (third-party UEFI CA), gen2-blocked's unsigned stand-in a
    # failure.
    "gen2-ready.vhd": {
        "description": "Generation 2 (GPT: ESP FAT32, MSR, NTFS), fixed VHD of 128 MiB, Windows Server 2019"
        " Datacenter 17763.6715 generalized, ready for Trusted Launch and for NVMe-only sizes: every boot-start and"
        " system-start driver file is a copy of WinDivert 4.0.1's WinDivert64.sys (PyPI pydivert), whose nested"
        " signature chains to Microsoft Root Certificate Authority 2010 through the Windows Hardware Compatibility"
        " Publisher; stornvme, pci and the storage boot chain start at boot with no StartOverride; the BCD store has"
        " no test signing; the 2023 Secure Boot certificates are applied; the driver store binds MANA and Mellanox;"
        " the page file is on C:. The ESP's \\EFI\\Microsoft\\Boot\\bootmgfw.efi is Debian's shim"
        " (shim-signed, signed through Microsoft Corporation UEFI CA 2011 and Microsoft UEFI CA 2023): no Windows"
        " boot manager is published in a package registry.",
        "expected_fail": [],
        "expected_warning": ["secureboot.bootmgr_signature"],
        "expected_not_checked": [],
        "misconfigurations": [],
    },
    "gen2-blocked.vhd": {
        "description": "gen2-ready.vhd changed so that neither Trusted Launch nor an NVMe-only size boots it:"
        " a boot-start driver signed with a self-signed certificate and a system-start driver signed only by"
        " Microsoft's user-mode CA, test signing in the BCD store, stornvme demand-start with a StartOverride, no"
        " 2023 certificate servicing values, no MANA driver, the page file on D:, and the mingw-w64 stand-in (unsigned)"
        " as boot manager.",
        "expected_fail": [
            "nvme.stornvme_boot_start",
            "secureboot.bcd_integrity",
            "secureboot.bootmgr_signature",
            "signing.boot_drivers",
        ],
        "expected_warning": [
            "nvme.pagefile_not_on_temp_disk",
            "platform_net.mana_driver",
            "secureboot.uefica2023_servicing",
        ],
        "expected_not_checked": [],
        "misconfigurations": [
            {
                "check": "signing.boot_drivers",
                "what": "contosofs (Start 0) signed by CN=Contoso Storage Driver"
                " (self-signed sample); msfilter (Start 1) is msvcp140.dll, signed under Microsoft Root Certificate"
                " Authority 2011 (not a kernel-mode root)",
            },
            {"check": "secureboot.bcd_integrity", "what": "testsigning Yes on the default loader"},
            {"check": "nvme.stornvme_boot_start", "what": "stornvme Start = 3 and StartOverride\\0 = 3"},
            {"check": "secureboot.uefica2023_servicing", "what": "no SecureBoot\\Servicing values"},
            {"check": "platform_net.mana_driver", "what": "no INF for PCI\\VEN_1414&DEV_00BA in the DriverDatabase"},
            {"check": "nvme.pagefile_not_on_temp_disk", "what": "PagingFiles D:\\pagefile.sys"},
            {"check": "secureboot.bootmgr_signature", "what": "bootmgfw.efi without a certificate table"},
        ],
    },
}

OS_FACTS: dict[int, dict[str, object]] = {
    14393: {
        "product_name": "Windows Server 2016 Datacenter",
        "build": 14393,
        "ubr": 2273,
        "edition_id": "ServerDatacenter",
        "installation_type": "Server",
        "product_type": "ServerNT",
        "architecture": "AMD64",
    },
    16299: {
        "product_name": "Windows 10 Enterprise",
        "build": 16299,
        "ubr": 431,
        "edition_id": "Enterprise",
        "installation_type": "Client",
        "product_type": "WinNT",
        "architecture": "AMD64",
    },
    17763: {
        "product_name": "Windows Server 2019 Datacenter",
        "build": 17763,
        "ubr": 6715,
        "edition_id": "ServerDatacenter",
        "installation_type": "Server",
        "product_type": "ServerNT",
        "architecture": "AMD64",
    },
}

HIVE_PREFIX = {
    "SYSTEM": ("HKEY_LOCAL_MACHINE\\SYSTEM", "ROOT"),
    "SOFTWARE": ("HKEY_LOCAL_MACHINE\\SOFTWARE", "ROOT"),
    "SECURITY": ("HKEY_LOCAL_MACHINE\\SECURITY", "ROOT"),
    "SAM": ("HKEY_LOCAL_MACHINE\\SAM", "ROOT"),
    "BCD": ("HKEY_LOCAL_MACHINE\\BCD00000000", "NewStoreRoot"),
}


def sample_hives(spec: SampleSpec, work: Path, parents: Sequence[SampleSpec] = ()) -> dict[str, Path]:
    """Build the five hives of a sample: base .reg, the parents' overlays, then its own."""
    layout = spec.layout
    tokens = {
        "CCS": spec.control_set,
        "C_DRIVE": _hex_bytes(mounted_device(layout, layout.windows())),
        "OS_DEVICE": _hex_bytes(bcd_device(layout, layout.windows())),
        "BOOT_DEVICE": _hex_bytes(bcd_device(layout, layout.boot())),
        "WINLOAD": "\\\\Windows\\\\system32\\\\winload." + ("efi" if layout.scheme == "gpt" else "exe"),
        "BOOTMGR_PATH": "\\\\EFI\\\\Microsoft\\\\Boot\\\\bootmgfw.efi" if layout.scheme == "gpt" else "\\\\bootmgr",
        "LOADER_DESCRIPTION": spec.os.loader_description,
        "DATA_MBR_DRIVE": _hex_bytes(mounted_device(DATA_MBR_LAYOUT, DATA_MBR_LAYOUT.windows())),
        "DATA_GPT_DRIVE": _hex_bytes(mounted_device(DATA_GPT_LAYOUT, DATA_GPT_LAYOUT.windows())),
    }
    overlays = [o for s in (*parents, spec) for o in s.overlays]
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for hive, (prefix, root) in HIVE_PREFIX.items():
        regs = [HIVES / f"{hive}.reg"] + [HIVES / name for h, name in overlays if h == hive]
        out[hive] = build_hive(work / hive, regs, prefix=prefix, root_name=root, tokens=tokens)
    return out


def build_image(
    spec: SampleSpec, work: Path, parents: Sequence[SampleSpec] = ()
) -> tuple[Path, dict[str, Path], dict[str, Path]]:
    """Build the raw disk of ``spec`` in ``work`` from scratch.

    Returns the raw disk, the hives used and the partition images (partition name -> file).
    """
    work.mkdir(parents=True, exist_ok=True)
    hives = sample_hives(spec, work / "hives", parents)
    images: dict[str, Path] = {}
    for p in spec.layout.partitions:
        if p.fs == "ntfs":
            images[p.name] = make_ntfs(work / "windows.ntfs", p, guest_files(spec, hives, work), work)
        elif p.fs == "fat32":
            images[p.name] = make_fat32(work / "esp.fat", p, esp_files(hives, work, spec.bootmgr), volume_id="5a3c9e02")
    raw = assemble_raw(work / "disk.raw", spec.layout, images)
    return raw, hives, images


def build_child_image(
    spec: SampleSpec,
    work: Path,
    parents: Sequence[SampleSpec],
    parent_images: Mapping[str, Path],
    parent_hives: Mapping[str, Path],
) -> tuple[Path, dict[str, Path], dict[str, Path]]:
    """Build the raw disk of a differencing child the way a running VM would change it: copy
    the parent's partitions and rewrite, through ntfs-3g, only the hive files that differ."""
    work.mkdir(parents=True, exist_ok=True)
    hives = sample_hives(spec, work / "hives", parents)
    images = {name: Path(shutil.copyfile(path, work / path.name)) for name, path in parent_images.items()}
    changed = [h for h in hives if h != "BCD" and hives[h].read_bytes() != parent_hives[h].read_bytes()]
    windows = images[spec.layout.windows().name]
    with ntfs_mounted(windows, work / "windows.mnt") as root:
        for hive in changed:
            target = root / "Windows" / "System32" / "config" / hive
            with open(target, "r+b") as fh:
                fh.write(hives[hive].read_bytes())
                fh.truncate()
            os.utime(target, (SYSPREP_EPOCH + 3600, SYSPREP_EPOCH + 3600))
    raw = assemble_raw(work / "disk.raw", spec.layout, images)
    return raw, hives, images


def build_data_disk(disk: DataDiskSpec, work: Path, out: Path) -> Path:
    """Build the fixed VHD of a data disk: its partition table and one NTFS data volume with a file."""
    work.mkdir(parents=True, exist_ok=True)
    part = disk.layout.partitions[0]
    files = {"Data\\README.txt": (f"{disk.name}: a data disk of the {disk.vm} VM\r\n".encode("ascii"), BUILD_EPOCH)}
    volume = make_ntfs(work / "data.ntfs", part, files, work, label="Data")
    raw = assemble_raw(work / "disk.raw", disk.layout, {part.name: volume})
    (out / DATA_DIR).mkdir(parents=True, exist_ok=True)
    return fixed_vhd(raw, out / DATA_DIR / disk.name, disk.unique_id)


def _work_dir(work_root: Path, name: str) -> Path:
    (work_root / name / "hives").mkdir(parents=True, exist_ok=True)
    return work_root / name


def build_all(out: Path, work_root: Path, log: bool = True) -> list[Path]:
    """Build every sample into ``out``; returns the files written."""
    require_tools()
    out.mkdir(parents=True, exist_ok=True)
    by_name = {s.name: s for s in SAMPLES}
    raws: dict[str, Path] = {}
    containers: dict[str, Path] = {}
    built: dict[str, tuple[dict[str, Path], dict[str, Path]]] = {}
    written: list[Path] = []
    for spec in SAMPLES:
        started = time.monotonic()
        chain: list[SampleSpec] = []
        parent_name = spec.parent
        while parent_name:
            chain.insert(0, by_name[parent_name])
            parent_name = by_name[parent_name].parent
        if spec.parent:
            raw, hives, images = build_child_image(
                spec, _work_dir(work_root, spec.name), chain, built[spec.parent][1], built[spec.parent][0]
            )
        else:
            raw, hives, images = build_image(spec, _work_dir(work_root, spec.name), chain)
        built[spec.name] = (hives, images)
        raws[spec.name] = raw
        target = out / spec.name
        if spec.container == "vhd-fixed":
            fixed_vhd(raw, target, spec.unique_id)
        elif spec.container == "vhd-fixed-chs":
            fixed_vhd(raw, target, spec.unique_id, force_size=False)
        elif spec.container == "vhdx-dynamic":
            dynamic_vhdx(raw, target, spec.unique_id)
        elif spec.container == "vhd-diff":
            diskwriter.write_vhd_child(
                target,
                containers[spec.parent],
                diskwriter.changed_sectors(raws[spec.parent], raw),
                unique_id=uuid.UUID(spec.unique_id),
                timestamp=diskwriter.vhd_timestamp(BUILD_EPOCH),
                absolute_path="C:\\Images\\" + spec.parent,
            )
        elif spec.container == "vhdx-diff":
            diskwriter.write_vhdx_child(
                target,
                containers[spec.parent],
                diskwriter.changed_sectors(raws[spec.parent], raw),
                identity=uuid.UUID(spec.unique_id),
                absolute_path="C:\\Images\\" + spec.parent,
            )
        else:
            raise BuildError(f"unknown container {spec.container}")
        containers[spec.name] = target
        if log:
            print(f"built {spec.name} ({target.stat().st_size} bytes) in {time.monotonic() - started:.1f} s")
    for disk in DATA_DISKS:
        started = time.monotonic()
        target = build_data_disk(disk, _work_dir(work_root, disk.name), out)
        if log:
            print(f"built {disk.name} ({target.stat().st_size} bytes) in {time.monotonic() - started:.1f} s")
    for spec in SAMPLES:
        target = out / spec.name
        if spec.compress:
            written.append(xz(target))
        else:
            written.append(target)
    for disk in DATA_DISKS:
        written.append(xz(out / DATA_DIR / disk.name))
    text = json.dumps(manifest(out), indent=2, ensure_ascii=False) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    written.append(out / "manifest.json")
    for spec in SAMPLES:
        if spec.compress:
            (out / spec.name).unlink()
    for disk in DATA_DISKS:
        (out / DATA_DIR / disk.name).unlink()
    return written


# --------------------------------------------------------------------------------------------
# a large image for benchmarks and slow tests

_BULK_KEYS = r"""
import sys, uuid
import hivex

path, groups, per_group, value_size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
h = hivex.Hivex(path, write=True)
classes = h.node_get_child(h.root(), "Classes") or h.node_add_child(h.root(), "Classes")
clsid = h.node_get_child(classes, "CLSID") or h.node_add_child(classes, "CLSID")
namespace = uuid.UUID("3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4a00")
blob = bytes((i * 7 + 3) % 251 for i in range(value_size))
keys = 0
for g in range(groups):
    group = h.node_add_child(clsid, "Group%03d" % g)
    keys += 1
    for i in range(per_group):
        key = h.node_add_child(group, "{%s}" % uuid.uuid5(namespace, "%d-%d" % (g, i)))
        h.node_set_values(key, [
            {"key": "", "t": 1, "value": ("Sample component %d-%d\0" % (g, i)).encode("utf-16-le")},
            {"key": "AppData", "t": 3, "value": blob},
        ])
        server = h.node_add_child(key, "InprocServer32")
        h.node_set_values(server, [
            {"key": "", "t": 2, "value": "%SystemRoot%\\System32\\sample.dll\0".encode("utf-16-le")},
            {"key": "ThreadingModel", "t": 1, "value": "Both\0".encode("utf-16-le")},
        ])
        keys += 2
h.commit(path)
print(keys)
"""

#: Debian's python3 has the hivex bindings (python3-hivex); the project's interpreter may not.
HIVEX_PYTHON = "/usr/bin/python3"


def build_large_software(
    out: Path, *, keys: int = 50_000, min_size: int = 60 * 10**6, tokens: Mapping[str, str] | None = None
) -> Path:
    """A SOFTWARE hive of at least ``min_size`` bytes and ``keys`` keys: SOFTWARE.reg merged with
    hivexregedit, then ``Classes\\CLSID`` filled with generated components through the hivex
    Python bindings (C speed: about two seconds for 50,000 keys)."""
    probe = subprocess.run([HIVEX_PYTHON, "-c", "import hivex"], capture_output=True, check=False)
    if probe.returncode != 0:
        raise BuildError(f"{HIVEX_PYTHON} cannot import hivex (apt-get install python3-hivex)")
    build_hive(out, [HIVES / "SOFTWARE.reg"], prefix="HKEY_LOCAL_MACHINE\\SOFTWARE", tokens=tokens or {})
    per_group = 250
    groups = -(-keys // (2 * per_group + 1))
    # hivex stores each value near twice over as it grows the hive: half the share per key is enough
    value_size = max(256, min_size // (groups * per_group) // 2 - 100)
    count = int(run(HIVEX_PYTHON, "-c", _BULK_KEYS, out, str(groups), str(per_group), str(value_size)).strip())
    if count < keys or out.stat().st_size < min_size:
        raise BuildError(f"{out}: {count} keys, {out.stat().st_size} bytes; wanted {keys} keys, {min_size} bytes")
    return out


def large_layout(virtual_size: int) -> Layout:
    """GPT like Windows Setup makes it: 100 MiB ESP, 16 MiB MSR, the rest (1 MiB spare) NTFS."""
    sectors = virtual_size // SECTOR
    ntfs_start = (1 + 100 + 16) * 2048
    return Layout(
        size=virtual_size,
        scheme="gpt",
        disk_id="7c1e4a52-93d8-4f0b-a6e2-51b0c3d9ea01",
        partitions=(
            Partition(
                "EFI system partition", 2048, 100 * 2048, "fat32", "EF00", "7c1e4a52-93d8-4f0b-a6e2-51b0c3d9ea11"
            ),
            Partition(
                "Microsoft reserved partition",
                101 * 2048,
                16 * 2048,
                "",
                "0C01",
                "7c1e4a52-93d8-4f0b-a6e2-51b0c3d9ea12",
            ),
            Partition(
                "Basic data partition",
                ntfs_start,
                sectors - ntfs_start - 2048,
                "ntfs",
                "0700",
                "7c1e4a52-93d8-4f0b-a6e2-51b0c3d9ea13",
            ),
        ),
    )


def build_large_vhdx(
    out: Path,
    virtual_size: int = 127 * 2**30,
    system_hive: Path | None = None,
    software_hive: Path | None = None,
    workdir: Path | None = None,
) -> Path:
    """A dynamic VHDX of ``virtual_size`` bytes (GPT: ESP, MSR, NTFS) whose Windows volume holds
    real-size hives: ``system_hive`` (default: SYSTEM.reg built here; benchmarks pass the real
    Windows 7 SYSTEM of tests/data/realdata) and ``software_hive`` (default: a generated SOFTWARE
    of more than 60 MB and 50,000 keys, see :func:`build_large_software`).

    Everything stays sparse (mkntfs -Q on a sparse file, partitions placed with
    ``qemu-img convert -n``, conversion skipping holes), so it takes seconds, and the VHDX holds
    only the allocated blocks.
    """
    require_tools()
    layout = large_layout(virtual_size)
    spec = SampleSpec(
        out.name, layout, SERVER_2016, container="vhdx-dynamic", unique_id="3d2c6b1a-0e5f-4c47-9a81-6f0b2d3e4aff"
    )
    with contextlib.ExitStack() as stack:
        work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="azvhdaudit-large-")))
        work.mkdir(parents=True, exist_ok=True)
        hives = sample_hives(spec, work / "hives")
        if system_hive is not None:
            hives["SYSTEM"] = Path(system_hive)
        if software_hive is not None:
            hives["SOFTWARE"] = Path(software_hive)
        else:
            tokens = {"CCS": spec.control_set}
            hives["SOFTWARE"] = build_large_software(work / "hives" / "SOFTWARE.large", tokens=tokens)
        images = {
            layout.partitions[0].name: make_fat32(
                work / "esp.fat", layout.partitions[0], esp_files(hives, work), volume_id="5a3c9e03"
            ),
            layout.partitions[2].name: make_ntfs(
                work / "windows.ntfs", layout.partitions[2], guest_files(spec, hives, work), work
            ),
        }
        raw = assemble_raw(work / "disk.raw", layout, images)
        dynamic_vhdx(raw, out, spec.unique_id)
    return out


def manifest(out: Path) -> dict[str, object]:
    """samples/manifest.json: per sample its file, container, layout, OS and expected results."""
    samples: list[dict[str, object]] = []
    platform_samples: list[dict[str, object]] = []
    for spec in SAMPLES:
        file = out / (spec.name + (".xz" if spec.compress else ""))
        container = {
            "vhd-fixed": ("vhd", "fixed"),
            "vhd-fixed-chs": ("vhd", "fixed"),
            "vhdx-dynamic": ("vhdx", "dynamic"),
            "vhd-diff": ("vhd", "differencing"),
            "vhdx-diff": ("vhdx", "differencing"),
        }[spec.container]
        virtual_size = spec.layout.size
        if spec.container == "vhd-fixed-chs":
            virtual_size = int(diskwriter.read_vhd_footer(out / spec.name)["current_size"])  # type: ignore[call-overload]
        entry: dict[str, object] = {
            "name": spec.name,
            "file": file.name,
            "compression": "xz" if spec.compress else None,
            "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
            "format": container[0],
            "subformat": container[1],
            "virtual_size": virtual_size,
            "generation": 2 if spec.layout.scheme == "gpt" else 1,
            "partition_table": spec.layout.scheme,
            "disk_id": spec.layout.disk_id,
            "partitions": [
                {
                    "number": n,
                    "name": p.name,
                    "start": p.start,
                    "sectors": p.size,
                    "type": p.type,
                    "filesystem": p.fs or None,
                    "guid": p.guid or None,
                    "bootable": p.bootable,
                }
                for n, p in enumerate(spec.layout.partitions, 1)
            ],
            "parent": spec.parent or None,
            "os": {**OS_FACTS[spec.os.build], "control_set": spec.control_set, "generalized": True},
            # the older samples' expectations are the 2022-08 document's (profile azure-2022); the platform
            # samples' are the "azure" profile's under their target
            "profile": spec.profile,
        }
        if spec.target:
            entry["target"] = dict(spec.target)
        entry.update(EXPECTATIONS[spec.name])
        (samples if spec.profile == "azure-2022" else platform_samples).append(entry)
    data_disks = []
    for disk in DATA_DISKS:
        file = out / DATA_DIR / (disk.name + ".xz")
        data_disks.append(
            {
                "name": disk.name,
                "file": f"{DATA_DIR}/{file.name}",
                "compression": "xz",
                "sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
                "format": "vhd",
                "subformat": "fixed",
                "virtual_size": disk.layout.size,
                "partition_table": disk.layout.scheme,
                "disk_id": disk.layout.disk_id,
                "partitions": [
                    {
                        "number": n,
                        "name": p.name,
                        "start": p.start,
                        "sectors": p.size,
                        "type": p.type,
                        "filesystem": p.fs or None,
                        "guid": p.guid or None,
                        "bootable": p.bootable,
                    }
                    for n, p in enumerate(disk.layout.partitions, 1)
                ],
                "role": "data",
                "vm": disk.vm,
                "drive_letter": disk.letter or None,
                "description": disk.description,
                "profile": "azure-2022",
                "expected_fail": [],
            }
        )
    return {
        "generator": "samples/build.py",
        "catalogue": "check ids of shared/reference/azure-checks.yaml (plus disk.not_differencing)",
        "samples": samples,
        # Generation 2 images for the platform rules (Trusted Launch, driver signatures, NVMe, networking), with the
        # "azure" profile and the deployment target their expectations are for
        "platform_samples": platform_samples,
        "data_disks": data_disks,
        "vm": VM_EXPECTATIONS,
    }


def compare(expected_dir: Path, actual_dir: Path, names: Sequence[str]) -> list[str]:
    """Names (with a reason) of files that differ between two sample directories."""
    problems = []
    for name in names:
        a, b = expected_dir / name, actual_dir / name
        if not a.exists():
            problems.append(f"{name}: not committed")
        elif not b.exists():
            problems.append(f"{name}: not rebuilt")
        else:
            ha = hashlib.sha256(a.read_bytes()).hexdigest()
            hb = hashlib.sha256(b.read_bytes()).hexdigest()
            if ha != hb:
                sizes = f"{a.stat().st_size} vs {b.stat().st_size} bytes"
                problems.append(f"{name}: committed sha256 {ha[:16]}…, rebuilt {hb[:16]}… ({sizes})")
                if name.endswith(".json"):
                    diff = difflib.unified_diff(
                        a.read_text(encoding="utf-8").splitlines(),
                        b.read_text(encoding="utf-8").splitlines(),
                        "committed/" + name,
                        "rebuilt/" + name,
                        lineterm="",
                        n=1,
                    )
                    problems.extend("    " + line for line in list(diff)[:40])
    return problems


def committed_files() -> list[str]:
    return (
        [s.name + (".xz" if s.compress else "") for s in SAMPLES]
        + [f"{DATA_DIR}/{d.name}.xz" for d in DATA_DISKS]
        + ["manifest.json"]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the samples (default: samples/)")
    parser.add_argument("--check", action="store_true", help="rebuild into a temp dir and compare with --out")
    parser.add_argument("--keep-work", type=Path, help="keep intermediate files (raw disks, hives) here")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="azvhdaudit-samples-") as tmp:
            work = args.keep_work or Path(tmp) / "work"
            started = time.monotonic()
            if args.check:
                rebuilt = Path(tmp) / "out"
                build_all(rebuilt, work, log=False)
                problems = compare(args.out, rebuilt, committed_files())
                if problems:
                    print("samples differ from a fresh build:\n  " + "\n  ".join(problems))
                    return 1
                print(
                    f"{len(committed_files())} samples reproduced byte for byte in {time.monotonic() - started:.0f} s"
                )
                return 0
            build_all(args.out, work)
            print(f"done in {time.monotonic() - started:.0f} s")
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
