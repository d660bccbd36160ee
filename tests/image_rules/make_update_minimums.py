"""Regenerate ``azvhdaudit/data/update_minimums.json`` from the fact catalogue's ``update_minimums``.

    python tests/image_rules/make_update_minimums.py path/to/azure-checks.yaml

The YAML transcribes the "Install Windows updates" table of "Prepare a Windows VHD or VHDX to upload to Azure"
(https://learn.microsoft.com/azure/virtual-machines/windows/prepare-for-upload-vhd-image, ms.date 2022-08-04; the
2017 text, MicrosoftDocs/azure-docs articles/virtual-machines/windows/prepare-for-upload-vhd-image.md, ms.date
2017-08-01, has the same values for its five columns, without vmstorfl.sys, CVE-2018-0886 and the v1709 / v1803
columns). The JSON keeps its rows, columns and KB rows unchanged and
adds where it came from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[2] / "azvhdaudit" / "data" / "update_minimums.json"


def convert(catalogue: dict) -> dict:
    table = catalogue["update_minimums"]
    return {
        "source": "azure-checks.yaml update_minimums (fact catalogue), from: " + table["source"],
        "columns": [
            {
                "id": c["id"],
                "label": c["doc_label"],
                "build": c["match"]["build"],
                "in_2017": bool(c.get("seed_label_nl")),
            }
            for c in table["columns"]
        ],
        "rows": [
            {
                "component": r["component"],
                "binary": r["binary"],
                "path": r["path"],
                "in_2017_table": r["in_2017_table"],
                "minimums": {col: cell for col, cell in r["minimums"].items() if "status" not in cell},
            }
            for r in table["rows"]
        ],
        "kb_rows": [
            {
                "name": r["name"],
                "in_2017_table": r["in_2017_table"],
                "kbs_any_of": {col: sorted(set(kbs)) for col, kbs in r["kbs_any_of"].items()},
            }
            for r in table["kb_rows"]
        ],
    }


def main(argv: list[str]) -> int:
    catalogue = yaml.safe_load(Path(argv[1]).read_text(encoding="utf-8"))
    OUT.write_text(json.dumps(convert(catalogue), indent=1, sort_keys=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
