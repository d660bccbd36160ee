"""Authenticode signatures of PE files in the image, verified offline against trust anchors kept in the package.

References:
- "Windows Authenticode Portable Executable Signature Format" (Microsoft, Authenticode_PE.docx, 2008-03-21):
  the certificate table (IMAGE_DIRECTORY_ENTRY_SECURITY, a file offset), WIN_CERTIFICATE, SpcIndirectDataContent
  and the image hash that leaves out the checksum, the table's directory entry and the table itself.
- "Driver Signing Policy" (learn.microsoft.com/windows-hardware/drivers/install/kernel-mode-code-signing-policy--
  windows-vista-and-later-): from Windows 10 1607 with Secure Boot on, new kernel drivers must be signed through
  the Windows Hardware Dev Center (Microsoft Root Certificate Authority 2010 -> Microsoft Windows Third Party
  Component CA 2012/2014 -> "Microsoft Windows Hardware Compatibility Publisher"); drivers that are part of
  Windows are signed "Microsoft Windows" (Windows Production PCA 2011 -> Microsoft Root Certificate Authority 2010).
  Cross-signed drivers chain to "Microsoft Code Verification Root".
- "Windows Secure Boot Key Creation and Management Guidance" (learn.microsoft.com/windows-hardware/manufacture/
  desktop/windows-secure-boot-key-creation-and-management-guidance): the UEFI ``db`` holds Microsoft Windows
  Production PCA 2011 and Microsoft Corporation UEFI CA 2011, and since 2023 Windows UEFI CA 2023 and Microsoft
  UEFI CA 2023.

The parsing and the cryptography are signify's (asn1crypto for the ASN.1, certvalidator for the path). Trust is
by exact certificate: the anchors are the DER certificates under ``azvhdaudit/data`` whose SHA-256 fingerprints
are pinned below (a certificate that only carries a Microsoft name is never an anchor). Neither Windows' code
integrity nor UEFI firmware enforces certificate expiry, so a chain is checked at the time its signing
certificate was issued, not today (both 2011 Secure Boot CAs expired in 2026).

Cost: the fast path (``verify=False``) reads the PE headers and the certificate table only (a few KB) and checks
the signatures' structure, the signer's signature over the signed attributes and the chain; it does not hash
the file. ``verify=True`` also computes the Authenticode digest of the whole file and compares it with the signed
one, and looks up files without a trusted embedded signature in the CatRoot catalogs (a file without an embedded
signature is hashed only when the catalogs list files: there is nothing else to compare its digest with). Every
byte is read once: the first page, read for the headers, serves the hash too.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib
import importlib.util
import io
import logging
import os
import pkgutil
import struct
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from azvhdaudit.errors import GuestFileNotFoundError, SignatureError

if TYPE_CHECKING:
    from azvhdaudit.rules.base import GuestFiles

__all__ = [
    "SignatureError",
    "Anchor",
    "KERNEL_ANCHORS",
    "UEFI_DB_ANCHORS",
    "KERNEL_EKUS",
    "ATTESTED_EKU",
    "Signer",
    "FileSignatures",
    "Catalogs",
    "CATROOT",
    "read_signatures",
    "kernel_signatures",
    "uefi_signers",
    "load_signify",
]

log = logging.getLogger(__name__)

#: the largest certificate table read (a driver's or a boot manager's is 5-30 KB)
MAX_CERT_TABLE = 512 * 1024
#: the most signatures (table entries plus nested ones) looked at in one file
MAX_SIGNATURES = 16
#: how deep nested signatures (SPC nested signature attributes) are followed
MAX_NESTING = 4
#: the most certificates one signature may carry
MAX_CERTIFICATES = 64
#: the longest chain accepted, signer to anchor
MAX_CHAIN = 8
#: the largest file hashed whole with ``verify=True`` (the largest boot drivers are a few tens of MB)
MAX_HASHED_FILE = 256 * 1024 * 1024
#: the largest catalog read, the most catalogs and the most bytes of catalogs read in one audit
MAX_CATALOG = 64 * 1024 * 1024
MAX_CATALOGS = 20000
MAX_CATALOG_BYTES = 2 * 1024 * 1024 * 1024
#: the system catalog database Windows checks catalog-signed drivers against
CATROOT = r"Windows\System32\CatRoot\{F750E6C3-38EE-11D1-85E5-00C04FC295EE}"
_HEAD = 4096
_SECURITY = 4  # IMAGE_DIRECTORY_ENTRY_SECURITY
#: optional header magic -> offsets of NumberOfRvaAndSizes and of the security directory entry
_DIRECTORIES = {0x10B: (92, 128), 0x20B: (108, 144)}

#: leaf EKUs that mark a Microsoft kernel-mode signature under Microsoft Root Certificate Authority 2010
KERNEL_EKUS: dict[str, str] = {
    "1.3.6.1.4.1.311.10.3.5": "Windows Hardware Driver Verification",
    "1.3.6.1.4.1.311.10.3.5.1": "Windows Hardware Driver Attested Verification",
    "1.3.6.1.4.1.311.10.3.6": "Windows System Component Verification",
    "1.3.6.1.4.1.311.10.3.39": "Windows Hardware Driver Extended Verification",
}
#: the EKU that marks an attestation signature ("Support policy for third-party, kernel-level software that is signed
#: using the attestation process", KB 4519013: "If the text in that row includes Windows Hardware Driver Attested
#: Verification, the driver was attestation-signed")
ATTESTED_EKU = "1.3.6.1.4.1.311.10.3.5.1"


# --- signify, loaded on first use ------------------------------------------------------------------------------

# oscrypto 1.3.0 (signify's crypto backend, the last release) finds libcrypto's version with the pattern
# r"\b(\d\.\d\.\d[a-z]*)\b", which does not match a two-digit patch release ("OpenSSL 3.0.19"): the import fails
# with "Error detecting the version of libcrypto" on Debian 12 and every distribution past OpenSSL 3.0.9.
# Upstream fixed the patterns after the release (oscrypto commit d5f3437, "Make OpenSSL version regexes more
# robust"). The shim below applies exactly that change to the module's source before it first runs, only when
# the installed module still holds the old pattern; a fixed oscrypto is imported as it is.
_OSCRYPTO_FIX = (
    ("'\\\\b(\\\\d\\\\.\\\\d\\\\.\\\\d[a-z]*)\\\\b'", "'\\\\b(\\\\d+\\\\.\\\\d+\\\\.\\\\d+[a-z]*)\\\\b'"),
    ("'(?<=LibreSSL )(\\\\d\\\\.\\\\d(\\\\.\\\\d)?)\\\\b'", "'(?<=LibreSSL )(\\\\d+\\\\.\\\\d+(\\\\.\\\\d+)?)\\\\b'"),
    ("re.sub('(\\\\d)([a-z]+)'", "re.sub('(\\\\d+)([a-z]+)'"),
)
_OSCRYPTO_MODULES = ("oscrypto._openssl._libcrypto_ctypes", "oscrypto._openssl._libcrypto_cffi")
_signify: dict[str, Any] = {}


def _patch_oscrypto() -> list[str]:
    """Import oscrypto's libcrypto bindings with the upstream version-pattern fix; the modules patched."""
    patched: list[str] = []
    if sys.platform in ("win32", "darwin"):
        return patched  # oscrypto uses the OS's own crypto there, not libcrypto
    import oscrypto

    # oscrypto imports one of the two bindings, the one for the FFI it chose (cffi when installed, else ctypes):
    # only that one is patched, as preparing the other (compiling its source, loading and declaring the library)
    # costs tens of milliseconds for a module nothing would use
    chosen = f"_libcrypto_{oscrypto.ffi()}"
    for name in _OSCRYPTO_MODULES:
        if not name.endswith(chosen):
            continue
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or spec.origin is None:
            continue
        source = spec.loader.get_source(name)  # type: ignore[attr-defined]
        if source is None or _OSCRYPTO_FIX[0][0] not in source:
            continue
        for old, new in _OSCRYPTO_FIX:
            source = source.replace(old, new)
        code = compile(source, spec.origin, "exec")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            exec(code, module.__dict__)
        except ImportError:
            # the cffi variant when cffi is not installed: leave it to oscrypto to choose ctypes
            del sys.modules[name]
            continue
        except Exception:
            del sys.modules[name]
            raise
        patched.append(name)
    return patched


