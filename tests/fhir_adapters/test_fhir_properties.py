"""Arbitrary and mutated bundles only ever give an Extraction or a FhirAdapterError."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any
from unittest.mock import patch

import orjson
from fhir_builder import (
    CONFIG,
    REQUEST_TIME,
    blood_pressure,
    condition,
    encounter,
    observation,
    patient,
    triage,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_adapters import Extraction, ExtractionConfig, FhirAdapterError, extract, limits
from fhir_adapters.limits import exceeds_depth

SEED = orjson.loads(
    triage(
        blood_pressure(150, 90, id="bp"),
        observation("89579-7", 30, "ng/L", id="tn", minutes=-5,
                    referenceRange=[{"high": {"value": 20, "code": "ng/L"}}]),
        observation("72166-2", id="smk",
                    valueCodeableConcept={"coding": [{"system": "http://snomed.info/sct",
                                                      "code": "8517006"}]}),
        condition("http://snomed.info/sct", "38341003", id="htn"),
        encounter(id="e0", status="finished", start="2024-01-01"),
        race=["2054-5"],
    )
)  # fmt: skip

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["2025-03-01", "2025", "2025-13", "Patient/p1", "final", "mm[Hg]", "urn:x"]),
)
json_value = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


ALL_PATHS = _paths(SEED)[1:]


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    if isinstance(doc, dict) != isinstance(path[-1], str):
        raise TypeError("the parent changed kind under an earlier mutation")
    doc[path[-1]] = value


STRICT = dataclasses.replace(CONFIG, strict_validation=True)


def run(data: bytes, config: ExtractionConfig = CONFIG) -> None:
    try:
        result = extract(data, config, request_time=REQUEST_TIME)
    except FhirAdapterError:
        return
    assert isinstance(result, Extraction)


def _mutated(mutations: list[tuple[tuple[Any, ...], Any]]) -> bytes:
    doc = copy.deepcopy(SEED)
    for path, value in mutations:
        try:
            _set(doc, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the parent
    return orjson.dumps(doc)


mutation_lists = st.lists(st.tuples(st.sampled_from(ALL_PATHS), json_value), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=mutation_lists)
def test_mutated_bundles(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    run(_mutated(mutations))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutations=mutation_lists)
def test_mutated_bundles_in_strict_mode(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    # fhir.resources raises KeyError / TypeError for some of these; strict mode must not.
    run(_mutated(mutations), STRICT)


@settings(max_examples=200, deadline=None)
@given(value=json_value)
def test_arbitrary_json(value: Any) -> None:
    run(orjson.dumps(value))
    run(orjson.dumps({"resourceType": "Bundle", "entry": value}))
    run(
        orjson.dumps(
            {"resourceType": "Bundle", "entry": [{"resource": value}, {"resource": patient()}]}
        )
    )


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200), cut=st.integers(min_value=0, max_value=2000))
def test_arbitrary_and_truncated_bytes(data: bytes, cut: int) -> None:
    run(data)
    run(orjson.dumps(SEED)[:cut])


def _depth(node: Any) -> int:
    """Nesting depth by definition: each object or array is one level."""
    if isinstance(node, dict):
        return 1 + max((_depth(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return 1 + max((_depth(v) for v in node), default=0)
    return 0


# Strings full of what the byte-level depth check must not mistake for structure.
tricky_text = st.text(alphabet='{}[]"\\\\/nu0a ', max_size=10)
tricky_json = st.recursive(
    st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1), tricky_text),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3)
    ),
    max_leaves=30,
)


# Fillers that send the check down each of its paths: slices around escapes (a few
# thousand escapes), the regex (more), and the vectorised sum (many structural brackets).
_FILLERS: tuple[Any, ...] = ('\\"[' * 1500, '\\"[' * 5000, [[[]]] * 1500, "[{" * 40_000)


@settings(max_examples=200, deadline=None)
@given(value=tricky_json, limit=st.integers(min_value=0, max_value=12))
def test_depth_check_is_exact_on_valid_json(value: Any, limit: int) -> None:
    data = orjson.dumps(value)
    assert exceeds_depth(data, limit) == (_depth(value) > limit)
    for filler in _FILLERS:
        padded = [filler, value, filler]
        assert exceeds_depth(orjson.dumps(padded), limit + 1) == (_depth(padded) > limit + 1)
    # Tiny slices put slice boundaries next to every quote, bracket and escape.
    for size in (1, 2, 3, 7):
        with patch.object(limits, "_SLICE", size):
            assert exceeds_depth(data, limit) == (_depth(value) > limit)
