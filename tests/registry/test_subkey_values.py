"""``subkey_values``: the named values of every subkey in one pass, the same as reading key by key.

The batched read is compared with ``subkeys()`` then ``value(name)`` on every key that has subkeys, for both
backends on the real hives and on the hives of the samples, and for :class:`MemoryHive`; a damaged cell under
the keys read raises :class:`~azvhdaudit.errors.CorruptHiveError` as the key-by-key reads do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from azvhdaudit.errors import CorruptHiveError
from azvhdaudit.image import open_image
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import Hive, RegKey, RegValue
from azvhdaudit.registry.open import open_hive_file

from .hivekit import find_key, patch, subkey_entries, value_cell, walk

Values = dict[str, dict[str, RegValue | None]]


def _names(key: RegKey) -> tuple[str, ...]:
    """Names to ask each subkey of ``key`` for: those of its first subkey's values (the first one in another
    case), the default value, and a name no key has."""
    names: list[str] = []
    for sub in key.subkeys()[:1]:
        names.extend(v.name for v in sub.values()[:4] if v.name)
    if names:
        names[0] = names[0].swapcase()
    return (*dict.fromkeys(names), "", "NoSuchValue-0")


def _key_by_key(key: RegKey, names: tuple[str, ...], limit: int | None = None) -> Values:
    return {sub.name: {name: sub.value(name) for name in names} for sub in key.subkeys()[:limit]}


def _compare_every_key(hive: Hive) -> tuple[int, int]:
    """Compare on every key with subkeys; (keys compared, values found)."""
    keys = found = 0
    for key in walk(hive):
        if not key.subkeys():
            continue
        names = _names(key)
        batched = key.subkey_values(names)
        assert batched == _key_by_key(key, names), key.path
        assert list(batched) == [sub.name for sub in key.subkeys()], key.path
        keys += 1
        found += sum(value is not None for values in batched.values() for value in values.values())
    return keys, found


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SYSTEM", "SYSTEM_B", "BCD"])
def test_real_hives_batched_equals_key_by_key(realdata: Path, backend: str, name: str) -> None:
    with open_hive_file(realdata / name, backend=backend) as hive:
        keys, found = _compare_every_key(hive)
    assert keys > 20 and found > 100


def test_services_of_a_real_system_hive(realdata: Path, backend: str) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend) as hive:
        services = hive.key(r"ControlSet001\Services")
        assert services is not None
        batched = services.subkey_values(("Start", "Type", "ImagePath"))
        assert batched == _key_by_key(services, ("Start", "Type", "ImagePath"))
        assert len(batched) > 300
        assert sum(values["Start"] is not None for values in batched.values()) > 300
        assert services.subkey_values(("Start",), limit=10) == _key_by_key(services, ("Start",), 10)


@pytest.mark.parametrize("sample", ["gen1-azure.vhd", "gen2-misconfigured.vhdx", "gen1-azure-child.vhd"])
def test_sample_hives_batched_equals_key_by_key(sample_path: Callable[[str], Path], backend: str, sample: str) -> None:
    with open_image(sample_path(sample), backend=backend) as image:
        view = image.registry
        for name in ("SYSTEM", "SOFTWARE"):
            hive = view.hive(name)
            assert hive is not None
            keys, _ = _compare_every_key(hive)
            assert keys > 5
        services = r"HKLM\SYSTEM\CurrentControlSet\Services"
        batched = view.subkey_values(services, ("Start",))
        key = view.key(services)
        assert key is not None and batched == _key_by_key(key, ("Start",))
        assert view.subkey_values(r"HKLM\SYSTEM\NoSuchKey", ("Start",)) is None


def _copy(key: RegKey, into: MemoryHive) -> None:
    for sub in walk_key(key):
        target = into.ensure(sub.path)
        for value in sub.values():
            target.set(value.name, (value.type, value.raw))


def walk_key(key: RegKey) -> list[RegKey]:
    keys, stack = [], [key]
    while stack:
        current = stack.pop()
        keys.append(current)
        stack.extend(current.subkeys())
    return keys


def test_memory_hive_answers_as_the_file_backends(realdata: Path, backend: str) -> None:
    with open_hive_file(realdata / "SYSTEM", backend=backend) as hive:
        services = hive.key(r"ControlSet001\Services")
        assert services is not None
        memory = MemoryHive("SYSTEM")
        _copy(services, memory)
        names = ("Start", "TYPE", "ImagePath", "", "NoSuchValue-0")
        expected = services.subkey_values(names)
    mine = memory.key(r"ControlSet001\Services")
    assert mine is not None
    assert mine.subkey_values(names) == expected
    assert mine.subkey_values(names) == _key_by_key(mine, names)


BOOTMGR = r"Objects\{9dea862c-5cdd-4e70-acc1-f32b344d4795}\Elements"
ELEMENT = BOOTMGR + r"\23000003"


def _damage_value_data(d: bytes) -> bytes:
    return patch(d, 4096 + value_cell(d, find_key(d, ELEMENT), "Element") + 4 + 8, "<I", 0x7FFFFFF0)


def _damage_value_list(d: bytes) -> bytes:
    from .hivekit import nk_field

    return patch(d, nk_field(find_key(d, ELEMENT), 40), "<I", 0x7FFFFFF0)


def _damage_subkey_entry(d: bytes) -> bytes:
    at, _ = subkey_entries(d, find_key(d, BOOTMGR))[0]
    return patch(d, at, "<I", 0x7FFFFFF8)


def _loop_to_parent(d: bytes) -> bytes:
    at, _ = subkey_entries(d, find_key(d, BOOTMGR))[0]
    return patch(d, at, "<I", find_key(d, BOOTMGR))


@pytest.mark.parametrize("damage", [_damage_value_data, _damage_value_list, _damage_subkey_entry, _loop_to_parent])
def test_a_damaged_cell_raises_corrupt_hive(
    realdata: Path, tmp_path: Path, backend: str, damage: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "BCD"
    path.write_bytes(damage((realdata / "BCD").read_bytes()))
    with open_hive_file(path, backend=backend, logs=None) as hive:
        key = hive.key(BOOTMGR)
        assert key is not None
        with pytest.raises(CorruptHiveError) as batched:
            key.subkey_values(("Element",))
        with pytest.raises(CorruptHiveError) as per_key:
            _key_by_key(key, ("Element",))
    assert str(path) in str(batched.value) and "offset 0x" in str(batched.value)
    assert str(path) in str(per_key.value)
