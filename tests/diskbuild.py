"""Small disks for data-path tests, made by real tools: sfdisk/sgdisk, mkntfs + ntfs-3g, mkfs.fat + mtools.

Every function writes into a directory the caller owns (a pytest tmp dir) and returns the path.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

MiB = 1024 * 1024

TOOLS = ("sfdisk", "sgdisk", "mkntfs", "ntfs-3g", "mkfs.fat", "mcopy", "mmd", "qemu-img")


def require_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            "these tests build disks with Debian's image tools; missing: "
            + ", ".join(missing)
            + " (apt-get install qemu-utils ntfs-3g fdisk gdisk dosfstools mtools)"
        )


def run(*args: str, stdin: str | None = None) -> None:
    subprocess.run(args, input=stdin, text=True, check=True, capture_output=True)


def make_ntfs(path: Path, size: int, files: Mapping[str, bytes], label: str = "Windows") -> Path:
    """An NTFS volume image of ``size`` bytes holding ``files`` (Windows paths -> bytes)."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    run("mkntfs", "-Q", "-F", "-q", "-s", "512", "-L", label, str(path))
    if files:
        mnt = path.with_suffix(".mnt")
        mnt.mkdir(exist_ok=True)
        run("ntfs-3g", str(path), str(mnt))
        try:
            for win_path, data in files.items():
                target = mnt.joinpath(*win_path.replace("\\", "/").split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        finally:
            run("umount", str(mnt))
            mnt.rmdir()
    return path


def make_fat(path: Path, size: int, files: Mapping[str, bytes]) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)
    run("mkfs.fat", "-F", "32", "-i", "1234ABCD", "-n", "SYSTEM", str(path))
    made: set[str] = set()
    for win_path, data in files.items():
        parts = win_path.replace("\\", "/").split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in made:
                run("mmd", "-i", str(path), "::/" + d)
                made.add(d)
        src = path.parent / ("_" + parts[-1])
        src.write_bytes(data)
        run("mcopy", "-i", str(path), str(src), "::/" + "/".join(parts))
        src.unlink()
    return path


def place(volume: Path, disk: Path, offset: int) -> None:
    """Copy a volume image into ``disk`` at ``offset`` (sparse-friendly, fast)."""
    run(
        "qemu-img",
        "convert",
        "-n",
        "-f",
        "raw",
        str(volume),
        "--target-image-opts",
        f"driver=raw,offset={offset},file.filename={disk}",
    )


def mbr_disk(path: Path, size: int, partitions: list[tuple[int, int, str, bool]], label_id: int = 0x12345678) -> Path:
    """An MBR disk; partitions are (start MiB, size MiB, type hex, bootable)."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    lines = [f"label: dos\nlabel-id: 0x{label_id:08x}"]
    for start, length, type_, boot in partitions:
        lines.append(f"start={start * 2048}, size={length * 2048}, type={type_}" + (", bootable" if boot else ""))
    run("sfdisk", "-q", str(path), stdin="\n".join(lines) + "\n")
    return path


def gpt_disk(
    path: Path,
    size: int,
    partitions: list[tuple[int, int, str]],
    disk_guid: str = "11111111-2222-3333-4444-555555555555",
) -> Path:
    """A GPT disk; partitions are (start MiB, size MiB, sgdisk type code like EF00/0C01/0700)."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    args = ["sgdisk", "-U", disk_guid]
    for n, (start, length, code) in enumerate(partitions, start=1):
        args += [
            f"-n{n}:{start * 2048}:{(start + length) * 2048 - 1}",
            f"-t{n}:{code}",
            f"-u{n}:00000000-0000-0000-0000-00000000000{n}",
        ]
    run(*args, str(path))
    return path
