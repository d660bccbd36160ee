"""Fuzz file_version: a PE file's version resource. It must return a version or None, never raise.

Run: python fuzz/fuzz_pe.py -max_total_time=300 -timeout=5 -rss_limit_mb=1024
"""

from __future__ import annotations

import sys

import _common
import atheris

with atheris.instrument_imports(include=["azvhdaudit", "pefile"]):
    from azvhdaudit.pe import file_version


def test_one_input(data: bytes) -> None:
    version = file_version(data, "fuzz.sys")
    assert version is None or (len(version) == 4 and all(0 <= v <= 0xFFFF for v in version))


if __name__ == "__main__":
    _common.main(test_one_input, "pe")
    sys.exit(0)
