"""Intact base images for the hardening corpus and the fuzz harnesses, derived from the samples.

References:
- samples/manifest.json and the committed samples (built by samples/build.py): a fixed VHD
  (generation 1, MBR), a dynamic VHDX (generation 2, GPT + ESP) and a differencing child of each.
- qemu-img (the same disks as raw, dynamic VHD and VHDX); tests/container/vhdwriter.py (differencing
  VHD children written for the chain cases); tests/data/hyperv (a Hyper-V checkpoint and its parent).

Everything is written into a directory the caller owns; :func:`build_bases` skips the work when the
directory already holds a finished build (a ``bases.json`` index).
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SAMPLES_DIR = REPO / "samples"
HYPERV = REPO / "tests" / "data" / "hyperv"
MiB = 1024 * 1024


def _load(name: str, path: Path) -> ModuleType:
    """Import a helper module of the repo by file path (samples/ and tests/container are not packages)."""
    if name in sys.modules:
        return sys.modules[name]
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # the module imports its siblings
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def vhdwriter() -> ModuleType:
    return _load("vhdwriter", REPO / "tests" / "container" / "vhdwriter.py")


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@dataclass
class Bases:
    """The intact images and what is where inside them (offsets are guest = raw-file offsets)."""

    root: Path
    images: dict[str, Path]
    #: raw name -> hive name -> (offset in the raw disk, size)
    hives: dict[str, dict[str, tuple[int, int]]]
    #: raw name -> partition offsets of the NTFS / FAT volumes
    volumes: dict[str, dict[str, int]]
    #: hive name -> the intact hive bytes (gen1)
    hive_files: dict[str, Path]
    pe_files: list[Path]

    def path(self, name: str) -> Path:
        return self.images[name]


def _sparse_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` keeping its holes (the 64 MiB disks hold ~3 MiB of data)."""
    size = src.stat().st_size
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fout.truncate(size)
        fd = fin.fileno()
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            fin.seek(data)
            fout.seek(data)
            remaining = hole - data
            while remaining:
                chunk = fin.read(min(remaining, 4 * MiB))
                fout.write(chunk)
                remaining -= len(chunk)
            pos = hole


def copy_image(src: Path, dst: Path) -> Path:
    _sparse_copy(src, dst)
    return dst


def _locate(raw: Path, blob: bytes) -> int:
    """Offset of ``blob`` (a whole hive file) in ``raw``; -1 when not stored contiguously."""
    data = raw.read_bytes()
    at = data.find(blob[:4096])
    if at < 0 or data[at : at + len(blob)] != blob:
        return -1
    return at


def unxz(packed: Path, target: Path) -> Path:
    """Decompress ``packed`` into ``target``, leaving holes for all-zero megabytes (samples/unpack.py)."""
    unpack = _load("azvhdaudit_samples_unpack", SAMPLES_DIR / "unpack.py")
    result: Path = unpack.unxz(packed, target)
    return result


