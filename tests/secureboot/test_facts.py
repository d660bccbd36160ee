"""secureboot_facts: the servicing values decoded, the boot manager's headers read (and how much of it), and the
boot-manager rule's verdict for each answer the Authenticode verifier can give."""

from __future__ import annotations

import io
from typing import Any

import pytest
from image_rules.helpers import BOOTMGR as BOOTMGR_GUID
from image_rules.helpers import LOADER, FakeFiles, build_bcd, good_bcd_objects, image_facts, make_context

from azvhdaudit import secureboot_facts as sbf
from azvhdaudit.bcd import decode_bcd
from azvhdaudit.errors import AuditError
from azvhdaudit.registry.memory import MemoryHive
from azvhdaudit.registry.model import RegistryView, RegType
from azvhdaudit.report import Status
from azvhdaudit.rules.base import AuditOptions, Target

from .sbkit import BOOTMGFW, SB, SERVICING, system_tree
from .test_rules_images import run


class CountingFiles(FakeFiles):
    """FakeFiles with ``open`` (as the real volume has), counting the bytes read through it."""

    def __init__(self, entries: dict[str, Any]) -> None:
        super().__init__(entries)
        self.bytes_read = 0

    def open(self, path: str) -> io.BufferedIOBase:
        data = self.entries[self._norm(path)]
        assert isinstance(data, bytes)
        files = self

        class Counting(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                out = super().read(size)
                files.bytes_read += len(out)
                return out

        return Counting(data)


def view(tree: dict[str, dict[str, Any]] | None) -> RegistryView:
    if tree is None:
        return RegistryView(hives={}, unavailable={"SYSTEM": "the SYSTEM hive is not present at X (test)"})
    return RegistryView(hives={"SYSTEM": MemoryHive.build("SYSTEM", tree)})


# --- AvailableUpdates and the servicing values --------------------------------------------------------------


def test_0x5944_is_every_documented_step() -> None:
    decoded = dict(sbf.decode_available_updates(0x5944))
    assert sorted(decoded) == [0x0004, 0x0040, 0x0100, 0x0800, 0x1000, 0x4000]
    assert decoded[0x0040] == "add Windows UEFI CA 2023 to the Secure Boot DB"
    assert "boot manager signed by Windows UEFI CA 2023" in decoded[0x0100]


def test_undocumented_bits_are_not_given_a_meaning() -> None:
    assert sbf.decode_available_updates(0x0002) == [(0x0002, "not documented in KB5025885 or KB5068202")]
    assert sbf.decode_available_updates(0) == []


@pytest.mark.parametrize(
    ("servicing", "secureboot", "value", "key"),
    [
        ({"AvailableUpdates": 0x40}, {"AvailableUpdates": 0x100}, 0x40, "Servicing"),  # KB5068202's place first
        ({}, {"AvailableUpdates": 0x100}, 0x100, "SecureBoot"),  # KB5025885's reg add lines
        (None, {"AvailableUpdates": 0x5944}, 0x5944, "SecureBoot"),
    ],
)
def test_available_updates_where_found(servicing: Any, secureboot: Any, value: int, key: str) -> None:
    state = sbf.servicing_state(view(system_tree(servicing=servicing, secureboot=secureboot)))
    assert state.available_updates == value
    assert state.available_updates_key is not None and state.available_updates_key.endswith(key)
    assert "ControlSet001" in state.available_updates_key


def test_pending_steps_leave_out_the_modifier() -> None:
    state = sbf.servicing_state(view(system_tree(secureboot={"AvailableUpdates": 0x4004})))
    assert state.pending_steps == [(0x0004, sbf._BITS[0x0004].meaning)]
    done = sbf.servicing_state(view(system_tree(secureboot={"AvailableUpdates": 0x4000})))
    assert done.pending_steps == [] and "no step pending" in done.summary()


def test_values_of_the_wrong_type_are_not_read_as_data() -> None:
    tree = system_tree(servicing={"UEFICA2023Status": 2, "UEFICA2023Error": "0"})
    state = sbf.servicing_state(view(tree))
    assert state.status is None and state.error is None
    assert state.mistyped == {"UEFICA2023Status": "REG_DWORD", "UEFICA2023Error": "REG_SZ"}


def test_no_system_hive_or_no_control_set() -> None:
    state = sbf.servicing_state(view(None))
    assert not state.readable and "not present" in state.why
    tree = system_tree(servicing={"UEFICA2023Status": "Updated"})
    del tree["Select"]
    tree["ControlSet002"] = {}  # two sets and no Select: the current one is not known
    assert not sbf.servicing_state(view(tree)).readable


def test_absent_values_are_evidence_of_absence() -> None:
    state = sbf.servicing_state(view(system_tree()))
    assert state.readable and not state.has_any
    assert [e.present for e in state.evidence] == [False, False]
    assert state.evidence[0].note == "key absent"


def test_unknown_status_and_capable_values_say_so() -> None:
    state = sbf.servicing_state(
        view(system_tree(servicing={"UEFICA2023Status": "Pending", "WindowsUEFICA2023Capable": 7}))
    )
    assert state.status_meaning == "'Pending': not a value KB5068202 lists"
    assert state.capable_meaning == "7: not a value KB5025885 lists"


# --- the servicing rule on hand-built hives ---------------------------------------------------------------


def sb_ctx(
    tree: dict[str, Any] | None = None,
    files: Any = None,
    security_type: str | None = "TrustedLaunch",
    verify: bool = False,
) -> Any:
    hives = {"SYSTEM": MemoryHive.build("SYSTEM", tree)} if tree is not None else {}
    ctx = make_context(facts=image_facts("gpt"), hives=hives)
    ctx.options = AuditOptions(target=Target(security_type=security_type), verify_signatures=verify)
    ctx.boot_files = files
    return ctx


@pytest.mark.parametrize(
    ("servicing", "secureboot", "status", "words"),
    [
        ({"UEFICA2023Status": "Updated", "WindowsUEFICA2023Capable": 2}, None, Status.PASS, "rollover is done"),
        ({"UEFICA2023Status": "InProgress"}, {"AvailableUpdates": 0x4100}, Status.WARNING, "under way"),
        ({"UEFICA2023Status": "NotStarted"}, {"AvailableUpdates": 0x5944}, Status.WARNING, "requested but not"),
        ({"UEFICA2023Status": "NotStarted"}, None, Status.WARNING, "has not started"),
        ({"UEFICA2023Status": "Updated", "UEFICA2023Error": 0x80004005}, None, Status.WARNING, "0x80004005"),
        ({"UEFICA2023Status": "Pending"}, None, Status.WARNING, "not a value KB5068202 lists"),
        ({"UEFICA2023Status": 1}, None, Status.NOT_CHECKED, "UEFICA2023Status is REG_DWORD"),
        ({"WindowsUEFICA2023Capable": 2}, None, Status.WARNING, "predates the servicing of KB5068202"),
        ({}, {"AvailableUpdates": 0}, Status.WARNING, "no 2023 certificate servicing values"),
        (None, None, Status.WARNING, "no 2023 certificate servicing values"),
    ],
)
def test_servicing_rule(servicing: Any, secureboot: Any, status: Status, words: str) -> None:
    out = run("secureboot.uefica2023_servicing", sb_ctx(system_tree(servicing=servicing, secureboot=secureboot)))
    assert out.status == status, out.message
    assert words in out.message
    # the commands are said once, in the remediation
    assert "Start-ScheduledTask" not in out.message and "fix:" not in out.message
    if status == Status.WARNING and "not a value" not in words:  # (that one leaves the rule's general fix)
        assert "Start-ScheduledTask" in out.remediation


def test_servicing_rule_without_system_hive() -> None:
    out = run("secureboot.uefica2023_servicing", sb_ctx(None))
    assert out.status == Status.NOT_CHECKED and "SYSTEM" in out.reason


# --- the boot manager's headers -----------------------------------------------------------------------------


def test_signed_boot_manager_read_by_its_headers_only(efi_binaries: dict[str, bytes]) -> None:
    signed = efi_binaries["signed"]
    files = CountingFiles({BOOTMGFW: signed})
    bm = sbf.boot_manager(files)
    assert bm.signed and bm.machine == "x64" and bm.subsystem == "EFI application"
    assert bm.cert_table_offset is not None and bm.cert_table_offset + (bm.cert_table_size or 0) == len(signed)
    # the headers, not the file: 4 KiB at most (a real bootmgfw.efi is about 2.5 MB)
    assert files.bytes_read == bm.bytes_read <= 4096


def test_unsigned_boot_manager(efi_binaries: dict[str, bytes]) -> None:
    bm = sbf.boot_manager(CountingFiles({BOOTMGFW: efi_binaries["unsigned"]}))
    assert bm.present and bm.signed is False and bm.cert_table_size == 0


def test_boot_manager_without_open_is_read_whole(efi_binaries: dict[str, bytes]) -> None:
    bm = sbf.boot_manager(FakeFiles({BOOTMGFW: efi_binaries["signed"]}))
    assert bm.signed and bm.size == len(efi_binaries["signed"])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda b: b"not a PE image at all", "no MZ header"),
        (lambda b: b"MZ" + bytes(200), "PE headers unreadable"),
        (lambda b: b["signed"][: len(b["signed"]) - 100], "does not fit"),
    ],
)
def test_broken_boot_managers(efi_binaries: dict[str, bytes], make: Any, words: str) -> None:
    bm = sbf.boot_manager(CountingFiles({BOOTMGFW: make(efi_binaries)}))
    assert bm.present and bm.error and words in bm.error and bm.signed is None


