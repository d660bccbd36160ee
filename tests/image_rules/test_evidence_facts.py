"""Evidence of the OS, update and agent rules names the value that was read, as it is stored."""

from __future__ import annotations

from typing import Any

from azvhdaudit.report import Status

from .helpers import CCS, CV, FakeFiles, MakeCtx, image_facts, layered, run, software_tree, system_tree

SESSION_MANAGER = rf"{CCS}\Control\Session Manager"
CBS = r"Microsoft\Windows\CurrentVersion\Component Based Servicing"


def _ctx(make_ctx: MakeCtx, software: dict[str, Any] | None = None, system: dict[str, Any] | None = None) -> Any:
    return make_ctx(
        facts=image_facts("mbr", os=None),
        hives={"SOFTWARE": software or software_tree(14393, ubr=2273), "SYSTEM": system or system_tree()},
        files=FakeFiles({}),
    )


def test_build_evidence_names_current_build_number_when_it_is_the_source(make_ctx: MakeCtx) -> None:
    software = software_tree(16299, ubr=431)
    del software[CV]["CurrentBuild"]
    out = run("os.min_version", _ctx(make_ctx, software))
    assert out.status is Status.PASS and out.actual == 16299
    (ev,) = out.evidence
    assert (ev.value_name, ev.type, ev.actual, ev.present) == ("CurrentBuildNumber", "REG_SZ", "16299", True)


def test_build_evidence_is_the_stored_current_build(make_ctx: MakeCtx) -> None:
    (ev,) = run("os.min_version", _ctx(make_ctx)).evidence
    assert (ev.value_name, ev.type, ev.actual) == ("CurrentBuild", "REG_SZ", "14393")


def test_ubr_evidence_is_the_stored_dword(make_ctx: MakeCtx) -> None:
    out = run("updates.ms17_010", _ctx(make_ctx))
    ubr = next(ev for ev in out.evidence if ev.value_name == "UBR")
    assert (ubr.type, ubr.actual) == ("REG_DWORD", 2273)


def test_pending_reboot_evidence_is_the_key_that_exists(make_ctx: MakeCtx) -> None:
    software = layered(software_tree(14393, ubr=2273), {rf"{CBS}\RebootPending": {}})
    out = run("updates.no_pending_reboot", _ctx(make_ctx, software))
    assert out.status is Status.FAIL
    (ev,) = [e for e in out.evidence if e.key.endswith("RebootPending")]
    assert ev.present and ev.value_name is None and ev.hive == "SOFTWARE" and ev.actual is None
    assert ev.note and "(none)" not in ev.note


def test_pending_file_renames_counted_in_operations(make_ctx: MakeCtx) -> None:
    # two operations: a delete (empty destination) and a rename ("!" = replace an existing file)
    renames = ["\\??\\C:\\old.dll", "", "\\??\\C:\\new.tmp", "!\\??\\C:\\new.dll"]
    system = layered(system_tree(), {SESSION_MANAGER: {"PendingFileRenameOperations": renames}})
    out = run("updates.no_pending_reboot", _ctx(make_ctx, system=system))
    assert out.status is Status.FAIL
    assert "holds 2 file operation(s)" in out.message, out.message
    ev = next(e for e in out.evidence if e.value_name == "PendingFileRenameOperations")
    assert ev.note == "2 operation(s): 1 rename(s), 1 delete(s)" and ev.actual == renames


def test_agent_service_key_without_start_is_not_a_present_value(make_ctx: MakeCtx) -> None:
    system = layered(system_tree(), {rf"{CCS}\Services\WindowsAzureGuestAgent": {"ImagePath": "C:\\x.exe"}})
    out = run("agent.installed", _ctx(make_ctx, system=system))
    ev = next(e for e in out.evidence if "WindowsAzureGuestAgent" in e.key)
    assert ev.value_name == "Start" and ev.present is False and ev.actual is None
    assert "without a Start value" in ev.note


def test_network_filters_summary_is_derived_key_evidence(make_ctx: MakeCtx) -> None:
    system = layered(
        system_tree(),
        {
            rf"{CCS}\Control\Network\{{4D36E974-E325-11CE-BFC1-08002BE10318}}\{{0001}}": {
                "ComponentId": "acme_filter",
                "Description": "Acme filter",
            },
        },
    )
    out = run("os.tdi_filters", _ctx(make_ctx, system=system))
    (ev,) = out.evidence
    assert ev.value_name is None and ev.derived and ev.present
    assert ev.actual == out.actual and ev.type is None and ev.raw is None
