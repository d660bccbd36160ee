"""The pieces every container format shares: a counting read-only file and the disk-layer interface.

References:
- Python ``io`` module: raw binary streams (``io.RawIOBase``), https://docs.python.org/3/library/io.html

A *layer* is one file of a disk chain (a fixed VHD, a dynamic VHDX, one differencing child ...).
A layer answers ``read(offset, length)`` over its virtual disk; a differencing layer asks its
parent layer for the sectors it does not hold. Every read of an underlying file goes through a
:class:`CountedFile`, so the container can say exactly how many bytes an audit touched.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import BinaryIO

from azvhdaudit.errors import ImageError, TruncatedImageError
from azvhdaudit.facts import ContainerFacts

__all__ = ["ContainerStats", "CountedFile", "Layer", "MAX_VIRTUAL_SIZE"]

log = logging.getLogger(__name__)

#: 64 TiB, the largest virtual disk VHDX allows; anything larger is a corrupt size field.
MAX_VIRTUAL_SIZE = 64 * 1024**4


@dataclass
class ContainerStats:
    """Reads done on the underlying files of a whole chain (child and every parent)."""

    bytes_read: int = 0
    read_calls: int = 0


class CountedFile:
    """A read-only file with positioned reads, counting every read into shared stats.

    Owns the file object (closes it) unless ``owned`` is False (a caller's file object).
    """

    def __init__(self, fh: BinaryIO, name: str, stats: ContainerStats, *, owned: bool) -> None:
        self.fh = fh
        self.name = name
        self.stats = stats
        self.owned = owned
        self._pos = 0
        try:
            self.size = fh.seek(0, os.SEEK_END)
        except (OSError, ValueError) as err:
            raise ImageError(f"{name}: cannot seek to the end of the file: {err}") from err
        fh.seek(0)

    def pread(self, offset: int, length: int) -> bytes:
        """Read up to ``length`` bytes at ``offset`` (short at end of file)."""
        if length <= 0:
            return b""
        try:
            self.fh.seek(offset)
            data = self.fh.read(length)
        except (OSError, ValueError) as err:
            raise ImageError(f"{self.name}: cannot read {length} bytes at offset {offset}: {err}") from err
        self.stats.read_calls += 1
        self.stats.bytes_read += len(data)
        return data

    def read_exact(self, offset: int, length: int, what: str) -> bytes:
        """Read exactly ``length`` bytes at ``offset`` or raise :class:`TruncatedImageError` naming ``what``."""
        data = self.pread(offset, length)
        if len(data) != length:
            raise TruncatedImageError(
                f"{self.name}: {what} at offset {offset} needs {length} bytes, but the file is "
                f"{self.size} bytes long (truncated?)"
            )
        return data

    # A minimal file-object face, for libraries that want one (dissect.hypervisor).
    def read(self, length: int = -1) -> bytes:
        if length is None or length < 0:
            length = max(0, self.size - self._pos)
        data = self.pread(self._pos, length)
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        elif whence == os.SEEK_END:
            self._pos = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        if self.owned:
            try:
                self.fh.close()
            except OSError:  # pragma: no cover - closing a read-only file
                log.debug("closing %s failed", self.name, exc_info=True)


class Layer:
    """One file of a disk chain, presenting its virtual disk.

    Subclasses set ``size``, ``format``, ``subtype`` and implement :meth:`read`.
    """

    format: str = "raw"
    subtype: str | None = None

    def __init__(self, file: CountedFile) -> None:
        self.file = file
        self.path = file.name
        self.size = 0
        self.parent: Layer | None = None
        self.warnings: list[str] = []
        #: more files this layer reads (VMDK extents), closed with it
        self.extra_files: list[CountedFile] = []

    def read(self, offset: int, length: int) -> bytes:  # pragma: no cover - abstract
        """Return exactly ``length`` bytes of the virtual disk at ``offset`` (caller keeps it in range)."""
        raise NotImplementedError

    def facts(self) -> ContainerFacts:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def own_id(self) -> str | None:
        """The id a differencing child records for this disk as its parent."""
        return None

    @property
    def expected_parent_id(self) -> str | None:
        """The id this disk recorded for its parent (differencing disks only)."""
        return None

    def parent_locators(self) -> list[tuple[str, str]]:
        """(kind, path) pairs naming the parent, in the order to try them."""
        return []

    def linkage_matches(self, parent: Layer) -> bool:
        return False

    def chain(self) -> list[Layer]:
        layers: list[Layer] = []
        layer: Layer | None = self
        while layer is not None:
            layers.append(layer)
            layer = layer.parent
        return layers

    def close_extra(self) -> None:
        for extra in self.extra_files:
            extra.close()

    def close(self) -> None:
        for layer in self.chain():
            layer.close_extra()
            layer.file.close()
