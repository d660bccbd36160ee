"""A BCD store shaped like Windows' own ``System32\\config\\BCD-Template``, written by hivex.

Windows 10 and 11 ship ``BCD-Template`` with integer elements stored in fewer than 8 bytes: ``{bootmgr}``
timeout is the single byte 0x1e (30). bcdboot copies the template into the new store and adds the loader, so
a store made by bcdboot keeps those short integers until bcdedit rewrites them (bcdedit writes 8 bytes).
Windows reads 1 to 8 bytes into a zeroed 64-bit integer (``BiConvertRegistryDataToElement``).

The stores here are .reg text merged by ``hivexregedit`` into an empty hive from ``samples/build.py`` and
read back through the library's hive backends: the same route a store inside an image takes.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from azvhdaudit.bcd import BCDStore, decode_bcd
from azvhdaudit.registry.model import RegType
from azvhdaudit.registry.open import open_hive_file
from azvhdaudit.report import Status

from .helpers import (
    BOOTLOADERSETTINGS,
    BOOTMGR,
    EMS,
    GLOBALSETTINGS,
    LOADER,
    MakeCtx,
    good_bcd_objects,
    image_facts,
    run,
)

ROOT = "HKEY_LOCAL_MACHINE\\BCD00000000"
DBGSETTINGS = "{4636856e-540f-4170-a130-a84776f4c654}"


def _b(data: bytes) -> tuple[int, bytes]:
    return (RegType.BINARY, data)


def template_like_objects() -> dict[str, tuple[int, dict[int, Any]]]:
    """The doc-conforming store of the other tests, with every integer in the fewest bytes that hold it,
    the way BCD-Template stores them, plus the template's {dbgsettings} (debugtype, debugport, baudrate)."""
    objects = good_bcd_objects()
    objects[BOOTMGR][1].update({0x25000004: _b(b"\x05"), 0x1500004B: _b(b"\x01")})
    objects[LOADER][1].update({0x1500004B: _b(b"\x01"), 0x250000E0: _b(b"\x01")})
    objects[EMS][1].update({0x15000022: _b(b"\x01"), 0x15000023: _b(b"\x00\xc2\x01")})
    objects[GLOBALSETTINGS][1][0x14000006] = [DBGSETTINGS, EMS]
    objects[DBGSETTINGS] = (
        0x20100000,
        {0x15000011: _b(b"\x00"), 0x15000013: _b(b"\x01"), 0x15000014: _b(b"\x00\xc2\x01\x00")},
    )
    return objects


def _reg_hex(data: bytes) -> str:
    return ",".join(f"{b:02x}" for b in data)


def reg_text(objects: dict[str, tuple[int, dict[int, Any]]]) -> str:
    """The store as .reg text for ``hivexregedit --merge`` (every key spelled out, parents first)."""
    lines = [
        "Windows Registry Editor Version 5.00",
        "",
        f"[{ROOT}\\Description]",
        '"KeyName"="BCD00000000"',
        "",
        f"[{ROOT}\\Objects]",
        "",
    ]
    for guid, (otype, elements) in objects.items():
        base = f"{ROOT}\\Objects\\{guid}"
        lines += [f"[{base}]", "", f"[{base}\\Description]", f'"Type"=dword:{otype:08x}', "", f"[{base}\\Elements]", ""]
        for eid, data in elements.items():
            lines.append(f"[{base}\\Elements\\{eid:08X}]")
            if isinstance(data, str):
                lines.append('"Element"="' + data.replace("\\", "\\\\") + '"')
            elif isinstance(data, list):
                multi = ("\0".join(data) + "\0\0").encode("utf-16-le")
                lines.append(f'"Element"=hex(7):{_reg_hex(multi)}')
            else:
                reg_type, raw = data
                assert reg_type == RegType.BINARY
                lines.append(f'"Element"=hex:{_reg_hex(raw)}')
            lines.append("")
    return "\n".join(lines) + "\n"


