"""Decode a Boot Configuration Data (BCD) store: objects, elements, inheritance and device blobs.

References:
- BCD WMI provider, "BCD classes" and ``BcdElementType`` / ``BcdObjectType`` enumerations
  (learn.microsoft.com/previous-versions/windows/desktop/bcd): element ids, their class / format / subtype
  bits, object types.
- ``bcdedit /? TYPES`` and ``bcdedit /? FORMATS``: the names bcdedit prints for elements and devices.
- ReactOS boot library ``boot/environ/include/bl.h`` (``BL_DEVICE_DESCRIPTOR``, ``BL_DEVICE_TYPE``,
  ``BL_LOCAL_DEVICE_TYPE``, ``BL_PARTITION_TYPE``) and ``bcd.h`` (``BCD_DEVICE_OPTION``: a GUID, the
  "associated entry", then the device descriptor; the element id enumerations).
- mistyprojects.co.uk "BCDEdit - Devices Partition - Data": the stored form of a ``partition=C:`` device.

A store is a registry hive: ``Objects\\{GUID}\\Description\\Type`` (REG_DWORD object type) and
``Objects\\{GUID}\\Elements\\<8 hex digits>\\Element`` (the element's data). The element id's bits 24-27 give
its format: 1 device (REG_BINARY), 2 string (REG_SZ), 3 object (REG_SZ "{guid}"), 4 object list
(REG_MULTI_SZ), 5 integer (REG_BINARY, little-endian, 8 bytes as bcdedit writes it, 1 to 8 as Windows reads it:
``System32\\config\\BCD-Template`` stores 1-byte integers), 6 boolean (REG_BINARY, 1 byte), 7 integer list
(REG_BINARY, n x 8 bytes). How Windows reads each format from the registry: ``BiConvertRegistryDataToElement``
(ReactOS ``boot/environ/lib/misc/bcd.c``, and the same checks in ntoskrnl): an integer is at most 8 bytes copied
into a zeroed 64-bit value; a boolean is exactly 1 byte, non-zero meaning yes; an integer list a non-zero
multiple of 8 bytes.

Device element layout (all little-endian), derived from the real UEFI store in ``tests/data/realdata/BCD``
and checked against the references above::

    0x00  GUID   additional options object (zero, or e.g. the ramdisk options object)
    0x10  u32    device type: 0 block I/O, 2 legacy partition, 3 serial, 4 UDP/PXE, 5 boot, 6 partition, 8 locate
    0x14  u32    flags
    0x18  u32    size of the descriptor, counted from 0x10
    0x1C  u32    reserved
    -- type 6 (partition): --
    0x20  16 B   GPT: partition GUID; MBR: partition start offset in bytes (u64) + 8 zero bytes
    0x30  u32    local device type (0 = hard disk)
    0x34  u32    partition style: 0 GPT, 1 MBR, 2 raw
    0x38  16 B   GPT: disk GUID; MBR: disk signature (u32) + 12 zero bytes
    -- type 0 (block I/O): --
    0x20  u32    local device type: 0 hard disk, 1 floppy, 2 CD-ROM, 3 ramdisk, 5 file, 6 VHD
    0x38  ...    ramdisk / file / VHD: a path descriptor (u32 version, u32 length, u32 path type), then the
                 parent device descriptor (without the leading GUID), then the UTF-16 file path

The real store shows both: ``{bootmgr}``'s device is partition type 6 with partition style 0 (GPT), partition
GUID and disk GUID; the WinRE loader's device is block type 0, local type 3 (ramdisk) whose parent is a type-6
partition and whose path is ``\\Recovery\\WindowsRE\\Winre.wim``.
"""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from azvhdaudit.bcd_elements import (
    ELEMENT_IDS,
    OBJECT_TYPES,
    element_format,
    element_name,
)
from azvhdaudit.errors import BCDError
from azvhdaudit.registry.model import Hive, RegKey, RegType, RegValue

__all__ = [
    "BOOTMGR",
    "EMSSETTINGS",
    "GLOBALSETTINGS",
    "BOOTLOADERSETTINGS",
    "WELL_KNOWN",
    "ELEMENT_IDS",
    "BCDDevice",
    "BCDElement",
    "BCDObject",
    "BCDStore",
    "decode_bcd",
    "decode_device",
    "element_name",
    "element_format",
    "format_value",
    "MAX_INHERIT_DEPTH",
]

