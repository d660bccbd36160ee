#!/usr/bin/env python3
"""Build the benchmark images: a 127 GiB Generation 2 disk with real-size hives, three ways.

References:
- Microsoft, "Prepare a Windows VHD or VHDX to upload to Azure": Azure's largest OS disk image size class
  is the 127 GiB default of a Hyper-V Generation 2 VM; its layout (ESP, MSR, Windows) is used here.
- samples/build.py: every builder used here (hivexregedit, mkntfs + ntfs-3g, mkfs.fat + mtools, sgdisk,
  qemu-img, mingw-w64) comes from there; this file only picks sizes and content.

Usage::

    python bench/images.py [--work bench/_work] [--force]

Writes, under ``bench/_work/images``:

- ``bench-127g.vhdx``   127 GiB dynamic VHDX (1 MiB blocks): the benchmark image;
- ``bench-127g.vhd``    the same disk as a fixed VHD (sparse on disk: only the written blocks take space);
- ``bench-1g.vhdx``     the same guest content on a 1 GiB disk (dynamic VHDX), to show cost does not grow
  with the virtual size.

Guest content (same on all three):

- SYSTEM: the real Windows 7 SP1 hive of tests/data/realdata (11.2 MiB, 467 services, 323 firewall rules);
- SOFTWARE: the samples' SOFTWARE.reg with a Windows 7 overlay, plus a generated bulk of COM classes,
  installer components, servicing packages and uninstall entries: >= 60 MB and >= 50,000 keys (hivex
  keeps no key above 250 subkeys: it cannot write index-root lists, and re-allocates a parent's list
  on every insert);
- SECURITY / SAM from the samples' .reg files; the real BCD store of tests/data/realdata on the ESP;
- the update-table binaries as real PE files (mingw-w64) with real-size bodies (ntoskrnl.exe 8 MiB,
  win32k.sys 3 MiB, tcpip.sys 2.5 MiB ...), and 3,000 filler files in System32 and 400 in drivers so
  directory lookups walk real-size NTFS indexes.

The build takes a few minutes and is cached: a stamp file records what was built; ``--force`` rebuilds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "samples"))

import build as samples  # noqa: E402  (samples/build.py)

GiB = 1024 * 1024 * 1024
MiB = samples.MiB
SECTOR = samples.SECTOR
WORK = ROOT / "bench" / "_work"
REALDATA = ROOT / "tests" / "data" / "realdata"
#: bump when the content changes, so a cached build is redone
BUILD_VERSION = "5"

#: the disk the benchmark audits, and the small copy of it
IMAGES = {
    "bench-127g.vhdx": (127 * GiB, "vhdx"),
    "bench-127g.vhd": (127 * GiB, "vhd-fixed"),
    "bench-1g.vhdx": (1 * GiB, "vhdx"),
}

#: binaries given a real-size body (bytes), roughly their size in Windows 7 SP1 / 10 x64
BIG_BINARIES: dict[str, int] = {
    r"Windows\System32\ntoskrnl.exe": 8 * MiB,
    r"Windows\System32\win32k.sys": 3 * MiB,
    r"Windows\System32\drivers\tcpip.sys": 5 * MiB // 2,
    r"Windows\System32\drivers\ntfs.sys": 2 * MiB,
    r"Windows\System32\drivers\http.sys": 1 * MiB,
    r"Windows\System32\rdpcorets.dll": 1 * MiB,
    r"Windows\System32\termsrv.dll": 1 * MiB,
    r"Windows\System32\drivers\storport.sys": 3 * MiB // 4,
    r"Windows\System32\drivers\srv.sys": 3 * MiB // 4,
    r"Windows\System32\drivers\mrxsmb10.sys": MiB // 4,
}
WIN7 = samples.OSSpec("Windows 7 Professional", 7601, "6.1.7601.24000", loader_description="Windows 7")

#: SOFTWARE overlay: the OS the real SYSTEM hive belongs to (Windows 7 SP1)
SOFTWARE_WIN7 = r"""Windows Registry Editor Version 5.00

[HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion]
"ProductName"="Windows 7 Professional"
"EditionID"="Professional"
"InstallationType"="Client"
"CurrentVersion"="6.1"
"CurrentMajorVersionNumber"=-
"CurrentMinorVersionNumber"=-
"CurrentBuild"="7601"
"CurrentBuildNumber"="7601"
"UBR"=-
"ReleaseId"=-
"CSDVersion"="Service Pack 1"
"BuildLabEx"="7601.24000.x86fre.win7sp1_ldr.180102-1806"
"""

#: (parent, groups, keys per group, values per key) of the generated SOFTWARE bulk; CLSID keys get an
#: InprocServer32 subkey as real ones do
BULK = (
    (r"Classes\CLSID", 100, 150, 1),
    (r"WOW6432Node\Classes\CLSID", 60, 150, 1),
    (r"Microsoft\Windows\CurrentVersion\Installer\UserData\S-1-5-18\Components", 100, 150, 1),
    (r"Microsoft\Windows\CurrentVersion\Component Based Servicing\PackageIndex", 20, 150, 1),
)
#: installed products under Uninstall, each with the values an MSI or setup program writes
UNINSTALL_ENTRIES = 240
BULK_VALUE = 400  # bytes of REG_BINARY per value
MIN_SOFTWARE_BYTES = 60_000_000
MIN_SOFTWARE_KEYS = 50_000


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _guid(n: int, salt: str) -> str:
    h = hashlib.sha256(f"{salt}{n}".encode()).hexdigest()
    return f"{{{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}}}".upper()


def _blob(n: int) -> str:
    seed = hashlib.sha256(str(n).encode()).digest()
    data = (seed * (BULK_VALUE // len(seed) + 1))[:BULK_VALUE]
    return ",".join(f"{b:02x}" for b in data)


def _expand_sz(text: str) -> str:
    return ",".join(f"{b:02x}" for b in (text + "\0").encode("utf-16-le"))


def bulk_reg() -> tuple[str, int]:
    """The generated SOFTWARE bulk as .reg text, and how many keys it adds."""
    lines = ["Windows Registry Editor Version 5.00", ""]
    keys = 0
    n = 0
    for parent, groups, per_group, values in BULK:
        for g in range(groups):
            group = parent if groups == 1 else f"{parent}\\{_guid(g, parent)[:9]}}}"
            for _ in range(per_group):
                n += 1
                lines.append(f"[HKEY_LOCAL_MACHINE\\SOFTWARE\\{group}\\{_guid(n, 'key')}]")
                lines.append(f'@="Generated entry {n} of the benchmark SOFTWARE hive"')
                for v in range(values):
                    lines.append(f'"Data{v}"=hex:{_blob(n * 8 + v)}')
                lines.append("")
                keys += 1
                if parent.endswith("CLSID"):
                    lines.append(f"[HKEY_LOCAL_MACHINE\\SOFTWARE\\{group}\\{_guid(n, 'key')}\\InprocServer32]")
                    dll = _expand_sz("%SystemRoot%\\System32\\" + f"bench{n % 3000:04d}.dll")
                    lines.append(f"@=hex(2):{dll}")
                    lines.append('"ThreadingModel"="Both"')
                    lines.append("")
                    keys += 1
            keys += 0 if groups == 1 else 1
    for n in range(UNINSTALL_ENTRIES):
        product = _guid(n, "product")
        lines += [
            f"[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\{product}]",
            f'"DisplayName"="Contoso Line-of-Business Component {n:03d}"',
            f'"DisplayVersion"="{n % 7 + 1}.{n % 13}.{n * 37 % 1000}.0"',
            '"Publisher"="Contoso Ltd."',
            f'"InstallDate"="2018{n % 12 + 1:02d}{n % 28 + 1:02d}"',
            f'"InstallLocation"="C:\\\\Program Files\\\\Contoso\\\\Component {n:03d}\\\\"',
            f'"InstallSource"="C:\\\\Windows\\\\Installer\\\\{product}\\\\"',
            f'"UninstallString"="MsiExec.exe /X{product}"',
            f'"ModifyPath"="MsiExec.exe /I{product}"',
            f'"EstimatedSize"=dword:{n * 97 % 65536:08x}',
            '"Language"=dword:00000409',
            '"NoModify"=dword:00000001',
            '"NoRepair"=dword:00000001',
            '"WindowsInstaller"=dword:00000001',
            "",
        ]
        keys += 1
    return "\n".join(lines) + "\n", keys


def count_keys(path: Path) -> int:
    from Registry import Registry  # python-registry, a dependency of the package

    def walk(key) -> int:  # type: ignore[no-untyped-def]
        return 1 + sum(walk(sub) for sub in key.subkeys())

    sys.setrecursionlimit(10000)
    return walk(Registry.Registry(str(path)).root())


def build_hives(work: Path) -> dict[str, Path]:
    """SYSTEM (real), SOFTWARE (samples + Windows 7 + bulk), SECURITY, SAM (samples), BCD (real)."""
    hives_dir = work / "hives"
    hives_dir.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for name in ("SYSTEM", "BCD"):
        target = hives_dir / name
        target.write_bytes(lzma.open(REALDATA / f"{name}.xz").read())
        out[name] = target
    tokens = {"CCS": "ControlSet001", "LOADER_DESCRIPTION": WIN7.loader_description}
    for name in ("SECURITY", "SAM"):
        prefix, root = samples.HIVE_PREFIX[name]
        out[name] = samples.build_hive(
            hives_dir / name, [samples.HIVES / f"{name}.reg"], prefix=prefix, root_name=root, tokens=tokens
        )
    win7 = hives_dir / "software-win7.reg"
    win7.write_text(SOFTWARE_WIN7, encoding="utf-8")
    bulk_text, _ = bulk_reg()
    bulk = hives_dir / "software-bulk.reg"
    bulk.write_text(bulk_text, encoding="utf-8")
    prefix, root = samples.HIVE_PREFIX["SOFTWARE"]
    started = time.monotonic()
    out["SOFTWARE"] = samples.build_hive(
        hives_dir / "SOFTWARE",
        [samples.HIVES / "SOFTWARE.reg", win7, bulk],
        prefix=prefix,
        root_name=root,
        tokens=tokens,
    )
    size = out["SOFTWARE"].stat().st_size
    keys = count_keys(out["SOFTWARE"])
    log(f"SOFTWARE hive: {size:,} bytes, {keys:,} keys ({time.monotonic() - started:.0f} s)")
    (work / "software.json").write_text(json.dumps({"bytes": size, "keys": keys}))
    if size < MIN_SOFTWARE_BYTES or keys < MIN_SOFTWARE_KEYS:
        raise samples.BuildError(f"SOFTWARE hive too small: {size:,} bytes, {keys:,} keys")
    return out


def big_pe(name: str, version: str, size: int, workdir: Path) -> bytes:
    """A PE file like samples' build_pe, with a ``size``-byte .data section linked before .rsrc."""
    key = hashlib.sha256(f"{name}|{version}|{size}".encode()).hexdigest()[:16]
    target = workdir / "pe" / f"big-{key}.bin"
    if target.exists():
        return target.read_bytes()
    small = samples.build_pe(name, version, workdir)  # also writes the .rc/.res.o and the stub
    small_key = hashlib.sha256(f"{name}|{version}".encode()).hexdigest()[:16]
    res = workdir / "pe" / f"{small_key}.res.o"
    pad = target.with_suffix(".pad")
    seed = hashlib.sha256(name.encode()).digest()
    pad.write_bytes(hashlib.shake_256(seed).digest(size))
    pad_o = target.with_suffix(".pad.o")
    samples.run(
        "x86_64-w64-mingw32-objcopy",
        "-I",
        "binary",
        "-O",
        "pe-x86-64",
        "-B",
        "i386:x86-64",
        "--rename-section",
        ".data=.rdata,contents,alloc,load,readonly,data",
        pad,
        pad_o,
    )
    ext = name.rsplit(".", 1)[-1].lower()
    subsystem = "native" if ext == "sys" else "windows"
    samples.run(
        "x86_64-w64-mingw32-gcc",
        "-O2",
        "-nostdlib",
        "-shared" if ext == "dll" else "-nostartfiles",
        "-Wl,--entry=entry",
        "-Wl,--no-insert-timestamp",
        "-Wl,--image-base=0x180000000",
        f"-Wl,--subsystem,{subsystem}",
        "-s",
        "-o",
        target,
        workdir / "pe" / "stub.c",
        pad_o,
        res,
    )
    if len(small) >= target.stat().st_size:
        raise samples.BuildError(f"{name}: padding did not grow the file")
    return target.read_bytes()


