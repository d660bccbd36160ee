"""Result.to_dict and Evidence.to_dict give exactly what dataclasses.asdict gives (the shape they had when they
were built with it): every field in order, every value a deep copy, dataclasses inside as dicts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import OrderedDict, namedtuple
from typing import Any

import pytest

from azvhdaudit.report import Evidence, Result, Severity, Status

Pair = namedtuple("Pair", "left right")


@dataclasses.dataclass(frozen=True)
class Inner:
    name: str
    items: tuple[int, ...] = ()


def _reference_result(result: Result) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["severity"] = result.severity.value
    data["status"] = result.status.value
    data["waived_status"] = result.waived_status.value if result.waived_status else None
    data["evidence"] = [dataclasses.asdict(e) for e in result.evidence]
    data["baselines"] = list(result.baselines)
    data["references"] = list(result.references)
    return data


VALUES: list[Any] = [
    None,
    True,
    0,
    -7,
    2.5,
    "text",
    b"\x00\xff",
    Status.FAIL,
    Severity.REQUIRED,
    [1, "a", [2, {"k": (3, None)}]],
    {"nested": {"list": [1, 2], "tuple": (b"x", 4.0)}, 5: "int key"},
    (1, (2, (3,))),
    OrderedDict([("b", 1), ("a", [2])]),
    Pair(1, [2, 3]),
    Inner("x", (1, 2)),
    [Inner("y")],
    {"when": dt.datetime(2026, 12, 7, tzinfo=dt.timezone.utc)},
    {1, 2, 3},
    frozenset({"a"}),
]


@pytest.mark.parametrize("value", VALUES, ids=[type(v).__name__ + str(i) for i, v in enumerate(VALUES)])
def test_a_result_and_its_evidence_as_asdict_gives_them(value: Any) -> None:
    evidence = (
        Evidence(source="registry", hive="SYSTEM", key="Select", value_name="Current", type="REG_DWORD", actual=value),
        Evidence(source="facts", actual={"inner": value}, derived=True),
    )
    result = Result(
        rule_id="area.rule",
        title="t",
        area="area",
        severity=Severity.RECOMMENDED,
        status=Status.WAIVED,
        message="m",
        expected=[value],
        actual=value,
        evidence=evidence,
        baselines=("azure-2022",),
        references=("doc",),
        waived_status=Status.FAIL,
    )
    data = result.to_dict()
    reference = _reference_result(result)
    assert data == reference
    assert list(data) == list(reference)
    assert [type(v) for v in data.values()] == [type(v) for v in reference.values()]
    assert evidence[0].to_dict() == dataclasses.asdict(evidence[0])
    assert list(evidence[0].to_dict()) == [f.name for f in dataclasses.fields(Evidence)]


def test_the_dicts_are_copies() -> None:
    actual: dict[str, Any] = {"list": [1], "inner": {"x": [2]}}
    evidence = Evidence(source="facts", actual=actual)
    result = Result("a.b", "t", "a", Severity.ADVISORY, Status.PASS, "m", actual=actual, evidence=(evidence,))
    data = result.to_dict()
    data["actual"]["list"].append(9)
    data["evidence"][0]["actual"]["inner"]["x"].append(9)
    assert actual == {"list": [1], "inner": {"x": [2]}}
    assert data["actual"] is not actual and data["evidence"][0]["actual"] is not actual
