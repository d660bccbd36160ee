"""Real servers on 127.0.0.1 for the remote tests: an HTTP server honouring Range, and Azurite.

Azurite (the Azure Storage emulator, npm package ``azurite``) is found as ``$AZURITE`` (a path to
``azurite-blob`` or ``azurite``), else ``azurite-blob`` on ``PATH``, else
``<repo>/.ci-node/node_modules/.bin/azurite-blob`` (where ``.ci/run`` installs it with
``npm install --prefix .ci-node azurite@3``). It is started on a free port with ``--inMemoryPersistence``,
``--skipApiVersionCheck``, ``--loose`` and ``--disableTelemetry`` (Azurite otherwise reports usage to Microsoft's
Application Insights), and stopped when the tests end.

Page blobs are uploaded the way Azure's tools do it (azcopy, ``Add-AzVhd``): the blob is created at the
file's size and only the non-zero 512-byte pages are written, with ``upload_page``.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PAGE = 512
#: Azure's limit for one Put Page call
MAX_PAGE_WRITE = 4 * 1024 * 1024

#: Azurite's well-known development account (public, documented by Microsoft)
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass
class HttpLog:
    """Requests the HTTP server answered: (method, path, Range header or None)."""

    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: requests being answered now, and the most answered at once since the last clear()
    in_flight: int = 0
    most_in_flight: int = 0
    #: requests being answered now by path, and the most distinct paths answered at once since the last clear()
    paths_in_flight: dict[str, int] = field(default_factory=dict)
    most_paths_in_flight: int = 0

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.most_in_flight = self.in_flight
            self.most_paths_in_flight = len(self.paths_in_flight)


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files of a directory with HEAD, GET and single ``Range: bytes=a-b`` requests (206).

    ``ignore_range`` (a class attribute of a subclass) answers every GET with the whole file, like a
    server without range support.
    """

    log_record: HttpLog
    ignore_range = False
    #: TCP_NODELAY, as stores set it: with Nagle's algorithm the body of an answer smaller than the loopback's
    #: segment (64 KiB) waited for the client's delayed ACK of the headers, 40 ms more than the delay asked for
    disable_nagle_algorithm = True
    #: seconds every request waits before it is answered: a network round trip, simulated
    delay = 0.0
    #: ranges starting at or after this offset (and before ``fail_until``, when set) are answered 503 (a store
    #: failing mid-audit)
    fail_from: int | None = None
    fail_until: int | None = None
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _file(self) -> Path | None:
        path = Path(self.translate_path(self.path.split("?", 1)[0]))
        return path if path.is_file() else None

    def _record(self) -> None:
        with self.log_record.lock:
            self.log_record.requests.append((self.command, self.path, self.headers.get("Range")))
            self.log_record.in_flight += 1
            self.log_record.most_in_flight = max(self.log_record.most_in_flight, self.log_record.in_flight)
            paths = self.log_record.paths_in_flight
            paths[self.path] = paths.get(self.path, 0) + 1
            self.log_record.most_paths_in_flight = max(self.log_record.most_paths_in_flight, len(paths))
        self._counted = True
        if self.delay:
            time.sleep(self.delay)

    def handle_one_request(self) -> None:
        self._counted = False
        try:
            super().handle_one_request()
        finally:
            if self._counted:
                with self.log_record.lock:
                    self.log_record.in_flight -= 1
                    paths = self.log_record.paths_in_flight
                    paths[self.path] -= 1
                    if not paths[self.path]:
                        del paths[self.path]

    def do_HEAD(self) -> None:
        self._record()
        path = self._file()
        if path is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(path.stat().st_size))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()

    def do_GET(self) -> None:
        self._record()
        path = self._file()
        if path is None:
            self.send_error(404)
            return
        size = path.stat().st_size
        match = _RANGE.match(self.headers.get("Range", "") or "")
        if match is None or self.ignore_range:
            start, end, status = 0, size, 200
        else:
            first, last = match.groups()
            if first == "":
                start, end = max(0, size - int(last)), size
            else:
                start, end = int(first), min(size, int(last) + 1 if last else size)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
            if (
                self.fail_from is not None
                and start >= self.fail_from
                and (self.fail_until is None or start < self.fail_until)
            ):
                self.send_error(503, "unavailable (test server told to fail here)")
                return
        self.send_response(status)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        with open(path, "rb") as fh:
            fh.seek(start)
            left = end - start
            while left:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.wfile.write(chunk)
                left -= len(chunk)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that stops reading (a streamed start of file cut short) is not an error here
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


