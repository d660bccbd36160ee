"""The BCD element and object tables: element ids and the names bcdedit prints, formats, object types.

Kept apart from the decoder (:mod:`azvhdaudit.bcd`), as dissect keeps its ``c_*.py`` layouts apart: data here,
logic there.

References:
- BCD WMI provider, ``BcdLibraryElementTypes``, ``BcdBootMgrElementTypes``, ``BcdOSLoaderElementTypes``,
  ``BcdResumeElementTypes``, ``BcdMemDiagElementTypes``, ``BcdDeviceObjectElementTypes`` and
  ``BcdObjectType`` (learn.microsoft.com/previous-versions/windows/desktop/bcd): ids, class / format bits.
- ``bcdedit /? TYPES``: the names bcdedit prints.
"""

from __future__ import annotations

__all__ = [
    "ELEMENT_IDS",
    "OBJECT_TYPE_BOOTMGR",
    "OBJECT_TYPE_OSLOADER",
    "OBJECT_TYPES",
    "element_format",
    "element_name",
]

# --- element ids ------------------------------------------------------------------------------

#: bcdedit names of the elements every object may carry (class 1, "library")
_LIBRARY: dict[int, str] = {
    0x11000001: "device",
    0x12000002: "path",
    0x12000004: "description",
    0x12000005: "locale",
    0x14000006: "inherit",
    0x15000007: "truncatememory",
    0x14000008: "recoverysequence",
    0x16000009: "recoveryenabled",
    0x1700000A: "badmemorylist",
    0x1600000B: "badmemoryaccess",
    0x1500000C: "firstmegabytepolicy",
    0x1500000D: "relocatephysical",
    0x1500000E: "avoidlowmemory",
    0x1600000F: "traditionalkseg",
    0x16000010: "bootdebug",
    0x15000011: "debugtype",
    0x15000012: "debugaddress",
    0x15000013: "debugport",
    0x15000014: "baudrate",
    0x15000015: "channel",
    0x12000016: "targetname",
    0x16000017: "noumex",
    0x15000018: "debugstart",
    0x12000019: "busparams",
    0x1500001A: "hostip",
    0x1500001B: "port",
    0x1600001C: "dhcp",
    0x1200001D: "key",
    0x1600001E: "vm",
    0x16000020: "bootems",
    0x15000022: "emsport",
    0x15000023: "emsbaudrate",
    0x12000030: "loadoptions",
    0x16000040: "advancedoptions",
    0x16000041: "optionsedit",
    0x15000042: "keyringaddress",
    0x11000043: "bootstatdevice",
    0x12000044: "bootstatfilepath",
    0x16000045: "preservebootstat",
    0x16000046: "graphicsmodedisabled",
    0x15000047: "configaccesspolicy",
    0x16000048: "nointegritychecks",
    0x16000049: "testsigning",
    0x1200004A: "fontpath",
    0x1500004B: "integrityservices",
    0x1500004C: "volumebandid",
    0x16000050: "extendedinput",
    0x15000051: "initialconsoleinput",
    0x15000052: "graphicsresolution",
    0x16000053: "restartonfailure",
    0x16000054: "highestmode",
    0x16000060: "isolatedcontext",
    0x15000065: "displaymessage",
    0x15000066: "displaymessageoverride",
    0x1600006C: "bootuxdisabled",
    0x16000074: "bootshutdowndisabled",
    0x17000077: "allowedinmemorysettings",
    0x16000079: "forcefipscrypto",
}

#: class-2 ("application") elements of the boot manager (object application type 2)
_BOOTMGR: dict[int, str] = {
    0x24000001: "displayorder",
    0x24000002: "bootsequence",
    0x23000003: "default",
    0x25000004: "timeout",
    0x26000005: "resume",
    0x23000006: "resumeobject",
    0x24000007: "startupsequence",
    0x24000010: "toolsdisplayorder",
    0x26000020: "displaybootmenu",
    0x26000021: "noerrordisplay",
    0x21000022: "bcddevice",
    0x22000023: "bcdfilepath",
    0x26000024: "hormenabled",
    0x26000025: "hiberboot",
    0x22000026: "passwordoverride",
    0x22000027: "pinpassphraseoverride",
    0x26000028: "processcustomactionsfirst",
    0x27000030: "customactions",
    0x26000031: "persistbootsequence",
    0x26000032: "skipstartupsequence",
    0x22000040: "fverecoveryurl",
    0x22000041: "fverecoverymessage",
}

