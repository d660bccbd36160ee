"""The Secure Boot tests' images, built once per session by Debian's tools (see sbkit.py and tests/diskbuild.py).

- ``good``: GPT; ESP with the real Windows 10 BCD store (tests/data/realdata) and a signed EFI boot manager;
  Windows Server 2019; servicing ``Updated``.
- ``bad``: GPT; ESP with a BCD whose default loader has nointegritychecks and DISABLE_INTEGRITY_CHECKS and
  inherits testsigning from {globalsettings}, and an unsigned boot manager; Windows 10 Home; servicing
  ``InProgress`` with an error.
- ``noboot``: GPT; ESP with a BCD and \\EFI\\Boot\\bootx64.efi but no \\EFI\\Microsoft\\Boot\\bootmgfw.efi;
  Windows Server 2012 R2; no servicing values.
- ``gen1``: MBR; \\Boot\\BCD on the Windows volume; Windows Server 2019; servicing ``NotStarted``.
- ``shim_image`` (its own fixture): GPT; ESP whose \\EFI\\Microsoft\\Boot\\bootmgfw.efi is Debian's
  Microsoft-signed shim (real signatures nobody here made); Windows Server 2019; servicing requested, not started.
- ``nobcd``: GPT; ESP with a boot manager but no BCD store; SYSTEM but no SOFTWARE hive.
"""

from __future__ import annotations

import lzma
from pathlib import Path
from types import ModuleType

import pytest
from image_rules.helpers import (
    BOOTLOADERSETTINGS,
    BOOTMGR,
    GLOBALSETTINGS,
    LOADER,
    REALDATA,
    boolean,
    good_bcd_objects,
)

from . import sbkit

SYSTEM = r"Windows\System32\config\SYSTEM"
SOFTWARE = r"Windows\System32\config\SOFTWARE"


def bad_bcd_objects() -> dict[str, tuple[int, dict[int, object]]]:
    objects = good_bcd_objects()
    loader = objects[LOADER][1]
    loader[0x16000048] = boolean(True)  # nointegritychecks
    loader[0x12000030] = "DISABLE_INTEGRITY_CHECKS NOEXECUTE=OPTIN"  # loadoptions
    objects[GLOBALSETTINGS][1][0x16000049] = boolean(True)  # testsigning, inherited via {bootloadersettings}
    assert BOOTLOADERSETTINGS in objects and BOOTMGR in objects
    return objects


def shim_bytes(builder: ModuleType) -> bytes:
    """Debian 12's shimx64.efi (samples/material.py, SHA-256 pinned): signed through Microsoft Corporation UEFI CA
    2011 and Microsoft UEFI CA 2023, Microsoft's CAs for third-party UEFI software."""
    return bytes(builder.material.fetch("shimx64.efi"))


@pytest.fixture(scope="session")
def shim(tools: None, sample_builder: ModuleType) -> bytes:
    return shim_bytes(sample_builder)


