"""What importing the package and opening an image load: counted in a fresh interpreter, never timed.

The command line starts with ``import azvhdaudit.cli``; the parsers of formats an audit does not meet (a VHD's
reader on a VHDX, the VHDX log replay on a clean disk, NTFS and FAT before a volume of their kind is opened) are
loaded when first used.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
    # the package, its errors, report and capabilities, the renderers' names and the command line itself
    assert len(ours) <= 8, ours
    assert len(modules) <= 130


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
