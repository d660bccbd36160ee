"""Raw disks, and the formats ``dissect.hypervisor`` reads for us (VMDK, QCOW2).

References:
- MBR boot signature 0x55AA at offset 510; GPT header "EFI PART" at LBA 1 (UEFI 2.10, 5.3);
  NTFS boot sector OEM id "NTFS    " at offset 3; FAT boot sector "FAT" type at 54 / 82.
- VMDK: VMware "Virtual Disk Format 5.0" (sparse extent magic "KDMV", text descriptor).
- QCOW2: QEMU docs/interop/qcow2.txt (magic "QFI\\xfb").
"""

from __future__ import annotations

import logging
from typing import Any

from azvhdaudit.container.base import CountedFile, Layer
from azvhdaudit.errors import CorruptImageError, ImageError, TruncatedImageError, UnsupportedFormatError
from azvhdaudit.facts import ContainerFacts

__all__ = ["RawLayer", "HypervisorLayer", "raw_signature", "VMDK_MAGIC", "QCOW2_MAGIC", "VMDK_DESCRIPTOR"]

log = logging.getLogger(__name__)

VMDK_MAGIC = b"KDMV"
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
QCOW2_MAGIC = b"QFI\xfb"


def raw_signature(head: bytes) -> str | None:
    """What makes the first bytes of a file look like a disk: ``gpt``, ``mbr``, ``ntfs``, ``fat`` or None."""
    if head[512:520] == b"EFI PART" or head[4096:4104] == b"EFI PART":
        return "gpt"
    if head[3:11] == b"NTFS    ":
        return "ntfs"
    if head[54:57] == b"FAT" or head[82:87] == b"FAT32":
        return "fat"
    if head[510:512] == b"\x55\xaa":
        return "mbr"
    return None


class RawLayer(Layer):
    """A raw disk: the file is the disk."""

    format = "raw"
    subtype = None

    def __init__(self, file: CountedFile, signature: str) -> None:
        super().__init__(file)
        self.size = file.size
        self.signature = signature
        if self.size % 512:
            self.warnings.append(f"{file.name}: raw disk size {self.size} is not a multiple of 512 bytes")

    def read(self, offset: int, length: int) -> bytes:
        return self.file.read_exact(offset, length, "raw disk data")

    def facts(self) -> ContainerFacts:
        return ContainerFacts(
            path=self.path, format="raw", subtype=None, virtual_size=self.size, file_size=self.file.size
        )


class HypervisorLayer(Layer):
    """A VMDK or QCOW2 disk read through ``dissect.hypervisor`` (no parents or backing files)."""

    def __init__(self, file: CountedFile, fmt: str) -> None:
        super().__init__(file)
        self.format = fmt
        name = file.name
        disk: Any
        try:
            if fmt == "qcow2":
                from dissect.hypervisor.disk.qcow2 import QCow2

                disk = QCow2(file).open()  # type: ignore[arg-type]
                self.subtype = "dynamic"
            else:
                from dissect.hypervisor.disk.vmdk import VMDK

                disk = VMDK(file)  # type: ignore[arg-type]
                self.subtype = "dynamic"
        except ImageError:
            raise
        except EOFError as err:
            raise TruncatedImageError(f"{name}: {fmt.upper()} structure ends past the end of the file: {err}") from err
        except Exception as err:  # dissect raises many kinds; all mean "cannot read this file"
            raise UnsupportedFormatError(
                f"{name}: {fmt.upper()} image cannot be opened ({type(err).__name__}: {err}); "
                "images with backing files, external extents or encryption are not supported"
            ) from err
        self.disk = disk
        self.size = int(disk.size)

    def read(self, offset: int, length: int) -> bytes:
        try:
            self.disk.seek(offset)
            data = self.disk.read(length)
        except ImageError:
            raise
        except Exception as err:
            raise CorruptImageError(
                f"{self.path}: {self.format.upper()} read of {length} bytes at virtual offset {offset} failed: "
                f"{type(err).__name__}: {err}"
            ) from err
        if len(data) < length:
            raise TruncatedImageError(
                f"{self.path}: {self.format.upper()} gave {len(data)} of {length} bytes at virtual offset {offset}"
            )
        return bytes(data)

    def facts(self) -> ContainerFacts:
        return ContainerFacts(
            path=self.path,
            format=self.format,
            subtype=self.subtype,
            virtual_size=self.size,
            file_size=self.file.size,
        )