def _point_oscrypto_at_pythons_openssl() -> str:
    """Give oscrypto the libcrypto and libssl this Python's ``ssl`` module already loaded; what was chosen.

    Left to itself, oscrypto looks the libraries up with :func:`ctypes.util.find_library`, which runs
    ``ldconfig -p`` in a subprocess (and opens ``/dev/null`` for it) in the middle of an audit. The loaded
    libraries are read from ``/proc/self/maps`` instead; where that is not possible oscrypto keeps its own way.
    """
    if not sys.platform.startswith("linux"):
        return ""
    import ssl  # noqa: F401 - loads libssl and libcrypto into the process

    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            loaded = {parts[-1] for parts in (line.split() for line in maps) if len(parts) >= 6}
    except OSError:
        return ""
    crypto = sorted(p for p in loaded if os.path.basename(p).startswith("libcrypto.so"))
    libssl = sorted(p for p in loaded if os.path.basename(p).startswith("libssl.so"))
    if not (crypto and libssl):
        return ""
    import oscrypto

    try:
        oscrypto.use_openssl(crypto[0], libssl[0])
    except (RuntimeError, ValueError, OSError) as err:  # a backend already chosen, or files that moved
        log.debug("oscrypto keeps its own library lookup: %s", err)
        return ""
    return crypto[0]


def load_signify() -> dict[str, Any]:
    """signify's classes, importing it (with the oscrypto fix) on first use.

    Raises :class:`SignatureError` when signify or its crypto backend cannot be imported.
    """
    if _signify:
        return _signify
    try:
        chosen = _point_oscrypto_at_pythons_openssl()
        if chosen:
            log.debug("oscrypto: using the libcrypto Python loaded, %s", chosen)
        patched = _patch_oscrypto()
        if patched:
            log.debug("oscrypto: applied the libcrypto version-pattern fix to %s", ", ".join(patched))
        from signify import exceptions
        from signify.authenticode.signed_data import AuthenticodeSignature
        from signify.authenticode.signed_file.pe import SignedPEFile
        from signify.authenticode.trust_list import CertificateTrustList
        from signify.x509 import Certificate

        signature_class, trust_list_class, store_class = _remembering(AuthenticodeSignature, CertificateTrustList)
    except Exception as err:  # an import of a third-party crypto stack fails in many ways (OSError, ...)
        raise SignatureError(
            f"the Authenticode verifier cannot be loaded: importing signify and its crypto backend oscrypto "
            f"failed: {type(err).__name__}: {err}"
        ) from err
    _signify.update(
        AuthenticodeSignature=signature_class,
        SignedPEFile=SignedPEFile,
        CertificateTrustList=trust_list_class,
        Certificate=Certificate,
        CertificateStore=store_class,
        SignifyError=exceptions.SignifyError,
    )
    return _signify


#: the EKU "microsoft_lifetime_signing": a signature whose issuer carries it is not extended by its timestamp
_LIFETIME_SIGNING = "1.3.6.1.4.1.311.10.3.13"


def _up(cls: type, obj: Any) -> Any:
    """``super(cls, obj)``, untyped: the mixins below reach signify's properties through it."""
    return super(cls, obj)


def _remember(obj: Any, slot: str, make: Any) -> Any:
    """``obj.__dict__[slot]``, made by ``make()`` on first use."""
    found = obj.__dict__.get(slot)
    if found is None:
        found = obj.__dict__[slot] = make()
    return found