@dataclass
class HttpServer:
    url: str
    log: HttpLog
    server: _Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_http(
    directory: Path,
    *,
    ignore_range: bool = False,
    delay: float = 0.0,
    fail_from: int | None = None,
    fail_until: int | None = None,
) -> HttpServer:
    """A threaded HTTP server for ``directory`` on a free port of 127.0.0.1.

    ``delay`` seconds are added to every request (a round trip to a store in another region); ranges starting
    from ``fail_from`` on (up to ``fail_until``, exclusive, when given) are answered 503.
    """
    record = HttpLog()
    handler = type(
        "Handler",
        (RangeHandler,),
        {
            "log_record": record,
            "ignore_range": ignore_range,
            "delay": delay,
            "fail_from": fail_from,
            "fail_until": fail_until,
        },
    )

    def make(*args: Any) -> RangeHandler:
        return handler(*args, directory=str(directory))

    server = _Server(("127.0.0.1", 0), make)
    thread = threading.Thread(target=server.serve_forever, name="range-http", daemon=True)
    thread.start()
    port = server.server_address[1]
    return HttpServer(url=f"http://127.0.0.1:{port}", log=record, server=server, thread=thread)


# --- Azurite ------------------------------------------------------------------------------------


def stop_process(process: subprocess.Popen[Any]) -> None:
    """End a server's process: terminate, then kill if it has not gone within 10 s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def azurite_command() -> list[str]:
    """The command that starts Azurite's blob service, or a RuntimeError saying how to install it."""
    given = os.environ.get("AZURITE")
    candidates = [given] if given else []
    candidates += [shutil.which("azurite-blob"), str(REPO / ".ci-node" / "node_modules" / ".bin" / "azurite-blob")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            if Path(candidate).name == "azurite":
                return [candidate, "--skipApiVersionCheck"]  # the full emulator: blob options still apply
            return [candidate]
    raise RuntimeError(
        "the remote tests need Azurite: npm install --prefix .ci-node azurite@3 (in the repository), "
        "or put azurite-blob on PATH, or set AZURITE to its path"
    )


@dataclass
class Azurite:
    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.endpoint};"
        )

    def connection_string_via(self, port: int | str) -> str:
        """:attr:`connection_string` with the blob endpoint at ``port`` of 127.0.0.1 (a proxy in front)."""
        return self.connection_string.replace(f"127.0.0.1:{self.port}/", f"127.0.0.1:{port}/")

    def sas_connection_string(self, sas: str) -> str:
        return f"BlobEndpoint={self.endpoint};SharedAccessSignature={sas}"

    def stop(self) -> None:
        stop_process(self.process)


#: Azurite sends usage telemetry to Microsoft unless told not to (from 3.33 on); an older one does not know the option
NO_TELEMETRY = "--disableTelemetry"


def start_azurite(workdir: Path, timeout: float = 60.0, *, in_memory: bool = True) -> Azurite:
    """Start Azurite's blob service on a free port, in memory (else keeping its data under ``workdir``), without
    telemetry (an Azurite too old for the option is started without it); wait until it accepts connections."""
    command = azurite_command()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    options = [
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        *(["--inMemoryPersistence"] if in_memory else ["--location", str(workdir)]),
        "--skipApiVersionCheck",
        "--loose",
    ]
    telemetry_off = True
    process = _start_logged([*command, *options, NO_TELEMETRY], workdir)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            said = (workdir / "azurite.log").read_text(errors="replace")
            if telemetry_off and f'"{NO_TELEMETRY[2:]}" is unknown' in said:
                telemetry_off = False  # an Azurite older than the option
                process = _start_logged([*command, *options], workdir)
                continue
            raise RuntimeError(f"Azurite exited with {process.returncode}: " + said)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Azurite(process=process, port=port, workdir=workdir)
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"Azurite did not listen on 127.0.0.1:{port} within {timeout} s")


