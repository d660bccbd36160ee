"""The base block of a hive is decoded with struct as the construct definition BASE_BLOCK lays it out."""

from __future__ import annotations

import random
import struct

import pytest

from azvhdaudit.registry.log_layout import BASE_BLOCK
from azvhdaudit.registry.logs import hive_checksum, parse_base_block

_RNG = random.Random(20261122)
BLOCKS = [bytes(_RNG.getrandbits(8) for _ in range(512 + _RNG.randrange(4))) for _ in range(50)]


@pytest.mark.parametrize("raw", BLOCKS + [b"regf" + bytes(508), bytes(4096)])
def test_base_block_fields_are_the_construct_definitions(raw: bytes) -> None:
    parsed = BASE_BLOCK.parse(raw[:512])
    base = parse_base_block(raw, "random")
    assert (
        base.signature,
        base.primary_sequence,
        base.secondary_sequence,
        base.timestamp,
        base.major,
        base.minor,
        base.file_type,
        base.file_format,
        base.root_cell,
        base.hive_bins_size,
        base.clustering_factor,
        base.checksum,
    ) == (
        bytes(parsed.signature),
        parsed.primary_sequence,
        parsed.secondary_sequence,
        parsed.timestamp,
        parsed.major,
        parsed.minor,
        parsed.file_type,
        parsed.file_format,
        parsed.root_cell,
        parsed.hive_bins_size,
        parsed.clustering_factor,
        parsed.checksum,
    )
    assert base.file_name == bytes(parsed.file_name).decode("utf-16-le", errors="replace").split("\x00")[0]


@pytest.mark.parametrize("raw", BLOCKS + [bytes(508), b"\xff" * 508, b"", b"\x01\x00\x00\x00" * 3])
def test_checksum_is_the_xor_of_the_first_127_words(raw: bytes) -> None:
    value = 0
    for (word,) in struct.iter_unpack("<I", raw[:508]):
        value ^= word
    assert hive_checksum(raw) == {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(value, value)


def test_the_log_sizes_are_the_construct_definitions() -> None:
    from azvhdaudit.registry import logs
    from azvhdaudit.registry.log_layout import DIRTY_PAGE_REF, LOG_ENTRY_HEADER

    assert LOG_ENTRY_HEADER.sizeof() == logs.LOG_ENTRY_HEADER_SIZE
    assert DIRTY_PAGE_REF.sizeof() == logs.DIRTY_PAGE_REF_SIZE
    assert BASE_BLOCK.sizeof() == 512 == logs._BASE_BLOCK_FIELDS.size
