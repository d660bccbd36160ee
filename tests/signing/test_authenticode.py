"""azvhdaudit.authenticode on real binaries nobody here made, on files signed here, and on hostile input.

What each real binary carries was first read with osslsigncode (`osslsigncode verify -in FILE`) and is asserted
here through the project's verifier; the signer subjects below are the ones both show.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from types import ModuleType

import pytest

from azvhdaudit import authenticode
from azvhdaudit.authenticode import (
    ATTESTED_EKU,
    MAX_CERT_TABLE,
    Catalogs,
    SignatureError,
    kernel_signatures,
    uefi_signers,
)

from . import sigkit

ROOT2010 = "Microsoft Root Certificate Authority 2010"
WHCP = "CN=Microsoft Windows Hardware Compatibility Publisher"


def files_of(**named: bytes) -> sigkit.BytesFiles:
    return sigkit.BytesFiles({k: v for k, v in named.items()})


# --- real binaries -------------------------------------------------------------------------------------------


def test_windivert_401_whcp_nested_signature_is_kernel_mode(material: dict[str, bytes]) -> None:
    sig = kernel_signatures(files_of(d=material["WinDivert64-4.0.1.sys"]), "d")
    assert [s.source for s in sig.signers] == ["embedded", "nested"]
    ev, whcp = sig.signers
    assert "Sectigo Public Code Signing CA EV R36" in ev.issuer and not ev.verified and not ev.kernel_mode
    assert whcp.subject.startswith(WHCP) and "Third Party Component CA 2014" in whcp.issuer
    assert whcp.verified and whcp.kernel_mode and whcp.anchor == ROOT2010
    assert whcp.chain[0].startswith(WHCP) and whcp.chain[-1].startswith(f"CN={ROOT2010}")
    assert "1.3.6.1.4.1.311.10.3.5" in whcp.ekus
    assert sig.kernel_trusted is whcp
    # its Hardware Compatibility Publisher certificate also carries the attestation EKU: attestation-signed
    assert ATTESTED_EKU in whcp.ekus and whcp.attested and sig.attestation_only
    # fast path: the headers and the certificate table, not the 94 KB file
    assert sig.mode == "fast" and sig.cert_table is not None
    assert sig.bytes_read <= 4096 + sig.cert_table[1] < len(material["WinDivert64-4.0.1.sys"])
    assert whcp.file_digest is None


def test_windivert_210_cross_signed_plus_attestation(material: dict[str, bytes]) -> None:
    sig = kernel_signatures(files_of(d=material["WinDivert64-2.1.0.sys"]), "d")
    ev, attested = sig.signers
    assert "Ars Nova Systems" in ev.subject and "DigiCert EV Code Signing CA (SHA2)" in ev.issuer
    assert not ev.verified and "cross-signed to Microsoft Code Verification Root" in ev.why
    assert attested.source == "nested" and attested.subject.startswith(WHCP)
    assert attested.verified and attested.kernel_mode and attested.anchor == ROOT2010
    # the attestation EKU is read from the certificate table on the fast path, and agrees with the complete mode
    assert attested.attested and sig.attestation_only and not ev.attested
    full = kernel_signatures(files_of(d=material["WinDivert64-2.1.0.sys"]), "d", verify=True)
    assert [s.attested for s in full.signers] == [False, True] and full.attestation_only


def test_microsoft_signed_dll_is_not_a_kernel_mode_chain(material: dict[str, bytes]) -> None:
    """msvcp140.dll is signed by Microsoft, under Microsoft Root Certificate Authority 2011: not a kernel anchor."""
    sig = kernel_signatures(files_of(d=material["msvcp140.dll"]), "d")
    subjects = [s.subject.split(",")[0] for s in sig.signers]
    assert subjects == ["CN=Microsoft Windows Software Compatibility Publisher", "CN=Microsoft Corporation"]
    assert all("Microsoft Corporation" in s.subject and not s.verified for s in sig.signers)
    assert sig.kernel_trusted is None


def test_shim_chains_to_both_uefi_cas(material: dict[str, bytes]) -> None:
    signers = uefi_signers(io.BytesIO(material["shimx64.efi"]), name="shim")
    assert [(s.subject.split(",")[0], s.ca, s.verified) for s in signers] == [
        ("CN=Microsoft Windows UEFI Driver Publisher", "Microsoft Corporation UEFI CA 2011", True),
        ("CN=Microsoft UEFI CA 2023 signer", "Microsoft UEFI CA 2023", True),
    ]
    complete = uefi_signers(io.BytesIO(material["shimx64.efi"]), name="shim", verify=True)
    assert all(s.verified and s.file_digest == s.signed_digest for s in complete)
    # and the shim is no kernel driver: its chains end at UEFI CAs, not at the kernel-mode root
    assert kernel_signatures(files_of(d=material["shimx64.efi"]), "d").kernel_trusted is None


def test_unsigned_pywin32_dll(material: dict[str, bytes]) -> None:
    sig = kernel_signatures(files_of(d=material["perfmondata.dll"]), "d")
    assert sig.cert_table is None and sig.signers == () and sig.kernel_trusted is None


def test_complete_mode_hashes_the_file_and_catches_a_change(material: dict[str, bytes]) -> None:
    good = material["WinDivert64-4.0.1.sys"]
    full = kernel_signatures(files_of(d=good), "d", verify=True)
    assert full.mode == "complete" and full.cert_table is not None
    # every byte read once: the first page, read for the headers, is not read again for the hash
    assert full.bytes_read == len(good)
    assert full.kernel_trusted is not None and full.kernel_trusted.file_digest == full.kernel_trusted.signed_digest
    changed = bytearray(good)
    changed[0x500] ^= 0xFF  # inside .text, covered by the Authenticode digest
    fast = kernel_signatures(files_of(d=bytes(changed)), "d")
    assert fast.kernel_trusted is not None  # the fast path does not hash the file: that is what it promises
    slow = kernel_signatures(files_of(d=bytes(changed)), "d", verify=True)
    assert slow.kernel_trusted is None
    assert all("changed after it was signed" in s.why for s in slow.signers)


# --- signed here -----------------------------------------------------------------------------------------------


def test_lookalike_microsoft_ca_is_never_trusted(sample_builder: ModuleType, sigwork: Path) -> None:
    key, cert, chain = sigkit.lookalike_chain(sigwork)
    data = sigkit.sign(sigkit.driver(sample_builder, sigwork), sigwork, key, chain)
    sig = kernel_signatures(files_of(d=data), "d")
    (only,) = sig.signers
    assert only.subject.startswith("CN=Microsoft Windows,") and "Microsoft Windows Production PCA 2011" in only.issuer
    assert "1.3.6.1.4.1.311.10.3.6" in only.ekus
    assert not only.verified and only.anchor is None and sig.kernel_trusted is None
    assert (
        "names Microsoft Root Certificate Authority 2010, but does not verify against that trust anchor's exact "
        "certificate" in only.why
    )
    efi = uefi_signers(io.BytesIO(data), name="d")
    assert [(s.ca, s.verified) for s in efi] == [(None, False)]


def test_self_signed_driver(sample_builder: ModuleType, sigwork: Path) -> None:
    key, cert = sigkit.self_signed_cert(sigwork, "/CN=Contoso Driver Signing")
    data = sigkit.sign(sigkit.driver(sample_builder, sigwork), sigwork, key, cert)
    sig = kernel_signatures(files_of(d=data), "d")
    assert [(s.subject, s.verified) for s in sig.signers] == [("CN=Contoso Driver Signing", False)]
    assert (
        sig.signers[0].why == "the chain ends at a self-signed certificate, not at Microsoft Root Certificate "
        "Authority 2010"
    )


def test_catalog_lookup_finds_the_member_and_checks_the_catalog_signature(
    sample_builder: ModuleType, sigwork: Path, material: dict[str, bytes]
) -> None:
    """A catalog (CTL in PKCS#7, built with asn1crypto, signed by openssl cms) lists an unsigned driver by its
    Authenticode SHA-256; complete mode finds it there and checks the catalog's own chain (self-made: untrusted)."""
    unsigned = material["perfmondata.dll"]
    cat = sigkit.catalog(sigwork, [unsigned], material["WinDivert64-4.0.1.sys"])
    files = files_of(**{"d": unsigned, f"{authenticode.CATROOT}\\oem1.cat": cat})
    fast = kernel_signatures(files, "d")
    assert fast.catalog is None and fast.signers == ()
    catalogs = Catalogs(files)
    full = kernel_signatures(files, "d", verify=True, catalogs=catalogs)
    assert full.catalog == "oem1.cat" and catalogs.count == 1 and full.catalog_bytes_read == len(cat)
    assert full.bytes_read == len(unsigned)  # hashed whole, each byte once, to be looked up
    (entry,) = full.signers
    assert entry.source == "catalog oem1.cat" and entry.subject == "CN=Contoso Catalog Signing"
    assert not entry.verified and full.kernel_trusted is None
    other = kernel_signatures(
        files_of(**{"d": material["msvcp140.dll"], f"{authenticode.CATROOT}\\oem1.cat": cat}),
        "d",
        verify=True,
        catalogs=Catalogs(files),
    )
    assert other.catalog is None


# --- hostile input ---------------------------------------------------------------------------------------------


def _security_dir(data: bytes) -> int:
    (lfanew,) = struct.unpack_from("<I", data, 0x3C)
    magic = struct.unpack_from("<H", data, lfanew + 24)[0]
    return lfanew + 24 + (144 if magic == 0x20B else 128)


def _with_table(data: bytes, offset: int, size: int) -> bytes:
    out = bytearray(data)
    struct.pack_into("<II", out, _security_dir(data), offset, size)
    return bytes(out)


def test_not_a_pe_file() -> None:
    with pytest.raises(SignatureError, match="not a PE file"):
        kernel_signatures(files_of(d=b"hello world" * 100), "d")


def test_signature_error_is_the_librarys_own_and_names_the_file_and_the_field(material: dict[str, bytes]) -> None:
    """SignatureError lives in azvhdaudit.errors under AuditError; the old import path gives the same class."""
    from azvhdaudit import errors

    assert SignatureError is errors.SignatureError and issubclass(SignatureError, errors.AuditError)
    assert "SignatureError" in errors.__all__
    path = r"Windows\System32\drivers\big.sys"
    base = material["WinDivert64-4.0.1.sys"]
    big = _with_table(base + bytes(MAX_CERT_TABLE + 16), len(base), MAX_CERT_TABLE + 16)
    with pytest.raises(errors.AuditError) as caught:
        kernel_signatures(files_of(**{path: big}), path)
    assert str(caught.value) == (
        f"{path}: certificate table of {MAX_CERT_TABLE + 16} bytes at offset {len(base)} is larger than "
        f"the {MAX_CERT_TABLE} bytes read"
    )


def test_certificate_table_too_large(material: dict[str, bytes]) -> None:
    base = material["WinDivert64-4.0.1.sys"]
    big = _with_table(base + bytes(MAX_CERT_TABLE + 16), len(base), MAX_CERT_TABLE + 16)
    with pytest.raises(SignatureError, match="larger than"):
        kernel_signatures(files_of(d=big), "d")


def test_certificate_table_beyond_the_file_is_no_table(material: dict[str, bytes]) -> None:
    base = material["WinDivert64-4.0.1.sys"]
    sig = kernel_signatures(files_of(d=_with_table(base, len(base) - 8, 4096)), "d")
    assert sig.cert_table is None and sig.kernel_trusted is None


@pytest.mark.parametrize(
    "garbage", [b"\x30\x82\xff\xff" + bytes(60), b"\x30\x03\x06\x01\x00" + bytes(59), bytes(range(64))]
)
def test_garbage_signature_gives_a_signature_error(material: dict[str, bytes], garbage: bytes) -> None:
    base = material["perfmondata.dll"]
    entry = struct.pack("<IHH", 8 + len(garbage), 0x200, 2) + garbage
    data = _with_table(base + entry, len(base), len(entry))
    try:
        sig = kernel_signatures(files_of(d=data), "d")
    except SignatureError as err:
        assert "d:" in str(err)
    else:
        assert sig.kernel_trusted is None and all(not s.verified for s in sig.signers)


def test_truncated_signature_is_a_signature_error(material: dict[str, bytes]) -> None:
    good = material["WinDivert64-4.0.1.sys"]
    off, size = struct.unpack_from("<II", good, _security_dir(good))
    cut = bytearray(good[: off + size])
    struct.pack_into("<I", cut, off + 8 + 2, 0x7FFF)  # inflate the ContentInfo's length
    try:
        sig = kernel_signatures(files_of(d=bytes(cut)), "d")
    except SignatureError:
        return
    assert sig.kernel_trusted is None


@pytest.mark.slow
def test_mutated_certificate_tables_never_raise_a_foreign_error(material: dict[str, bytes]) -> None:
    """Byte flips in the certificate table (and the headers) give a SignatureError or untrusted signatures,
    never another exception; the Dev Center signature stays trusted only while its own bytes are intact."""
    import random

    good = material["WinDivert64-2.1.0.sys"]
    off, size = struct.unpack_from("<II", good, _security_dir(good))
    rnd = random.Random(18)
    outcomes = {"error": 0, "trusted": 0, "untrusted": 0}
    for _ in range(150):
        data = bytearray(good)
        for _ in range(rnd.choice([1, 4, 16])):
            pos = rnd.randrange(off, off + size) if rnd.random() < 0.9 else rnd.randrange(0, 1024)
            data[pos] = rnd.randrange(256)
        try:
            sig = kernel_signatures(files_of(d=bytes(data)), "d", verify=rnd.random() < 0.2)
        except SignatureError:
            outcomes["error"] += 1
            continue
        outcomes["trusted" if sig.kernel_trusted else "untrusted"] += 1
    assert all(outcomes.values()), outcomes


def test_oscrypto_loads_with_the_machines_openssl() -> None:
    """In a fresh interpreter: signify and oscrypto import (the version-pattern fix applied where needed) and
    oscrypto reads the same OpenSSL version as Python's ssl module."""
    import subprocess
    import sys

    code = (
        "import ssl, re; from azvhdaudit.authenticode import load_signify; load_signify(); "
        "from oscrypto._openssl._libcrypto import libcrypto_version_info as v; "
        "m = re.search(r'(\\d+)\\.(\\d+)\\.(\\d+)', ssl.OPENSSL_VERSION); "
        "assert v[:3] == tuple(int(x) for x in m.groups()), (v, ssl.OPENSSL_VERSION); print(v)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_only_the_binding_oscrypto_uses_is_prepared() -> None:
    """In a fresh interpreter: loading signify prepares (patches and runs) the libcrypto binding of the FFI oscrypto
    chose, and leaves the other one unloaded."""
    import subprocess
    import sys

    code = (
        "import sys, oscrypto; from azvhdaudit.authenticode import load_signify; load_signify(); "
        "loaded = sorted(m for m in sys.modules if m.startswith('oscrypto._openssl._libcrypto_')); "
        "assert loaded == ['oscrypto._openssl._libcrypto_' + oscrypto.ffi()], loaded; print(loaded)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "_libcrypto_" in done.stdout


def test_the_fix_is_only_applied_to_the_old_pattern() -> None:
    old, new = authenticode._OSCRYPTO_FIX[0]
    assert old != new and "\\\\d+" in new and "\\\\d+" not in old


def test_a_file_without_a_certificate_table_does_not_load_the_verifier(
    material: dict[str, bytes], tmp_path: Path
) -> None:
    """The fast path on an unsigned driver reads its headers with pefile; signify and oscrypto stay unloaded."""
    import subprocess
    import sys

    path = tmp_path / "unsigned.dll"
    path.write_bytes(material["perfmondata.dll"])
    code = (
        "import io, sys; from azvhdaudit.authenticode import kernel_signatures\n"
        "class F:\n    def open(self, p): return open(p, 'rb')\n"
        f"sig = kernel_signatures(F(), {str(path)!r})\n"
        "assert sig.cert_table is None and sig.bytes_read == 4096, sig\n"
        "assert 'signify' not in sys.modules and 'oscrypto' not in sys.modules, sorted(sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_complete_mode_hashes_an_unsigned_file_only_when_catalogs_list_files(
    material: dict[str, bytes], tmp_path: Path
) -> None:
    """Without catalog members nothing could use an unsigned file's digest: complete mode reads its headers
    only, says why in its notes, and signify stays unloaded (no signature, no catalog to parse)."""
    import subprocess
    import sys

    path = tmp_path / "unsigned.dll"
    path.write_bytes(material["perfmondata.dll"])
    code = (
        "import sys; from azvhdaudit.authenticode import kernel_signatures, Catalogs, CATROOT\n"
        "class F:\n"
        "    def open(self, p): return open(p, 'rb')\n"
        "    def listdir(self, p): return None\n"
        f"sig = kernel_signatures(F(), {str(path)!r}, verify=True, catalogs=Catalogs(F()))\n"
        "assert sig.mode == 'complete' and sig.cert_table is None and sig.bytes_read == 4096, sig\n"
        "assert sig.notes == (CATROOT + ' does not exist',), sig.notes\n"
        "assert 'signify' not in sys.modules and 'oscrypto' not in sys.modules, sorted(sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_remembered_chains_depend_on_the_certificates_at_hand(material: dict[str, bytes]) -> None:
    """A chain found once is reused only with the same certificate set: the signer certificate alone, without
    the intermediate its signature carried, does not chain."""
    import datetime

    _, _, _, sigs = authenticode.read_signatures(io.BytesIO(material["WinDivert64-4.0.1.sys"]), name="d")
    from signify.x509 import CertificateStore  # loaded (with the oscrypto fix) by read_signatures

    nested = next(s for s, src in sigs if src == "nested")
    leaf = authenticode._signer_cert(nested)
    store, _ = authenticode._store(authenticode.KERNEL_ANCHORS)
    when = leaf.valid_from + datetime.timedelta(seconds=1)
    cls = authenticode._context_class()
    authenticode._CHAINS.clear()
    full = cls(store, nested.certificates, timestamp=when, anchors=authenticode.KERNEL_ANCHORS)
    assert full.verify(leaf)[0].subject.dn.startswith("CN=Microsoft Root Certificate Authority 2010")
    alone = cls(store, CertificateStore([leaf]), timestamp=when, anchors=authenticode.KERNEL_ANCHORS)
    with pytest.raises(Exception, match="Chain verification"):
        alone.verify(leaf)
    assert len(authenticode._CHAINS) == 2
    assert full.verify(leaf) is authenticode._CHAINS[next(iter(authenticode._CHAINS))]


@pytest.mark.parametrize(
    "name", ["WinDivert64-4.0.1.sys", "WinDivert64-2.1.0.sys", "msvcp140.dll", "shimx64.efi", "perfmondata.dll"]
)
def test_certificate_table_location_agrees_with_pefile(material: dict[str, bytes], name: str) -> None:
    import pefile

    data = material[name]
    pe = pefile.PE(data=data, fast_load=True)
    entry = pe.OPTIONAL_HEADER.DATA_DIRECTORY[4]
    expected = (entry.VirtualAddress, entry.Size) if entry.Size else None
    assert authenticode._locate(authenticode._Reader(io.BytesIO(data), name)) == expected


@pytest.mark.parametrize("name", ["WinDivert64-4.0.1.sys", "WinDivert64-2.1.0.sys"])
@pytest.mark.parametrize("verify", [False, True], ids=["fast", "complete"])
def test_each_signature_is_decoded_once(
    material: dict[str, bytes], monkeypatch: pytest.MonkeyPatch, name: str, verify: bool
) -> None:
    """Counted, not timed: a check builds each signature's SignerInfo once and decodes its two attribute sets
    once (signify alone rebuilds them at every access: dozens of times a signature), and never decodes the
    countersignature (checks ignore it)."""
    authenticode.load_signify()
    from signify.pkcs7 import signer_info

    built = {"signer_info": 0, "attributes": 0}
    init, parse = signer_info.SignerInfo.__init__, signer_info.SignerInfo._parse_attributes.__func__

    def counting_init(self: object, *args: object, **kwargs: object) -> None:
        built["signer_info"] += 1
        init(self, *args, **kwargs)

    def counting_parse(cls: type, data: object) -> object:
        built["attributes"] += 1
        return parse(cls, data)

    monkeypatch.setattr(signer_info.SignerInfo, "__init__", counting_init)
    monkeypatch.setattr(signer_info.SignerInfo, "_parse_attributes", classmethod(counting_parse))
    sig = kernel_signatures(files_of(d=material[name]), "d", verify=verify)
    assert len(sig.signers) == 2 and sig.kernel_trusted is not None
    # two signatures (the embedded one and its nested one): one SignerInfo and two attribute sets each
    assert built == {"signer_info": 2, "attributes": 4}


def test_equal_certificates_are_one_object_across_files(material: dict[str, bytes]) -> None:
    """Two files carrying the same certificates get the same decoded objects (decoded once), in the same order,
    and each access still gives a store of its own."""

    from azvhdaudit.authenticode import read_signatures

    data = material["WinDivert64-4.0.1.sys"]
    first = read_signatures(io.BytesIO(data), name="a")[3][0][0]
    second = read_signatures(io.BytesIO(bytes(data)), name="b")[3][0][0]
    assert first is not second
    a, b = list(first.certificates), list(second.certificates)
    assert len(a) == len(b) >= 2 and all(x is y for x, y in zip(a, b, strict=True))
    assert first.certificates is not first.certificates
