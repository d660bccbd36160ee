"""The ``info`` text and the ``rules`` table, byte for byte as the command line has always printed them."""

from __future__ import annotations

import io
from typing import Any

import pytest

from azvhdaudit import cli
from azvhdaudit.render.info import human_size, render_info
from azvhdaudit.render.rules import render_rules

ROWS: list[dict[str, Any]] = [
    {
        "id": "rdp.port",
        "title": "RDP listens on 3389",
        "area": "rdp",
        "severity": "required",
        "baselines": ["azure-2022", "azure-2017"],
        "source": "Configure Remote Desktop | port",
    },
    {"id": "x", "title": "T", "area": "a", "severity": "advisory", "baselines": [], "source": None},
]

DISK: dict[str, Any] = {
    "source": "os.vhd",
    "role": "os",
    "drive_letters": ["C:"],
    "facts": {
        "container": {
            "format": "vhd",
            "subtype": "fixed",
            "virtual_size": 512,
            "file_size": 3 * 1024**3,
            "logical_sector_size": 512,
            "physical_sector_size": 4096,
            "parents": [{"path": "base.vhd", "format": "vhd", "linkage_matches": False}],
        },
        "partition_style": "mbr",
        "partitions": [
            {
                "index": 0,
                "type_name": "NTFS/exFAT",
                "size": 1536 * 1024,
                "offset": 1048576,
                "filesystem": "ntfs",
                "encrypted": True,
                "ntfs_dirty": True,
            }
        ],
        "windows_partition": 0,
        "boot_partition": 0,
        "generation": 1,
        "bcd_path": "Boot\\BCD",
        "os": {"name": "Windows Server 2022", "build": 20348},
        "current_control_set": 2,
        "default_control_set": None,
    },
    "hive_states": {"SYSTEM": {"dirty": False, "replayed": False, "note": "read"}},
    "hives_unavailable": {},
    "bcd": {
        "objects": 3,
        "bootmgr": {
            "guid": "{9dea862c-5cdd-4e70-acc1-f32b344d4795}",
            "elements": {"default": {"value": {"description": "Windows"}}, "timeout": {"value": 30}},
        },
        "default": None,
    },
}

INFO_TEXT = """\
os.vhd
  role         OS disk, drive letters C:
  container    VHD fixed, virtual 512 B, file 3.0 GiB, sectors 512/4096
  parent       base.vhd (vhd, LINKAGE MISMATCH)
  partitions   mbr
    #0  NTFS/exFAT              1.5 MiB  at      1048576  ntfs      Windows, boot, ENCRYPTED, NTFS dirty
  generation   1
  boot store   Boot\\BCD
  Windows      Windows Server 2022, build 20348
  control set  current ControlSet002, default ?
  hive         SYSTEM: clean — read
  BCD          3 objects
    {bootmgr} {9dea862c-5cdd-4e70-acc1-f32b344d4795}
      default                  Windows
      timeout                  30

drive letters (SYSTEM\\MountedDevices of the OS disk)
  C:  os partition #0
  D:  data1:d.vhd partition #1  (Azure's temporary disk takes D:)
  E:  a volume on none of these disks
"""


def test_info_text_byte_for_byte() -> None:
    letters = {
        "C:": {"disk": "os", "partition": 0},
        "D:": {"disk": "data1:d.vhd", "partition": 1},
        "E:": {"disk": None},
    }
    assert render_info([DISK], letters, with_data_disks=True) == INFO_TEXT
    unread = render_info([DISK], None, with_data_disks=True)
    assert unread.endswith("\ndrive letters: the OS disk's SYSTEM hive could not be read\n")
    assert render_info([DISK], None, with_data_disks=False) == INFO_TEXT.split("\n\n")[0] + "\n"


@pytest.mark.parametrize(
    ("size", "text"), [(None, "?"), (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (5 * 1024**5, "5120.0 TiB")]
)
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text


#: every column as wide as its widest cell: the titles and sources line up
RULES_TEXT = """\
ID        AREA  SEVERITY  BASELINES              TITLE / SOURCE
rdp.port  rdp   required  azure-2022,azure-2017  RDP listens on 3389
                                                 § Configure Remote Desktop | port
x         a     advisory                         T
2 rules in profile azure
"""

RULES_MARKDOWN = """\
| Id | Area | Severity | Baselines | Title | Source |
|---|---|---|---|---|---|
| `rdp.port` | rdp | required | azure-2022, azure-2017 | RDP listens on 3389 | Configure Remote Desktop \\| port |
| `x` | a | advisory |  | T | None |
"""


@pytest.mark.parametrize(("fmt", "expected"), [("text", RULES_TEXT), ("markdown", RULES_MARKDOWN)])
def test_the_rules_table_byte_for_byte(monkeypatch: pytest.MonkeyPatch, fmt: str, expected: str) -> None:
    assert render_rules(ROWS, fmt, profile="azure") == expected
    monkeypatch.setattr(cli, "_rule_rows", lambda profile: ROWS)
    out = io.StringIO()
    assert cli.main(["rules", "--format", fmt, "--profile", "azure"], stdout=out, stderr=io.StringIO()) == 0
    assert out.getvalue() == expected


def test_the_rules_footer_without_a_profile() -> None:
    assert render_rules([], "text") == "ID  AREA  SEVERITY  BASELINES  TITLE / SOURCE\n0 rules\n"