def windows_files(hives: Mapping[str, Path], layout: samples.Layout, work: Path) -> dict[str, tuple[bytes, int]]:
    spec = samples.SampleSpec("bench", layout, WIN7)
    files = samples.guest_files(spec, hives, work)
    for path, size in BIG_BINARIES.items():
        files[path] = (big_pe(path.rsplit("\\", 1)[-1], WIN7.file_version, size, work), samples.BUILD_EPOCH)
    filler = hashlib.shake_256(b"filler").digest(2048)
    for n in range(3000):
        files[f"Windows\\System32\\api-ms-win-bench-l1-1-{n:04d}.dll"] = (filler, samples.BUILD_EPOCH)
    for n in range(400):
        files[f"Windows\\System32\\drivers\\benchdrv{n:04d}.sys"] = (filler, samples.BUILD_EPOCH)
    return files


def layout_for(size: int) -> samples.Layout:
    """ESP (100 MiB), MSR (16 MiB), Windows to 1 MiB before the end: a Generation 2 VM's default."""
    total = size // SECTOR
    esp, msr = 100 * 2048, 16 * 2048
    win_start = 2048 + esp + msr
    return samples.Layout(
        size=size,
        scheme="gpt",
        disk_id="b3c4d5e6-0a1b-4c2d-8e3f-4a5b6c7d8e01",
        partitions=(
            samples.Partition(
                "EFI system partition", 2048, esp, "fat32", "EF00", "b3c4d5e6-0a1b-4c2d-8e3f-4a5b6c7d8e11"
            ),
            samples.Partition(
                "Microsoft reserved partition", 2048 + esp, msr, "", "0C01", "b3c4d5e6-0a1b-4c2d-8e3f-4a5b6c7d8e12"
            ),
            samples.Partition(
                "Basic data partition",
                win_start,
                total - win_start - 2048,
                "ntfs",
                "0700",
                "b3c4d5e6-0a1b-4c2d-8e3f-4a5b6c7d8e13",
            ),
        ),
    )


