"""Open a disk image file — VHD, VHDX, VMDK, QCOW2 or raw — as one read-only stream over its virtual disk.

References:
- Microsoft, "Virtual Hard Disk Image Format Specification" v1.0 (2006): :mod:`.vhd`.
- [MS-VHDX] Virtual Hard Disk v2 (VHDX) File Format: :mod:`.vhdx`.
- Microsoft, "Prepare a Windows VHD or VHDX to upload to Azure" (the formats an upload accepts).

    >>> with open_container("disk.vhdx") as disk:           # doctest: +SKIP
    ...     mbr = disk.read(512)
    ...     print(disk.facts.subtype, disk.stats.bytes_read)

The format is detected from the content, never from the file name. Differencing disks are followed
to their parents through the child's parent locators (relative path first, then absolute paths, whose
file name is also tried beside the child); the parent's id must equal the id the child recorded.
Files are only ever opened for reading.
"""

from __future__ import annotations

import io
import logging
import ntpath
import os
import posixpath
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any, BinaryIO

from azvhdaudit.container.base import ContainerStats, CountedFile, Layer
from azvhdaudit.container.other import (
    QCOW2_MAGIC,
    VMDK_DESCRIPTOR,
    VMDK_MAGIC,
    HypervisorLayer,
    RawLayer,
    raw_signature,
)
from azvhdaudit.errors import (
    CorruptImageError,
    ImageError,
    ImageNotFoundError,
    ParentError,
    ParentLoopError,
    ParentMismatchError,
    ParentNotFoundError,
    SpecialFileError,
    UnsupportedFormatError,
)
from azvhdaudit.facts import ContainerFacts, ParentLink
from azvhdaudit.localfiles import open_regular
from azvhdaudit.streams import ReadOnlyStream

__all__ = ["Container", "ContainerStats", "Opener", "open_container", "MAX_CHAIN"]

log = logging.getLogger(__name__)

#: opens a file by path for reading (binary); parents of a differencing disk are opened with it
Opener = Callable[[str], BinaryIO]
#: the longest parent chain followed (Hyper-V checkpoints rarely go past a few dozen)
MAX_CHAIN = 128


def _default_opener(path: str) -> BinaryIO:
    # a FIFO, socket or character device is refused before it is opened (open() on a FIFO waits for a writer)
    return open_regular(path, SpecialFileError, "the file")


class Container(ReadOnlyStream):
    """A read-only, seekable binary stream over a virtual disk (the whole parent chain).

    ``size`` is the virtual size; ``facts`` describes the container; ``stats`` counts the reads done on
    the underlying files; ``path`` is the image's name; ``chain`` lists the files, child first.
    """

    def __init__(self, layer: Layer, facts: ContainerFacts, stats: ContainerStats) -> None:
        super().__init__()
        self._layer = layer
        self.facts = facts
        self.stats = stats
        self.path = layer.path
        self.chain: list[str] = []
        for item in layer.chain():
            self.chain.append(item.path)
            self.chain.extend(extra.name for extra in item.extra_files)
        self.size = layer.size
        self._pos = 0

    def __repr__(self) -> str:
        return f"<Container {self.path!r} {self.facts.format}/{self.facts.subtype} size={self.size}>"

    @property
    def name(self) -> str:
        return self.path

    def read(self, size: int | None = -1) -> bytes:
        self._check()
        remaining = max(0, self.size - self._pos)
        n = remaining if size is None or size < 0 else min(size, remaining)
        if n == 0:
            return b""
        data = self._layer.read(self._pos, n)
        self._pos += n
        return data

    def close(self) -> None:
        """Close every file this container opened (never a file object the caller passed in)."""
        if not self.closed:
            self._layer.close()
        super().close()


def open_container(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    name: str | None = None,
    opener: Opener | None = None,
    allow_parent_mismatch: bool = False,
) -> Container:
    """Open ``source`` (a path or a binary file object) as a :class:`Container`.

    ``name`` names a file object (in messages, and as the base for its parents' relative paths); for a
    path it only relabels the container's ``path`` and ``facts.path``.
    ``opener`` opens paths (the image, if a path, and every parent); by default a regular file or a block
    device is opened read-only and anything else (a FIFO, a socket, a character device) raises
    :class:`~azvhdaudit.errors.SpecialFileError` naming the path and its type.
    ``allow_parent_mismatch`` reads through a parent whose id differs from the one the child recorded
    (the parent link's ``linkage_matches`` is then False and a warning says so) instead of raising
    :class:`~azvhdaudit.errors.ParentMismatchError`.
    """
    stats = ContainerStats()
    open_path = opener or _default_opener
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        try:
            fh = open_path(path)
        except IsADirectoryError as err:
            raise UnsupportedFormatError(f"not a disk image: {path} is a directory") from err
        except FileNotFoundError as err:
            raise ImageNotFoundError(f"{path}: no such image file") from err
        except PermissionError as err:
            raise ImageError(f"{path}: cannot be opened for reading: {err.strerror}") from err
        # the path, not the label, is where parents and extents are looked for
        file = CountedFile(fh, path, stats, owned=True)
        has_path = True
    else:
        given = name or getattr(source, "name", None)
        label = given if isinstance(given, str) and given else "<stream>"
        has_path = label != "<stream>"
        file = CountedFile(source, label, stats, owned=False)
    layer: Layer | None = None
    try:
        layer = _open_layer(file, open_path, has_path=has_path)
        links = _attach_parents(layer, open_path, stats, allow_parent_mismatch, has_path=has_path)
    except BaseException:
        if layer is not None:
            layer.close()  # every parent and extent opened so far
        else:
            file.close()
        raise
    warnings: list[str] = []
    for item in layer.chain():
        warnings.extend(item.warnings)
    for warning in warnings:
        log.warning("%s", warning)
    facts = replace(layer.facts(), parents=tuple(links), warnings=tuple(warnings))
    if name and isinstance(source, (str, os.PathLike)):
        facts = replace(facts, path=name)
    container = Container(layer, facts, stats)
    container.path = facts.path
    return container


