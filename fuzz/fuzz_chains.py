"""Fuzz the walks over on-disk links with cycle mutations, foreign hives in every slot and special files.

The first byte of the input picks a mode; the rest says what to change in an intact structure of the base
images (tests/hardening/hardkit.py):

0. FAT: entries of the generation 2 ESP's FAT set to values from the input (a cluster pointing to itself,
   to another cluster of the chain, past the volume) -> look up, list and read the boot store on the ESP;
1. MBR extended boot records: a chain of up to eight EBRs whose links come from the input -> ``read_layout``;
2. hive lists: an entry of a subkey or value list of the SYSTEM hive (Services, Control, MountedDevices, the
   root) pointed at an offset from the input, or at the list / the key itself -> lookups that hit and miss,
   with both backends;
3. foreign hives: one of the base hives (SYSTEM, SOFTWARE, SECURITY, SAM, BCD) with bytes of the input written
   into its root key's cells or base block file name, checked as each hive slot -> ``identity_problem``, and a
   hive that passes must have the slot's root keys;
4. special files: a FIFO, a socket or a link to a character device as the image, a parent, a hive file, a
   transaction log or a waiver file -> the open must raise the library's error (never block: libFuzzer's
   ``-timeout`` catches a hang).

Only AuditError may escape (and a property failure is an AssertionError, which libFuzzer reports as a crash).

Run: python fuzz/fuzz_chains.py -max_total_time=300 -timeout=5 -rss_limit_mb=2048
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import struct
import sys
import tempfile
from pathlib import Path

import _common
import atheris

with atheris.instrument_imports(include=["azvhdaudit", "dissect", "Registry"]):
    from azvhdaudit.container import open_container
    from azvhdaudit.errors import AuditError
    from azvhdaudit.fs import FatVolume
    from azvhdaudit.registry.identity import identity_problem
    from azvhdaudit.registry.open import open_hive, open_hive_file
    from azvhdaudit.volumes import read_layout
    from azvhdaudit.waivers import load_waivers

BASE = _common.bases()
MiB = 1024 * 1024

# --- mode 0: the ESP of the generation 2 disk, in memory ---------------------------------------------------
_esp_at = BASE.volumes["gen2.raw"].get("fat32", BASE.volumes["gen2.raw"].get("fat"))
with open(BASE.path("gen2.raw"), "rb") as _fh:
    _fh.seek(_esp_at)
    # the FAT and the boot files sit in the first megabytes; reads past the slice come back short (as at the end
    # of a volume), and the volume keeps the size its boot sector gives
    ESP = bytearray(_fh.read(4 * MiB))
_bps, _spc, _reserved = struct.unpack_from("<HBH", ESP, 11)
FAT_AT = _reserved * _bps
FAT_ENTRIES = 4096  # the entries a mutation may touch (the ESP's files sit in its first clusters)

# --- mode 2 / 3: the hives ----------------------------------------------------------------------------------
HIVES = {name: BASE.hive_files[name].read_bytes() for name in BASE.hive_files}
for _name, (_at, _size) in BASE.hives["gen2.raw"].items():
    if _name not in HIVES:
        with open(BASE.path("gen2.raw"), "rb") as _fh:
            _fh.seek(_at)
            HIVES[_name] = _fh.read(_size)
SLOTS = ("SYSTEM", "SOFTWARE", "SAM", "SECURITY", "BCD")
PROOF = {
    "SYSTEM": ("Select",),
    "SOFTWARE": ("Microsoft",),
    "SAM": ("SAM",),
    "SECURITY": ("Policy",),
    "BCD": ("Objects",),
}


def _lists(blob: bytes) -> list[tuple[int, int, int, int]]:
    """(key node, list cell, entry offset in the file, entry size) of the subkey and value lists of some keys."""
    hive = open_hive(io.BytesIO(blob), "SYSTEM", source="seed")
    found = []
    for path in ("", "ControlSet001", "ControlSet001\\Services", "ControlSet001\\Control", "MountedDevices"):
        key = hive.key(path)
        if key is None:
            continue
        node = 4096 + key.offset + 4  # type: ignore[attr-defined]
        subkeys, lst = struct.unpack_from("<I", blob, node + 0x14)[0], struct.unpack_from("<I", blob, node + 0x1C)[0]
        if subkeys and subkeys != 0xFFFFFFFF:
            sig = blob[4096 + lst + 4 : 4096 + lst + 6]
            stride = 4 if sig in (b"li", b"ri") else 8
            count = struct.unpack_from("<H", blob, 4096 + lst + 6)[0]
            found += [(key.offset, lst, 4096 + lst + 8 + i * stride, 4) for i in range(count)]  # type: ignore[attr-defined]
        values, vlist = struct.unpack_from("<II", blob, node + 0x24)
        if values and values != 0xFFFFFFFF:
            found += [(key.offset, vlist, 4096 + vlist + 4 + 4 * i, 4) for i in range(values)]  # type: ignore[attr-defined]
    return found


LIST_ENTRIES = _lists(HIVES["SYSTEM"])
LOOKUPS = (
    "ControlSet001\\Services\\NTDS",
    "ControlSet001\\Services\\Tcpip",
    "ControlSet001\\Control\\CrashControl",
    "ControlSet001\\Services\\TermService",
    "Select",
    "MountedDevices",
)

WORK = Path(tempfile.mkdtemp(prefix="fuzz-chains-", dir=_common.WORK))


def fat_mode(fdp: atheris.FuzzedDataProvider) -> None:
    saved: list[tuple[int, bytes]] = []
    try:
        for _ in range(fdp.ConsumeIntInRange(1, 8)):
            cluster = fdp.ConsumeIntInRange(2, FAT_ENTRIES)
            kind = fdp.ConsumeIntInRange(0, 3)
            value = (
                cluster
                if kind == 0
                else fdp.ConsumeIntInRange(2, 64)
                if kind == 1
                else fdp.ConsumeIntInRange(0, 0x0FFFFFFF)
                if kind == 2
                else fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
            )
            at = FAT_AT + 4 * cluster
            saved.append((at, bytes(ESP[at : at + 4])))
            ESP[at : at + 4] = struct.pack("<I", value)
        volume = FatVolume(io.BytesIO(ESP), 0, 64 * MiB, "fuzz-esp")
        for path in ("EFI\\Microsoft\\Boot\\BCD", "EFI\\Boot\\bootx64.efi", "nothing\\here"):
            try:
                if volume.exists(path):
                    volume.read(path)
                volume.listdir(path.rsplit("\\", 1)[0])
            except AuditError:
                pass
    finally:
        for at, old in reversed(saved):
            ESP[at : at + 4] = old


def ebr_mode(fdp: atheris.FuzzedDataProvider) -> None:
    disk = bytearray(8 * MiB)
    disk[510:512] = b"\x55\xaa"
    first = fdp.ConsumeIntInRange(1, 1000)
    struct.pack_into("<B3xB3xII", disk, 446, 0, fdp.PickValueInList([0x05, 0x0F, 0x85]), first, 8)
    for n in range(fdp.ConsumeIntInRange(1, 8)):
        at = (first + n * 2) * 512
        if at + 512 > len(disk):
            break
        disk[at + 510 : at + 512] = b"\x55\xaa"
        for entry in range(fdp.ConsumeIntInRange(0, 4)):
            kind = fdp.PickValueInList([0x05, 0x0F, 0x07, 0x00])
            link = fdp.ConsumeIntInRange(0, 40) if fdp.ConsumeBool() else fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
            struct.pack_into("<B3xB3xII", disk, at + 446 + 16 * entry, 0, kind, link, fdp.ConsumeIntInRange(0, 64))
    try:
        read_layout(io.BytesIO(bytes(disk)), "fuzz.raw", len(disk), 512)
    except AuditError:
        pass


def list_mode(fdp: atheris.FuzzedDataProvider) -> None:
    blob = bytearray(HIVES["SYSTEM"])
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        key, lst, entry, size = fdp.PickValueInList(LIST_ENTRIES)
        target = fdp.PickValueInList([lst, key, 0x7FFFFFF8, None])
        if target is None:
            target = fdp.ConsumeIntInRange(0, 0xFFFFFFFF)
        blob[entry : entry + size] = struct.pack("<I", target)
    backend = "python-registry" if fdp.ConsumeBool() else "regf"
    try:
        hive = open_hive(io.BytesIO(bytes(blob)), "SYSTEM", source="fuzz", backend=backend)
    except AuditError:
        return
    for path in LOOKUPS:
        try:
            key = hive.key(path)
            if key is not None:
                key.values()
                key.value("Start")
        except AuditError:
            pass


def foreign_mode(fdp: atheris.FuzzedDataProvider) -> None:
    source = fdp.PickValueInList(sorted(HIVES))
    blob = bytearray(HIVES[source])
    if fdp.ConsumeBool():
        name = fdp.ConsumeBytes(64)
        blob[48 : 48 + len(name)] = name
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        at = fdp.ConsumeIntInRange(4096, len(blob) - 8)
        patch = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 8))
        blob[at : at + len(patch)] = patch
    try:
        hive = open_hive(
            io.BytesIO(bytes(blob)), source, source="fuzz", backend="python-registry" if fdp.ConsumeBool() else "regf"
        )
    except AuditError:
        return
    for slot in SLOTS:
        try:
            problem = identity_problem(hive, slot)
        except AuditError:
            continue
        if problem is None:
            # a hive taken for ``slot`` holds the slot's root keys (read again, to be sure)
            try:
                assert all(hive.root().find(k) is not None for k in PROOF[slot]), (source, slot)
            except AuditError:
                pass


def _special(kind: int, path: Path) -> None:
    if kind == 0:
        os.mkfifo(path)
    elif kind == 1:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(path))
    else:
        os.symlink("/dev/zero" if kind == 2 else "/dev/null", path)


def special_mode(fdp: atheris.FuzzedDataProvider) -> None:
    where = fdp.ConsumeIntInRange(0, 4)
    kind = fdp.ConsumeIntInRange(0, 3)
    folder = Path(tempfile.mkdtemp(dir=WORK))
    try:
        if where == 0:  # the image
            _special(kind, folder / "x.vhd")
            call = lambda: open_container(folder / "x.vhd")  # noqa: E731
        elif where == 1:  # a parent beside its child
            child = BASE.path("chain1/gen1-azure-child.vhd")
            shutil.copyfile(child, folder / child.name)
            _special(kind, folder / "gen1-azure.vhd")
            call = lambda: open_container(folder / child.name)  # noqa: E731
        elif where == 2:  # a hive file
            _special(kind, folder / "SYSTEM")
            call = lambda: open_hive_file(folder / "SYSTEM")  # noqa: E731
        elif where == 3:  # a transaction log beside an intact hive
            (folder / "SYSTEM").write_bytes(HIVES["SYSTEM"])
            _special(kind, folder / fdp.PickValueInList(["SYSTEM.LOG1", "SYSTEM.LOG2", "SYSTEM.LOG"]))
            call = lambda: open_hive_file(folder / "SYSTEM").close()  # noqa: E731
        else:  # a waiver file
            _special(kind, folder / "waivers.toml")
            call = lambda: load_waivers(folder / "waivers.toml")  # noqa: E731
        try:
            call()
        except AuditError:
            return
        raise AssertionError(f"a special file (kind {kind}) at place {where} was opened")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


MODES = (fat_mode, ebr_mode, list_mode, foreign_mode, special_mode)


def test_one_input(data: bytes) -> None:
    if len(data) < 2:
        return
    fdp = atheris.FuzzedDataProvider(data[1:])
    MODES[data[0] % len(MODES)](fdp)


if __name__ == "__main__":
    _common.main(test_one_input, "chains")
    sys.exit(0)
