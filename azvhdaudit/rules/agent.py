"""Guest agent and hypervisor integration rules: the Azure VM Agent, Hyper-V drivers, other hypervisors' tools.

References: "Prepare a Windows VHD or VHDX to upload to Azure": "Complete the recommended configurations"
(install the Azure VM Agent), "Set Windows configurations for Azure" (legacy OS: current Hyper-V integration
components), "Verify the VM" (remove software and drivers of physical components or other virtualization
technologies), the update table's vmstorfl.sys row (https://learn.microsoft.com/azure/virtual-machines/windows/
prepare-for-upload-vhd-image, ms.date 2022-08-04). The lists of other hypervisors' driver and service names
are this project's heuristic, not the doc's.
"""

from __future__ import annotations

from azvhdaudit import osinfo
from azvhdaudit.errors import NotApplicable, NotChecked
from azvhdaudit.report import Evidence, Outcome, Severity, Status
from azvhdaudit.rules.base import AuditContext, Group, rule
from azvhdaudit.rules.os import OS, build_name, os_of
from azvhdaudit.rules.updates import check_rows, column_for, update_table
from azvhdaudit.rules.values import key_evidence, value_evidence

AGENT_MSI = "https://go.microsoft.com/fwlink/?LinkID=394789"
HYPERV_IC = (
    "https://learn.microsoft.com/troubleshoot/windows-server/virtualization/hyper-v-integration-components-update"
)

#: other hypervisors' services (the names their tools install: a heuristic, not the doc's list)
FOREIGN_SERVICES: dict[str, tuple[str, ...]] = {
    "VMware Tools": (
        "VMTools",
        "vmci",
        "vmhgfs",
        "vmmouse",
        "vmusbmouse",
        "vm3dmp",
        "vmxnet3ndis6",
        "pvscsi",
        "vsock",
        "vmrawdsk",
        "VGAuthService",
    ),
    "VirtualBox Guest Additions": ("VBoxService", "VBoxGuest", "VBoxMouse", "VBoxSF", "VBoxVideo", "VBoxWddm"),
    "Xen / Citrix tools": ("xenbus", "xenvbd", "xennet", "xeniface", "xenfilt", "xenagent"),
    "KVM / virtio drivers": ("viostor", "vioscsi", "netkvm", "balloon", "vioser", "QEMU-GA"),
}
FOREIGN_PRODUCTS = (
    "vmware tools",
    "virtualbox guest additions",
    "citrix xenserver",
    "xenserver tools",
    "citrix vm tools",
    "qemu guest agent",
    "virtio-win",
)

#: the Hyper-V drivers an Azure VM boots and talks through
HYPERV_DRIVERS = ("vmbus", "storvsc", "netvsc")

AGENT = Group(area="agent")


def _need_system(ctx: AuditContext) -> None:
    """Raise :class:`NotChecked` when the SYSTEM hive cannot be read."""
    if not ctx.registry.has_hive("SYSTEM"):
        raise NotChecked(ctx.registry.why_unavailable("SYSTEM"))


def _service_evidence(ctx: AuditContext, name: str, note: str = "") -> Evidence:
    """The service's Start value as stored (absent when the value is, even where the key exists)."""
    path = f"{osinfo.SERVICES}\\{name}"
    key = ctx.registry.key(path)
    value = key.value("Start") if key is not None else None
    if key is not None and value is None:
        note = "; ".join(n for n in ("the service key exists without a Start value", note) if n)
    elif key is None:
        note = "; ".join(n for n in ("service key absent", note) if n)
    return value_evidence(ctx, path, "Start", value, "registry", note=note)


