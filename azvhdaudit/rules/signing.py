"""Driver signatures: every boot-start and system-start driver must load under Secure Boot.

References:
- "Trusted Launch for Azure virtual machines" (learn.microsoft.com/azure/virtual-machines/trusted-launch,
  ms.date 2025-04-21): with Secure Boot on, "all OS boot components (boot loader, kernel, kernel drivers)
  require trusted publishers signing".
- "Driver Signing Policy" (learn.microsoft.com/windows-hardware/drivers/install/kernel-mode-code-signing-policy--
  windows-vista-and-later-, ms.date 2024-08-19): from Windows 10 1607 with Secure Boot on, Windows loads new
  kernel drivers only when signed through the Windows Hardware Dev Center (chained to Microsoft Root Certificate
  Authority 2010); a boot-start driver that fails the check stops Windows at boot. Attestation signing is offered
  "for testing on Windows 10 client only systems". Until 2018-11 the page also said "Windows Server does not load
  attestation signed drivers"; Microsoft removed that sentence as inaccurate (MicrosoftDocs/windows-driver-docs
  commit 77ff596, "remove inaccurate statements on attestation for Server", answering the report "Attestation
  Signing DOES Work for Server", github.com/MicrosoftDocs/windows-driver-docs/issues/1068), so an attestation
  signature is trusted here on Windows Server as on Windows 10/11.
- "Support policy for third-party, kernel-level software that is signed using the attestation process in Windows"
  (learn.microsoft.com/troubleshoot/windows-server/setup-upgrade-and-drivers/support-policy-third-party-kernel-level-
  attestation, KB 4519013, ms.date 2023-12-26): for "the Windows Server operating system (all versions)", "Microsoft
  Support does not support software that has kernel-level drivers that are attestation-signed" except as the article
  describes; a driver is attestation-signed when its signing certificate carries "Windows Hardware Driver Attested
  Verification". The result says so for such a boot driver on Windows Server (read from ProductType /
  InstallationType), without changing the verdict.
- "CurrentControlSet\\Services Subkey Entries" (learn.microsoft.com/windows-hardware/drivers/install/): ``Start``
  0 (SERVICE_BOOT_START, loaded by the boot loader) and 1 (SERVICE_SYSTEM_START, loaded during kernel
  initialization); ``ImagePath`` relative to SystemRoot, default ``System32\\drivers\\<service>.sys``.

The signatures are verified by :mod:`azvhdaudit.authenticode` against exact certificates kept in the package.
The fast path reads each driver's certificate table only; a driver without an embedded signature may be listed
in a catalog, which only ``verify_signatures=True`` (``--verify-signatures``) reads, so the fast path says
"not checked" for it, never "pass".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azvhdaudit.authenticode import (
    ATTESTED_EKU,
    CATROOT,
    CROSS_SIGNED,
    Catalogs,
    FileSignatures,
    SignatureError,
    kernel_signatures,
)
from azvhdaudit.errors import AuditError, CorruptHiveError, GuestFileNotFoundError, NotChecked
from azvhdaudit.registry.model import RegType
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import PLATFORM_BASELINE, AuditContext, Group, rule
from azvhdaudit.rules.secureboot import TL_DOC
from azvhdaudit.rules.values import printable

#: required when the target boots with Secure Boot, advice otherwise (a missing driver file fails under any target)
SIGNING = Group(area="signing", baselines=PLATFORM_BASELINE, required_for=AuditContext.secure_boot_required)
SERVICES = r"HKLM\SYSTEM\CurrentControlSet\Services"
POLICY_DOC = (
    "https://learn.microsoft.com/windows-hardware/drivers/install/"
    "kernel-mode-code-signing-policy--windows-vista-and-later-"
)
SERVICES_DOC = "https://learn.microsoft.com/windows-hardware/drivers/install/inf-addservice-directive"
SUPPORT_DOC = (
    "https://learn.microsoft.com/troubleshoot/windows-server/setup-upgrade-and-drivers/"
    "support-policy-third-party-kernel-level-attestation"
)
#: what an attestation-signed boot driver on Windows Server means (it loads; Microsoft's support is limited)
ATTESTED = f"attestation-signed (EKU {ATTESTED_EKU}, Windows Hardware Driver Attested Verification)"
ATTESTED_ON_SERVER = (
    "Windows Server loads attestation-signed drivers, but Microsoft Support does not support attestation-signed "
    "kernel drivers except as KB 4519013 describes"
)
FLAG = "--verify-signatures"
#: service types that are Win32 services, never loaded by the boot loader or the kernel at Start 0/1
_WIN32_TYPES = 0x10 | 0x20
#: the most services looked at (a Windows SYSTEM hive has 500-800)
MAX_SERVICES = 5000


@dataclass(frozen=True)
class BootDriver:
    """A service with Start 0 or 1 and the Windows-volume path its image is loaded from."""

    service: str
    start: int
    image_path: str | None
    #: the path on the Windows volume (``Windows\\System32\\drivers\\x.sys``), ``None`` when it is elsewhere
    path: str | None
    why: str = ""


def resolve_image_path(service: str, image_path: str | None) -> tuple[str | None, str]:
    """The Windows-volume path of a driver's image, or ``None`` with the reason (another drive, a device path)."""
    if not image_path:
        return f"Windows\\System32\\drivers\\{service}.sys", ""
    path = image_path.strip().strip('"').replace("/", "\\")
    low = path.lower()
    for prefix in ("\\systemroot\\", "%systemroot%\\", "%windir%\\"):
        if low.startswith(prefix):
            return "Windows\\" + path[len(prefix) :], ""
    for prefix in ("\\??\\c:\\", "\\\\?\\c:\\", "c:\\"):
        if low.startswith(prefix):
            return path[len(prefix) :], ""
    if low.startswith(("\\??\\", "\\\\?\\", "\\device\\")) or (len(low) > 1 and low[1] == ":") or low.startswith("%"):
        return None, f"ImagePath {image_path} is not on the Windows volume as seen offline"
    # a relative ImagePath is relative to SystemRoot ("System32\drivers\x.sys")
    return "Windows\\" + path.lstrip("\\"), ""


