"""Update rules: the doc's minimum file versions, MS17-010, CVE-2018-0886, no pending restart.

References: "Prepare a Windows VHD or VHDX to upload to Azure", "Install Windows updates" (the table of
minimum binary versions per OS, the WannaCrypt MS17-010 and CVE-2018-0886 rows, "no pending restart");
the 2017 version of the same table (MicrosoftDocs/azure-docs, ms.date 2017-08-01: five columns, no vmstorfl.sys,
no CVE-2018-0886). The table is kept in ``azvhdaudit/data/update_minimums.json``, written by
``tests/image_rules/make_update_minimums.py`` from a transcription of the doc's table. Windows 10 servicing levels
(UBR) of the March 2017 (MS17-010) and May 2018 (CVE-2018-0886) updates are those of Microsoft's release notes of
those updates.

Versions are read from the binaries' VS_FIXEDFILEINFO (``ctx.files.file_version``), never from strings.
"""

from __future__ import annotations

import json
import pkgutil
from dataclasses import replace
from functools import lru_cache
from typing import Any

from azvhdaudit import osinfo
from azvhdaudit.errors import NotApplicable, NotChecked
from azvhdaudit.facts import OSFacts
from azvhdaudit.pe import format_version, parse_version
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.os import build_name, os_evidence, os_of
from azvhdaudit.rules.values import key_evidence, read_value

__all__ = ["update_table", "column_for", "minimum_for", "check_rows", "kb_installed"]

SECTION = "Install Windows updates"
UPDATES = Group(area="updates", source=SECTION)
Version = tuple[int, int, int, int]

#: CBS package states that mean "installed" (CbsState: 0x50 superseded, 0x70 installed, 0x80 permanent)
INSTALLED_STATES = (0x50, 0x70, 0x80)

#: Windows 10 builds -> the UBR of the March 2017 update that fixed MS17-010 (KB4012606, KB4013198, KB4013429)
MS17_010_UBR = {10240: 17319, 10586: 839, 14393: 953}
#: the first build that shipped with the MS17-010 fix
MS17_010_FIXED_BUILD = 15063
#: srv.sys versions of the MS17-010 updates (derived from the updates' file versions, not in the doc, and not
#: certain: the evidence marks them "derived")
MS17_010_SRV = {7601: "6.1.7601.23689", 9200: "6.2.9200.22099", 9600: "6.3.9600.18604"}
#: Windows 10 builds -> the UBR of the May 2018 update that fixed CVE-2018-0886 (the updates' release notes)
CVE_2018_0886_UBR = {14393: 2248, 15063: 1088, 16299: 431, 17134: 48}
CVE_2018_0886_FIXED_BUILD = 17763


@lru_cache(maxsize=1)
def update_table() -> dict[str, Any]:
    """The doc's table: ``columns``, ``rows`` (binary minimums per column) and ``kb_rows``."""
    # The package loader's get_data (a file read, or a zip member): importlib.resources.files() would import
    # its readers and zipfile on the first audit of a process, several times the cost of the read itself.
    data = pkgutil.get_data("azvhdaudit", "data/update_minimums.json")
    if data is None:
        raise FileNotFoundError("azvhdaudit/data/update_minimums.json is not in the installed package")
    return json.loads(data)  # type: ignore[no-any-return]


def column_for(build: int | None, profile: str = "azure") -> dict[str, Any] | None:
    """The table column of an OS build (7601, 9200, 9600, 14393, 15063, 16299, 17134), or ``None``."""
    if build is None:
        return None
    for col in update_table()["columns"]:
        if col["build"] == build and (profile != "azure-2017" or col["in_2017"]):
            return col  # type: ignore[no-any-return]
    return None


def minimum_for(cell: dict[str, str], version: Version | None) -> Version:
    """The minimum a file must meet: a GDR/LDR pair picks LDR for revisions >= 20000 (catalogue rule)."""
    if "min" in cell:
        return parse_version(cell["min"])
    if version is not None and version[3] >= 20000:
        return parse_version(cell["min_ldr"])
    return parse_version(cell["min_gdr"])


