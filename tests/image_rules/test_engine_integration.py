"""The image rules run through the engine on a fully prepared and on an unprepared image (built in memory)."""

from __future__ import annotations

from typing import Any

import pytest

from azvhdaudit.bcd import decode_bcd
from azvhdaudit.engine import audit_context
from azvhdaudit.report import Status
from azvhdaudit.rules.base import all_rules

from .helpers import (
    CCS,
    FakeFiles,
    MakeCtx,
    build_bcd,
    good_bcd_objects,
    image_facts,
    layered,
    software_tree,
    system_tree,
)

MODULES = ("disk", "os", "bcd", "sysprep", "updates", "agent")
MINE = {r.id for r in all_rules() if getattr(r._check, "__module__", "").rsplit(".", 1)[-1] in MODULES}

PREPARED_SOFTWARE = layered(
    software_tree(17763),
    {
        r"Microsoft\Windows\CurrentVersion\Setup\State": {"ImageState": "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"},
    },
)
PREPARED_SYSTEM = layered(
    system_tree(),
    {
        rf"{CCS}\Services\WindowsAzureGuestAgent": {"Start": 2},
        rf"{CCS}\Services\RdAgent": {"Start": 2},
        rf"{CCS}\Control\Session Manager": {"BootExecute": ["autocheck autochk *"]},
        "Setup": {"SetupType": 2, "CmdLine": "oobe\\windeploy.exe"},
    },
)


def results_by_id(ctx: Any, profile: str = "azure") -> dict[str, Any]:
    return {r.rule_id: r for r in audit_context(ctx, profile) if r.rule_id in MINE}


def test_prepared_image_has_no_problem(make_ctx: MakeCtx) -> None:
    ctx = make_ctx(
        facts=image_facts("gpt", os=None),
        hives={"SOFTWARE": PREPARED_SOFTWARE, "SYSTEM": PREPARED_SYSTEM},
        files=FakeFiles({r"Windows\System32\Sysprep\Sysprep_succeeded.tag": b""}),
        bcd=decode_bcd(build_bcd(good_bcd_objects())),
        image_type="generalized",
    )
    results = results_by_id(ctx)
    problems = {i: (r.status.value, r.message) for i, r in results.items() if r.status.is_problem}
    assert not problems
    assert results["sysprep.state"].status == Status.PASS
    assert results["updates.min_file_versions"].status == Status.NOT_APPLICABLE  # 17763 has no column
    assert results["os.hyperv_integration_components"].status == Status.NOT_APPLICABLE
    assert "disk.data_max_size" not in results  # a data-disk rule


def test_unprepared_image(make_ctx: MakeCtx) -> None:
    objects = good_bcd_objects()
    objects["{11111111-2222-3333-4444-555555555555}"][1].pop(0x250000E0)
    facts = image_facts("mbr", os=None)
    ctx = make_ctx(
        facts=facts,
        hives={"SOFTWARE": software_tree(7601, ubr=None), "SYSTEM": system_tree()},
        files=FakeFiles({}),
        bcd=decode_bcd(build_bcd(objects)),
        image_type="generalized",
    )
    results = results_by_id(ctx)
    assert results["bcd.default_bootstatuspolicy"].status == Status.FAIL
    assert results["bcd.default_device"].status == Status.FAIL  # GPT device blob on an MBR disk
    assert results["sysprep.state"].status == Status.NOT_CHECKED  # no evidence at all
    assert results["updates.min_file_versions"].status == Status.NOT_CHECKED  # no binaries readable
    assert results["agent.installed"].status == Status.WARNING
    assert not [r for r in results.values() if r.status == Status.ERROR]


@pytest.mark.parametrize("profile", ["azure", "azure-2017"])
def test_no_rule_errors_on_an_empty_context(make_ctx: MakeCtx, profile: str) -> None:
    # nothing readable at all: every image rule must answer, none may crash or pass on no evidence
    facts = image_facts(
        "gpt", os=None, windows_partition=None, boot_partition=None, bcd_path=None, hiberfil_present=None
    )
    ctx = make_ctx(facts=facts, hives={}, files=None)
    results = results_by_id(ctx, profile)
    assert not [(i, r.message) for i, r in results.items() if r.status == Status.ERROR]
    evidence_rules = [i for i in results if i.split(".")[0] in ("bcd", "sysprep", "updates", "agent")]
    passed = [i for i in evidence_rules if results[i].status == Status.PASS]
    assert not passed, passed
