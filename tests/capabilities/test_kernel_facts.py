"""The kernel's PE machine type (``ImageFacts.extra["kernel"]``), read from the first 4 KB of ntoskrnl.exe."""

from __future__ import annotations

import struct

import pytest

from azvhdaudit.errors import FileSystemError
from azvhdaudit.osinfo import KERNEL, kernel_facts


class Files:
    """A Windows volume holding one file (or failing to read it); counts the bytes asked for."""

    def __init__(self, data: bytes | None = None, error: Exception | None = None) -> None:
        self.data, self.error, self.asked = data, error, 0

    def read(self, path: str, max_size: int = 16 * 1024 * 1024) -> bytes | None:
        assert path == KERNEL
        self.asked += max_size
        if self.error:
            raise self.error
        return None if self.data is None else self.data[:max_size]


def _pe(machine: int, pe_offset: int = 0x80) -> bytes:
    head = bytearray(b"MZ" + bytes(pe_offset - 2))
    struct.pack_into("<I", head, 0x3C, pe_offset)
    return bytes(head) + b"PE\0\0" + struct.pack("<H", machine) + bytes(8 * 1024 * 1024)


@pytest.mark.parametrize(("machine", "name"), [(0x8664, "AMD64"), (0xAA64, "ARM64"), (0x14C, "x86"), (0x200, "0x0200")])
def test_machine_type(machine: int, name: str) -> None:
    files = Files(_pe(machine))
    facts = kernel_facts(files)  # type: ignore[arg-type]
    assert facts["machine"] == name and facts["machine_value"] == machine and facts["error"] is None
    assert files.asked == 4096  # the header only, never the multi-megabyte kernel


@pytest.mark.parametrize(
    ("files", "error"),
    [
        (None, "no Windows volume was read"),
        (Files(None), "does not exist"),
        (Files(b"not a PE file" * 10), "no MZ header"),
        (Files(_pe(0x8664, pe_offset=8192)[:5000]), "no PE signature"),
        (Files(error=FileSystemError("ntfs: cannot read ntoskrnl.exe")), "cannot read"),
    ],
)
def test_unreadable_kernel_leaves_the_machine_unknown(files: Files | None, error: str) -> None:
    facts = kernel_facts(files)  # type: ignore[arg-type]
    assert facts["machine"] is None and error in facts["error"]
