"""The committed sample images are what samples/manifest.json says, checked with outside tools.

References: samples/README.md; Microsoft "Virtual Hard Disk Image Format Specification" v1.0 and
[MS-VHDX] v20160714 (only to read a differencing child's few header fields here).  Layouts are
checked with qemu-img, sfdisk and sgdisk, registry content with hivex (hivexget), never with
azvhdaudit itself; the VHDX child is read with dissect.hypervisor.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
MANIFEST: dict[str, dict[str, Any]] = {
    e["name"]: e for e in json.loads((SAMPLES_DIR / "manifest.json").read_text(encoding="utf-8"))["samples"]
}
NAMES = sorted(MANIFEST)
SECTOR = 512
MiB = 1024 * 1024

pytestmark = pytest.mark.usefixtures("tools")


def run(*args: str | Path) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}: {proc.stderr}"
    return proc.stdout


# ---------------------------------------------------------------------------------------------
# manifest <-> files


IMAGE_SUFFIXES = (".xz", ".vhd", ".vhdx", ".vmdk", ".raw")


def committed_images(directory: Path, listed: list[str]) -> list[str]:
    """The image files of a samples directory, less the copies README's ``xz -dkf samples/*.xz`` decompresses
    beside their ``.xz`` (git ignores those too): a working tree where the reader followed README still counts."""
    files = sorted(p.name for p in directory.iterdir() if p.is_file() and p.suffix in IMAGE_SUFFIXES)
    return [name for name in files if name + ".xz" not in listed]


def test_manifest_lists_exactly_the_committed_images() -> None:
    listed = _listed_files()
    assert committed_images(SAMPLES_DIR, listed) == listed


def _listed_files() -> list[str]:
    """The compressed image files the manifest names: the OS-disk samples and the platform samples."""
    platform = json.loads((SAMPLES_DIR / "manifest.json").read_text(encoding="utf-8")).get("platform_samples", [])
    return sorted([entry["file"] for entry in MANIFEST.values()] + [entry["file"] for entry in platform])


def test_decompressed_samples_do_not_count_as_committed(tmp_path: Path) -> None:
    # README's first command decompresses every sample beside its .xz; a stray image is still caught
    listed = _listed_files()
    for name in listed:
        (tmp_path / name).write_bytes(b"")
        (tmp_path / name.removesuffix(".xz")).write_bytes(b"")
    assert committed_images(tmp_path, listed) == listed
    (tmp_path / "stray.vhd").write_bytes(b"")
    assert committed_images(tmp_path, listed) == sorted([*listed, "stray.vhd"])


def test_git_ignores_the_decompressed_samples() -> None:
    if shutil.which("git") is None or not (SAMPLES_DIR.parent / ".git").exists():
        pytest.fail("this test needs git and a git checkout of the repository")
    manifest = json.loads((SAMPLES_DIR / "manifest.json").read_text(encoding="utf-8"))
    names = [name.removesuffix(".xz") for name in _listed_files()] + [
        d["file"].removesuffix(".xz") for d in manifest["data_disks"]
    ]
    proc = subprocess.run(
        ["git", "check-ignore", "--no-index", *(f"samples/{n}" for n in names)],
        cwd=SAMPLES_DIR.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert sorted(proc.stdout.split()) == sorted(f"samples/{n}" for n in names)


@pytest.mark.parametrize("name", NAMES)
def test_committed_file_matches_manifest_digest(name: str) -> None:
    entry = MANIFEST[name]
    assert hashlib.sha256((SAMPLES_DIR / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]


@pytest.mark.parametrize("name", NAMES)
def test_expected_results_name_known_checks(name: str) -> None:
    entry = MANIFEST[name]
    ids = entry["expected_fail"] + entry["expected_warning"]
    assert len(ids) == len(set(ids)), "a check listed twice"
    assert not set(entry["expected_fail"]) & set(entry["expected_warning"])
    for item in entry["misconfigurations"]:
        assert item["check"] and item["what"]
    broken = {m["check"] for m in entry["misconfigurations"]}
    # every expected failure or warning is explained by a misconfiguration of this sample or its parents
    explained = set(broken)
    parent = entry["parent"]
    while parent:
        explained |= {m["check"] for m in MANIFEST[parent]["misconfigurations"]}
        parent = MANIFEST[parent]["parent"]
    assert set(ids) <= explained


def test_children_point_at_samples() -> None:
    for entry in MANIFEST.values():
        if entry["subformat"] == "differencing":
            assert entry["parent"] in MANIFEST
            assert MANIFEST[entry["parent"]]["format"] == entry["format"]
        else:
            assert entry["parent"] is None


# ---------------------------------------------------------------------------------------------
# container format (qemu-img) and layout (sfdisk / sgdisk)

QEMU_FORMAT = {"vhd": "vpc", "vhdx": "vhdx"}


@pytest.mark.parametrize("name", [n for n in NAMES if MANIFEST[n]["subformat"] != "differencing"])
def test_qemu_img_reports_format_and_size(name: str, sample_path: Callable[[str], Path]) -> None:
    entry = MANIFEST[name]
    path = sample_path(name)
    info = json.loads(run("qemu-img", "info", "--output=json", "-f", QEMU_FORMAT[entry["format"]], path))
    assert info["format"] == QEMU_FORMAT[entry["format"]]
    assert info["virtual-size"] == entry["virtual_size"]
    if entry["format"] == "vhd" and entry["subformat"] == "fixed":
        assert path.stat().st_size == entry["virtual_size"] + 512
        assert read_vhd_footer(path)["disk_type"] == 2


def test_aligned_and_misaligned_sizes() -> None:
    assert MANIFEST["gen1-azure.vhd"]["virtual_size"] % MiB == 0
    assert MANIFEST["gen1-misaligned.vhd"]["virtual_size"] % MiB != 0


def read_vhd_footer(path: Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        fh.seek(-512, 2)
        raw = fh.read(512)
    assert raw[:8] == b"conectix"
    return {
        "data_offset": struct.unpack_from(">Q", raw, 16)[0],
        "current_size": struct.unpack_from(">Q", raw, 48)[0],
        "disk_type": struct.unpack_from(">I", raw, 60)[0],
        "unique_id": raw[68:84],
    }


def vhd_child_to_raw(child: Path, parent_raw: Path, out: Path) -> Path:
    """Apply a differencing VHD's sectors onto a copy of its parent's raw disk (spec layout:
    dynamic header at data_offset, BAT of big-endian sector numbers, per block a sector bitmap
    padded to 512 bytes with bit 7 of byte 0 = first sector)."""
    data = child.read_bytes()
    footer = read_vhd_footer(child)
    header = data[footer["data_offset"] : footer["data_offset"] + 1024]
    assert header[:8] == b"cxsparse"
    table_offset, _version, entries, block_size = struct.unpack_from(">QIII", header, 16)
    bitmap_len = -(-(block_size // SECTOR // 8) // SECTOR) * SECTOR
    out.write_bytes(parent_raw.read_bytes())
    with open(out, "r+b") as fh:
        for block in range(entries):
            (sector,) = struct.unpack_from(">I", data, table_offset + 4 * block)
            if sector == 0xFFFFFFFF:
                continue
            start = sector * SECTOR
            bitmap = data[start : start + bitmap_len]
            for i in range(block_size // SECTOR):
                if bitmap[i >> 3] & (0x80 >> (i & 7)):
                    src = start + bitmap_len + i * SECTOR
                    fh.seek(block * block_size + i * SECTOR)
                    fh.write(data[src : src + SECTOR])
    return out


@pytest.fixture(scope="module")
def raw_disk(sample_path: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The raw disk of a sample: qemu-img convert, or the parent's raw plus the child's sectors."""
    directory = tmp_path_factory.mktemp("raw")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name in cache:
            return cache[name]
        entry = MANIFEST[name]
        out = directory / (name + ".raw")
        path = sample_path(name)
        if entry["subformat"] != "differencing":
            run("qemu-img", "convert", "-f", QEMU_FORMAT[entry["format"]], "-O", "raw", path, out)
        elif entry["format"] == "vhd":
            vhd_child_to_raw(path, get(entry["parent"]), out)
        else:
            from dissect.hypervisor.disk.vhdx import VHDX

            disk = VHDX(path)
            with open(out, "wb") as fh:
                for offset in range(0, entry["virtual_size"], MiB):
                    disk.seek(offset)
                    fh.write(disk.read(MiB))
        cache[name] = out
        return out

    return get


