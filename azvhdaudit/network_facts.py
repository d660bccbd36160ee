"""Network settings as Windows stores them: the WinHTTP proxy blob and its bypass list, the persistent routes.

References: ``HKLM\\SYSTEM\\CurrentControlSet\\Services\\Tcpip\\Parameters\\PersistentRoutes`` holds one
value per route that ``route -p add`` made, named ``destination,mask,gateway,metric`` (REG_SZ, empty; the
real Windows 7 hive in tests/data/realdata keeps two, ``0.0.0.0,0.0.0.0,192.168.1.1,-1`` and a second gateway).
``HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections\\
WinHttpSettings`` (REG_BINARY, and the same under ``WOW6432Node`` for 32-bit programs) is what ``netsh winhttp
set proxy`` writes and ``netsh winhttp reset proxy`` puts back to "direct access". Microsoft publishes no layout
for it; its support text gives the direct-access value ``1800000000000000010000000000000000000000``. Read as
little-endian: u32 structure size/version (0x18), u32 change counter, u32 flags (0x1 direct, 0x2 proxy,
0x4 auto-config URL, 0x8 auto-detect), then the proxy server and the bypass list, each a u32 length and that
many ASCII bytes; what follows (the auto-config URL ...) is kept undecoded. The bypass list is the one
``netsh winhttp set proxy ... bypass-list="..."`` takes: entries separated by semicolons, ``*`` wildcards
allowed, ``<local>`` for host names without a dot.
"""

from __future__ import annotations

import fnmatch
import re
import struct
from dataclasses import dataclass

__all__ = [
    "WINHTTP_SETTINGS",
    "FLAG_DIRECT",
    "FLAG_PROXY",
    "FLAG_AUTO_URL",
    "FLAG_AUTO_DETECT",
    "WinHttpSettings",
    "parse_winhttp_settings",
    "bypasses",
    "WIRESERVER",
    "PersistentRoute",
    "parse_persistent_route",
]

#: the value holding the blob, under each of the two Connections keys
WINHTTP_SETTINGS = "WinHttpSettings"
#: the Azure platform address (wire server) the VM Agent reaches through WinHTTP
WIRESERVER = "168.63.129.16"
FLAG_DIRECT = 0x1
FLAG_PROXY = 0x2
FLAG_AUTO_URL = 0x4
FLAG_AUTO_DETECT = 0x8


@dataclass(frozen=True)
class WinHttpSettings:
    """The decoded WinHttpSettings blob."""

    version: int
    counter: int
    flags: int
    proxy: str
    bypass: str
    #: bytes after the bypass list (auto-config URL etc.), kept undecoded
    rest: bytes = b""

    @property
    def uses_proxy(self) -> bool:
        return bool(self.flags & FLAG_PROXY) and bool(self.proxy)


def parse_winhttp_settings(raw: bytes) -> WinHttpSettings:
    """Decode the blob by its length fields; raises ``ValueError`` naming the offset where it ends early."""

    def u32(offset: int, what: str) -> int:
        if offset + 4 > len(raw):
            raise ValueError(f"WinHttpSettings ends at {len(raw)} bytes, {what} expected at offset {offset}")
        value: int = struct.unpack_from("<I", raw, offset)[0]
        return value

    def text(offset: int, what: str) -> tuple[str, int]:
        length = u32(offset, f"the {what} length")
        start = offset + 4
        if start + length > len(raw):
            raise ValueError(
                f"WinHttpSettings {what} length {length} at offset {offset} runs past the end ({len(raw)} bytes)"
            )
        return raw[start : start + length].decode("latin-1"), start + length

    version = u32(0, "the structure version")
    counter = u32(4, "the change counter")
    flags = u32(8, "the flags")
    proxy, offset = text(12, "proxy server")
    bypass, offset = text(offset, "bypass list")
    return WinHttpSettings(version, counter, flags, proxy, bypass, bytes(raw[offset:]))


def bypasses(bypass_list: str, address: str = WIRESERVER) -> bool:
    """Whether a WinHTTP bypass list (``;``/space separated, wildcards allowed) names ``address``."""
    for entry in re.split(r"[;,\s]+", bypass_list):
        entry = entry.strip().lower()
        if entry and entry != "<local>" and fnmatch.fnmatchcase(address, entry):
            return True
    return False


@dataclass(frozen=True)
class PersistentRoute:
    """One ``PersistentRoutes`` value name, split: destination, mask and gateway (dotted IPv4) and the metric."""

    destination: str
    mask: str
    gateway: str
    metric: str


def parse_persistent_route(name: str) -> PersistentRoute | None:
    """The route a ``PersistentRoutes`` value name (``dest,mask,gateway,metric``) stands for; ``None`` when the
    name is not in that form (four comma-separated fields, the first three digits and dots)."""
    parts = [p.strip() for p in name.split(",")]
    if len(parts) == 4 and all(re.fullmatch(r"[0-9.]+", p) for p in parts[:3]):
        return PersistentRoute(*parts)
    return None
