"""The sample disk the container tests convert: 8 MiB with an MBR signature and recognisable bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

RAW_SIZE = 8 * 1024 * 1024
#: offsets holding recognisable bytes; 0x1FFFE0 straddles the first 2 MiB block boundary
PATTERN_OFFSETS = (0x1000, 0x1FFFE0, 0x300000, 0x5FFF00, RAW_SIZE - 512)
PATTERN_LENGTH = 64

#: name -> qemu-img convert arguments
CONVERSIONS = {
    "fixed.vhd": ["-O", "vpc", "-o", "subformat=fixed,force_size=on"],
    "fixed-chs.vhd": ["-O", "vpc", "-o", "subformat=fixed"],
    "dynamic.vhd": ["-O", "vpc", "-o", "subformat=dynamic"],
    "dynamic.vhdx": ["-O", "vhdx"],
    "fixed.vhdx": ["-O", "vhdx", "-o", "subformat=fixed"],
    "disk.vmdk": ["-O", "vmdk"],
    "disk.qcow2": ["-O", "qcow2"],
    # text descriptors naming extent files beside them
    "flat.vmdk": ["-O", "vmdk", "-o", "subformat=monolithicFlat"],
    "split.vmdk": ["-O", "vmdk", "-o", "subformat=twoGbMaxExtentSparse"],
}


def pattern(offset: int) -> bytes:
    return hashlib.sha256(offset.to_bytes(8, "little")).digest() * 2


def make_raw(path: Path) -> bytes:
    data = bytearray(RAW_SIZE)
    data[510:512] = b"\x55\xaa"
    for offset in PATTERN_OFFSETS:
        data[offset : offset + PATTERN_LENGTH] = pattern(offset)
    path.write_bytes(data)
    return bytes(data)
