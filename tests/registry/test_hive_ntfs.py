"""Hives read from inside an NTFS volume through dissect.ntfs file streams, as the image layer does.

The volume is made by mkntfs and filled by ntfscp (no mount needed). The regf backend reads the hive
lazily through the file stream; bytes read from the volume image are counted below the stream.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from dissect.ntfs import NTFS

from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import open_hive

from .test_hive_lazy import LOOKUPS, CountingReader

pytestmark = pytest.mark.tools

FILES = {"SYSTEM": "SYSTEM7", "SYSTEM_B": "SYSTEM", "SYSTEM_B.LOG1": "SYSTEM.LOG1", "SYSTEM_B.LOG2": "SYSTEM.LOG2"}


@pytest.fixture(scope="module")
def volume(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    for tool in ("mkntfs", "ntfscp"):
        assert shutil.which(tool), f"{tool} is needed (apt-get install ntfs-3g)"
    path = tmp_path_factory.mktemp("ntfs") / "volume.img"
    with open(path, "wb") as fh:
        fh.truncate(48 * 1024 * 1024)
    subprocess.run(["mkntfs", "-Q", "-F", "-q", "-s", "512", str(path)], check=True, capture_output=True)
    for source, target in FILES.items():
        subprocess.run(["ntfscp", str(path), str(realdata / source), target], check=True, capture_output=True)
    return path


def test_lazy_lookups_through_ntfs(volume: Path, backend: str) -> None:
    with open(volume, "rb") as raw:
        counter = CountingReader(raw)
        fs = NTFS(counter)
        stream = fs.mft.get("SYSTEM7").open()
        size = stream.seek(0, 2)
        before = counter.bytes_read
        view = RegistryView({"SYSTEM": open_hive(stream, "SYSTEM", source="volume:SYSTEM7", backend=backend)})
        found = [view.value(key, name) for key, name in LOOKUPS]
        spent = counter.bytes_read - before
        crash = view.value(r"HKLM\SYSTEM\CurrentControlSet\Control\CrashControl", "CrashDumpEnabled")
    assert crash is not None and crash.data == 2
    assert sum(v is not None for v in found) >= 15
    if backend == "regf":
        assert spent < size // 20, (spent, size)
    else:
        assert spent >= size


def test_dirty_hive_replayed_through_ntfs(volume: Path, backend: str) -> None:
    with open(volume, "rb") as raw:
        fs = NTFS(raw)
        logs = {kind: fs.mft.get(f"SYSTEM.{kind}").open() for kind in ("LOG1", "LOG2")}
        hive = open_hive(fs.mft.get("SYSTEM").open(), "SYSTEM", source="volume:SYSTEM", backend=backend, logs=logs)
        assert hive.state.dirty and hive.state.replayed and hive.state.logs == ("LOG1", "LOG2")
        assert hive.key(r"ControlSet001\Services\ad_driver") is not None