log = logging.getLogger(__name__)

#: the deepest inherit chain :meth:`BCDStore.effective` follows (real stores go 3 deep:
#: loader -> {bootloadersettings} -> {globalsettings} -> {emssettings})
MAX_INHERIT_DEPTH = 32

BOOTMGR = "{9dea862c-5cdd-4e70-acc1-f32b344d4795}"
FWBOOTMGR = "{a5a30fa2-3d06-4e9f-b5f4-a01df9d1fcba}"
EMSSETTINGS = "{0ce4991b-e6b3-4b16-b23c-5e0d9250e5d9}"
GLOBALSETTINGS = "{7ea2e1ac-2e61-4728-aaa3-896d9d0a9f0e}"
BOOTLOADERSETTINGS = "{6efb52bf-1766-41db-a6b3-0ee5eff72bd7}"
#: {resumeloadersettings} as real stores and bcdedit have it; Microsoft's "BCD well-known GUIDs" list prints
#: "...-4a90-...", which no store uses
RESUMELOADERSETTINGS = "{1afa9c49-16ab-4a5c-901b-212802da9460}"
RESUMELOADERSETTINGS_DOC = "{1afa9c49-16ab-4a5c-4a90-212802da9460}"

#: well-known object GUIDs -> bcdedit alias
WELL_KNOWN: dict[str, str] = {
    BOOTMGR: "{bootmgr}",
    FWBOOTMGR: "{fwbootmgr}",
    EMSSETTINGS: "{emssettings}",
    GLOBALSETTINGS: "{globalsettings}",
    BOOTLOADERSETTINGS: "{bootloadersettings}",
    RESUMELOADERSETTINGS_DOC: "{resumeloadersettings}",
    RESUMELOADERSETTINGS: "{resumeloadersettings}",
    "{4636856e-540f-4170-a130-a84776f4c654}": "{dbgsettings}",
    "{7ff607e0-4395-11db-b0de-0800200c9a66}": "{hypervisorsettings}",
    "{5189b25c-5558-4bf2-bca4-289b11bd29e2}": "{badmemory}",
    "{b2721d73-1db4-4c62-bf78-c548a880142d}": "{memdiag}",
    "{466f5a88-0af2-4f76-9038-095b170dc21c}": "{ntldr}",
    "{ae5534e0-a924-466c-b836-758539a3ee3a}": "{ramdiskoptions}",
    "{1cae1eb7-a0df-4d4d-9851-4860e34ef535}": "{default}",
    "{fa926493-6f1c-4193-a414-58f0b2456d1e}": "{current}",
}
_ALIASES = {alias: guid for guid, alias in WELL_KNOWN.items() if alias not in ("{default}", "{current}")}


def _norm_guid(text: str) -> str:
    text = text.strip().lower()
    if not text.startswith("{"):
        text = "{" + text + "}"
    return text


def _guid_at(data: bytes, offset: int) -> str:
    return "{" + str(uuid.UUID(bytes_le=bytes(data[offset : offset + 16]))) + "}"


# --- device blobs -----------------------------------------------------------------------------

_DEVICE_TYPES = {
    0: "block",
    2: "legacy_partition",
    3: "serial",
    4: "udp",
    5: "boot",
    6: "partition",
    8: "locate",
}
_LOCAL_TYPES = {0: "disk", 1: "floppy", 2: "cdrom", 3: "ramdisk", 5: "file", 6: "vhd"}
_PARTITION_STYLES = {0: "gpt", 1: "mbr", 2: "raw"}


