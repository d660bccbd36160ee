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
    assert "WinDivert" not in out.message  # the Dev Center-signed driver is fine
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
