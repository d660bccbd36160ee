"""FAT volumes (the EFI system partition) read with dissect.fat, every cluster chain walk bounded.

References: dissect.fat; Microsoft, "FAT: General Overview of On-Disk Format" (directory entries, long names).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, BinaryIO

from dissect.fat import fat as _fat
from dissect.fat.exceptions import Error as FatError

from azvhdaudit import fs as _base
from azvhdaudit.batch import fetch_unit
from azvhdaudit.errors import CorruptVolumeError, FileSystemError, GuestFileNotFoundError, ImageError
from azvhdaudit.fs import Volume, _norm

__all__ = ["FatVolume", "MAX_FAT_DIRECTORY"]

log = logging.getLogger(__name__)

#: errors dissect.fat and the parsing here raise on corrupt structures
_FS_ERRORS = (FatError, *_base._FS_ERRORS)
_READ_ERRORS = (*_FS_ERRORS, ImageError)


_SLOT = 32
#: bytes a read of the FAT or a directory fetches around each page it misses on a remote image
#: (:func:`azvhdaudit.batch.fetch_unit`): an EFI system partition's directories and its table are a few clusters
FAT_FETCH_UNIT = 4096
_LONG_NAME = 0x0F
_LONG_NAME_MASK = 0x3F
_LAST_LONG_ENTRY = 0x40


class _Slots:
    """A FAT directory's bytes, read a cluster at a time as far as they are asked for."""

    __slots__ = ("stream", "chunk", "data", "eof")

    def __init__(self, stream: BinaryIO, chunk: int) -> None:
        self.stream = stream
        self.chunk = chunk
        self.data = bytearray()
        self.eof = False

    def at(self, offset: int) -> bytes:
        while len(self.data) < offset + _SLOT and not self.eof:
            self.stream.seek(len(self.data))
            more = self.stream.read(self.chunk)
            self.eof = not more
            self.data += more
        return bytes(self.data[offset : offset + _SLOT])


def _fat_names(fs: Any, node: Any) -> Iterator[tuple[str, int, Any]]:
    """What dissect.fat's ``node.iterdir()`` lists, as (name, offset of the entry's first slot, the
    DirectoryEntry or ``None``), the names decoded with struct as DirectoryEntry decodes them.

    DirectoryEntry decodes every slot with cstruct (~45 µs an entry); a lookup needs the names, and the
    entry it finds is then decoded by dissect (:meth:`FatVolume._child`). An entry whose long name
    dissect would not accept (two last entries, none at all, a name that is not UTF-16) is decoded by
    dissect here, which raises its error or gives the entry.
    """
    stream = node.open()
    slots = _Slots(stream, fs.cluster_size)
    offset = 0
    while True:
        if offset >= MAX_FAT_DIRECTORY:
            raise CorruptVolumeError(
                f"{getattr(fs.fat, 'volume', 'FAT volume')}: directory {getattr(node, 'path', '') or '(root)'!r} "
                "holds more than 65,536 entries, the format's limit"
            )
        slot = slots.at(offset)
        if len(slot) < _SLOT or slot[0] == 0x00:
            return
        if slot[0] == 0xE5:
            offset += _SLOT
            continue
        start = offset
        offset += _SLOT
        long_name = None
        if slot[11] & _LONG_NAME_MASK == _LONG_NAME:
            parts: list[tuple[int, bytes]] = []
            odd = False
            while slot[11] == _LONG_NAME:
                if slot[0] & _LAST_LONG_ENTRY and any(o & _LAST_LONG_ENTRY for o, _ in parts):
                    odd = True
                parts.append((slot[0], slot[1:11] + slot[14:26] + slot[28:32]))
                slot = slots.at(offset)
                offset += _SLOT
                if len(slot) < _SLOT:
                    return  # dissect's EOFError in the middle of an entry ends the listing
            text = b"".join(p for _, p in sorted(parts, key=lambda p: p[0] & 0x3F))
            nul = next((i for i in range(0, len(text), 2) if text[i : i + 2] == b"\x00\x00"), len(text))
            try:
                long_name = text[:nul].decode("utf-16-le")
            except UnicodeDecodeError:
                odd = True
            if odd or not parts:
                stream.seek(start)
                try:
                    entry = _fat.DirectoryEntry(fs, stream, node)
                except EOFError:
                    return
                offset = stream.tell()
                yield str(entry.name), start, entry
                continue
        short = bytearray(slot[:11])
        if short[0] == 0x05:
            short[0] = 0xE5
        base = short[:8].decode(fs.encoding).rstrip("\x00").rstrip()
        ext = short[8:].decode(fs.encoding).rstrip("\x00").rstrip()
        yield long_name or (f"{base}.{ext}" if ext else base), start, None