@dataclass(frozen=True)
class BCDDevice:
    """A decoded device element (``device``, ``osdevice`` ...)."""

    #: ``partition``, ``boot``, ``locate``, ``ramdisk``, ``file``, ``vhd``, ``disk``, ``legacy_partition``,
    #: ``serial``, ``udp``, ``floppy``, ``cdrom`` or ``unknown``
    kind: str
    type_code: int
    #: ``gpt``, ``mbr`` or ``raw`` (partition devices)
    partition_style: str | None = None
    #: MBR: the partition's start offset in bytes
    partition_offset: int | None = None
    #: GPT: the partition's GUID (lower case, no braces)
    partition_guid: str | None = None
    #: MBR: the disk signature
    mbr_signature: int | None = None
    #: GPT: the disk GUID (lower case, no braces)
    disk_guid: str | None = None
    #: ramdisk / file / VHD: the file's path on the parent device
    path: str | None = None
    parent: BCDDevice | None = None
    #: the additional-options object (``{ramdiskoptions}`` ...), if any
    options: str | None = None

    def describe(self) -> str:
        """A bcdedit-like description: ``partition (GPT disk ..., partition ...)``."""
        if self.kind == "partition":
            if self.partition_style == "mbr":
                sig = "?" if self.mbr_signature is None else f"0x{self.mbr_signature:08X}"
                return f"partition (MBR disk signature {sig}, partition offset {self.partition_offset})"
            if self.partition_style == "gpt":
                return f"partition (GPT disk {{{self.disk_guid}}}, partition {{{self.partition_guid}}})"
            return f"partition ({self.partition_style or 'unknown'} style)"
        if self.kind in ("ramdisk", "file", "vhd"):
            parent = self.parent.describe() if self.parent else "?"
            return f"{self.kind}=[{parent}]{self.path or ''}"
        return self.kind

    def __str__(self) -> str:
        return self.describe()

    def __repr__(self) -> str:
        return f"<BCDDevice {self.describe()}>"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "description": self.describe()}
        for name in (
            "partition_style",
            "partition_offset",
            "partition_guid",
            "mbr_signature",
            "disk_guid",
            "path",
            "options",
        ):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        if self.parent is not None:
            data["parent"] = self.parent.to_dict()
        return data


def _descriptor(data: bytes, at: int, where: str, depth: int = 0) -> BCDDevice:
    """Decode the device descriptor starting at ``at`` (its type field)."""
    if depth > 4:
        raise BCDError(f"{where}: device descriptors nested more than 4 deep")
    if len(data) < at + 16:
        raise BCDError(f"{where}: device descriptor at offset 0x{at:X} needs 16 bytes, {len(data) - at} left")
    dtype, _flags, size, _reserved = struct.unpack_from("<IIII", data, at)
    if size < 16 or at + size > len(data):
        raise BCDError(
            f"{where}: device descriptor at offset 0x{at:X} claims size 0x{size:X}, "
            f"the element holds {len(data) - at} bytes from there"
        )
    body = at + 16
    kind = _DEVICE_TYPES.get(dtype, "unknown")
    if dtype == 6:
        if size < 0x38:
            raise BCDError(f"{where}: partition device size 0x{size:X} < 0x38")
        local, style_code = struct.unpack_from("<II", data, body + 0x10)
        if local not in (0, 6):
            # the partition's disk is a hard disk (0) or a virtual disk (6); anything else means the
            # fields are not where this layout puts them
            raise BCDError(
                f"{where}: partition device with local device type {local} "
                f"({_LOCAL_TYPES.get(local, 'unknown')}) at offset 0x{body + 0x10:X}, 0 (hard disk) expected; "
                f"partition style {style_code} at 0x{body + 0x14:X}"
            )
        style = _PARTITION_STYLES.get(style_code, f"unknown({style_code})")
        if style == "gpt":
            return BCDDevice(
                kind="partition",
                type_code=dtype,
                partition_style="gpt",
                partition_guid=_guid_at(data, body)[1:-1],
                disk_guid=_guid_at(data, body + 0x18)[1:-1],
            )
        if style == "mbr":
            return BCDDevice(
                kind="partition",
                type_code=dtype,
                partition_style="mbr",
                partition_offset=struct.unpack_from("<Q", data, body)[0],
                mbr_signature=struct.unpack_from("<I", data, body + 0x18)[0],
            )
        return BCDDevice(kind="partition", type_code=dtype, partition_style=style)
    if dtype == 0 and size >= 20:
        local = struct.unpack_from("<I", data, body)[0]
        lkind = _LOCAL_TYPES.get(local, "unknown")
        if local in (3, 5, 6):
            # A path descriptor (version, length, path type) follows the 0x18-byte local device,
            # then the parent device descriptor, then the UTF-16 path.
            pd = body + 0x18
            if len(data) >= pd + 12 + 16:
                parent = _descriptor(data, pd + 12, where, depth + 1)
                psize = struct.unpack_from("<I", data, pd + 12 + 8)[0]
                raw_path = data[pd + 12 + psize : at + size]
                path = raw_path.decode("utf-16-le", errors="replace").split("\x00", 1)[0]
                return BCDDevice(kind=lkind, type_code=dtype, parent=parent, path=path or None)
            return BCDDevice(kind=lkind, type_code=dtype)
        if local == 0 and size >= 0x1C:
            style_code = struct.unpack_from("<I", data, body + 4)[0]
            style = _PARTITION_STYLES.get(style_code, f"unknown({style_code})")
            if style == "gpt" and size >= 0x28:
                return BCDDevice(
                    kind="disk", type_code=dtype, partition_style=style, disk_guid=_guid_at(data, body + 8)[1:-1]
                )
            if style == "mbr":
                return BCDDevice(
                    kind="disk",
                    type_code=dtype,
                    partition_style=style,
                    mbr_signature=struct.unpack_from("<I", data, body + 8)[0],
                )
            return BCDDevice(kind="disk", type_code=dtype, partition_style=style)
        return BCDDevice(kind=lkind, type_code=dtype)
    return BCDDevice(kind=kind, type_code=dtype)


