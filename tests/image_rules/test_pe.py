"""pe.file_version on a real PE built with the MinGW tool chain, and on damaged data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from azvhdaudit.pe import file_version, format_version, parse_version

RC = """#include <winver.h>
VS_VERSION_INFO VERSIONINFO
 FILEVERSION {a},{b},{c},{d}
 PRODUCTVERSION 1,0,0,0
 FILEFLAGSMASK 0x3fL
 FILEFLAGS 0x0L
 FILEOS VOS_NT_WINDOWS32
 FILETYPE VFT_DRV
 FILESUBTYPE 0x0L
BEGIN
  BLOCK "StringFileInfo"
  BEGIN
    BLOCK "040904B0"
    BEGIN
      VALUE "FileVersion", "9.9.9.9 (branch tag, not the numeric version)"
    END
  END
  BLOCK "VarFileInfo"
  BEGIN
    VALUE "Translation", 0x409, 1200
  END
END
"""

TOOLS = ("x86_64-w64-mingw32-windres", "x86_64-w64-mingw32-gcc")


def build_pe(tmp: Path, version: tuple[int, int, int, int] | None) -> bytes:
    """A small PE32+ executable, with a VERSIONINFO resource when ``version`` is given."""
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the MinGW tools are needed to build test PE files: {missing}")
    (tmp / "m.c").write_text("int main(void){return 0;}\n")
    objs = [str(tmp / "m.c")]
    if version is not None:
        a, b, c, d = version
        (tmp / "v.rc").write_text(RC.format(a=a, b=b, c=c, d=d))
        subprocess.run([TOOLS[0], str(tmp / "v.rc"), "-O", "coff", "-o", str(tmp / "v.res")], check=True)
        objs.append(str(tmp / "v.res"))
    subprocess.run([TOOLS[1], "-s", "-o", str(tmp / "t.exe"), *objs], check=True)
    return (tmp / "t.exe").read_bytes()


@pytest.fixture(scope="module")
def pe_with_version(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_pe(tmp_path_factory.mktemp("pe"), (6, 1, 7601, 23403))


@pytest.fixture(scope="module")
def pe_without_version(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_pe(tmp_path_factory.mktemp("pe0"), None)


def test_reads_numeric_file_version(pe_with_version: bytes) -> None:
    assert file_version(pe_with_version) == (6, 1, 7601, 23403)


def test_large_parts(tmp_path: Path) -> None:
    assert file_version(build_pe(tmp_path, (10, 0, 65535, 20001))) == (10, 0, 65535, 20001)


def test_no_version_resource(pe_without_version: bytes) -> None:
    assert file_version(pe_without_version) is None


@pytest.mark.parametrize("keep", [0, 1, 2, 63, 64, 128, 512, 1024, 2048])
def test_truncated(pe_with_version: bytes, keep: int) -> None:
    assert file_version(pe_with_version[:keep]) is None


@pytest.mark.parametrize("data", [b"", b"garbage", b"MZ" + bytes(100), b"MZ" + b"\xff" * 4096])
def test_garbage(data: bytes) -> None:
    assert file_version(data) is None


def test_broken_resource_directory(pe_with_version: bytes) -> None:
    # Overwrite the version resource's data: the signature check or pefile's parser must give up
    # quietly, never raise.
    data = bytearray(pe_with_version)
    at = data.find((0xFEEF04BD).to_bytes(4, "little"))
    assert at > 0
    data[at - 40 : at + 52] = b"\xff" * 92
    assert file_version(bytes(data)) is None


def test_cut_inside_resources(pe_with_version: bytes) -> None:
    at = pe_with_version.find((0xFEEF04BD).to_bytes(4, "little"))
    assert file_version(pe_with_version[: at + 8]) is None


@pytest.mark.parametrize(
    ("text", "version"),
    [("6.1.7601.23403", (6, 1, 7601, 23403)), ("10.0.15063", (10, 0, 15063, 0)), ("6", (6, 0, 0, 0))],
)
def test_parse_and_format(text: str, version: tuple[int, int, int, int]) -> None:
    assert parse_version(text) == version
    assert format_version(version).startswith(text)
    assert format_version(None) == "not present"
