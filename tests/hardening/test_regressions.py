"""Regression tests: every crash the fuzz harnesses (fuzz/) found, with its input inlined.

Each case names the harness that found it and the libFuzzer artifact (``crash-<sha1>`` of the input);
the input is stored zlib-compressed and base64-encoded. The test runs the same calls as the harness
and lets only :class:`~azvhdaudit.errors.AuditError` through, then checks what the fix promises.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zlib

from azvhdaudit.errors import AuditError
from azvhdaudit.fs import open_volume
from azvhdaudit.volumes import read_layout

CLAIMED = 64 * 1024 * 1024


def unpack(blob: str, sha1: str) -> bytes:
    data = zlib.decompress(base64.b64decode(blob))
    assert hashlib.sha1(data).hexdigest() == sha1  # the artifact's name is the sha1 of its input
    return data


class Padded(io.BytesIO):
    """The fuzzed bytes at the start of a 64 MiB disk of zeros (as in fuzz/fuzz_layout.py)."""

    def read(self, size: int | None = -1) -> bytes:  # type: ignore[override]
        pos = self.tell()
        want = CLAIMED - pos if size is None or size < 0 else size
        got = super().read(want)
        if pos + len(got) < CLAIMED and len(got) < want:
            got += bytes(min(want - len(got), CLAIMED - pos - len(got)))
            self.seek(pos + len(got))
        return got


# fuzz_layout, crash-00cb0b41f14df2bccd96af0208ac72d340f4d2fa (and 49 variants of it): a GPT disk whose MBR
# holds, beside the protective 0xEE entry, a second (hybrid) entry. dissect.volume lists that MBR entry
# among the GPT partitions with an MBR raw entry; read_layout read it as a GPT entry:
# AttributeError: 'part_s' object has no attribute 'last_lba'.
HYBRID_MBR = (
    "eNpjYEACoVCak2EgACPDYAFMDIMcMCGx3gUyCoCC7v9/ZlRFDui6/ELcghWAACnCV7m6eSoEOAaFIIK/eB5yZMBMVYLy7wH534B0kJdczY3J3P7LHgV"
    "uOHzzBSPMRQ1Q/GpzXw2q7W6ePq7/6QvA9gIAy7CKTA=="
)


def test_hybrid_mbr_entry_is_not_read_as_a_gpt_entry() -> None:
    data = unpack(HYBRID_MBR, "00cb0b41f14df2bccd96af0208ac72d340f4d2fa")
    types = [data[0x1BE + 16 * i + 4] for i in range(4)]
    assert types[0] == 0xEE and any(types[1:])  # the protective entry plus another MBR entry
    try:
        layout = read_layout(Padded(data), "hybrid.img", CLAIMED, 512)
    except AuditError:
        return
    assert layout.style == "gpt"
    assert all(p.scheme == "gpt" and not p.type_id.startswith("0x") for p in layout.partitions)
    for part in layout.partitions:
        try:
            volume = open_volume(Padded(data), part.offset, part.size, part.filesystem, "hybrid")
        except AuditError:
            continue
        if volume is not None:
            volume.exists("Windows\\System32\\config\\SYSTEM")


# corpus, gen1.raw/SOFTWARE-nk@8536-name-length-huge: a key node whose name length runs past its cell
# was read with its name cut at the cell's end; the name then matched no lookup, the key (the Terminal
# Services policy key) read as absent, and rdp.enabled_policy passed on a value it never saw. The same
# held for a value record's name. Both now raise CorruptHiveError, so the rules say not checked / error.


def _hive_with(blob: bytes, cell: int, offset: int, data: bytes):  # type: ignore[no-untyped-def]
    from azvhdaudit.registry.open import open_hive

    damaged = bytearray(blob)
    damaged[cell + offset : cell + offset + len(data)] = data
    return open_hive(io.BytesIO(bytes(damaged)), "SOFTWARE", source="damaged")


def _nk_named(blob: bytes, name: str) -> int:
    import struct

    from corpus import hive_cells

    for cell in hive_cells(blob)["nk"]:
        length = struct.unpack_from("<H", blob, cell + 4 + 0x48)[0]
        if blob[cell + 4 + 0x4C : cell + 4 + 0x4C + length].decode("latin-1").lower() == name.lower():
            return cell
    raise LookupError(name)


def test_key_name_past_its_cell_is_corruption_not_absence(bases) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from azvhdaudit.errors import CorruptHiveError

    blob = bases.hive_files["SOFTWARE"].read_bytes()
    path = "Policies\\Microsoft\\Windows NT\\Terminal Services"
    intact = _hive_with(blob, 0, 0, b"")
    assert intact.key(path) is not None
    hive = _hive_with(blob, _nk_named(blob, "Terminal Services"), 4 + 0x48, b"\xff\xff")
    with pytest.raises(CorruptHiveError, match="name of 65535 bytes runs past"):
        hive.key(path)


def test_value_name_past_its_cell_is_corruption_not_absence(bases) -> None:  # type: ignore[no-untyped-def]
    import struct

    import pytest

    from azvhdaudit.errors import CorruptHiveError

    blob = bases.hive_files["SOFTWARE"].read_bytes()
    path = "Policies\\Microsoft\\Windows NT\\Terminal Services"
    key = _hive_with(blob, 0, 0, b"").key(path)
    name = key.values()[0].name
    nk = _nk_named(blob, "Terminal Services")
    count, list_offset = struct.unpack_from("<II", blob, nk + 4 + 0x24)
    first_vk = 4096 + struct.unpack_from("<I", blob, 4096 + list_offset + 4)[0]
    hive = _hive_with(blob, first_vk, 4 + 2, b"\xff\xff")
    with pytest.raises(CorruptHiveError, match="runs past"):
        hive.key(path).value(name)