def boot_drivers(ctx: AuditContext) -> list[BootDriver] | None:
    """Every service with Start 0 or 1 in the current control set; ``None`` when the Services key is missing."""
    # the Start value of every service in one pass; the other values only of the few that start at boot (asking
    # the pass for Type and ImagePath too decodes them for every service: slower than reading them for 1 in 8)
    services = ctx.registry.key(SERVICES)
    if services is None:
        return None
    starts = services.subkey_values(("Start",), MAX_SERVICES)
    found = []
    for service, values in starts.items():
        start = values["Start"]
        if start is None or start.type != RegType.DWORD or start.data not in (0, 1):
            continue
        key = services.subkey(service)
        if key is None:
            # listed in the subkey list but not found by its name (a hash or name hint that does not match it)
            raise CorruptHiveError(
                f"{ctx.registry.display_path(SERVICES)}: subkey {service!r} is listed but its "
                "lookup by name does not find it"
            )
        kind = key.value("Type")
        if kind is not None and isinstance(kind.data, int) and kind.data & _WIN32_TYPES:
            continue
        image = key.value("ImagePath")
        text = image.data if image is not None and isinstance(image.data, str) else None
        path, why = resolve_image_path(key.name, text)
        found.append(BootDriver(key.name, int(start.data), text, path, why))
    return sorted(found, key=lambda d: d.service.lower())


def _signer_words(sig: FileSignatures) -> str:
    if not sig.signers:
        return "no signature"
    parts = []
    for s in sig.signers:
        where = f" (anchor {s.anchor})" if s.anchor else ""
        why = f": {s.why}" if s.why else ""
        parts.append(f"{s.source} signature by {s.subject}{where}{why}")
    return "; ".join(parts)


def _judge(drv: BootDriver, sig: FileSignatures, *, server: bool | None = None) -> tuple[str, str]:
    """(``ok`` | ``bad`` | ``undecided``, words) for one driver's signatures; ``server``: the image is Windows
    Server (``None``: not known), which only adds the support note of an attestation-signed driver."""
    trusted = sig.kernel_trusted
    if trusted is not None:
        how = f"{trusted.source} signature by {trusted.subject}, chained to {trusted.anchor}"
        if sig.mode == "fast":
            how += " (fast path: the file's digest was not compared)"
        if server and sig.attestation_only:
            how += f"; {ATTESTED}: {ATTESTED_ON_SERVER}"
        return "ok", how
    cross = [s for s in sig.signers if s.why.startswith(CROSS_SIGNED)]
    if cross and all(s.why.startswith(CROSS_SIGNED) or not s.why for s in sig.signers if not s.verified):
        # Windows 10 1607 and later with Secure Boot still load cross-signed drivers whose signing certificate was
        # issued before 2015-07-29 (and keep those of upgraded systems): without the root, this stays undecided
        return "undecided", (
            f"{_signer_words(sig)}; Windows 10 1607 and later under Secure Boot load a "
            "cross-signed driver only when its signing certificate was issued before 2015-07-29 "
            "(Driver Signing Policy)"
        )
    if sig.mode == "fast":
        if sig.cert_table is None:
            return "undecided", (
                f"no embedded signature; it may be listed in a catalog under {CATROOT}, which only {FLAG} reads"
            )
        return "bad", (
            f"{_signer_words(sig)}; none chains to Microsoft's kernel-mode roots (the fast path reads "
            f"the certificate table only; {FLAG} also looks for the file in the catalogs)"
        )
    if sig.catalog is None and sig.cert_table is None:
        notes = f" ({'; '.join(sig.notes)})" if sig.notes else ""
        return "bad", f"unsigned: no embedded signature and no catalog under {CATROOT} lists it{notes}"
    return "bad", f"{_signer_words(sig)}; none chains to Microsoft's kernel-mode roots"


