"""Corrupt hives raise CorruptHiveError naming the file and the offset, with either backend.

Each case patches bytes of a copy of the real BCD hive (32 KiB; key node and list offsets located by
reading the raw cells, see hivekit.py). Opening or reading every key and value must raise
CorruptHiveError -- never a bare struct.error, EOFError, KeyError or RecursionError -- and never loop.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from azvhdaudit.errors import CorruptHiveError, RegistryError
from azvhdaudit.registry.open import open_hive, open_hive_file

from .hivekit import BASE, exercise, find_key, fix_checksum, nk_field, patch, subkey_entries, value_cell

BOOTMGR = r"Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements"

Patch = Callable[[bytes], bytes]


def _base_field(offset: int, value: int) -> Patch:
    return lambda d: fix_checksum(patch(d, offset, "<I", value))


def _flip(at: int) -> Patch:
    return lambda d: d[:at] + bytes([d[at] ^ 0x01]) + d[at + 1 :]


def _truncate(size: int) -> Patch:
    return lambda d: d[: size if size >= 0 else len(d) + size]


def _subkey_entry(path: str, index: int, target: Callable[[bytes], int]) -> Patch:
    def apply(d: bytes) -> bytes:
        at, _ = subkey_entries(d, find_key(d, path))[index]
        return patch(d, at, "<I", target(d))

    return apply


def _list_header(path: str, fmt: str, *values: int) -> Patch:
    """Patch the subkey list cell of the key at ``path`` from its signature on."""

    def apply(d: bytes) -> bytes:
        list_offset = struct.unpack_from("<I", d, nk_field(find_key(d, path), 28))[0]
        return patch(d, BASE + list_offset + 4, fmt, *values)

    return apply


def _self_index_root(path: str) -> Patch:
    def apply(d: bytes) -> bytes:
        list_offset = struct.unpack_from("<I", d, nk_field(find_key(d, path), 28))[0]
        return patch(d, BASE + list_offset + 4, "<2sHI", b"ri", 1, list_offset)

    return apply


def _nk(path: str, field: int, value: int) -> Patch:
    return lambda d: patch(d, nk_field(find_key(d, path), field), "<I", value)


def _vk(path: str, name: str, field: int, value: int) -> Patch:
    def apply(d: bytes) -> bytes:
        return patch(d, BASE + value_cell(d, find_key(d, path), name) + 4 + field, "<I", value)

    return apply


def _cell_size(path: str, size: int) -> Patch:
    return lambda d: patch(d, BASE + find_key(d, path), "<i", size)


# id: (patch, words the message must contain)
CASES: dict[str, tuple[Patch, str]] = {
    "bad signature": (lambda d: b"rgef" + d[4:], "signature b'rgef' at offset 0x0"),
    "bad checksum": (_flip(508), "checksum"),
    "checksum field only": (_flip(20), "checksum"),
    "hive bins size not a multiple of 4096": (_base_field(40, 0x1234), "hive bins data size 0x1234 at offset 0x28"),
    "a log file, not a hive": (_base_field(28, 6), "file type 6 at offset 0x1C"),
    "root cell past the end": (_base_field(36, 0x100000), "root cell offset 0x100000 at offset 0x24"),
    "truncated in the base block": (_truncate(100), "truncated"),
    "truncated after the base block": (_truncate(4096), "truncated"),
    "truncated in the first bin": (_truncate(4096 + 10), "truncated"),
    "truncated in the middle": (_truncate(20000), "truncated"),
    "last bin missing": (_truncate(-4096), "truncated"),
    "no hive bin signature": (lambda d: patch(d, 4096, "<4s", b"nbih"), "no hive bin at offset 0x1000"),
    "subkey offset past the end": (_subkey_entry("", 1, lambda d: 0x7FFFFFF8), "offset 0x7FFFFFF8"),
    "subkey offset not aligned": (_subkey_entry("", 1, lambda d: 0x103), "offset 0x103"),
    "subkey points to a value cell": (
        _subkey_entry("Objects", 0, lambda d: value_cell(d, find_key(d, BOOTMGR + r"\23000003"), "Element")),
        "offset 0x",
    ),
    "subkey list loops to itself": (_subkey_entry("Objects", 0, lambda d: find_key(d, "Objects")), "loop"),
    "subkey list loops to the root": (_subkey_entry(BOOTMGR, 0, lambda d: find_key(d, "")), "loop"),
    "index root points to itself": (_self_index_root("Objects"), "offset 0x"),
    "subkey list count absurd": (_list_header("Objects", "<2sH", b"lh", 0xFFFF), "offset 0x"),
    "subkey list unknown signature": (_list_header("Objects", "<2s", b"zz"), "offset 0x"),
    "value count absurd": (_nk(BOOTMGR + r"\23000003", 36, 0x00FFFFFF), "values do not fit"),
    "value list past the end": (_nk(BOOTMGR + r"\23000003", 40, 0x7FFFFFF0), "offset 0x7FFFFFF0"),
    "value data past the end": (_vk(BOOTMGR + r"\23000003", "Element", 8, 0x7FFFFFF0), "offset 0x7FFFFFF0"),
    "value data longer than its cell": (_vk(BOOTMGR + r"\23000003", "Element", 4, 5000), "the value says 5000"),
    "key cell size past the end": (_cell_size("Objects", -0x7FFFFFF0), "does not fit"),
    "key cell size zero": (_cell_size("Objects", 0), "does not fit"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_corrupt_hive_raises(realdata: Path, tmp_path: Path, backend: str, case: str) -> None:
    damage, expected = CASES[case]
    original = (realdata / "BCD").read_bytes()
    damaged = damage(original)
    assert damaged != original
    path = tmp_path / "BCD"
    path.write_bytes(damaged)
    with pytest.raises(CorruptHiveError) as info:
        with open_hive_file(path, backend=backend, logs=None) as hive:
            exercise(hive)
    message = str(info.value)
    assert str(path) in message
    assert expected in message
    assert "offset" in message or "truncated" in message


def test_the_undamaged_copy_reads(realdata: Path, tmp_path: Path, backend: str) -> None:
    """The control case: the same walk over the undamaged hive raises nothing."""
    path = tmp_path / "BCD"
    path.write_bytes((realdata / "BCD").read_bytes())
    with open_hive_file(path, backend=backend) as hive:
        assert exercise(hive) == 132


@pytest.mark.parametrize(
    ("backend_name", "case", "cause"),
    [
        ("python-registry", "subkey points to a value cell", Exception),
    ],
)
def test_backend_errors_are_chained(
    realdata: Path, tmp_path: Path, backend_name: str, case: str, cause: type[BaseException]
) -> None:
    """Where a backend library's own exception is wrapped, it stays reachable as ``__cause__``."""
    path = tmp_path / "BCD"
    path.write_bytes(CASES[case][0]((realdata / "BCD").read_bytes()))
    with open_hive_file(path, backend=backend_name) as hive:
        objects = hive.root().subkey("Objects")
        assert objects is not None
        with pytest.raises(CorruptHiveError) as info:
            objects.subkeys()
    assert isinstance(info.value.__cause__, cause)
    assert not isinstance(info.value.__cause__, CorruptHiveError)


