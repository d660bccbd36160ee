"""The ``az`` and Bicep outputs: every argument, value and property name is one Azure's references list
(``azure_reference``, quoted with its sources), and only supported capabilities are emitted."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from azure_reference import (
    BICEP_IDENTIFIER_KEYS,
    BICEP_IMAGE_PROPERTIES,
    BICEP_RESOURCE_KEYS,
    GALLERY_FEATURES,
)
from capkit import _report

from azvhdaudit.capabilities import Capabilities, derive_capabilities
from azvhdaudit.render.capabilities import render_az, render_bicep
from azvhdaudit.report import Report, Status

#: the options azure-cli's command table lists per command, with their allowed values (dump_az_table.py)
AZ_TABLE = json.loads((Path(__file__).with_name("az_table.json")).read_text(encoding="utf-8"))
AZ_COMMANDS: dict[str, dict[str, frozenset[str] | None]] = {
    name: {opt: frozenset(vals) if vals else None for opt, vals in options.items()}
    for name, options in AZ_TABLE["commands"].items()
}
#: az's global arguments (knack's output and query options), valid on every command
AZ_GLOBAL = {"--output": frozenset({"json", "jsonc", "none", "table", "tsv", "yaml", "yamlc"}), "--query": None}

EVERYTHING = _report()
LITTLE = _report(
    {
        "secureboot.bcd_integrity": Status.FAIL,
        "nvme.stornvme_boot_start": Status.FAIL,
        "platform_net.mana_driver": Status.WARNING,
    }
)
GEN1 = _report(generation=1)
UNKNOWN_STATE = _report(state=None, machine=None)
CASES = {"everything": EVERYTHING, "little": LITTLE, "gen1": GEN1, "unknown": UNKNOWN_STATE}


def _commands(text: str, *, commented: bool = False) -> dict[str, dict[str, str]]:
    """``{"disk create": {"--name": "$DISK", ...}, ...}`` from the shell text: the commands, or (``commented``)
    the ``# az ...`` lines."""
    joined = re.sub(r"\\\n", " ", text)
    commands: dict[str, dict[str, str]] = {}
    for line in joined.splitlines():
        if commented:
            if not line.startswith("# az "):
                continue
            line = line[2:]
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line, posix=True)
        assert words[0] == "az", line
        first = next(i for i, w in enumerate(words) if w.startswith("--"))
        name = " ".join(words[1:first])
        args = words[first:]
        assert len(args) % 2 == 0, f"every option takes one value: {args}"
        options = dict(zip(args[::2], args[1::2], strict=True))
        assert len(options) == len(args) // 2, f"an option repeats: {args}"
        commands[name] = options
    return commands


def _check_value(allowed: frozenset[str] | None, value: str, what: str) -> None:
    if allowed is not None and not value.startswith("$"):
        assert value in allowed, f"{what}={value!r} is not one of {sorted(allowed)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_az_argument_and_value_is_in_the_cli_reference(name: str) -> None:
    report = CASES[name]
    text = render_az(report.capabilities, report.facts)
    commands = _commands(text)
    assert set(commands) == {"disk create", "sig image-definition create"}
    commented = _commands(text, commented=True)
    assert set(commented) == {"disk grant-access", "disk revoke-access"}
    for command, options in (*commands.items(), *commented.items()):
        table = {**AZ_COMMANDS[command], **AZ_GLOBAL}
        for option, value in options.items():
            assert option in table, f"az {command} has no {option}"
            _check_value(table[option], value, f"az {command} {option}")
    features = commands["sig image-definition create"].get("--features", "")
    for item in features.split():
        key, _, value = item.partition("=")
        assert key in GALLERY_FEATURES, key
        _check_value(GALLERY_FEATURES[key], value, key)


def _features(report: Report) -> dict[str, str]:
    opts = _commands(render_az(report.capabilities, report.facts))["sig image-definition create"]
    return dict(item.split("=", 1) for item in opts.get("--features", "").split())


def test_az_for_an_image_that_supports_everything() -> None:
    cmds = _commands(render_az(EVERYTHING.capabilities, EVERYTHING.facts))
    disk, sig = cmds["disk create"], cmds["sig image-definition create"]
    assert disk["--upload-type"] == "Upload" and disk["--os-type"] == "Windows"
    assert disk["--hyper-v-generation"] == "V2" and disk["--security-type"] == "TrustedLaunch"
    assert disk["--upload-size-bytes"] == "134218240"  # the fixed VHD's file size, footer included
    assert disk["--architecture"] == "x64" and disk["--accelerated-network"] == "true"
    assert disk["--support-hibernation"] == "true"
    assert (sig["--os-state"], sig["--hyper-v-generation"], sig["--architecture"]) == ("Generalized", "V2", "x64")
    assert _features(EVERYTHING) == {
        "SecurityType": "TrustedLaunchSupported",
        "DiskControllerTypes": "SCSI,NVMe",
        "IsAcceleratedNetworkSupported": "true",
        "IsHibernateSupported": "true",
    }


