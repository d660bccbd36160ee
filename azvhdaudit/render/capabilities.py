"""The capability manifest as text, Markdown, an HTML table, ``az`` commands and a Bicep resource.

The ``az`` arguments and the Bicep property names follow azure-cli's ``vm`` command module
(``src/azure-cli/azure/cli/command_modules/vm/_params.py`` and ``custom.py``: ``disk create``,
``disk grant-access``, ``sig image-definition create``) and the template reference of
``Microsoft.Compute/galleries/images@2023-07-03`` (learn.microsoft.com/azure/templates/microsoft.compute/
2023-07-03/galleries/images). ``az sig image-definition create`` adds ``SecurityType=TrustedLaunchSupported`` to
every V2 definition given no ``SecurityType`` (custom.py, create_gallery_image), so an image not shown ready for
Trusted Launch says ``SecurityType=Standard`` explicitly. Only what the image supports is emitted; what it does not
support, or what could not be established, is a comment.
"""

from __future__ import annotations

import html
import shlex
from typing import Any

from azvhdaudit.capabilities import SUPPORTED, UNKNOWN, Capabilities, Capability
from azvhdaudit.render._common import terminal_safe

__all__ = [
    "summary_text",
    "render_text",
    "render_markdown",
    "render_html",
    "render_az",
    "render_bicep",
    "az_arguments",
    "BICEP_API_VERSION",
]

BICEP_API_VERSION = "2023-07-03"
_MARK = {SUPPORTED: "yes", UNKNOWN: "unknown", "unsupported": "no"}


def _label(cap: Capability) -> str:
    kind, _, sub = cap.name.partition(":")
    return f"{kind.replace('_', ' ')} {sub}".strip()


def _value(cap: Capability) -> str:
    return "-" if cap.value is None else str(cap.value)


def _why(cap: Capability) -> str:
    parts = [f"{b.rule_id} ({b.status}): {b.message}" for b in cap.blocking]
    parts += [f"{b.rule_id} ({b.status}): {b.message}" for b in cap.undecided]
    if not parts and cap.status != SUPPORTED:
        parts = list(cap.notes[:1])
    return "; ".join(parts)


def summary_text(caps: Capabilities) -> str:
    """One line: ``V2, Generalized, x64; security Standard; disk controllers SCSI, NVMe; accelerated networking
    yes; hibernation unknown`` (``?`` where a value is not established)."""
    basics = ", ".join(
        str(c.value) if c.supported else f"{c.name.replace('_', ' ')} ?"
        for c in (caps.hyper_v_generation, caps.os_state, caps.architecture)
    )
    security = ", ".join(sorted(caps.security_types)) or "?"
    controllers = ", ".join(c for c in ("SCSI", "NVMe") if c in caps.disk_controllers) or "?"
    accel = _MARK.get(caps.accelerated_networking.status, "?")
    hibernation = _MARK.get(caps.hibernation.status, "?")
    return (
        f"{basics}; security {security}; disk controllers {controllers}; accelerated networking {accel}; "
        f"hibernation {hibernation}"
    )


