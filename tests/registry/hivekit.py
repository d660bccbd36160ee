"""Helpers for the registry tests: walking a hive, and locating cells in a hive file to patch a copy.

The cell helpers read the bytes of the file directly (offsets relative to the hive bins data, as in the
format), independent of both backends, so a patched copy does not depend on the code under test.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Iterator

from azvhdaudit.registry.logs import hive_checksum
from azvhdaudit.registry.model import Hive, RegKey

BASE = 4096

KeyRecord = tuple[str, "_dt.datetime | None", tuple[str, ...], tuple[tuple[str, int, bytes], ...]]


def walk(hive: Hive) -> Iterator[RegKey]:
    stack: list[RegKey] = [hive.root()]
    while stack:
        key = stack.pop()
        yield key
        stack.extend(reversed(key.subkeys()))


def snapshot(hive: Hive) -> list[KeyRecord]:
    """Every key, depth first: path, last-write time, subkey names, and (name, type, raw bytes) of each value."""
    records: list[KeyRecord] = []
    stack: list[RegKey] = [hive.root()]
    while stack:
        key = stack.pop()
        subkeys = key.subkeys()
        values = tuple((v.name, v.type, v.raw) for v in key.values())
        records.append((key.path, key.last_write, tuple(k.name for k in subkeys), values))
        stack.extend(reversed(subkeys))
    return records


def exercise(hive: Hive) -> int:
    """Read everything a rule could read; returns the number of keys."""
    count = 0
    for key in walk(hive):
        key.last_write  # noqa: B018 - reading it is the point
        values = key.values()
        # looking a value up by name reads the list again: a few per key keeps the walk linear
        for value in values[:3]:
            assert key.value(value.name) is not None
        count += 1
    return count


# --- raw cells ------------------------------------------------------------------------------------


def cell(data: bytes, offset: int) -> bytes:
    """The data of the cell at ``offset`` (without its size field)."""
    size = abs(struct.unpack_from("<i", data, BASE + offset)[0])
    return data[BASE + offset + 4 : BASE + offset + size]


def nk_name(data: bytes, offset: int) -> str:
    body = cell(data, offset)
    assert body[:2] == b"nk"
    length = struct.unpack_from("<H", body, 72)[0]
    return body[76 : 76 + length].decode("latin-1")


def subkey_entries(data: bytes, offset: int) -> list[tuple[int, int]]:
    """(file offset of the entry, key node offset) for each subkey of the key node at ``offset``."""
    body = cell(data, offset)
    list_offset = struct.unpack_from("<I", body, 28)[0]
    lst = cell(data, list_offset)
    kind, count = lst[:2], struct.unpack_from("<H", lst, 2)[0]
    assert kind in (b"lf", b"lh", b"li"), kind
    stride = 4 if kind == b"li" else 8
    start = BASE + list_offset + 4 + 4
    return [(start + i * stride, struct.unpack_from("<I", lst, 4 + i * stride)[0]) for i in range(count)]


def find_key(data: bytes, path: str) -> int:
    """Offset of the key node at ``path`` (case-insensitive), found by walking the raw lists."""
    offset = struct.unpack_from("<I", data, 36)[0]
    for part in [p for p in path.split("\\") if p]:
        for _, child in subkey_entries(data, offset):
            if nk_name(data, child).lower() == part.lower():
                offset = child
                break
        else:
            raise KeyError(path)
    return offset


def value_cell(data: bytes, key_offset: int, name: str) -> int:
    """Offset of the ``vk`` cell of value ``name`` of the key node at ``key_offset``."""
    body = cell(data, key_offset)
    count, list_offset = struct.unpack_from("<II", body, 36)
    values = cell(data, list_offset)
    for (offset,) in struct.iter_unpack("<I", values[: count * 4]):
        vk = cell(data, offset)
        length = struct.unpack_from("<H", vk, 2)[0]
        if vk[20 : 20 + length].decode("latin-1").lower() == name.lower():
            return offset
    raise KeyError(name)


def nk_field(key_offset: int, field_offset: int) -> int:
    """File offset of a field of the key node at ``key_offset`` (``field_offset`` from the ``nk`` signature)."""
    return BASE + key_offset + 4 + field_offset


def patch(data: bytes, at: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, at, *values)
    return bytes(out)


def fix_checksum(data: bytes) -> bytes:
    return patch(data, 508, "<I", hive_checksum(data[:508]))
