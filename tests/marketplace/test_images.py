"""The azure-marketplace rules that read files, on disk images made by real tools: the kernel and srv.sys compiled
by mingw-w64 (x86-64 and i686, srv.sys with a VERSIONINFO resource by windres), the hives by hivex, the disk by
sfdisk, mkntfs and ntfs-3g (tests/diskbuild.py through tests/secureboot/sbkit.py), then read by azvhdaudit.audit.

- ``certifiable``: Windows Server 2016, an x86-64 kernel, srv.sys 10.0.14393.953 (the table's minimum), Server
  Manager's component cache with the flagged roles not installed, no SQL Server.
- ``flagged``: the same Windows with an i686 (32-bit) kernel, srv.sys 10.0.14393.206, the DHCP Server role
  installed (InstallState 1) and a SQL Server instance.
- ``bare``: a SYSTEM hive only: no kernel, no srv.sys or srv2.sys, no SOFTWARE hive.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
from secureboot import sbkit

import azvhdaudit
from azvhdaudit.report import Result, Status

pytestmark = [pytest.mark.slow, pytest.mark.tools]

SYSTEM = r"Windows\System32\config\SYSTEM"
SOFTWARE = r"Windows\System32\config\SOFTWARE"
KERNEL = r"Windows\System32\ntoskrnl.exe"
SRV = r"Windows\System32\drivers\srv.sys"
CACHE = r"Microsoft\ServerManager\ServicingStorage\ServerComponentCache"
I686_GCC = "i686-w64-mingw32-gcc"


def i686_kernel(work: Path) -> bytes:
    """A 32-bit (machine 0x14C) native PE made by mingw-w64's i686 compiler."""
    if shutil.which(I686_GCC) is None:
        pytest.fail(f"{I686_GCC} is missing: apt-get install gcc-mingw-w64-i686 binutils-mingw-w64-i686", pytrace=False)
    src, out = work / "kernel32.c", work / "ntoskrnl32.exe"
    src.write_text("int __stdcall entry(void) { return 0; }\n", encoding="ascii")
    subprocess.run(
        [
            I686_GCC,
            "-O2",
            "-nostdlib",
            "-nostartfiles",
            "-Wl,--entry=_entry@0",
            "-Wl,--no-insert-timestamp",
            "-Wl,--subsystem,native",
            "-s",
            "-o",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
    )
    return out.read_bytes()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, tools: None, sample_builder: ModuleType) -> dict[str, Path]:
    b = sample_builder
    work = tmp_path_factory.mktemp("marketplace")
    pe = work / "pe"
    pe.mkdir()

    def hive(name: str, root: str, tree: dict) -> bytes:
        return sbkit.hive_file(b, work / name, root, tree).read_bytes()

    system = hive("s.sys", "SYSTEM", sbkit.system_tree())
    software = sbkit.software_tree("Windows Server 2016 Datacenter", "ServerDatacenter", 14393, "Server")
    cache_off = {f"{CACHE}\\{n}": {"InstallState": 0} for n in ("DHCP", "Failover-Clustering", "WDS")}
    cache_dhcp = {**cache_off, f"{CACHE}\\DHCP": {"InstallState": 1}}
    sql = {r"Microsoft\Microsoft SQL Server\Instance Names\SQL": {"MSSQLSERVER": "MSSQL13.MSSQLSERVER"}}
    images = {
        "certifiable": sbkit.mbr_image(
            work,
            "certifiable",
            {
                SYSTEM: system,
                SOFTWARE: hive("ok.sw", "SOFTWARE", {**software, **cache_off}),
                KERNEL: bytes(b.build_pe("ntoskrnl.exe", "10.0.14393.953", pe)),
                SRV: bytes(b.build_pe("srv.sys", "10.0.14393.953", pe)),
            },
        ),
        "flagged": sbkit.mbr_image(
            work,
            "flagged",
            {
                SYSTEM: system,
                SOFTWARE: hive("bad.sw", "SOFTWARE", {**software, **cache_dhcp, **sql}),
                KERNEL: i686_kernel(pe),
                SRV: bytes(b.build_pe("srv.sys", "10.0.14393.206", pe)),
            },
        ),
        "bare": sbkit.mbr_image(work, "bare", {SYSTEM: system}),
    }
    for path in images.values():
        path.chmod(0o444)
    return images


def results(path: Path) -> dict[str, Result]:
    report = azvhdaudit.audit(str(path), profile="azure-marketplace", select=["marketplace.*"])
    return {r.rule_id: r for r in report}


def test_a_certifiable_image_passes_the_file_and_registry_rules(images: dict[str, Path]) -> None:
    got = results(images["certifiable"])
    for rule_id in (
        "marketplace.os_64bit",
        "marketplace.srv_version",
        "marketplace.unsupported_roles",
        "marketplace.sql_server",
        "marketplace.os_disk_not_encrypted",
    ):
        assert got[rule_id].status is Status.PASS, (rule_id, got[rule_id].message)
    assert got["marketplace.os_64bit"].evidence[0].raw == "8664"
    assert got["marketplace.srv_version"].actual == "10.0.14393.953"
    assert got["marketplace.unsupported_roles"].evidence[0].actual == {"DHCP": 0, "Failover-Clustering": 0, "WDS": 0}
    # a 40 MiB test disk is no certifiable OS disk: the size rule says so, with the fix
    size = got["marketplace.os_disk_size"]
    assert size.status is Status.FAIL and size.actual == 40 * 1024**2
    assert size.remediation.startswith("qemu-img resize -f raw certifiable.raw 32212254720")


def test_a_flagged_image_fails_with_evidence_and_fixes(images: dict[str, Path]) -> None:
    got = results(images["flagged"])
    arch = got["marketplace.os_64bit"]
    assert arch.status is Status.FAIL and arch.actual == "x86" and arch.evidence[0].raw == "014c"
    srv = got["marketplace.srv_version"]
    assert srv.status is Status.FAIL and srv.actual == "10.0.14393.206"
    assert srv.evidence[0].key == SRV and srv.evidence[0].actual == "10.0.14393.206"
    assert "KB4013429" in srv.remediation
    roles = got["marketplace.unsupported_roles"]
    assert roles.status is Status.FAIL and roles.actual == ["DHCP"]
    assert roles.remediation.startswith("Uninstall-WindowsFeature -Name DHCP -Remove")
    assert "-Vhd" not in roles.remediation  # a raw disk: Server Manager's offline path takes a VHD or VHDX only
    sql = got["marketplace.sql_server"]
    assert sql.status is Status.MANUAL and sql.actual == {r"SQL\MSSQLSERVER": "MSSQL13.MSSQLSERVER"}


def test_missing_files_and_hives_are_not_checked(images: dict[str, Path]) -> None:
    got = results(images["bare"])
    for rule_id in (
        "marketplace.os_64bit",
        "marketplace.srv_version",
        "marketplace.unsupported_roles",
        "marketplace.sql_server",
        "marketplace.licensed_products",
    ):
        assert got[rule_id].status is Status.NOT_CHECKED, (rule_id, got[rule_id].message)
        assert got[rule_id].reason
    assert "ntoskrnl.exe does not exist" in got["marketplace.os_64bit"].reason