@pytest.mark.parametrize("name", NAMES)
def test_partition_table_is_as_listed(name: str, raw_disk: Callable[[str], Path]) -> None:
    entry = MANIFEST[name]
    raw = raw_disk(name)
    assert raw.stat().st_size >= entry["virtual_size"] - MiB
    if entry["partition_table"] == "mbr":
        table = json.loads(run("sfdisk", "--json", raw))["partitiontable"]
        assert table["label"] == "dos"
        assert table["id"] == "0x" + entry["disk_id"]
        got = [(p["start"], p["size"], p["type"], p.get("bootable", False)) for p in table["partitions"]]
        want = [(p["start"], p["sectors"], p["type"], p["bootable"]) for p in entry["partitions"]]
        assert got == want
        assert entry["generation"] == 1
    else:
        printed = run("sgdisk", "--print", raw)
        assert f"Disk identifier (GUID): {entry['disk_id'].upper()}" in printed
        for n, p in enumerate(entry["partitions"], 1):
            info = run("sgdisk", f"--info={n}", raw)
            assert f"Partition unique GUID: {p['guid'].upper()}" in info
            assert f"First sector: {p['start']} " in info
            assert f"Partition size: {p['sectors']} sectors" in info
            assert f"Partition name: '{p['name']}'" in info
        assert "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in run("sgdisk", "--info=1", raw)
        assert entry["generation"] == 2