def decode_device(data: bytes, where: str = "device element") -> BCDDevice:
    """Decode a device element's REG_BINARY data (see the module docstring for the layout).

    Raises :class:`BCDError` naming ``where`` when the data is shorter than its header or its sizes
    point past its end.
    """
    if len(data) < 0x20:
        raise BCDError(f"{where}: device data is {len(data)} bytes, at least 32 expected")
    options_guid = _guid_at(data, 0)
    device = _descriptor(data, 0x10, where)
    if options_guid != "{00000000-0000-0000-0000-000000000000}":
        device = replace(device, options=options_guid)
    return device


# --- elements and objects ---------------------------------------------------------------------


@dataclass
class BCDElement:
    """One element of one object; its value is decoded on first use (a malformed one raises then)."""

    id: int
    name: str
    object_guid: str
    reg_type: int
    raw: bytes
    reg_data: Any = None
    _value: Any = field(default=None, repr=False)
    _decoded: bool = field(default=False, repr=False)

    @property
    def format(self) -> str:
        return element_format(self.id)

    @property
    def where(self) -> str:
        alias = WELL_KNOWN.get(self.object_guid)
        obj = f"{self.object_guid} ({alias})" if alias else self.object_guid
        return f"BCD object {obj} element {self.id:08X} ({self.name})"

    @property
    def value(self) -> Any:
        """The decoded value: bool, int, str, list of str, list of int or :class:`BCDDevice`.

        Raises :class:`BCDError` naming the object, the element and the bad size or type.
        """
        if not self._decoded:
            self._value = self._decode()
            self._decoded = True
        return self._value

    def _expect_type(self, *types: int) -> None:
        if self.reg_type not in types:
            names = " or ".join(RegType.name_of(t) for t in types)
            raise BCDError(
                f"{self.where}: {self.format} data stored as {RegType.name_of(self.reg_type)}, {names} expected"
            )

    def _decode(self) -> Any:
        fmt = self.format
        raw = self.raw
        if fmt == "boolean":
            self._expect_type(RegType.BINARY)
            if len(raw) != 1:
                # Windows' BCD library refuses such an element too ("Unexpected length for BCD element")
                raise BCDError(
                    f"{self.where}: boolean data is {len(raw)} bytes, 1 expected (Windows reads no other width)"
                )
            return raw[0] != 0
        if fmt == "integer":
            self._expect_type(RegType.BINARY)
            if not 1 <= len(raw) <= 8:
                raise BCDError(f"{self.where}: integer data is {len(raw)} bytes, 1 to 8 expected")
            # bcdedit writes 8 bytes; Windows' own BCD-Template stores 1 (timeout 0x1e). Windows copies up to
            # 8 bytes into a zeroed 64-bit integer, so a shorter value is the same number, zero-extended. An empty
            # value Windows would read as 0; no tool writes one, so it is reported as damage, not judged as 0.
            return int.from_bytes(raw, "little")
        if fmt == "integerlist":
            self._expect_type(RegType.BINARY)
            if len(raw) % 8:
                raise BCDError(f"{self.where}: integer list data is {len(raw)} bytes, not a multiple of 8")
            return [int.from_bytes(raw[i : i + 8], "little") for i in range(0, len(raw), 8)]
        if fmt == "string":
            self._expect_type(RegType.SZ, RegType.EXPAND_SZ)
            return str(self.reg_data)
        if fmt == "object":
            self._expect_type(RegType.SZ)
            return _norm_guid(str(self.reg_data))
        if fmt == "objectlist":
            self._expect_type(RegType.MULTI_SZ)
            return [_norm_guid(g) for g in self.reg_data or []]
        if fmt == "device":
            self._expect_type(RegType.BINARY)
            return decode_device(raw, self.where)
        return raw

    @property
    def text(self) -> str:
        """The value as bcdedit would print it (``Yes``, ``30``, ``{globalsettings}``, a device's description),
        or ``unreadable: <why>`` for a malformed element. Never raises."""
        try:
            return format_value(self.value)
        except BCDError as err:
            return f"unreadable: {err}"

    def __str__(self) -> str:
        return f"{self.name} = {self.text}"

    def __repr__(self) -> str:
        obj = WELL_KNOWN.get(self.object_guid, self.object_guid)
        return f"<BCDElement {obj} {self.id:08X} {self.name} = {self.text}>"

    def display(self) -> Any:
        """A JSON-friendly value (the device's description for devices), or ``{"error": ...}``."""
        try:
            value = self.value
        except BCDError as err:
            return {"error": str(err), "raw": self.raw.hex()}
        if isinstance(value, BCDDevice):
            return value.to_dict()
        if isinstance(value, bytes):
            return value.hex()
        return value