def _remembering(signature: type, trust_list: type) -> tuple[type, type, type]:
    """signify's AuthenticodeSignature and CertificateTrustList, each parsed part made once per object.

    In signify 0.9.3 ``SignedData.signer_infos`` builds and validates every SignerInfo again at each access
    (``signer_info`` twice), and a SignerInfo decodes its attribute sets again at each access of
    ``authenticated_attributes``, ``unauthenticated_attributes`` and ``nested_signed_datas``; verifying one
    signature touches them dozens of times, most of a check's cost. The objects wrap immutable ASN.1, so these
    subclasses keep the first answer. The countersignature, which no check here uses, is not decoded. The
    certificate store compares names as signify does (their RDN sequences), each name decoded once."""
    from signify.authenticode.signer_info import AuthenticodeSignerInfo
    from signify.authenticode.trust_list import CertificateTrustListSignerInfo
    from signify.exceptions import AuthenticodeParseError
    from signify.x509 import CertificateStore

    class Store(CertificateStore):  # type: ignore[misc]
        def find_certificates(
            self,
            *,
            subject: Any = None,
            serial_number: int | None = None,
            issuer: Any = None,
            sha256_fingerprint: str | None = None,
        ) -> Iterator[Any]:
            # signify's own tests in its order; a name equals another when their RDN sequences do
            subject_rdns = None if subject is None else _rdns(subject)
            issuer_rdns = None if issuer is None else _rdns(issuer)
            fingerprint = None if sha256_fingerprint is None else sha256_fingerprint.replace(" ", "").lower()
            for certificate in self:
                if subject_rdns is not None and _rdns(certificate.subject) != subject_rdns:
                    continue
                if serial_number is not None and certificate.serial_number != serial_number:
                    continue
                if issuer_rdns is not None and _rdns(certificate.issuer) != issuer_rdns:
                    continue
                if fingerprint is not None and certificate.sha256_fingerprint.replace(" ", "").lower() != fingerprint:
                    continue
                yield certificate

    class _Infos:
        @property
        def signer_infos(self) -> Any:
            return _remember(self, "_signer_infos", lambda: tuple(_up(_Infos, self).signer_infos))

        @property
        def signer_info(self) -> Any:
            return _remember(self, "_signer_info", lambda: _up(_Infos, self).signer_info)

        @property
        def certificates(self) -> Any:
            # a new store at each access, as signify gives, of the same Certificate objects (which remember their
            # DER, fingerprints and decoded fields): one object per distinct certificate, shared across files
            # (Windows' drivers carry the same few signer and intermediate certificates)
            certs = _remember(self, "_certificates", lambda: tuple(map(_shared, _up(_Infos, self).certificates)))
            return Store(list(certs))

    class _Attributes:
        @property
        def authenticated_attributes(self) -> Any:
            return _remember(self, "_signed_attrs", lambda: _up(_Attributes, self).authenticated_attributes)

        @property
        def unauthenticated_attributes(self) -> Any:
            return _remember(self, "_unsigned_attrs", lambda: _up(_Attributes, self).unauthenticated_attributes)

        @property
        def countersigner(self) -> None:
            # Every check here runs with countersignature_mode="ignore" (a chain is checked at the time its signing
            # certificate was issued, not at a timestamp), yet signify decodes the countersignature (an RFC 3161
            # SignedData) to decide whether to make a context for it: it is not decoded at all.
            return None

    class SignerInfo(_Attributes, AuthenticodeSignerInfo):  # type: ignore[misc]
        def _verify_issuer(self, issuer: Any, context: Any, signing_time: Any = None) -> Any:
            # signify's own rule (a lifetime-signing issuer gets no signing time), without decoding every extension
            # of the issuer to ask for one EKU; here the signing time is always None (countersignatures ignored)
            if signing_time is not None and _LIFETIME_SIGNING in _ekus(issuer):
                signing_time = None
            return super(AuthenticodeSignerInfo, self)._verify_issuer(issuer, context, signing_time)

        @property
        def nested_signed_datas(self) -> list[Any]:
            # signify's own loop, making the nested signatures of the class below
            def make() -> list[Any]:
                nested = []
                for data in self.unauthenticated_attributes.get("microsoft_nested_signature", ()):
                    if data["content_type"].native != "signed_data":
                        raise AuthenticodeParseError("Nested signature is not a SignedData structure")
                    nested.append(Signature(data["content"], signed_file=self.parent.signed_file))
                return nested

            return list(_remember(self, "_nested", make))

    class Signature(_Infos, signature):  # type: ignore[misc, valid-type]
        _signerinfo_class_name = SignerInfo

    class TrustListSignerInfo(_Attributes, CertificateTrustListSignerInfo):  # type: ignore[misc]
        pass

    class TrustList(_Infos, trust_list):  # type: ignore[misc, valid-type]
        _signerinfo_class_name = TrustListSignerInfo

    Signature.__name__ = Signature.__qualname__ = signature.__name__
    TrustList.__name__ = TrustList.__qualname__ = trust_list.__name__
    Store.__name__ = Store.__qualname__ = CertificateStore.__name__
    return Signature, TrustList, Store


def _parse_errors() -> tuple[type[BaseException], ...]:
    # asn1crypto parses lazily and reports malformed DER as ValueError/TypeError/KeyError/IndexError from the
    # first access; signify adds its own hierarchy; oscrypto raises OSError subclasses for bad keys.
    return (
        load_signify()["SignifyError"],
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        OverflowError,
        NotImplementedError,
        RecursionError,
        OSError,
        struct.error,
    )


# --- trust anchors ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """A trust anchor: one exact certificate kept in the package, pinned by its SHA-256 fingerprint."""

    #: the certificate's subject common name, used as its label in reports
    name: str
    #: SHA-256 of the DER certificate, lower-case hex
    sha256: str
    #: the PEM file under ``azvhdaudit/data``
    resource: str

    def der(self) -> bytes:
        """The DER certificate; raises :class:`SignatureError` when the file's fingerprint is not the pinned one."""
        data = pkgutil.get_data("azvhdaudit", f"data/{self.resource}")
        if data is None:
            raise SignatureError(f"trust anchor {self.name}: data/{self.resource} is not in the package")
        from asn1crypto import pem

        der = pem.unarmor(data)[2] if pem.detect(data) else data
        found = hashlib.sha256(der).hexdigest()
        if found != self.sha256:
            raise SignatureError(
                f"trust anchor {self.name}: data/{self.resource} has SHA-256 {found}, not the pinned {self.sha256}"
            )
        return der


