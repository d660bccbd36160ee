"""What to do about an error, from what caused it: the hint at the end of the command line's error line and the
remediation of :func:`azvhdaudit.fleet.error_report`.

The library's errors name what failed where (``ImageError: x.vhd: cannot be opened for reading``); the cause
is kept as the exception's ``__cause__`` (``raise ... from err``). Several causes end in the same class (a
permission problem and a truncated file are both an :class:`~azvhdaudit.errors.ImageError`; a DNS failure and
a missing blob both an :class:`~azvhdaudit.errors.ImageNotFoundError`), so the hint is chosen from the whole
chain: the first cause found below decides, else :func:`cause_hint` returns ``None`` and the caller falls back
on the error's class.

References: :mod:`socket` (``gaierror``: the name resolver failed), :class:`ConnectionRefusedError` (nothing
listens on the port), aiohttp's ``ClientConnectionError`` (what fsspec's HTTP store wraps them in).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator

from azvhdaudit.errors import AuditError, ParentError

__all__ = ["OutputError", "cause_hint", "network_cause", "network_reason", "chain"]

#: the optional extra that provides a module azvhdaudit imports on demand
EXTRAS: dict[str, str] = {
    "fsspec": "remote",
    "aiohttp": "remote",
    "adlfs": "remote",
    "azure": "remote",
    "pandas": "pandas",
    "dask": "dask",
    "distributed": "dask",
}

_MAX_CHAIN = 20  # causes of causes: a bound, whatever a library does with __context__


class OutputError(AuditError, OSError):
    """The report (or fix script) cannot be written where ``-o`` says: a problem of the output, not the image."""


def chain(err: BaseException) -> Iterator[BaseException]:
    """``err``, then its cause, the cause's cause ... (``__cause__``, else ``__context__``), each once."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def network_cause(err: BaseException) -> BaseException | None:
    """The network failure behind ``err`` (a name that does not resolve, a refused or failed connection)."""
    found: BaseException | None = None
    for cause in chain(err):
        if isinstance(cause, (socket.gaierror, ConnectionRefusedError)):
            return cause  # the most telling: prefer it to the client library's wrapper around it
        if found is None and (
            isinstance(cause, (ConnectionError, TimeoutError))
            or type(cause).__name__ in ("ClientConnectorError", "ServerDisconnectedError", "ServiceRequestError")
        ):
            found = cause
    return found


def network_reason(cause: BaseException) -> str:
    """What went wrong on the network, in a few words."""
    if isinstance(cause, socket.gaierror):
        return f"the host name does not resolve: {cause.strerror or cause}"
    if isinstance(cause, ConnectionRefusedError):
        return f"connection refused: {cause.strerror or cause}"
    return str(cause) or type(cause).__name__


def unreachable_text(err: BaseException, text: str) -> str:
    """``text`` (the error's message) saying the server could not be reached, when ``err`` is a missing-file error
    with a network failure behind it (fsspec reports an unreachable server that way); else ``text`` as it is."""
    network = network_cause(err)
    if network is None or not isinstance(err, FileNotFoundError):
        return text
    return f"{text.split(': ', 1)[0]}: the server could not be reached: {network_reason(network)}"


def cause_hint(err: BaseException) -> str | None:
    """The hint that fits what caused ``err``, or ``None`` when nothing in its chain says more than its class."""
    causes = list(chain(err))
    for cause in causes:
        if isinstance(cause, OutputError):
            return _output_hint(cause)
    network = network_cause(err)
    if isinstance(network, socket.gaierror):
        return "check the network: the URL's host name does not resolve here; a typo in the host, or no DNS"
    if isinstance(network, ConnectionRefusedError):
        return "check the network: nothing answers at the URL's host and port; is the server up, the port right?"
    if network is not None:
        return "check the network and the URL's host: the connection failed"
    for cause in causes:
        if isinstance(cause, ImportError):
            top = (cause.name or "").split(".")[0] or _module_in(str(cause))
            extra = EXTRAS.get(top)
            if extra:
                return f'install the extra: pip install "azvhdaudit[{extra}]"'
            return f"install the missing module{f' {top}' if top else ''}"
    for cause in causes:
        if isinstance(cause, PermissionError):
            if any(isinstance(c, ParentError) for c in causes):
                return "fix the parent's permissions: the user running azvhdaudit needs read access to it too"
            return "fix the file's permissions: the user running azvhdaudit needs read access to it"
    return None


def _module_in(text: str) -> str:
    for name in EXTRAS:
        if f"needs {name}" in text or f"'{name}'" in text:
            return name
    return ""


def _output_hint(err: OutputError) -> str:
    cause = err.__cause__
    code = cause.errno if isinstance(cause, OSError) else err.errno
    if code == errno.ENOENT:
        return "the directory for -o does not exist: create it, or write the report elsewhere"
    if code == errno.EISDIR:
        return "-o names a directory: give a file name"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "choose a place this user can write for -o"
    return "choose another place for -o"