@dataclass
class BCDObject:
    """One BCD object: its GUID, type and elements (keyed by element id)."""

    guid: str
    type: int | None
    elements: dict[int, BCDElement] = field(default_factory=dict)

    @property
    def alias(self) -> str | None:
        return WELL_KNOWN.get(self.guid)

    @property
    def type_name(self) -> str:
        if self.type is None:
            return "unknown (no Description\\Type)"
        return OBJECT_TYPES.get(self.type, f"0x{self.type:08X}")

    @property
    def label(self) -> str:
        """The alias, the description, or the GUID: what a person would call this object."""
        if self.alias:
            return self.alias
        desc = self.elements.get(ELEMENT_IDS["description"])
        if desc is not None:
            try:
                return f"{self.guid} ({desc.value})"
            except BCDError:
                pass
        return self.guid

    def element(self, id_or_name: int | str) -> BCDElement | None:
        """The object's own element (no inheritance)."""
        eid = ELEMENT_IDS[id_or_name] if isinstance(id_or_name, str) else id_or_name
        return self.elements.get(eid)

    def rows(self) -> list[tuple[str, str]]:
        """(name, value) pairs as ``bcdedit /enum`` lists them: the identifier, then the elements by id."""
        return [("identifier", self.alias or self.guid)] + [
            (el.name, el.text) for el in sorted(self.elements.values(), key=lambda e: e.id)
        ]

    def __str__(self) -> str:
        title = self.type_name
        width = max((len(name) for name, _ in self.rows()), default=0) + 2
        lines = [title, "-" * len(title)]
        for name, text in self.rows():
            first, *rest = text.splitlines() or [""]
            lines.append(f"{name:<{width}}{first}")
            lines.extend(" " * width + more for more in rest)
        return "\n".join(lines)

    def __repr__(self) -> str:
        count = len(self.elements)
        return f"<BCDObject {self.label}: {self.type_name}, {count} element{'s' if count != 1 else ''}>"

    def _repr_html_(self) -> str:
        return _object_html(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "guid": self.guid,
            "alias": self.alias,
            "type": None if self.type is None else f"0x{self.type:08X}",
            "type_name": self.type_name,
            "elements": {
                el.name: {"id": f"0x{el.id:08X}", "value": el.display(), "text": el.text}
                for el in sorted(self.elements.values(), key=lambda e: e.id)
            },
        }


@dataclass(frozen=True)
class Effective:
    """An element's effective value on an object, and the object it was inherited from."""

    element: BCDElement
    #: the object that holds the element (the asked object itself, or one it inherits from)
    holder: BCDObject
    #: ``True`` when found on an inherited object
    inherited: bool

    @property
    def value(self) -> Any:
        return self.element.value

    @property
    def where(self) -> str:
        """``set on {default}`` or ``inherited from {globalsettings}``."""
        return f"{'inherited from' if self.inherited else 'set on'} {self.holder.label}"

    def __str__(self) -> str:
        return f"{self.element.name} = {self.element.text} ({self.where})"

    def __repr__(self) -> str:
        return f"<Effective {self}>"


