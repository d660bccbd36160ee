"""``azvhdaudit info`` as text: what the image holds, from the data ``info --json`` prints.

A pure function of that data (see ``azvhdaudit.cli``'s info command): the container, the partitions, the
Windows installation, the hives' states and the boot store, and with data disks, the drive letters the OS
disk's ``SYSTEM\\MountedDevices`` gives them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from azvhdaudit.render._common import terminal_safe

_ROLES = {"os": "OS disk", "data": "data disk", None: "unknown (no Windows: a data disk?)"}


def human_size(size: int | None) -> str:
    """``12.0 GiB``, ``512 B``, ``?`` for an unknown size."""
    if size is None:
        return "?"
    value: float = size
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{value} B"
        value = value / 1024
    return str(value)


def render_disk(data: Mapping[str, Any]) -> str:
    """One disk: its source on the first line, then one indented line per thing found."""
    f = data["facts"]
    c = f["container"]
    lines = [data["source"]]
    fmt = " ".join(str(x) for x in (c["format"].upper(), c.get("subtype")) if x)
    lines.append(
        f"  container    {fmt}, virtual {human_size(c['virtual_size'])}, file {human_size(c['file_size'])}, "
        f"sectors {c.get('logical_sector_size')}/{c.get('physical_sector_size')}"
    )
    for parent in c.get("parents") or []:
        match = {True: "linkage ok", False: "LINKAGE MISMATCH", None: "linkage unknown"}[parent.get("linkage_matches")]
        lines.append(f"  parent       {parent['path']} ({parent['format']}, {match})")
    for warning in c.get("warnings") or []:
        lines.append(f"  warning      {warning}")
    lines.append(f"  partitions   {f.get('partition_style') or '?'}")
    for p in f.get("partitions") or []:
        marks = []
        if p["index"] == f.get("windows_partition"):
            marks.append("Windows")
        if p["index"] == f.get("boot_partition"):
            marks.append("boot")
        if p.get("encrypted"):
            marks.append("ENCRYPTED")
        if p.get("ntfs_dirty"):
            marks.append("NTFS dirty")
        lines.append(
            f"    #{p['index']}  {p['type_name']:<20} {human_size(p['size']):>10}  at {p['offset']:>12}  "
            f"{p.get('filesystem') or '?':<9} {', '.join(marks)}".rstrip()
        )
    if f.get("windows_partition") is None:
        lines.append("  Windows      no Windows volume found (a data disk?)")
    lines.append(f"  generation   {f.get('generation') or 'unknown'}")
    lines.append(f"  boot store   {f.get('bcd_path') or 'not found'}")
    os_facts = f.get("os") or {}
    if os_facts:
        build = os_facts.get("build")
        ubr = os_facts.get("ubr")
        lines.append(
            f"  Windows      {os_facts.get('name') or '?'}"
            + (f", build {build}" + (f".{ubr}" if ubr else "") if build else "")
            + (f", {os_facts['architecture']}" if os_facts.get("architecture") else "")
            + (f", {os_facts['installation_type']}" if os_facts.get("installation_type") else "")
        )
    if f.get("current_control_set") is not None:
        lines.append(
            f"  control set  current ControlSet{f['current_control_set']:03d}, default "
            + (f"ControlSet{f['default_control_set']:03d}" if f.get("default_control_set") is not None else "?")
        )
    for name, state in sorted(data["hive_states"].items()):
        flags = ("dirty" if state["dirty"] else "clean") + (", logs replayed" if state["replayed"] else "")
        note = f" — {state['note']}" if state.get("note") else ""
        lines.append(f"  hive         {name}: {flags}{note}")
    for name, why in sorted(data["hives_unavailable"].items()):
        lines.append(f"  hive         {name}: unavailable — {why}")
    bcd = data.get("bcd")
    if bcd:
        if "error" in bcd and len(bcd) == 1:
            lines.append(f"  BCD          unreadable: {bcd['error']}")
        else:
            lines.append(f"  BCD          {bcd.get('objects')} objects")
            for label in ("bootmgr", "default"):
                obj = bcd.get(label)
                if not obj or "elements" not in obj:
                    continue
                lines.append(f"    {{{label}}} {obj.get('guid')}")
                for name, element in obj["elements"].items():
                    value = element.get("value")
                    if isinstance(value, dict):
                        value = value.get("description") or value.get("error") or json.dumps(value)
                    lines.append(f"      {name:<24} {value}")
    return terminal_safe("\n".join(lines) + "\n")


def render_letters(letters: Mapping[str, Any]) -> str:
    """The drive letters the OS disk's SYSTEM hive records, and the disk and partition each names."""
    lines = ["drive letters (SYSTEM\\MountedDevices of the OS disk)"]
    if not letters:
        lines.append("  none recorded")
    for letter, where in sorted(letters.items()):
        disk = where.get("disk")
        target = f"{disk} partition #{where.get('partition')}" if disk else "a volume on none of these disks"
        temp = "  (Azure's temporary disk takes D:)" if letter == "D:" and disk else ""
        lines.append(f"  {letter}  {target}{temp}")
    return terminal_safe("\n".join(lines) + "\n")


def render_info(disks: Sequence[Mapping[str, Any]], letters: Mapping[str, Any] | None, *, with_data_disks: bool) -> str:
    """Every disk with its role line under its source; with data disks, the drive letters after them
    (``letters`` is ``None`` when the OS disk's SYSTEM hive could not be read)."""
    texts = []
    for entry in disks:
        role = _ROLES[entry["role"]]
        if entry.get("name"):
            role += f" ({entry['name']})"
        if entry.get("drive_letters"):
            role += ", drive letters " + ", ".join(entry["drive_letters"])
        head, _, rest = render_disk(entry).partition("\n")
        texts.append(f"{head}\n  role         {role}\n{rest}")
    if with_data_disks:
        texts.append(
            render_letters(letters)
            if letters is not None
            else "drive letters: the OS disk's SYSTEM hive could not be read\n"
        )
    return terminal_safe("\n".join(texts))
