"""The image-level rules: one id per check of the doc (metadata and cases: tests/catalogue/test_rule_catalogue.py).

The doc: "Prepare a Windows VHD or VHDX to upload to Azure"
(https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image, ms.date 2022-08-04;
the 2017 text: MicrosoftDocs/azure-docs articles/virtual-machines/windows/prepare-for-upload-vhd-image.md,
ms.date 2017-08-01).
"""

from __future__ import annotations

from pathlib import Path

from azvhdaudit.rules.base import all_rules

MODULES = ("disk", "os", "bcd", "sysprep", "updates", "agent")
HERE = Path(__file__).resolve().parent

MINE = [r for r in all_rules() if getattr(r._check, "__module__", "").rsplit(".", 1)[-1] in MODULES]

#: the ids of the doc's checks these modules implement
CATALOGUE_IDS = {
    "disk.container_format",
    "disk.vhd_fixed",
    "disk.vhd_footer_valid",
    "disk.size_aligned_1mib",
    "disk.os_max_size",
    "disk.data_max_size",
    "disk.generation",
    "disk.boot_files_present",
    "disk.os_volume_not_bitlocker",
    "disk.ntfs_clean",
    "disk.vhdx_logical_sector_512",
    "os.identify",
    "os.architecture_64bit",
    "os.x86_specialized_only",
    "os.min_version",
    "os.gen2_prerequisites",
    "os.hyperv_integration_components",
    "os.domain_controller",
    "os.third_party_virtualization_drivers",
    "os.tdi_filters",
    "bcd.bootmgr_integrityservices",
    "bcd.default_device",
    "bcd.default_integrityservices",
    "bcd.default_recovery_disabled",
    "bcd.default_osdevice",
    "bcd.default_bootstatuspolicy",
    "bcd.bootmgr_displaybootmenu",
    "bcd.bootmgr_timeout",
    "bcd.bootmgr_bootems",
    "bcd.default_ems",
    "bcd.emssettings",
    "bcd.store_present",
    "updates.min_file_versions",
    "updates.ms17_010",
    "updates.cve_2018_0886",
    "updates.no_pending_reboot",
    "sysprep.state",
    "sysprep.oobe_shutdown_not_audit",
    "sysprep.no_custom_unattend",
    "sysprep.panther_deleted",
    "sysprep.extensions_removed",
    "sysprep.role_supported",
    "agent.installed",
    "agent.script_blockers",
}


def test_catalogue_ids_implemented() -> None:
    ids = {r.id for r in MINE}
    assert CATALOGUE_IDS <= ids, sorted(CATALOGUE_IDS - ids)
