"""Fuzz read_layout (MBR / GPT) and the file-system probes on the first 64 KiB of a disk.

Run: python fuzz/fuzz_layout.py -max_total_time=300 -timeout=5 -rss_limit_mb=1024
"""

from __future__ import annotations

import io
import sys

import _common
import atheris

with atheris.instrument_imports(include=["azvhdaudit", "dissect"]):
    from azvhdaudit.errors import AuditError
    from azvhdaudit.fs import open_volume
    from azvhdaudit.volumes import read_layout

#: the disk claims to be larger than the input: reads past the input return zeros
CLAIMED = 64 * 1024 * 1024


class Padded(io.BytesIO):
    def read(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        pos = self.tell()
        want = CLAIMED - pos if size is None or size < 0 else size
        got = super().read(want)
        if pos + len(got) < CLAIMED and len(got) < want:
            got += bytes(min(want - len(got), CLAIMED - pos - len(got)))
            self.seek(pos + len(got))
        return got


def test_one_input(data: bytes) -> None:
    try:
        layout = read_layout(Padded(data), "fuzz.img", CLAIMED, 512)
        for part in layout.partitions:
            volume = open_volume(Padded(data), part.offset, part.size, part.filesystem, "fuzz")
            if volume is not None:
                volume.exists("Windows\\System32\\config\\SYSTEM")
    except AuditError:
        pass


if __name__ == "__main__":
    _common.main(test_one_input, "layout")
    sys.exit(0)