#: Microsoft's kernel-mode code signing root. The legacy cross-signing root (Microsoft Code Verification Root)
#: is not here: no copy of it is published in a package registry, so cross-signed chains are reported as such
#: and never trusted on a name.
KERNEL_ANCHORS: tuple[Anchor, ...] = (
    Anchor(
        "Microsoft Root Certificate Authority 2010",
        "df545bf919a2439c36983b54cdfc903dfa4f37d3996d8d84b4c31eec6f3c163e",
        "kernel_roots/microsoft-root-certificate-authority-2010.pem",
    ),
)

#: the Microsoft certificates of the UEFI Secure Boot signature database (``db``)
UEFI_DB_ANCHORS: tuple[Anchor, ...] = (
    Anchor(
        "Microsoft Windows Production PCA 2011",
        "e8e95f0733a55e8bad7be0a1413ee23c51fcea64b3c8fa6a786935fddcc71961",
        "uefi_db/microsoft-windows-production-pca-2011.pem",
    ),
    Anchor(
        "Windows UEFI CA 2023",
        "076f1fea90ac29155ebf77c17682f75f1fdd1be196da302dc8461e350a9ae330",
        "uefi_db/windows-uefi-ca-2023.pem",
    ),
    Anchor(
        "Microsoft Corporation UEFI CA 2011",
        "48e99b991f57fc52f76149599bff0a58c47154229b9f8d603ac40d3500248507",
        "uefi_db/microsoft-corporation-uefi-ca-2011.pem",
    ),
    Anchor(
        "Microsoft UEFI CA 2023",
        "f6124e34125bee3fe6d79a574eaa7b91c0e7bd9d929c1a321178efd611dad901",
        "uefi_db/microsoft-uefi-ca-2023.pem",
    ),
)

#: the name of the root that cross-certificates for legacy kernel-mode signing are issued by
CODE_VERIFICATION_ROOT = "Microsoft Code Verification Root"
#: how a :class:`Signer`'s ``why`` starts for a legacy cross-signed chain (which cannot be verified offline)
CROSS_SIGNED = "cross-signed"
_stores: dict[tuple[Anchor, ...], tuple[Any, dict[str, Anchor]]] = {}


#: chains found (or the error) per signer certificate, certificate set, anchors, time and EKUs, across files:
#: Windows' inbox drivers share a handful of signing certificates, and path building is most of a check's cost
_CHAINS: dict[tuple[Any, ...], Any] = {}
_MAX_CACHED_CHAINS = 512
_context_classes: list[type] = []


def _context_class() -> type:
    """A signify VerificationContext that remembers the chains it built (defined once signify is loaded)."""
    if _context_classes:
        return _context_classes[0]
    from signify.x509 import VerificationContext

    class CachedContext(VerificationContext):  # type: ignore[misc]
        def __init__(self, *stores: Any, anchors: tuple[Anchor, ...], **kwargs: Any) -> None:
            super().__init__(*stores, **kwargs)
            self.anchors = anchors

        def verify(self, certificate: Any) -> Any:
            others = frozenset(c.sha256_fingerprint for store in self.stores if not store.trusted for c in store)
            key = (
                certificate.sha256_fingerprint,
                others,
                self.anchors,
                self.timestamp,
                tuple(self.extended_key_usages or ()),
            )
            found = _CHAINS.get(key)
            if found is None:
                try:
                    found = super().verify(certificate)
                except Exception as err:  # remembered and raised again, exactly as signify raised it
                    found = err
                _cache_put(_CHAINS, key, found, _MAX_CACHED_CHAINS)
            if isinstance(found, Exception):
                raise found
            return found

    _context_classes.append(CachedContext)
    return CachedContext


def _store(anchors: tuple[Anchor, ...]) -> tuple[Any, dict[str, Anchor]]:
    """A trusted signify certificate store of ``anchors`` and the anchor of each DER fingerprint."""
    if anchors not in _stores:
        sig = load_signify()
        certs = []
        by_fp: dict[str, Anchor] = {}
        for anchor in anchors:
            certs.append(sig["Certificate"].from_der(anchor.der()))
            by_fp[anchor.sha256] = anchor
        _stores[anchors] = (sig["CertificateStore"](certs, trusted=True), by_fp)
    return _stores[anchors]


# --- reading -----------------------------------------------------------------------------------------------------


class _Reader(io.RawIOBase):
    """A read-only view of a guest file that counts the bytes it reads and serves the first page from memory."""

    def __init__(self, fh: BinaryIO, name: str) -> None:
        super().__init__()
        self.fh = fh
        self.name = name
        self.size = fh.seek(0, os.SEEK_END)
        fh.seek(0)
        self.head = fh.read(min(_HEAD, self.size))
        self.bytes_read = len(self.head)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.size - self.pos
        size = max(0, min(size, self.size - self.pos))
        head = len(self.head)
        if self.pos + size <= head:
            data = self.head[self.pos : self.pos + size]
        else:
            # what lies in the first page comes from memory (a whole-file hash starts there): only the rest is read
            start = min(self.pos, head)
            self.fh.seek(max(self.pos, head))
            rest = self.fh.read(self.pos + size - max(self.pos, head))
            self.bytes_read += len(rest)
            data = self.head[start:head] + rest if start < head else rest
        self.pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass(frozen=True)
class Signer:
    """One Authenticode signature (embedded, nested or a catalog's) and what its chain ends at."""

    #: the signing certificate's subject (``CN=..., O=...``), or what could be read of it
    subject: str
    issuer: str
    #: ``embedded``, ``nested`` (inside another embedded signature) or ``catalog <file>``
    source: str
    digest_algorithm: str
    #: the anchor the chain ends at (an exact certificate from :data:`KERNEL_ANCHORS` / :data:`UEFI_DB_ANCHORS`)
    anchor: str | None = None
    #: the chain's subjects, signer first, anchor last
    chain: tuple[str, ...] = ()
    #: the signature over the signed attributes and the chain to :attr:`anchor` verified
    verified: bool = False
    #: verified and the signer carries a Windows kernel-mode EKU (kernel checks only)
    kernel_mode: bool = False
    #: why the signature is not trusted, or ``""``
    why: str = ""
    #: the digest the signature covers (hex), the file's Authenticode digest when computed, and whether they agree
    signed_digest: str = ""
    file_digest: str | None = None
    ekus: tuple[str, ...] = ()

    @property
    def attested(self) -> bool:
        """A kernel-mode signature whose signing certificate carries the attestation EKU (:data:`ATTESTED_EKU`)."""
        return self.kernel_mode and self.verified and ATTESTED_EKU in self.ekus

    @property
    def ca(self) -> str | None:
        """The UEFI ``db`` certificate the chain ends at (for UEFI checks), ``None`` for none."""
        return self.anchor if self.verified else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "source": self.source,
            "digest_algorithm": self.digest_algorithm,
            "anchor": self.anchor,
            "chain": list(self.chain),
            "verified": self.verified,
            "kernel_mode": self.kernel_mode,
            "why": self.why,
            "signed_digest": self.signed_digest,
            "file_digest": self.file_digest,
            "ekus": list(self.ekus),
        }


