"""secureboot.* rules on built disk images: compliant, non-compliant and missing evidence, per target."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import azvhdaudit
from azvhdaudit.engine import evaluate
from azvhdaudit.fix import split_statements
from azvhdaudit.report import Outcome, Status
from azvhdaudit.rules.base import all_rules

from . import sbkit

#: slow: builds signed boot volumes
pytestmark = pytest.mark.slow

RULES = (
    "secureboot.generation2",
    "secureboot.os_supported",
    "secureboot.bcd_integrity",
    "secureboot.bootmgr_signature",
    "secureboot.uefica2023_servicing",
)


def run(rule_id: str, ctx: Any) -> Outcome:
    import azvhdaudit.rules  # noqa: F401 - registers the rules

    found = [r for r in all_rules() if r.id == rule_id]
    assert found, rule_id
    return evaluate(found[0], ctx)


@contextmanager
def audited(path: Path, security_type: str | None = None, **kw: Any) -> Iterator[Any]:
    open_kw = {k: kw.pop(k) for k in ("hives",) if k in kw}
    with sbkit.opened(path, **open_kw) as image:
        yield sbkit.context(image, security_type, **kw)


def authenticode_api() -> bool:
    from azvhdaudit.secureboot_facts import _api

    return _api()[0] is not None


# --- compliant --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("security_type", [None, "TrustedLaunch", "ConfidentialVM"])
def test_good_image(sb_images: dict[str, Path], security_type: str | None) -> None:
    with audited(sb_images["good"], security_type) as ctx:
        assert ctx.security_type() == (security_type or "TrustedLaunch")  # Generation 2: Trusted Launch by default
        gen2 = run("secureboot.generation2", ctx)
        assert gen2.status == Status.PASS, gen2.message
        assert "partition 0" in gen2.message and "x64 EFI application" in gen2.message
        assert any(e.source == "file" and e.present for e in gen2.evidence)
        os_out = run("secureboot.os_supported", ctx)
        assert os_out.status == Status.PASS and "Windows Server 2019 Datacenter" in os_out.message
        assert ("fewer Windows versions" in os_out.message) == (security_type == "ConfidentialVM")
        bcd = run("secureboot.bcd_integrity", ctx)
        assert bcd.status == Status.PASS, bcd.message
        assert "Windows 10" in bcd.message  # the real store's loader description
        servicing = run("secureboot.uefica2023_servicing", ctx)
        assert servicing.status == Status.PASS, servicing.message
        assert "UEFICA2023Status Updated" in servicing.message and "WindowsUEFICA2023Capable 2" in servicing.message


def test_good_image_boot_manager_signature(sb_images: dict[str, Path]) -> None:
    """The boot manager is signed by a self-made certificate named like Microsoft's CA: never trusted."""
    with audited(sb_images["good"]) as ctx:
        out = run("secureboot.bootmgr_signature", ctx)
    if authenticode_api():
        assert out.status == Status.FAIL, out.message
        assert "chains to neither" in out.message and "CN=Lookalike Windows Production PCA 2011" in out.message
    else:
        assert out.status == Status.NOT_CHECKED, out.message
        assert "certificate table" in out.message and "authenticode" in out.reason
        # the servicing state is still reported
        assert "UEFICA2023Status Updated" in out.message


@pytest.mark.parametrize("verify", [False, True])
def test_real_microsoft_signatures_third_party_ca(shim_image: Path, verify: bool) -> None:
    """Debian's shim as the boot manager: both chains verify, to Microsoft's third-party UEFI CAs, which is not
    Windows Boot Manager as Microsoft signs it: a warning, not a pass and not a failure."""
    with audited(shim_image, "TrustedLaunch", verify_signatures=verify) as ctx:
        out = run("secureboot.bootmgr_signature", ctx)
    assert out.status == Status.WARNING, out.message
    assert "chains to Microsoft Corporation UEFI CA 2011, Microsoft UEFI CA 2023" in out.message
    assert "CN=Microsoft Windows UEFI Driver Publisher" in out.message
    assert all(s["verified"] for s in out.actual) and len(out.actual) == 2
    assert split_statements(out.remediation)[0] == ["mountvol S: /s", r"bcdboot C:\Windows /s S: /f UEFI"]


# --- non-compliant ----------------------------------------------------------------------------------------


