"""Reports built for the capability tests: every deciding rule with a chosen verdict, and the facts they read."""

from __future__ import annotations

from typing import Any

from azvhdaudit.capabilities import ACCELERATED_NETWORKING_RULES, NVME_RULES, SECURITY_RULES
from azvhdaudit.report import Report, Result, Severity, Status

DECIDING = (
    *SECURITY_RULES,
    *NVME_RULES,
    *ACCELERATED_NETWORKING_RULES,
    "secureboot.uefica2023_servicing",
    "nvme.pagefile_not_on_temp_disk",
    "os.hyperv_drivers_enabled",
    "os.gen2_prerequisites",
    "os.architecture_64bit",
    "sysprep.oobe_shutdown_not_audit",
)


def _facts(
    generation: int | None = 2,
    state: str | None = "generalized",
    machine: str | None = "AMD64",
    bitlocker: bool = False,
) -> dict[str, Any]:
    return {
        "generation": generation,
        "partition_style": {1: "mbr", 2: "gpt"}.get(generation or 0),
        "bitlocker": bitlocker,
        "hiberfil_present": False,
        "os": {
            "product_name": "Windows Server 2022 Datacenter",
            "build": 20348,
            "edition_id": "ServerDatacenter",
            "installation_type": "Server",
            "architecture": "AMD64",
        },
        "container": {"format": "vhd", "subtype": "fixed", "file_size": 134218240, "virtual_size": 134217728},
        "extra": {
            "sysprep": {"state": state, "evidence": [f"ImageState = {state}"]},
            "kernel": {
                "path": r"Windows\System32\ntoskrnl.exe",
                "machine": machine,
                "error": None if machine else "absent",
            },
        },
    }


def _report(
    statuses: dict[str, Status] | None = None,
    *,
    default: Status = Status.PASS,
    omit: tuple[str, ...] = (),
    **facts: Any,
) -> Report:
    statuses = statuses or {}
    results = [
        Result(
            rule_id,
            rule_id,
            rule_id.split(".")[0],
            Severity.REQUIRED,
            statuses.get(rule_id, default),
            f"{rule_id} said {statuses.get(rule_id, default).value}",
            reason=f"{rule_id}: why",
        )
        for rule_id in DECIDING
        if rule_id not in omit
    ]
    return Report(source="built.vhd", profile="azure", results=results, facts=_facts(**facts))
