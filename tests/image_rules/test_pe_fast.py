"""The fast version reader of azvhdaudit.pe against pefile, the reference.

The fast path answers only for PE files with the plain layout a linker writes and hands everything else
to pefile. What must hold: on the real binaries (MinGW-built, and those of the committed samples) it
answers, and answers what pefile answers; on damaged copies, whenever it answers, pefile finds the same
version or none at all -- never another one.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable
from pathlib import Path

import pefile
import pytest

from azvhdaudit import pe
from azvhdaudit.image import open_image
from azvhdaudit.pe import file_version, file_version_of

from .test_pe import build_pe
from .test_pe_stream import CountingIO, build_big_pe, sample_binaries

MiB = 1024 * 1024


def fast(data: bytes) -> tuple[int, int, int, int] | None | str:
    """The fast path's answer, or ``"defer"`` when it leaves the file to pefile."""
    head = data[:4096]
    try:
        return pe._fast_version(pe._Pages(io.BytesIO(data), len(data), head), head)
    except pe._Defer:
        return "defer"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp
    return {
        "small": build_pe(tmp("s"), (6, 1, 7601, 23403)),
        "no version": build_pe(tmp("n"), None),
        "big": build_big_pe(tmp("b"), (10, 0, 17763, 2183), 2 * MiB),
    }


@pytest.mark.parametrize("which", ["small", "no version", "big"])
def test_answers_for_linker_output(built: dict[str, bytes], which: str) -> None:
    data = built[which]
    answer = fast(data)
    assert answer != "defer"
    assert answer == file_version(data)


@pytest.mark.parametrize("sample", ["gen1-azure.vhd", "gen2-misconfigured.vhdx"])
def test_answers_for_the_sample_binaries(sample_path: Callable[[str], Path], sample: str) -> None:
    with open_image(sample_path(sample)) as image:
        files = image.files
        assert files is not None
        checked = 0
        for path, whole in sample_binaries(files):
            assert fast(whole) == file_version(whole) != "defer", path
            checked += 1
    assert checked >= 20


def _targets(data: bytes) -> list[int]:
    """File offsets of the structures on the path to the version: headers, section table, resource tree."""
    parsed = pefile.PE(data=data, fast_load=True)
    headers = list(range(0, parsed.sections[-1].get_file_offset() + 40))
    rsrc = next(s for s in parsed.sections if s.Name.rstrip(b"\x00") == b".rsrc")
    start = rsrc.PointerToRawData
    resources = list(range(start, start + min(rsrc.SizeOfRawData, 0x200)))
    return headers + resources


@pytest.mark.parametrize("which", ["small", "big"])
def test_never_a_different_version_on_damaged_copies(built: dict[str, bytes], which: str) -> None:
    original = built[which]
    targets = _targets(original)
    rng = random.Random(f"pe-fast-{which}")
    outcomes = {"same": 0, "defer": 0}
    for _ in range(600):
        data = bytearray(original)
        for _ in range(rng.choice((1, 1, 2, 3))):
            at = rng.choice(targets)
            if rng.random() < 0.5:
                data[at] = rng.randrange(256)
            else:
                value = rng.choice((0, 1, 16, 0x80000000 | 16, 0x7FFFFFFF, 0xFFFFFFFF, rng.getrandbits(32)))
                data[at : at + 4] = struct.pack("<I", value)
        damaged = bytes(data)
        answer = fast(damaged)
        if answer == "defer":
            outcomes["defer"] += 1
            continue
        reference = file_version(damaged)
        assert reference in (answer, None), (answer, reference)
        outcomes["same"] += 1
        # and the stream reader gives what the reference gives when the fast path answers alike
        if reference == answer:
            assert file_version_of(CountingIO(damaged)) == answer
    # the damage hits both kinds: harmless bytes (answered) and structures on the path (deferred)
    assert outcomes["same"] > 100 and outcomes["defer"] > 50, outcomes


def test_a_second_language_is_not_taken_for_the_first(built: dict[str, bytes]) -> None:
    # Make the version's language entry a subdirectory: the plain path stops and pefile decides.
    data = bytearray(built["small"])
    parsed = pefile.PE(data=bytes(data), fast_load=True)
    parsed.parse_data_directories(directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]])
    version = next(e for e in parsed.DIRECTORY_ENTRY_RESOURCE.entries if e.id == 16)
    lang = version.directory.entries[0].directory.entries[0]
    at = lang.struct.get_file_offset() + 4
    (offset,) = struct.unpack_from("<I", data, at)
    struct.pack_into("<I", data, at, offset | 0x80000000)
    assert fast(bytes(data)) == "defer"
    assert file_version_of(io.BytesIO(bytes(data))) == file_version(bytes(data))