@dataclass(frozen=True)
class FileSignatures:
    """What was read and decided of one file's signatures."""

    path: str
    #: ``fast`` (certificate table only) or ``complete`` (digest of the whole file, catalogs)
    mode: str
    size: int
    bytes_read: int
    signers: tuple[Signer, ...] = ()
    #: the certificate table's file offset and size (``None``: the file has none)
    cert_table: tuple[int, int] | None = None
    #: the catalog that lists the file, when one was looked for and found
    catalog: str | None = None
    #: bytes read from catalogs for this file's lookup (the catalogs are read once per audit)
    catalog_bytes_read: int = 0
    #: why the signatures could not be read, or ``""``
    error: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def kernel_trusted(self) -> Signer | None:
        """The first signature Windows' kernel-mode code integrity accepts, or ``None``."""
        for signer in self.signers:
            if signer.kernel_mode and signer.verified:
                return signer
        return None

    @property
    def attestation_only(self) -> bool:
        """Trusted by kernel-mode code integrity, and only through attestation signatures (no WHQL or Windows one)."""
        trusted = [s for s in self.signers if s.kernel_mode and s.verified]
        return bool(trusted) and all(s.attested for s in trusted)

    def describe(self) -> str:
        """What was read, in words: the signatures with their signers and where each chain leads."""
        if self.error:
            head = f"signatures unreadable: {self.error}"
        elif not self.signers:
            head = "no embedded signature" + (f"; listed in catalog {self.catalog}" if self.catalog else "")
        else:
            parts = []
            for signer in self.signers:
                if signer.verified and signer.anchor:
                    where = f"chains to {signer.anchor}" + (", kernel mode" if signer.kernel_mode else "")
                else:
                    where = f"not trusted: {signer.why}" if signer.why else "not trusted"
                parts.append(f"{signer.subject} ({where})")
            head = f"{len(self.signers)} signature(s): " + "; ".join(parts)
        return f"{head}; {self.mode} mode, {self.bytes_read} of {self.size} bytes read"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "mode": self.mode,
            "size": self.size,
            "bytes_read": self.bytes_read,
            "cert_table": list(self.cert_table) if self.cert_table else None,
            "catalog": self.catalog,
            "catalog_bytes_read": self.catalog_bytes_read,
            "error": self.error,
            "notes": list(self.notes),
            "signers": [s.to_dict() for s in self.signers],
        }


_K = TypeVar("_K")
_V = TypeVar("_V")


def _cache_put(cache: dict[_K, _V], key: _K, value: _V, limit: int) -> _V:
    """Keep ``value`` under ``key`` in a cache of at most ``limit`` entries, emptied when full (one audit's working
    set is a few certificates and names; a hostile image's thousands must not grow memory), and return it."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = value
    return value


_CERTIFICATES: dict[bytes, Any] = {}
_MAX_CACHED_CERTIFICATES = 256


def _shared(cert: Any) -> Any:
    """The one signify Certificate object kept for ``cert``'s DER encoding (equal certificates are one object)."""
    der = cert.to_der
    found = _CERTIFICATES.get(der)
    if found is None:
        found = _cache_put(_CERTIFICATES, der, cert, _MAX_CACHED_CERTIFICATES)
    return found


_RDNS: dict[bytes, tuple[tuple[str, str], ...]] = {}
_DNS: dict[bytes, str] = {}
_MAX_CACHED_NAMES = 4096


def _name(name: Any) -> str:
    """A certificate name as signify renders it (``CN=..., O=...``), decoded once per distinct DER name."""
    try:
        if not hasattr(type(name), "dn"):
            return str(name)
        der = name.asn1.dump()
        found = _DNS.get(der)
        if found is None:
            found = _cache_put(_DNS, der, str(name.dn), _MAX_CACHED_NAMES)
        return found
    except Exception:  # a hostile name that asn1crypto cannot render
        return "<unreadable name>"


def _rdns(name: Any) -> tuple[tuple[str, str], ...]:
    """signify's ``CertificateName.rdns`` (what its ``==`` compares), decoded once per distinct DER name: a check
    compares the same few issuer and subject names many times."""
    der = name.asn1.dump()
    found = _RDNS.get(der)
    if found is None:
        found = _cache_put(_RDNS, der, tuple(name.rdns), _MAX_CACHED_NAMES)
    return found


def _cn(name: Any) -> str:
    """The name's first common name (signify's ``get_components("CN")``), else the whole name."""
    try:
        for kind, value in _rdns(name):
            if kind == "CN":
                return str(value)
    except Exception:
        pass
    return _name(name)