class _FailingStream(io.BytesIO):
    """Reads fail past ``limit`` bytes into the file, as a bad sector of the image would."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self.limit = limit

    def read(self, size: int | None = -1) -> bytes:
        wanted = size if size is not None and size >= 0 else len(self.getbuffer()) - self.tell()
        if self.tell() + wanted > self.limit:
            raise OSError(5, "Input/output error")
        return super().read(size)


def test_read_error_is_a_registry_error_not_corruption(realdata: Path, backend: str) -> None:
    data = (realdata / "SYSTEM").read_bytes()
    limit = 4096 * 3
    with pytest.raises(RegistryError) as info:
        hive = open_hive(_FailingStream(data, limit), "SYSTEM", source="img:SYSTEM", backend=backend)
        exercise(hive)
    assert not isinstance(info.value, CorruptHiveError)
    assert "img:SYSTEM" in str(info.value) and "Input/output error" in str(info.value)


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("subkey list unknown signature", "found a cell of unknown signature b'zz'"),
        ("subkey list count absurd", "entries need"),
    ],
)
def test_regf_list_checks_raise_corrupt_hive_themselves(realdata: Path, tmp_path: Path, case: str, words: str) -> None:
    """The regf reader's own checks of a subkey list cell raise CorruptHiveError directly, naming the cell."""
    path = tmp_path / "BCD"
    path.write_bytes(CASES[case][0]((realdata / "BCD").read_bytes()))
    with open_hive_file(path, backend="regf") as hive:
        objects = hive.root().subkey("Objects")
        assert objects is not None
        with pytest.raises(CorruptHiveError, match=r"subkey list of key node 'Objects': .*offset 0x") as info:
            objects.subkeys()
    assert words in str(info.value)
    assert info.value.__cause__ is None


def test_a_builtin_error_raised_inside_a_backend_library_is_a_corrupt_hive() -> None:
    from dissect.regf.c_regf import c_regf

    from azvhdaudit.registry.backend import raised_in_library, wrap_backend_error

    with pytest.raises(EOFError) as short:
        c_regf._CM_KEY_NODE(b"nk\x00")  # dissect.cstruct reads past the bytes given
    assert raised_in_library(short.value)
    with pytest.raises(CorruptHiveError, match="hive: key node: EOFError") as info:
        wrap_backend_error("hive", "key node", short.value)
    assert info.value.__cause__ is short.value


@pytest.mark.parametrize(
    "error", [KeyError("x"), IndexError("list index out of range"), ValueError("bad"), MemoryError()]
)
def test_a_builtin_error_of_our_own_code_is_not_taken_for_a_corrupt_hive(error: BaseException) -> None:
    """The same classes raised by this package's code are bugs: wrap_backend_error leaves them alone."""
    from azvhdaudit.registry.backend import raised_in_library, wrap_backend_error

    try:
        raise error
    except type(error) as err:
        assert not raised_in_library(err)
        assert wrap_backend_error("hive", "key node", err) is None


@pytest.mark.parametrize("backend_name", ["regf", "python-registry"])
def test_a_bug_in_the_reader_reaches_the_caller_as_itself(
    realdata: Path, tmp_path: Path, backend_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyError raised by the reader's own code (here put there on purpose) is not a CorruptHiveError."""
    from azvhdaudit.registry.pyreg import PyRegReader
    from azvhdaudit.registry.regf import RegfReader

    reader = RegfReader if backend_name == "regf" else PyRegReader

    def broken(self: object, node: object) -> list[int]:
        raise KeyError("a bug of ours")

    path = tmp_path / "BCD"
    path.write_bytes((realdata / "BCD").read_bytes())
    with open_hive_file(path, backend=backend_name) as hive:
        objects = hive.root().subkey("Objects")
        assert objects is not None
        monkeypatch.setattr(reader, "value_records", broken)
        with pytest.raises(KeyError, match="a bug of ours"):
            objects.values()
