"""Azure range reads (``azvhdaudit.sources._AzureBlobRanges``) against a stand-in for the SDK's generated client.

What a store does that Azurite does not: an answer that breaks off, other bytes than asked for, a request that fails
outright. The requests are counted; Azurite itself is in ``test_azure.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from azure.core.exceptions import IncompleteReadError, ResourceNotFoundError, ServiceResponseError

from azvhdaudit.sources import _AzureBlobRanges

BLOB = bytes(range(256)) * 64  # 16 KiB


class FakeOperations:
    """``BlobClient._client.blob``: ``download`` answers ranges of :data:`BLOB`, as ``script`` says for each call."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.calls: list[dict[str, Any]] = []
        self.bodies_read = 0

    async def download(self, *, range: str, cls: Callable[..., Any], **kwargs: Any) -> Any:
        self.calls.append({"range": range, **kwargs})
        what = self.script[len(self.calls) - 1] if len(self.calls) <= len(self.script) else "ok"
        if what == "missing":
            raise ResourceNotFoundError("The specified blob does not exist.")
        if what == "reset":
            raise ServiceResponseError("Connection reset by peer")
        first, last = (int(n) for n in range.removeprefix("bytes=").split("-"))
        data = BLOB if what == "whole" else BLOB[first : last + 1]

        async def body() -> AsyncIterator[bytes]:
            self.bodies_read += 1
            yield data[: len(data) // 2]
            if what == "broken":
                raise IncompleteReadError("Connection broken: IncompleteRead")
            yield data[len(data) // 2 :]

        return cls(FakePipelineResponse(), body(), {"Content-Length": len(data)})


class FakePipelineResponse:
    http_response = None


class FakeBlobClient:
    def __init__(self, operations: FakeOperations) -> None:
        self._client = type("Generated", (), {"blob": operations})()


class FakeFileSystem:
    """What ``_AzureBlobRanges`` asks of adlfs's file system."""

    def __init__(self, operations: FakeOperations) -> None:
        self.operations = operations
        self.clients_made = 0
        self.service_client = self
        self._timeout_kwargs = {"timeout": 30}

    def split_path(self, path: str) -> tuple[str, str, str | None]:
        container, blob = path.split("/", 1)
        return container, blob, None

    def get_blob_client(self, container: str, blob: str) -> FakeBlobClient:
        self.clients_made += 1
        return FakeBlobClient(self.operations)


def _read(script: list[str], ranges: list[tuple[int, int]]) -> tuple[list[bytes], FakeOperations, FakeFileSystem]:
    operations = FakeOperations(script)
    fs = FakeFileSystem(operations)
    ranges_fs = _AzureBlobRanges(fs)

    async def run() -> list[bytes]:
        return [await ranges_fs._cat_file("images/disk.vhd", start=a, end=b) for a, b in ranges]

    return asyncio.run(run()), operations, fs


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return waits


def test_each_range_is_one_get_blob_with_its_range_and_adlfs_timeouts() -> None:
    data, operations, fs = _read([], [(0, 512), (4096, 8192), (512, 1024)])
    assert data == [BLOB[0:512], BLOB[4096:8192], BLOB[512:1024]]
    assert [c["range"] for c in operations.calls] == ["bytes=0-511", "bytes=4096-8191", "bytes=512-1023"]
    assert all(c["timeout"] == 30 and c["decompress"] is False for c in operations.calls)
    assert fs.clients_made == 1  # one blob client per path, kept


def test_an_answer_that_breaks_off_is_asked_again(no_waiting: list[float]) -> None:
    data, operations, _ = _read(["broken", "broken"], [(1024, 3072)])
    assert data == [BLOB[1024:3072]]
    assert len(operations.calls) == 3 and no_waiting == [1, 1]


def test_an_answer_that_keeps_breaking_off_raises_after_three_tries() -> None:
    operations = FakeOperations(["broken"] * 3)
    ranges_fs = _AzureBlobRanges(FakeFileSystem(operations))
    with pytest.raises(IncompleteReadError):
        asyncio.run(ranges_fs._cat_file("images/disk.vhd", start=0, end=512))
    assert len(operations.calls) == 3


def test_a_request_that_fails_is_not_sent_again_here() -> None:
    # the SDK pipeline's retry policy has retried it already
    operations = FakeOperations(["reset"])
    ranges_fs = _AzureBlobRanges(FakeFileSystem(operations))
    with pytest.raises(ServiceResponseError):
        asyncio.run(ranges_fs._cat_file("images/disk.vhd", start=0, end=512))
    assert len(operations.calls) == 1


def test_a_missing_blob_is_file_not_found() -> None:
    with pytest.raises(FileNotFoundError, match="images/disk.vhd"):
        _read(["missing"], [(0, 512)])


def test_other_bytes_than_asked_for_are_not_read() -> None:
    operations = FakeOperations(["whole"])
    ranges_fs = _AzureBlobRanges(FakeFileSystem(operations))
    with pytest.raises(ValueError, match="asked for 512 bytes, the store sends 16384"):
        asyncio.run(ranges_fs._cat_file("images/disk.vhd", start=0, end=512))
    assert operations.bodies_read == 0


class TransportClient(FakeBlobClient):
    """A blob client whose pipeline sends through the SDK's aiohttp transport, wrapped as a blob client's is."""

    def __init__(self, operations: FakeOperations) -> None:
        super().__init__(operations)
        from azure.core.pipeline.transport import AioHttpTransport
        from azure.storage.blob._shared.base_client_async import AsyncTransportWrapper

        self.transport = AioHttpTransport()
        self._pipeline = type("Pipeline", (), {"_transport": AsyncTransportWrapper(self.transport)})()


@pytest.mark.parametrize(
    ("environment", "trusted"),
    [
        ({}, False),
        ({"https_proxy": "http://proxy.example:3128"}, True),
        ({"HTTP_PROXY": "http://proxy.example:3128"}, True),
        ({"netrc": "machine example.blob.core.windows.net login a password b\n"}, True),
    ],
    ids=["nothing", "https-proxy", "http-proxy", "netrc"],
)
def test_the_session_reads_the_environment_only_when_it_names_something(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, environment: dict[str, str], trusted: bool
) -> None:
    for name in ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy", "no_proxy", "netrc"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name, value in environment.items():
        if name == "netrc":
            (tmp_path / ".netrc").write_text(value)
        else:
            monkeypatch.setenv(name, value)
    operations = FakeOperations([])
    fs = FakeFileSystem(operations)
    clients: list[TransportClient] = []
    fs.get_blob_client = lambda container, blob: clients.append(TransportClient(operations)) or clients[-1]  # type: ignore[method-assign]
    ranges_fs = _AzureBlobRanges(fs)

    async def run() -> tuple[bool, bool]:
        await ranges_fs._cat_file("images/disk.vhd", start=0, end=512)
        await ranges_fs._cat_file("images/disk.vhd", start=512, end=1024)
        session = clients[0].transport.session
        assert session is not None
        try:
            return session.trust_env, session.closed
        finally:
            await clients[0].transport.close()

    assert asyncio.run(run()) == (trusted, False)
    assert len(operations.calls) == 2