@dataclass
class BCDStore:
    """A decoded BCD store."""

    source: str
    objects: dict[str, BCDObject] = field(default_factory=dict)
    #: problems met while reading the store's structure (an object without Description, ...)
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[BCDObject]:
        return iter(self.objects.values())

    def __len__(self) -> int:
        return len(self.objects)

    def __repr__(self) -> str:
        try:
            default = self.default_guid
        except BCDError:
            default = "unreadable"
        shown = WELL_KNOWN.get(default, default) if default else "none"
        return f"<BCDStore {self.source}: {len(self.objects)} objects, default {shown}>"

    def _listing_order(self) -> list[BCDObject]:
        """{bootmgr}, the default loader, then the rest as stored (the order bcdedit /enum all uses)."""
        try:
            first = [self.bootmgr, self.default_loader]
        except BCDError:
            first = [self.bootmgr]
        head = [obj for obj in first if obj is not None]
        return head + [obj for obj in self.objects.values() if all(obj is not h for h in head)]

    def __str__(self) -> str:
        parts = [str(obj) for obj in self._listing_order()]
        if self.warnings:
            parts.append("Warnings\n--------\n" + "\n".join(self.warnings))
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        from html import escape  # Jupyter's view only: an audit never loads html

        body = "".join(_object_html(obj) for obj in self._listing_order())
        warnings = "".join(f"<li>{escape(w)}</li>" for w in self.warnings)
        return (
            f"<div><p><b>BCD store</b> {escape(self.source)}: {len(self.objects)} objects</p>{body}"
            + (f"<p>Warnings:</p><ul>{warnings}</ul>" if warnings else "")
            + "</div>"
        )

    def get(self, guid_or_alias: str) -> BCDObject | None:
        """The object by GUID (with or without braces) or alias (``{bootmgr}``, ``{default}``)."""
        key = guid_or_alias.strip().lower()
        if key == "{default}":
            return self.default_loader
        key = _ALIASES.get(key, key)
        return self.objects.get(_norm_guid(key))

    @property
    def bootmgr(self) -> BCDObject | None:
        return self.objects.get(BOOTMGR)

    @property
    def default_guid(self) -> str | None:
        """The GUID in ``{bootmgr}``'s ``default`` element (23000003); may name a missing object.

        Raises :class:`BCDError` when that element is malformed.
        """
        mgr = self.bootmgr
        if mgr is None:
            return None
        el = mgr.element("default")
        return None if el is None else str(el.value)

    @property
    def default_loader(self) -> BCDObject | None:
        """The OS loader ``{bootmgr}`` boots by default, or ``None`` when absent / dangling."""
        guid = self.default_guid
        return None if guid is None else self.objects.get(guid)

    def effective(self, obj: BCDObject, id_or_name: int | str) -> Effective | None:
        """The element's value on ``obj`` or, when not set there, on the objects it inherits from.

        The walk follows ``inherit`` (element 14000006) depth first, in list order; an object named in no
        ``Objects`` key is skipped. ``None`` when the element is set nowhere.

        Bounds: every object is searched at most once per call (so a store of *n* objects costs at most
        *n* lookups, whatever its lists say), and a chain deeper than :data:`MAX_INHERIT_DEPTH` is an error.
        A cycle (``A`` inherits ``B``, ``B`` inherits ``A``) cannot change the answer (every object on it was
        already searched), so it is cut there and reported once: in :attr:`warnings` and as a log warning.

        Raises :class:`BCDError` when an inherit list on the way is malformed or the chain is too deep.
        """
        eid = ELEMENT_IDS[id_or_name] if isinstance(id_or_name, str) else id_or_name
        seen: set[str] = set()
        path: list[str] = []

        def walk(current: BCDObject, depth: int) -> Effective | None:
            if current.guid in path:
                self._report_loop([*path[path.index(current.guid) :], current.guid])
                return None
            if current.guid in seen:  # reached again by another path (a diamond): already searched
                return None
            if depth > MAX_INHERIT_DEPTH:
                chain = " -> ".join(_label_of(self, g) for g in [*path, current.guid])
                raise BCDError(
                    f"BCD object {_label_of(self, obj.guid)}: inherit chain deeper than {MAX_INHERIT_DEPTH} "
                    f"objects ({chain})"
                )
            seen.add(current.guid)
            el = current.elements.get(eid)
            if el is not None:
                return Effective(el, current, depth > 0)
            inherit = current.elements.get(ELEMENT_IDS["inherit"])
            if inherit is None:
                return None
            path.append(current.guid)
            try:
                for guid in inherit.value:
                    parent = self.objects.get(guid)
                    if parent is None:
                        continue
                    found = walk(parent, depth + 1)
                    if found is not None:
                        return found
            finally:
                path.pop()
            return None

        return walk(obj, 0)

    def _report_loop(self, cycle: list[str]) -> None:
        text = "BCD inherit loop: " + " -> ".join(_label_of(self, g) for g in cycle) + "; cut there"
        if text not in self.warnings:
            self.warnings.append(text)
            log.warning("%s: %s", self.source, text)

    def to_dict(self) -> dict[str, Any]:
        """Every object and every decoded element by name (malformed ones as ``{"error": ...}``)."""
        try:
            default = self.default_guid
        except BCDError as err:
            default = f"error: {err}"
        return {
            "source": self.source,
            "default": default,
            "objects": {guid: obj.to_dict() for guid, obj in self.objects.items()},
            "warnings": list(self.warnings),
        }