@pytest.mark.parametrize("name", [n for n in NAMES if MANIFEST[n]["subformat"] == "differencing"])
def test_children_link_to_their_parent(name: str, sample_path: Callable[[str], Path]) -> None:
    entry = MANIFEST[name]
    child, parent = sample_path(name), sample_path(entry["parent"])
    assert child.parent == parent.parent
    if entry["format"] == "vhd":
        footer = read_vhd_footer(child)
        assert footer["disk_type"] == 4
        data = child.read_bytes()
        header = data[footer["data_offset"] : footer["data_offset"] + 1024]
        assert header[40:56] == read_vhd_footer(parent)["unique_id"]
        locators = {}
        for i in range(8):
            code, _space, length, _res, offset = struct.unpack_from(">4sIIIQ", header, 576 + 24 * i)
            if length:
                locators[code] = data[offset : offset + length].decode("utf-16-le")
        assert locators[b"W2ru"] == ".\\" + entry["parent"]
    else:
        from dissect.hypervisor.disk.vhdx import VHDX

        disk = VHDX(child)
        assert disk.parent is not None
        assert disk.size == entry["virtual_size"]


def test_children_differ_from_parents_in_few_sectors(raw_disk: Callable[[str], Path]) -> None:
    for name, entry in MANIFEST.items():
        if entry["subformat"] != "differencing":
            continue
        a = raw_disk(entry["parent"]).read_bytes()
        b = raw_disk(name).read_bytes()
        changed = sum(1 for i in range(0, len(b), SECTOR) if a[i : i + SECTOR] != b[i : i + SECTOR])
        assert 0 < changed < 64, (name, changed)


# ---------------------------------------------------------------------------------------------
# guest content, read with dissect.ntfs and hivex