@rule(
    AGENT,
    id="agent.installed",
    title="Azure VM Agent installed (WindowsAzureGuestAgent + RdAgent services)",
    severity=Severity.RECOMMENDED,
    rationale="The VM Agent runs the VM extensions (password reset, RDP configuration, monitoring). Without it "
    "a VM made from the image still boots, but extensions and the portal's reset tools do not work.",
    source="Complete the recommended configurations",
    remediation=f"Install the Azure Virtual Machine Agent MSI ({AGENT_MSI})",
)
def check_agent(ctx: AuditContext) -> Outcome:
    _need_system(ctx)
    facts = osinfo.agent_of(ctx)
    services = facts.services_dict()
    ev = []
    problems = []
    for name in ("WindowsAzureGuestAgent", "RdAgent"):
        svc = facts.services.get(name)
        start = svc.start if svc else None
        ev.append(_service_evidence(ctx, name, svc.image_path or "" if svc else ""))
        if svc is None:
            problems.append(f"the {name} service is not installed")
        elif start != 2:
            problems.append(f"the {name} service starts {start} (2 = Automatic expected)")
    version = facts.version
    if facts.folder is not None:
        ev.append(Evidence(source="file", key=osinfo.WINDOWSAZURE, actual=list(facts.folder), present=True))
    if problems:
        return Outcome(Status.WARNING, "; ".join(problems), "both services, Automatic", services, tuple(ev))
    shown = f" (version {version})" if version else ""
    return Outcome(
        Status.PASS,
        f"the Azure VM Agent is installed{shown}, both services Automatic",
        "both services, Automatic",
        version or services,
        tuple(ev),
    )


@rule(
    OS,
    id="os.hyperv_integration_components",
    title="Legacy OS (<= 2012 R2 / 8.1): current Hyper-V integration components installed",
    severity=Severity.REQUIRED,
    rationale="Windows Server 2012 R2 and older need the Hyper-V integration components update for Azure's "
    "storage and network; vmstorfl.sys must reach the update table's version and vmbus.sys / "
    "storvsc.sys must be there. Windows 10 / Server 2016 and later carry them in the box.",
    source="Set Windows configurations for Azure (legacy OS)",
    baselines=("azure-2022",),
    remediation=f"Install the Hyper-V integration components update for Windows VMs ({HYPERV_IC})",
    references=(HYPERV_IC,),
)
def check_integration_components(ctx: AuditContext) -> Outcome:
    osf = os_of(ctx)
    if osf is None or osf.build is None:
        why = ctx.registry.why_unavailable("SOFTWARE") or "CurrentBuild absent"
        raise NotChecked(why, f"not checked: the OS build is unknown ({why})")
    if osf.build > 9600:
        raise NotApplicable(f"{build_name(osf.build)} carries the Hyper-V integration components in the box")
    if ctx.files is None:
        raise NotChecked("no guest file access", "not checked: the Windows volume's files cannot be read")
    ev: list[Evidence] = []
    problems: list[str] = []
    for name in ("vmbus.sys", "storvsc.sys"):
        path = f"Windows\\System32\\drivers\\{name}"
        present = ctx.files.exists(path)
        ev.append(Evidence(source="file", key=path, present=present, actual=True if present else None))
        if not present:
            problems.append(f"{name} is not present")
    column = column_for(osf.build)
    rows = [r for r in update_table()["rows"] if r["binary"] == "vmstorfl.sys"]
    results = check_rows(ctx, column, rows) if column is not None else []
    for r in results:
        ev.append(
            Evidence(
                source="file",
                key=r["path"],
                value_name="FileVersion",
                actual=r["version"],
                present=r["version"] is not None,
                note=f"minimum {r['minimum']} ({r['kb']})" + ("" if r["version"] else f"; {r['status']}"),
            )
        )
        if r["status"] == "low":
            problems.append(f"vmstorfl.sys {r['version']} < {r['minimum']} ({r['kb']})")
        elif r["status"] != "ok":
            problems.append(f"vmstorfl.sys is {r['status']} (minimum {r['minimum']}, {r['kb']})")
    if not results:
        problems.append(f"{build_name(osf.build)} has no vmstorfl.sys row in the update table")
    if problems:
        return Outcome(Status.FAIL, "; ".join(problems), "integration components current", None, tuple(ev))
    found = results[0]["version"] if results else None
    return Outcome(
        Status.PASS,
        f"vmbus.sys and storvsc.sys present, vmstorfl.sys {found}",
        "integration components current",
        found,
        tuple(ev),
    )