def check_rows(ctx: AuditContext, column: dict[str, Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's binary version against its minimum: ``ok``, ``low`` or ``missing``."""
    assert ctx.files is not None
    prefetch = getattr(ctx.files, "prefetch_versions", None)
    if prefetch is not None:  # a remote image: the binaries are read side by side, not one after the other
        prefetch([row["path"] for row in rows if row["minimums"].get(column["id"])])
    out = []
    for row in rows:
        cell = row["minimums"].get(column["id"])
        if not cell:
            continue
        version = ctx.files.file_version(row["path"])
        minimum = minimum_for(cell, version)
        if version is None:
            status = "missing" if not ctx.files.exists(row["path"]) else "unreadable"
        else:
            status = "ok" if version >= minimum else "low"
        out.append(
            {
                "component": row["component"],
                "binary": row["binary"],
                "path": row["path"],
                "minimum": format_version(minimum),
                "kb": cell.get("kb"),
                "version": format_version(version) if version else None,
                "status": status,
            }
        )
    return out


def _need_os(ctx: AuditContext) -> OSFacts:
    """The OS facts with a build; raises :class:`NotChecked` when the build is unknown."""
    osf = os_of(ctx)
    if osf is None or osf.build is None:
        why = ctx.registry.why_unavailable("SOFTWARE") or "CurrentBuild is not in the SOFTWARE hive"
        raise NotChecked(why, f"not checked: the OS build is unknown ({why})")
    return osf


def _no_column(osf: OSFacts, profile: str) -> NotApplicable:
    build = osf.build or 0
    if build == 7600:
        return NotApplicable(
            "build 7600 (Windows 7 / 2008 R2 without SP1) has no column: install SP1 (see os.min_version)"
        )
    table = "the 2017 table" if profile == "azure-2017" else "the doc's table"
    return NotApplicable(
        f"{build_name(osf.build)} has no column in {table}: keep it fully patched through Windows Update"
    )


@rule(
    UPDATES,
    id="updates.min_file_versions",
    title="Minimum versions of storage/network/kernel/RDS binaries (table-driven)",
    severity=Severity.REQUIRED,
    rationale="Older storage, network and RDS binaries have bugs that stop VMs in Azure (storage timeouts, "
    "network loss, RDP failures). The doc asks for a fully patched image, or at least these versions. "
    "A missing binary means the component is not installed (vmswitch.sys needs Hyper-V, msdsm.sys "
    "and mpio.sys MPIO, rdpcorets.dll the RDP 8 update): a warning, not a failure.",
    remediation="Install the listed KB (or any later cumulative/rollup update) via Windows Update",
)
def check_min_versions(ctx: AuditContext) -> Outcome:
    osf = _need_os(ctx)
    column = column_for(osf.build, ctx.profile)
    if column is None:
        raise _no_column(osf, ctx.profile)
    if ctx.files is None:
        raise NotChecked("no guest file access", "not checked: the Windows volume's files cannot be read")
    rows = [r for r in update_table()["rows"] if ctx.profile != "azure-2017" or r["in_2017_table"]]
    results = check_rows(ctx, column, rows)
    ev = tuple(
        Evidence(
            source="file",
            key=r["path"],
            value_name="FileVersion",
            actual=r["version"],
            present=r["version"] is not None,
            note=f"minimum {r['minimum']} ({r['kb'] or 'no KB'})" + ("" if r["version"] else f"; {r['status']}"),
        )
        for r in results
    )
    low = [r for r in results if r["status"] == "low"]
    missing = [r for r in results if r["status"] in ("missing", "unreadable")]
    label = column["label"]
    if results and len(missing) == len(results):
        raise NotChecked(
            "no binary version could be read",
            f"none of the {len(results)} binaries of the {label} column could be read",
            expected="the table's minimums",
            actual=results,
            evidence=ev,
        )
    if low:
        shown = "; ".join(f"{r['binary']} {r['version']} < {r['minimum']} ({r['kb'] or 'no KB'})" for r in low)
        return Outcome(
            Status.FAIL,
            f"{len(low)} of {len(results)} binaries below the {label} minimum: {shown}",
            "the table's minimums",
            results,
            ev,
        )
    if missing:
        shown = ", ".join(f"{r['binary']} ({r['status']})" for r in missing)
        return Outcome(
            Status.WARNING,
            f"all present binaries meet the {label} minimums; not installed: {shown}",
            "the table's minimums",
            results,
            ev,
        )
    return Outcome(
        Status.PASS, f"all {len(results)} binaries meet the {label} minimums", "the table's minimums", results, ev
    )


def kb_installed(ctx: AuditContext, kbs: list[str]) -> list[str]:
    """The CBS packages (``Package_for_KBnnnnnnn~...``) of ``kbs`` in an installed state."""
    packages = ctx.registry.key(osinfo.CBS + r"\Packages")
    if packages is None or not kbs:
        return []
    wanted = [kb.upper() for kb in kbs]
    found = []
    for sub in packages.subkeys():
        name = sub.name.upper()
        if not any(f"_{kb}~" in name or f"_{kb}_" in name for kb in wanted):
            continue
        state = sub.value("CurrentState")
        if state is not None and isinstance(state.data, int) and state.data in INSTALLED_STATES:
            found.append(sub.name)
    return found


def _packages_evidence(ctx: AuditContext, kbs: list[str], found: list[str]) -> Evidence:
    """The CBS Packages key, and the installed packages of ``kbs`` found among its subkeys (derived)."""
    path = osinfo.CBS + r"\Packages"
    key = ctx.registry.key(path)
    note = f"installed packages of any of {', '.join(kbs)}" if key is not None else ""
    return key_evidence(ctx, path, key, note=note, actual=found if key is not None else None, derived=key is not None)


def _kbs(name: str, column: dict[str, Any]) -> list[str]:
    for row in update_table()["kb_rows"]:
        if row["name"] == name:
            return list(row["kbs_any_of"].get(column["id"], []))
    return []


def _ubr_outcome(
    ctx: AuditContext, osf: OSFacts, thresholds: dict[int, int], fixed_build: int, what: str
) -> Outcome | None:
    build = osf.build or 0
    ev = (os_evidence(ctx, "CurrentBuild", build), os_evidence(ctx, "UBR", osf.ubr))
    if build >= fixed_build:
        return Outcome(Status.PASS, f"{build_name(build)} shipped with the {what} fix", f">= {fixed_build}", build, ev)
    if build in thresholds:
        need = thresholds[build]
        if osf.ubr is None:
            raise NotChecked("UBR absent", "UBR is not in the SOFTWARE hive", expected=f"{build}.{need}", evidence=ev)
        if osf.ubr >= need:
            return Outcome(
                Status.PASS,
                f"OS build {build}.{osf.ubr} includes the {what} fix ({build}.{need})",
                f">= {build}.{need}",
                f"{build}.{osf.ubr}",
                ev,
            )
        return Outcome(
            Status.FAIL,
            f"OS build {build}.{osf.ubr} predates the {what} fix ({build}.{need}): install "
            "the latest cumulative update",
            f">= {build}.{need}",
            f"{build}.{osf.ubr}",
            ev,
        )
    return None


@rule(
    UPDATES,
    id="updates.ms17_010",
    title="MS17-010 (WannaCrypt) fix installed",
    severity=Severity.REQUIRED,
    rationale="The doc requires the MS17-010 fix. Evidence, strongest first: Windows 10's servicing level (UBR), "
    "the KB's CBS package, the srv.sys version of the MS17-010 update (derived, not in the doc). The doc "
    "prints the Windows 10 1507/1511 KBs (KB4012606, KB4013198) under 1607/1703; each is checked "
    "against its own build here.",
    source=SECTION + " (Security: WannaCrypt MS17-010)",
    remediation="Install the MS17-010 update (KB4012212/KB4012215 on 2008 R2 SP1, KB4012214/KB4012217 on 2012, "
    "KB4012213/KB4012216 on 2012 R2) or any later rollup",
    references=("https://learn.microsoft.com/security-updates/securitybulletins/2017/ms17-010",),
)
def check_ms17_010(ctx: AuditContext) -> Outcome:
    osf = _need_os(ctx)
    by_ubr = _ubr_outcome(ctx, osf, MS17_010_UBR, MS17_010_FIXED_BUILD, "MS17-010")
    if by_ubr is not None:
        return by_ubr
    column = column_for(osf.build, "azure")
    if column is None:
        raise _no_column(osf, ctx.profile)
    kbs = _kbs("MS17-010", column)
    if not ctx.registry.has_hive("SOFTWARE") and ctx.files is None:
        why = ctx.registry.why_unavailable("SOFTWARE")
        raise NotChecked(why)
    found = kb_installed(ctx, kbs)
    ev: list[Evidence] = [_packages_evidence(ctx, kbs, found)]
    if found:
        return Outcome(Status.PASS, f"MS17-010 package installed: {found[0]}", kbs, found, tuple(ev))
    srv_min = MS17_010_SRV.get(osf.build or 0)
    if ctx.files is not None and srv_min:
        version = ctx.files.file_version(r"Windows\System32\drivers\srv.sys")
        minimum = parse_version(srv_min)
        ev.append(
            Evidence(
                source="file",
                key=r"Windows\System32\drivers\srv.sys",
                value_name="FileVersion",
                actual=format_version(version),
                present=version is not None,
                note=f"MS17-010 update's srv.sys: {srv_min} (derived)",
            )
        )
        comparable = version is not None and not (osf.build == 9200 and version[3] < 20000)
        if version is not None and comparable and version >= minimum:
            return Outcome(
                Status.PASS,
                f"srv.sys {format_version(version)} is at or past the MS17-010 update's {srv_min}",
                srv_min,
                format_version(version),
                tuple(ev),
            )
        if version is not None and comparable:
            return Outcome(
                Status.FAIL,
                f"no MS17-010 package, and srv.sys {format_version(version)} predates the fix ({srv_min})",
                srv_min,
                format_version(version),
                tuple(ev),
            )
        if version is None and not ctx.files.exists(r"Windows\System32\drivers\srv.sys"):
            return Outcome(
                Status.PASS,
                "the SMBv1 server driver srv.sys is not installed: MS17-010 does not apply",
                srv_min,
                "not present",
                tuple(ev),
            )
    raise NotChecked(
        "inconclusive evidence",
        "no MS17-010 package record and no comparable srv.sys version; superseded "
        "packages may have been cleaned up, so this is not proof of absence",
        expected=kbs,
        evidence=tuple(ev),
    )


@rule(
    UPDATES,
    id="updates.cve_2018_0886",
    title="CVE-2018-0886 (CredSSP) update installed",
    severity=Severity.REQUIRED,
    rationale="Since May 2018 clients refuse CredSSP to unpatched hosts: RDP to a VM without this update fails "
    'with "CredSSP encryption oracle remediation". Windows 10 is judged by its UBR, older Windows by '
    "the KB's CBS package (a missing record is not proof: packages get cleaned up).",
    source=SECTION + " (CVE-2018-0886)",
    baselines=("azure-2022",),
    remediation="Install the May 2018 (or later) cumulative update / monthly rollup",
    references=("https://msrc.microsoft.com/update-guide/vulnerability/CVE-2018-0886",),
)
def check_cve_2018_0886(ctx: AuditContext) -> Outcome:
    osf = _need_os(ctx)
    by_ubr = _ubr_outcome(ctx, osf, CVE_2018_0886_UBR, CVE_2018_0886_FIXED_BUILD, "CVE-2018-0886")
    if by_ubr is not None:
        return by_ubr
    column = column_for(osf.build, "azure")
    if column is None:
        raise _no_column(osf, ctx.profile)
    if not ctx.registry.has_hive("SOFTWARE"):
        why = ctx.registry.why_unavailable("SOFTWARE")
        raise NotChecked(why)
    kbs = _kbs("CVE-2018-0886", column)
    found = kb_installed(ctx, kbs)
    ev = (_packages_evidence(ctx, kbs, found),)
    if found:
        return Outcome(Status.PASS, f"CVE-2018-0886 package installed: {found[0]}", kbs, found, ev)
    raise NotChecked(
        "inconclusive evidence",
        f"no package of {', '.join(kbs)} recorded; a later rollup may include the "
        "fix and superseded records get cleaned up, so this is not proof either way",
        expected=kbs,
        evidence=ev,
    )


def rename_operations(strings: list[str]) -> list[tuple[str, str]]:
    """PendingFileRenameOperations as operations: the REG_MULTI_SZ holds pairs (source, destination), an
    empty destination meaning "delete the source" (the last one's empty string ends the list, so a reader
    drops it). Pairs with an empty source are no operation."""
    pairs = [(strings[i], strings[i + 1] if i + 1 < len(strings) else "") for i in range(0, len(strings), 2)]
    return [(src, dst) for src, dst in pairs if src]


def _pending_evidence(ctx: AuditContext) -> tuple[list[Evidence], list[str]]:
    """What says a restart is pending, read from the hives that are there: (evidence, reasons)."""
    reg = ctx.registry
    evidence: list[Evidence] = []
    reasons: list[str] = []
    if reg.has_hive("SOFTWARE"):
        for path, what in (
            (osinfo.CBS + r"\RebootPending", "servicing waits for a restart"),
            (osinfo.WU_REBOOT, "Windows Update waits for a restart"),
        ):
            key = reg.key(path)
            evidence.append(key_evidence(ctx, path, key, note=what if key is not None else ""))
            if key is not None:
                reasons.append(f"{reg.display_path(path)} exists ({what})")
        path = osinfo.CBS + r"\PackagesPending"
        key = reg.key(path)
        entries = (len(key.subkey_names()) + len(key.values())) if key is not None else 0
        evidence.append(key_evidence(ctx, path, key, note=f"{entries} pending package(s)" if key is not None else ""))
        if entries:
            reasons.append(f"{reg.display_path(path)} lists {entries} pending package(s)")
    if reg.has_hive("SYSTEM"):
        for name in ("PendingFileRenameOperations", "PendingFileRenameOperations2"):
            read = read_value(ctx, osinfo.SESSION_MANAGER, name)
            data = read.data
            strings = data if isinstance(data, list) else [data] if isinstance(data, str) else []
            ops = rename_operations([s for s in strings if isinstance(s, str)])
            note = ""
            if read.present:
                deletes = sum(1 for _, dst in ops if not dst)
                note = f"{len(ops)} operation(s): {len(ops) - deletes} rename(s), {deletes} delete(s)"
            evidence.append(read.evidence if not note else replace(read.evidence, note=note))
            if ops:
                reasons.append(f"Session Manager {name} holds {len(ops)} file operation(s) for the next boot")
    if ctx.files is not None:
        present = ctx.files.exists(osinfo.PENDING_XML)
        evidence.append(
            Evidence(
                source="file",
                key=osinfo.PENDING_XML,
                actual=True if present else None,
                present=present,
                note="servicing operations wait for a restart" if present else "",
            )
        )
        if present:
            reasons.append(f"{osinfo.PENDING_XML} exists")
    return evidence, reasons


@rule(
    UPDATES,
    id="updates.no_pending_reboot",
    title="No pending restart / pending servicing operations",
    severity=Severity.REQUIRED,
    rationale="Updates waiting for a restart finish on the first boot in Azure (slow, can fail provisioning) "
    "and sysprep refuses to run with servicing operations pending.",
    source=SECTION + " (NOTE) and before Sysprep",
    baselines=("azure-2022",),
    remediation="Install all updates and restart once before migration / before sysprep.exe",
)
def check_pending_reboot(ctx: AuditContext) -> Outcome:
    have = [h for h in ("SOFTWARE", "SYSTEM") if ctx.registry.has_hive(h)]
    ev, reasons = _pending_evidence(ctx)
    if not have:
        why = ctx.registry.why_unavailable("SOFTWARE") + "; " + ctx.registry.why_unavailable("SYSTEM")
        raise NotChecked(why, expected="nothing pending", evidence=tuple(ev))
    if reasons:
        return Outcome(
            Status.FAIL, "a restart is pending: " + "; ".join(reasons), "nothing pending", reasons, tuple(ev)
        )
    missing = [h for h in ("SOFTWARE", "SYSTEM") if h not in have]
    if missing:
        raise NotChecked(
            f"{', '.join(missing)} unavailable",
            f"nothing pending in what was read, but {' and '.join(missing)} could not be read",
            expected="nothing pending",
            evidence=tuple(ev),
        )
    return Outcome(
        Status.PASS,
        "no pending restart (CBS, Windows Update, file renames, pending.xml)",
        "nothing pending",
        [],
        tuple(ev),
    )
