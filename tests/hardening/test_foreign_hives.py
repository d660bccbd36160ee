"""A hive must prove it is the hive it is named before a key's absence in it means anything.

Regression tests on the samples' own disks (tests/hardening/hardkit.py derives the raw disks from the
committed samples with qemu-img): a SAM or SECURITY hive copied over SOFTWARE, SOFTWARE over SYSTEM, a base
block naming another hive; a Services subkey list whose first entry points at the list itself; a path into a
hive that was not loaded (SAM without with_lsa). The hive files are overwritten in place inside the NTFS
volume (each lies in one run of the raw disk; hardkit records where).
"""

from __future__ import annotations

import io
import shutil
import struct
from pathlib import Path

import hardkit
import pytest
from corpus import regf_checksum

import azvhdaudit
from azvhdaudit.errors import HiveNotFoundError
from azvhdaudit.image import open_image
from azvhdaudit.registry.open import open_hive

#: slow: audits the corpus's base images, built with the real tools
pytestmark = pytest.mark.slow

#: per hive slot, rules that passed on "key absent" evidence from a foreign hive in it
ABSENCE_RULES = {
    "SOFTWARE": ("rdp.enabled", "sysprep.state", "os.identify"),
    "SYSTEM": ("rdp.enabled", "os.domain_controller"),
    "BCD": ("bcd.store_present",),
}


def _copy(bases: hardkit.Bases, name: str, tmp_path: Path) -> Path:
    out = tmp_path / name
    shutil.copyfile(bases.path(name), out)
    return out


def _hive_bytes(raw: Path, where: tuple[int, int]) -> bytes:
    with open(raw, "rb") as fh:
        fh.seek(where[0])
        return fh.read(where[1])


def _write(raw: Path, offset: int, data: bytes) -> None:
    with open(raw, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def _statuses(report: azvhdaudit.Report) -> dict[str, str]:
    return {r.rule_id: str(r.status) for r in report.results}


def _passes_on(report: azvhdaudit.Report, hive: str) -> list[str]:
    return [r.rule_id for r in report.results if str(r.status) == "pass" and any(e.hive == hive for e in r.evidence)]


@pytest.mark.parametrize(
    ("base", "foreign", "slot"),
    [
        ("gen2.raw", "SAM", "SOFTWARE"),
        ("gen1.raw", "SECURITY", "SOFTWARE"),
        ("gen1.raw", "SOFTWARE", "SYSTEM"),
        ("gen1.raw", "BCD", "SYSTEM"),
        ("gen1.raw", "SECURITY", "BCD"),
    ],
)
def test_a_foreign_hive_in_a_slot_is_unreadable_as_that_hive(
    bases: hardkit.Bases, tmp_path: Path, base: str, foreign: str, slot: str
) -> None:
    raw = _copy(bases, base, tmp_path)
    intact = azvhdaudit.audit(raw)
    assert _passes_on(intact, slot)  # the control: rules pass on evidence read from the intact hive
    blob = _hive_bytes(raw, bases.hives[base][foreign])
    assert len(blob) <= bases.hives[base][slot][1]
    _write(raw, bases.hives[base][slot][0], blob)
    report = azvhdaudit.audit(raw)
    why = report.facts["hives"][slot]["error"]
    assert f"is unreadable as {slot}: its root key has no" in why, why
    statuses = _statuses(report)
    for rule_id in ABSENCE_RULES[slot]:
        assert statuses[rule_id] != "pass", (rule_id, statuses[rule_id])
    assert not _passes_on(report, slot)
    if slot == "SOFTWARE":
        assert statuses["os.identify"] == "not_checked"
        assert statuses["sysprep.state"] == "not_checked"


def test_a_base_block_naming_another_hive(bases: hardkit.Bases, tmp_path: Path) -> None:
    """The SOFTWARE hive's own bytes, its base block's file name set to ...\\Config\\SAM (checksum fixed)."""
    raw = _copy(bases, "gen1.raw", tmp_path)
    at = bases.hives["gen1.raw"]["SOFTWARE"][0]
    head = bytearray(_hive_bytes(raw, (at, 4096)))
    head[48:112] = "\\SystemRoot\\System32\\Config\\SAM".encode("utf-16-le")[-64:].ljust(64, b"\x00")
    struct.pack_into("<I", head, 508, regf_checksum(head))
    _write(raw, at, bytes(head))
    report = azvhdaudit.audit(raw)
    assert "its base block names it SAM" in report.facts["hives"]["SOFTWARE"]["error"]
    assert _statuses(report)["os.identify"] == "not_checked"


def _services_list_first_entry(blob: bytes) -> tuple[int, int]:
    """(offset in the hive file of the first entry of Services' subkey list, the list cell's offset)."""
    hive = open_hive(io.BytesIO(blob), "SYSTEM", source="SYSTEM")
    services = hive.key("ControlSet001\\Services")
    assert services is not None
    node = 4096 + services.offset + 4
    list_offset = struct.unpack_from("<I", blob, node + 0x1C)[0]
    cell = 4096 + list_offset + 4
    assert blob[cell : cell + 2] in (b"lf", b"lh"), blob[cell : cell + 2]
    return cell + 4, list_offset


def test_services_list_entry_pointing_at_the_list_itself(bases: hardkit.Bases, tmp_path: Path) -> None:
    raw = _copy(bases, "gen1.raw", tmp_path)
    intact = _statuses(azvhdaudit.audit(raw))
    assert intact["os.domain_controller"] == "pass"  # the control
    at, size = bases.hives["gen1.raw"]["SYSTEM"]
    entry, list_offset = _services_list_first_entry(_hive_bytes(raw, (at, size)))
    _write(raw, at + entry, struct.pack("<I", list_offset))
    report = azvhdaudit.audit(raw)
    dc = next(r for r in report.results if r.rule_id == "os.domain_controller")
    assert str(dc.status) == "not_checked", (dc.status, dc.message)
    assert "entry 0 of its subkey list points at" in dc.reason and "the subkey list's own cell" in dc.reason
    assert "Services" in dc.reason
    # the audit went on: rules that do not look for an absent service still pass as on the intact image
    statuses = _statuses(report)
    assert statuses["rdp.enabled"] == "pass"


def test_a_path_into_a_hive_not_loaded_raises(bases: hardkit.Bases) -> None:
    with open_image(bases.path("gen2.raw")) as image:
        with pytest.raises(
            HiveNotFoundError,
            match=r"HKLM\\SAM\\SAM\\Domains\\Account: hive not loaded: .*"
            r"with_lsa=True.*name SAM among open_image\(\)'s hives",
        ):
            image.registry.value(r"HKLM\SAM\SAM\Domains\Account", "F")
        assert image.registry.why_unavailable("SAM").startswith("hive not loaded")
    with open_image(bases.path("gen2.raw"), hives=("SYSTEM", "SOFTWARE", "SAM")) as image:
        assert image.registry.key(r"HKLM\SAM\SAM\Domains\Account") is not None
