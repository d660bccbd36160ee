"""The rule catalogue: importing this package registers every rule module.

References: one module per area of "Prepare a Windows VHD or VHDX to upload to Azure", and one per Azure
platform requirement since 2022 (Secure Boot, driver signatures, NVMe, Azure Boost networking; see
:mod:`azvhdaudit.rules.base` for what a rule is). The list is fixed; a module file that is not
part of this installation is skipped, any other import error propagates.
"""

from __future__ import annotations

import logging

from azvhdaudit.rules.base import AuditContext, AuditOptions, Rule, RuleMeta, all_rules, rule

__all__ = ["MODULES", "AuditContext", "AuditOptions", "Rule", "RuleMeta", "all_rules", "rule", "loaded_modules"]

log = logging.getLogger(__name__)

#: every rule module, in report order
MODULES: tuple[str, ...] = (
    # image level
    "disk",
    "os",
    "bcd",
    "sysprep",
    "updates",
    "agent",
    # guest configuration
    "rdp",
    "firewall",
    "winrm",
    "services",
    "time",
    "power",
    "storage",
    "network",
    "environment",
    "crashdump",
    "pagefile",
    "manual",
    # Azure platform requirements since 2022 (profile "azure"; required or advice by the target)
    "secureboot",
    "signing",
    "nvme",
    "platform_net",
    # Azure Marketplace VM certification (profile "azure-marketplace")
    "marketplace",
    # across the VM's disks
    "vm",
)

_LOADED: list[str] = []


def _load() -> None:
    for name in MODULES:
        full = f"{__name__}.{name}"
        # an import statement's machinery (not importlib.import_module), so that ``python -X importtime`` lists
        # each rule module with its own time instead of adding them all to this package's
        try:
            __import__(full)
        except ModuleNotFoundError as err:
            # Only a module whose file is absent is skipped; an error inside a module (a module it imports
            # missing included) is never swallowed.
            if err.name != full:
                raise
            log.debug("rule module %s is not present; skipped", full)
            continue
        _LOADED.append(name)


def loaded_modules() -> list[str]:
    """The rule modules this installation has (the fixed list minus absent files)."""
    return list(_LOADED)


_load()