def test_generation2_rule_judges_what_it_read(efi_binaries: dict[str, bytes]) -> None:
    dll = run("secureboot.generation2", sb_ctx(system_tree(), CountingFiles({BOOTMGFW: efi_binaries["dll"]})))
    assert dll.status == Status.FAIL and "not an EFI application" in dll.message
    junk = run(
        "secureboot.generation2",
        sb_ctx(system_tree(), CountingFiles({BOOTMGFW: b"MZ" + bytes(200)}), security_type="Standard"),
    )
    assert junk.status == Status.WARNING and "PE headers unreadable" in junk.message
    # the signature rule leaves a file that is no boot manager to secureboot.generation2
    sig = run("secureboot.bootmgr_signature", sb_ctx(system_tree(), CountingFiles({BOOTMGFW: efi_binaries["dll"]})))
    assert sig.status == Status.NOT_APPLICABLE and "not an EFI application" in sig.reason


def test_unreadable_boot_volume_is_not_checked() -> None:
    class Broken(FakeFiles):
        def exists(self, path: str) -> bool:
            raise AuditError("partition 0: cannot look up EFI: bad cluster chain")

    for rule_id in ("secureboot.generation2", "secureboot.bootmgr_signature"):
        out = run(rule_id, sb_ctx(system_tree(), Broken()))
        assert out.status == Status.NOT_CHECKED and "bad cluster chain" in out.message


