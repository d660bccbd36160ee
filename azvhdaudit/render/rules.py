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
            cells = [
                f"`{row['id']}`",
                row["area"],
                row["severity"],
                ", ".join(row["baselines"]),
                row["title"],
                row["source"],
            ]
            lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"
    # every column as wide as its widest cell, so no row is pushed out of line
    cols = {
        "id": max((len(row["id"]) for row in rows), default=0),
        "area": max((len(row["area"]) for row in rows), default=0),
        "severity": max((len(row["severity"]) for row in rows), default=0),
        "baselines": max((len(",".join(row["baselines"])) for row in rows), default=0),
    }
    heads = {"id": "ID", "area": "AREA", "severity": "SEVERITY", "baselines": "BASELINES"}
    widths = {key: max(width, len(heads[key])) for key, width in cols.items()}
    lead = sum(widths.values()) + 2 * len(widths)
    lines = ["  ".join(f"{heads[k]:<{w}}" for k, w in widths.items()) + "  TITLE / SOURCE"]
    for row in rows:
        shown = {
            "id": row["id"],
            "area": row["area"],
            "severity": row["severity"],
            "baselines": ",".join(row["baselines"]),
        }
        lines.append("  ".join(f"{shown[k]:<{w}}" for k, w in widths.items()) + f"  {row['title']}")
        if row["source"]:
            lines.append(" " * lead + f"§ {row['source']}")
    lines.append(f"{len(rows)} rules" + (f" in profile {profile}" if profile else ""))
    return "\n".join(lines) + "\n"
