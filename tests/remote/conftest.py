"""Fixtures for the remote and fleet tests: sample images, an HTTP server with Range, Azurite with page blobs.

The images are built once per session by ``remote_images.py`` (real tools, real hives); the servers run on
127.0.0.1 for the session and are stopped at its end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import remote_images as ri
import remote_servers as rs


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """name -> local file: win7, win10-dirty, win7-dynamic (good and bad Windows disks), child (a differencing
    disk of win7), garbage, truncated."""
    where = tmp_path_factory.mktemp("remote-images")
    made = {
        "win7": ri.build_vhd(where / "win7.vhd", "win7"),
        "win10-dirty": ri.build_vhd(where / "win10-dirty.vhd", "win10-dirty"),
        "win7-dynamic": ri.build_vhd(where / "win7-dynamic.vhd", "win7", subformat="dynamic"),
        "garbage": ri.build_garbage(where / "garbage.vhd"),
    }
    made["truncated"] = ri.build_truncated(made["win7"], where / "truncated.vhd")
    made["child"] = ri.build_child(where / "child.vhd", made["win7"])
    return made


@pytest.fixture(scope="session")
def large_vhd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fixed VHD of 100 GiB virtual size, sparse on disk."""
    return ri.build_large(tmp_path_factory.mktemp("large") / "large.vhd")


@pytest.fixture(scope="session")
def http_server(images: dict[str, Path]) -> Iterator[rs.HttpServer]:
    server = rs.start_http(images["win7"].parent)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rs.Azurite]:
    emulator = rs.start_azurite(tmp_path_factory.mktemp("azurite"))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def blob_store(azurite: rs.Azurite, images: dict[str, Path], large_vhd: Path) -> rs.BlobStore:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container("images")
    uploads = {}
    for name in ("win7", "win10-dirty", "win7-dynamic", "truncated", "child"):
        uploads[name] = rs.upload_page_blob(container, f"page/{name}.vhd", images[name])
    uploads["large"] = rs.upload_page_blob(container, "page/large.vhd", large_vhd)
    rs.upload_block_blob(container, "block/win7.vhd", images["win7"])
    rs.upload_block_blob(container, "block/garbage.vhd", images["garbage"])
    return rs.BlobStore(azurite=azurite, container=container, uploads=uploads)


@pytest.fixture(scope="session")
def compare() -> Any:
    return rs.comparable
