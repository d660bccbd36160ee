"""Images in Azure Blob Storage (Azurite): page blobs written page by page, block blobs, credentials.

The verdicts read remotely must equal those read from the local file, and the remote audit of a 100 GiB
fixed VHD must read only a few MB.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import remote_images as ri
import remote_servers as rs

from azvhdaudit.errors import ImageError
from azvhdaudit.fleet import audit_source
from azvhdaudit.sources import open_source

# Azurite, the HTTP server and the images they serve are built with qemu-img, mkntfs and ntfs-3g
#: slow: an Azurite server and built images
pytestmark = [pytest.mark.slow, pytest.mark.tools]

MiB = 1024 * 1024
GiB = 1024 * MiB


def _sas(store: rs.BlobStore, **perms: bool) -> str:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    return generate_container_sas(
        account_name=rs.ACCOUNT,
        container_name="images",
        account_key=rs.ACCOUNT_KEY,
        permission=ContainerSasPermissions(**perms),
        expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2),
    )


@pytest.mark.parametrize(
    ("name", "blob"),
    [
        ("win7", "page/win7.vhd"),
        ("win10-dirty", "page/win10-dirty.vhd"),
        ("win7-dynamic", "page/win7-dynamic.vhd"),
        ("win7", "block/win7.vhd"),
        ("child", "page/child.vhd"),
    ],
)
def test_blob_audits_like_the_local_file(
    blob_store: rs.BlobStore, images: dict[str, Path], compare: Any, name: str, blob: str
) -> None:
    local = audit_source(images[name])
    remote = audit_source(blob_store.url(blob), storage_options=blob_store.options)
    assert remote.source == f"az://images/{blob}"
    assert compare(remote) == compare(local)
    assert remote.results and not remote.get("image.readable")
    io = remote.facts["extra"]["io"]
    # a few MB of a 64 MiB disk, except the dirty hive, which is read whole with its logs to replay them
    assert io["requests"] >= 2 and 0 < io["bytes_read"] <= (24 if name == "win10-dirty" else 4) * MiB


def test_differencing_blob_reads_its_parent_beside_it(blob_store: rs.BlobStore) -> None:
    report = audit_source(blob_store.url("page/child.vhd"), storage_options=blob_store.options)
    container = report.facts["container"]
    assert container["subtype"] == "differencing"
    assert [p["path"] for p in container["parents"]] == ["az://images/page/win7.vhd"]
    assert container["parents"][0]["linkage_matches"] is True
    assert report.facts["mbr_disk_signature"] == ri.CHILD_DISK_SIGNATURE  # the child's sector, not the parent's
    io = report.facts["extra"]["io"]
    assert io["files_opened"] == 2 and io["requests"] >= 4


def test_page_blob_holds_only_the_written_pages(blob_store: rs.BlobStore, images: dict[str, Path]) -> None:
    client = blob_store.container.get_blob_client("page/win7.vhd")
    props = client.get_blob_properties()
    assert props.blob_type == "PageBlob" and props.size == images["win7"].stat().st_size
    written = sum(r.end - r.start + 1 for r in client.list_page_ranges())
    assert written == blob_store.uploads["win7"].pages_written * rs.PAGE < props.size // 2
    # and reading it back gives the file, zeros where nothing was written
    assert client.download_blob().readall() == images["win7"].read_bytes()


def test_large_page_blob_audits_remotely_reading_a_few_mb(
    blob_store: rs.BlobStore, large_vhd: Path, compare: Any
) -> None:
    upload = blob_store.uploads["large"]
    assert upload.size >= 100 * GiB and upload.pages_written * rs.PAGE < 64 * MiB
    local = audit_source(large_vhd)
    remote = audit_source(blob_store.url("page/large.vhd"), storage_options=blob_store.options)
    assert remote.facts["container"]["virtual_size"] >= 100 * GiB
    assert remote.facts["container"]["subtype"] == "fixed"
    assert compare(remote) == compare(local)
    io = remote.facts["extra"]["io"]
    assert io["bytes_read"] <= 4 * MiB, io
    assert io["requests"] <= 64, io


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "one-at-a-time"])
@pytest.mark.parametrize("blob", ["page/win7.vhd", "page/large.vhd", "block/win7.vhd"])
def test_range_read_is_one_get_blob_request(
    blob_store: rs.BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blob: str, batched: bool
) -> None:
    # counted at a proxy in front of Azurite: the size lookup (HEAD, Get Blob Properties) and one ranged GET per range
    # the audit fetched. The SDK's download_blob lists a page blob's page ranges (GET ?comp=pagelist) after every read.
    monkeypatch.setenv("AZVHDAUDIT_BATCH", "1" if batched else "0")
    log = tmp_path / "requests.log"
    proxy = rs.spawn_delay_proxy(blob_store.azurite.port, 0.0, log=log)
    try:
        options = {"connection_string": blob_store.azurite.connection_string_via(proxy.url)}
        report = audit_source(blob_store.url(blob), storage_options=options)
    finally:
        proxy.stop()
    assert not report.get("image.readable")
    io = report.facts["extra"]["io"]
    requests = rs.read_proxy_log(log)
    target = f"/{rs.ACCOUNT}/images/{blob}"
    lookups = [r for r in requests if r.method == "HEAD" and r.target == target]
    ranges = [r for r in requests if r.method == "GET" and r.target == target and r.range is not None]
    assert len(lookups) == 1 and len(ranges) >= 2
    assert len(lookups) + len(ranges) == len(requests) == io["requests"], [r for r in requests if r not in ranges]
    # keep-alive: requests share connections (at most as many as were in flight at once, and the size lookup's)
    assert len({r.connection for r in requests}) <= io["most_in_flight"] + 1


def test_sas_connection_string_reads(blob_store: rs.BlobStore, images: dict[str, Path], compare: Any) -> None:
    sas = _sas(blob_store, read=True)
    options = {"connection_string": blob_store.azurite.sas_connection_string(sas)}
    remote = audit_source("az://images/page/win7.vhd", storage_options=options)
    assert compare(remote) == compare(audit_source(images["win7"]))


def test_sas_url_reads_over_https_style_get(blob_store: rs.BlobStore, images: dict[str, Path], compare: Any) -> None:
    # a blob SAS URL is plain HTTP(S) with ranges: no Azure library needed to read it
    url = f"{blob_store.azurite.endpoint}/images/page/win7.vhd?{_sas(blob_store, read=True)}"
    remote = audit_source(url)
    assert compare(remote) == compare(audit_source(images["win7"]))
    fh, opener = open_source(url)
    with fh, opener("win10-dirty.vhd") as sibling:  # the SAS is carried to the parent's URL
        assert sibling.name.startswith(f"{blob_store.azurite.endpoint}/images/page/win10-dirty.vhd?")
        assert sibling.read(512) == images["win10-dirty"].read_bytes()[:512]


def test_missing_blob_is_file_not_found(blob_store: rs.BlobStore) -> None:
    with pytest.raises(FileNotFoundError, match="az://images/page/no-such.vhd"):
        open_source("az://images/page/no-such.vhd", **blob_store.options)


def test_wrong_key_names_the_url(blob_store: rs.BlobStore) -> None:
    bad = blob_store.azurite.connection_string.replace(rs.ACCOUNT_KEY, "A" * 86 + "==")
    with pytest.raises((ImageError, PermissionError, FileNotFoundError)) as info:
        fh, _ = open_source("az://images/page/win7.vhd", connection_string=bad)
        fh.read(512)
    assert "images/page/win7.vhd" in str(info.value)


def _without_proxy_settings(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name in ("http_proxy", "https_proxy", "ws_proxy", "wss_proxy", "all_proxy", "no_proxy", "netrc"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HOME", str(home))  # no ~/.netrc


def test_the_environment_without_a_proxy_is_read_once_not_per_request(
    blob_store: rs.BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # aiohttp looks for a proxy in the environment before every request of a session that trusts it (the SDK's do);
    # with none there, the blob's ranges are read without looking (the size lookup, adlfs's, may look once)
    import aiohttp.client

    _without_proxy_settings(monkeypatch, tmp_path)
    lookups = []
    look = aiohttp.client.get_env_proxy_for_url

    def counted(url: Any) -> Any:
        lookups.append(str(url))
        return look(url)

    monkeypatch.setattr(aiohttp.client, "get_env_proxy_for_url", counted)
    # a file system of its own: adlfs's cached one (and its session) may have been made by another test
    options = {**blob_store.options, "skip_instance_cache": True}
    report = audit_source(blob_store.url("page/win7.vhd"), storage_options=options)
    assert not report.get("image.readable")
    assert report.facts["extra"]["io"]["requests"] >= 10
    assert len(lookups) <= 1, lookups


def test_a_proxy_the_environment_names_carries_every_request(
    blob_store: rs.BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the counting proxy in front of Azurite as the environment's HTTP proxy: the client asks it for absolute URLs
    log = tmp_path / "requests.log"
    proxy = rs.spawn_delay_proxy(blob_store.azurite.port, 0.0, log=log)
    try:
        _without_proxy_settings(monkeypatch, tmp_path)
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.url}")
        options = {**blob_store.options, "skip_instance_cache": True}
        report = audit_source(blob_store.url("page/win7.vhd"), storage_options=options)
    finally:
        proxy.stop()
    assert not report.get("image.readable")
    io = report.facts["extra"]["io"]
    requests = rs.read_proxy_log(log)
    target = f"{blob_store.azurite.endpoint}/images/page/win7.vhd"
    assert len(requests) == io["requests"] >= 10
    assert all(r.target == target for r in requests), {r.target for r in requests}