@rule(
    OS,
    id="os.hyperv_drivers_enabled",
    title="Hyper-V drivers (vmbus, storvsc, netvsc) not disabled",
    severity=Severity.REQUIRED,
    rationale="Azure VMs reach their disks through storvsc over vmbus and their network through netvsc; with "
    "one of these disabled (Start = 4), as P2V tools and some hardening scripts leave them, the VM "
    "does not boot or has no network. Derived from the doc's integration components requirement.",
    source="derived (Set Windows configurations for Azure)",
    baselines=("azure-2022",),
    remediation="Set-ItemProperty -Path 'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\storvsc' -Name Start -Value 0 "
    "-Type DWord (likewise vmbus; netvsc 3)",
)
def check_hyperv_drivers(ctx: AuditContext) -> Outcome:
    _need_system(ctx)
    ev = []
    disabled = []
    absent = []
    for name in HYPERV_DRIVERS:
        exists, start, _ = osinfo.service_start(ctx.registry, name)
        ev.append(_service_evidence(ctx, name))
        if not exists:
            absent.append(name)
        elif start == 4:
            disabled.append(name)
    if disabled:
        return Outcome(Status.FAIL, f"disabled (Start = 4): {', '.join(disabled)}", "not disabled", disabled, tuple(ev))
    if absent:
        return Outcome(
            Status.WARNING,
            f"no service key for {', '.join(absent)}: the Hyper-V drivers may not be "
            "installed (see os.hyperv_integration_components)",
            "present",
            absent,
            tuple(ev),
        )
    return Outcome(Status.PASS, "vmbus, storvsc and netvsc are present and not disabled", "not disabled", [], tuple(ev))


def _installed(ctx: AuditContext) -> list[tuple[str, str]]:
    # the Uninstall walk reads a key of every installed product: once per audit for the rules that need it
    return ctx.cached("installed_products", lambda: osinfo.installed_products(ctx.registry))  # type: ignore[no-any-return]


@rule(
    OS,
    id="os.third_party_virtualization_drivers",
    title="No drivers/tools of other virtualization platforms or physical hardware",
    severity=Severity.ADVISORY,
    rationale="Tools of another hypervisor (VMware Tools, VirtualBox additions, Xen/Citrix tools, virtio) are "
    "useless in Azure and some of their filter drivers interfere with storage or network. A "
    "boot-start foreign storage driver is usually harmless but unused. The name lists are a heuristic.",
    source="Verify the VM: uninstall third-party software and drivers",
    remediation="Uninstall the other hypervisor's tools (Programs and Features) before the migration",
)
def check_foreign_tools(ctx: AuditContext) -> Outcome:
    _need_system(ctx)
    found: dict[str, list[str]] = {}
    ev = []
    for product, names in FOREIGN_SERVICES.items():
        for name in names:
            exists, start, image = osinfo.service_start(ctx.registry, name)
            if exists and start != 4:
                found.setdefault(product, []).append(name)
                ev.append(_service_evidence(ctx, name, f"{product}; {image or ''}".strip("; ")))
    products = [
        f"{name} {osinfo.display_version(osinfo.uninstall_entry(ctx.registry, subkey))}".strip()
        for name, subkey in _installed(ctx)
        if name.lower().startswith(FOREIGN_PRODUCTS)
    ]
    if products:
        ev.append(
            key_evidence(
                ctx,
                osinfo.UNINSTALL,
                ctx.registry.key(osinfo.UNINSTALL),
                note="products of other hypervisors, by the DisplayName of its subkeys",
                actual=products,
                derived=True,
            )
        )
    if found or products:
        parts = [f"{p}: {', '.join(n)}" for p, n in found.items()]
        if products:
            parts.append("installed: " + ", ".join(products))
        return Outcome(
            Status.WARNING,
            "other hypervisors' tools left behind (" + "; ".join(parts) + ")",
            "none",
            {"services": found, "products": products},
            tuple(ev),
        )
    return Outcome(
        Status.PASS, "no services of VMware, VirtualBox, Xen or KVM tools are enabled", "none", {}, tuple(ev)
    )


#: DisplayName prefixes of security products whose script blocking can stop the provisioning agent's scripts
SECURITY_PRODUCTS = (
    "symantec",
    "norton",
    "mcafee",
    "trellix",
    "trend micro",
    "sophos",
    "kaspersky",
    "eset",
    "crowdstrike",
    "sentinel agent",
    "sentinelone",
    "carbon black",
    "cylance",
    "bitdefender",
    "avast",
    "avg ",
    "malwarebytes",
    "webroot",
    "f-secure",
    "withsecure",
    "cortex xdr",
    "palo alto networks traps",
    "cisco secure endpoint",
    "cisco amp",
    "panda",
    "g data",
)


