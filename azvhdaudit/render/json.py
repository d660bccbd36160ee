"""JSON: :meth:`Report.to_dict` as text, versioned by ``schema_version``.

One image gives one report object; several give ``{"schema_version", "reports": [...]}``. Both shapes are
described by ``azvhdaudit/schemas/report.schema.json`` (JSON Schema 2020-12).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
from collections.abc import Sequence
from typing import Any

from azvhdaudit.render import as_reports
from azvhdaudit.report import SCHEMA_VERSION, Report

__all__ = ["render", "to_jsonable", "SCHEMA_RESOURCE"]

#: the schema's file name inside the package (``importlib.resources.files("azvhdaudit.schemas")``)
SCHEMA_RESOURCE = "report.schema.json"


def _default(obj: Any) -> Any:
    # Rule outcomes may carry bytes, tuples, sets, enums or dataclasses; keep them JSON-friendly.
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex()
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    if isinstance(obj, (_dt.datetime, _dt.date)):
        return obj.isoformat()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return str(obj)


def _data(reports: Report | Sequence[Report]) -> dict[str, Any]:
    items = as_reports(reports)
    if len(items) == 1 and isinstance(reports, Report):
        return items[0].to_dict()
    return {"schema_version": SCHEMA_VERSION, "reports": [r.to_dict() for r in items]}


def to_jsonable(reports: Report | Sequence[Report]) -> dict[str, Any]:
    """The structure the JSON text holds (a plain dict, already JSON-safe)."""
    result: dict[str, Any] = json.loads(json.dumps(_data(reports), default=_default))
    return result


def render(reports: Report | Sequence[Report], *, indent: int | None = 2) -> str:
    """The report(s) as JSON text, encoded once (the same text as ``json.dumps(to_jsonable(reports))``)."""
    items = as_reports(reports)
    single: Report | list[Report] = items[0] if len(items) == 1 else items
    return json.dumps(_data(single), default=_default, indent=indent, ensure_ascii=False) + "\n"


def load_schema() -> dict[str, Any]:
    """The shipped JSON Schema of the report."""
    from importlib.resources import files

    text = files("azvhdaudit.schemas").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
