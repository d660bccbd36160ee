"""Open a local file for reading only when it is a regular file or a block device.

``open()`` on a FIFO blocks until a writer comes, on a character device (``/dev/zero``, a terminal) it reads
forever or waits for input, and a socket cannot be opened at all: none of them is a disk image, a hive, a log
or a waiver file. :func:`open_regular` checks the file's type with ``os.stat`` before opening it, opens it
with ``O_NONBLOCK`` (so that a file swapped for a FIFO between the check and the open cannot block) and
checks the type again on the opened descriptor, which is the file actually read.

References: POSIX ``open()`` (``O_NONBLOCK`` on a FIFO opened for reading returns at once), ``stat.S_IS*``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from typing import BinaryIO

from azvhdaudit.errors import AuditError

__all__ = ["file_kind", "check_readable_kind", "open_regular"]

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISLNK, "a symbolic link"),
)


def file_kind(mode: int) -> str:
    """``a regular file``, ``a block device``, ``a FIFO (named pipe)`` ... for an ``st_mode``."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISBLK(mode):
        return "a block device"
    for test, words in _KINDS:
        if test(mode):
            return words
    return f"a file of unknown type (mode 0o{mode:o})"


def check_readable_kind(path: str, mode: int, error: Callable[[str], AuditError], what: str) -> None:
    """Raise ``error(message)`` unless ``mode`` is a regular file's or a block device's; a directory raises
    :class:`IsADirectoryError` (callers already say what a directory means in their place)."""
    if stat.S_ISREG(mode) or stat.S_ISBLK(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    raise error(f"{path}: {what} is {file_kind(mode)}, not a regular file or block device; it is not read")


def open_regular(path: str | os.PathLike[str], error: Callable[[str], AuditError], what: str = "the file") -> BinaryIO:
    """Open ``path`` read-only (binary, unbuffered reads through a buffered reader) if it is a regular file
    or a block device.

    Anything else raises ``error(message)`` naming the path and its type (``what`` names the file's role:
    "the image", "the parent", "the transaction log" ...). A missing file raises :class:`FileNotFoundError`,
    a directory :class:`IsADirectoryError`, and other failures the :class:`OSError` of ``os.stat`` / ``os.open``,
    as ``open()`` would.
    """
    name = os.fspath(path)
    check_readable_kind(name, os.stat(name).st_mode, error, what)
    fh = open(name, "rb", opener=_nonblocking)  # returned to the caller, who closes it
    try:
        # the descriptor is what is read: a path swapped after the check is caught here
        check_readable_kind(name, os.fstat(fh.fileno()).st_mode, error, what)
    except BaseException:
        fh.close()
        raise
    return fh


def _nonblocking(path: str, flags: int) -> int:
    """``open()``'s flags (read-only) with ``O_NONBLOCK``: a FIFO put in the file's place after the check
    cannot make the open wait; ``O_NOCTTY``: a terminal never becomes the controlling one."""
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
