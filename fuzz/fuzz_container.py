"""Fuzz open_container on bytes: VHD footer/header/BAT, VHDX headers/regions/metadata/BAT, others.

Run: python fuzz/fuzz_container.py -max_total_time=300 -timeout=5 -rss_limit_mb=1024
"""

from __future__ import annotations

import io
import sys

import _common
import atheris

with atheris.instrument_imports(include=["azvhdaudit", "dissect"]):
    from azvhdaudit.container import open_container
    from azvhdaudit.errors import AuditError


def test_one_input(data: bytes) -> None:
    try:
        with open_container(io.BytesIO(data), name="fuzz.img") as disk:
            size = disk.facts.virtual_size
            for offset in (0, 512 * 63, size // 2, max(size - 4096, 0)):
                disk.seek(offset)
                disk.read(4096)
    except AuditError:
        pass


if __name__ == "__main__":
    _common.main(test_one_input, "container")
    sys.exit(0)
