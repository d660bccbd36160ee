"""``azvhdaudit rules``: the rule catalogue as a text table, Markdown or JSON.

A pure function of the catalogue's rows (``azvhdaudit.cli`` builds them from the engine's catalogue: id,
title, area, severity, baselines, source, ...); nothing is evaluated here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["FORMATS", "render_rules"]

#: the formats :func:`render_rules` writes
FORMATS: tuple[str, ...] = ("text", "json", "markdown")


def render_rules(rows: Sequence[Mapping[str, Any]], fmt: str = "text", *, profile: str | None = None) -> str:
    """The catalogue in ``fmt``; ``profile`` names the profile the rows were chosen by (text footer)."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        lines = ["| Id | Area | Severity | Baselines | Title | Source |", "|---|---|---|---|---|---|"]
        for row in rows:
            cells = [f"`{row['id']}`", row["area"], row["severity"], ", ".join(row["baselines"]),
                     row["title"], row["source"]]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"
    width = max((len(row["id"]) for row in rows), default=2)
    lines = [f"{'ID':<{width}}  {'AREA':<11}  {'SEVERITY':<13}  {'BASELINES':<18}  TITLE / SOURCE"]
    for row in rows:
        lines.append(
            f"{row['id']:<{width}}  {row['area']:<11}  {row['severity']:<13}  "
            f"{','.join(row['baselines']):<18}  {row['title']}"
        )
        if row["source"]:
            lines.append(f"{'':<{width}}  {'':<11}  {'':<13}  {'':<18}  § {row['source']}")
    lines.append(f"{len(rows)} rules" + (f" in profile {profile}" if profile else ""))
    return "\n".join(lines) + "\n"