def build_raw(size: int, work: Path, hives: Mapping[str, Path], shared: Path) -> Path:
    """The raw disk of ``size`` bytes (sparse) with the guest content; ``shared`` caches the PE files."""
    work.mkdir(parents=True, exist_ok=True)
    layout = layout_for(size)
    images: dict[str, Path] = {}
    for p in layout.partitions:
        if p.fs == "ntfs":
            started = time.monotonic()
            files = windows_files(hives, layout, shared)
            images[p.name] = samples.make_ntfs(work / "windows.ntfs", p, files, work)
            log(f"NTFS volume of {p.length / GiB:.1f} GiB written ({time.monotonic() - started:.0f} s)")
        elif p.fs == "fat32":
            images[p.name] = samples.make_fat32(work / "esp.fat", p, samples.esp_files(hives, shared), "b3c4d5e6")
    raw = samples.assemble_raw(work / "disk.raw", layout, images)
    for image in images.values():
        image.unlink()
    return raw


def build_all(work: Path = WORK, force: bool = False) -> dict[str, Path]:
    """Build (or reuse) the benchmark images; returns name -> path."""
    out_dir = work / "images"
    stamp = out_dir / "stamp.json"
    wanted = {"version": BUILD_VERSION, "images": sorted(IMAGES)}
    paths = {name: out_dir / name for name in IMAGES}
    if (
        not force
        and stamp.exists()
        and json.loads(stamp.read_text()) == wanted
        and all(p.exists() for p in paths.values())
    ):
        return paths
    samples.require_tools()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    shared = work / "shared"
    if shared.exists():
        shutil.rmtree(shared)
    hives = build_hives(shared)
    raws: dict[int, Path] = {}
    for name, (size, kind) in IMAGES.items():
        started = time.monotonic()
        if size not in raws:
            build_dir = work / f"build-{size // GiB}g"
            if build_dir.exists():
                shutil.rmtree(build_dir)
            raws[size] = build_raw(size, build_dir, hives, shared)
        unique = "b3c4d5e6-0a1b-4c2d-8e3f-" + hashlib.sha256(name.encode()).hexdigest()[:12]
        if kind == "vhdx":
            samples.dynamic_vhdx(raws[size], paths[name], unique)
        else:
            samples.fixed_vhd(raws[size], paths[name], unique)
        on_disk = paths[name].stat().st_blocks * 512
        log(
            f"built {name}: {paths[name].stat().st_size:,} bytes, {on_disk:,} on disk "
            f"({time.monotonic() - started:.0f} s)"
        )
    for raw in raws.values():
        shutil.rmtree(raw.parent)
    shutil.copyfile(shared / "software.json", out_dir / "software.json")
    stamp.write_text(json.dumps(wanted))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=WORK, help="build directory (default: bench/_work)")
    parser.add_argument("--force", action="store_true", help="rebuild even if the images exist")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        paths = build_all(args.work, args.force)
    except samples.BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, path in paths.items():
        print(f"{name}\t{path}")
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
