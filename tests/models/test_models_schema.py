from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from fhir_adapters.features import (
    ClinicalFeatures,
    ClinicalSex,
    Measurement,
    Status,
    Troponin,
)
from models.cohort import CohortTable
from models.errors import SchemaMismatch
from models.registry import Registry
from models.schema import (
    FEATURE_NAMES,
    FEATURE_SCHEMA,
    N_FEATURES,
    ProtectedFeatureError,
    assert_schema_allowed,
    vectorize,
    vectorize_many,
)
from models.thresholds import Thresholds
from models.train import fit_model


def _features(table: CohortTable, i: int = 0) -> ClinicalFeatures:
    return table.case(i).features


def test_schema_is_declared_with_units_and_no_protected_name() -> None:
    assert FEATURE_SCHEMA.names == FEATURE_NAMES
    assert len(set(FEATURE_NAMES)) == N_FEATURES
    assert all(f.unit for f in FEATURE_SCHEMA.features)
    assert_schema_allowed(FEATURE_NAMES)
    assert not any("race" in n or "ethnic" in n or n == "sex" for n in FEATURE_NAMES)


@pytest.mark.parametrize(
    "name",
    [
        "race",
        "race_black",
        "patient_zip_code",
        "postcode",
        "preferred_language",
        "insurance_type",
        "ethnicity_hispanic",
        "sex",
        "administrative_gender",
    ],
)
def test_protected_names_are_refused(name: str) -> None:
    with pytest.raises(ProtectedFeatureError):
        assert_schema_allowed([*FEATURE_NAMES, name])


@pytest.mark.parametrize("name", ["troponin_high_sensitivity", "age_years", "heart_rate"])
def test_clinical_names_are_allowed(name: str) -> None:
    assert_schema_allowed([name])


def test_model_with_protected_feature_cannot_be_trained(small_table: CohortTable) -> None:
    x = vectorize_many(small_table.features()[:500])
    x = np.column_stack([x, small_table.race[:500].astype(np.float32)])
    y = small_table.true_mace[:500].astype(np.int64)
    with pytest.raises(ProtectedFeatureError):
        fit_model(x, y, feature_names=(*FEATURE_NAMES, "race_code"))


def test_model_with_protected_feature_cannot_be_registered(tmp_path: Path) -> None:
    with pytest.raises(SchemaMismatch) as info:
        Registry(tmp_path).register(
            "mace-30d",
            b"not used",
            thresholds=Thresholds(0.01, 0.2),
            metrics={},
            training_fingerprint="x",
            model_card="",
            feature_names=(*FEATURE_NAMES, "zip_code"),
        )
    assert info.value.reason == "protected_feature"


def test_vectorize_shape_dtype_and_many_agree(small_table: CohortTable) -> None:
    feats = small_table.features()[:50]
    rows = np.stack([vectorize(f) for f in feats])
    assert rows.dtype == np.float32
    assert rows.shape == (50, N_FEATURES)
    np.testing.assert_array_equal(rows, vectorize_many(feats))
    assert vectorize_many([]).shape == (0, N_FEATURES)


def test_missing_and_stale_measurements_are_imputed_and_flagged(small_table: CohortTable) -> None:
    f = dataclasses.replace(
        _features(small_table),
        heart_rate=Measurement.missing(),
        spo2=Measurement(None, Status.STALE),
        troponin=Troponin.missing(),
    )
    row = dict(zip(FEATURE_NAMES, vectorize(f).tolist(), strict=True))
    assert row["heart_rate"] == 80.0
    assert row["heart_rate_missing"] == 1.0
    assert row["spo2"] == 97.0
    assert row["spo2_missing"] == 1.0
    assert row["troponin_missing"] == 1.0
    assert row["troponin_log10_ratio"] == -1.0


def test_troponin_ratio_is_log10_and_clipped(small_table: CohortTable) -> None:
    base = _features(small_table)
    idx = FEATURE_NAMES.index("troponin_log10_ratio")
    for ratio, expected in ((10.0, 1.0), (1e6, 3.0), (1e-6, -2.0), (0.0, -2.0)):
        f = dataclasses.replace(base, troponin=Troponin(Status.PRESENT, ratio_to_url=ratio))
        row = vectorize(f)
        assert row[idx] == pytest.approx(expected)
        assert row[FEATURE_NAMES.index("troponin_missing")] == 0.0  # 0 is undetectable, not absent


def test_sex_is_not_an_input(small_table: CohortTable) -> None:
    f = _features(small_table)
    other = ClinicalSex.MALE if f.sex is ClinicalSex.FEMALE else ClinicalSex.FEMALE
    np.testing.assert_array_equal(vectorize(f), vectorize(dataclasses.replace(f, sex=other)))


def test_vectorize_is_fast(small_table: CohortTable) -> None:
    feats = small_table.features()[:2000]
    start = time.perf_counter()
    for f in feats:
        vectorize(f)
    per_call = (time.perf_counter() - start) / len(feats)
    assert per_call < 50e-6  # measured ~5 us; generous for shared CI machines