#: class-2 elements of the Windows OS loader (object application type 3)
_OSLOADER: dict[int, str] = {
    0x21000001: "osdevice",
    0x22000002: "systemroot",
    0x23000003: "resumeobject",
    0x26000004: "stampdisks",
    0x26000010: "detecthal",
    0x22000011: "kernel",
    0x22000012: "hal",
    0x22000013: "dbgtransport",
    0x25000020: "nx",
    0x25000021: "pae",
    0x26000022: "winpe",
    0x26000024: "nocrashautoreboot",
    0x26000025: "lastknowngood",
    0x26000026: "oslnointegritychecks",
    0x26000027: "osltestsigning",
    0x26000030: "nolowmem",
    0x25000031: "removememory",
    0x25000032: "increaseuserva",
    0x25000033: "perfmem",
    0x26000040: "vga",
    0x26000041: "quietboot",
    0x26000042: "novesa",
    0x25000050: "clustermodeaddressing",
    0x26000051: "usephysicaldestination",
    0x25000052: "restrictapiccluster",
    0x26000054: "uselegacyapicmode",
    0x25000055: "x2apicpolicy",
    0x26000060: "onecpu",
    0x25000061: "numproc",
    0x26000062: "maxproc",
    0x25000063: "configflags",
    0x26000064: "maxgroup",
    0x26000065: "groupaware",
    0x25000066: "groupsize",
    0x26000070: "usefirmwarepcisettings",
    0x25000071: "msi",
    0x25000072: "pciexpress",
    0x25000080: "safeboot",
    0x26000081: "safebootalternateshell",
    0x26000090: "bootlog",
    0x26000091: "sos",
    0x260000A0: "debug",
    0x260000A1: "halbreakpoint",
    0x260000A2: "useplatformclock",
    0x260000A3: "forcelegacyplatform",
    0x260000A4: "useplatformtick",
    0x260000A5: "disabledynamictick",
    0x250000A6: "tscsyncpolicy",
    0x260000B0: "ems",
    0x250000C0: "forcefailure",
    0x250000C1: "driverloadfailurepolicy",
    0x250000C2: "bootmenupolicy",
    0x260000C3: "onetimeadvancedoptions",
    0x260000C4: "onetimeoptionsedit",
    0x250000E0: "bootstatuspolicy",
    0x260000E1: "disableelamdrivers",
    0x250000F0: "hypervisorlaunchtype",
    0x220000F1: "hypervisorpath",
    0x260000F2: "hypervisordebug",
    0x250000F3: "hypervisordebugtype",
    0x250000F4: "hypervisordebugport",
    0x250000F5: "hypervisorbaudrate",
    0x250000F6: "hypervisorchannel",
    0x250000F7: "bootux",
    0x260000F8: "hypervisordisableslat",
    0x220000F9: "hypervisorbusparams",
    0x250000FA: "hypervisornumproc",
    0x250000FB: "hypervisorrootprocpernode",
    0x260000FC: "hypervisoruselargevtlb",
    0x250000FD: "hypervisorhostip",
    0x250000FE: "hypervisorhostport",
    0x250000FF: "hypervisordebugpages",
    0x25000100: "tpmbootentropy",
    0x22000110: "hypervisorusekey",
    0x22000112: "hypervisorproductskutype",
    0x25000113: "hypervisorrootproc",
    0x26000114: "hypervisordhcp",
    0x25000115: "hypervisoriommupolicy",
    0x26000116: "hypervisorusevapic",
    0x22000117: "hypervisorloadoptions",
    0x25000118: "hypervisormsrfilterpolicy",
    0x25000119: "hypervisormmionxpolicy",
    0x2500011A: "hypervisorschedulertype",
}

#: class-2 elements of the resume loader (object application type 4)
_RESUME: dict[int, str] = {
    0x21000001: "filedevice",
    0x22000002: "filepath",
    0x26000003: "customsettings",
    0x26000004: "pae",
    0x21000005: "associatedosdevice",
    0x26000006: "debugoptionenabled",
    0x25000007: "bootux",
    0x25000008: "bootmenupolicy",
    0x26000024: "hormenabled",
}

