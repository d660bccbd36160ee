"""Every file the library opens on the local file system is a regular file or a block device, checked before
the open: a FIFO (``open()`` would wait for a writer), a socket or a character device is refused with the
library's error naming the path and its type, at once.

The opens: the image and its parents (tests/container/test_container_bad_input.py), a ``file://`` URL, a hive
file and its ``.LOG1``/``.LOG2``/``.LOG`` logs, a waiver file. Real files: the samples' intact image, the real
hive of tests/data/realdata.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import hardkit
import pytest

import azvhdaudit
from azvhdaudit.errors import RegistryError, SpecialFileError, WaiverError
from azvhdaudit.registry.open import open_hive_file
from azvhdaudit.waivers import load_waivers

REALDATA_SYSTEM = Path(__file__).parents[1] / "data" / "realdata" / "SYSTEM.xz"


@pytest.fixture
def system_hive(tmp_path: Path) -> Path:
    import lzma

    target = tmp_path / "SYSTEM"
    with lzma.open(REALDATA_SYSTEM) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


def test_file_url_naming_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "disk.vhd"
    os.mkfifo(fifo)
    with pytest.raises(SpecialFileError, match="is a FIFO"):
        azvhdaudit.audit(f"file://{fifo}")


def test_audit_of_a_fifo_path(tmp_path: Path) -> None:
    fifo = tmp_path / "x.vhd"
    os.mkfifo(fifo)
    with pytest.raises(SpecialFileError, match=r"x\.vhd: .*FIFO"):
        azvhdaudit.audit(fifo)


def test_hive_file_that_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "SOFTWARE"
    os.mkfifo(fifo)
    with pytest.raises(RegistryError, match="SOFTWARE: the hive is a FIFO"):
        open_hive_file(fifo)


@pytest.mark.parametrize("kind", ["LOG1", "LOG2", "LOG"])
def test_transaction_log_that_is_a_fifo(system_hive: Path, kind: str) -> None:
    with open_hive_file(system_hive) as hive:  # the hive alone opens
        assert hive.key("Select") is not None
    os.mkfifo(f"{system_hive}.{kind}")
    with pytest.raises(RegistryError, match=rf"SYSTEM\.{kind}: the {kind} transaction log is a FIFO"):
        open_hive_file(system_hive)


def test_transaction_log_given_as_a_character_device(system_hive: Path) -> None:
    with pytest.raises(RegistryError, match="/dev/zero: the LOG1 transaction log is a character device"):
        open_hive_file(system_hive, logs={"LOG1": "/dev/zero"})


def test_waiver_file_that_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "waivers.toml"
    os.mkfifo(fifo)
    with pytest.raises(WaiverError, match="waivers.toml: the waiver file is a FIFO"):
        load_waivers(fifo)


def test_audit_with_a_fifo_for_waivers_stops_before_opening_the_image(tmp_path: Path) -> None:
    fifo = tmp_path / "w.json"
    os.mkfifo(fifo)
    image = hardkit.SAMPLES_DIR / "does-not-matter.vhd"
    with pytest.raises(WaiverError, match="is a FIFO"):
        azvhdaudit.audit(image, waivers=fifo)


def test_waiver_file_as_a_character_device() -> None:
    with pytest.raises(WaiverError, match="/dev/null: the waiver file is a character device"):
        load_waivers("/dev/null")
