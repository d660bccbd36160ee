"""signing.boot_drivers on built disk images (GPT, NTFS by mkntfs/ntfs-3g, SYSTEM hive by hivex): compliant,
non-compliant and missing evidence, under each security type and in both modes."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from azvhdaudit.authenticode import kernel_signatures
from azvhdaudit.engine import evaluate
from azvhdaudit.report import Outcome, Status
from azvhdaudit.rules.signing import check_boot_drivers, resolve_image_path

from . import sigkit

#: slow: builds and signs driver images with mingw-w64 and osslsigncode
pytestmark = pytest.mark.slow

D = sigkit.DRIVERS


@pytest.fixture(scope="module")
def images(sample_builder: ModuleType, sigwork: Path, material: dict[str, bytes]) -> dict[str, Path]:
    work = sigwork / "rule"
    work.mkdir(exist_ok=True)
    key, cert = sigkit.self_signed_cert(work, "/CN=Contoso Driver Signing")
    lkey, _, lchain = sigkit.lookalike_chain(work)
    plain = sigkit.driver(sample_builder, work)
    out = {}
    out["good"] = sigkit.disk(
        sample_builder,
        work,
        "good",
        sigkit.services_tree(
            {
                "WinDivert": {"Start": 0, "ImagePath": "System32\\drivers\\WinDivert64.sys"},
                "attested": {"Start": 1, "ImagePath": "\\SystemRoot\\System32\\drivers\\attested.sys"},
                "later": {"Start": 3},  # demand start: not a boot driver, its file need not exist
                "Spooler": {"Start": 1, "Type": 0x10},  # a Win32 service type is never loaded at boot
            }
        ),
        {
            D + "WinDivert64.sys": material["WinDivert64-4.0.1.sys"],
            D + "attested.sys": material["WinDivert64-2.1.0.sys"],
        },
    )
    out["bad"] = sigkit.disk(
        sample_builder,
        work,
        "bad",
        sigkit.services_tree(
            {
                "contoso": {"Start": 0},  # default ImagePath: System32\drivers\contoso.sys
                "lookalike": {"Start": 1, "ImagePath": "system32\\DRIVERS\\lookalike.sys"},
                "msdll": {"Start": 0, "ImagePath": "System32\\drivers\\msvcp140.dll"},
                "WinDivert": {"Start": 0, "ImagePath": "System32\\drivers\\WinDivert64.sys"},
            }
        ),
        {
            D + "contoso.sys": sigkit.sign(plain, work, key, cert),
            D + "lookalike.sys": sigkit.sign(plain, work, lkey, lchain),
            D + "msvcp140.dll": material["msvcp140.dll"],
            D + "WinDivert64.sys": material["WinDivert64-4.0.1.sys"],
        },
    )
    out["missing"] = sigkit.disk(
        sample_builder,
        work,
        "missing",
        sigkit.services_tree(
            {
                "gone": {"Start": 0, "ImagePath": "System32\\drivers\\gone.sys"},
                "WinDivert": {"Start": 0, "ImagePath": "System32\\drivers\\WinDivert64.sys"},
            }
        ),
        {D + "WinDivert64.sys": material["WinDivert64-4.0.1.sys"]},
    )
    out["unsigned"] = sigkit.disk(
        sample_builder,
        work,
        "unsigned",
        sigkit.services_tree(
            {
                "perfmon": {"Start": 0, "ImagePath": "System32\\drivers\\perfmondata.sys"},
            }
        ),
        {D + "perfmondata.sys": material["perfmondata.dll"]},
    )
    out["noservices"] = sigkit.disk(sample_builder, work, "noservices", sigkit.services_tree({}), {})
    out["bad-client"] = sigkit.disk(
        sample_builder,
        work,
        "bad-client",
        sigkit.services_tree({"contoso": {"Start": 0}}, product_type="WinNT"),
        {D + "contoso.sys": sigkit.sign(plain, work, key, cert)},
    )
    # WinDivert 2.1.0: trusted through its nested attestation signature only, on a server, a client and an image
    # whose OS kind cannot be read (no ProductOptions)
    for kind, product_type in (("server", "ServerNT"), ("client", "WinNT"), ("osunknown", None)):
        out[f"attested-{kind}"] = sigkit.disk(
            sample_builder,
            work,
            f"attested-{kind}",
            sigkit.services_tree(
                {"WinDivert": {"Start": 1, "ImagePath": "System32\\drivers\\WinDivert64.sys"}},
                product_type=product_type,
            ),
            {D + "WinDivert64.sys": material["WinDivert64-2.1.0.sys"]},
        )
    return out


def run(path: Path, security_type: str | None = None, verify: bool = False) -> Outcome:
    with sigkit.opened(path) as image:
        return evaluate(check_boot_drivers, sigkit.context(image, security_type, verify))


def summary(out: Outcome) -> dict[str, Any]:
    return out.evidence[0].actual  # type: ignore[no-any-return]


@pytest.mark.parametrize("verify", [False, True], ids=["fast", "complete"])
def test_compliant(images: dict[str, Path], verify: bool) -> None:
    out = run(images["good"], "TrustedLaunch", verify)
    assert out.status == Status.PASS, out.message
    assert "all 2 boot-start and system-start drivers" in out.message
    s = summary(out)
    assert s["mode"] == ("complete" if verify else "fast") and s["trusted"] == 2
    files = {e.key: e.actual for e in out.evidence[1:]}
    assert set(files) == {r"Windows\System32\drivers\WinDivert64.sys", r"Windows\System32\drivers\attested.sys"}
    if not verify:  # the fast path reads headers and certificate tables: a few KB per driver
        assert s["bytes_read"] < 60_000
        assert all(" fast mode, " in f for f in files.values())
    else:
        assert s["bytes_read"] >= 94144 + 47560


@pytest.mark.parametrize(
    ("security_type", "status"),
    [("TrustedLaunch", Status.FAIL), ("ConfidentialVM", Status.FAIL), ("Standard", Status.WARNING)],
)
def test_non_compliant_per_target(images: dict[str, Path], security_type: str, status: Status) -> None:
    out = run(images["bad"], security_type)
    assert out.status == status, out.message
    assert "3 driver(s) Windows will not load under Secure Boot" in out.message
    assert (
        "contoso (Windows\\System32\\drivers\\contoso.sys): embedded signature by CN=Contoso Driver Signing"
        in out.message
    )
    assert (
        "lookalike (Windows\\system32\\DRIVERS\\lookalike.sys): embedded signature by CN=Microsoft Windows,"
        in out.message
    )
    assert "msdll" in out.message and "CN=Microsoft Windows Software Compatibility Publisher" in out.message
    assert "the chain leads to Microsoft Root Certificate Authority 2011" in out.message
    fixes = out.remediation.splitlines()
    assert len(fixes) == 3 and any(
        f.startswith("# contoso: ") and f.endswith("sc.exe config contoso start= demand") for f in fixes
    )
    # a Windows Server image: the fix asks for a WHQL build (attestation loads, but is outside Microsoft's support)
    assert all("Dev Center (WHQL, from HLK test results: Microsoft supports attestation-signed" in f for f in fixes)
    assert "WinDivert" not in out.message  # the Dev Center-signed driver is fine
    # on this Windows Server image its support note is in its evidence and in ``actual``, not in the failure's words
    assert out.actual["attestation_signed_on_server"] == ["WinDivert (Windows\\System32\\drivers\\WinDivert64.sys)"]
    assert "KB 4519013" not in out.message
    assert any("KB 4519013" in (e.note or "") for e in out.evidence if e.key.endswith("WinDivert64.sys"))
    assert summary(out)["trusted"] == 1 and summary(out)["not_trusted"] == 3
    if status == Status.WARNING:
        assert "advice: the target Standard boots without Secure Boot" in out.message


def test_gen2_default_target_is_trusted_launch(images: dict[str, Path]) -> None:
    assert run(images["bad"]).status == Status.FAIL


@pytest.mark.parametrize("security_type", ["Standard", "TrustedLaunch"])
def test_missing_boot_driver_fails_under_every_target(images: dict[str, Path], security_type: str) -> None:
    out = run(images["missing"], security_type)
    assert out.status == Status.FAIL
    assert (
        "1 enabled boot driver file(s) missing" in out.message
        and "gone (Windows\\System32\\drivers\\gone.sys)" in out.message
    )
    assert any(e.key == r"Windows\System32\drivers\gone.sys" and not e.present for e in out.evidence)


def test_unsigned_fast_is_not_checked_and_names_the_flag(images: dict[str, Path]) -> None:
    out = run(images["unsigned"], "TrustedLaunch")
    assert out.status == Status.NOT_CHECKED
    assert "--verify-signatures" in out.message and "no embedded signature" in out.message


def test_unsigned_complete_fails(images: dict[str, Path]) -> None:
    out = run(images["unsigned"], "TrustedLaunch", verify=True)
    assert out.status == Status.FAIL, out.message
    assert "unsigned: no embedded signature and no catalog" in out.message
    assert "CatRoot" in out.message and "does not exist" in out.message


def test_no_services_key_is_not_checked(images: dict[str, Path]) -> None:
    out = run(images["noservices"], "TrustedLaunch")
    assert out.status == Status.NOT_CHECKED
    assert "Services is not in the image" in out.message


@pytest.mark.parametrize(
    ("image_path", "expected"),
    [
        (None, r"Windows\System32\drivers\svc.sys"),
        (r"System32\drivers\x.sys", r"Windows\System32\drivers\x.sys"),
        (r"\SystemRoot\System32\drivers\x.sys", r"Windows\System32\drivers\x.sys"),
        (r"%SystemRoot%\system32\x.sys", r"Windows\system32\x.sys"),
        (r"\??\C:\Program Files\x.sys", r"Program Files\x.sys"),
        (r"\??\D:\x.sys", None),
    ],
)
def test_resolve_image_path(image_path: str | None, expected: str | None) -> None:
    assert resolve_image_path("svc", image_path)[0] == expected


def test_a_cross_signed_only_driver_is_not_decided(material: dict[str, bytes]) -> None:
    """WinDivert 2.1.0's EV signature alone (its Dev Center signature taken away): cross-signed through Microsoft
    Code Verification Root, which no registry package ships, so the chain cannot be verified offline, and Windows
    still loads such drivers when the certificate predates 2015-07-29. Neither pass nor fail."""
    from azvhdaudit.authenticode import FileSignatures
    from azvhdaudit.rules.signing import BootDriver, _judge

    sig = kernel_signatures(sigkit.BytesFiles({"d": material["WinDivert64-2.1.0.sys"]}), "d")
    ev_only = FileSignatures(sig.path, sig.mode, sig.size, sig.bytes_read, sig.signers[:1], sig.cert_table)
    assert "the signing certificate was issued 2017-" in ev_only.signers[0].why
    verdict, words = _judge(BootDriver("windivert", 0, None, "d"), ev_only)
    assert verdict == "undecided" and "before 2015-07-29" in words
    assert _judge(BootDriver("windivert", 0, None, "d"), sig)[0] == "ok"


ATTESTED_NOTE = "Windows Server loads attestation-signed drivers, but Microsoft Support does not support"


@pytest.mark.parametrize("verify", [False, True], ids=["fast", "complete"])
@pytest.mark.parametrize("security_type", ["TrustedLaunch", "Standard"])
def test_attestation_signed_on_server_loads_and_says_the_support_policy(
    images: dict[str, Path], verify: bool, security_type: str
) -> None:
    """Windows Server loads attestation-signed drivers (Microsoft took back the page's sentence saying otherwise):
    a pass in both modes and under every target, with KB 4519013's support policy named in the message and the
    driver's evidence; the OS kind comes from ProductOptions ProductType."""
    with sigkit.opened(images["attested-server"]) as image:
        assert image.facts.os is not None and image.facts.os.is_server is True
        out = evaluate(check_boot_drivers, sigkit.context(image, security_type, verify))
    assert out.status == Status.PASS, out.message
    assert "all 1 boot-start and system-start drivers" in out.message
    assert "1 trusted driver(s) attestation-signed (EKU 1.3.6.1.4.1.311.10.3.5.1" in out.message
    assert ATTESTED_NOTE in out.message and "KB 4519013" in out.message
    assert "support-policy-third-party-kernel-level-attestation" in out.message
    assert out.message.endswith("WinDivert (Windows\\System32\\drivers\\WinDivert64.sys)")
    assert summary(out)["attestation_signed_on_server"] == 1 and summary(out)["trusted"] == 1
    assert out.actual["attestation_signed_on_server"] == ["WinDivert (Windows\\System32\\drivers\\WinDivert64.sys)"]
    (driver_ev,) = out.evidence[1:]
    assert ATTESTED_NOTE in driver_ev.note and "Microsoft Windows Hardware Compatibility Publisher" in driver_ev.note


@pytest.mark.parametrize("verify", [False, True], ids=["fast", "complete"])
@pytest.mark.parametrize("kind", ["client", "osunknown"])
def test_attestation_signed_on_a_client_or_an_unknown_os_passes_without_the_server_note(
    images: dict[str, Path], verify: bool, kind: str
) -> None:
    """On Windows 10/11 attestation signing is what Microsoft offers; where the OS kind cannot be read the verdict
    is the same (Windows loads the driver either way) and no claim about Windows Server is made."""
    with sigkit.opened(images[f"attested-{kind}"]) as image:
        assert image.facts.os is not None
        assert image.facts.os.is_server is (False if kind == "client" else None)
        out = evaluate(check_boot_drivers, sigkit.context(image, "TrustedLaunch", verify))
    assert out.status == Status.PASS, out.message
    assert "attestation" not in out.message and "KB 4519013" not in out.message
    assert "attestation_signed_on_server" not in summary(out) and "attestation_signed_on_server" not in out.actual
    assert all(ATTESTED_NOTE not in (e.note or "") for e in out.evidence)


def test_a_server_driver_that_also_has_a_non_attestation_microsoft_signature_gets_no_note() -> None:
    """The note is for drivers trusted through attestation signatures only: one trusted signature without the
    attestation EKU (WHQL, Windows) makes it a certified driver."""
    from azvhdaudit.authenticode import ATTESTED_EKU, FileSignatures, Signer
    from azvhdaudit.rules.signing import BootDriver, _judge

    def signer(*ekus: str, trusted: bool = True) -> Signer:
        return Signer("CN=x", "CN=y", "nested", "sha256", "root", verified=trusted, kernel_mode=trusted, ekus=ekus)

    whql = "1.3.6.1.4.1.311.10.3.5"
    drv = BootDriver("x", 0, None, "d")
    attested_only = FileSignatures("d", "fast", 1, 1, (signer(whql, ATTESTED_EKU),), (0, 1))
    both = FileSignatures("d", "fast", 1, 1, (signer(whql, ATTESTED_EKU), signer(whql)), (0, 1))
    untrusted_whql = FileSignatures(
        "d", "fast", 1, 1, (signer(whql, ATTESTED_EKU), signer(whql, trusted=False)), (0, 1)
    )
    assert attested_only.attestation_only and not both.attestation_only and untrusted_whql.attestation_only
    assert ATTESTED_NOTE in _judge(drv, attested_only, server=True)[1]
    assert ATTESTED_NOTE not in _judge(drv, both, server=True)[1]
    assert ATTESTED_NOTE not in _judge(drv, attested_only, server=False)[1]
    assert ATTESTED_NOTE not in _judge(drv, attested_only, server=None)[1]


def test_the_fix_on_a_client_offers_attestation_or_whql(images: dict[str, Path]) -> None:
    out = run(images["bad-client"], "TrustedLaunch")
    assert out.status == Status.FAIL, out.message
    (fix,) = out.remediation.splitlines()
    assert fix == (
        "# contoso: install a build of Windows\\System32\\drivers\\contoso.sys signed through the Windows Hardware "
        "Dev Center (attestation or WHQL), or if nothing needs it at boot: sc.exe config contoso start= demand"
    )