def _guest_blobs(image_path: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """The hives (SYSTEM, SOFTWARE, SECURITY, SAM, BCD) and a few PE files of an intact image, read by the library."""
    from azvhdaudit.image import open_image

    hives: dict[str, bytes] = {}
    pes: dict[str, bytes] = {}
    with open_image(image_path, hives=("SYSTEM", "SOFTWARE", "SAM", "SECURITY")) as image:
        assert image.windows_volume is not None
        for name in ("SYSTEM", "SOFTWARE", "SECURITY", "SAM"):
            data = image.windows_volume.read(f"Windows\\System32\\config\\{name}")
            if data:
                hives[name] = data
        if image.boot_volume is not None and image.facts.bcd_path:
            data = image.boot_volume.read(image.facts.bcd_path)
            if data:
                hives["BCD"] = data
        for folder in ("Windows\\System32\\drivers", "Windows\\System32"):
            for entry in sorted(image.windows_volume.listdir(folder) or []):
                if entry.lower().endswith((".sys", ".dll", ".exe")) and len(pes) < 8:
                    data = image.windows_volume.read(f"{folder}\\{entry}")
                    if data and data[:2] == b"MZ":
                        pes[entry] = data
    return hives, pes


def build_bases(root: Path) -> Bases:
    """Derive every base image under ``root`` from the committed samples (or reuse a finished build)."""
    root.mkdir(parents=True, exist_ok=True)
    index = root / "bases.json"
    if index.exists():
        return _from_index(root, json.loads(index.read_text()))

    images: dict[str, Path] = {}
    hives: dict[str, dict[str, tuple[int, int]]] = {}
    hive_files: dict[str, Path] = {}
    pe_files: list[Path] = []
    manifest = {s["name"]: s for s in json.loads((SAMPLES_DIR / "manifest.json").read_text())["samples"]}

    # generation 1: the fixed VHD sample; its raw disk is everything but the footer
    fixed = unxz(SAMPLES_DIR / manifest["gen1-azure.vhd"]["file"], root / "gen1-fixed.vhd")
    images["gen1-fixed.vhd"] = fixed
    raw1 = root / "gen1.raw"
    copy_image(fixed, raw1)
    with open(raw1, "r+b") as fh:
        fh.truncate(fixed.stat().st_size - 512)
    images["gen1.raw"] = raw1
    for name, args in (
        ("gen1-dynamic.vhd", ["-O", "vpc", "-o", "subformat=dynamic"]),
        ("gen1.vhdx", ["-O", "vhdx", "-o", "subformat=dynamic"]),
    ):
        qemu_img("convert", "-f", "raw", *args, str(raw1), str(root / name))
        images[name] = root / name
    # generation 2: the dynamic VHDX sample and its raw disk
    images["gen2.vhdx"] = unxz(SAMPLES_DIR / manifest["gen2-misconfigured.vhdx"]["file"], root / "gen2.vhdx")
    qemu_img("convert", "-f", "vhdx", "-O", "raw", str(images["gen2.vhdx"]), str(root / "gen2.raw"))
    images["gen2.raw"] = root / "gen2.raw"

    # the differencing samples, each beside its parent
    for child in ("gen1-azure-child.vhd", "gen2-misconfigured-child.vhdx"):
        folder = root / ("chain1" if child.endswith(".vhd") else "chain2")
        folder.mkdir(exist_ok=True)
        parent = manifest[child]["parent"]
        images[f"{folder.name}/{parent}"] = unxz(SAMPLES_DIR / manifest[parent]["file"], folder / parent)
        images[f"{folder.name}/{child}"] = unxz(SAMPLES_DIR / manifest[child]["file"], folder / child)

    # Hyper-V's own checkpoint (differencing VHDX) and its parent.
    hv = root / "hyperv"
    hv.mkdir(exist_ok=True)
    for packed in sorted(HYPERV.glob("*.gz")):
        out = hv / packed.name[:-3]
        with gzip.open(packed, "rb") as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
        images[f"hyperv/{out.name}"] = out

    volumes = {
        "gen1.raw": {
            p["filesystem"]: p["start"] * 512 for p in manifest["gen1-azure.vhd"]["partitions"] if p["filesystem"]
        },
        "gen2.raw": {
            p["filesystem"]: p["start"] * 512
            for p in manifest["gen2-misconfigured.vhdx"]["partitions"]
            if p["filesystem"]
        },
    }
    for label, intact in (("gen1", fixed), ("gen2", images["gen2.raw"])):
        blobs, pes = _guest_blobs(intact)
        raw = images[f"{label}.raw"]
        hives[f"{label}.raw"] = {}
        for name, blob in blobs.items():
            at = _locate(raw, blob)
            if at >= 0:
                hives[f"{label}.raw"][name] = (at, len(blob))
            if label == "gen1":
                keep = root / "hives" / name
                keep.parent.mkdir(exist_ok=True)
                keep.write_bytes(blob)
                hive_files[name] = keep
        if label == "gen1":
            (root / "pe").mkdir(exist_ok=True)
            for name, blob in pes.items():
                (root / "pe" / name).write_bytes(blob)
                pe_files.append(root / "pe" / name)

    data: dict[str, Any] = {
        "images": {k: str(v.relative_to(root)) for k, v in images.items()},
        "hives": {k: {h: list(v) for h, v in d.items()} for k, d in hives.items()},
        "volumes": volumes,
        "hive_files": {k: str(v.relative_to(root)) for k, v in hive_files.items()},
        "pe_files": [str(p.relative_to(root)) for p in pe_files],
    }
    index.write_text(json.dumps(data, indent=1))
    return _from_index(root, data)


def _from_index(root: Path, data: dict[str, Any]) -> Bases:
    return Bases(
        root=root,
        images={k: root / v for k, v in data["images"].items()},
        hives={k: {h: (int(v[0]), int(v[1])) for h, v in d.items()} for k, d in data["hives"].items()},
        volumes={k: {fs: int(off) for fs, off in d.items()} for k, d in data["volumes"].items()},
        hive_files={k: root / v for k, v in data["hive_files"].items()},
        pe_files=[root / p for p in data["pe_files"]],
    )


if __name__ == "__main__":  # pragma: no cover - manual use
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/azvhdaudit-bases")
    bases = build_bases(out)
    print(json.dumps({k: str(v) for k, v in bases.images.items()}, indent=1))
    print(json.dumps(bases.hives, indent=1))
