"""File systems inside the image: NTFS (dissect.ntfs) and FAT (dissect.fat), opened read-only.

Files are found by their Windows path, case-insensitively, with either slash. A missing file is
``None`` (or :class:`GuestFileNotFoundError` from :meth:`open`); a corrupt structure is
:class:`FileSystemError` naming the volume and the path.

This module holds what does not depend on the format: the :class:`Volume` base, :func:`open_volume` and the
guest's view of its Windows volume (:class:`GuestFileSystem`). The readers are :mod:`azvhdaudit.fs.ntfs`
(leaning on dissect.ntfs's internals for speed) and :mod:`azvhdaudit.fs.fat`; each is imported when a
volume of its kind is first opened, and its names are importable from here as before.

References: dissect.ntfs / dissect.fat; NTFS $Volume VOLUME_INFORMATION flags (0x0001 = dirty).
"""

from __future__ import annotations

import functools
import logging
import os
import struct
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, BinaryIO

from dissect.util.stream import RangeStream

from azvhdaudit.batch import fetch_unit
from azvhdaudit.errors import FileSystemError, GuestFileNotFoundError, ImageError
from azvhdaudit.streams import ReadOnlyStream

if TYPE_CHECKING:
    from azvhdaudit.fs.fat import MAX_FAT_DIRECTORY as MAX_FAT_DIRECTORY
    from azvhdaudit.fs.fat import FatVolume
    from azvhdaudit.fs.ntfs import NtfsVolume

__all__ = ["Volume", "NtfsVolume", "FatVolume", "GuestFileSystem", "open_volume"]

log = logging.getLogger(__name__)

#: errors the file system libraries raise on corrupt structures, besides their own (each reader adds those)
_FS_ERRORS: tuple[type[BaseException], ...] = (
    EOFError,
    struct.error,
    ValueError,
    IndexError,
    KeyError,
    OverflowError,
    RecursionError,
    UnicodeDecodeError,
    AttributeError,
    TypeError,
)

#: what a read of a file's structures or data may raise: a corrupt structure, or the image below ending or
#: damaged where the data lies (the file cannot be read there: FileSystemError, evidence not read)
_READ_ERRORS = (*_FS_ERRORS, ImageError)

_MAX_READ = 256 * 1024 * 1024
_ALIGN = 4096

#: bytes at the start of a guest file kept, per path, once read through :class:`GuestFileSystem`: a binary's
#: headers, which the version rules and the signature rules both read (each boot driver's, twice an audit)
HEAD_BYTES = 4096
#: bytes a read of a guest file's data fetches around each page it misses on a remote image
#: (:func:`azvhdaudit.batch.fetch_unit`): the readers of files (PE headers and resources, Authenticode's
#: certificate table, a catalog read whole) ask for what they need, so no more than the page
FILE_FETCH_UNIT = 4096