def _locate(reader: _Reader) -> tuple[int, int] | None:
    """The certificate table's file offset and size from the PE headers, ``None`` when there is none.

    Three fields on one path (PE/COFF: e_lfanew, the optional header's magic and size, data directory entry 4),
    read with :mod:`struct` the way :mod:`azvhdaudit.pe`'s fast path reads headers, with signify's own checks: a
    table that is empty, starts inside the headers or ends past the file is no table. Neither signify nor its
    crypto stack is loaded for a file without one; for a file with one, signify's reading must agree.
    """
    head = reader.head
    name = reader.name
    if len(head) < 64 or head[:2] != b"MZ":
        raise SignatureError(f"{name}: not a PE file (no MZ header)")
    (lfanew,) = struct.unpack_from("<I", head, 0x3C)
    if lfanew + 24 > reader.size:
        raise SignatureError(f"{name}: PE header offset {lfanew} is past the end of the {reader.size}-byte file")
    need = lfanew + 24 + 2
    if need > len(head):
        if need > 1024 * 1024:
            raise SignatureError(f"{name}: PE header at offset {lfanew}, beyond the first MiB")
        reader.seek(0)
        head = reader.read(lfanew + 24 + 240)
    if head[lfanew : lfanew + 4] != b"PE\0\0":
        raise SignatureError(f"{name}: no PE signature at offset {lfanew}")
    (optional_size,) = struct.unpack_from("<H", head, lfanew + 20)
    optional = lfanew + 24
    if optional + optional_size > reader.size or optional_size < 68:
        raise SignatureError(f"{name}: optional header of {optional_size} bytes does not fit")
    magic = struct.unpack_from("<H", head, optional)[0]
    if magic not in _DIRECTORIES:
        raise SignatureError(f"{name}: optional header magic 0x{magic:X} is neither PE32 nor PE32+")
    count_at, entry_at = (optional + o for o in _DIRECTORIES[magic])
    if optional + optional_size < entry_at + 8 or len(head) < entry_at + 8:
        return None
    (count,) = struct.unpack_from("<I", head, count_at)
    if count <= _SECURITY:
        return None
    offset, size = struct.unpack_from("<II", head, entry_at)
    if not size or offset < optional + optional_size or offset + size > reader.size:
        if size:
            log.debug("%s: certificate table at %d+%d lies outside the file: none", name, offset, size)
        return None
    if size > MAX_CERT_TABLE:
        raise SignatureError(
            f"{name}: certificate table of {size} bytes at offset {offset} is larger than "
            f"the {MAX_CERT_TABLE} bytes read"
        )
    return offset, size


def _signed_pe(reader: _Reader) -> Any:
    """signify's view of the PE file (it reads what it needs through ``reader``)."""
    return load_signify()["SignedPEFile"](reader)


def _open_pe(reader: _Reader) -> tuple[Any, tuple[int, int] | None]:
    """signify's view of the PE file (``None`` when the file has no certificate table) and the table's location."""
    table = _locate(reader)
    if table is None:
        return None, None
    pe = _signed_pe(reader)
    try:
        omit = pe.get_authenticode_omit_sections()
    except _parse_errors() as err:
        raise SignatureError(f"{reader.name}: PE headers unreadable: {err}") from err
    found = None if omit is None or "certtable" not in omit else tuple(omit["certtable"])
    if found != table:
        raise SignatureError(f"{reader.name}: the PE headers give the certificate table as {table}, signify as {found}")
    return pe, table


def _embedded(pe: Any, name: str) -> Iterator[tuple[Any, str]]:
    """The embedded signatures and their nested ones, bounded in count and depth."""
    sig = load_signify()
    count = 0
    try:
        entries = list(pe._parse_cert_table())
    except _parse_errors() as err:
        raise SignatureError(f"{name}: certificate table unreadable: {err}") from err
    stack: list[tuple[Any, int]] = []
    for entry in entries:
        if entry["revision"] != 0x200 or entry["type"] != 2:  # WIN_CERT_REVISION_2_0, WIN_CERT_TYPE_PKCS_SIGNED_DATA
            log.debug(
                "%s: certificate table entry revision 0x%x type %d skipped", name, entry["revision"], entry["type"]
            )
            continue
        try:
            stack.append((sig["AuthenticodeSignature"].from_envelope(entry["certificate"]), 0))
        except _parse_errors() as err:
            raise SignatureError(f"{name}: embedded signature unreadable: {err}") from err
    while stack:
        signed, depth = stack.pop(0)
        count += 1
        if count > MAX_SIGNATURES:
            raise SignatureError(f"{name}: more than {MAX_SIGNATURES} signatures")
        yield signed, "embedded" if depth == 0 else "nested"
        try:
            nested = signed.signer_info.nested_signed_datas
        except _parse_errors() as err:
            raise SignatureError(f"{name}: nested signature unreadable: {err}") from err
        if nested and depth + 1 > MAX_NESTING:
            raise SignatureError(f"{name}: signatures nested deeper than {MAX_NESTING}")
        stack.extend((n, depth + 1) for n in nested)


def _signer_cert(signed: Any) -> Any:
    info = signed.signer_info
    certs = list(signed.certificates)
    if len(certs) > MAX_CERTIFICATES:
        raise SignatureError(
            f"the signature by serial {info.serial_number} carries {len(certs)} certificates "
            f"(more than {MAX_CERTIFICATES})"
        )
    serial, issuer = info.serial_number, _rdns(info.issuer)
    for cert in certs:
        if cert.serial_number == serial and _rdns(cert.issuer) == issuer:
            return cert
    return None


_EKUS: dict[bytes, tuple[str, ...]] = {}


def _ekus(cert: Any) -> tuple[str, ...]:
    """The certificate's extended key usages (dotted OIDs), decoded once per distinct certificate."""
    try:
        der = cert.to_der
    except _parse_errors():
        return ()
    found = _EKUS.get(der)
    if found is None:
        found = ()
        try:
            for ext in cert.asn1["tbs_certificate"]["extensions"]:
                if ext["extn_id"].native == "extended_key_usage":
                    found = tuple(str(p.dotted) for p in ext["extn_value"].parsed)
                    break
        except _parse_errors():
            found = ()
        _cache_put(_EKUS, der, found, _MAX_CACHED_NAMES)
    return found


def _evaluate(
    signed: Any, source: str, anchors: tuple[Anchor, ...], *, kernel: bool, file_digests: dict[str, bytes] | None
) -> Signer:
    """Check one signature against ``anchors``: signed attributes, signer's signature and chain (and the file's
    digest when ``file_digests`` is given). A signature whose parts cannot be parsed is untrusted, with the
    parser's message as the reason."""
    try:
        return _evaluate_parsed(signed, source, anchors, kernel=kernel, file_digests=file_digests)
    except _parse_errors() as err:
        return Signer("<unreadable>", "", source, "", why=f"signature unreadable: {err}")