def hivex_store(builder: ModuleType, out: Path, objects: dict[str, tuple[int, dict[int, Any]]]) -> Path:
    reg = out.with_suffix(".reg")
    reg.write_text(reg_text(objects), encoding="utf-8")
    out.write_bytes(builder.empty_hive("BCD00000000"))
    builder.run("hivexregedit", "--merge", "--prefix", ROOT, out, reg)
    reg.unlink()
    return out


@pytest.fixture(scope="module", params=["regf", "python-registry"])
def stores(
    request: pytest.FixtureRequest, tools: None, sample_builder: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> tuple[BCDStore, BCDStore]:
    """(the template-like store, the same store with 8-byte integers), both written by hivex."""
    root = tmp_path_factory.mktemp("bcd-template")
    short = hivex_store(sample_builder, root / "BCD-short", template_like_objects())
    wide = hivex_store(sample_builder, root / "BCD-wide", good_bcd_objects())
    return tuple(  # type: ignore[return-value]
        decode_bcd(open_hive_file(path, "BCD", backend=request.param, logs=None)) for path in (short, wide)
    )


def test_hivex_wrote_short_integers(stores: tuple[BCDStore, BCDStore]) -> None:
    short, _ = stores
    assert short.bootmgr is not None
    timeout = short.bootmgr.element("timeout")
    assert timeout is not None and timeout.raw == b"\x05" and timeout.value == 5
    dbg = short.get("{dbgsettings}")
    assert dbg is not None
    assert [dbg.elements[eid].value for eid in (0x15000011, 0x15000013, 0x15000014)] == [0, 1, 115200]
    ems = short.get("{emssettings}")
    assert ems is not None and ems.element("emsbaudrate").raw == b"\x00\xc2\x01"


def test_template_timeout_byte(tools: None, sample_builder: ModuleType, tmp_path: Path, make_ctx: MakeCtx) -> None:
    """BCD-Template's own {bootmgr} timeout, 0x1e: read as 30 and judged (a warning: 5 is asked for)."""
    objects = template_like_objects()
    objects[BOOTMGR][1][0x25000004] = _b(b"\x1e")
    store = decode_bcd(open_hive_file(hivex_store(sample_builder, tmp_path / "BCD", objects), "BCD", logs=None))
    assert store.bootmgr is not None and store.bootmgr.element("timeout").value == 30
    out = run("bcd.bootmgr_timeout", make_ctx(facts=image_facts("gpt"), bcd=store))
    assert out.status == Status.WARNING, out.message
    assert "30s" in out.message


@pytest.mark.parametrize(
    "rule_id",
    [
        "bcd.bootmgr_timeout",
        "bcd.bootmgr_integrityservices",
        "bcd.default_integrityservices",
        "bcd.default_bootstatuspolicy",
        "bcd.emssettings",
        "bcd.bootmgr_bootems",
        "bcd.default_ems",
    ],
)
def test_short_integers_are_judged_like_wide_ones(
    make_ctx: MakeCtx, stores: tuple[BCDStore, BCDStore], rule_id: str
) -> None:
    short, wide = stores
    got = run(rule_id, make_ctx(facts=image_facts("gpt"), bcd=short))
    want = run(rule_id, make_ctx(facts=image_facts("gpt"), bcd=wide))
    assert got.status == Status.PASS, got.message
    assert (got.status, got.message, got.actual) == (want.status, want.message, want.actual)


def test_inherited_short_integer(make_ctx: MakeCtx, stores: tuple[BCDStore, BCDStore]) -> None:
    # {bootloadersettings} -> {globalsettings} -> {dbgsettings}: the loader's effective debugport is 1
    short, _ = stores
    loader = short.default_loader
    assert loader is not None
    eff = short.effective(loader, 0x15000013)
    assert eff is not None and eff.value == 1 and eff.inherited and eff.holder.guid == DBGSETTINGS
    assert short.get(BOOTLOADERSETTINGS) is not None
