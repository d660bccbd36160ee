"""pe.file_version_of reads only the headers and the resource section, and agrees with pe.file_version.

The PE files are real: built with x86_64-w64-mingw32-windres/gcc (a large one has a multi-megabyte
section linked before .rsrc, as a kernel has), and the binaries of the committed samples.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from azvhdaudit.image import open_image
from azvhdaudit.pe import file_version, file_version_of
from azvhdaudit.rules.base import GuestFiles

from .test_pe import RC, build_pe

MiB = 1024 * 1024


class CountingIO(io.BytesIO):
    """A BytesIO that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


def build_big_pe(tmp: Path, version: tuple[int, int, int, int], pad: int) -> bytes:
    """A PE32+ file with ``pad`` bytes of non-zero data in a section before .rsrc."""
    tools = ("x86_64-w64-mingw32-windres", "x86_64-w64-mingw32-gcc", "x86_64-w64-mingw32-objcopy")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"the MinGW tools are needed to build test PE files: {missing}")
    (tmp / "m.c").write_text("int main(void){return 0;}\n")
    (tmp / "v.rc").write_text(RC.format(a=version[0], b=version[1], c=version[2], d=version[3]))
    subprocess.run([tools[0], str(tmp / "v.rc"), "-O", "coff", "-o", str(tmp / "v.res")], check=True)
    (tmp / "pad.bin").write_bytes(bytes(range(1, 256)) * (pad // 255 + 1))
    subprocess.run(
        [tools[2], "-I", "binary", "-O", "pe-x86-64", "-B", "i386:x86-64", str(tmp / "pad.bin"), str(tmp / "pad.o")],
        check=True,
    )
    subprocess.run(
        [tools[1], "-s", "-o", str(tmp / "big.exe"), str(tmp / "m.c"), str(tmp / "pad.o"), str(tmp / "v.res")],
        check=True,
    )
    return (tmp / "big.exe").read_bytes()


@pytest.fixture(scope="module")
def big_pe(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_big_pe(tmp_path_factory.mktemp("bigpe"), (10, 0, 17763, 2183), 8 * MiB)


@pytest.fixture(scope="module")
def small_pe(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_pe(tmp_path_factory.mktemp("smallpe"), (6, 1, 7601, 23403))


@pytest.fixture(scope="module")
def bare_pe(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_pe(tmp_path_factory.mktemp("barepe"), None)


def _variants(data: bytes) -> dict[str, bytes]:
    at = data.find((0xFEEF04BD).to_bytes(4, "little"))
    broken = bytearray(data)
    broken[at - 40 : at + 52] = b"\xff" * 92
    return {
        "whole": data,
        "cut in the headers": data[:300],
        "cut before the resources": data[: at - 100],
        "cut inside the resources": data[: at + 8],
        "broken version resource": bytes(broken),
    }


@pytest.mark.parametrize("which", ["small_pe", "big_pe", "bare_pe"])
@pytest.mark.parametrize(
    "variant",
    ["whole", "cut in the headers", "cut before the resources", "cut inside the resources", "broken version resource"],
)
def test_same_result_as_the_whole_file(request: pytest.FixtureRequest, which: str, variant: str) -> None:
    data: bytes = request.getfixturevalue(which)
    if which == "bare_pe":
        data = data if variant == "whole" else data[: len(data) // 2]
    else:
        data = _variants(data)[variant]
    assert file_version_of(CountingIO(data)) == file_version(data)


@pytest.mark.parametrize("data", [b"", b"MZ", b"garbage" * 20, b"MZ" + bytes(100), b"MZ" + b"\xff" * 4096])
def test_garbage_is_none(data: bytes) -> None:
    assert file_version_of(io.BytesIO(data)) is None


def test_reads_only_headers_and_resources(big_pe: bytes) -> None:
    stream = CountingIO(big_pe)
    assert file_version_of(stream) == (10, 0, 17763, 2183) == file_version(big_pe)
    assert len(big_pe) > 8 * MiB
    assert stream.bytes_read < 64 * 1024


def test_resources_outside_their_section_read_the_whole_file(small_pe: bytes) -> None:
    # Point the resource directory past every section: only the whole file can answer (here: None).
    import pefile

    pe = pefile.PE(data=small_pe, fast_load=True)
    entry = pe.OPTIONAL_HEADER.DATA_DIRECTORY[2]
    entry.VirtualAddress = 0x7FFF0000
    data = pe.write()
    stream = CountingIO(bytes(data))
    assert file_version_of(stream) == file_version(bytes(data))


def sample_binaries(files: GuestFiles) -> Iterator[tuple[str, bytes]]:
    """``(path, whole file)`` of every binary in System32 and its drivers folder."""
    for folder in ("Windows\\System32", "Windows\\System32\\drivers"):
        for name in files.listdir(folder) or []:
            if name.lower().endswith((".sys", ".dll", ".exe")):
                path = f"{folder}\\{name}"
                whole = files.read(path)
                assert whole is not None
                yield path, whole


@pytest.mark.parametrize("sample", ["gen1-azure.vhd", "gen2-misconfigured.vhdx"])
def test_sample_binaries(sample_path: Callable[[str], Path], sample: str) -> None:
    with open_image(sample_path(sample)) as image:
        files = image.files
        assert files is not None
        found = 0
        for path, whole in sample_binaries(files):
            assert files.file_version(path) == file_version(whole), path
            found += 1
        assert found >= 20


def test_resource_directory_ending_in_no_section(small_pe: bytes) -> None:
    # A directory size that ends past every section (found by fuzzing): pefile cannot map its end, and the
    # stream reader reads the whole file instead of raising pefile's error.
    import pefile

    pe = pefile.PE(data=small_pe, fast_load=True)
    pe.OPTIONAL_HEADER.DATA_DIRECTORY[2].Size = 0xE0000000
    pe.OPTIONAL_HEADER.FileAlignment = 0x1000  # sections at 0x200 multiples: the plain path leaves it to pefile
    data = bytes(pe.write())
    assert file_version_of(CountingIO(data)) == file_version(data) == (6, 1, 7601, 23403)


def test_version_data_in_no_section(small_pe: bytes) -> None:
    # The version's data entry points at an RVA in no section (found by fuzzing): no version, no pefile error.
    import pefile

    pe = pefile.PE(data=small_pe, fast_load=True)
    pe.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]])
    version = next(e for e in pe.DIRECTORY_ENTRY_RESOURCE.entries if e.id == 16)
    entry = version.directory.entries[0].directory.entries[0].data.struct
    entry.OffsetToData = 0x32002E00
    pe.OPTIONAL_HEADER.FileAlignment = 0x1000  # the plain path leaves the file to pefile
    data = bytes(pe.write())
    assert file_version_of(CountingIO(data)) == file_version(data)
