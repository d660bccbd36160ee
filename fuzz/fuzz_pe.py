"""Fuzz file_version and file_version_of: a PE file's version resource. Both must return a version or
None, never raise; and the stream reader's fast path, where it answers, must agree with pefile's answer
(the same version, or pefile finding none).

Run: python fuzz/fuzz_pe.py -max_total_time=300 -timeout=5 -rss_limit_mb=1024
"""

from __future__ import annotations

import sys

import _common
import atheris

with atheris.instrument_imports(include=["azvhdaudit", "pefile"]):
    import io

    from azvhdaudit.pe import file_version, file_version_of


def test_one_input(data: bytes) -> None:
    version = file_version(data, "fuzz.sys")
    assert version is None or (len(version) == 4 and all(0 <= v <= 0xFFFF for v in version))
    streamed = file_version_of(io.BytesIO(data), "fuzz.sys")
    assert streamed is None or (len(streamed) == 4 and all(0 <= v <= 0xFFFF for v in streamed))
    assert version in (streamed, None), (version, streamed)


if __name__ == "__main__":
    _common.main(test_one_input, "pe")
    sys.exit(0)
