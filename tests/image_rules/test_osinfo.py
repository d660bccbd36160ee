"""osinfo.image_extra_facts: what the data path stores in ImageFacts.extra."""

from __future__ import annotations

import json
import struct
from typing import Any

from azvhdaudit.osinfo import image_extra_facts, pending_reboot_facts
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView

from .helpers import FakeFiles, layered, software_tree, system_tree


def _as_reported(extra: dict[str, Any]) -> dict[str, Any]:
    """The facts as the report carries them: the typed ones through their ``to_dict()``."""
    return {name: fact.to_dict() if hasattr(fact, "to_dict") else fact for name, fact in extra.items()}


def view(**trees: dict) -> RegistryView:
    return RegistryView(hives={name: MemoryHive.build(name, tree) for name, tree in trees.items()})


def test_extra_facts_are_json_and_complete() -> None:
    reg = view(
        SOFTWARE=layered(
            software_tree(), {r"Microsoft\Windows\CurrentVersion\Setup\State": {"ImageState": "IMAGE_STATE_COMPLETE"}}
        ),
        SYSTEM=layered(system_tree(), {"MountedDevices": {"\\DosDevices\\C:": struct.pack("<IQ", 0x1234, 1048576)}}),
    )
    files = FakeFiles({r"Windows\Panther\setupact.log": b"x", r"WindowsAzure\GuestAgent_2.7.1.2_2024\x.exe": b"MZ"})
    extra = _as_reported(image_extra_facts(reg, files))
    json.dumps(extra)
    assert set(extra) == {"kernel", "sysprep", "pending_reboot", "agent", "mounted_c"}
    assert extra["kernel"]["machine"] is None and "does not exist" in extra["kernel"]["error"]
    assert extra["sysprep"]["state"] == "specialized" and extra["sysprep"]["panther"] == ["setupact.log"]
    assert extra["pending_reboot"]["pending"] is False
    assert extra["agent"]["guest_agent_versions"] == ["2.7.1.2"]
    assert extra["mounted_c"] == {"style": "mbr", "mbr_signature": 0x1234, "offset": 1048576}


def test_extra_facts_without_anything() -> None:
    extra = _as_reported(image_extra_facts(RegistryView(), None))
    json.dumps(extra)
    assert extra["sysprep"]["state"] == "unknown" and extra["pending_reboot"]["pending"] is None
    assert extra["mounted_c"] is None


def test_pending_reboot_ignores_empty_rename_entries() -> None:
    reg = view(
        SYSTEM=layered(
            system_tree(), {r"ControlSet001\Control\Session Manager": {"PendingFileRenameOperations": ["", ""]}}
        )
    )
    assert pending_reboot_facts(reg, FakeFiles()).pending is False
