"""The regf backend reads only the cells a lookup needs; python-registry reads the whole hive.

Bytes are counted with a wrapper around the file; 20 lookups a typical audit makes on SYSTEM must read
a small fraction of the 11 MiB hive with regf. (Timing is not asserted here; see bench/.)
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import open_hive

CCS = "SYSTEM\\CurrentControlSet\\"

LOOKUPS = [
    ("SYSTEM\\Select", "Current"),
    (CCS + r"Control\Terminal Server", "fDenyTSConnections"),
    (CCS + r"Control\Terminal Server\WinStations\RDP-Tcp", "PortNumber"),
    (CCS + r"Control\Terminal Server\WinStations\RDP-Tcp", "SecurityLayer"),
    (CCS + r"Control\Terminal Server\WinStations\RDP-Tcp", "UserAuthentication"),
    (CCS + r"Control\TimeZoneInformation", "RealTimeIsUniversal"),
    (CCS + r"Control\CrashControl", "CrashDumpEnabled"),
    (CCS + r"Control\Session Manager\Memory Management", "PagingFiles"),
    (CCS + r"Control\Session Manager\Environment", "TEMP"),
    (CCS + r"Services\partmgr\Parameters", "SanPolicy"),
    (CCS + r"Services\W32Time", "Start"),
    (CCS + r"Services\W32Time\Parameters", "Type"),
    (CCS + r"Services\TermService", "Start"),
    (CCS + r"Services\WinRM", "Start"),
    (CCS + r"Services\Dhcp", "Start"),
    (CCS + r"Services\Tcpip\Parameters", "Hostname"),
    (CCS + r"Services\SharedAccess\Parameters\FirewallPolicy\DomainProfile", "EnableFirewall"),
    (CCS + r"Services\SharedAccess\Parameters\FirewallPolicy\StandardProfile", "EnableFirewall"),
    (CCS + r"Control\Lsa", "LmCompatibilityLevel"),
    (CCS + r"Control\Windows", "CSDVersion"),
]


class CountingReader(io.RawIOBase):
    """A read-only file wrapper that counts the bytes read through it."""

    def __init__(self, fh: Any) -> None:
        self._fh = fh
        self.bytes_read = 0
        self.reads = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return int(self._fh.seek(offset, whence))

    def tell(self) -> int:
        return int(self._fh.tell())

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.bytes_read += len(data)
        self.reads += 1
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def test_lookups_read_little(realdata: Path, backend: str) -> None:
    path = realdata / "SYSTEM"
    size = path.stat().st_size
    with open(path, "rb") as raw:
        counter = CountingReader(raw)
        view = RegistryView({"SYSTEM": open_hive(counter, "SYSTEM", source=str(path), backend=backend)})
        opened = counter.bytes_read
        found = [view.value(key, name) for key, name in LOOKUPS]
        assert sum(v is not None for v in found) >= 15  # the lookups are real ones
        looked = counter.bytes_read - opened
    if backend == "regf":
        assert opened <= 3 * 4096 + 64
        # 20 lookups in an 11 MiB hive: a few hundred cells, far from the whole file
        assert looked < size // 50, (looked, size)
    else:
        assert opened >= size  # python-registry reads the hive whole
        assert looked == 0
