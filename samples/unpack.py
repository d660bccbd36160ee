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


def main(argv: list[str] | None = None) -> int:
    """``python samples/unpack.py PACKED.xz TARGET``: decompress one sample with holes."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packed", type=Path, help="the .xz file")
    parser.add_argument("target", type=Path, help="the image file to write")
    args = parser.parse_args(argv)
    unxz(args.packed, args.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
