"""Fuzz decode_bcd: a BCD hive from bytes, every element decoded and displayed.

Run: python fuzz/fuzz_bcd.py -max_total_time=300 -timeout=5 -rss_limit_mb=1024
"""

from __future__ import annotations

import io
import sys

import _common
import atheris

with atheris.instrument_imports(include=["azvhdaudit", "dissect"]):
    from azvhdaudit.bcd import decode_bcd
    from azvhdaudit.errors import AuditError
    from azvhdaudit.registry.open import open_hive


def test_one_input(data: bytes) -> None:
    try:
        hive = open_hive(io.BytesIO(data), "BCD", source="fuzz")
        store = decode_bcd(hive)
    except AuditError:
        return
    for obj in store:
        for element in list(obj.elements.values())[:64]:
            try:
                element.value  # noqa: B018
                element.display()
            except AuditError:
                pass
    try:
        store.to_dict()
        loader = store.default_loader
        if loader is not None:
            store.effective(loader, "recoveryenabled")
    except AuditError:
        pass


if __name__ == "__main__":
    _common.main(test_one_input, "bcd")
    sys.exit(0)