def _start_logged(argv: list[str], workdir: Path) -> subprocess.Popen[bytes]:
    """``argv`` started in ``workdir``, its output written to ``azurite.log`` there (replaced)."""
    with open(workdir / "azurite.log", "wb") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)


def nonzero_page_runs(path: Path) -> Iterator[tuple[int, int]]:
    """(offset, length) runs of non-zero 512-byte pages, each at most 4 MiB; holes are skipped unread."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fd = fh.fileno()
        pos = 0
        while pos < size:
            try:
                data_start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                return
            data_end = os.lseek(fd, data_start, os.SEEK_HOLE)
            data_start -= data_start % PAGE
            run_start: int | None = None
            offset = data_start
            while offset < data_end:
                fh.seek(offset)
                chunk = fh.read(min(MAX_PAGE_WRITE, data_end - offset))
                for i in range(0, len(chunk), PAGE):
                    page_offset = offset + i
                    if chunk[i : i + PAGE].strip(b"\x00"):
                        if run_start is None:
                            run_start = page_offset
                        elif page_offset + PAGE - run_start > MAX_PAGE_WRITE:
                            yield run_start, page_offset - run_start
                            run_start = page_offset
                    elif run_start is not None:
                        yield run_start, page_offset - run_start
                        run_start = None
                offset += len(chunk)
            if run_start is not None:
                end = min(-(-data_end // PAGE) * PAGE, size)
                yield run_start, end - run_start
            pos = data_end


@dataclass
class Upload:
    name: str
    size: int
    pages_written: int
    calls: int


def upload_page_blob(container: Any, name: str, path: Path) -> Upload:
    """Create a page blob of the file's size and write only its non-zero pages (``upload_page``, each run of them
    one call of at most 4 MiB)."""
    size = path.stat().st_size
    if size % PAGE:
        raise ValueError(f"{path}: {size} bytes is not a multiple of {PAGE}; a page blob cannot hold it")
    blob = container.get_blob_client(name)
    blob.create_page_blob(size=size)
    pages = calls = 0
    with open(path, "rb") as fh:
        for offset, length in nonzero_page_runs(path):
            fh.seek(offset)
            data = fh.read(length)
            blob.upload_page(data, offset=offset, length=length)
            pages += length // PAGE
            calls += 1
    return Upload(name=name, size=size, pages_written=pages, calls=calls)


def upload_block_blob(container: Any, name: str, path: Path) -> None:
    with open(path, "rb") as fh:
        container.upload_blob(name, fh, blob_type="BlockBlob", overwrite=True)


@dataclass
class BlobStore:
    """The Azurite container ``images`` with the samples uploaded."""

    azurite: Azurite
    container: Any
    uploads: dict[str, Upload]

    @property
    def options(self) -> dict[str, str]:
        return {"connection_string": self.azurite.connection_string}

    def url(self, name: str) -> str:
        return f"az://images/{name}"


def comparable(report: Any) -> dict[str, Any]:
    """A report's verdicts and facts without what varies between runs (times) or by where it was read.

    The image's name (path or URL) appears in facts and evidence: it is replaced by ``<source>``, and its
    directory (where parents are found) by ``<directory>``; the file name that fix lines give (``<stem>.vhd``,
    ``<stem>-fixed.vhd``) by ``<stem>``.
    """
    text = json.dumps(report.to_dict(), default=str)
    directory = report.source.rsplit("/", 1)[0]  # where a differencing disk's parents were found
    stem = report.source.rsplit("/", 1)[-1].rsplit(".", 1)[0]  # fix lines name the file: "<stem>.vhd"
    for name, mark in (
        (report.source, "<source>"),
        (directory + "/", "<directory>/"),
        (stem + ".", "<stem>."),
        (stem + "-fixed.", "<stem>-fixed."),
    ):
        text = text.replace(json.dumps(name)[1:-1], mark)
    data = json.loads(text)
    for key in ("started", "timings_ms", "source"):
        data.pop(key)
    for result in data["results"]:
        result.pop("duration_ms")
    facts = data["facts"]
    if facts:
        facts.pop("source", None)
        facts["container"].pop("path", None)
        facts.get("extra", {}).pop("io", None)
        for hive in facts.get("hives", {}).values():
            hive.pop("source", None)
    return data


# --- latency, in a process of its own ---------------------------------------------------------------


@dataclass(frozen=True)
class ProxiedRequest:
    """A request :func:`serve_delay_proxy` passed on: the connection it came on (numbered from 1 as they were
    accepted), its method and target, and the range it asked for (``x-ms-range`` or ``Range``; None: none)."""

    connection: int
    method: str
    target: str
    range: str | None

    @classmethod
    def parse(cls, connection: int, data: bytes) -> ProxiedRequest:
        """The request line and range header at the start of ``data`` (a request's first bytes)."""
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        method, target = ([*head[0].split(" "), "", ""])[:2]
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return cls(connection, method, target, headers.get("x-ms-range") or headers.get("range"))

    def line(self) -> str:
        return "\t".join((str(self.connection), self.method, self.target, self.range or "")) + "\n"

    @classmethod
    def from_line(cls, line: str) -> ProxiedRequest:
        connection, method, target, asked = line.rstrip("\n").split("\t")
        return cls(int(connection), method, target, asked or None)


def read_proxy_log(path: Path) -> list[ProxiedRequest]:
    """The requests a proxy started with ``log`` has passed on so far."""
    if not path.exists():
        return []
    return [ProxiedRequest.from_line(line) for line in path.read_text().splitlines(keepends=True)]


def serve_delay_proxy(upstream_port: int, delay: float, ready: Any = None, log: str | None = None) -> None:
    """Forward TCP connections on a free port of 127.0.0.1 to ``upstream_port``, each request ``delay`` seconds late.

    A request is what a client sends after the answer to its previous one (or first on a connection): its first
    bytes wait ``delay`` seconds before they go on, the rest of it and every answer pass at once. So each HTTP
    request on a keep-alive connection costs one added round trip, and requests on separate connections overlap,
    as they would with a store in another region. Prints the port (or calls ``ready(port)``), then serves forever.
    With ``log`` (a file's path), every request is written there as it arrives, before it goes on: one
    :class:`ProxiedRequest` a line (:func:`read_proxy_log`), so that a test or benchmark counts the HTTP requests
    a client really made.
    """
    import asyncio

    log_file = open(log, "a", buffering=1) if log else None  # line-buffered: each request is in the file at once
    connections = [0]

    async def pump(reader: Any, writer: Any, state: dict[str, Any], direction: str) -> None:
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                if direction == "up" and state["last"] != "up":
                    if log_file is not None:
                        log_file.write(ProxiedRequest.parse(state["connection"], data).line())
                    if delay:
                        await asyncio.sleep(delay)
                state["last"] = direction
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def handle(client_reader: Any, client_writer: Any) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            return
        connections[0] += 1
        state: dict[str, Any] = {"last": "down", "connection": connections[0]}
        await asyncio.gather(pump(client_reader, up_writer, state, "up"), pump(up_reader, client_writer, state, "down"))

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        if ready is None:
            print(port, flush=True)
        else:
            ready(port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


@dataclass
class Subprocess:
    """A server running in a process of its own (its work does not share the client's interpreter)."""

    process: subprocess.Popen[str]
    url: str

    def stop(self) -> None:
        stop_process(self.process)


def _spawn(code: str) -> Subprocess:
    import sys

    process = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); {code}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line:
        process.wait(10)
        raise RuntimeError(f"the server process ended with {process.returncode} before it listened")
    return Subprocess(process=process, url=line)


def spawn_http(directory: Path, *, delay: float = 0.0) -> Subprocess:
    """:func:`start_http` for ``directory`` in a process of its own; ``url`` is its address."""
    return _spawn(
        "import time, remote_servers as rs; "
        f"s = rs.start_http(__import__('pathlib').Path({str(directory)!r}), delay={delay!r}); "
        "print(s.url, flush=True); time.sleep(1e9)"
    )


def spawn_delay_proxy(upstream_port: int, delay: float, *, log: Path | None = None) -> Subprocess:
    """:func:`serve_delay_proxy` in a process of its own; ``url`` is the port it listens on. With ``log``, the
    requests it passes on are written to that file (:func:`read_proxy_log`)."""
    where = str(log) if log is not None else None
    return _spawn(f"import remote_servers as rs; rs.serve_delay_proxy({upstream_port}, {delay!r}, log={where!r})")