@rule(
    AGENT,
    id="agent.script_blockers",
    title="AV script blockers that could block provisioning-agent scripts (advisory)",
    severity=Severity.ADVISORY,
    rationale="Anti-virus script blocking can stop the scripts the Azure provisioning agent runs on first boot. "
    "Offline only the installed products can be listed; their settings need a person (or a running VM).",
    source="Complete the recommended configurations (script blockers)",
    baselines=("azure-2022",),
    remediation="Allow the Azure VM Agent's scripts in the security product, or disable its script blocking until "
    "the VM is provisioned",
)
def check_script_blockers(ctx: AuditContext) -> Outcome:
    if not ctx.registry.has_hive("SOFTWARE"):
        why = ctx.registry.why_unavailable("SOFTWARE")
        raise NotChecked(why)
    found = [name for name, _ in _installed(ctx) if name.lower().startswith(SECURITY_PRODUCTS)]
    uninstall = ctx.registry.key(osinfo.UNINSTALL)
    ev = (
        key_evidence(
            ctx,
            osinfo.UNINSTALL,
            uninstall,
            note=f"security products among the DisplayName values of its subkeys: {len(found)}"
            if uninstall is not None
            else "",
            actual=found if uninstall is not None else None,
            derived=uninstall is not None,
        ),
    )
    if found:
        return Outcome(
            Status.MANUAL,
            "security products installed (" + ", ".join(sorted(set(found))) + "): check "
            "that their script blocking lets the provisioning agent's scripts run",
            "no blocking",
            found,
            ev,
        )
    return Outcome(
        Status.PASS, "no third-party security product is installed (by the Uninstall list)", "no blocking", [], ev
    )


#: network component classes: services (filters, e.g. NDIS light-weight filters) and protocols
NETWORK_CLASSES = {
    "{4D36E974-E325-11CE-BFC1-08002BE10318}": "network service / filter",
    "{4D36E975-E325-11CE-BFC1-08002BE10318}": "network protocol",
}
#: component id prefixes of the components Windows and Hyper-V ship
MICROSOFT_COMPONENTS = ("ms_", "vms_", "netvsc_")


@rule(
    OS,
    id="os.tdi_filters",
    title="No extra TDI / packet-inspection filter drivers or extra firewalls",
    severity=Severity.ADVISORY,
    rationale="Third-party network filters (packet inspection, extra firewalls, VPN and security agents) sit in "
    "every packet's path and are a common cause of a VM unreachable after migration. Heuristic: the "
    "network services and protocols bound in Control\\Network whose component id is not Microsoft's "
    "(ms_, vms_, netvsc_).",
    source="Verify the VM: remove extra Transport Driver Interface filters",
    remediation="Uninstall the software that installed the filter (or unbind it from the adapter) before migrating",
)
def check_network_filters(ctx: AuditContext) -> Outcome:
    _need_system(ctx)
    found: list[str] = []
    seen_classes = 0
    for cls, kind in NETWORK_CLASSES.items():
        key = ctx.registry.key(rf"SYSTEM\CurrentControlSet\Control\Network\{cls}")
        if key is None:
            continue
        seen_classes += 1
        for comp in key.subkeys():
            cid = comp.value("ComponentId")
            if cid is None or not isinstance(cid.data, str):
                continue
            if cid.data.lower().startswith(MICROSOFT_COMPONENTS):
                continue
            desc = comp.value("Description")
            shown = f"{cid.data} ({desc.data})" if desc is not None and isinstance(desc.data, str) else cid.data
            found.append(f"{shown}, a {kind}")
    network = r"SYSTEM\CurrentControlSet\Control\Network"
    ev = (
        key_evidence(
            ctx,
            network,
            ctx.registry.key(network),
            note=f"non-Microsoft ComponentId values under {seen_classes} component class key(s)",
            actual=found if seen_classes else None,
            derived=seen_classes > 0,
        ),
    )
    if seen_classes == 0:
        raise NotChecked(
            "no network component keys",
            "the network component classes are not in Control\\Network",
            expected="none",
            evidence=ev,
        )
    if found:
        return Outcome(
            Status.WARNING, "non-Microsoft network filters or protocols: " + "; ".join(found), "none", found, ev
        )
    return Outcome(Status.PASS, "only Microsoft network services, filters and protocols are installed", "none", [], ev)
