"""A read-only, seekable binary stream base: the position bookkeeping every reader here shares.

Subclasses set ``size`` and ``_pos`` and implement :meth:`read` and the ``name`` property; this class gives
them ``seek``/``tell``/``readinto``/``readall`` and refuses writing (``io.RawIOBase`` semantics).
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

__all__ = ["ReadOnlyStream"]


class ReadOnlyStream(io.RawIOBase, BinaryIO):
    """Read-only and seekable; ``size`` bytes long; the position is ``_pos``."""

    size: int
    _pos: int

    @property
    def mode(self) -> str:
        return "rb"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def _check(self) -> None:
        if self.closed:
            raise ValueError(f"I/O operation on closed file {self.name}")

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.size + offset
        else:
            raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def tell(self) -> int:
        self._check()
        return self._pos

    def read(self, size: int | None = -1) -> bytes:  # pragma: no cover - subclasses read
        raise NotImplementedError

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)