class _Listing:
    """A FAT directory listing as far as it was read: (lower-cased name, first slot, entry) of each entry,
    the rest of the listing (``None`` once it ended) and the error it ended with."""

    __slots__ = ("entries", "rest", "error")

    def __init__(self, rest: Iterator[tuple[str, int, Any]]) -> None:
        self.entries: list[list[Any]] = []
        self.rest: Iterator[tuple[str, int, Any]] | None = rest
        self.error: BaseException | None = None


#: the longest FAT directory: 65,536 entries of 32 bytes (FAT specification, "Directory Structure")
MAX_FAT_DIRECTORY = 65536 * _SLOT


def _chain_text(head: list[int], tail: list[int], walked: int, then: int) -> str:
    """A cluster chain for a message: its first and last clusters (the middle elided), then where it goes."""
    middle = walked - len(head) - len(tail)
    parts = [*map(str, head), *([f"... ({middle} more)"] if middle > 0 else []), *map(str, tail), str(then)]
    return " -> ".join(parts)


class _BoundedFat(_fat.FAT):
    """dissect.fat's FAT with every cluster chain walk bounded.

    dissect.fat's ``FAT.chain`` follows the table from cluster to cluster until an end-of-chain mark: an
    entry pointing to itself, or any cycle, never ends, and ``runlist`` grows without limit. Here a chain
    visits each data cluster at most once: it may hold at most the volume's cluster count (2 .. count + 1),
    a cluster seen before is a loop, a cluster outside that range is a pointer off the volume; each is a
    :class:`~azvhdaudit.errors.CorruptVolumeError` naming the volume, the cluster and the chain. The
    clusters seen are one bit each in a bitmap of the volume's clusters (10 KiB for an 80,000-cluster ESP).
    """

    def __init__(self, fat: _fat.FAT, volume: str, clusters: int) -> None:
        # the table dissect opened, read through its cached get(); nothing is re-read
        self.fh = fat.fh
        self.bits_per_entry = fat.bits_per_entry
        self.entry_count = fat.entry_count
        self.get = fat.get  # type: ignore[method-assign]
        self.volume = volume
        #: the highest cluster number that names a data cluster of the volume (and has a FAT entry)
        self.last_cluster = min(clusters + 1, self.entry_count - 1)
        bits = self.bits_per_entry
        self._data_max = _fat.mask(_fat.DATA_CLUSTER_MAX, bits)
        self._eoc = (_fat.mask(_fat.END_OF_CLUSTER_MIN, bits), _fat.mask(_fat.END_OF_CLUSTER_MAX, bits))
        self._bad = _fat.mask(_fat.BAD_CLUSTER, bits)

    def chain(self, cluster: int) -> Iterator[int]:
        """The clusters of the chain starting at ``cluster``, as dissect's ``FAT.chain`` yields them.

        Bound: at most ``last_cluster - 1`` clusters (the volume's data clusters), each once."""
        first, last = cluster, self.last_cluster
        seen = bytearray((last >> 3) + 1)
        head: list[int] = []
        tail: list[int] = []
        walked = 0

        def corrupt(what: str) -> CorruptVolumeError:
            chain = _chain_text(head, tail, walked, cluster)
            return CorruptVolumeError(
                f"{self.volume}: FAT cluster chain starting at cluster {first} {what} (chain: {chain})"
            )

        while True:
            if not 2 <= cluster <= last:
                raise corrupt(f"reaches cluster {cluster}, outside the volume's data clusters 2-{last}")
            if seen[cluster >> 3] & (1 << (cluster & 7)):
                raise corrupt(f"loops: it comes back to cluster {cluster} after {walked} clusters")
            seen[cluster >> 3] |= 1 << (cluster & 7)
            walked += 1
            if len(head) < 8:
                head.append(cluster)
            else:
                tail.append(cluster)
                if len(tail) > 4:
                    del tail[0]
            value = self.get(cluster)
            if 2 <= value <= self._data_max:
                yield cluster
                cluster = value
                continue
            if (self.bits_per_entry == 12 and value == _fat.FAT12_EOC) or self._eoc[0] <= value <= self._eoc[1]:
                yield cluster
                return
            if value == self._bad:
                raise _fat.BadClusterError(cluster)
            if value == _fat.FREE_CLUSTER:
                raise _fat.FreeClusterError(cluster)
            previous, cluster = cluster, value
            raise corrupt(f"holds a reserved value, 0x{value:X}, in the entry of cluster {previous}")


