"""Builders for the signature tests: real binaries (samples/material.py), files signed by osslsigncode with keys
and certificates made by openssl here (self-signed, and a lookalike "Microsoft Windows Production PCA 2011" CA),
and GPT disk images holding a SYSTEM hive (hivex) and the drivers (mkntfs + ntfs-3g, see tests/diskbuild.py)."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from secureboot import sbkit

from azvhdaudit.image import Image, open_image
from azvhdaudit.rules.base import AuditContext, AuditOptions, Target

SYSTEM = r"Windows\System32\config\SYSTEM"
DRIVERS = "Windows\\System32\\drivers\\"
#: the Windows kernel-mode EKUs a lookalike puts in its leaf, to show names and EKUs alone earn no trust
WINDOWS_EKUS = "codeSigning,1.3.6.1.4.1.311.10.3.6,1.3.6.1.4.1.311.10.3.5"


class BytesFiles:
    """A GuestFiles over a dict of Windows paths -> bytes (for tests of the verifier alone)."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        self.files = {k.lower(): v for k, v in files.items()}

    def open(self, path: str) -> BinaryIO:
        from azvhdaudit.errors import GuestFileNotFoundError

        if path.lower() not in self.files:
            raise GuestFileNotFoundError(f"{path} does not exist")
        return io.BytesIO(self.files[path.lower()])

    def read(self, path: str, max_size: int = 1 << 24) -> bytes | None:
        data = self.files.get(path.lower())
        return None if data is None else data[:max_size]

    def exists(self, path: str) -> bool:
        return path.lower() in self.files

    def listdir(self, path: str) -> list[str] | None:
        prefix = path.lower().rstrip("\\") + "\\"
        names = [k[len(prefix) :] for k in self.files if k.startswith(prefix) and "\\" not in k[len(prefix) :]]
        return names or None


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def self_signed_cert(work: Path, subject: str, name: str = "self") -> tuple[Path, Path]:
    key, cert = work / f"{name}.key", work / f"{name}.crt"
    if not cert.exists():
        openssl(
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
            "-addext",
            f"extendedKeyUsage={WINDOWS_EKUS}",
        )
    return key, cert


def lookalike_chain(work: Path) -> tuple[Path, Path, Path]:
    """A CA named exactly like Microsoft's (Windows Production PCA 2011, under a lookalike Root 2010) and a leaf
    "Microsoft Windows" with the Windows EKUs: (leaf key, leaf cert, chain file)."""
    rkey, rcert = self_signed_cert(
        work,
        "/C=US/ST=Washington/L=Redmond/O=Microsoft Corporation/CN=Microsoft Root Certificate Authority 2010",
        "lookroot",
    )
    ckey, ccsr, ccert = work / "lookca.key", work / "lookca.csr", work / "lookca.crt"
    lkey, lcsr, lcert = work / "looklf.key", work / "looklf.csr", work / "looklf.crt"
    ext = work / "look.ext"
    if not lcert.exists():
        ext.write_text(
            "[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n"
            f"[leaf]\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage={WINDOWS_EKUS}\n"
        )
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(ckey),
            "-out",
            str(ccsr),
            "-subj",
            "/C=US/ST=Washington/L=Redmond/O=Microsoft Corporation/CN=Microsoft Windows Production PCA 2011",
        )
        openssl(
            "x509",
            "-req",
            "-in",
            str(ccsr),
            "-CA",
            str(rcert),
            "-CAkey",
            str(rkey),
            "-set_serial",
            "7",
            "-days",
            "3650",
            "-extfile",
            str(ext),
            "-extensions",
            "ca",
            "-out",
            str(ccert),
        )
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(lkey),
            "-out",
            str(lcsr),
            "-subj",
            "/C=US/ST=Washington/L=Redmond/O=Microsoft Corporation/CN=Microsoft Windows",
        )
        openssl(
            "x509",
            "-req",
            "-in",
            str(lcsr),
            "-CA",
            str(ccert),
            "-CAkey",
            str(ckey),
            "-set_serial",
            "8",
            "-days",
            "3650",
            "-extfile",
            str(ext),
            "-extensions",
            "leaf",
            "-out",
            str(lcert),
        )
    chain = work / "look.chain.pem"
    chain.write_bytes(lcert.read_bytes() + ccert.read_bytes() + rcert.read_bytes())
    return lkey, lcert, chain


def sign(data: bytes, work: Path, key: Path, certs: Path, *, nest: bool = False, src: bytes | None = None) -> bytes:
    """``data`` signed by osslsigncode (``nest``: added as a nested signature to the existing one)."""
    inp, out = work / "in.bin", work / "out.bin"
    inp.write_bytes(data)
    out.unlink(missing_ok=True)
    cmd = [
        "osslsigncode",
        "sign",
        "-certs",
        str(certs),
        "-key",
        str(key),
        "-h",
        "sha256",
        "-in",
        str(inp),
        "-out",
        str(out),
    ]
    if nest:
        cmd.insert(2, "-nest")
    subprocess.run(cmd, check=True, capture_output=True)
    return out.read_bytes()


