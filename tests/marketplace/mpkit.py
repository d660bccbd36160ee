"""Contexts for the Marketplace rule tests: the compliant hives of tests/rules/guestkit.py with an overlay, image
facts from tests/image_rules/helpers.py, and the engine running one rule of the ``azure-marketplace`` profile."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from typing import Any

from image_rules.helpers import FakeFiles, container, gpt_partitions
from rules.guestkit import build_view

from azvhdaudit.engine import audit_context, audit_vm_context
from azvhdaudit.facts import ContainerFacts, ImageFacts, OSFacts, PartitionFacts, SysprepFacts
from azvhdaudit.report import Result
from azvhdaudit.rules.base import AuditContext, AuditOptions
from azvhdaudit.rules.vm import DiskInfo, VMContext

PROFILE = "azure-marketplace"
GiB = 1024**3
MiB = 1024**2
TODAY = _dt.date(2026, 1, 1)

SERVER_2016 = OSFacts(
    product_name="Windows Server 2016 Datacenter",
    edition_id="ServerDatacenter",
    build=14393,
    ubr=2273,
    installation_type="Server",
    product_type="ServerNT",
    architecture="AMD64",
)
SERVER_2012R2 = OSFacts(
    product_name="Windows Server 2012 R2 Datacenter",
    build=9600,
    installation_type="Server",
    product_type="ServerNT",
    architecture="AMD64",
)
SERVER_2019 = OSFacts(
    product_name="Windows Server 2019 Datacenter",
    build=17763,
    installation_type="Server",
    product_type="ServerNT",
    architecture="AMD64",
)
CLIENT_10 = OSFacts(
    product_name="Windows 10 Enterprise",
    build=19045,
    installation_type="Client",
    product_type="WinNT",
    architecture="AMD64",
)

SRV = r"Windows\System32\drivers\srv.sys"
SRV2 = r"Windows\System32\drivers\srv2.sys"
CACHE = r"Microsoft\ServerManager\ServicingStorage\ServerComponentCache"
SQL = r"Microsoft\Microsoft SQL Server\Instance Names"
UNINSTALL = r"Microsoft\Windows\CurrentVersion\Uninstall"
SERVICES = r"ControlSet001\Services"


def facts(
    *,
    os: OSFacts | None = SERVER_2016,
    virtual_size: int = 127 * GiB,
    fmt: str = "vhd",
    partitions: list[PartitionFacts] | None = None,
    extra: Mapping[str, Any] | None = None,
    bitlocker: bool = False,
    sysprep: SysprepFacts | None = None,
    **container_kw: Any,
) -> ImageFacts:
    cont: ContainerFacts = container(virtual_size=virtual_size, format=fmt, **container_kw)
    return ImageFacts(
        source=cont.path,
        container=cont,
        partition_style="gpt",
        partitions=gpt_partitions() if partitions is None else partitions,
        windows_partition=2,
        generation=2,
        os=os,
        bitlocker=bitlocker,
        extra=dict(extra or {}),
        sysprep=sysprep,
    )


def context(
    *,
    system: Mapping[str, Mapping[str, Any] | None] | None = None,
    software: Mapping[str, Mapping[str, Any] | None] | None = None,
    drop: Iterable[str] = (),
    files: Mapping[str, Any] | None = None,
    image: ImageFacts | None = None,
    role: str | None = None,
    **facts_kw: Any,
) -> AuditContext:
    """The compliant hives of guestkit with ``system`` / ``software`` layered on (``None`` deletes), minus ``drop``."""
    view = build_view({"SYSTEM": dict(system or {}), "SOFTWARE": dict(software or {})}, drop)
    return AuditContext(
        registry=view,
        facts=image or facts(**facts_kw),
        profile=PROFILE,
        options=AuditOptions(role=role),
        files=None if files is None else FakeFiles(files),
    )


def run(rule_id: str, ctx: AuditContext) -> Result:
    """Run one rule the way an audit does (signals become not applicable / not checked)."""
    results = [r for r in audit_context(ctx, PROFILE, select=[rule_id], today=TODAY) if r.rule_id == rule_id]
    assert len(results) == 1, f"{rule_id} did not run under {PROFILE}"
    return results[0]


def run_vm(rule_id: str, data_disks: int) -> Result:
    """Run a cross-disk rule on an OS disk with ``data_disks`` data disks of 1 GiB."""
    os_facts = facts()
    disks = [DiskInfo("os", "os", os_facts)]
    for n in range(1, data_disks + 1):
        disks.append(DiskInfo(f"data{n}:d{n}.vhd", "data", facts(os=None, virtual_size=GiB, partitions=[])))
    ctx = VMContext(registry=build_view(), facts=os_facts, profile=PROFILE, disks=tuple(disks))
    results = [r for r in audit_vm_context(ctx, PROFILE, select=[rule_id], today=TODAY) if r.rule_id == rule_id]
    assert len(results) == 1
    return results[0]