# --- detection -------------------------------------------------------------------------------


#: a VHDX file's first 8 bytes (:data:`azvhdaudit.container.vhdx.SIGNATURE`), here so that recognising a file
#: does not load the VHDX reader
VHDX_SIGNATURE = b"vhdxfile"

#: the start of a remote file fetched with its end before the format is known (see :func:`_open_layer`)
_FIRST_READS = 320 * 1024


def _open_layer(file: CountedFile, opener: Opener | None = None, *, has_path: bool = True) -> Layer:
    """Recognise the file by its content and open it as one layer (parents not attached).

    ``opener`` opens the extent files a VMDK descriptor names, beside the descriptor.
    """
    if file.size == 0:
        raise UnsupportedFormatError(f"not a disk image: {file.name} is empty (0 bytes)")
    if getattr(file.fh, "is_remote", False):
        # one round trip for what recognising the format and opening it read first, wherever the format puts
        # it: a VHDX's identifier, headers and region tables (its first 320 KiB), a VHD's footer (its last sector)
        # (a VHDX whose start came with the size lookup needs no more: it keeps nothing at its end)
        fh: Any = file.fh
        if not (fh.cached(0, len(VHDX_SIGNATURE)) and fh.pread(0, len(VHDX_SIGNATURE)) == VHDX_SIGNATURE):
            fh.prefetch([(0, _FIRST_READS), (file.size - 512, 512)])
    head = file.pread(0, 8192)
    # each format's reader is imported when a file of its format is met (an audit of a VHDX loads no VHD code)
    if head[:8] == VHDX_SIGNATURE:
        from azvhdaudit.container.vhdx import VHDXLayer

        return VHDXLayer(file)
    if head[:4] == QCOW2_MAGIC:
        return HypervisorLayer(file, "qcow2")
    if head[:4] == VMDK_MAGIC or head.startswith(VMDK_DESCRIPTOR):
        extent_opener = None
        if opener is not None and has_path:
            extent_opener = partial(_open_beside, file, opener)
        return HypervisorLayer(file, "vmdk", extent_opener)
    from azvhdaudit.container.vhd import VHDLayer, probe_vhd

    where = probe_vhd(file)
    if where is not None:
        return VHDLayer(file, where)
    signature = raw_signature(head)
    if signature is not None:
        return RawLayer(file, signature)
    raise UnsupportedFormatError(
        f"not a disk image: {file.name} ({file.size} bytes) has no VHDX, VHD, VMDK or QCOW2 signature and "
        f"no MBR, GPT, NTFS or FAT boot sector at the start (first bytes {head[:16].hex()})"
    )


def _open_beside(image: CountedFile, opener: Opener, relative: str) -> CountedFile:
    """Open a file an image names by a path relative to the image (a VMDK extent)."""
    (path,) = _parent_candidates(image.name, [("relative", relative)])
    try:
        fh = opener(path)
    except OSError as err:
        raise CorruptImageError(f"{image.name}: extent file {path} cannot be opened: {err}") from err
    return CountedFile(fh, path, image.stats, owned=True)


# --- parents ---------------------------------------------------------------------------------


def _is_windows_path(value: str) -> bool:
    return len(value) >= 2 and (value[1] == ":" or value.startswith("\\\\"))


def _parent_candidates(child: str, locators: list[tuple[str, str]]) -> list[str]:
    """Paths to try for a parent, in order, without duplicates."""
    remote = "://" in child
    base = posixpath.dirname(child) if remote else os.path.dirname(child)

    def beside(relative: str) -> str:
        if remote:
            return posixpath.normpath(posixpath.join(base, relative)).replace(":/", "://", 1)
        return os.path.normpath(os.path.join(base, relative))

    found: list[str] = []
    for kind, value in locators:
        posix = value.replace("\\", "/")
        if kind == "relative":
            found.append(beside(posix))
        else:
            if os.name == "nt" or (posix.startswith("/") and not _is_windows_path(value)):
                found.append(value)
            found.append(beside(ntpath.basename(value)))
    unique: list[str] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def _identity(path: str | None, fh: Any) -> set[Any]:
    keys: set[Any] = set()
    if path and "://" not in path:
        keys.add(os.path.realpath(path))
    try:
        st = os.fstat(fh.fileno())
        keys.add((st.st_dev, st.st_ino))
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        pass
    return keys