def _evaluate_parsed(
    signed: Any, source: str, anchors: tuple[Anchor, ...], *, kernel: bool, file_digests: dict[str, bytes] | None
) -> Signer:
    errors = _parse_errors()
    catalog = source.startswith("catalog")
    try:
        cert = _signer_cert(signed)
        algorithm = signed.digest_algorithm().name
        signed_digest = b"" if catalog else signed.indirect_data.digest
    except SignatureError as err:
        return Signer("<unreadable>", "", source, "", why=str(err))
    except errors as err:
        return Signer("<unreadable>", "", source, "", why=f"signature unreadable: {err}")
    if cert is None:
        return Signer(
            "<no signer certificate>",
            _name(signed.signer_info.issuer),
            source,
            algorithm,
            signed_digest=signed_digest.hex(),
            why="the signature does not carry its signer's certificate",
        )
    subject, issuer, ekus = _name(cert.subject), _name(cert.issuer), _ekus(cert)
    file_digest = None if file_digests is None else file_digests.get(algorithm)
    base = dict(
        subject=subject,
        issuer=issuer,
        source=source,
        digest_algorithm=algorithm,
        signed_digest=signed_digest.hex(),
        ekus=ekus,
        file_digest=None if file_digest is None else file_digest.hex(),
    )
    if file_digest is not None and file_digest != signed_digest:
        return Signer(
            **base,
            why=f"the file's {algorithm} Authenticode digest {file_digest.hex()} differs from "
            f"the signed {signed_digest.hex()}: the file changed after it was signed",
        )
    store, by_fp = _store(anchors)
    moment = cert.valid_from
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    try:
        # the same context signify would make (code-signing EKU where present, no key-usage check: Windows does
        # not enforce it), with chains remembered per signer certificate and certificate set
        context = _context_class()(
            store,
            signed.certificates,
            timestamp=moment + datetime.timedelta(seconds=1),
            extended_key_usages=None if catalog else ["code_signing"],
            anchors=anchors,
        )
        # (the store is passed too: signify otherwise falls back to, and sizes, its whole default trust store)
        if catalog:  # the member's digest was matched by the caller; this checks the catalog's own signature
            chains = list(signed.verify(context, trusted_certificate_store=store, countersignature_mode="ignore"))
        else:
            chains = list(
                signed.verify(
                    context,
                    expected_hash=signed_digest,
                    verify_additional_hashes=False,
                    strict_validation=False,
                    trusted_certificate_store=store,
                    countersignature_mode="ignore",
                )
            )
    except errors as err:
        log.debug("%s: %s: %s", source, subject, err)
        return Signer(**base, why=_untrusted_words(signed, cert, anchors, err))
    chain = next((c for c in chains if 0 < len(c) <= MAX_CHAIN), None)
    if chain is None:
        return Signer(**base, why=f"no chain of at most {MAX_CHAIN} certificates")
    root = chain[0]
    anchor = by_fp.get(hashlib.sha256(root.to_der).hexdigest())
    if anchor is None:  # signify returned a chain to a certificate that is not one of ours: never trust it
        return Signer(**base, why=f"the chain ends at {_name(root.subject)}, not at a trust anchor")
    names = tuple(_name(c.subject) for c in reversed(chain))
    kernel_ok = False
    why = ""
    if kernel:
        kernel_ok = any(e in KERNEL_EKUS for e in ekus)
        if not kernel_ok:
            why = (
                f"chains to {anchor.name} but the signing certificate has none of the Windows kernel-mode "
                f"EKUs ({', '.join(KERNEL_EKUS.values())})"
            )
    return Signer(**base, anchor=anchor.name, chain=names, verified=True, kernel_mode=kernel_ok, why=why)


def _untrusted_words(signed: Any, cert: Any, anchors: tuple[Anchor, ...], err: BaseException) -> str:
    """Why a chain did not verify, in words: where the signature's own certificates lead, and the verifier's
    reason when the chain does reach an anchor's name (a lookalike, a bad signature)."""
    certs = list(signed.certificates)
    names = {a.name for a in anchors}
    top = cert
    for _ in range(MAX_CHAIN):
        if _rdns(top.issuer) == _rdns(top.subject):
            break
        parent = next((c for c in certs if _rdns(c.subject) == _rdns(top.issuer) and c is not top), None)
        if parent is None:
            break
        top = parent
    if any(_cn(c.issuer) == CODE_VERIFICATION_ROOT for c in certs):
        return (
            f"{CROSS_SIGNED} to {CODE_VERIFICATION_ROOT}, which is not among the trust anchors kept in the "
            f"package (its chain cannot be verified offline); the signing certificate was issued "
            f"{cert.valid_from.date().isoformat()}"
        )
    if _cn(top.subject) in names or _cn(top.issuer) in names:
        return (
            f"the chain names {_cn(top.issuer) if _cn(top.issuer) in names else _cn(top.subject)}, but does not "
            f"verify against that trust anchor's exact certificate: {err}"
        )
    if _rdns(top.issuer) == _rdns(top.subject):
        where = "a self-signed certificate" if top is cert else f"the self-signed {_cn(top.subject)}"
        return f"the chain ends at {where}, not at {' or '.join(sorted(names))}"
    return f"the chain leads to {_cn(top.issuer)}, not to {' or '.join(sorted(names))}"


def read_signatures(fh: BinaryIO, *, name: str) -> tuple[_Reader, Any, tuple[int, int] | None, list[tuple[Any, str]]]:
    """Read a PE file's embedded signatures (headers and certificate table only)."""
    reader = _Reader(fh, name)
    pe, table = _open_pe(reader)
    signatures = list(_embedded(pe, name)) if table else []
    return reader, pe, table, signatures


def _file_digests(pe: Any, reader: _Reader, name: str) -> dict[str, bytes]:
    if reader.size > MAX_HASHED_FILE:
        raise SignatureError(f"{name}: {reader.size} bytes, larger than the {MAX_HASHED_FILE} bytes hashed")
    if pe is None:
        pe = _signed_pe(reader)
    try:
        return dict(pe.get_fingerprints(hashlib.sha1, hashlib.sha256))
    except _parse_errors() as err:
        raise SignatureError(f"{name}: the Authenticode digest cannot be computed: {err}") from err


