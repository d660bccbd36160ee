"""Fuzz open_hive on bytes (base block, bins, cells) with both backends, walking the whole tree.

Run: python fuzz/fuzz_hive.py -max_total_time=300 -timeout=5 -rss_limit_mb=1024
"""

from __future__ import annotations

import io
import sys

import _common
import atheris

with atheris.instrument_imports(include=["azvhdaudit", "dissect", "Registry"]):
    from azvhdaudit.errors import AuditError
    from azvhdaudit.registry.open import open_hive

LIMIT = 2000  # keys visited per input, so a wide tree cannot time the harness out


def walk(hive) -> None:  # type: ignore[no-untyped-def]
    todo = [hive.root()]
    seen = 0
    while todo and seen < LIMIT:
        key = todo.pop()
        seen += 1
        for value in key.values():
            _ = value.data
        todo.extend(key.subkeys())


def test_one_input(data: bytes) -> None:
    backend = "python-registry" if data[-1:] == b"\x01" else "regf"
    try:
        hive = open_hive(io.BytesIO(data), "SYSTEM", source="fuzz", backend=backend)
        walk(hive)
        hive.key("ControlSet001\\Control")
    except AuditError:
        pass


if __name__ == "__main__":
    _common.main(test_one_input, "hive")
    sys.exit(0)