def guest_file(raw: Path, entry: dict[str, Any], path: str) -> bytes:
    from dissect.ntfs import NTFS

    part = next(p for p in entry["partitions"] if p["filesystem"] == "ntfs")
    with open(raw, "rb") as fh:
        fh.seek(part["start"] * SECTOR)
        volume = fh.read(part["sectors"] * SECTOR)
    import io

    fs = NTFS(io.BytesIO(volume))
    return fs.mft.get(path.replace("\\", "/")).open().read()


def hivexget(hive: Path, key: str, value: str) -> str:
    return run("hivexget", hive, key, value).strip()


CONTENT = [
    # sample, hive file, key, value, expected (hivexget's rendering)
    ("gen1-azure.vhd", "SYSTEM", r"\Select", "Current", "1"),
    ("gen1-azure.vhd", "SYSTEM", r"\ControlSet001\Control\Terminal Server\WinStations\RDP-Tcp", "PortNumber", "3389"),
    (
        "gen1-azure-child.vhd",
        "SYSTEM",
        r"\ControlSet001\Control\Terminal Server\WinStations\RDP-Tcp",
        "PortNumber",
        "3391",
    ),
    ("gen1-azure.vhd", "SOFTWARE", r"\Microsoft\Windows NT\CurrentVersion", "CurrentBuild", "14393"),
    (
        "gen1-azure.vhd",
        "SOFTWARE",
        r"\Microsoft\Windows\CurrentVersion\Setup\State",
        "ImageState",
        "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE",
    ),
    ("gen2-misconfigured.vhdx", "SYSTEM", r"\Select", "Current", "2"),
    (
        "gen2-misconfigured.vhdx",
        "SYSTEM",
        r"\ControlSet002\Control\Terminal Server\WinStations\RDP-Tcp",
        "PortNumber",
        "3390",
    ),
    (
        "gen2-misconfigured.vhdx",
        "SYSTEM",
        r"\ControlSet001\Control\Terminal Server\WinStations\RDP-Tcp",
        "PortNumber",
        "3389",
    ),
    ("gen2-misconfigured.vhdx", "SOFTWARE", r"\Microsoft\Windows NT\CurrentVersion", "CurrentBuild", "16299"),
    (
        "gen2-misconfigured-child.vhdx",
        "SYSTEM",
        r"\ControlSet002\Control\TimeZoneInformation",
        "RealTimeIsUniversal",
        "1",
    ),
]


@pytest.mark.parametrize(("name", "hive", "key", "value", "expected"), CONTENT)
def test_hive_values(
    name: str, hive: str, key: str, value: str, expected: str, raw_disk: Callable[[str], Path], tmp_path: Path
) -> None:
    data = guest_file(raw_disk(name), MANIFEST[name], "Windows\\System32\\config\\" + hive)
    target = tmp_path / hive
    target.write_bytes(data)
    assert hivexget(target, key, value) == expected