def driver(builder: ModuleType, work: Path, name: str = "drv.sys") -> bytes:
    """An unsigned x64 native PE made by mingw-w64."""
    return bytes(builder.build_pe(name, "10.0.17763.1", work))


def services_tree(
    drivers: Mapping[str, Mapping[str, Any]],
    *,
    extra: Mapping[str, Mapping[str, Any]] = (),
    product_type: str | None = "ServerNT",
) -> dict[str, dict[str, Any]]:
    """A SYSTEM hive tree with these services; ``product_type`` is ProductOptions ProductType (``WinNT``: a client,
    ``ServerNT``: a server), ``None`` for no ProductOptions key (the OS kind cannot be read)."""
    tree = sbkit.system_tree(product_type=product_type or "")
    if product_type is None:
        del tree[r"ControlSet001\Control\ProductOptions"]
    for name, values in drivers.items():
        tree[rf"ControlSet001\Services\{name}"] = {"Type": 1, "ErrorControl": 1, **values}
    tree.update({k: dict(v) for k, v in dict(extra).items()})
    return tree


def disk(
    builder: ModuleType, work: Path, name: str, tree: Mapping[str, Mapping[str, Any]] | None, files: Mapping[str, bytes]
) -> Path:
    """A GPT disk with an ESP and an NTFS volume holding the SYSTEM hive (``tree``) and ``files``."""
    windows = dict(files)
    if tree is not None:
        windows[SYSTEM] = sbkit.hive_file(builder, work / f"{name}.SYSTEM", "SYSTEM", tree).read_bytes()
    return sbkit.gpt_image(work, name, {r"EFI\Boot\bootx64.efi": b"MZ"}, windows)


def context(image: Image, security_type: str | None = None, verify: bool = False) -> AuditContext:
    return AuditContext(
        registry=image.registry,
        facts=image.facts,
        options=AuditOptions(target=Target(security_type=security_type), verify_signatures=verify),
        files=image.files,
        bcd=image.bcd,
    )


def opened(path: Path) -> Image:
    return open_image(path, hives=("SYSTEM",))


def authentihash(data: bytes) -> bytes:
    """The file's Authenticode SHA-256, computed by signify's fingerprinter."""
    import hashlib

    from azvhdaudit.authenticode import load_signify

    pe = load_signify()["SignedPEFile"](io.BytesIO(data))
    return bytes(pe.get_fingerprints(hashlib.sha256)["sha256"])


def catalog(work: Path, members: list[bytes], template: bytes) -> bytes:
    """A catalog file listing ``members`` by Authenticode SHA-256: a CTL (signify's ASN.1 classes, the
    SpcPeImageData taken from the real signed ``template``) signed by ``openssl cms`` with a self-made key."""
    import datetime

    from asn1crypto import x509
    from signify.asn1 import ctl, spc

    from azvhdaudit.authenticode import read_signatures

    utc = datetime.timezone.utc
    _, _, _, sigs = read_signatures(io.BytesIO(template), name="template")
    pe_image_data = sigs[0][0].content_asn1["data"]
    subjects = []
    for data in members:
        digest = authentihash(data)
        indirect = spc.SpcIndirectDataContent(
            {
                "data": pe_image_data,
                "message_digest": {"digest_algorithm": {"algorithm": "sha256"}, "digest": digest},
            }
        )
        subjects.append(
            {
                "subject_identifier": digest.hex().upper().encode("utf-16-le"),
                "subject_attributes": [{"type": "microsoft_spc_indirect_data_content", "values": [indirect]}],
            }
        )
    body = ctl.CertificateTrustList(
        {
            "subject_usage": ["microsoft_catalog_list"],
            "list_identifier": b"\x01" * 16,
            "ctl_this_update": x509.Time(name="utc_time", value=datetime.datetime(2026, 1, 1, tzinfo=utc)),
            "subject_algorithm": {"algorithm": "1.3.6.1.4.1.311.12.1.2"},
            "trusted_subjects": subjects,
        }
    )
    key, cert = self_signed_cert(work, "/CN=Contoso Catalog Signing", "catsign")
    src, out = work / "ctl.der", work / "oem1.cat"
    src.write_bytes(body.dump())
    openssl(
        "cms",
        "-sign",
        "-binary",
        "-nodetach",
        "-nosmimecap",
        "-econtent_type",
        "1.3.6.1.4.1.311.10.1",
        "-md",
        "sha256",
        "-signer",
        str(cert),
        "-inkey",
        str(key),
        "-in",
        str(src),
        "-outform",
        "DER",
        "-out",
        str(out),
    )
    return out.read_bytes()
