"""The kit that builds images made to differ in known ways, for the diff, the golden baseline and the fleet page.

Every image is built from scratch by ``samples/build.py`` (hivex, mkntfs + ntfs-3g, mingw-w64, qemu-img)
from the committed sample's spec plus a small ``.reg`` overlay written here, so what differs is exactly
what the overlay says:

- ``gen1-week2.vhd``: gen1-azure.vhd one "week" later: UBR 2273 -> 2312 and every update-table binary
  at 10.0.14393.2312; RDP PortNumber 3389 -> 3390 (``rdp.port`` fails); CrashDumpEnabled 2 -> 0
  (``crashdump.kernel_dump`` warns); BCD ``{default}`` recoveryenabled No -> Yes
  (``bcd.default_recovery_disabled`` fails).
- ``web-clone.vhd``: a specialized (never generalized) gen1 image with ComputerName WEB-01, a
  MachineGuid and a machine SID in ``SECURITY\\Policy\\PolAcDmS``. Tests copy it to make clones.
- ``web-other.vhd``: the same, with its own name, MachineGuid and SID.
"""

from __future__ import annotations

import dataclasses
import shutil
import struct
from pathlib import Path
from types import ModuleType

SAMPLES_BUILD = Path(__file__).resolve().parents[2] / "samples" / "build.py"


def load_sample_builder() -> ModuleType:
    """samples/build.py, under the name tests/conftest.py gives it (one module, whichever loads it first)."""
    import importlib.util
    import sys

    name = "azvhdaudit_samples_build"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SAMPLES_BUILD)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


WEEK2_UBR = 2312
WEEK2_FILE_VERSION = "10.0.14393.2312"
CLONE_NAME = "WEB-01"
CLONE_GUID = "6f1d2a4e-8b3c-4d5e-9f60-7a8b9c0d1e2f"
CLONE_SID = (21, 1004336348, 1177238915, 682003330)
OTHER_NAME = "WEB-02"
OTHER_GUID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_SID = (21, 2200000001, 2200000002, 2200000003)


def sid_text(sub: tuple[int, ...]) -> str:
    return "S-1-5-" + "-".join(str(s) for s in sub)


def polacdms(name: str, sub: tuple[int, ...]) -> bytes:
    """A PolAcDmS default value: the account domain's name then its SID (revision 1, authority 5)."""
    label = name.encode("utf-16-le")
    sid = struct.pack("<BB", 1, len(sub)) + (5).to_bytes(6, "big") + struct.pack(f"<{len(sub)}I", *sub)
    return struct.pack("<HHI", len(label), len(label), 8) + label + sid


def _hex(data: bytes) -> str:
    return ",".join(f"{b:02x}" for b in data)


def _reg(body: str) -> str:
    return "Windows Registry Editor Version 5.00\n\n" + body.strip() + "\n"


def week2_overlays(tmp: Path) -> tuple[tuple[str, str], ...]:
    (tmp / "week2.SOFTWARE.reg").write_text(
        _reg(f'[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion]\n"UBR"=dword:{WEEK2_UBR:08x}\n'),
        encoding="ascii",
    )
    (tmp / "week2.SYSTEM.reg").write_text(
        _reg(
            "[HKEY_LOCAL_MACHINE\\SYSTEM\\{{CCS}}\\Control\\Terminal Server\\WinStations\\RDP-Tcp]\n"
            '"PortNumber"=dword:00000d3e\n\n'
            "[HKEY_LOCAL_MACHINE\\SYSTEM\\{{CCS}}\\Control\\CrashControl]\n"
            '"CrashDumpEnabled"=dword:00000000\n'
        ),
        encoding="ascii",
    )
    (tmp / "week2.BCD.reg").write_text(
        _reg(
            "[HKEY_LOCAL_MACHINE\\BCD00000000\\Objects\\{b1a6f8e2-7c4d-4e4a-9f3b-5d2c8a1e0f61}\\Elements\\16000009]\n"
            '"Element"=hex:01\n'
        ),
        encoding="ascii",
    )
    return tuple((hive, str(tmp / f"week2.{hive}.reg")) for hive in ("SOFTWARE", "SYSTEM", "BCD"))


def specialized_overlays(
    tmp: Path, tag: str, name: str, guid: str, sid: tuple[int, ...]
) -> tuple[tuple[str, str], ...]:
    (tmp / f"{tag}.SOFTWARE.reg").write_text(
        _reg(
            "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Setup\\State]\n"
            '"ImageState"="IMAGE_STATE_COMPLETE"\n\n'
            "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Cryptography]\n"
            f'"MachineGuid"="{guid}"\n'
        ),
        encoding="ascii",
    )
    (tmp / f"{tag}.SYSTEM.reg").write_text(
        _reg(
            f'[HKEY_LOCAL_MACHINE\\SYSTEM\\{{{{CCS}}}}\\Control\\ComputerName\\ComputerName]\n"ComputerName"="{name}"\n'
        ),
        encoding="ascii",
    )
    (tmp / f"{tag}.SECURITY.reg").write_text(
        _reg(f"[HKEY_LOCAL_MACHINE\\SECURITY\\Policy\\PolAcDmS]\n@=hex:{_hex(polacdms(name, sid))}\n"), encoding="ascii"
    )
    return tuple((hive, str(tmp / f"{tag}.{hive}.reg")) for hive in ("SOFTWARE", "SYSTEM", "SECURITY"))


def _build(
    builder: ModuleType,
    work: Path,
    out: Path,
    name: str,
    overlays: tuple[tuple[str, str], ...],
    file_version: str | None = None,
) -> Path:
    base = builder.SAMPLES[0]  # gen1-azure.vhd
    assert base.name == "gen1-azure.vhd"
    os_spec = dataclasses.replace(base.os, file_version=file_version) if file_version else base.os
    spec = dataclasses.replace(base, name=name, os=os_spec, overlays=base.overlays + overlays)
    raw, _hives, _images = builder.build_image(spec, work / name)
    target = builder.fixed_vhd(raw, out / name, base.unique_id)
    shutil.rmtree(work / name)
    return Path(target)


def build_all(work: Path, out: Path) -> dict[str, Path]:
    """The three images above, built into ``out``."""
    builder = load_sample_builder()
    return {
        "gen1-week2.vhd": _build(
            builder, work, out, "gen1-week2.vhd", week2_overlays(work), file_version=WEEK2_FILE_VERSION
        ),
        "web-clone.vhd": _build(
            builder, work, out, "web-clone.vhd", specialized_overlays(work, "clone", CLONE_NAME, CLONE_GUID, CLONE_SID)
        ),
        "web-other.vhd": _build(
            builder, work, out, "web-other.vhd", specialized_overlays(work, "other", OTHER_NAME, OTHER_GUID, OTHER_SID)
        ),
    }