def test_bad_image_under_trusted_launch(sb_images: dict[str, Path]) -> None:
    with audited(sb_images["bad"]) as ctx:
        gen2 = run("secureboot.generation2", ctx)
        assert gen2.status == Status.PASS, gen2.message  # an unsigned EFI application is still a boot manager
        os_out = run("secureboot.os_supported", ctx)
        assert os_out.status == Status.FAIL and "Home edition" in os_out.message
        assert "Windows 10 Home (build 19045, EditionID Core)" in os_out.message
        bcd = run("secureboot.bcd_integrity", ctx)
        assert bcd.status == Status.FAIL
        assert "testsigning Yes (inherited from {globalsettings})" in bcd.message
        assert "nointegritychecks Yes" in bcd.message and "'DISABLE_INTEGRITY_CHECKS NOEXECUTE=OPTIN'" in bcd.message
        assert "fix:" not in bcd.message and "bcdedit" not in bcd.message
        assert {e.key.rsplit("\\", 1)[-1] for e in bcd.evidence} == {"16000049", "16000048", "12000030"}
        # the computed fix is the result's remediation (said once, not in the message), and azvhdaudit fix scripts
        # every line of it: the fixes name the object holding each setting, and keep the other load options
        fixes = [
            'bcdedit /set "{globalsettings}" testsigning off',
            'bcdedit /set "{default}" nointegritychecks off',
            'bcdedit /set "{default}" loadoptions "NOEXECUTE=OPTIN"',
        ]
        assert bcd.remediation.splitlines() == fixes
        assert split_statements(bcd.remediation) == (fixes, [])
        sig = run("secureboot.bootmgr_signature", ctx)
        assert sig.status == Status.FAIL and "carries no Authenticode signature" in sig.message
        assert "bcdboot" not in sig.message and "fix:" not in sig.message
        assert sig.remediation.splitlines()[0] == "mountvol S: /s"
        servicing = run("secureboot.uefica2023_servicing", ctx)
        assert servicing.status == Status.WARNING
        assert "UEFICA2023Error 0x80070005, event 1795" in servicing.message
        assert "0x0100 install the boot manager signed by Windows UEFI CA 2023" in servicing.message
        assert servicing.actual["available_updates_key"].endswith(r"ControlSet001\Control\SecureBoot")
        commands, notes = split_statements(servicing.remediation)
        assert notes[0] == "Look up UEFICA2023Error 0x80070005 in KB5085046 (Secure Boot troubleshooting), then:"
        assert "0x5944" not in servicing.message and "Start-ScheduledTask" not in servicing.message
        assert commands == [
            r'reg add "HKLM\SYSTEM\CurrentControlSet\Control\SecureBoot" /v AvailableUpdates '
            r"/t REG_DWORD /d 0x5944 /f",
            r'Start-ScheduledTask -TaskName "\Microsoft\Windows\PI\Secure-Boot-Update"',
        ]


def test_bad_image_under_standard_is_advice(sb_images: dict[str, Path]) -> None:
    with audited(sb_images["bad"], "Standard") as ctx:
        assert run("secureboot.os_supported", ctx).status == Status.WARNING
        bcd = run("secureboot.bcd_integrity", ctx)
        assert bcd.status == Status.WARNING and "boots without Secure Boot" in bcd.message
        assert run("secureboot.bootmgr_signature", ctx).status == Status.WARNING
        servicing = run("secureboot.uefica2023_servicing", ctx)
        assert servicing.status == Status.NOT_APPLICABLE and "Standard" in servicing.reason


def test_noboot_image(sb_images: dict[str, Path]) -> None:
    with audited(sb_images["noboot"], "TrustedLaunch") as ctx:
        gen2 = run("secureboot.generation2", ctx)
        assert gen2.status == Status.FAIL and "holds no \\EFI\\Microsoft\\Boot\\bootmgfw.efi" in gen2.message
        assert "bcdboot" not in gen2.message and "fix:" not in gen2.message
        assert split_statements(gen2.remediation)[0] == ["mountvol S: /s", r"bcdboot C:\Windows /s S: /f UEFI"]
        os_out = run("secureboot.os_supported", ctx)
        assert os_out.status == Status.FAIL and "older than Windows Server 2016" in os_out.message
        sig = run("secureboot.bootmgr_signature", ctx)
        assert sig.status == Status.NOT_APPLICABLE and "see secureboot.generation2" in sig.reason
        servicing = run("secureboot.uefica2023_servicing", ctx)
        assert servicing.status == Status.WARNING and "no 2023 certificate servicing values" in servicing.message
        assert "Start-ScheduledTask" not in servicing.message
        assert servicing.remediation.splitlines()[0] == "Install the latest cumulative update (KB5068202), then:"
        assert all(not e.present for e in servicing.evidence)


def test_gen1_image(sb_images: dict[str, Path]) -> None:
    with audited(sb_images["gen1"]) as ctx:
        assert ctx.security_type() == "Standard"  # Generation 1: Standard by default
        gen2 = run("secureboot.generation2", ctx)
        assert gen2.status == Status.WARNING and "Generation 1" in gen2.message
        assert run("secureboot.bcd_integrity", ctx).status == Status.PASS
        assert run("secureboot.uefica2023_servicing", ctx).status == Status.NOT_APPLICABLE
    with audited(sb_images["gen1"], "TrustedLaunch") as ctx:
        gen2 = run("secureboot.generation2", ctx)
        assert gen2.status == Status.FAIL and "MBR2GPT" not in gen2.message and "fix:" not in gen2.message
        assert gen2.remediation.splitlines() == [
            "MBR2GPT.exe /validate /allowFullOS",
            "MBR2GPT.exe /convert /allowFullOS  (inside the VM; then create the Azure image with HyperVGeneration V2)",
        ]
        servicing = run("secureboot.uefica2023_servicing", ctx)
        assert servicing.status == Status.WARNING and "has not started" in servicing.message
        assert "AvailableUpdates /t REG_DWORD /d 0x5944" in servicing.remediation and "0x5944" not in servicing.message
        sig = run("secureboot.bootmgr_signature", ctx)
        assert sig.status == Status.NOT_APPLICABLE and "no EFI system partition" in sig.reason