def format_value(value: Any) -> str:
    """A decoded element value as bcdedit prints it: ``Yes``/``No``, decimal integers, object lists by alias,
    integer lists in hex, a device's description."""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, BCDDevice):
        return value.describe()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    if isinstance(value, list):
        if not value:
            return "(empty list)"
        return "\n".join(
            f"0x{item:x}" if isinstance(item, int) else WELL_KNOWN.get(str(item), str(item)) for item in value
        )
    if isinstance(value, str) and value.startswith("{"):
        return WELL_KNOWN.get(value, value)
    return str(value)


def _object_html(obj: BCDObject) -> str:
    from html import escape

    rows = "".join(
        f"<tr><td>{escape(name)}</td><td style='white-space:pre-wrap'>{escape(text)}</td></tr>"
        for name, text in obj.rows()
    )
    return (
        f"<table><caption style='text-align:left'><b>{escape(obj.type_name)}</b></caption>"
        f"<thead><tr><th>element</th><th>value</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _label_of(store: BCDStore, guid: str) -> str:
    return WELL_KNOWN.get(guid) or guid


def _value(key: RegKey, name: str) -> RegValue | None:
    return key.value(name)


def decode_bcd(hive: Hive) -> BCDStore:
    """Decode the BCD ``hive`` (from :meth:`RegistryView.hive` ``("BCD")``) into a :class:`BCDStore`.

    Element values are decoded when first read, so one malformed element does not hide the others:
    reading it raises :class:`BCDError` naming the object, the element and what is wrong.
    Raises :class:`BCDError` at once when the hive has no ``Objects`` key (it is not a BCD store).
    """
    objects_key = hive.key("Objects")
    if objects_key is None:
        raise BCDError(f"{hive.source}: no Objects key at the hive root; not a BCD store")
    store = BCDStore(source=hive.source)
    for okey in objects_key.subkeys():
        guid = _norm_guid(okey.name)
        otype: int | None = None
        desc = okey.subkey("Description")
        tval = desc.value("Type") if desc is not None else None
        if tval is None or not isinstance(tval.data, int):
            store.warnings.append(f"BCD object {guid}: no Description\\Type (REG_DWORD)")
        else:
            otype = tval.data
        obj = BCDObject(guid=guid, type=otype)
        ekeys = okey.subkey("Elements")
        for ekey in ekeys.subkeys() if ekeys is not None else []:
            try:
                eid = int(ekey.name, 16)
            except ValueError:
                store.warnings.append(f"BCD object {guid}: element key {ekey.name!r} is not 8 hex digits")
                continue
            value = _value(ekey, "Element")
            name = element_name(eid, otype)
            if value is None:
                store.warnings.append(f"BCD object {guid} element {eid:08X} ({name}): no Element value")
                continue
            obj.elements[eid] = BCDElement(
                id=eid, name=name, object_guid=guid, reg_type=value.type, raw=value.raw, reg_data=value.data
            )
        store.objects[guid] = obj
    log.debug("decoded BCD store %s: %d objects", hive.source, len(store.objects))
    return store
