"""The guest-configuration rules (metadata and cases: tests/catalogue/test_rule_catalogue.py): every check of
these areas that "Prepare a Windows VHD or VHDX to upload to Azure" asks for (https://learn.microsoft.com/azure/
virtual-machines/windows/prepare-for-upload-vhd-image, ms.date 2022-08-04; the 2017 text: MicrosoftDocs/azure-docs
articles/virtual-machines/windows/prepare-for-upload-vhd-image.md, ms.date 2017-08-01) implemented (or excepted
with a reason)."""

from __future__ import annotations

import importlib

import pytest

from azvhdaudit.engine import catalogue
from azvhdaudit.rules.manual import STEPS

from .guestkit import Case

TABLE_MODULES = (
    "test_rdp",
    "test_firewall",
    "test_winrm",
    "test_services",
    "test_config",
    "test_network",
    "test_manual",
)

#: the checks of these areas that "Prepare a Windows VHD or VHDX to upload to Azure" (ms.date 2022-08-04 and
#: 2017-08-01) asks for, one id each
CATALOGUE_IDS = (
    "os.temp_tmp_default",
    "os.dvd_rom_enabled",
    "rdp.enabled",
    "rdp.enabled_policy",
    "rdp.port",
    "rdp.lan_adapter",
    "rdp.nla",
    "rdp.nla_policy",
    "rdp.security_layer",
    "rdp.sec_protocol_negotiation",
    "rdp.keepalive_policy",
    "rdp.keepalive_timeout",
    "rdp.autoreconnect_policy",
    "rdp.inherit_reconnect_same",
    "rdp.reconnect_same",
    "rdp.max_instance_count",
    "rdp.max_instance_policy",
    "rdp.no_custom_certificate",
    "rdp.user_right_network_logon",
    "rdp.user_right_allow_rds",
    "rdp.user_right_no_deny",
    "rdp.builtin_admin_known",
    "firewall.profiles_enabled",
    "firewall.profiles_policy",
    "firewall.rdp_rules_enabled",
    "firewall.rdp_policy",
    "firewall.icmp_echo_enabled",
    "firewall.icmp_policy",
    "firewall.azure_platform_rules",
    "firewall.no_block_wireserver",
    "winrm.service_auto",
    "winrm.listener_http",
    "winrm.firewall_http_in",
    "services.bfe",
    "services.dhcp",
    "services.dnscache",
    "services.ikeext",
    "services.iphlpsvc",
    "services.nsi",
    "services.mpssvc",
    "services.remoteregistry",
    "services.netlogon",
    "services.netman",
    "services.termservice",
    "services.sacsvr",
    "time.utc",
    "time.w32time_auto",
    "power.high_performance",
    "power.display_idle_never",
    "san.policy_onlineall",
    "network.no_persistent_routes",
    "network.winhttp_proxy",
    "crashdump.kernel_dump",
    "crashdump.dump_file",
    "crashdump.nmi",
    "crashdump.autoreboot",
    "crashdump.wer_localdumps",
    "crashdump.wersvc_manual",
    "pagefile.temp_drive",
)
#: checks of the doc deliberately not implemented, with the reason (none at present)
EXCEPTIONS: dict[str, str] = {}
#: the doc's steps that need a running VM and the manual rule reporting each
MANUAL_STEPS = {
    "sfc.exe /scannow": "manual.sfc",
    "winmgmt /verifyrepository": "manual.wmi_repository",
    "netstat -anob": "manual.port_3389_free",
    "Restart the VM and test RDP": "manual.rdp_restart_test",
    "Built-in admin password": "manual.admin_password",
    "DSRM password": "manual.dsrm_password",
    "DISM /optimize-image /boot": "manual.dism_optimize",
    "Back up the VM": "manual.backup",
}


def _cases() -> list[Case]:
    cases: list[Case] = []
    for name in TABLE_MODULES:
        cases.extend(importlib.import_module(f"{__package__}.{name}").CASES)
    return cases


def test_every_catalogue_check_implemented_or_excepted() -> None:
    have = {r.id for r in catalogue()}
    missing = [i for i in CATALOGUE_IDS if i not in have and i not in EXCEPTIONS]
    assert not missing
    assert not set(EXCEPTIONS) & have, "an excepted check is implemented: drop it from EXCEPTIONS"


def test_cases_name_known_rules() -> None:
    known = {r.id for r in catalogue()}
    assert {c.rule for c in _cases()} <= known


def test_not_offline_evaluable_steps_are_manual_rules() -> None:
    ids = {s.id for s in STEPS}
    assert set(MANUAL_STEPS.values()) == ids
    assert len(STEPS) == 8


@pytest.mark.parametrize(("rule_id", "cites"), [("rdp.security_layer", "2017"), ("crashdump.nmi", "learn.microsoft")])
def test_single_baseline_rows_cite_their_document_only(rule_id: str, cites: str) -> None:
    [rule] = [r for r in catalogue() if r.id == rule_id]
    assert len(rule.meta.references) == 1 and cites in rule.meta.references[0]
