"""The BCD store reaches the rules through the audit context: decoded once by the data path, its decode error kept
in the facts; decoded by the facts layer (once per audit) only for a context built with a hive and no store."""

from __future__ import annotations

import lzma
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import azvhdaudit.bcd
import azvhdaudit.boot_facts
from azvhdaudit.bcd import BCDStore, decode_bcd
from azvhdaudit.boot_facts import bcd_of
from azvhdaudit.engine import audit
from azvhdaudit.facts import ContainerFacts, ImageFacts
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView
from azvhdaudit.registry.open import open_hive
from azvhdaudit.report import Status
from azvhdaudit.rules.base import AuditContext
from azvhdaudit.rules.bcd import decoded_store

REAL_BCD = Path(__file__).parent.parent / "data" / "realdata" / "BCD.xz"


def _facts(**kw: Any) -> ImageFacts:
    container = ContainerFacts(path="x", format="raw", subtype=None, virtual_size=0, file_size=0)
    return ImageFacts(source="x", container=container, **kw)


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    original = azvhdaudit.bcd.decode_bcd

    def counting(hive: Any) -> BCDStore:
        calls.append(hive.source)
        return original(hive)

    monkeypatch.setattr(azvhdaudit.bcd, "decode_bcd", counting)
    monkeypatch.setattr(azvhdaudit.boot_facts, "decode_bcd", counting)
    return calls


@pytest.fixture(scope="module")
def real_hive() -> Any:
    import io

    with lzma.open(REAL_BCD) as fh:
        return open_hive(io.BytesIO(fh.read()), "BCD", source="BCD")


def test_the_store_given_is_the_one_read(real_hive: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    store = decode_bcd(real_hive)
    calls = _counting(monkeypatch)
    ctx = AuditContext(registry=RegistryView(hives={"BCD": real_hive}), facts=_facts(), bcd=store)
    assert bcd_of(ctx) is store and decoded_store(ctx) == (store, "")
    assert calls == []


def test_a_context_with_a_hive_and_no_store_decodes_it_once(real_hive: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    ctx = AuditContext(registry=RegistryView(hives={"BCD": real_hive}), facts=_facts())
    first = bcd_of(ctx)
    assert isinstance(first, BCDStore) and bcd_of(ctx) is first and decoded_store(ctx)[0] is first
    assert "{9dea862c-5cdd-4e70-acc1-f32b344d4795}" in first.objects  # {bootmgr} of the real store
    assert calls == ["BCD"]


def test_the_data_paths_decode_error_is_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    not_bcd = MemoryHive.build("BCD", {"Description": {"KeyName": "BCD00000000"}}, source="EFI\\BCD")
    ctx = AuditContext(registry=RegistryView(hives={"BCD": not_bcd}), facts=_facts(bcd_error="no Objects key"))
    assert bcd_of(ctx) == "no Objects key"
    assert decoded_store(ctx) == (None, "the BCD store cannot be decoded: no Objects key")
    assert calls == []
    # the same hive in a context built by hand: decoded here, with the decoder's own words
    fresh = AuditContext(registry=RegistryView(hives={"BCD": not_bcd}), facts=_facts())
    why = bcd_of(fresh)
    assert isinstance(why, str) and "Objects" in why
    assert calls == ["EFI\\BCD"]


def test_no_hive_no_store() -> None:
    view = RegistryView(unavailable={"BCD": "no boot store found (\\Boot\\BCD or \\EFI\\Microsoft\\Boot\\BCD)"})
    ctx = AuditContext(registry=view, facts=_facts())
    assert bcd_of(ctx) is None
    assert decoded_store(ctx) == (None, "no boot store found (\\Boot\\BCD or \\EFI\\Microsoft\\Boot\\BCD)")


def test_an_audit_decodes_the_store_once(sample_path: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    report = audit(sample_path("gen2-misconfigured.vhdx"), profile="azure-2022", select=["bcd.*"])
    assert len(calls) == 1
    assert report.results and all(r.status is not Status.ERROR for r in report.results)
    assert report.to_dict()["facts"].get("bcd_error") is None  # not a reported fact