def render_text(caps: Capabilities) -> str:
    """A plain-text capability table with each blocking rule on its own line."""
    lines = [f"{caps.source} — what the image can run as (profile {caps.profile})"]
    width = max(len(_label(c)) for c in caps.all)
    for cap in caps.all:
        lines.append(f"  {_label(cap):<{width}}  {_value(cap):<14} {_MARK.get(cap.status, cap.status)}")
        for b in cap.blocking:
            lines.append(f"      blocked by {b.rule_id} ({b.status}): {b.message}")
        for b in cap.undecided:
            lines.append(f"      not decided: {b.rule_id} ({b.status}): {b.message}")
        if cap.status != SUPPORTED and not cap.blocking and not cap.undecided:
            lines.extend(f"      {note}" for note in cap.notes[:1])
    lines.append(
        f"  gallery SecurityType: {caps.gallery_security_type or '-'}; disk controllers: {_controllers(caps) or '-'}"
    )
    lines.extend(f"  refused: {r}" for r in caps.refused)
    return terminal_safe("\n".join(lines) + "\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(caps: Capabilities) -> str:
    """A short Markdown table: capability, value, supported, blocking rules."""
    lines = ["| capability | value | supported | blocked by / undecided |", "| --- | --- | --- | --- |"]
    for cap in caps.all:
        rules = ", ".join(f"`{b.rule_id}`" for b in (*cap.blocking, *cap.undecided))
        lines.append(f"| {_cell(_label(cap))} | {_cell(_value(cap))} | {_MARK.get(cap.status, cap.status)} | {rules} |")
    lines.extend(f"\nRefused: {_cell(r)}" for r in caps.refused)
    return "\n".join(lines) + "\n"


def render_html(caps: Capabilities) -> str:
    """A small ``<table class=capabilities>`` (the HTML report puts it at the top)."""
    e = html.escape
    rows = []
    for cap in caps.all:
        rows.append(
            f"<tr class={e(cap.status)}><th>{e(_label(cap))}</th><td>{e(_value(cap))}</td>"
            f"<td>{e(_MARK.get(cap.status, cap.status))}</td><td>{e(_why(cap))}</td></tr>"
        )
    refused = "".join(f"<p class=refused>Refused: {e(r)}</p>" for r in caps.refused)
    return (
        "<table class=capabilities><caption>What the image can run as</caption>"
        "<tr><th>capability</th><th>value</th><th>supported</th><th>blocked by / undecided</th></tr>"
        f"{''.join(rows)}</table>{refused}"
    )


# --- registration --------------------------------------------------------------------------------------------


def _controllers(caps: Capabilities) -> str:
    return ",".join(c for c in ("SCSI", "NVMe") if c in caps.disk_controllers)


def _features(caps: Capabilities, *, standard: bool = True) -> list[tuple[str, str]]:
    features: list[tuple[str, str]] = []
    if caps.gallery_security_type and (standard or caps.gallery_security_type != "Standard"):
        features.append(("SecurityType", caps.gallery_security_type))
    if caps.disk_controllers:
        features.append(("DiskControllerTypes", _controllers(caps)))
    if caps.accelerated_networking.value is not None:
        features.append(("IsAcceleratedNetworkSupported", str(caps.accelerated_networking.value).lower()))
    if caps.hibernation.value is not None:
        features.append(("IsHibernateSupported", str(caps.hibernation.value).lower()))
    return features


def _comments(caps: Capabilities) -> list[str]:
    lines = []
    for cap in caps.all:
        if cap.status == SUPPORTED:
            continue
        why = [f"blocked by {', '.join(f'{b.rule_id} ({b.status})' for b in cap.blocking)}"] if cap.blocking else []
        why += (
            [f"not decided: {', '.join(f'{b.rule_id} ({b.status})' for b in cap.undecided)}"] if cap.undecided else []
        )
        if not why and cap.notes:
            why = [cap.notes[0]]
        text = "; ".join(why).replace("\n", " ")
        lines.append(f"# {_label(cap)}: {_MARK.get(cap.status, cap.status)}" + (f" — {text}" if text else ""))
    lines.extend(f"# refused: {r}" for r in caps.refused)
    return lines


def _upload_size(facts: dict[str, Any]) -> tuple[int | None, str]:
    container = facts.get("container") or {}
    if container.get("format") == "vhd" and container.get("subtype") == "fixed":
        return int(container["file_size"]), ""
    size = container.get("virtual_size")
    if not size:
        return None, "# the upload size is unknown: convert the image to a fixed VHD first and use its file size"
    # a fixed VHD is the virtual size plus its 512-byte footer
    return int(size) + 512, (
        "# convert first: qemu-img convert -f {fmt} -O vpc -o subformat=fixed,force_size "
        "IMAGE image.vhd (upload size = virtual size + the 512-byte VHD footer)"
    ).format(fmt=container.get("format") or "raw")


def az_arguments(
    caps: Capabilities,
    facts: dict[str, Any],
    *,
    resource_group: str = "$RG",
    disk: str = "$DISK",
    gallery: str = "$GALLERY",
    definition: str = "$IMAGE_DEFINITION",
) -> dict[str, list[str]]:
    """The two commands' argument lists (``disk create`` and ``sig image-definition create``)."""
    disk_args = [
        "--resource-group",
        resource_group,
        "--name",
        disk,
        "--location",
        "$LOCATION",
        "--os-type",
        "Windows",
        "--upload-type",
        "Upload",
    ]
    size, _ = _upload_size(facts)
    disk_args += ["--upload-size-bytes", str(size) if size else "$UPLOAD_SIZE_BYTES"]
    if caps.hyper_v_generation.value:
        disk_args += ["--hyper-v-generation", caps.hyper_v_generation.value]
    disk_args += ["--security-type", "TrustedLaunch" if "TrustedLaunch" in caps.security_types else "Standard"]
    if caps.architecture.supported:
        disk_args += ["--architecture", caps.architecture.value]
    if caps.accelerated_networking.value is not None:
        disk_args += ["--accelerated-network", str(caps.accelerated_networking.value).lower()]
    if caps.hibernation.value is not None:
        disk_args += ["--support-hibernation", str(caps.hibernation.value).lower()]
    sig_args = [
        "--resource-group",
        resource_group,
        "--gallery-name",
        gallery,
        "--gallery-image-definition",
        definition,
        "--publisher",
        "$PUBLISHER",
        "--offer",
        "$OFFER",
        "--sku",
        "$SKU",
        "--os-type",
        "Windows",
    ]
    if caps.os_state.supported:
        sig_args += ["--os-state", caps.os_state.value]
    if caps.hyper_v_generation.value:
        sig_args += ["--hyper-v-generation", caps.hyper_v_generation.value]
    if caps.architecture.supported:
        sig_args += ["--architecture", caps.architecture.value]
    features = _features(caps)
    if features:
        sig_args += ["--features", " ".join(f"{k}={v}" for k, v in features)]
    return {"disk create": disk_args, "sig image-definition create": sig_args}


def _command(words: list[str]) -> str:
    """One command, an option and its value a line, values quoted for a POSIX shell (``$VARS`` left to expand)."""
    quoted = [w if w.startswith("$") else shlex.quote(w) for w in words]
    lines: list[str] = []
    for word in quoted:
        if lines and not word.startswith("--") and lines[-1].split()[-1].startswith("--"):
            lines[-1] += " " + word
        elif word.startswith("--") or not lines:
            lines.append(word)
        else:
            lines[-1] += " " + word
    return " \\\n    ".join(lines)


def render_az(caps: Capabilities, facts: dict[str, Any]) -> str:
    """Shell lines that upload the image as a managed disk and create the gallery image definition."""
    args = az_arguments(caps, facts)
    _, convert = _upload_size(facts)
    lines = [
        f"# {caps.source}: register in Azure (values derived by azvhdaudit from the audit, profile {caps.profile})",
        *_comments(caps),
        "",
        "# 1. a managed disk to upload the VHD into",
    ]
    if convert:
        lines.append(convert)
    lines += [
        _command(["az", "disk", "create", *args["disk create"]]),
        "# az disk grant-access --resource-group $RG --name $DISK --access-level Write "
        "--duration-in-seconds 86400 --query accessSAS --output tsv",
        '# azcopy copy image.vhd "$SAS" --blob-type PageBlob',
        "# az disk revoke-access --resource-group $RG --name $DISK",
        "",
        "# 2. the gallery image definition",
    ]
    if not caps.os_state.supported:
        lines.append(f"# --os-state not emitted: the OS state is {caps.os_state.status}")
    if not caps.hyper_v_generation.value:
        lines.append(
            "# --hyper-v-generation not emitted: the generation is unknown (az's default is V1 for a disk, "
            "V2 for an image definition)"
        )
    if not caps.architecture.supported:
        lines.append(f"# --architecture not emitted: the architecture is {caps.architecture.status}")
    lines.append(_command(["az", "sig", "image-definition", "create", *args["sig image-definition create"]]))
    return "\n".join(lines) + "\n"


def _bicep_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def render_bicep(caps: Capabilities) -> str:
    """A ``Microsoft.Compute/galleries/images`` resource with the derived properties."""
    lines = [
        f"// {caps.source}: gallery image definition derived by azvhdaudit (profile {caps.profile})",
        *("//" + c[1:] for c in _comments(caps)),
        "param galleryName string",
        "param imageDefinitionName string",
        "param location string = resourceGroup().location",
        "param publisher string",
        "param offer string",
        "param sku string",
        "",
        f"resource gallery 'Microsoft.Compute/galleries@{BICEP_API_VERSION}' existing = {{",
        "  name: galleryName",
        "}",
        "",
        f"resource imageDefinition 'Microsoft.Compute/galleries/images@{BICEP_API_VERSION}' = {{",
        "  parent: gallery",
        "  name: imageDefinitionName",
        "  location: location",
        "  properties: {",
        "    osType: 'Windows'",
    ]
    if caps.os_state.supported:
        lines.append(f"    osState: {_bicep_str(caps.os_state.value)}")
    if caps.hyper_v_generation.value:
        lines.append(f"    hyperVGeneration: {_bicep_str(caps.hyper_v_generation.value)}")
    if caps.architecture.supported:
        lines.append(f"    architecture: {_bicep_str(caps.architecture.value)}")
    lines += ["    identifier: {", "      publisher: publisher", "      offer: offer", "      sku: sku", "    }"]
    # a Standard image carries no SecurityType feature (az strips "Standard" before the request as well)
    features = _features(caps, standard=False)
    if features:
        lines.append("    features: [")
        for name, value in features:
            lines += ["      {", f"        name: {_bicep_str(name)}", f"        value: {_bicep_str(value)}", "      }"]
        lines.append("    ]")
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"
