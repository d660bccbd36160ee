"""The zero tail of a VHDX header or region table is found as ``bytes.rstrip`` finds it, page by page."""

from __future__ import annotations

import pytest

from azvhdaudit.container.vhdx import _body_length

PAGE = 4096


@pytest.mark.parametrize("size", [0, 1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE, 16 * PAGE, 16 * PAGE + 7])
@pytest.mark.parametrize("last", [None, 0, 1, PAGE - 1, PAGE, PAGE + 1, 2 * PAGE - 1, -PAGE, -PAGE - 1, -1])
def test_body_length_is_rstrip(size: int, last: int | None) -> None:
    buffer = bytearray(size)
    if last is not None and -size <= last < size:
        buffer[last] = 0x5A
    data = bytes(buffer)
    assert _body_length(data) == len(data.rstrip(b"\x00"))