def test_az_for_an_image_that_supports_little_says_standard_and_why() -> None:
    text = render_az(LITTLE.capabilities, LITTLE.facts)
    cmds = _commands(text)
    assert cmds["disk create"]["--security-type"] == "Standard"
    # az adds SecurityType=TrustedLaunchSupported to a V2 definition without one: Standard is said explicitly
    assert _features(LITTLE) == {
        "SecurityType": "Standard",
        "DiskControllerTypes": "SCSI",
        "IsAcceleratedNetworkSupported": "false",
        "IsHibernateSupported": "true",
    }
    assert "# security type TrustedLaunch: no — blocked by secureboot.bcd_integrity (fail)" in text
    assert "# disk controller NVMe: no — blocked by nvme.stornvme_boot_start (fail)" in text


def test_az_never_emits_what_is_refused_or_unknown() -> None:
    gen1 = render_az(GEN1.capabilities, GEN1.facts)
    assert _commands(gen1)["disk create"]["--hyper-v-generation"] == "V1"
    assert "TrustedLaunch" not in "".join(line for line in gen1.splitlines() if not line.startswith("#"))
    assert "# refused: TrustedLaunch on a Generation 1 image" in gen1
    text = render_az(UNKNOWN_STATE.capabilities, UNKNOWN_STATE.facts)
    assert "# --os-state not emitted: the OS state is unknown" in text
    assert "# --architecture not emitted: the architecture is unknown" in text
    unknown = _commands(text)
    assert "--os-state" not in unknown["sig image-definition create"]
    assert "--architecture" not in unknown["sig image-definition create"]
    assert "--architecture" not in unknown["disk create"]


def test_a_dynamic_image_is_converted_before_upload() -> None:
    report = _report()
    report.facts["container"] = {
        "format": "vhdx",
        "subtype": "dynamic",
        "file_size": 9_000_000,
        "virtual_size": 134217728,
    }
    text = render_az(report.capabilities, report.facts)
    assert _commands(text)["disk create"]["--upload-size-bytes"] == str(134217728 + 512)
    assert "# convert first: qemu-img convert -f vhdx -O vpc -o subformat=fixed,force_size" in text


def _bicep(caps: Capabilities) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]], set[str]]:
    text = render_bicep(caps)
    body = text[text.index("resource imageDefinition") :]
    assert "'Microsoft.Compute/galleries/images@2023-07-03'" in body
    top = set(re.findall(r"^  (\w+):", body, re.MULTILINE))
    props = dict(re.findall(r"^    (\w+): ?(.*)$", body, re.MULTILINE))
    ident = dict(re.findall(r"^      (\w+): (\w+)$", body, re.MULTILINE))
    features = re.findall(r"name: '(\w+)'\n\s+value: '([^']*)'", body)
    return props, ident, features, top


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_bicep_property_is_in_the_template_reference(name: str) -> None:
    props, ident, features, top = _bicep(CASES[name].capabilities)
    assert top <= BICEP_RESOURCE_KEYS
    for key, value in props.items():
        assert key in BICEP_IMAGE_PROPERTIES, key
        if value.startswith("'"):
            _check_value(BICEP_IMAGE_PROPERTIES[key], value.strip("'"), key)
    assert set(ident) == BICEP_IDENTIFIER_KEYS
    for key, value in features:
        assert key in GALLERY_FEATURES, key
        _check_value(GALLERY_FEATURES[key], value, key)


def test_bicep_matches_az() -> None:
    for report in CASES.values():
        props, _, features, _ = _bicep(report.capabilities)
        sig = _commands(render_az(report.capabilities, report.facts))["sig image-definition create"]
        for option, prop in (
            ("--os-state", "osState"),
            ("--hyper-v-generation", "hyperVGeneration"),
            ("--architecture", "architecture"),
            ("--os-type", "osType"),
        ):
            assert sig.get(option) == (props[prop].strip("'") if prop in props else None)
        az_features = _features(report)
        az_features.pop("SecurityType") if az_features.get("SecurityType") == "Standard" else None
        assert dict(features) == az_features


def test_derive_reads_nothing_but_the_report() -> None:
    report = _report()
    first = derive_capabilities(report)
    report.facts["extra"]["kernel"]["machine"] = "ARM64"
    assert first.architecture.value == "x64" and derive_capabilities(report).architecture.value == "Arm64"
