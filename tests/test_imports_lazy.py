"""What importing the package and opening an image load: counted in a fresh interpreter, never timed.

The command line starts with ``import azvhdaudit.cli``; the parsers of formats an audit does not meet (a VHD's
reader on a VHDX, the VHDX log replay on a clean disk, NTFS and FAT before a volume of their kind is opened) are
loaded when first used.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from diskbuild import require_tools

#: third-party packages an audit loads when it reads an image, none of which the command line needs to start
HEAVY = ("dissect", "pefile", "signify", "fsspec", "construct", "Registry", "aiohttp", "azure", "adlfs")


def _modules_after(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return list(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_command_line_loads_no_parser() -> None:
    modules = _modules_after("import azvhdaudit.cli")
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []
    ours = [m for m in modules if m.split(".")[0] == "azvhdaudit"]
    # the package, its errors and report, the renderers' names and the command line itself: the image facts and
    # the capabilities come with the first audit
    assert len(ours) <= 6, ours
    assert "azvhdaudit.facts" not in modules and "azvhdaudit.capabilities" not in modules
    assert len(modules) <= 115


#: what a command-line audit of a clean VHDX never needs: the transaction-log layouts (construct, and the pickle,
#: pdb and platform modules construct imports), the other hive backend, the network error hints (socket), the
#: HTML views of the BCD store, the Authenticode verifier for a boot manager without a certificate table, and
#: shutil with the compression modules it imports (argparse's help formatter asks it for the terminal's width)
NOT_FOR_A_CLEAN_VHDX = (
    *("construct", "pickle", "pdb", "Registry", "socket", "html", "signify", "fsspec"),
    *("shutil", "bz2", "lzma"),
)


def test_a_command_line_audit_of_a_clean_vhdx_loads_only_what_it_reads(sample_path: Callable[[str], Path]) -> None:
    image = sample_path("gen2-misconfigured.vhdx")
    from azvhdaudit.engine import audit

    report = audit(image)
    # the premise: hives that need no log replay, an ESP whose boot manager carries no signature to verify
    assert {name: hive.get("dirty") for name, hive in report.facts["hives"].items()} == {
        "SYSTEM": False,
        "SOFTWARE": False,
        "BCD": False,
        "SAM": None,
        "SECURITY": None,
    }
    modules = _modules_after(
        "import os\n"
        "from azvhdaudit.cli import main\n"
        f"assert main(['audit', {str(image)!r}, '--format', 'json', '-o', os.devnull]) == 1"
    )
    assert [m for m in modules if m.split(".")[0] in NOT_FOR_A_CLEAN_VHDX] == []
    assert "azvhdaudit.registry.log_layout" not in modules and "azvhdaudit.registry.replay" not in modules
    assert "azvhdaudit.hints" not in modules
    assert "azvhdaudit.container.vhd" not in modules and "azvhdaudit.container.vhdx_log" not in modules
    # one image's audit records its identity without the fleet view's classes
    assert "azvhdaudit.identity" in modules and "azvhdaudit.overview" not in modules
    # everything the process imported, the interpreter's own start included
    assert len(modules) <= 300, len(modules)


def test_the_file_system_package_loads_each_reader_on_first_use() -> None:
    modules = _modules_after("import azvhdaudit.fs")
    assert "azvhdaudit.fs.ntfs" not in modules and "azvhdaudit.fs.fat" not in modules
    assert not any(m.startswith(("dissect.ntfs", "dissect.fat")) for m in modules)
    modules = _modules_after("from azvhdaudit.fs import NtfsVolume")
    assert "dissect.ntfs" in modules and "dissect.fat" not in modules


@pytest.mark.tools
def test_opening_a_vhdx_loads_no_vhd_reader_and_no_log_replay(tmp_path: Path) -> None:
    require_tools()
    image = tmp_path / "disk.vhdx"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vhdx", str(image), "64M"], check=True, timeout=60)
    modules = _modules_after(
        "from azvhdaudit.container import open_container\n"
        f"with open_container({str(image)!r}) as disk:\n"
        "    assert disk.read(512) == bytes(512)"
    )
    assert "azvhdaudit.container.vhdx" in modules
    assert "azvhdaudit.container.vhd" not in modules
    assert "azvhdaudit.container.vhdx_log" not in modules
    assert not any(m.split(".")[0] == "construct" for m in modules)
