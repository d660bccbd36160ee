"""Open a Windows VM disk image read-only and expose what the rules read.

The data path, each layer knowing only the one below::

    file -> container (azvhdaudit.container) -> partitions (azvhdaudit.volumes)
         -> NTFS / FAT (azvhdaudit.fs) -> hives (azvhdaudit.registry) and files -> facts

The Windows volume is found by content (an NTFS volume holding ``Windows\\System32\\config\\SYSTEM``),
not by partition type; the boot store is ``\\Boot\\BCD`` (BIOS) or ``\\EFI\\Microsoft\\Boot\\BCD`` on the
EFI system partition. Nothing is opened for writing, ever.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from azvhdaudit.errors import (
    AuditError,
    EncryptedVolumeError,
    FileSystemError,
    NoWindowsVolumeError,
    RegistryError,
)
from azvhdaudit.facts import ImageFacts
from azvhdaudit.fs import GuestFileSystem, Volume, open_volume
from azvhdaudit.registry.identity import identity_problem
from azvhdaudit.registry.model import Hive, RegistryView
from azvhdaudit.volumes import ESP_TYPE, read_layout

if TYPE_CHECKING:
    from azvhdaudit.container import Container

__all__ = ["Image", "open_image", "DEFAULT_HIVES", "OPT_IN_HIVES"]

log = logging.getLogger(__name__)

CONFIG_DIR = "Windows\\System32\\config"
SYSTEM_HIVE_PATH = CONFIG_DIR + "\\SYSTEM"
BCD_PATHS_BIOS = ("Boot\\BCD",)
BCD_PATHS_UEFI = ("EFI\\Microsoft\\Boot\\BCD",)

#: hives opened by default; SAM and SECURITY only when asked for
DEFAULT_HIVES = ("SYSTEM", "SOFTWARE")
OPT_IN_HIVES = ("SAM", "SECURITY")


def _source_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)  # type: ignore[return-value]
    return str(getattr(source, "name", None) or f"<{type(source).__name__}>")


class Image:
    """An opened image: container, partitions, the Windows volume, registry, boot store and facts.

    Use :func:`open_image` to get one; close it (or use ``with``) to release the files.
    """

    def __init__(
        self,
        container: Container,
        *,
        source: str,
        backend: str = "regf",
        hives: Iterable[str] = DEFAULT_HIVES,
        require_windows: bool = True,
        read_ahead: bool = False,
    ) -> None:
        self._init_state(container, source, backend)

        started = time.perf_counter()
        cfacts = container.facts
        layout = read_layout(container, source, cfacts.virtual_size, cfacts.logical_sector_size)
        self.facts = self._facts_of(layout)
        names = tuple(h.upper() for h in hives)
        if read_ahead:
            self._read_ahead(layout, names)
        self._find_volumes()
        self.timings_ms["volumes"] = (time.perf_counter() - started) * 1000

        if self.windows_volume is None and require_windows:
            if self.facts.bitlocker:
                raise EncryptedVolumeError(
                    f"{source}: the disk's NTFS volume is BitLocker-encrypted (-FVE-FS-); decrypt the drive "
                    "inside the VM (manage-bde -off C:) before auditing or uploading"
                )
            raise NoWindowsVolumeError(
                f"{source}: no NTFS volume holds {SYSTEM_HIVE_PATH} "
                f"(partitions: {self._partition_summary()}); is this an OS disk?"
            )

        started = time.perf_counter()
        self.registry = self._open_registry(names)
        self.timings_ms["registry"] = (time.perf_counter() - started) * 1000
        self.files = GuestFileSystem(self.windows_volume) if self.windows_volume is not None else None

        started = time.perf_counter()
        self._fill_facts()
        self.timings_ms["facts"] = (time.perf_counter() - started) * 1000

    def _init_state(self, container: Container, source: str, backend: str) -> None:
        self.source = source
        self.container = container
        self.backend = backend
        self.timings_ms: dict[str, float] = {}
        self.volumes: dict[int, Volume] = {}
        self.windows_volume: Volume | None = None
        self.boot_volume: Volume | None = None
        self._bcd: Any = None
        self._bcd_error: str | None = None
        self._bcd_done = False
        self._closables: list[IO[bytes]] = []
        self._boot_errors: list[str] = []

    def _facts_of(self, layout: Any) -> ImageFacts:
        return ImageFacts(
            source=self.source,
            container=self.container.facts,
            partition_style=layout.style,
            mbr_disk_signature=layout.mbr_disk_signature,
            gpt_disk_guid=layout.gpt_disk_guid,
            partitions=layout.partitions,
        )

    def _read_ahead(self, layout: Any, names: tuple[str, ...]) -> None:
        """On a remote image, every read of the opening and of the rules fetched in one gather, before the real
        run (:func:`azvhdaudit.prefetch.read_ahead_image`); on a local one, nothing."""
        from azvhdaudit.batch import is_remote

        if not is_remote(self.container):
            return
        from azvhdaudit.prefetch import read_ahead_image

        def scratch() -> Image:
            image = Image.__new__(Image)
            image._init_state(self.container, self.source, self.backend)
            image.facts = image._facts_of(layout)
            return image

        read_ahead_image(scratch, names)

    # --- volumes ------------------------------------------------------------------------------

    def _partition_summary(self) -> str:
        if not self.facts.partitions:
            return "none"
        return ", ".join(f"#{p.index} {p.type_name} {p.filesystem or '?'} at {p.offset}" for p in self.facts.partitions)

    def _find_volumes(self) -> None:
        facts = self.facts
        facts.bitlocker = any(p.encrypted for p in facts.partitions)
        for part in facts.partitions:
            name = f"{self.source} partition {part.index} (offset {part.offset})"
            try:
                volume = open_volume(self.container, part.offset, part.size, part.filesystem, name)
            except FileSystemError as err:
                log.warning("%s", err)
                continue
            if volume is None:
                continue
            self.volumes[part.index] = volume
            if self.windows_volume is None and volume.kind == "ntfs" and self._exists(volume, SYSTEM_HIVE_PATH):
                self.windows_volume = volume
                facts.windows_partition = part.index

        # The boot store: on the ESP for UEFI, else \Boot\BCD on the active partition or the Windows volume.
        candidates: list[tuple[int, str]] = []
        for part in facts.partitions:
            if part.index not in self.volumes:
                continue
            if part.type_id == ESP_TYPE or part.type_id == "0xEF":
                candidates += [(part.index, p) for p in BCD_PATHS_UEFI]
        for part in sorted(facts.partitions, key=lambda p: (not p.bootable, p.index)):
            if part.index in self.volumes and part.type_id != ESP_TYPE:
                candidates += [(part.index, p) for p in BCD_PATHS_BIOS]
        for index, path in candidates:
            if self._exists(self.volumes[index], path, boot=True):
                facts.boot_partition, facts.bcd_path = index, path
                self.boot_volume = self.volumes[index]
                break

        if facts.partition_style == "gpt" and facts.bcd_path in BCD_PATHS_UEFI:
            facts.generation = 2
        elif facts.partition_style in ("mbr", "none"):
            facts.generation = 1
        elif facts.partition_style == "gpt":
            has_esp = any(p.type_id == ESP_TYPE for p in facts.partitions)
            facts.generation = 2 if has_esp else None

        if self.windows_volume is not None:
            dirty = getattr(self.windows_volume, "dirty", None)
            facts.ntfs_dirty = dirty
            facts.hiberfil_present = self.windows_volume.exists("hiberfil.sys")

    def _exists(self, volume: Volume, path: str, boot: bool = False) -> bool:
        """Whether ``path`` exists on ``volume``; a corrupt directory on the way (a FAT cluster chain that loops,
        an NTFS index that cannot be read) is logged and counts as "not found here", so that one damaged
        volume does not stop the audit of the others. The boot store's lookup errors are kept for the
        reason the BCD hive is unavailable."""
        try:
            return volume.exists(path)
        except FileSystemError as err:
            log.warning("%s", err)
            if boot:
                self._boot_errors.append(str(err))
            return False

    # --- registry -----------------------------------------------------------------------------

    def _open_hive(self, volume: Volume, path: str, name: str) -> Hive:
        from azvhdaudit.registry.open import open_hive

        fh = volume.open(path)
        logs: dict[str, BinaryIO] = {}
        for suffix in ("LOG1", "LOG2"):
            log_path = f"{path}.{suffix}"
            if volume.exists(log_path):
                logs[suffix] = volume.open(log_path)
        source = f"{volume.name}:\\{path}"
        return open_hive(fh, name, source=source, backend=self.backend, logs=logs)

    def _prefetch(self, tasks: list[Callable[[], Any]]) -> None:
        """On a remote image, run independent reading ``tasks`` side by side first (:func:`azvhdaudit.batch.gather`),
        so that the code after them finds their blocks fetched; on a local one, nothing."""
        from azvhdaudit.batch import gather, is_remote

        if is_remote(self.container):
            gather(tasks)

    def _prefetch_hives(self, names: tuple[str, ...]) -> None:
        """On a remote image, open the hives side by side first (:func:`azvhdaudit.batch.gather`): each is a
        chain of dependent reads (directory records, base block, root cell), independent of the others."""
        places = [(self.windows_volume, f"{CONFIG_DIR}\\{name}", name) for name in names if self.windows_volume]
        if self.boot_volume is not None and self.facts.bcd_path:
            places.append((self.boot_volume, self.facts.bcd_path, "BCD"))

        def open_and_close(volume: Volume, path: str, name: str) -> None:
            if volume.exists(path):
                self._open_hive(volume, path, name).close()

        self._prefetch([functools.partial(open_and_close, *place) for place in places])

    def _open_registry(self, names: tuple[str, ...]) -> RegistryView:
        self._prefetch_hives(names)
        hives: dict[str, Hive] = {}
        unavailable: dict[str, str] = {}
        for name in names:
            if self.windows_volume is None:
                why = "the volume is BitLocker-encrypted" if self.facts.bitlocker else "no Windows volume found"
                unavailable[name] = f"the {name} hive cannot be read: {why}"
                continue
            path = f"{CONFIG_DIR}\\{name}"
            if not self.windows_volume.exists(path):
                unavailable[name] = f"the {name} hive is not present at {path}"
                continue
            try:
                hive = self._open_hive(self.windows_volume, path, name)
            except (RegistryError, FileSystemError) as err:
                log.warning("%s", err)
                unavailable[name] = f"the {name} hive cannot be read: {err}"
                continue
            # a key absent from a hive means something only once the hive is shown to be the one it is named
            problem = identity_problem(hive, name)
            if problem is not None:
                hive.close()
                why = f"the {name} hive cannot be read: {hive.source} is unreadable as {name}: {problem}"
                log.warning("%s", why)
                unavailable[name] = why
                continue
            hives[name] = hive
        for name in OPT_IN_HIVES:
            if name not in names:
                unavailable[name] = (
                    f"hive not loaded: the {name} hive is read only on request: pass with_lsa=True to audit() "
                    f"(--with-lsa on the command line), or name {name} among open_image()'s hives"
                )
        if self.boot_volume is not None and self.facts.bcd_path:
            try:
                bcd = self._open_hive(self.boot_volume, self.facts.bcd_path, "BCD")
            except (RegistryError, FileSystemError) as err:
                log.warning("%s", err)
                unavailable["BCD"] = f"the BCD store cannot be read: {err}"
            else:
                problem = identity_problem(bcd, "BCD")
                if problem is None:
                    hives["BCD"] = bcd
                else:
                    bcd.close()
                    unavailable["BCD"] = f"the BCD store cannot be read: {bcd.source} is unreadable as BCD: {problem}"
                    log.warning("%s", unavailable["BCD"])
        elif self._boot_errors:
            unavailable["BCD"] = "the BCD store cannot be read: its folder cannot be looked up: " + "; ".join(
                self._boot_errors
            )
        else:
            unavailable["BCD"] = "no boot store found (\\Boot\\BCD or \\EFI\\Microsoft\\Boot\\BCD)"
        return RegistryView(hives=hives, unavailable=unavailable)

    # --- facts --------------------------------------------------------------------------------

    def _fill_facts(self) -> None:
        facts = self.facts
        reg = self.registry
        facts.current_control_set = reg.current_control_set
        facts.default_control_set = reg.default_control_set
        for name, hive in reg.hives.items():
            facts.hives[name] = {
                "source": hive.source,
                "backend": hive.backend,
                "dirty": hive.state.dirty,
                "replayed": hive.state.replayed,
                "logs": list(hive.state.logs),
                "note": hive.state.note,
            }
        for name, why in reg.unavailable.items():
            facts.hives[name] = {"error": why}
        if "SYSTEM" in reg.hives or "SOFTWARE" in reg.hives:
            try:
                from azvhdaudit import osinfo
            except ImportError:  # pragma: no cover - the OS facts module is part of the package
                return
            # each fact on its own: a corrupt cell met by one leaves it unknown, not the others
            self._prefetch(
                [functools.partial(osinfo.os_facts, reg), functools.partial(osinfo.image_extra_facts, reg, self.files)]
            )
            try:
                facts.os = osinfo.os_facts(reg)
            except AuditError as err:
                log.warning("%s: cannot establish the OS facts: %s", self.source, err)
            found = osinfo.image_extra_facts(reg, self.files)
            facts.sysprep = found.pop("sysprep", None)
            facts.pending_reboot = found.pop("pending_reboot", None)
            facts.agent = found.pop("agent", None)
            facts.extra.update(found)

    # --- public -------------------------------------------------------------------------------

    @property
    def bcd(self) -> Any:
        """The decoded boot configuration store, or ``None`` when there is none (see ``bcd_error``)."""
        if not self._bcd_done:
            self._bcd_done = True
            hive = self.registry.hive("BCD")
            if hive is not None:
                from azvhdaudit.bcd import decode_bcd

                try:
                    self._bcd = decode_bcd(hive)
                except AuditError as err:
                    self._bcd_error = self.facts.bcd_error = str(err)
                    log.warning("%s: %s", self.source, err)
        return self._bcd

    @property
    def bcd_error(self) -> str | None:
        self.bcd  # noqa: B018 - decode on first use
        return self._bcd_error

    @property
    def stats(self) -> Any:
        """Bytes read and read calls on the underlying files so far."""
        return self.container.stats

    def open_file(self, path: str) -> BinaryIO:
        """Open a file of the Windows volume read-only by its Windows path."""
        if self.windows_volume is None:
            raise NoWindowsVolumeError(f"{self.source}: no Windows volume to read {path} from")
        return self.windows_volume.open(path)

    def close(self) -> None:
        if hasattr(self, "registry"):
            self.registry.close()
        self.container.close()
        for fh in self._closables:
            fh.close()
        self._closables.clear()

    def __enter__(self) -> Image:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.facts.container
        return f"<Image {self.source} {c.format}/{c.subtype} {c.virtual_size} bytes gen{self.facts.generation}>"

    def _repr_html_(self) -> str:
        from html import escape

        f = self.facts
        c = f.container
        rows = [
            ("format", f"{c.format} {c.subtype or ''}"),
            ("virtual size", f"{c.virtual_size:,} bytes"),
            ("partition style", f.partition_style),
            ("generation", f.generation),
            ("Windows partition", f.windows_partition),
            ("boot store", f.bcd_path),
            ("OS", f.os.name if f.os else None),
            ("build", f"{f.os.build}.{f.os.ubr}" if f.os and f.os.build else None),
        ]
        body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in rows)
        return f"<table><caption>{escape(self.source)}</caption>{body}</table>"


def open_image(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    backend: str = "regf",
    hives: Iterable[str] = DEFAULT_HIVES,
    require_windows: bool = True,
    opener: Callable[[str], BinaryIO] | None = None,
    storage_options: dict[str, Any] | None = None,
    read_ahead: bool = False,
) -> Image:
    """Open a disk image read-only: a path, a PathLike or a binary file object.

    The format (VHD, VHDX, VMDK, QCOW2, raw) is detected by content. ``hives`` names the hives to open
    (SYSTEM and SOFTWARE by default; add ``"SAM"``/``"SECURITY"`` only if you need them); the BCD store
    is opened when one is found. ``backend`` picks the registry reader: ``"regf"`` (lazy, the default)
    or ``"python-registry"``. With ``require_windows=False`` a disk without a Windows volume opens too
    (a data disk); otherwise it raises :class:`NoWindowsVolumeError`.

    A URL (``https://``, ``az://``, ``abfs://``, ``file://`` ...) is read in place through fsspec with range
    requests; ``storage_options`` go to the file system (credentials, SAS token ...). With ``read_ahead=True`` a
    remote image also fetches, while it opens, what the ``azure`` profile's rules will read (in as few round trips
    as their dependencies allow); the audit asks for it, a caller that only opens the image pays nothing.

    Use it as a context manager::

        with open_image("disk.vhd") as image:
            image.registry.value(r"HKLM\\SYSTEM\\CurrentControlSet\\Control\\TimeZoneInformation",
                                 "RealTimeIsUniversal")
    """
    from azvhdaudit.container import open_container
    from azvhdaudit.registry.open import BACKENDS

    if backend not in BACKENDS:
        from azvhdaudit.errors import ProfileError

        raise ProfileError(f"unknown registry backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    name = _source_name(source)
    started = time.perf_counter()
    owned: list[IO[bytes]] = []
    if isinstance(source, str) and "://" in source:
        from azvhdaudit.sources import open_source

        source, url_opener = open_source(source, **(storage_options or {}))
        owned.append(source)
        opener = opener or url_opener
    try:
        container = open_container(source, name=name, opener=opener)
    except BaseException:
        for fh in owned:
            fh.close()
        raise
    opened = (time.perf_counter() - started) * 1000
    try:
        image = Image(
            container, source=name, backend=backend, hives=hives, require_windows=require_windows, read_ahead=read_ahead
        )
    except BaseException:
        container.close()
        for fh in owned:
            fh.close()
        raise
    image._closables.extend(owned)
    image.timings_ms["container"] = opened
    return image
