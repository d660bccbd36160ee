"""The SAM ``F`` record and the LSA ``ActSysAc`` mask, decoded from the hives of the sample images (written by
hivexregedit from samples/hives/SAM.reg and SECURITY.reg, read back through the image's NTFS volume)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from azvhdaudit.account_facts import (
    ACB_DISABLED,
    ADMINISTRATOR_RID,
    LSA_ACCOUNTS,
    SAM_USERS,
    SE_DENY_NETWORK_LOGON,
    SE_DENY_REMOTE_INTERACTIVE_LOGON,
    SE_NETWORK_LOGON,
    SE_REMOTE_INTERACTIVE_LOGON,
    system_access_mask,
    user_account_flags,
)
from azvhdaudit.image import Image, open_image


@pytest.fixture(scope="module")
def image(sample_path: Callable[[str], Path]) -> Iterator[Image]:
    with open_image(sample_path("gen1-azure.vhd"), hives=("SYSTEM", "SOFTWARE", "SAM", "SECURITY")) as opened:
        yield opened


def _raw(image: Image, path: str, name: str) -> bytes:
    value = image.registry.value(path, name)
    assert value is not None, f"{path} {name!r}"
    return bytes(value.raw)


def test_the_administrator_record_as_stored(image: Image) -> None:
    raw = _raw(image, f"{SAM_USERS}\\{ADMINISTRATOR_RID:08X}", "F")
    assert len(raw) == 80
    flags = user_account_flags(raw)
    # USER_NORMAL_ACCOUNT | USER_DONT_EXPIRE_PASSWORD, not disabled (samples/hives/SAM.reg)
    assert flags == 0x0210
    assert not flags & ACB_DISABLED
    assert raw[0x30:0x34] == ADMINISTRATOR_RID.to_bytes(4, "little")  # the record's own RID, beside the flags


@pytest.mark.parametrize(
    ("sid", "mask"),
    [
        ("S-1-5-32-544", 0x407),  # Administrators: interactive, network, batch, RDS
        ("S-1-5-32-545", 0x3),
        ("S-1-5-32-555", SE_REMOTE_INTERACTIVE_LOGON),
        ("S-1-1-0", SE_NETWORK_LOGON),
        ("S-1-5-32-546", SE_DENY_NETWORK_LOGON | SE_DENY_REMOTE_INTERACTIVE_LOGON),  # Guests
    ],
)
def test_the_logon_rights_as_stored(image: Image, sid: str, mask: int) -> None:
    raw = _raw(image, f"{LSA_ACCOUNTS}\\{sid}\\ActSysAc", "")
    assert len(raw) == 4
    assert system_access_mask(raw) == mask


def test_an_account_without_rights_has_no_mask(image: Image) -> None:
    assert image.registry.key(f"{LSA_ACCOUNTS}\\S-1-5-113\\ActSysAc") is None


@pytest.mark.parametrize("length", range(0, 0x3A))
def test_a_record_ending_before_the_flags_gives_none(length: int) -> None:
    record = bytes(range(length))
    assert user_account_flags(record) is None


def test_the_flags_are_the_u16_at_0x38() -> None:
    record = bytearray(0x3A)
    record[0x38:0x3A] = (0x0211).to_bytes(2, "little")
    assert user_account_flags(bytes(record)) == 0x0211
    assert user_account_flags(bytes(record) + b"\xff" * 22) == 0x0211


@pytest.mark.parametrize(
    ("raw", "mask"),
    [
        (b"", None),
        (b"\x07", None),
        (b"\x07\x04\x00", None),
        (b"\x07\x04\x00\x00", 0x407),
        (b"\x80\x08\x00\x00\xff", 0x880),
    ],
)
def test_system_access_mask(raw: bytes, mask: int | None) -> None:
    assert system_access_mask(raw) == mask