#: class-2 elements of the memory tester (object application type 5)
_MEMDIAG: dict[int, str] = {
    0x25000001: "passcount",
    0x25000002: "testmix",
    0x26000003: "failurecheck",
    0x26000004: "cacheenable",
    0x26000005: "failuresenabled",
    0x25000006: "stridefailcount",
    0x25000007: "invcfailcount",
    0x25000008: "testtofail",
    0x25000009: "matsfailcount",
}

#: class-3 elements of device objects (ramdisk options)
_DEVICE: dict[int, str] = {
    0x35000001: "ramdiskimageoffset",
    0x35000002: "ramdisktftpclientport",
    0x31000003: "ramdisksdidevice",
    0x32000004: "ramdisksdipath",
    0x35000005: "ramdiskimagelength",
    0x36000006: "exportascd",
    0x35000007: "ramdisktftpblocksize",
    0x35000008: "ramdisktftpwindowsize",
    0x36000009: "ramdiskmcenabled",
    0x3600000A: "ramdiskmctftpfallback",
    0x3600000B: "ramdisktftpvarwindow",
}

_APPLICATION_TABLES: dict[int, dict[int, str]] = {2: _BOOTMGR, 3: _OSLOADER, 4: _RESUME, 5: _MEMDIAG}

#: the element ids rules use, by bcdedit name
ELEMENT_IDS: dict[str, int] = {
    "device": 0x11000001,
    "path": 0x12000002,
    "description": 0x12000004,
    "inherit": 0x14000006,
    "recoveryenabled": 0x16000009,
    "bootems": 0x16000020,
    "emsport": 0x15000022,
    "emsbaudrate": 0x15000023,
    "nointegritychecks": 0x16000048,
    "integrityservices": 0x1500004B,
    "displayorder": 0x24000001,
    "default": 0x23000003,
    "timeout": 0x25000004,
    "displaybootmenu": 0x26000020,
    "osdevice": 0x21000001,
    "systemroot": 0x22000002,
    "ems": 0x260000B0,
    "bootmenupolicy": 0x250000C2,
    "bootstatuspolicy": 0x250000E0,
}

_FORMATS = {
    1: "device",
    2: "string",
    3: "object",
    4: "objectlist",
    5: "integer",
    6: "boolean",
    7: "integerlist",
}

#: object types (Description\Type) -> a readable name
OBJECT_TYPES: dict[int, str] = {
    0x10100001: "firmware boot manager",
    0x10100002: "Windows Boot Manager",
    0x10200003: "Windows Boot Loader",
    0x10200004: "Resume from Hibernate",
    0x10200005: "Windows Memory Tester",
    0x10200006: "Legacy OS Loader (ntldr)",
    0x10200007: "Setup loader",
    0x10200008: "Boot sector",
    0x10200009: "Startup module",
    0x1020000A: "Boot application",
    0x101FFFFF: "Firmware Application",
    0x20100000: "inheritable settings (all applications)",
    0x20200003: "inheritable settings (OS loaders)",
    0x20200004: "inheritable settings (resume loaders)",
    0x30000000: "device options",
}

OBJECT_TYPE_BOOTMGR = 0x10100002
OBJECT_TYPE_OSLOADER = 0x10200003


def element_format(element_id: int) -> str:
    """``device``, ``string``, ``object``, ``objectlist``, ``integer``, ``boolean``, ``integerlist``."""
    return _FORMATS.get((element_id >> 24) & 0xF, "unknown")


def element_name(element_id: int, object_type: int | None = None) -> str:
    """The name bcdedit prints for ``element_id`` on an object of ``object_type``.

    Application-class elements (class 2) mean different things on different objects (``0x23000003`` is
    ``default`` on the boot manager and ``resumeobject`` on an OS loader); unknown ids read ``custom:1234abcd``.
    """
    klass = element_id >> 28
    if klass == 1 and element_id in _LIBRARY:
        return _LIBRARY[element_id]
    if klass == 2:
        app = (object_type or 0) & 0xFFFFF
        table = _APPLICATION_TABLES.get(app)
        if table is None and object_type is None:
            # No object type: try the boot manager, then the OS loader (the ones rules ask about)
            for candidate in (_BOOTMGR, _OSLOADER):
                if element_id in candidate:
                    return candidate[element_id]
        elif table is not None and element_id in table:
            return table[element_id]
    if klass == 3 and element_id in _DEVICE:
        return _DEVICE[element_id]
    return f"custom:{element_id:08x}"
