"""disk.* rules on hand-built container and partition facts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from azvhdaudit.facts import ParentLink, PartitionFacts
from azvhdaudit.report import Status

from .helpers import MakeCtx, container, image_facts, run

MiB = 1024 * 1024
GiB = 1024 * MiB


def ctx_with(make_ctx: MakeCtx, style: str = "gpt", hives: Any = None, profile: str = "azure", **container_kw: Any):
    return make_ctx(facts=image_facts(style, container=container(**container_kw)), hives=hives, profile=profile)


@pytest.mark.parametrize(
    ("fmt", "subtype", "status", "words"),
    [
        ("vhd", "fixed", Status.PASS, "is a VHD"),
        ("vhd", "dynamic", Status.PASS, "is a VHD"),
        ("vhdx", "fixed", Status.FAIL, "Convert-VHD -Path disk.vhd"),
        ("vmdk", "dynamic", Status.FAIL, "qemu-img convert -f vmdk -O vpc -o subformat=fixed,force_size"),
        ("qcow2", None, Status.FAIL, "qemu-img convert -f qcow2"),
        ("raw", None, Status.FAIL, "probably truncated"),  # a raw disk named disk.vhd
    ],
)
def test_container_format(make_ctx: MakeCtx, fmt: str, subtype: str | None, status: Status, words: str) -> None:
    out = run("disk.container_format", ctx_with(make_ctx, format=fmt, subtype=subtype))
    assert out.status == status and words in out.message


@pytest.mark.parametrize(
    ("fmt", "subtype", "status"),
    [
        ("vhd", "fixed", Status.PASS),
        ("vhd", "dynamic", Status.FAIL),
        ("vhd", "differencing", Status.FAIL),
        ("vhd", None, Status.NOT_CHECKED),
        ("vhdx", "fixed", Status.NOT_APPLICABLE),
    ],
)
def test_vhd_fixed(make_ctx: MakeCtx, fmt: str, subtype: str | None, status: Status) -> None:
    assert run("disk.vhd_fixed", ctx_with(make_ctx, format=fmt, subtype=subtype)).status == status


def test_differencing(make_ctx: MakeCtx) -> None:
    parent = ParentLink(path="base.vhdx", format="vhdx", id="a", expected_id="a", linkage_matches=True)
    out = run("disk.not_differencing", ctx_with(make_ctx, format="vhdx", subtype="differencing", parents=(parent,)))
    assert out.status == Status.FAIL and "base.vhdx" in out.message and "merge" in out.message
    assert run("disk.not_differencing", ctx_with(make_ctx)).status == Status.PASS


@pytest.mark.parametrize(
    ("kw", "status", "words"),
    [
        ({}, Status.PASS, "valid"),
        ({"footer_checksum_valid": False}, Status.FAIL, "checksum"),
        ({"footer_cookie_valid": False}, Status.FAIL, "cookie"),
        ({"footer_version": "2.0"}, Status.FAIL, "format version"),
        ({"footer_at_end": None}, Status.NOT_CHECKED, "footer at the end"),
        (
            {"subtype": "dynamic", "footer_copy_matches": False, "dynamic_header_checksum_valid": True},
            Status.FAIL,
            "footer copy",
        ),
        ({"format": "vhdx"}, Status.NOT_APPLICABLE, "only a VHD"),
    ],
)
def test_footer(make_ctx: MakeCtx, kw: dict[str, Any], status: Status, words: str) -> None:
    out = run("disk.vhd_footer_valid", ctx_with(make_ctx, **kw))
    assert out.status == status and words in out.message


def test_size_aligned(make_ctx: MakeCtx) -> None:
    assert run("disk.size_aligned_1mib", ctx_with(make_ctx)).status == Status.PASS


def test_size_from_chs_geometry(make_ctx: MakeCtx) -> None:
    # qemu-img's classic rounding: 1 GiB asked, 2080*16*63*512 = 1,073,479,680 bytes made
    geo = (2080, 16, 63)
    size = 2080 * 16 * 63 * 512
    out = run("disk.size_aligned_1mib", ctx_with(make_ctx, virtual_size=size, geometry=geo, geometry_size=size))
    assert out.status == Status.FAIL
    assert "CHS geometry 2080*16*63*512" in out.message and "rounded" in out.message
    assert f"-SizeBytes {1024 * MiB}" in out.message


def test_fixed_file_size_must_be_size_plus_512(make_ctx: MakeCtx) -> None:
    out = run("disk.size_aligned_1mib", ctx_with(make_ctx, file_size=30 * GiB + 1024))
    assert out.status == Status.FAIL and "+512 bytes" in out.message


def test_size_unaligned_vhdx_has_no_file_size_rule(make_ctx: MakeCtx) -> None:
    out = run("disk.size_aligned_1mib", ctx_with(make_ctx, format="vhdx", virtual_size=GiB + 4096, file_size=5))
    assert out.status == Status.FAIL and "file is" not in out.message


@pytest.mark.parametrize(
    ("size", "generation", "profile", "status"),
    [
        (127 * GiB, 1, "azure", Status.PASS),
        (2048 * GiB, 1, "azure", Status.PASS),
        (2049 * GiB, 1, "azure", Status.FAIL),
        (4095 * GiB, 2, "azure", Status.PASS),
        (32768 * GiB, 2, "azure", Status.FAIL),
        (1023 * GiB, 1, "azure-2017", Status.PASS),
        (1024 * GiB, 1, "azure-2017", Status.FAIL),
        (3000 * GiB, None, "azure", Status.FAIL),
    ],
)
def test_os_max_size(make_ctx: MakeCtx, size: int, generation: int | None, profile: str, status: Status) -> None:
    facts = image_facts(container=container(virtual_size=size), generation=generation)
    assert run("disk.os_max_size", make_ctx(facts=facts, profile=profile)).status == status


@pytest.mark.parametrize(("size", "status"), [(32767 * GiB, Status.PASS), (32768 * GiB, Status.FAIL)])
def test_data_max_size(make_ctx: MakeCtx, size: int, status: Status) -> None:
    assert run("disk.data_max_size", ctx_with(make_ctx, virtual_size=size)).status == status


@pytest.mark.parametrize(
    ("style", "drop_esp", "profile", "status", "words"),
    [
        ("mbr", False, "azure", Status.PASS, "generation 1"),
        ("gpt", False, "azure", Status.PASS, "HyperVGeneration V2"),
        ("gpt", False, "azure-2017", Status.FAIL, "generation 1 only"),
        ("gpt", True, "azure", Status.FAIL, "without an EFI system partition"),
        ("none", False, "azure", Status.FAIL, "no partition table"),
        (None, False, "azure", Status.NOT_CHECKED, "not established"),
    ],
)
def test_generation(
    make_ctx: MakeCtx, style: str | None, drop_esp: bool, profile: str, status: Status, words: str
) -> None:
    facts = image_facts("mbr" if style == "mbr" else "gpt")
    facts.partition_style = style
    if drop_esp:
        facts.partitions = facts.partitions[1:]
    out = run("disk.generation", make_ctx(facts=facts, profile=profile))
    assert out.status == status and words in out.message


def test_boot_files(make_ctx: MakeCtx) -> None:
    assert run("disk.boot_files_present", make_ctx(facts=image_facts("gpt"))).status == Status.PASS
    assert run("disk.boot_files_present", make_ctx(facts=image_facts("mbr"))).status == Status.PASS
    mbr = image_facts("mbr")
    mbr.partitions = [replace(p, bootable=False) for p in mbr.partitions]
    assert run("disk.boot_files_present", make_ctx(facts=mbr)).status == Status.FAIL
    none = image_facts("gpt", boot_partition=None, bcd_path=None)
    out = run("disk.boot_files_present", make_ctx(facts=none))
    assert out.status == Status.FAIL and "no boot store" in out.message
    unknown = image_facts("gpt", partition_style=None)
    out = run("disk.boot_files_present", make_ctx(facts=unknown))
    assert out.status == Status.NOT_CHECKED and out.reason == "no partition style in the image facts"
    assert out.message == "the partition style is not known" and out.evidence


def test_bitlocker(make_ctx: MakeCtx) -> None:
    facts = image_facts("gpt")
    assert run("disk.os_volume_not_bitlocker", make_ctx(facts=facts)).status == Status.PASS
    facts.partitions[2] = replace(facts.partitions[2], encrypted=True, filesystem="bitlocker")
    out = run("disk.os_volume_not_bitlocker", make_ctx(facts=facts))
    assert out.status == Status.FAIL and "[2]" in out.message
    assert run("disk.os_volume_not_bitlocker", make_ctx(facts=image_facts(partitions=[]))).status == Status.NOT_CHECKED


SESSION = r"ControlSet001\Control\Session Manager"


@pytest.mark.parametrize(
    ("dirty", "boot_execute", "status"),
    [
        (False, ["autocheck autochk *"], Status.PASS),
        (True, ["autocheck autochk *"], Status.WARNING),
        (False, ["autocheck autochk /p \\??\\C:", "autocheck autochk *"], Status.WARNING),
        (None, None, Status.NOT_CHECKED),
    ],
)
def test_ntfs_clean(make_ctx: MakeCtx, dirty: bool | None, boot_execute: list[str] | None, status: Status) -> None:
    facts = image_facts("gpt", ntfs_dirty=None)
    facts.partitions[2] = replace(facts.partitions[2], ntfs_dirty=dirty)
    system: dict[str, Any] = {"Select": {"Current": 1}}
    if boot_execute is not None:
        system[SESSION] = {"BootExecute": boot_execute}
    assert run("disk.ntfs_clean", make_ctx(facts=facts, hives={"SYSTEM": system})).status == status


@pytest.mark.parametrize(
    ("dirty", "status"),
    [
        (False, Status.NOT_CHECKED),  # hive-missing: a chkdsk scheduled in BootExecute is unknown
        (True, Status.WARNING),  # the dirty flag alone is a finding
    ],
)
def test_ntfs_clean_hive_missing(make_ctx: MakeCtx, dirty: bool, status: Status) -> None:
    facts = image_facts("gpt", ntfs_dirty=None)
    facts.partitions[2] = replace(facts.partitions[2], ntfs_dirty=dirty)
    out = run("disk.ntfs_clean", make_ctx(facts=facts, hives={}))
    assert out.status == status, out.message
    assert [e.source for e in out.evidence] == ["facts"]


@pytest.mark.parametrize(
    ("fmt", "sector", "status"),
    [("vhdx", 512, Status.PASS), ("vhdx", 4096, Status.WARNING), ("vhd", 512, Status.NOT_APPLICABLE)],
)
def test_vhdx_sector(make_ctx: MakeCtx, fmt: str, sector: int, status: Status) -> None:
    out = run("disk.vhdx_logical_sector_512", ctx_with(make_ctx, format=fmt, logical_sector_size=sector))
    assert out.status == status


@pytest.mark.parametrize(
    ("fmt", "pending", "status"),
    [
        ("vhdx", False, Status.PASS),
        ("vhdx", True, Status.WARNING),
        ("vhdx", None, Status.NOT_CHECKED),
        ("vhd", None, Status.NOT_APPLICABLE),
    ],
)
def test_vhdx_log(make_ctx: MakeCtx, fmt: str, pending: bool | None, status: Status) -> None:
    assert run("disk.vhdx_log_clean", ctx_with(make_ctx, format=fmt, log_pending=pending)).status == status


@pytest.mark.parametrize(
    ("offset", "status"), [(MiB, Status.PASS), (63 * 512, Status.WARNING), (3 * MiB + 512, Status.WARNING)]
)
def test_first_partition(make_ctx: MakeCtx, offset: int, status: Status) -> None:
    part = PartitionFacts(index=0, scheme="mbr", offset=offset, size=GiB, type_id="0x07", type_name="NTFS/exFAT")
    facts = image_facts("mbr", partitions=[part], windows_partition=0)
    assert run("disk.first_partition_offset", make_ctx(facts=facts)).status == status


def test_first_partition_without_table(make_ctx: MakeCtx) -> None:
    facts = image_facts("gpt", partitions=[])
    assert run("disk.first_partition_offset", make_ctx(facts=facts)).status == Status.NOT_APPLICABLE
