"""A closed image lets go of its hives at once: nothing keeps a hive (with python-registry, the whole hive's
bytes) alive until the next full garbage collection, so audits in a loop do not pile up memory."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest

from azvhdaudit.image import open_image


@pytest.mark.parametrize("backend", ["regf", "python-registry"])
def test_closed_hives_are_freed_without_the_cycle_collector(sample_path: Callable[[str], Path], backend: str) -> None:
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        with open_image(sample_path("gen1-azure.vhd"), backend=backend) as image:
            hive = image.registry.hive("SOFTWARE")
            assert hive is not None
            # lookups fill the hive's caches of keys, which point back at the hive
            assert image.registry.key(r"SOFTWARE\Microsoft\Windows NT\CurrentVersion") is not None
            assert (
                image.registry.value(r"SYSTEM\CurrentControlSet\Control\TimeZoneInformation", "RealTimeIsUniversal")
                is not None
            )
            alive = weakref.ref(hive)
            del hive
        del image
        assert alive() is None, "a closed hive is kept alive by a reference cycle"
    finally:
        if enabled:
            gc.enable()