# --- missing evidence -------------------------------------------------------------------------------------


def test_no_boot_store(sb_images: dict[str, Path]) -> None:
    with audited(sb_images["nobcd"], "TrustedLaunch") as ctx:
        bcd = run("secureboot.bcd_integrity", ctx)
        assert bcd.status == Status.NOT_CHECKED and "no boot store found" in bcd.message
        gen2 = run("secureboot.generation2", ctx)
        assert gen2.status == Status.NOT_CHECKED and "no boot store was found" in gen2.reason
        os_out = run("secureboot.os_supported", ctx)
        assert os_out.status == Status.NOT_CHECKED and "the SOFTWARE hive is not present" in os_out.message


def test_boot_volume_not_given(sb_images: dict[str, Path]) -> None:
    with audited(sb_images["good"], "TrustedLaunch", boot=False) as ctx:
        for rule_id in ("secureboot.generation2", "secureboot.bootmgr_signature"):
            out = run(rule_id, ctx)
            assert out.status == Status.NOT_CHECKED, (rule_id, out.message)
            assert "were not given to the rules" in out.reason


def test_no_hives(sb_images: dict[str, Path]) -> None:
    with audited(sb_images["good"], "TrustedLaunch", hives=()) as ctx:
        servicing = run("secureboot.uefica2023_servicing", ctx)
        assert servicing.status == Status.NOT_CHECKED and "SYSTEM" in servicing.reason
        assert run("secureboot.os_supported", ctx).status == Status.NOT_CHECKED
        # the boot manager is still read; the missing servicing state is named, not invented
        sig = run("secureboot.bootmgr_signature", ctx)
        assert not [e for e in sig.evidence if e.source == "registry"]
        if authenticode_api():
            assert sig.status == Status.FAIL, sig.message
        else:
            assert sig.status == Status.NOT_CHECKED and "servicing state not read" in sig.message


# --- through the engine -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["good", "bad", "gen1"])
def test_engine_runs_them_without_error(sb_images: dict[str, Path], name: str) -> None:
    report = azvhdaudit.audit(sb_images[name], select="secureboot.*", target={"security_type": "TrustedLaunch"})
    ids = {r.rule_id for r in report.results}
    assert ids == set(RULES)
    assert not [r for r in report.results if r.status == Status.ERROR]
    assert report.get("secureboot.os_supported").status == (Status.FAIL if name == "bad" else Status.PASS)


def test_engine_results_for_the_boot_volume(sb_images: dict[str, Path]) -> None:
    """Through audit(): where the engine gives the rules the boot volume (AuditContext.boot_files) the ESP is
    judged; where it does not, the ESP rules say so and are not checked, never passed."""
    report = azvhdaudit.audit(sb_images["good"], select="secureboot.*", target={"security_type": "TrustedLaunch"})
    gen2, sig = report.get("secureboot.generation2"), report.get("secureboot.bootmgr_signature")
    assert gen2 is not None and sig is not None
    if gen2.status == Status.NOT_CHECKED:
        assert "were not given to the rules" in gen2.reason and sig.status == Status.NOT_CHECKED
    else:
        assert gen2.status == Status.PASS and sig.status == Status.FAIL  # the lookalike CA


def test_azure_2022_profile_has_none(sb_images: dict[str, Path]) -> None:
    report = azvhdaudit.audit(sb_images["good"], profile="azure-2022")
    assert not [r for r in report.results if r.rule_id.startswith("secureboot.")]


def test_fix_script_carries_the_computed_bcdedit_lines(sb_images: dict[str, Path]) -> None:
    from azvhdaudit.fix import powershell_script

    report = azvhdaudit.audit(sb_images["bad"], select="secureboot.*", target={"security_type": "TrustedLaunch"})
    script = powershell_script(report, include_warnings=True)
    for line in (
        'bcdedit /set "{globalsettings}" testsigning off',
        'bcdedit /set "{default}" nointegritychecks off',
        'bcdedit /set "{default}" loadoptions "NOEXECUTE=OPTIN"',
        r'Start-ScheduledTask -TaskName "\Microsoft\Windows\PI\Secure-Boot-Update"',
    ):
        assert line in script, line
    # the general lines of the rule are replaced by the finding's own
    assert 'bcdedit /deletevalue "{default}" loadoptions' not in script
