from __future__ import annotations

from datetime import timedelta

import numpy as np
import orjson
import pytest

from fhir_adapters import ExtractionConfig, extract
from models.cohort import CohortTable
from models.cohort.bundles import build_bundle, build_history_bundle, example_cases
from models.schema import vectorize

CONFIG = ExtractionConfig(pseudonym_key=b"test-key")


def _extract(data: bytes, anchor_request: object) -> object:
    return extract(data, CONFIG, request_time=anchor_request)  # type: ignore[arg-type]


def test_bundle_validates_with_r4b_and_has_the_triage_resources() -> None:
    case = example_cases(seed=1, n=5)[0]
    data = build_bundle(case)  # validates with fhir.resources R4B
    bundle = orjson.loads(data)
    types = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "Encounter", "Observation", "Condition"} <= types
    encounter = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter"
    )
    assert encounter["status"] == "in-progress"
    assert encounter["serviceProvider"]
    patient = bundle["entry"][0]["resource"]
    urls = {x["url"].rsplit("/", 1)[-1] for x in patient["extension"]}
    assert urls == {"us-core-race", "us-core-ethnicity", "us-core-birthsex"}


def test_bundle_extract_vectorize_equals_direct_features(small_table: CohortTable) -> None:
    for case in small_table.cases(range(0, 6000, 40)):
        data = build_bundle(case, validate=False)
        ext = extract(data, CONFIG, request_time=case.features.anchor_time + timedelta(minutes=5))
        np.testing.assert_allclose(
            vectorize(ext.features), vectorize(case.features), rtol=1e-6, atol=1e-6
        )
        assert (ext.audit.race, ext.audit.ethnicity, ext.audit.sex, ext.audit.facility) == (
            case.race,
            case.ethnicity,
            case.sex,
            case.facility,
        )


@pytest.mark.parametrize("target", [200_000, 1_000_000])
def test_history_bundle_is_large_and_extracts_the_same(target: int) -> None:
    case = example_cases(seed=2, n=3)[1]
    data = build_history_bundle(case, target)
    assert target <= len(data) < target * 1.05
    ext = extract(data, CONFIG, request_time=case.features.anchor_time + timedelta(minutes=5))
    np.testing.assert_allclose(vectorize(ext.features), vectorize(case.features), rtol=1e-6)
