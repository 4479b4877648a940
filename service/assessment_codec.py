"""Assessment <-> JSON, for the audit store and idempotent replay.

Generic over the frozen dataclasses of ``service.assessment``: fields are read from the type
hints, so a field added to the contract is stored and replayed without touching this module.
Supported field types: str, int, float, bool, datetime (ISO 8601), StrEnum / IntEnum, nested
dataclasses, ``tuple[X, ...]``, ``X | None`` and ``dict[str, str]``.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from datetime import datetime
from functools import cache
from typing import Any, TypeVar

import orjson

from service.assessment import Assessment, FairnessAudit

T = TypeVar("T")


def encode(value: Any) -> Any:
    """A JSON-able value (dicts, lists, str, numbers, bools, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    return value


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(cls: type[T], data: Any) -> T:
    return typing.cast(T, _decode(cls, data))


def _decode(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is types.UnionType or origin is typing.Union:
        if data is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(inner, data)
    if origin is tuple:
        (inner, _ellipsis) = typing.get_args(tp)
        return tuple(_decode(inner, v) for v in data)
    if origin is dict:
        key_tp, value_tp = typing.get_args(tp)
        return {_decode(key_tp, k): _decode(value_tp, v) for k, v in data.items()}
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            hints = _hints(tp)
            kwargs = {
                f.name: _decode(hints[f.name], data[f.name])
                for f in dataclasses.fields(tp)
                if f.name in data
            }
            return tp(**kwargs)
        if issubclass(tp, enum.Enum):
            return tp(data)
        if tp is datetime:
            return datetime.fromisoformat(data)
        if tp is float:
            return float(data)
        if tp in (str, int, bool):
            if not isinstance(data, tp):
                raise TypeError(f"expected {tp.__name__} in stored assessment")
            return data
    raise TypeError(f"unsupported field type in assessment codec: {tp!r}")


def dumps(value: Any) -> str:
    """orjson serialises dataclasses, enums, tuples and aware datetimes natively (C speed),
    producing the same JSON as ``encode``; a FairnessAudit holds thousands of values."""
    return orjson.dumps(value).decode()


def assessment_to_json(assessment: Assessment) -> str:
    return dumps(assessment)


def assessment_from_json(text: str | bytes) -> Assessment:
    return decode(Assessment, orjson.loads(text))


def fairness_audit_to_json(audit: FairnessAudit | None) -> str | None:
    return None if audit is None else dumps(audit)
