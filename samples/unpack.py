"""Decompress a committed sample (``.xz``) into an image file with holes where the disk is empty.

The samples are disks of up to 127 GiB that hold a few megabytes; decompressing them plainly would write every
zero.  Runs of zeros of a whole megabyte become holes instead, so an unpacked sample takes the space of its data.
Used by the test fixtures and ``scripts/report_snapshot.py``; ``xz -dk`` gives the same bytes, without holes.
"""

from __future__ import annotations

import lzma
from pathlib import Path

MiB = 1024 * 1024


def unxz(packed: Path, target: Path) -> Path:
    """Decompress ``packed`` into ``target`` (through ``target.part``), leaving holes for all-zero megabytes."""
    part = target.with_name(target.name + ".part")
    with lzma.open(packed) as src, open(part, "wb") as dst:
        size = 0
        while chunk := src.read(MiB):
            if chunk.count(0) == len(chunk):
                dst.seek(len(chunk), 1)
            else:
                dst.write(chunk)
            size += len(chunk)
        dst.truncate(size)
    part.replace(target)
    return target
