"""The regf backend's fast paths answer exactly as its checked, step-by-step reads, and defer to them otherwise.

- ``node_values`` (one call per subkey in ``subkey_values``) reads only cells in pages already read: on a cold
  hive it reads nothing and defers; with the pages read it gives, for every Services subkey of the real SYSTEM
  hive and several name sets, what ``node`` + ``find_values`` + ``value_type``/``value_raw`` give; on a damaged
  cell it defers, and ``subkey_values`` raises what the key-by-key reads raise.
- ``find_subkey`` finds a subkey's hash (``lh``) or name hint (``lf``) in the list's bytes: the same offset as
  a scan of every entry by name, for every subkey of every key of the real SYSTEM (``lh``, ``ri``) and BCD
  (``lf``) hives, in any case, and ``None`` for a name no subkey has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from azvhdaudit.errors import CorruptHiveError
from azvhdaudit.registry.open import open_hive_file
from azvhdaudit.registry.regf import RegfReader

from .hivekit import find_key, patch, value_cell, walk

SERVICES = r"ControlSet001\Services"
BOOTMGR = r"Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements"
ELEMENT = BOOTMGR + r"\23000003"
NAME_SETS = [
    ("Start",),
    ("start", "TYPE", "ImagePath"),
    ("ImagePath", "Start", "DisplayName", "ErrorControl", "Group", "Description"),
    ("",),
    ("NoSuchValue-0",),
    ("Größe", "Start"),  # a non-ASCII name: every name decoded and compared as text
]


def _reader(hive: Any) -> RegfReader:
    reader = hive.reader
    assert isinstance(reader, RegfReader)
    return reader


def _read_every_page(reader: RegfReader) -> None:
    reader.hive.prefetch(list(range(0, reader.bins_size, 4096)))


def _step_by_step(reader: RegfReader, offset: int, wanted: dict[str, str]) -> tuple[str, dict[str, Any]]:
    node = reader.node(offset)
    found = reader.find_values(reader.value_records(node), wanted)
    return reader.node_name(node), {
        lname: (name, reader.value_type(record), reader.value_raw(record)) for lname, (record, name) in found.items()
    }


def test_node_values_on_a_cold_hive_reads_nothing_and_defers(realdata: Path) -> None:
    with open_hive_file(realdata / "SYSTEM", backend="regf", logs=None) as hive:
        reader = _reader(hive)
        services = hive.key(SERVICES)
        assert services is not None
        offsets = reader.subkey_offsets(reader.node(services.offset))  # type: ignore[attr-defined]
        pages = dict(reader.hive._pages)
        answers = [reader.node_values(offset, {"start": "Start"}) for offset in offsets]
        assert reader.hive._pages == pages  # nothing read
        assert answers.count(None) > len(offsets) // 2  # most of them defer: their cells are not read yet


@pytest.mark.parametrize("names", NAME_SETS, ids=lambda names: "+".join(names) or "default")
def test_node_values_equals_the_step_by_step_reads(realdata: Path, names: tuple[str, ...]) -> None:
    wanted = {name.lower(): name for name in names}
    with (
        open_hive_file(realdata / "SYSTEM", backend="regf", logs=None) as fast_hive,
        open_hive_file(realdata / "SYSTEM", backend="regf", logs=None) as checked_hive,
    ):
        fast, checked = _reader(fast_hive), _reader(checked_hive)
        _read_every_page(fast)
        services = fast_hive.key(SERVICES)
        assert services is not None
        offsets = fast.subkey_offsets(fast.node(services.offset))  # type: ignore[attr-defined]
        assert len(offsets) > 400
        found = 0
        for offset in offsets:
            answer = fast.node_values(offset, wanted)
            assert answer is not None, f"deferred at 0x{offset:X} with every page read"
            assert answer == _step_by_step(checked, offset, wanted), f"0x{offset:X}"
            found += len(answer[1])
    if names[0] not in ("", "NoSuchValue-0"):
        assert found > 300


def _damage_signature(d: bytes) -> bytes:
    return patch(d, 4096 + value_cell(d, find_key(d, ELEMENT), "Element") + 4, "<2s", b"xk")


def _damage_name_length(d: bytes) -> bytes:
    return patch(d, 4096 + value_cell(d, find_key(d, ELEMENT), "Element") + 4 + 2, "<H", 0x7000)


@pytest.mark.parametrize("damage", [_damage_signature, _damage_name_length])
def test_a_damaged_record_in_pages_read_defers_to_the_checked_reads(
    realdata: Path, tmp_path: Path, damage: Any
) -> None:
    path = tmp_path / "BCD"
    data = (realdata / "BCD").read_bytes()
    path.write_bytes(damage(data))
    with open_hive_file(path, backend="regf", logs=None) as hive:
        reader = _reader(hive)
        _read_every_page(reader)
        key = hive.key(BOOTMGR)
        element = hive.key(ELEMENT)
        assert key is not None and element is not None
        assert reader.node_values(element.offset, {"element": "Element"}) is None  # type: ignore[attr-defined]
        with pytest.raises(CorruptHiveError) as batched:
            key.subkey_values(("Element",))
    with open_hive_file(path, backend="regf", logs=None) as hive:
        key = hive.key(BOOTMGR)
        assert key is not None
        with pytest.raises(CorruptHiveError) as per_key:
            for sub in key.subkeys():
                sub.value("Element")
    assert str(batched.value) == str(per_key.value)
    assert "offset 0x" in str(batched.value)


def _scan(reader: RegfReader, node: Any, name: str) -> int | None:
    for offset in reader.subkey_offsets(node):
        if reader.node(offset).name.lower() == name.lower():
            return offset
    return None


@pytest.mark.parametrize("hive_name,kind", [("SYSTEM", "lh"), ("BCD", "lf")])
def test_find_subkey_equals_a_scan_of_every_entry(realdata: Path, hive_name: str, kind: str) -> None:
    with open_hive_file(realdata / hive_name, backend="regf", logs=None) as hive:
        reader = _reader(hive)
        keys = lookups = 0
        for key in walk(hive):
            node = reader.node(key.offset)  # type: ignore[attr-defined]
            children = reader.subkey_offsets(node)
            if not children:
                continue
            keys += 1
            assert reader._leaves(node)[0][0] in (kind.encode(), b"li") or len(reader._leaves(node)) > 1
            for offset in children[:40]:
                name = reader.node(offset).name
                for asked in {name, name.upper(), name.lower(), name.swapcase()}:
                    assert reader.find_subkey(node, asked) == _scan(reader, node, asked), (key.path, asked)
                    lookups += 1
            assert reader.find_subkey(node, "NoSuchKey-0") is None
            if keys >= 600:
                break
    assert keys > 20 and lookups > 200
