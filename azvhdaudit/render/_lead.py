"""What a reader must see first, and what need not be repeated a hundred times: shared by the renderers for
people (text, Markdown, HTML, the notebook display, SARIF's grouping).

- :func:`no_windows`: a disk without Windows audited as an OS disk. Every rule that reads Windows is then
  "not checked" for the same reason; the one finding that matters is that the disk holds no Windows, and the
  way out is to audit it as a data disk.
- :func:`groups`: results of one status, one disk and the same reason, as one group.
- :func:`headline`: the counts line, with the not-applicable results of data disks (the guest rules, which
  never apply to a data disk) set apart instead of swamping the count.

Everything here reads a finished report; nothing evaluates a rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from azvhdaudit.report import Report, Result, Status

__all__ = ["WINDOWS_VOLUME_ID", "Group", "no_windows", "groups", "headline", "data_disk_not_applicable"]

#: the rule that fails when an OS disk holds no Windows volume
WINDOWS_VOLUME_ID = "disk.windows_volume"

#: a group needs at least this many results to be shown as one line
MIN_GROUP = 5

#: statuses whose results are grouped when their reason is the same
GROUPED = (Status.NOT_CHECKED, Status.NOT_APPLICABLE)


@dataclass(frozen=True)
class Group:
    """Results of one status on one disk that share their reason."""

    status: Status
    disk: str
    reason: str
    results: tuple[Result, ...]

    @property
    def rule_ids(self) -> list[str]:
        return [r.rule_id for r in self.results]


def no_windows(report: Report) -> str | None:
    """The lead finding when a disk without Windows was audited as an OS disk, else ``None``."""
    result = report.get(WINDOWS_VOLUME_ID)
    if result is None or result.status is not Status.FAIL:
        return None
    unread = sum(1 for r in report.results if r.disk == "os" and r.status is Status.NOT_CHECKED)
    return (
        f"No Windows on this disk: it was audited as an OS disk, so {unread} rules could not be checked. "
        "If it is a data disk, audit it as one: azvhdaudit audit IMAGE --role data "
        '(Python: audit(image, role="data")), or beside its OS disk with --data-disk.'
    )


def groups(results: Iterable[Result], min_size: int = MIN_GROUP) -> list[Result | Group]:
    """``results`` in their order, where at least ``min_size`` of them share status (not checked or not
    applicable), disk and reason: one :class:`Group` in place of the first of them."""
    items = list(results)
    keyed: dict[tuple[Status, str, str], list[Result]] = {}
    for result in items:
        if result.status in GROUPED:
            keyed.setdefault((result.status, result.disk, result.reason or result.message), []).append(result)
    big = {key: members for key, members in keyed.items() if len(members) >= min_size}
    out: list[Result | Group] = []
    placed: set[tuple[Status, str, str]] = set()
    for result in items:
        key = (result.status, result.disk, result.reason or result.message)
        if key not in big:
            out.append(result)
        elif key not in placed:
            placed.add(key)
            out.append(Group(status=key[0], disk=key[1], reason=key[2], results=tuple(big[key])))
    return out


def data_disk_not_applicable(report: Report) -> int:
    """How many not-applicable results belong to data disks (guest rules on a disk without the guest)."""
    data = {name for name, entry in report.disks.items() if entry.get("role") == "data"}
    return sum(1 for r in report.results if r.status is Status.NOT_APPLICABLE and r.disk in data)


def headline(report: Report) -> str:
    """``3 failed, 1 warning, 12 passed ...``; a VM's data-disk not-applicable results counted apart."""
    from azvhdaudit.render._common import STATUS_ORDER, count_label

    counts = dict(report.summary)
    aside = data_disk_not_applicable(report)
    counts[Status.NOT_APPLICABLE.value] -= aside
    parts = [count_label(s, counts[s.value]) for s in STATUS_ORDER if counts.get(s.value)]
    text = ", ".join(parts) if parts else "no rules evaluated"
    if aside:
        disks = sum(1 for entry in report.disks.values() if entry.get("role") == "data")
        text += f" (and {aside} OS-disk rules not applicable to the {disks} data disk{'s' if disks != 1 else ''})"
    return text
