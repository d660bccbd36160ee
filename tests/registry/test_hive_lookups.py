"""Lookups in an open hive read each cell once, and answer as a freshly opened hive does.

Counted (never timed) on the real Windows 7 SYSTEM hive: the names of a key's values are read once
however many lookups the key gets, a path is walked once however often it is asked for, and the key
nodes of a subkey list are fetched in a few reads of the same bytes. Errors are never remembered: a
lookup that failed fails again.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from azvhdaudit.errors import CorruptHiveError
from azvhdaudit.registry.backend import BackendHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import open_hive, open_hive_file

from .hivekit import BASE, find_key, nk_field, patch, value_cell

TCPIP = r"ControlSet001\Services\Tcpip\Parameters"
SERVICES = r"ControlSet001\Services"
BOOTMGR = r"Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements"


def _count(monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> list[int]:
    """Count the calls of ``target.name`` (an instance's method)."""
    calls = [0]
    original: Callable[..., Any] = getattr(target, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(target, name, counted)
    return calls


def test_value_names_are_read_once_per_key(realdata: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend, logs=None) as fresh:
        key = fresh.key(TCPIP)
        assert key is not None
        expected = {value.name.lower(): value for value in key.values()}
    assert len(expected) > 10
    names = [value.name for value in expected.values()]
    with open_hive_file(realdata / "SYSTEM", backend=backend, logs=None) as hive:
        key = hive.key(TCPIP)
        assert key is not None
        reads = _count(monkeypatch, hive.reader, "value_name")
        # last name first: the whole list is read once; then every other lookup is answered from it
        for name in [names[-1], *names, *(n.upper() for n in reversed(names)), "NoSuchValue"]:
            value = key.value(name)
            assert value == expected.get(name.lower())
        assert reads[0] == len(names)
        assert key.values() == list(expected.values())
        assert reads[0] == len(names)


def test_a_lookup_stops_at_the_first_match(realdata: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend, logs=None) as hive:
        key = hive.key(TCPIP)
        assert key is not None
        first, second = (value.name for value in key.values()[:2])
    with open_hive_file(realdata / "SYSTEM", backend=backend, logs=None) as hive:
        key = hive.key(TCPIP)
        assert key is not None
        reads = _count(monkeypatch, hive.reader, "value_name")
        assert key.value(first) is not None
        assert reads[0] == 1
        assert key.value(second) is not None
        assert reads[0] == 2


def test_a_path_is_walked_once(realdata: Path, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend, logs=None) as hive:
        view = RegistryView({"SYSTEM": hive})
        view.value(r"SYSTEM\Select", "Current")  # CurrentControlSet resolved before counting
        finds = _count(monkeypatch, hive.reader, "find_subkey")
        path = r"HKLM\SYSTEM\CurrentControlSet\Services\Tcpip\Parameters"
        first = view.value(path, "Hostname")
        walked = finds[0]
        assert walked == 4
        assert view.value(path, "hostname") == first
        assert view.key(r"SYSTEM\ControlSet001\services\TCPIP") is not None
        assert view.key(r"SYSTEM\ControlSet001\Services\NoSuchService") is None
        assert view.key(r"SYSTEM\ControlSet001\Services\NoSuchService") is None
        assert finds[0] == walked + 1  # only NoSuchService was looked for, once
    with open_hive_file(realdata / "SYSTEM", backend=backend, logs=None) as fresh:
        assert RegistryView({"SYSTEM": fresh}).value(path, "Hostname") == first


class _Counting(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._fh = io.BytesIO(data)
        self.reads = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.reads += 1
        self.bytes_read += len(data)
        return data


def _subkeys_reads(data: bytes, prefetch: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int, list[str]]:
    stream = _Counting(data)
    hive = open_hive(stream, "SYSTEM", source="SYSTEM", backend="regf")
    assert isinstance(hive, BackendHive)
    services = hive.key(SERVICES)
    assert services is not None
    if not prefetch:
        monkeypatch.setattr(hive.reader, "prefetch", lambda offsets: None)
    reads, read = stream.reads, stream.bytes_read
    names = [key.name for key in services.subkeys()]
    return stream.reads - reads, stream.bytes_read - read, names


def test_subkeys_fetch_the_same_bytes_in_few_reads(realdata: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = (realdata / "SYSTEM").read_bytes()
    reads, read, names = _subkeys_reads(data, True, monkeypatch)
    one_by_one, read_one_by_one, names_one_by_one = _subkeys_reads(data, False, monkeypatch)
    assert len(names) > 400 and names == names_one_by_one
    assert read == read_one_by_one
    assert one_by_one > 50
    assert reads * 5 <= one_by_one


def test_a_failed_lookup_fails_again(realdata: Path, tmp_path: Path, backend: str) -> None:
    original = (realdata / "BCD").read_bytes()
    key_path = BOOTMGR + r"\23000003"
    damaged = patch(
        original, BASE + value_cell(original, find_key(original, key_path), "Element") + 12, "<I", 0x7FFFFFF0
    )
    path = tmp_path / "BCD"
    path.write_bytes(damaged)
    with open_hive_file(path, backend=backend, logs=None) as hive:
        key = hive.key(key_path)
        assert key is not None
        messages = []
        for _ in range(2):
            with pytest.raises(CorruptHiveError) as info:
                key.value("Element")
            messages.append(str(info.value))
        assert messages[0] == messages[1]
        assert "offset 0x7FFFFFF0" in messages[0]


@pytest.mark.parametrize(("entry", "shift"), [(0, 4), (0, 1), (-1, 2), (-1, 0x7FFFFFF0)])
def test_a_bad_offset_in_a_value_list_is_named(
    realdata: Path, tmp_path: Path, backend: str, entry: int, shift: int
) -> None:
    """A value list is checked whole when first read: a misaligned or out-of-range entry, first or last,
    is reported with its offset, whichever value is asked for (here the first)."""
    with open_hive_file(realdata / "SYSTEM", backend=backend, logs=None) as fresh:
        key = fresh.key(TCPIP)
        assert key is not None
        first = key.values()[0].name
    original = (realdata / "SYSTEM").read_bytes()
    key_offset = find_key(original, TCPIP)
    count, list_offset = struct.unpack_from("<II", original, nk_field(key_offset, 36))
    at = BASE + list_offset + 4 + 4 * (entry % count)
    bad = (struct.unpack_from("<I", original, at)[0] + shift) & 0xFFFFFFFF
    path = tmp_path / "SYSTEM"
    path.write_bytes(patch(original, at, "<I", bad))
    with open_hive_file(path, backend=backend, logs=None) as hive:
        key = hive.key(TCPIP)
        assert key is not None
        with pytest.raises(CorruptHiveError) as info:
            key.value(first)
    assert f"offset 0x{bad:X}" in str(info.value)