# --- the boot manager rule for each answer of the verifier ---------------------------------------------------


class Signer:
    """What azvhdaudit.authenticode.uefi_signers answers per signature: ``ca`` only when verified."""

    def __init__(self, subject: str, ca: str | None, verified: bool = True, why: str = "") -> None:
        self.subject, self.ca, self.verified, self.why = subject, ca if verified else None, verified, why


@pytest.mark.parametrize(
    ("signers", "status", "words"),
    [
        ([Signer("Microsoft Windows", sbf.UEFICA2023)], Status.PASS, "the 2023 boot manager"),
        ([Signer("Microsoft Windows", sbf.PCA2011)], Status.WARNING, "expires in October 2026"),
        (
            [Signer("Microsoft Windows", sbf.PCA2011), Signer("Microsoft Windows", sbf.UEFICA2023)],
            Status.PASS,
            "and Microsoft Windows Production PCA 2011",
        ),
        (
            [Signer("Debian Secure Boot Signer", "Microsoft Corporation UEFI CA 2011")],
            Status.WARNING,
            "third-party UEFI software",
        ),
        ([Signer("Lookalike", None)], Status.FAIL, "chains to neither"),
        ([], Status.FAIL, "no signature in the table"),
        (
            [
                Signer(
                    "CN=Lookalike Windows Production PCA 2011",
                    None,
                    verified=False,
                    why="no chain to a UEFI db certificate",
                )
            ],
            Status.FAIL,
            "Lookalike Windows Production PCA 2011 -> no UEFI DB CA (no chain",
        ),
        (
            [Signer("Microsoft Windows", sbf.UEFICA2023, verified=False, why="the file's digest does not match")],
            Status.FAIL,
            "digest does not match",
        ),
    ],
)
def test_bootmgr_signature_verdicts(
    monkeypatch: pytest.MonkeyPatch, efi_binaries: dict[str, bytes], signers: list[Signer], status: Status, words: str
) -> None:
    asked: dict[str, Any] = {}

    def uefi_signers(fh: Any, *, name: str, verify: bool) -> list[Signer]:
        asked.update(name=name, verify=verify, head=fh.read(2))
        return signers

    monkeypatch.setattr(sbf, "_api", lambda: (uefi_signers, ""))
    tree = system_tree(servicing={"UEFICA2023Status": "NotStarted"})
    out = run("secureboot.bootmgr_signature", sb_ctx(tree, CountingFiles({BOOTMGFW: efi_binaries["signed"]})))
    assert out.status == status, out.message
    assert words in out.message
    assert asked == {"name": BOOTMGFW, "verify": False, "head": b"MZ"}
    if status == Status.PASS:
        assert "the file's digest not compared" in out.message
    if status == Status.WARNING and "October" in out.message:
        assert "UEFICA2023Status NotStarted" in out.message and "0x5944" not in out.message
        assert "0x5944 /f" in out.remediation


