"""The Sysprep, pending-restart and VM Agent facts as typed values on ``ImageFacts``: read from the sample images,
``None`` where nothing could be read, and reported under ``extra`` exactly as the plain dicts they replace."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from azvhdaudit.facts import (
    AgentFacts,
    AgentService,
    ContainerFacts,
    ImageFacts,
    PendingRebootFacts,
    SysprepFacts,
)
from azvhdaudit.image import open_image
from azvhdaudit.osinfo import agent_facts, pending_reboot_facts, sysprep_facts
from azvhdaudit.registry.model import RegistryView


def _bare(**kw: Any) -> ImageFacts:
    container = ContainerFacts(path="x", format="raw", subtype=None, virtual_size=0, file_size=0)
    return ImageFacts(source="x", container=container, **kw)


def test_the_compliant_sample(sample_path: Callable[[str], Path]) -> None:
    with open_image(sample_path("gen1-azure.vhd")) as image:
        facts = image.facts
    assert isinstance(facts.sysprep, SysprepFacts) and isinstance(facts.agent, AgentFacts)
    assert isinstance(facts.pending_reboot, PendingRebootFacts)
    assert facts.sysprep.state == "generalized"
    assert facts.sysprep.image_state == facts.sysprep.state_ini == "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE"
    assert (facts.sysprep.setup_type, facts.sysprep.sysprep_succeeded_tag, facts.sysprep.panther) == (2, True, None)
    assert facts.sysprep.missing_hives == ()
    assert facts.pending_reboot.pending is False and facts.pending_reboot.reasons == ()
    rd = facts.agent.services["RdAgent"]
    assert rd is not None and rd.start == 2 and rd.image_path == r"C:\WindowsAzure\Packages\WaAppAgent.exe"
    assert facts.agent.version == "2.7.41491.1010" and facts.agent.uninstall_version is None
    # the report's extra: the same keys, in the order the data path records them, as JSON
    extra = facts.to_dict()["extra"]
    assert list(extra) == ["kernel", "sysprep", "pending_reboot", "agent", "mounted_c"]
    assert extra["sysprep"] == facts.sysprep.to_dict() and extra["agent"]["services"]["RdAgent"]["present"] is True
    assert set(facts.extra) == {"kernel", "mounted_c"}
    json.dumps(extra)


def test_nothing_readable_is_none_not_a_guess() -> None:
    sysprep = sysprep_facts(RegistryView(), None)
    assert sysprep == SysprepFacts(state="unknown", missing_hives=("SOFTWARE", "SYSTEM"))
    assert sysprep.panther is None and sysprep.sysprep_succeeded_tag is None
    pending = pending_reboot_facts(RegistryView(), None)
    assert pending == PendingRebootFacts()
    assert pending.pending is None and pending.pending_file_rename_operations is None
    agent = agent_facts(RegistryView(), None)
    assert agent.folder is None and agent.version is None
    assert dict(agent.services) == dict.fromkeys(agent.services) and len(agent.services) == 4


def test_the_facts_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SysprepFacts().state = "generalized"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        AgentService(2, "x").start = 3  # type: ignore[misc]


def test_to_dict_is_the_plain_dict_of_before() -> None:
    sysprep = SysprepFacts(state="specialized", panther=("setupact.log",), evidence=("a",), missing_hives=("SYSTEM",))
    assert sysprep.to_dict() == {
        "state": "specialized",
        "image_state": None,
        "state_ini": None,
        "setup_type": None,
        "cmdline": None,
        "generalization_state": None,
        "sysprep_succeeded_tag": None,
        "panther": ["setupact.log"],
        "unattend_files": [],
        "unattend_value": None,
        "evidence": ["a"],
        "missing_hives": ["SYSTEM"],
    }
    pending = PendingRebootFacts(pending=True, reasons=("r",), cbs_packages_pending=("p",))
    assert pending.to_dict() == {
        "pending": True,
        "reasons": ["r"],
        "cbs_reboot_pending": None,
        "cbs_packages_pending": ["p"],
        "wu_reboot_required": None,
        "pending_file_rename_operations": None,
        "pending_xml": None,
    }
    agent = AgentFacts(
        services={"RdAgent": AgentService(2, None), "WindowsAzureGuestAgent": None},
        guest_agent_versions=("2.7.1",),
        version="2.7.1",
    )
    assert agent.to_dict() == {
        "services": {"RdAgent": {"present": True, "start": 2, "image_path": None}, "WindowsAzureGuestAgent": None},
        "folder": None,
        "guest_agent_versions": ["2.7.1"],
        "version": "2.7.1",
        "uninstall_version": None,
        "plugins": None,
    }


def test_extra_keeps_its_order_with_facts_missing_or_added() -> None:
    facts = _bare(agent=AgentFacts(), extra={"mounted_c": None, "kernel": {"machine": "AMD64"}, "io": {"requests": 1}})
    assert list(facts.to_dict()["extra"]) == ["kernel", "agent", "mounted_c", "io"]
    assert list(_bare().to_dict()["extra"]) == []
