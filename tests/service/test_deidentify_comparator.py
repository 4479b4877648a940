"""Defence in depth: a troponin comparator other than FHIR's four bounds never reaches the
audit store or the screen, whatever the adapters let through."""

from __future__ import annotations

from dataclasses import replace

import pytest
from assessments import assessment
from clinical_features import calm_features, troponin

from fhir_adapters.features import ClinicalFeatures
from service.assessment import Contribution
from service.contributions import describe
from service.deidentify import Pseudonyms, stored_assessment, stored_features

SENTINEL = "SENTINELPHI123 Jane Doe"
KEY = b"k" * 32


def _with_comparator(comparator: str | None) -> ClinicalFeatures:
    return replace(calm_features(), troponin=replace(troponin(2.0), comparator=comparator))


def test_stored_features_drop_a_free_text_comparator() -> None:
    stored = stored_features(_with_comparator(SENTINEL), Pseudonyms(KEY))
    assert "SENTINEL" not in stored
    assert '"comparator":null' in stored


@pytest.mark.parametrize("bound", ["<", "<=", ">=", ">"])
def test_stored_features_keep_the_four_bounds(bound: str) -> None:
    stored = stored_features(_with_comparator(bound), Pseudonyms(KEY))
    assert f'"comparator":"{bound}"' in stored


def test_the_troponin_contribution_never_renders_a_free_text_comparator() -> None:
    text = describe(_with_comparator(SENTINEL), "troponin", 0.5).value
    assert "SENTINEL" not in text
    assert text == describe(_with_comparator(None), "troponin", 0.5).value
    assert describe(_with_comparator("<="), "troponin", 0.5).value.startswith("<=")


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        (f"{SENTINEL}52 ng/L (2 x URL)", "present"),  # cannot be split safely: status only
        ("<=52 ng/L (2 x URL)", "<=52 ng/L (2 x URL)"),
        (
            "20 ng/L (0.769 x URL; 1.25 x sex-specific URL)",
            "20 ng/L (0.769 x URL; 1.25 x sex-specific URL)",
        ),
        (f"20 ng/L (0.769 x URL; {SENTINEL})", "present"),
        ("<10 ng/L (<0.385 x URL)", "<10 ng/L (<0.385 x URL)"),
        (
            "missing; a troponin result could not be read",
            "missing; a troponin result could not be read",
        ),
        ("52 ng/L", "52 ng/L"),
        ("missing", "missing"),
    ],
)
def test_stored_assessment_keeps_only_a_rendered_troponin_text(value: str, stored: str) -> None:
    contribution = Contribution("troponin", value, 0.5, "present", ("Observation/t",))
    answer = replace(assessment(), contributions=(contribution,))
    (kept,) = stored_assessment(answer, Pseudonyms(KEY)).contributions
    assert kept.value == stored
    assert kept.sources != contribution.sources  # still pseudonymised