def test_parent_misses_what_the_child_sets(raw_disk: Callable[[str], Path], tmp_path: Path) -> None:
    data = guest_file(
        raw_disk("gen2-misconfigured.vhdx"), MANIFEST["gen2-misconfigured.vhdx"], "Windows\\System32\\config\\SYSTEM"
    )
    (tmp_path / "SYSTEM").write_bytes(data)
    proc = subprocess.run(
        ["hivexget", str(tmp_path / "SYSTEM"), r"\ControlSet002\Control\TimeZoneInformation", "RealTimeIsUniversal"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 or proc.stdout.strip() == ""


@pytest.mark.parametrize(
    ("name", "path", "version"),
    [
        ("gen1-azure.vhd", r"Windows\System32\drivers\vmstorfl.sys", (10, 0, 14393, 2273)),
        ("gen1-azure.vhd", r"Windows\System32\ntoskrnl.exe", (10, 0, 14393, 2273)),
        ("gen2-misconfigured.vhdx", r"Windows\System32\drivers\vmstorfl.sys", (10, 0, 16299, 15)),
        ("gen2-misconfigured.vhdx", r"Windows\System32\drivers\tcpip.sys", (10, 0, 16299, 431)),
    ],
)
def test_pe_version_resources(name: str, path: str, version: tuple[int, ...], raw_disk: Callable[[str], Path]) -> None:
    import pefile

    pe = pefile.PE(data=guest_file(raw_disk(name), MANIFEST[name], path))
    info = pe.VS_FIXEDFILEINFO[0]
    got = (info.FileVersionMS >> 16, info.FileVersionMS & 0xFFFF, info.FileVersionLS >> 16, info.FileVersionLS & 0xFFFF)
    assert got == version
    assert pe.FILE_HEADER.Machine == 0x8664


# ---------------------------------------------------------------------------------------------
# reproducibility


@pytest.mark.slow
def test_build_check_reproduces_the_committed_samples() -> None:
    proc = subprocess.run(
        [sys.executable, str(SAMPLES_DIR / "build.py"), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "byte for byte" in proc.stdout


# ---------------------------------------------------------------------------------------------
# the audit agrees with what each sample is built to fail


@pytest.mark.parametrize("name", NAMES)
def test_audit_fails_exactly_the_expected_checks(name: str, sample_path: Callable[[str], Path]) -> None:
    import azvhdaudit

    entry = MANIFEST[name]
    # with_lsa: the samples carry SECURITY and SAM, so every rule has its evidence
    report = azvhdaudit.audit(sample_path(name), entry["profile"], with_lsa=True)
    by_status: dict[str, set[str]] = {}
    for result in report.to_dict()["results"]:
        by_status.setdefault(result["status"], set()).add(result["rule_id"])
    assert by_status.get("fail", set()) == set(entry["expected_fail"])
    assert by_status.get("warning", set()) == set(entry["expected_warning"])
    assert not by_status.get("error"), by_status.get("error")
    assert not by_status.get("not_checked"), by_status.get("not_checked")


def test_without_lsa_the_rules_that_need_security_and_sam_are_not_checked(sample_path: Callable[[str], Path]) -> None:
    import azvhdaudit

    # the sample's own profile (the 2022-08 document): the platform rules are not what this is about
    report = azvhdaudit.audit(sample_path("gen1-azure.vhd"), MANIFEST["gen1-azure.vhd"]["profile"])
    not_checked = {r.rule_id for r in report.filter(status="not_checked")}
    assert not_checked == {
        "rdp.builtin_admin_known",
        "rdp.user_right_allow_rds",
        "rdp.user_right_network_logon",
        "rdp.user_right_no_deny",
    }
    assert all("with_lsa" in report[rule_id].reason for rule_id in not_checked)


# ---------------------------------------------------------------------------------------------
# the large image for benchmarks


@pytest.mark.slow
def test_build_large_vhdx(sample_builder: Any, realdata: Path, tmp_path: Path) -> None:
    out = tmp_path / "large.vhdx"
    work = tmp_path / "work"
    sample_builder.build_large_vhdx(out, system_hive=realdata / "SYSTEM", workdir=work)
    info = json.loads(run("qemu-img", "info", "--output=json", "-f", "vhdx", out))
    assert info["virtual-size"] == 127 * 2**30
    assert out.stat().st_size < 1024 * MiB  # dynamic: only the allocated blocks
    printed = run("sgdisk", "--print", work / "disk.raw")
    assert "EF00" in printed and "0C01" in printed and "0700" in printed
    software = work / "hives" / "SOFTWARE.large"
    assert software.stat().st_size >= 60 * 10**6
    xml = run("hivexml", software)
    assert xml.count("<node ") >= 50_000
    assert (work / "hives" / "SYSTEM").exists()
    assert hivexget(software, r"\Microsoft\Windows NT\CurrentVersion", "CurrentBuild") == "14393"


# ---------------------------------------------------------------------------------------------
# boot configuration: device elements shaped like a real store's


def _bcd_elements(path: Path) -> dict[tuple[str, str], bytes]:
    from dissect.regf import RegistryHive

    with open(path, "rb") as fh:
        hive = RegistryHive(fh)
        out = {}
        for obj in hive.open("Objects").subkeys():
            for element in obj.subkey("Elements").subkeys():
                for value in element.values():
                    if value.name == "Element" and isinstance(value.value, bytes):
                        out[(obj.name.lower(), element.name.lower())] = value.value
    return out


def _sample_bcd(name: str, raw_disk: Callable[[str], Path], tmp_path: Path) -> Path:
    entry = MANIFEST[name]
    target = tmp_path / "BCD"
    if entry["generation"] == 1:
        target.write_bytes(guest_file(raw_disk(name), entry, "Boot\\BCD"))
    else:
        esp = entry["partitions"][0]
        run("mcopy", "-n", "-i", f"{raw_disk(name)}@@{esp['start'] * SECTOR}", "::/EFI/Microsoft/Boot/BCD", target)
    return target


@pytest.mark.parametrize("name", ["gen1-azure.vhd", "gen2-misconfigured.vhdx"])
def test_bcd_partition_devices_follow_the_real_store(
    name: str, raw_disk: Callable[[str], Path], realdata: Path, tmp_path: Path
) -> None:
    entry = MANIFEST[name]
    real = [v for (_, el), v in _bcd_elements(realdata / "BCD").items() if el == "21000001" and len(v) == 88]
    assert real, "the real store has partition osdevice elements"
    ours = _bcd_elements(_sample_bcd(name, raw_disk, tmp_path))
    default = "{b1a6f8e2-7c4d-4e4a-9f3b-5d2c8a1e0f61}"
    windows = next(p for p in entry["partitions"] if p["filesystem"] == "ntfs")
    for element in ("11000001", "21000001"):
        blob = ours[(default, element)]
        assert len(blob) == len(real[0])
        assert blob[:0x20] == real[0][:0x20]  # zero options GUID, device type 6, size 0x48
        assert blob[0x30:0x34] == real[0][0x30:0x34]  # local device: hard disk
        if entry["partition_table"] == "gpt":
            assert blob[0x34:0x38] == bytes(4)
            assert str(uuid.UUID(bytes_le=blob[0x20:0x30])) == windows["guid"]
            assert str(uuid.UUID(bytes_le=blob[0x38:0x48])) == entry["disk_id"]
        else:
            assert struct.unpack_from("<Q", blob, 0x20)[0] == windows["start"] * SECTOR
            assert struct.unpack_from("<I", blob, 0x34)[0] == 1
            assert struct.unpack_from("<I", blob, 0x38)[0] == int(entry["disk_id"], 16)


def test_check_reports_missing_and_changed_files(sample_builder: Any, tmp_path: Path) -> None:
    committed, rebuilt = tmp_path / "committed", tmp_path / "rebuilt"
    committed.mkdir()
    rebuilt.mkdir()
    (committed / "manifest.json").write_text('{\n  "ubr": 2273\n}\n', encoding="utf-8")
    (rebuilt / "manifest.json").write_text('{\n  "ubr": 2274\n}\n', encoding="utf-8")
    (rebuilt / "a.vhd.xz").write_bytes(b"x")
    (committed / "b.vhd.xz").write_bytes(b"y")
    (rebuilt / "b.vhd.xz").write_bytes(b"y")
    problems = sample_builder.compare(committed, rebuilt, ["a.vhd.xz", "b.vhd.xz", "manifest.json"])
    assert problems[0] == "a.vhd.xz: not committed"
    assert problems[1].startswith("manifest.json: committed sha256")
    assert '    -  "ubr": 2273,' not in problems and '    -  "ubr": 2273' in problems
    assert not any(p.startswith("b.vhd.xz") for p in problems)