def kernel_signatures(
    files: GuestFiles, path: str, *, verify: bool = False, catalogs: Catalogs | None = None
) -> FileSignatures:
    """The signatures of the driver ``path`` as Windows' kernel-mode code integrity sees them.

    Fast path (``verify=False``): headers and certificate table. ``verify=True``: also the whole file's
    Authenticode digest, and for a file without a trusted embedded signature the catalogs (``catalogs``); an
    unsigned file is hashed only when the catalogs list files.
    Raises :class:`~azvhdaudit.errors.GuestFileNotFoundError` when the file is missing and
    :class:`SignatureError` when its headers or certificate table cannot be read.
    """
    opener = getattr(files, "open", None)
    if opener is None:
        data = files.read(path, MAX_HASHED_FILE + 1)
        if data is None:
            raise GuestFileNotFoundError(f"{path} does not exist")
        fh: BinaryIO = io.BytesIO(data)
    else:
        fh = opener(path)
    try:
        return _kernel(fh, path, verify, catalogs)
    finally:
        fh.close()


def _kernel(fh: BinaryIO, path: str, verify: bool, catalogs: Catalogs | None) -> FileSignatures:
    mode = "complete" if verify else "fast"
    reader = _Reader(fh, path)
    pe, table = _open_pe(reader)
    signatures = list(_embedded(pe, path)) if table else []
    # The whole file is hashed for what uses its digest: the embedded signatures, then the catalogs. A file
    # without an embedded signature in an image without catalog members needs none (nothing to compare it with).
    digests = _file_digests(pe, reader, path) if verify and signatures else None
    signers = [_evaluate(s, src, KERNEL_ANCHORS, kernel=True, file_digests=digests) for s, src in signatures]
    notes: list[str] = []
    catalog = None
    catalog_bytes = 0
    if verify and not any(s.kernel_mode and s.verified for s in signers):
        if catalogs is None:
            notes.append("no catalogs given: the catalog lookup was not made")
        else:
            before = catalogs.bytes_read
            found = None
            if catalogs.members:
                if digests is None:
                    digests = _file_digests(pe, reader, path)
                found = catalogs.find(digests)
            catalog_bytes = catalogs.bytes_read - before
            if catalogs.error:
                notes.append(catalogs.error)
            if found is not None:
                catalog, ctl = found
                signers.append(_evaluate(ctl, f"catalog {catalog}", KERNEL_ANCHORS, kernel=True, file_digests=None))
    return FileSignatures(
        path, mode, reader.size, reader.bytes_read, tuple(signers), table, catalog, catalog_bytes, notes=tuple(notes)
    )


def uefi_signers(fh: BinaryIO, *, name: str, verify: bool = False) -> tuple[Signer, ...]:
    """The Authenticode signatures of a UEFI image and the UEFI ``db`` certificate each chains to.

    Each :class:`Signer` has ``subject``, ``ca`` (one of :data:`UEFI_DB_ANCHORS`' names, ``None`` for none) and
    ``verified``. ``verify=True`` also compares the file's Authenticode digest. Raises :class:`SignatureError`
    when the file's headers or certificate table cannot be read.
    """
    reader = _Reader(fh, name)
    pe, table = _open_pe(reader)
    signatures = list(_embedded(pe, name)) if table else []
    digests = _file_digests(pe, reader, name) if verify and signatures else None
    return tuple(_evaluate(s, src, UEFI_DB_ANCHORS, kernel=False, file_digests=digests) for s, src in signatures)


# --- catalogs ----------------------------------------------------------------------------------------------------


class Catalogs:
    """The CatRoot catalogs of an image, read once and indexed by member hash (``verify=True`` only)."""

    def __init__(self, files: GuestFiles, root: str = CATROOT) -> None:
        self.files = files
        self.root = root
        self.bytes_read = 0
        self.count = 0
        self.error = ""
        self._index: dict[bytes, str] | None = None
        self._parsed: dict[str, Any] = {}

    def _names(self) -> list[str]:
        names = self.files.listdir(self.root)
        if names is None:
            self.error = f"{self.root} does not exist"
            return []
        cats = sorted(n for n in names if n.lower().endswith(".cat"))
        if len(cats) > MAX_CATALOGS:
            self.error = f"{self.root} holds {len(cats)} catalogs; the first {MAX_CATALOGS} were read"
            cats = cats[:MAX_CATALOGS]
        return cats

    def _load(self, name: str) -> Any:
        sig = load_signify()
        data = self.files.read(f"{self.root}\\{name}", MAX_CATALOG + 1)
        if data is None:
            return None
        self.bytes_read += len(data)
        if len(data) > MAX_CATALOG:
            log.info("%s: catalog larger than %d bytes skipped", name, MAX_CATALOG)
            return None
        try:
            return sig["CertificateTrustList"].from_envelope(data)
        except _parse_errors() as err:
            log.info("%s\\%s: not a readable catalog: %s", self.root, name, err)
            return None

    def _build(self) -> dict[bytes, str]:
        index: dict[bytes, str] = {}
        for name in self._names():
            if self.bytes_read > MAX_CATALOG_BYTES:
                self.error = f"stopped after {MAX_CATALOG_BYTES} bytes of catalogs"
                break
            ctl = self._load(name)
            if ctl is None:
                continue
            self.count += 1
            try:
                for subject in _bounded(ctl.subjects, 1_000_000):
                    data = subject.indirect_data
                    if data is not None:
                        index.setdefault(bytes(data.digest), name)
            except _parse_errors() as err:
                log.info("%s\\%s: catalog members unreadable: %s", self.root, name, err)
                continue
            self._parsed[name] = ctl
        return index

    @property
    def members(self) -> int:
        """How many files the catalogs list (reading them on first use)."""
        if self._index is None:
            self._index = self._build()
        return len(self._index)

    def find(self, digests: dict[str, bytes]) -> tuple[str, Any] | None:
        """The catalog (name, signify CTL) listing a file with one of these Authenticode digests, or ``None``."""
        if self._index is None:
            self._index = self._build()
        for digest in digests.values():
            name = self._index.get(digest)
            if name is not None:
                return name, self._parsed[name]
        return None


def _bounded(items: Iterable[Any], limit: int) -> Iterator[Any]:
    for i, item in enumerate(items):
        if i >= limit:
            return
        yield item