def test_bootmgr_signature_passes_the_verify_flag(
    monkeypatch: pytest.MonkeyPatch, efi_binaries: dict[str, bytes]
) -> None:
    seen = []
    monkeypatch.setattr(sbf, "_api", lambda: (lambda fh, name, verify: seen.append(verify) or [], ""))
    run(
        "secureboot.bootmgr_signature",
        sb_ctx(system_tree(), CountingFiles({BOOTMGFW: efi_binaries["signed"]}), verify=True),
    )
    assert seen == [True]


@pytest.mark.parametrize(
    ("secureboot", "lines"),
    [
        ({}, 2),  # nothing requested: set AvailableUpdates, then run the task
        ({"AvailableUpdates": 0x5944}, 1),  # already requested: only the task
    ],
)
def test_rollover_fix_follows_the_servicing_state(
    monkeypatch: pytest.MonkeyPatch, efi_binaries: dict[str, bytes], secureboot: dict[str, int], lines: int
) -> None:
    monkeypatch.setattr(sbf, "_api", lambda: (lambda fh, name, verify: [Signer("Microsoft Windows", sbf.PCA2011)], ""))
    tree = system_tree(servicing={"UEFICA2023Status": "NotStarted"}, secureboot=secureboot)
    out = run("secureboot.bootmgr_signature", sb_ctx(tree, CountingFiles({BOOTMGFW: efi_binaries["signed"]})))
    assert out.status == Status.WARNING
    fix = out.remediation.splitlines()
    assert len(fix) == lines and fix[-1].startswith("Start-ScheduledTask")
    assert ("0x5944 /f" in fix[0]) == (lines == 2)


def test_stale_servicing_state_is_named(monkeypatch: pytest.MonkeyPatch, efi_binaries: dict[str, bytes]) -> None:
    monkeypatch.setattr(sbf, "_api", lambda: (lambda fh, name, verify: [Signer("Microsoft Windows", sbf.PCA2011)], ""))
    tree = system_tree(servicing={"UEFICA2023Status": "Updated"})
    out = run("secureboot.bootmgr_signature", sb_ctx(tree, CountingFiles({BOOTMGFW: efi_binaries["signed"]})))
    assert out.status == Status.WARNING and "yet the ESP holds the 2011-signed boot manager" in out.message


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (AuditError("PKCS#7 blob truncated at offset 12"), "cannot be decided: PKCS#7 blob truncated"),
        ([object()], "without subject/ca/verified"),
    ],
)
def test_verifier_that_cannot_answer(
    monkeypatch: pytest.MonkeyPatch, efi_binaries: dict[str, bytes], answer: Any, words: str
) -> None:
    def uefi_signers(fh: Any, *, name: str, verify: bool) -> Any:
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(sbf, "_api", lambda: (uefi_signers, ""))
    out = run("secureboot.bootmgr_signature", sb_ctx(system_tree(), CountingFiles({BOOTMGFW: efi_binaries["signed"]})))
    assert out.status == Status.NOT_CHECKED and words in out.message


def test_registry_types_used_in_trees() -> None:
    """The hive builders' types are the documented ones (REG_DWORD AvailableUpdates, REG_SZ status)."""
    hive = MemoryHive.build(
        "SYSTEM", system_tree(servicing={"UEFICA2023Status": "Updated"}, secureboot={"AvailableUpdates": 0x5944})
    )
    assert hive.key(SB).value("AvailableUpdates").type == RegType.DWORD
    assert hive.key(SERVICING).value("UEFICA2023Status").type == RegType.SZ


def test_without_the_verifier_it_is_not_checked(
    monkeypatch: pytest.MonkeyPatch, efi_binaries: dict[str, bytes]
) -> None:
    monkeypatch.setattr(sbf, "AUTHENTICODE_API", "no_such_function")
    func, why = sbf._api()
    assert func is None and "offers no no_such_function()" in why
    tree = system_tree(servicing={"UEFICA2023Status": "InProgress"})
    out = run("secureboot.bootmgr_signature", sb_ctx(tree, CountingFiles({BOOTMGFW: efi_binaries["signed"]})))
    assert out.status == Status.NOT_CHECKED and "offers no no_such_function()" in out.reason
    assert "certificate table" in out.message and "UEFICA2023Status InProgress" in out.message


