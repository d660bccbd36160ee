"""Raw disks, and the formats ``dissect.hypervisor`` reads for us (VMDK, QCOW2).

References:
- MBR boot signature 0x55AA at offset 510; GPT header "EFI PART" at LBA 1 (UEFI 2.10, 5.3);
  NTFS boot sector OEM id "NTFS    " at offset 3; FAT boot sector "FAT" type at 54 / 82.
- VMDK: VMware "Virtual Disk Format 5.0" (sparse extent magic "KDMV", text descriptor).
- QCOW2: QEMU docs/interop/qcow2.txt (magic "QFI\\xfb").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from azvhdaudit.container.base import CountedFile, Layer
from azvhdaudit.errors import CorruptImageError, ImageError, TruncatedImageError, UnsupportedFormatError
from azvhdaudit.facts import ContainerFacts

__all__ = ["RawLayer", "HypervisorLayer", "raw_signature", "VMDK_MAGIC", "QCOW2_MAGIC", "VMDK_DESCRIPTOR"]

log = logging.getLogger(__name__)

VMDK_MAGIC = b"KDMV"
VMDK_DESCRIPTOR = b"# Disk DescriptorFile"
QCOW2_MAGIC = b"QFI\xfb"
MAX_DESCRIPTOR = 64 * 1024


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


#: opens a file named beside the image (a VMDK extent) as a counted file
ExtentOpener = Callable[[str], CountedFile]


class _Sized:
    """Stands in for a dissect stream when the layer reads its VMDK extents itself."""

    def __init__(self, size: int) -> None:
        self.size = size


class _Dissect:
    """Turn an error dissect.hypervisor raises inside the ``with`` into the library's error ``make(err)``.

    Only the calls into dissect are wrapped: an error of this module's own code is a bug and goes up as it
    is. The library's own errors (the file below ran out, a read failed) pass unchanged.
    """

    __slots__ = ("make",)

    def __init__(self, make: Callable[[Exception], ImageError]) -> None:
        self.make = make

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: object) -> None:
        if err is None or isinstance(err, ImageError) or not isinstance(err, Exception):
            return
        raise self.make(err) from err


class HypervisorLayer(Layer):
    """A VMDK or QCOW2 disk read through ``dissect.hypervisor`` (no parents or backing files).

    A VMDK text descriptor's extents (``-flat.vmdk``, ``-s001.vmdk`` ...) are opened beside it
    with ``open_extent`` and handed to dissect as file objects.
    """

    def __init__(self, file: CountedFile, fmt: str, open_extent: ExtentOpener | None = None) -> None:
        super().__init__(file)
        self.format = fmt
        #: (start, length, dissect disk) of each VMDK extent, when a descriptor names them
        self._extents: list[tuple[int, int, Any]] = []
        name = file.name
        disk: Any

        def opening(err: Exception) -> ImageError:
            if isinstance(err, EOFError):
                return TruncatedImageError(f"{name}: {fmt.upper()} structure ends past the end of the file: {err}")
            return UnsupportedFormatError(
                f"{name}: {fmt.upper()} image cannot be opened ({type(err).__name__}: {err}); "
                "images with backing files, external extents or encryption are not supported"
            )

        self._opening = opening
        try:
            if fmt == "vmdk" and file.pread(0, len(VMDK_DESCRIPTOR)) == VMDK_DESCRIPTOR:
                disk = self._open_descriptor(open_extent)
                self.subtype = self._descriptor_subtype
            elif fmt == "qcow2":
                from dissect.hypervisor.disk.qcow2 import QCow2

                with _Dissect(opening):
                    disk = QCow2(file).open()  # type: ignore[arg-type]
                self.subtype = "dynamic"
            else:
                from dissect.hypervisor.disk.vmdk import VMDK

                with _Dissect(opening):
                    disk = VMDK(file)  # type: ignore[arg-type]
                self.subtype = "dynamic"
        except BaseException:
            self.close_extra()
            raise
        self.disk = disk
        self.size = int(disk.size)

    def _open_descriptor(self, open_extent: ExtentOpener | None) -> Any:
        from dissect.hypervisor.disk.vmdk import DiskDescriptor, RawDisk, SparseDisk

        name = self.file.name
        if self.file.size > MAX_DESCRIPTOR:
            raise UnsupportedFormatError(f"{name}: VMDK descriptor of {self.file.size} bytes is too large")
        text = self.file.pread(0, self.file.size).decode("utf-8", errors="replace").replace("\x00", "")
        with _Dissect(self._opening):
            descriptor = DiskDescriptor.parse(text)
        parent_cid = descriptor.attr.get("parentCID", "ffffffff")
        if parent_cid.lower() != "ffffffff":
            raise UnsupportedFormatError(
                f"{name}: VMDK snapshot (parentCID {parent_cid}, parent "
                f"{descriptor.attr.get('parentFileNameHint')!r}) is not supported; consolidate it first"
            )
        if open_extent is None:
            raise UnsupportedFormatError(
                f"{name}: VMDK descriptor names extent files; open it by path (or pass name= with its path)"
            )
        kinds = set()
        start = 0
        for extent in descriptor.extents:
            if extent.type not in ("FLAT", "SPARSE", "VMFS") or not extent.filename or extent.start_sector:
                raise UnsupportedFormatError(f"{name}: VMDK extent {extent.raw!r} is not supported")
            extent_file = open_extent(extent.filename)
            self.extra_files.append(extent_file)
            kinds.add(extent.type)
            # dissect's VMDK() misreads split sparse extents (no embedded descriptor): use its disks directly
            part: Any
            with _Dissect(self._opening):
                if extent.type == "SPARSE":
                    part = SparseDisk(extent_file)  # type: ignore[arg-type]
                else:
                    part = RawDisk(extent_file, extent.sectors * 512)  # type: ignore[arg-type]
            if extent.type != "SPARSE" and extent_file.size < extent.sectors * 512:
                raise TruncatedImageError(
                    f"{extent_file.name}: VMDK flat extent of {extent.sectors} sectors is only "
                    f"{extent_file.size} bytes long"
                )
            self._extents.append((start, extent.sectors * 512, part))
            start += extent.sectors * 512
        if not self._extents:
            raise CorruptImageError(f"{name}: VMDK descriptor lists no extents")
        self._descriptor_subtype = "dynamic" if "SPARSE" in kinds else "fixed"
        return _Sized(start)

    def _read_extents(self, offset: int, length: int) -> bytes:
        out = []
        end = offset + length
        for start, size, part in self._extents:
            lo, hi = max(offset, start), min(end, start + size)
            if lo >= hi:
                continue
            first = (lo - start) // 512
            count = -(-(hi - start) // 512) - first
            with _Dissect(partial(self._read_error, offset, length)):
                data = part.read_sectors(first, count)
            skip = lo - start - first * 512
            out.append(data[skip : skip + hi - lo])
        return b"".join(out)

    def _read_error(self, offset: int, length: int, err: Exception) -> ImageError:
        return CorruptImageError(
            f"{self.path}: {self.format.upper()} read of {length} bytes at virtual offset {offset} failed: "
            f"{type(err).__name__}: {err}"
        )

    def read(self, offset: int, length: int) -> bytes:
        if self._extents:
            data = self._read_extents(offset, length)
        else:
            with _Dissect(partial(self._read_error, offset, length)):
                self.disk.seek(offset)
                data = self.disk.read(length)
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