@rule(
    SIGNING,
    id="signing.boot_drivers",
    title="Boot-start and system-start drivers are signed so that Windows loads them under Secure Boot",
    severity=Severity.REQUIRED,
    rationale="With Secure Boot on (Trusted Launch, Confidential VM) Windows loads a kernel driver only when its "
    "signature chains to Microsoft's kernel-mode roots: Microsoft Root Certificate Authority 2010 "
    "through the Windows Hardware Compatibility Publisher (Dev Center, attestation) or the Windows "
    "signer for inbox drivers. A boot-start or system-start driver that is unsigned, self-signed or "
    "signed only by a public CA stops the VM at boot. A driver whose file is missing stops any VM. "
    "Required under Trusted Launch and Confidential VM, advice under Standard; a missing file fails "
    "under every target. Windows Server loads attestation-signed drivers too, but Microsoft supports them there "
    "only as KB 4519013 describes: the result names such drivers on a Windows Server image.",
    source='Driver Signing Policy (learn.microsoft.com, ms.date 2024-08-19): "Starting with Windows 10, version '
    '1607, Windows will not load any new kernel-mode drivers which are not signed by the Dev Portal"; '
    'Trusted Launch for Azure virtual machines (ms.date 2025-04-21): "all OS boot components (boot loader, '
    'kernel, kernel drivers) require trusted publishers signing"',
    remediation="replace the driver with one signed through the Windows Hardware Dev Center (attestation or WHQL) "
    "or set its Start to 3 (demand) or 4 (disabled) if the VM does not need it: "
    "sc.exe config <service> start= demand (inside the VM)",
    references=(POLICY_DOC, TL_DOC, SERVICES_DOC, SUPPORT_DOC),
)
def check_boot_drivers(ctx: AuditContext) -> Outcome:
    required = ctx.secure_boot_required()
    verify = ctx.options.verify_signatures
    mode = "complete" if verify else "fast"
    expected = "every Start 0/1 driver present and signed with a chain to Microsoft's kernel-mode roots"
    services_path = ctx.registry.display_path(SERVICES)
    drivers = boot_drivers(ctx)
    if drivers is None:
        ev = Evidence(source="registry", hive="SYSTEM", key=services_path, present=False)
        raise NotChecked(
            "no Services key in the SYSTEM hive",
            f"not checked: {services_path} is not in the image",
            expected=expected,
            evidence=(ev,),
        )
    if not drivers:
        ev = Evidence(source="registry", hive="SYSTEM", key=services_path, present=True, actual=[], derived=True)
        raise NotChecked(
            "no boot-start or system-start driver",
            "not checked: no service has Start 0 or 1, which no bootable Windows has",
            expected=expected,
            evidence=(ev,),
        )
    files = ctx.files
    if files is None:
        ev = Evidence(
            source="registry",
            hive="SYSTEM",
            key=services_path,
            present=True,
            actual=[d.service for d in drivers],
            derived=True,
        )
        raise NotChecked(
            "no guest files",
            "not checked: the Windows volume's files were not readable",
            expected=expected,
            evidence=(ev,),
        )
    catalogs: Catalogs | None = None
    if verify:
        catalogs = ctx.cached("authenticode.catalogs", lambda: Catalogs(files))

    ok: list[str] = []
    bad: list[str] = []
    missing: list[str] = []
    undecided: list[str] = []
    #: trusted through attestation signatures only, on an image that is Windows Server
    attested: list[str] = []
    server = ctx.facts.os.is_server if ctx.facts.os is not None else None
    evidence: list[Evidence] = []
    missing_fix: list[tuple[str, str]] = []
    bad_fix: list[tuple[str, str]] = []
    total_bytes = 0
    for drv in drivers:
        reg_note = f"{services_path}\\{drv.service}: Start={drv.start}, ImagePath {drv.image_path or '(none)'}"
        label = f"{drv.service} ({drv.path or drv.image_path})"
        if drv.path is None:
            undecided.append(f"{label}: {drv.why}")
            evidence.append(Evidence(source="file", key=str(drv.image_path), present=False, note=reg_note))
            continue
        try:
            sig = kernel_signatures(files, drv.path, verify=verify, catalogs=catalogs)
        except GuestFileNotFoundError:
            missing.append(label)
            missing_fix.append((drv.service, drv.path))
            evidence.append(
                Evidence(source="file", key=drv.path, present=False, note=reg_note + "; the file does not exist")
            )
            continue
        except (SignatureError, AuditError) as err:
            undecided.append(f"{label}: {err}")
            evidence.append(Evidence(source="file", key=drv.path, present=True, note=f"{reg_note}; {err}"))
            continue
        total_bytes += sig.bytes_read + sig.catalog_bytes_read
        verdict, words = _judge(drv, sig, server=server)
        {"ok": ok, "bad": bad, "undecided": undecided}[verdict].append(f"{label}: {words}")
        if verdict == "ok" and server and sig.attestation_only:
            attested.append(label)
        if verdict == "bad":
            bad_fix.append((drv.service, drv.path))
        evidence.append(
            Evidence(source="file", key=drv.path, present=True, actual=sig.describe(), note=f"{reg_note}; {words}")
        )

    summary: dict[str, Any] = {
        "mode": mode,
        "bytes_read": total_bytes,
        "drivers": len(drivers),
        "trusted": len(ok),
        "not_trusted": len(bad),
        "missing": len(missing),
        "not_decided": len(undecided),
    }
    if attested:
        summary["attestation_signed_on_server"] = len(attested)
    if catalogs is not None and catalogs.count:
        summary["catalogs_read"] = catalogs.count
        summary["catalog_bytes_read"] = catalogs.bytes_read
    evidence.insert(
        0,
        Evidence(
            source="facts",
            key="driver signature check",
            actual=summary,
            present=True,
            derived=True,
            note=f"{mode} mode ({'digests and catalogs' if verify else 'certificate tables only'})"
            f", {total_bytes} bytes read",
        ),
    )
    target = (
        f"the target {ctx.security_type()} boots with Secure Boot"
        if required
        else f"advice: the target {ctx.security_type()} boots without Secure Boot; under TrustedLaunch or "
        "ConfidentialVM this fails"
    )
    parts = []
    if missing:
        parts.append(
            f"{len(missing)} enabled boot driver file(s) missing (Windows stops at boot on any VM): "
            + "; ".join(missing)
        )
    if bad:
        parts.append(f"{len(bad)} driver(s) Windows will not load under Secure Boot ({target}): " + "; ".join(bad))
    if undecided:
        parts.append(f"{len(undecided)} driver(s) not decided: " + "; ".join(undecided))
    actual: dict[str, Any] = {"missing": missing, "not_trusted": bad, "not_decided": undecided, "trusted": len(ok)}
    if attested:
        actual["attestation_signed_on_server"] = attested
    # on Windows Server an attestation signature loads but is outside Microsoft's support (KB 4519013)
    signed_how = (
        "WHQL, from HLK test results: Microsoft supports attestation-signed drivers on Windows Server only as "
        "KB 4519013 describes"
        if server
        else "attestation or WHQL"
    )
    # the service's name and its ImagePath are read from the hive: each one printable line in the words
    fix = "\n".join(
        [
            f"# {printable(name)}: restore {printable(path)} inside the VM (DISM /Online /Cleanup-Image "
            "/RestoreHealth, then sfc /scannow), "
            f"or if nothing needs it at boot: sc.exe config {printable(name)} start= demand"
            for name, path in missing_fix
        ]
        + [
            f"# {printable(name)}: install a build of {printable(path)} signed through the Windows Hardware Dev Center "
            f"({signed_how}), or if nothing needs it at boot: sc.exe config {printable(name)} start= demand"
            for name, path in bad_fix
        ]
    )
    if missing:
        # a driver file that is not there stops any VM at boot: required whatever the target
        return Outcome(
            Status.FAIL, " | ".join(parts), expected, actual, tuple(evidence), remediation=fix, required=True
        )
    if bad:
        return Outcome(Status.FAIL, " | ".join(parts), expected, actual, tuple(evidence), remediation=fix)
    if undecided:
        flag = "" if verify else f"; {FLAG} decides catalog-signed drivers"
        raise NotChecked(
            f"{len(undecided)} driver(s) not decided in {mode} mode",
            f"not checked: {' | '.join(parts)}{flag} ({len(ok)} trusted)",
            expected=expected,
            actual=actual,
            evidence=tuple(evidence),
        )
    # (a failure's message names what blocks; the support note of trusted drivers is in their evidence and
    # ``actual``, and in the message when nothing else is said)
    support = (
        f" | {len(attested)} trusted driver(s) {ATTESTED} on Windows Server: {ATTESTED_ON_SERVER} ({SUPPORT_DOC}): "
        + "; ".join(attested)
        if attested
        else ""
    )
    return Outcome(
        Status.PASS,
        f"all {len(ok)} boot-start and system-start drivers are signed with a chain to "
        f"Microsoft's kernel-mode roots ({mode} mode, {total_bytes} bytes read){support}",
        expected,
        actual,
        tuple(evidence),
    )