def test_a_tampered_boot_manager_fails_only_the_complete_check(shim: bytes) -> None:
    """One byte changed in the code: the fast path (certificate table only) cannot see it and says which mode ran;
    verify_signatures=True computes the digest and the signatures no longer verify."""
    data = bytearray(shim)
    data[0x2000] ^= 0xFF
    tree = system_tree(servicing={"UEFICA2023Status": "Updated"})
    fast = run("secureboot.bootmgr_signature", sb_ctx(tree, CountingFiles({BOOTMGFW: bytes(data)})))
    assert fast.status == Status.WARNING and "the file's digest not compared" in fast.message
    full = run("secureboot.bootmgr_signature", sb_ctx(tree, CountingFiles({BOOTMGFW: bytes(data)}), verify=True))
    assert full.status == Status.FAIL, full.message
    assert "chains to neither" in full.message and "the file's Authenticode digest compared" in full.message
    assert "the file changed after it was signed" in full.message


def test_a_boot_manager_too_large_to_read_whole(
    monkeypatch: pytest.MonkeyPatch, efi_binaries: dict[str, bytes]
) -> None:
    """Without random access the file is read whole, so its size is bounded; with it, only the headers are read."""
    monkeypatch.setattr(sbf, "MAX_BOOTMGR_SIZE", 1024)
    whole = sbf.boot_manager(FakeFiles({BOOTMGFW: efi_binaries["signed"]}))
    assert whole.error and "larger than 1024 bytes" in whole.error and whole.signed is None
    assert "larger than 1024" in sbf.boot_manager_signers(FakeFiles({BOOTMGFW: efi_binaries["signed"]})).why
    assert sbf.boot_manager(CountingFiles({BOOTMGFW: efi_binaries["signed"]})).signed


# --- BCD evidence that cannot be judged ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda objs: objs[LOADER][1].__setitem__(0x16000049, (RegType.BINARY, b"\x01\x00")),
            "boolean data is 2 bytes, 1 expected",
        ),
        (
            lambda objs: objs[BOOTMGR_GUID][1].__setitem__(0x23000003, "{99999999-0000-0000-0000-000000000000}"),
            "no {bootmgr} default OS loader",
        ),
    ],
)
def test_bcd_that_cannot_be_judged(change: Any, words: str) -> None:
    objects = good_bcd_objects()
    change(objects)
    ctx = sb_ctx(system_tree())
    ctx.bcd = decode_bcd(build_bcd(objects))
    out = run("secureboot.bcd_integrity", ctx)
    assert out.status == Status.NOT_CHECKED and words in out.message


@pytest.mark.parametrize("name", ["SYSTEM", "SYSTEM_B"])
def test_real_hives_from_before_the_rollover(realdata: Any, name: str) -> None:
    """Windows 7 and Windows 10 1709 hives nobody here made (the 1709 one dirty, replayed from its logs): no
    servicing values, said as a warning naming the keys looked at, never a pass."""
    from azvhdaudit.registry.open import open_hive_file

    hive = open_hive_file(realdata / name, "SYSTEM")
    try:
        state = sbf.servicing_state(RegistryView(hives={"SYSTEM": hive}))
        assert state.readable and state.status is None and state.capable is None and not state.servicing_key
        if name == "SYSTEM_B":
            # Windows 10 1709 already has Control\SecureBoot\AvailableUpdates (= 0): the key KB5025885 writes
            assert state.available_updates == 0
            assert state.available_updates_key == r"HKLM\SYSTEM\ControlSet001\Control\SecureBoot"
        else:
            assert not state.has_any and not state.secureboot_key
            assert {e.key for e in state.evidence} == {
                r"HKLM\SYSTEM\ControlSet001\Control\SecureBoot\Servicing",
                r"HKLM\SYSTEM\ControlSet001\Control\SecureBoot",
            }
        ctx = sb_ctx(None)
        ctx.registry = RegistryView(hives={"SYSTEM": hive})
        out = run("secureboot.uefica2023_servicing", ctx)
        assert out.status == Status.WARNING and "no 2023 certificate servicing values" in out.message
    finally:
        hive.close()