class FatVolume(Volume):
    """A FAT12/16/32 volume (the EFI system partition).

    Bounds: a cluster chain holds each of the volume's data clusters at most once (:class:`_BoundedFat`); a
    directory is read to 65,536 entries at most (the format's limit, :data:`MAX_FAT_DIRECTORY`).
    """

    kind = "fat"
    read_errors = _READ_ERRORS

    def __init__(self, stream: BinaryIO, offset: int, size: int, name: str) -> None:
        super().__init__(stream, offset, size, name)
        # Directory listings as far as lookups have read them, by lower-cased directory path. dissect.fat
        # keeps a listing only once iterdir() ran to its end, and a lookup stops at its match, so every
        # lookup parsed the directories on its way again (the boot store, then its logs, walk the same four).
        self._listings: dict[str, _Listing] = {}
        try:
            with fetch_unit(FAT_FETCH_UNIT):
                self.fs = _fat.FATFS(self._stream)
            bpb = self.fs.bpb
            clusters = max(0, self.fs.total_sectors - self.fs.first_data_sector) // bpb.BPB_SecPerClus
            self.fs.fat = _BoundedFat(self.fs.fat, name, clusters)
        except _FS_ERRORS as err:
            raise FileSystemError(f"{name}: FAT at offset {offset} cannot be read: {err}") from err

    def _child(self, key: str, node: Any, part: str) -> Any:
        """The first entry of directory ``node`` (at ``key``) named ``part``, case-insensitively, or None.

        Reads the directory only as far as the match, as a walk of ``node.iterdir()`` does. A corrupt
        entry that ended the listing is raised again for every name not found before it; any other error
        (a read of the image that failed) forgets the listing, to be read again.
        """
        listing = self._listings.get(key)
        if listing is None:
            listing = self._listings[key] = _Listing(_fat_names(self.fs, node))
        wanted = part.lower()
        found = next((item for item in listing.entries if item[0] == wanted), None)
        while found is None and listing.rest is not None:
            try:
                name, start, entry = next(listing.rest)
            except StopIteration:
                listing.rest = None
                break
            except _FS_ERRORS as err:
                listing.rest, listing.error = None, err
                raise
            except BaseException:
                del self._listings[key]
                raise
            listing.entries.append([name.lower(), start, entry])
            if name.lower() == wanted:
                found = listing.entries[-1]
        if found is None:
            if listing.error is not None:
                raise listing.error
            return None
        if found[2] is None:
            stream = node.open()
            stream.seek(found[1])
            found[2] = _fat.DirectoryEntry(self.fs, stream, node)
        return found[2]

    def _entry(self, path: str):  # type: ignore[no-untyped-def]
        # Walk case-insensitively: FAT stores long names with their case, Windows ignores it.
        try:
            with fetch_unit(FAT_FETCH_UNIT):
                return self._walk(self.fs.root, "", path)
        except _READ_ERRORS as err:
            raise FileSystemError(f"{self.name}: cannot look up {path}: {err}") from err

    def _walk(self, node, key: str, path: str):  # type: ignore[no-untyped-def]
        """The entry at ``path`` below ``node`` (at ``key``), or None."""
        for part in _norm(path).split("\\"):
            if not part:
                continue
            if not node.is_directory():
                return None
            match = self._child(key, node, part)
            if match is None:
                return None
            node = match
            key = f"{key}\\{part.lower()}"
        return node

    def exists(self, path: str) -> bool:
        return self._entry(path) is not None

    def is_dir(self, path: str) -> bool:
        entry = self._entry(path)
        return bool(entry is not None and entry.is_directory())

    def listdir(self, path: str) -> list[str] | None:
        entry = self._entry(path)
        if entry is None or not entry.is_directory():
            return None
        try:
            return sorted(str(c.name) for c in entry.iterdir() if c.name not in (".", ".."))
        except _READ_ERRORS as err:
            raise FileSystemError(f"{self.name}: cannot list {path}: {err}") from err

    def open(self, path: str) -> BinaryIO:
        entry = self._entry(path)
        if entry is None or entry.is_directory():
            raise GuestFileNotFoundError(f"{self.name}: {path} does not exist")
        try:
            return entry.open()  # type: ignore[no-any-return]
        except _READ_ERRORS as err:
            raise FileSystemError(f"{self.name}: cannot open {path}: {err}") from err
