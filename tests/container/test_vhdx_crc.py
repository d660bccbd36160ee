"""The VHDX CRC-32C that skips trailing zeros in O(log n) equals dissect.util's byte-at-a-time CRC-32C."""

from __future__ import annotations

import random

import pytest
from dissect.util.hash.crc32c import crc32c

from azvhdaudit.container.vhdx import _crc32c_zero_tail

_RNG = random.Random(20261122)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00" * 65536,
        b"regi" + bytes(_RNG.randrange(256) for _ in range(60)) + bytes(65536 - 64),
        b"head" + bytes(_RNG.randrange(256) for _ in range(100)) + bytes(4096 - 104),
        bytes(_RNG.randrange(256) for _ in range(4096)),
        bytes(5) + b"x" + bytes(7),
        *[
            bytes(_RNG.randrange(256) for _ in range(_RNG.randrange(300))) + bytes(_RNG.randrange(70000))
            for _ in range(20)
        ],
    ],
)
def test_equals_dissect_crc32c(data: bytes) -> None:
    assert _crc32c_zero_tail(data) == crc32c(data)