def _attach_parents(
    layer: Layer, opener: Opener, stats: ContainerStats, allow_mismatch: bool, *, has_path: bool
) -> list[ParentLink]:
    """Follow a differencing disk's parents, nearest first; the links found.

    Bound: at most :data:`MAX_CHAIN` files; each file may appear once, known by its real path and by its
    device and inode (a link or a second name of a file already in the chain is a loop,
    :class:`~azvhdaudit.errors.ParentLoopError`). Each parent is opened as the default opener opens files: a
    regular file or a block device only.
    """
    links: list[ParentLink] = []
    chain_names = [layer.path]
    seen = _identity(layer.path if has_path else None, layer.file.fh)
    current = layer
    while current.subtype == "differencing":
        from azvhdaudit.container.vhd import VHDLayer
        from azvhdaudit.container.vhdx import VHDXLayer

        if not isinstance(current, (VHDLayer, VHDXLayer)):
            break  # a QCOW2 backing file is refused when the layer opens
        if not has_path:
            raise ParentNotFoundError(
                f"{current.path}: is a differencing {current.format.upper()} disk; its parent is found from "
                "its file name, so open it by path (or pass name= with its path)"
            )
        if len(chain_names) > MAX_CHAIN:
            raise ParentError(f"{layer.path}: parent chain longer than {MAX_CHAIN} files: " + " -> ".join(chain_names))
        locators = current.parent_locators()
        candidates = _parent_candidates(current.path, locators)
        parent_file, parent_path, tried = _find_parent(current, candidates, locators, opener, stats)
        try:
            keys = _identity(parent_path, parent_file.fh)
            if keys & seen:
                raise ParentLoopError(
                    f"{current.path}: parent chain loops back: " + " -> ".join([*chain_names, parent_path])
                )
            try:
                parent = _open_layer(parent_file, opener)
            except UnsupportedFormatError as err:
                raise ParentError(
                    f"{current.path}: parent {parent_path} is not a {current.format.upper()} file: {err}"
                ) from err
            if parent.format != current.format:
                raise ParentError(
                    f"{current.path}: parent {parent_path} is a {parent.format.upper()} file; a differencing "
                    f"{current.format.upper()} disk needs a {current.format.upper()} parent"
                )
        except BaseException:
            parent_file.close()
            raise
        matches = current.linkage_matches(parent)
        expected = current.expected_parent_id
        own = parent.own_id
        if not matches:
            field = "parent_unique_id" if current.format == "vhd" else "parent_linkage"
            parent_field = "unique id" if current.format == "vhd" else "DataWriteGuid"
            words = (
                f"{current.path}: parent {parent_path} does not match: the child's {field} is {expected}, "
                f"the parent's {parent_field} is {own} (the parent was changed after the child was made)"
            )
            if not allow_mismatch:
                parent.close()
                raise ParentMismatchError(words)
            current.warnings.append(words)
        links.append(
            ParentLink(
                path=parent_path,
                format=parent.format,
                id=own,
                expected_id=expected,
                linkage_matches=matches,
                tried=tuple(tried),
            )
        )
        current.parent = parent
        seen |= keys
        chain_names.append(parent_path)
        current = parent
    return links


def _find_parent(
    child: Layer, candidates: list[str], locators: list[tuple[str, str]], opener: Opener, stats: ContainerStats
) -> tuple[CountedFile, str, list[str]]:
    """Open the first candidate that exists; returns (file, path, paths tried before it)."""
    tried: list[str] = []
    for path in candidates:
        if opener is _default_opener and os.path.isdir(path):
            raise ParentError(f"{child.path}: parent locator names {path}, which is a directory, not a disk file")
        try:
            fh = opener(path)
        except FileNotFoundError:
            tried.append(path)
            continue
        except IsADirectoryError as err:
            raise ParentError(f"{child.path}: parent locator names {path}, which is a directory") from err
        except SpecialFileError as err:
            raise ParentError(f"{child.path}: parent {err}") from err
        except OSError as err:
            raise ParentError(f"{child.path}: parent {path} cannot be opened: {err}") from err
        try:
            return CountedFile(fh, path, stats, owned=True), path, tried
        except ImageError:
            fh.close()
            raise
    where = ", ".join(f"{kind} '{value}'" for kind, value in locators) or "none"
    raise ParentNotFoundError(
        f"{child.path}: parent of this differencing {child.format.upper()} disk not found; tried "
        + (", ".join(tried) if tried else "no path (the disk names no usable parent locator)")
        + f" (parent locators: {where})"
    )