@pytest.fixture(scope="session")
def sb_images(tmp_path_factory: pytest.TempPathFactory, tools: None, sample_builder: ModuleType) -> dict[str, Path]:
    b = sample_builder
    work = tmp_path_factory.mktemp("secureboot")
    pe_work = work / "pe"
    pe_work.mkdir()
    unsigned = sbkit.efi_binary(b, pe_work)
    signed = sbkit.self_signed(unsigned, pe_work)
    with lzma.open(REALDATA / "BCD.xz") as fh:
        real_bcd = fh.read()

    def hive(name: str, root: str, tree: dict) -> bytes:
        return sbkit.hive_file(b, work / name, root, tree).read_bytes()

    good_bcd = hive("good.bcd", "BCD00000000", sbkit.bcd_tree(good_bcd_objects()))
    bad_bcd = hive("bad.bcd", "BCD00000000", sbkit.bcd_tree(bad_bcd_objects()))
    server_2019 = hive(
        "s2019.sw",
        "SOFTWARE",
        sbkit.software_tree("Windows Server 2019 Datacenter", "ServerDatacenter", 17763, "Server"),
    )
    images = {
        "good": sbkit.gpt_image(
            work,
            "good",
            {sbkit.ESP_FILES_BCD: real_bcd, sbkit.BOOTMGFW: signed},
            {
                SYSTEM: hive(
                    "good.sys",
                    "SYSTEM",
                    sbkit.system_tree(
                        servicing={"UEFICA2023Status": "Updated", "WindowsUEFICA2023Capable": 2, "UEFICA2023Error": 0},
                        secureboot={"AvailableUpdates": 0x4000},
                    ),
                ),
                SOFTWARE: server_2019,
            },
        ),
        "bad": sbkit.gpt_image(
            work,
            "bad",
            {sbkit.ESP_FILES_BCD: bad_bcd, sbkit.BOOTMGFW: unsigned},
            {
                SYSTEM: hive(
                    "bad.sys",
                    "SYSTEM",
                    sbkit.system_tree(
                        servicing={
                            "UEFICA2023Status": "InProgress",
                            "WindowsUEFICA2023Capable": 1,
                            "UEFICA2023Error": 0x80070005,
                            "UEFICA2023ErrorEvent": 1795,
                        },
                        secureboot={"AvailableUpdates": 0x4100},
                        product_type="WinNT",
                    ),
                ),
                SOFTWARE: hive("home.sw", "SOFTWARE", sbkit.software_tree("Windows 10 Home", "Core", 19045, "Client")),
            },
        ),
        "noboot": sbkit.gpt_image(
            work,
            "noboot",
            {sbkit.ESP_FILES_BCD: good_bcd, r"EFI\Boot\bootx64.efi": signed},
            {
                SYSTEM: hive("noboot.sys", "SYSTEM", sbkit.system_tree()),
                SOFTWARE: hive(
                    "s2012.sw",
                    "SOFTWARE",
                    sbkit.software_tree("Windows Server 2012 R2 Datacenter", "ServerDatacenter", 9600, "Server"),
                ),
            },
        ),
        "gen1": sbkit.mbr_image(
            work,
            "gen1",
            {
                r"Boot\BCD": good_bcd,
                SYSTEM: hive(
                    "gen1.sys",
                    "SYSTEM",
                    sbkit.system_tree(servicing={"UEFICA2023Status": "NotStarted"}, secureboot={"AvailableUpdates": 0}),
                ),
                SOFTWARE: server_2019,
            },
        ),
        "nobcd": sbkit.gpt_image(
            work,
            "nobcd",
            {sbkit.BOOTMGFW: signed},
            {
                SYSTEM: hive("nobcd.sys", "SYSTEM", sbkit.system_tree(servicing={"UEFICA2023Status": "Updated"})),
            },
        ),
    }
    for path in images.values():
        path.chmod(0o444)
    return images


@pytest.fixture(scope="session")
def shim_image(tmp_path_factory: pytest.TempPathFactory, shim: bytes, sample_builder: ModuleType) -> Path:
    """GPT; the ESP's \\EFI\\Microsoft\\Boot\\bootmgfw.efi is Debian's shim; Windows Server 2019, servicing
    requested (0x5944) and not started. Apart from the other images: it needs samples/material.py's download."""
    b = sample_builder
    work = tmp_path_factory.mktemp("secureboot-shim")
    with lzma.open(REALDATA / "BCD.xz") as fh:
        real_bcd = fh.read()
    system = sbkit.hive_file(
        b,
        work / "shim.sys",
        "SYSTEM",
        sbkit.system_tree(servicing={"UEFICA2023Status": "NotStarted"}, secureboot={"AvailableUpdates": 0x5944}),
    )
    software = sbkit.hive_file(
        b,
        work / "s2019.sw",
        "SOFTWARE",
        sbkit.software_tree("Windows Server 2019 Datacenter", "ServerDatacenter", 17763, "Server"),
    )
    path = sbkit.gpt_image(
        work,
        "shim",
        {sbkit.ESP_FILES_BCD: real_bcd, sbkit.BOOTMGFW: shim},
        {SYSTEM: system.read_bytes(), SOFTWARE: software.read_bytes()},
    )
    path.chmod(0o444)
    return path


@pytest.fixture(scope="session")
def efi_binaries(tmp_path_factory: pytest.TempPathFactory, tools: None, sample_builder: ModuleType) -> dict[str, bytes]:
    """An unsigned and a self-signed EFI application, and a DLL (not an EFI image)."""
    work = tmp_path_factory.mktemp("efi")
    unsigned = sbkit.efi_binary(sample_builder, work)
    return {
        "unsigned": unsigned,
        "signed": sbkit.self_signed(unsigned, work),
        "dll": bytes(sample_builder.build_pe("helper.dll", "1.0.0.0", work)),
    }
