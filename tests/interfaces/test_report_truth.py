"""Every sample's report, in every format and as fix scripts: no Python repr anywhere, and no evidence
entry that contradicts itself or the image it was read from."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from truthkit import evidence_problems, registry_problems, rendered_texts, repr_problems

import azvhdaudit
from azvhdaudit.fix import fix_script
from azvhdaudit.render import render
from azvhdaudit.report import Report

SAMPLES = (
    "gen1-azure.vhd",
    "gen1-misaligned.vhd",
    "gen2-misconfigured.vhdx",
    "gen1-azure-child.vhd",
    "gen2-misconfigured-child.vhdx",
)
FORMATS = ("text", "json", "junit", "sarif", "html", "markdown")
OPTIONS = {"text": {"show_passed": True}}
AUDITS: dict[tuple[str, bool], tuple[Report, list[str]]] = {}


def sample_report(sample_path: Callable[[str], Path], name: str, with_lsa: bool) -> tuple[Report, list[str]]:
    """The sample's report, and what its registry evidence gets wrong against the image (read once)."""
    if (name, with_lsa) not in AUDITS:
        path = sample_path(name)
        report = azvhdaudit.audit(str(path), with_lsa=with_lsa)
        hives = ("SYSTEM", "SOFTWARE", "SECURITY", "SAM") if with_lsa else ("SYSTEM", "SOFTWARE")
        with azvhdaudit.open_image(str(path), hives=hives) as image:
            wrong = [p for r in report.results for p in registry_problems(r, image.registry)]
        AUDITS[(name, with_lsa)] = (report, wrong)
    return AUDITS[(name, with_lsa)]


@pytest.mark.parametrize("with_lsa", [True, False], ids=["with-lsa", "without-lsa"])
@pytest.mark.parametrize("name", SAMPLES)
def test_evidence_agrees_with_itself_and_the_image(
    sample_path: Callable[[str], Path], name: str, with_lsa: bool
) -> None:
    report, wrong = sample_report(sample_path, name, with_lsa)
    problems = [p for r in report.results for p in evidence_problems(r)] + wrong
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fmt", [*FORMATS, "ps1", "reg"])
@pytest.mark.parametrize("name", SAMPLES)
def test_no_python_repr_in_any_format(sample_path: Callable[[str], Path], name: str, fmt: str) -> None:
    report, _ = sample_report(sample_path, name, True)
    if fmt in ("ps1", "reg"):
        text = fix_script(report, fmt, include_warnings=True)
    else:
        text = render(report, fmt, **OPTIONS.get(fmt, {}))
    problems = repr_problems(f"{name} {fmt}", rendered_texts(fmt, text))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_json_validates(sample_path: Callable[[str], Path], name: str) -> None:
    import json

    import jsonschema

    from azvhdaudit.render.json import load_schema

    report, _ = sample_report(sample_path, name, True)
    data = json.loads(render(report, "json"))
    jsonschema.Draft202012Validator(load_schema()).validate(data)
    derived = [e for r in data["results"] for e in r["evidence"] if e["derived"]]
    assert derived, "the samples' network-filter summary is derived evidence"


@pytest.fixture(scope="module")
def vm_report(sample_path: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Report:
    """gen1-azure.vhd audited as a VM with the committed data disks of samples/vm (MountedDevices knows two)."""
    import lzma

    os_disk = sample_path("gen1-azure.vhd")
    directory = tmp_path_factory.mktemp("vm-disks")
    disks = []
    for packed in sorted((Path(__file__).resolve().parents[2] / "samples" / "vm").glob("*.vhd.xz")):
        target = directory / packed.name[:-3]
        target.write_bytes(lzma.decompress(packed.read_bytes()))
        disks.append(str(target))
    assert len(disks) == 3
    return azvhdaudit.audit(str(os_disk), data_disks=disks, with_lsa=True)


def test_vm_report_is_true_in_every_format(vm_report: Report) -> None:
    problems = [p for r in vm_report.results for p in evidence_problems(r)]
    assert any(r.disk == "vm" for r in vm_report.results)
    for fmt in FORMATS:
        text = render(vm_report, fmt, **OPTIONS.get(fmt, {}))
        problems += repr_problems(f"vm {fmt}", rendered_texts(fmt, text))
    for fmt in ("ps1", "reg"):
        problems += repr_problems(f"vm {fmt}", rendered_texts(fmt, fix_script(vm_report, fmt, include_warnings=True)))
    assert not problems, "\n".join(problems)
