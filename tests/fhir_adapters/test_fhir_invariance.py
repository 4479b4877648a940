"""Race and ethnicity cannot reach ClinicalFeatures; sex reaches it only where a rule uses
it (the high-sensitivity troponin limit)."""

from __future__ import annotations

from typing import Any

import orjson
from fhir_builder import CONFIG, REQUEST_TIME, blood_pressure, condition, observation, triage
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_adapters import DemographicOverride, extract, extract_variants
from fhir_adapters.features import ClinicalSex, Ethnicity, Race, UrlSource

OMB = ["1002-5", "2028-9", "2054-5", "2076-8", "2106-3", "2135-2", "2186-5", "UNK", "ASKU", "x"]
RACE_URLS = [
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
]


def rich_bundle(race: list[str] | None, ethnicity: list[str] | None) -> bytes:
    return triage(
        blood_pressure(150, 90, id="bp"),
        observation("89579-7", 30, "ng/L", id="tn", minutes=-5),
        condition("http://snomed.info/sct", "38341003", id="htn"),
        race=race,
        ethnicity=ethnicity,
    )


def _strip_race(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_race(v) for k, v in node.items()}
    if isinstance(node, list):
        return [
            _strip_race(v) for v in node if not (isinstance(v, dict) and v.get("url") in RACE_URLS)
        ]
    return node


@settings(max_examples=60, deadline=None)
@given(
    race=st.one_of(st.none(), st.lists(st.sampled_from(OMB), max_size=4)),
    ethnicity=st.one_of(st.none(), st.lists(st.sampled_from(OMB), max_size=3)),
)
def test_race_and_ethnicity_leave_clinical_features_identical(
    race: list[str] | None, ethnicity: list[str] | None
) -> None:
    baseline = extract(rich_bundle(None, None), CONFIG, request_time=REQUEST_TIME)
    changed = extract(rich_bundle(race, ethnicity), CONFIG, request_time=REQUEST_TIME)
    assert changed.features == baseline.features


def test_removing_race_everywhere_leaves_features_identical() -> None:
    data = rich_bundle(["2054-5"], ["2135-2"])
    stripped = orjson.dumps(_strip_race(orjson.loads(data)))
    assert stripped != data
    a = extract(data, CONFIG, request_time=REQUEST_TIME)
    b = extract(stripped, CONFIG, request_time=REQUEST_TIME)
    assert a.features == b.features
    assert (a.audit.race, b.audit.race) == (Race.BLACK_OR_AFRICAN_AMERICAN, Race.UNKNOWN)


def test_variants_parse_once_and_apply_overrides() -> None:
    data = rich_bundle(["2106-3"], ["2186-5"])
    variants = [
        DemographicOverride(race, Ethnicity.NOT_HISPANIC_OR_LATINO, sex)
        for race in (Race.WHITE, Race.BLACK_OR_AFRICAN_AMERICAN, Race.ASIAN)
        for sex in (ClinicalSex.FEMALE, ClinicalSex.MALE)
    ]
    actual, results = extract_variants(data, CONFIG, request_time=REQUEST_TIME, variants=variants)
    assert actual == extract(data, CONFIG, request_time=REQUEST_TIME)
    for variant, result in zip(variants, results, strict=True):
        assert (result.audit.race, result.audit.sex) == (variant.race, variant.sex)
        assert result.features.sex is variant.sex
        expected_url = 16.0 if variant.sex is ClinicalSex.FEMALE else 34.0
        assert result.features.troponin.url_ng_l == expected_url
        assert result.features.troponin.url_source is UrlSource.DEFAULT_SEX_SPECIFIC
    female = [
        r.features for v, r in zip(variants, results, strict=True) if v.sex is ClinicalSex.FEMALE
    ]
    assert all(f == female[0] for f in female)  # race never changes features
    assert female[0] == actual.features  # the recorded patient is female


def test_variants_derive_once_per_distinct_sex(monkeypatch: Any) -> None:
    import fhir_adapters.derive as derive_module

    calls: list[ClinicalSex] = []
    original = derive_module.derive_troponin

    def counting(*args: Any) -> Any:
        calls.append(args[2])
        return original(*args)

    monkeypatch.setattr(derive_module, "derive_troponin", counting)
    data = rich_bundle(["2106-3"], ["2186-5"])
    variants = [
        DemographicOverride(race, ethnicity, sex)
        for race in (
            Race.WHITE,
            Race.BLACK_OR_AFRICAN_AMERICAN,
            Race.ASIAN,
            Race.AMERICAN_INDIAN_OR_ALASKA_NATIVE,
            Race.NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER,
        )
        for ethnicity in (Ethnicity.HISPANIC_OR_LATINO, Ethnicity.NOT_HISPANIC_OR_LATINO)
        for sex in (ClinicalSex.FEMALE, ClinicalSex.MALE)
    ]
    actual, results = extract_variants(data, CONFIG, request_time=REQUEST_TIME, variants=variants)
    # The recorded sex (female) for the actual result, then male once: 2 derivations, not 21.
    assert calls == [ClinicalSex.FEMALE, ClinicalSex.MALE]
    assert len(results) == len(variants)
    expected = extract(data, CONFIG, request_time=REQUEST_TIME)
    for variant, result in zip(variants, results, strict=True):
        assert result.features.sex is variant.sex
        assert (result.audit.race, result.audit.ethnicity, result.audit.sex) == (
            variant.race,
            variant.ethnicity,
            variant.sex,
        )
        if variant.sex is ClinicalSex.FEMALE:  # the recorded sex
            assert result.features == expected.features == actual.features