#: names of the readers' modules importable from here, loaded on first use
_LAZY = {"NtfsVolume": "ntfs", "FatVolume": "fat", "MAX_FAT_DIRECTORY": "fat"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"azvhdaudit.fs.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _norm(path: str) -> str:
    return "\\".join(p for p in path.replace("/", "\\").split("\\") if p)


class Volume:
    """A read-only file system on one partition."""

    kind = "unknown"
    #: what reading a file's structures or data may raise: a corrupt structure (each reader adds its library's
    #: errors), or the image below ending or damaged where the data lies (the file cannot be read there)
    read_errors: tuple[type[BaseException], ...] = _READ_ERRORS

    def __init__(self, stream: BinaryIO, offset: int, size: int, name: str) -> None:
        self.name = name
        self.offset = offset
        self.size = size
        # 4 KiB alignment (the cluster size NTFS uses on any Windows disk): with dissect's default buffer of
        # io.DEFAULT_BUFFER_SIZE (8 KiB) every 4 KiB cluster read fetched 8 KiB from the image.
        self._stream = RangeStream(stream, offset, size, align=_ALIGN)

    def open(self, path: str) -> BinaryIO:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def is_dir(self, path: str) -> bool:
        raise NotImplementedError

    def listdir(self, path: str) -> list[str] | None:
        raise NotImplementedError

    def read(self, path: str, max_size: int = _MAX_READ) -> bytes | None:
        """The file's bytes (at most ``max_size``), or ``None`` when it does not exist."""
        return _read_file(self, self.open, path, max_size)


def open_volume(stream: BinaryIO, offset: int, size: int, filesystem: str | None, name: str) -> Volume | None:
    """Open the file system ``filesystem`` (as probed) at ``offset``; ``None`` for kinds not read."""
    if filesystem == "ntfs":
        from azvhdaudit.fs.ntfs import NtfsVolume

        return NtfsVolume(stream, offset, size, name)
    if filesystem == "fat":
        from azvhdaudit.fs.fat import FatVolume

        return FatVolume(stream, offset, size, name)
    return None


def _read_file(volume: Volume, opener: Callable[[str], BinaryIO], path: str, max_size: int) -> bytes | None:
    """The bytes of ``path`` opened by ``opener`` (at most ``max_size``), or ``None`` when it does not exist; an error
    of ``volume``'s reader (ImageError: the image below ends or is damaged where the file's data lies) as a
    :class:`FileSystemError` naming the volume and the path."""
    try:
        fh = opener(path)
    except GuestFileNotFoundError:
        return None
    try:
        return fh.read(max_size)
    except volume.read_errors as err:
        raise FileSystemError(f"{volume.name}: cannot read {path}: {err}") from err


class _HeadStream(ReadOnlyStream):
    """A guest file opened through :class:`GuestFileSystem`: a read within its first :data:`HEAD_BYTES` is served
    from the head kept for its path (read whole the first time, by whichever reader comes first); the rest is read
    from the file as asked, each read fetching no more than it needs on a remote image (:data:`FILE_FETCH_UNIT`)."""

    def __init__(self, fh: BinaryIO, heads: dict[str, bytes], key: str) -> None:
        super().__init__()
        self._fh = fh
        self._heads = heads
        self._key = key
        self._pos = 0
        self.size = fh.seek(0, os.SEEK_END)

    @property
    def name(self) -> Any:
        return getattr(self._fh, "name", None)

    def read(self, size: int | None = -1) -> bytes:
        left = max(0, self.size - self._pos)
        size = left if size is None or size < 0 else min(size, left)
        end = self._pos + size
        if end <= min(HEAD_BYTES, self.size):
            head = self._heads.get(self._key)
            if head is None:
                head = self._heads[self._key] = self._read(0, min(HEAD_BYTES, self.size))
            data = head[self._pos : end]
        else:
            data = self._read(self._pos, size)
        self._pos += len(data)
        return data

    def _read(self, offset: int, size: int) -> bytes:
        with fetch_unit(FILE_FETCH_UNIT):
            self._fh.seek(offset)
            return bytes(self._fh.read(size))

    def close(self) -> None:
        self._fh.close()
        super().close()


class GuestFileSystem:
    """The guest's Windows volume as rules see it (the :class:`GuestFiles` protocol), read-only.

    A file's first :data:`HEAD_BYTES` are read once per path however many rules open it (:class:`_HeadStream`)."""

    def __init__(self, volume: Volume) -> None:
        self.volume = volume
        self._versions: dict[str, tuple[int, int, int, int] | None] = {}
        self._heads: dict[str, bytes] = {}

    def exists(self, path: str) -> bool:
        return self.volume.exists(path)

    def is_dir(self, path: str) -> bool:
        return self.volume.is_dir(path)

    def listdir(self, path: str) -> list[str] | None:
        return self.volume.listdir(path)

    def read(self, path: str, max_size: int = 16 * 1024 * 1024) -> bytes | None:
        """The file's bytes (at most ``max_size``), or ``None`` when it does not exist (:meth:`Volume.read`), its
        head shared with the other readers of the path."""
        return _read_file(self.volume, self.open, path, max_size)

    def open(self, path: str) -> BinaryIO:
        return _HeadStream(self.volume.open(path), self._heads, _norm(path).lower())

    def file_version(self, path: str) -> tuple[int, int, int, int] | None:
        """The PE FileVersion (VS_FIXEDFILEINFO) of ``path``; ``None`` when absent or unreadable."""
        key = _norm(path).lower()
        if key not in self._versions:
            from azvhdaudit.pe import file_version_of

            try:
                fh = self.open(path)
            except GuestFileNotFoundError:
                self._versions[key] = None
                return None
            # Only the headers and the resource section are read, never the whole binary.
            try:
                self._versions[key] = file_version_of(fh, name=f"{self.volume.name}:\\{_norm(path)}")
            except self.volume.read_errors as err:
                raise FileSystemError(f"{self.volume.name}: cannot read {path}: {err}") from err
        return self._versions[key]

    def prefetch_versions(self, paths: Iterable[str]) -> None:
        """Read the PE versions of ``paths`` side by side when the image is remote (:func:`azvhdaudit.batch.gather`):
        the files are independent, so their records and headers are fetched together, a round trip per step
        instead of per file. Results land where :meth:`file_version` keeps them; errors are met there again."""
        from azvhdaudit.batch import gather, is_remote

        if is_remote(self.volume):
            gather([functools.partial(self.file_version, path) for path in paths])
