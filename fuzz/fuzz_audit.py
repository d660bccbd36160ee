"""Fuzz the whole audit of a small generation-1 image with one region overwritten.

The input picks a region of the intact image (MBR, NTFS boot sector, MFT, the SYSTEM / SOFTWARE / BCD
hive), an offset inside it, and the bytes to write there; ``azvhdaudit.audit`` then runs on the image
in memory. Only AuditError may escape. Rule results in state ``error`` are not crashes (the engine
isolates rules by design) but are listed in ``$AZVHDAUDIT_FUZZ_WORK/audit-rule-errors.txt``.

Run: python fuzz/fuzz_audit.py -max_total_time=300 -timeout=10 -rss_limit_mb=2048
"""

from __future__ import annotations

import io
import struct
import sys

import _common
import atheris

with atheris.instrument_imports(include=["azvhdaudit", "dissect"]):
    import azvhdaudit
    from azvhdaudit.errors import AuditError

BASE = _common.bases()
with open(BASE.path("gen1.raw"), "rb") as _fh:
    IMAGE = bytearray(_fh.read())
_ntfs = BASE.volumes["gen1.raw"]["ntfs"]
_bps, _spc = struct.unpack_from("<HB", IMAGE, _ntfs + 11)
_mft = _ntfs + struct.unpack_from("<Q", IMAGE, _ntfs + 0x30)[0] * _bps * _spc
REGIONS = [(0, 512), (_ntfs, 512), (_mft, 64 * 1024)] + [
    BASE.hives["gen1.raw"][h] for h in ("SYSTEM", "SOFTWARE", "BCD") if h in BASE.hives["gen1.raw"]
]
# the lists the rules walk, as regions of their own: Services' and MountedDevices' cells (subkey / value lists
# pointed into themselves are the mutations that made "absent" verdicts out of skipped entries)
_system_at = BASE.hives["gen1.raw"]["SYSTEM"][0]
_system = BASE.hive_files["SYSTEM"].read_bytes()
for _path in ("ControlSet001\\Services", "MountedDevices"):
    _key = _common.hive_key_offset(_system, _path)
    if _key is not None:
        _node = 4096 + _key + 4
        _lists = struct.unpack_from("<I", _system, _node + 0x1C)[0], struct.unpack_from("<I", _system, _node + 0x28)[0]
        REGIONS.append((_system_at + _node, 0x50))
        REGIONS += [(_system_at + 4096 + cell, 64) for cell in _lists if cell < len(_system) - 4160]
ERRORS = _common.WORK / "audit-rule-errors.txt"
_seen: set[str] = set()


def test_one_input(data: bytes) -> None:
    if len(data) < 5:
        return
    start, size = REGIONS[data[0] % len(REGIONS)]
    offset = start + int.from_bytes(data[1:5], "little") % size
    patch = data[5 : 5 + min(4096, start + size - offset)]
    saved = bytes(IMAGE[offset : offset + len(patch)])
    IMAGE[offset : offset + len(patch)] = patch
    try:
        report = azvhdaudit.audit(io.BytesIO(IMAGE))
    except AuditError:
        return
    finally:
        IMAGE[offset : offset + len(patch)] = saved
    for result in report.results:
        if str(result.status) == "error":
            line = f"{result.rule_id}: {result.message.splitlines()[0][:200]}"
            if line not in _seen:
                _seen.add(line)
                with open(ERRORS, "a") as fh:
                    fh.write(f"{line}  [region {data[0] % len(REGIONS)} offset {offset}]\n")


if __name__ == "__main__":
    _common.main(test_one_input, "audit")
    sys.exit(0)
