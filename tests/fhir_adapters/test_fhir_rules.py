"""One fixture per extraction rule. Every fixture is also run through the R4B reference
extractor (``extract_both``), which must agree with the fast path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fhir_builder import (
    CONFIG,
    ENCOUNTER_REF,
    ICD10,
    LOINC,
    REQUEST_TIME,
    SNOMED,
    T0,
    UCUM,
    Resource,
    at,
    blood_pressure,
    bundle,
    concept,
    condition,
    encounter,
    family,
    observation,
    patient,
    quantity,
    triage,
)
from fhir_check import codes_of, extract_both

from fhir_adapters import extract
from fhir_adapters.features import (
    ClinicalSex,
    Ecg,
    EcgCategory,
    EncounterSelection,
    SexSource,
    Status,
    TroponinAssay,
    UrlSource,
)

# --- encounter selection ------------------------------------------------------------------


def test_the_single_active_encounter_is_the_anchor() -> None:
    data = bundle(
        patient(),
        encounter(id="old", status="finished", start=at(-60 * 24 * 30)),
        encounter(id="e1", status="arrived"),
    )
    features = extract_both(data).features
    assert features.encounter_selection is EncounterSelection.ACTIVE
    assert features.encounter == "Encounter/e1"
    assert features.anchor_time == T0


def test_the_requested_encounter_wins_over_the_active_one() -> None:
    data = bundle(patient(), encounter(id="old", status="finished", start=at(-600)), encounter())
    features = extract_both(data, encounter_id="old").features
    assert features.encounter_selection is EncounterSelection.REQUESTED
    assert features.anchor_time == T0 - timedelta(minutes=600)


def test_without_an_active_encounter_the_latest_is_chosen_with_a_warning() -> None:
    data = bundle(
        patient(),
        encounter(id="late", status="finished", start=at(-60)),
        encounter(id="early", status="finished", start=at(-600)),
    )
    extraction = extract_both(data)
    assert extraction.features.encounter == "Encounter/late"
    assert extraction.features.encounter_selection is EncounterSelection.MOST_RECENT
    assert "encounter_chosen_by_recency" in codes_of(extraction)


@pytest.mark.parametrize(
    ("subject", "warning"),
    [
        (None, "no_subject"),
        ({"display": "somebody"}, "unresolved_reference"),
        ({"reference": "Group/nowhere"}, "unresolved_reference"),
        ({"reference": "Patient/p2"}, "other_patient_resource"),
    ],
)
def test_an_encounter_not_about_the_patient_warns_as_any_resource_does(
    subject: dict[str, str] | None, warning: str
) -> None:
    # Encounters use the clinical resources' gate (Context.usable): no subject -> unusable
    # with no_subject (it was other_patient_resource), malformed -> unresolved_reference.
    unowned = encounter(id="e0", status="in-progress")
    del unowned["subject"]
    if subject is not None:
        unowned["subject"] = subject
    data = bundle(patient(), unowned, encounter(id="e1", status="finished", start=at(-60)))
    extraction = extract_both(data)
    assert extraction.features.encounter == "Encounter/e1"
    assert (warning, "$.entry[1].resource.subject") in [
        (w.code, w.path) for w in extraction.features.warnings
    ]
    others = {"no_subject", "unresolved_reference", "other_patient_resource"} - {warning}
    assert not others & set(codes_of(extraction))


def test_without_any_encounter_the_request_time_is_the_anchor() -> None:
    extraction = extract_both(bundle(patient()))
    assert extraction.features.anchor_time == REQUEST_TIME
    assert extraction.features.encounter_selection is EncounterSelection.NONE
    assert "no_encounter" in codes_of(extraction)
    assert extraction.audit.encounter_pseudonym is None


# --- age and sex --------------------------------------------------------------------------


def test_age_is_completed_years_at_the_anchor() -> None:
    assert extract_both(triage(birth_date="1965-03-01")).features.age_years.value == 60.0
    assert extract_both(triage(birth_date="1965-03-02")).features.age_years.value == 59.0
    assert extract_both(triage(birth_date="1965")).features.age_years.value == 60.0


def test_age_counts_birthdays_on_the_encounter_local_date() -> None:
    # 20:00 at -08:00 on 1 March is 04:00 UTC on 2 March, the 65th birthday: not yet reached
    # where the patient is. The request-time fallback (no encounter) uses the UTC date.
    late = encounter(start="2025-03-01T20:00:00-08:00")
    request_time = datetime(2025, 3, 2, 5, 0, tzinfo=UTC)
    at_encounter = extract_both(
        bundle(patient(birth_date="1960-03-02"), late), request_time=request_time
    )
    assert at_encounter.features.anchor_time == datetime(2025, 3, 2, 4, 0, tzinfo=UTC)
    assert at_encounter.features.age_years.value == 64.0
    no_encounter = extract_both(bundle(patient(birth_date="1960-03-02")), request_time=request_time)
    assert no_encounter.features.age_years.value == 65.0


def test_missing_birth_date_is_missing_age_and_unknown_band() -> None:
    extraction = extract_both(triage(birth_date=None))
    assert extraction.features.age_years.status is Status.MISSING
    assert extraction.audit.age_band.value == "unknown"


@pytest.mark.parametrize(
    ("extensions", "gender", "sex", "source"),
    [
        ([], "male", ClinicalSex.MALE, SexSource.GENDER),
        ([{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
           "valueCode": "F"}], "male", ClinicalSex.FEMALE, SexSource.BIRTHSEX),
        ([{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-individual-sex",
           "valueCoding": {"system": SNOMED, "code": "248153007"}},
          {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
           "valueCode": "F"}], None, ClinicalSex.MALE, SexSource.INDIVIDUAL_SEX),
        ([], "other", ClinicalSex.UNKNOWN, SexSource.GENDER),
        ([], None, ClinicalSex.UNKNOWN, SexSource.NONE),
    ],
)  # fmt: skip
def test_sex_precedence(
    extensions: list[dict[str, object]], gender: str | None, sex: ClinicalSex, source: SexSource
) -> None:
    features = extract_both(triage(extensions=extensions, gender=gender)).features
    assert (features.sex, features.sex_source) == (sex, source)


# --- vitals -------------------------------------------------------------------------------


def test_latest_vital_by_time_not_array_order() -> None:
    data = triage(
        observation("8867-4", 110, "/min", id="hr-new", minutes=-5),
        observation("8867-4", 70, "/min", id="hr-old", minutes=-120),
    )
    hr = extract_both(data).features.heart_rate
    assert (hr.value, hr.status, hr.source) == (110.0, Status.PRESENT, "Observation/hr-new")


@pytest.mark.parametrize("panel", ["85354-9", "55284-4"])
def test_blood_pressure_from_either_panel(panel: str) -> None:
    features = extract_both(triage(blood_pressure(150, 95, id="bp", panel=panel))).features
    assert (features.systolic_bp.value, features.diastolic_bp.value) == (150.0, 95.0)
    assert features.systolic_bp.source == "Observation/bp"


def test_stand_alone_systolic_and_diastolic() -> None:
    data = triage(
        observation("8480-6", 131, "mm[Hg]", id="s"), observation("8462-4", 81, "mm[Hg]", id="d")
    )
    features = extract_both(data).features
    assert (features.systolic_bp.value, features.diastolic_bp.value) == (131.0, 81.0)


def test_other_vitals_and_unit_conversion() -> None:
    data = triage(
        observation("9279-1", 22, "/min", id="rr"),
        observation("59408-5", 93, "%", id="spo2"),
        observation("8310-5", 100.4, "[degF]", id="temp"),
    )
    features = extract_both(data).features
    assert features.respiratory_rate.value == 22.0
    assert features.spo2.value == 93.0
    assert features.temperature_c.value == pytest.approx(38.0)


def test_bmi_recorded_or_computed_from_weight_and_height() -> None:
    recorded = extract_both(triage(observation("39156-5", 31.2, "kg/m2", id="bmi"))).features
    assert recorded.bmi.value == 31.2
    computed = extract_both(
        triage(
            observation("29463-7", 220, "[lb_av]", id="w", minutes=-10),
            observation("8302-2", 70, "[in_i]", id="h", minutes=-60 * 24 * 200),
        )
    ).features
    assert computed.bmi.value == pytest.approx(31.57, abs=0.01)
    assert computed.bmi.source == "Observation/w"


def test_stale_vitals_are_reported_stale_without_value() -> None:
    extraction = extract_both(triage(blood_pressure(120, 80, id="bp", minutes=-60 * 25)))
    assert extraction.features.systolic_bp.status is Status.STALE
    assert extraction.features.systolic_bp.value is None
    assert extraction.features.systolic_bp.source == "Observation/bp"
    assert "stale_value" in codes_of(extraction)


@pytest.mark.parametrize("systolic", [0, 400, 1e308])
def test_implausible_values_are_skipped_for_an_earlier_plausible_one(systolic: float) -> None:
    data = triage(
        blood_pressure(systolic, 80, id="bad", minutes=-1),
        blood_pressure(128, 82, id="good", minutes=-30),
    )
    extraction = extract_both(data)
    assert extraction.features.systolic_bp.value == 128.0
    assert "implausible_value" in codes_of(extraction)


def test_only_implausible_values_give_implausible_status() -> None:
    features = extract_both(triage(blood_pressure(0, 80, id="bad"))).features
    assert features.systolic_bp.status is Status.IMPLAUSIBLE
    assert features.systolic_bp.value is None


def test_missing_and_unknown_units_are_never_guessed() -> None:
    no_unit = observation("8867-4", 80, None, id="hr")
    no_unit["valueQuantity"]["unit"] = "beats/minute"
    extraction = extract_both(triage(no_unit))
    assert extraction.features.heart_rate.status is Status.MISSING
    assert codes_of(extraction) == ["missing_unit"]
    unknown = extract_both(triage(observation("8867-4", 80, "Hz", id="hr")))
    assert "unknown_unit" in codes_of(unknown)
    assert unknown.features.heart_rate.status is Status.MISSING


def test_data_absent_reason_warns() -> None:
    obs = observation("8867-4", id="hr")
    obs["dataAbsentReason"] = concept(
        "http://terminology.hl7.org/CodeSystem/data-absent-reason", "not-performed"
    )
    extraction = extract_both(triage(obs))
    assert extraction.features.heart_rate.status is Status.MISSING
    assert "data_absent" in codes_of(extraction)


def test_cancelled_entered_in_error_and_future_data_are_ignored() -> None:
    data = triage(
        observation("8867-4", 150, "/min", id="cancel", status="cancelled"),
        observation("8867-4", 150, "/min", id="eie", status="entered-in-error"),
        observation("8867-4", 150, "/min", id="future", minutes=5),
        observation("8867-4", 72, "/min", id="ok", minutes=-5),
    )
    extraction = extract_both(data)
    assert extraction.features.heart_rate.value == 72.0
    assert {"cancelled", "entered_in_error", "future_dated"} <= set(codes_of(extraction))


def test_other_patients_and_unresolved_subjects_are_ignored() -> None:
    data = triage(
        observation("8867-4", 150, "/min", id="other", subject={"reference": "Patient/p2"}),
        observation("8867-4", 140, "/min", id="lost", subject={"reference": "urn:uuid:none"}),
        observation("8867-4", 130, "/min", id="anon", subject={"display": "somebody"}),
    )
    extraction = extract_both(data)
    assert extraction.features.heart_rate.status is Status.MISSING
    assert codes_of(extraction).count("unresolved_reference") == 2
    assert "other_patient_resource" in codes_of(extraction)


def test_absolute_and_urn_references_resolve_to_the_patient() -> None:
    obs = observation(
        "8867-4", 90, "/min", id="hr", subject={"reference": "http://example.org/fhir/Patient/p1"}
    )
    assert extract_both(triage(obs)).features.heart_rate.value == 90.0


def test_an_absolute_reference_from_another_base_is_not_the_patient() -> None:
    # FHIR bundle resolution: an absolute reference resolves only to the entry with exactly
    # that fullUrl (here http://example.org/fhir/Patient/p1), never by its "/Patient/p1" tail.
    elsewhere = {"reference": "https://other-server/fhir/Patient/p1"}
    extraction = extract_both(
        triage(observation("8867-4", 90, "/min", id="hr", minutes=-5, subject=elsewhere))
    )
    assert extraction.features.heart_rate.status is Status.MISSING
    assert "other_patient_resource" in codes_of(extraction)


# --- troponin -----------------------------------------------------------------------------


def troponin(loinc: str, value: float, unit: str, *, id: str = "tn", minutes: float = -10,
             **extra: Any) -> Resource:  # fmt: skip
    return observation(loinc, value, unit, id=id, minutes=minutes, **extra)


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "ng_l", "assay"),
    [
        ("10839-9", 0.05, "ng/mL", 50.0, TroponinAssay.CONVENTIONAL),
        ("42757-5", 0.1, "ug/L", 100.0, TroponinAssay.CONVENTIONAL),
        ("49563-0", 0.02, "ng/mL", 20.0, TroponinAssay.CONVENTIONAL),
        ("89579-7", 12, "ng/L", 12.0, TroponinAssay.HIGH_SENSITIVITY),
        ("6598-7", 0.03, "ng/mL", 30.0, TroponinAssay.CONVENTIONAL),
        ("48425-3", 0.01, "ng/mL", 10.0, TroponinAssay.CONVENTIONAL),
        ("67151-1", 15, "pg/mL", 15.0, TroponinAssay.HIGH_SENSITIVITY),
    ],
)
def test_every_troponin_code_is_normalised_to_ng_per_l(
    loinc: str, value: float, unit: str, ng_l: float, assay: TroponinAssay
) -> None:
    result = extract_both(triage(troponin(loinc, value, unit))).features.troponin
    assert result.status is Status.PRESENT
    assert result.value_ng_l == pytest.approx(ng_l)
    assert result.assay is assay
    assert result.loinc == loinc


@pytest.mark.parametrize(("unit", "ng_l"), [("ng/l", 40.0), ("pg/ml", 40.0), ("ng/ml", 40_000.0),
                                            ("ug/l", 40_000.0)])  # fmt: skip
def test_troponin_units_with_a_lower_case_litre_are_read(unit: str, ng_l: float) -> None:
    """UCUM has "l" as well as "L" for the litre: "ng/l" is a valid code, not a guess."""
    result = extract_both(triage(troponin("89579-7", 40, unit))).features.troponin
    assert result.value_ng_l == pytest.approx(ng_l)


@pytest.mark.parametrize(
    ("gender", "url", "source"),
    [
        ("female", 16.0, UrlSource.DEFAULT_SEX_SPECIFIC),
        ("male", 34.0, UrlSource.DEFAULT_SEX_SPECIFIC),
        ("unknown", 16.0, UrlSource.DEFAULT),
    ],
)
def test_hs_troponin_default_limit_is_sex_specific(
    gender: str, url: float, source: UrlSource
) -> None:
    result = extract_both(triage(troponin("89579-7", 32, "ng/L"), gender=gender)).features.troponin
    assert (result.url_ng_l, result.url_source) == (url, source)
    assert result.ratio_to_url == pytest.approx(32 / url)


def test_reference_range_high_is_the_limit_and_matches_sex() -> None:
    ranges = [
        {"high": {"value": 11, "system": UCUM, "code": "ng/L"},
         "appliesTo": [concept(SNOMED, "248152002")]},
        {"high": {"value": 20, "system": UCUM, "code": "ng/L"},
         "appliesTo": [concept(SNOMED, "248153007")]},
    ]  # fmt: skip
    obs = troponin("67151-1", 22, "ng/L", referenceRange=ranges)
    female = extract_both(triage(obs)).features.troponin
    assert (female.url_ng_l, female.url_source) == (11.0, UrlSource.REFERENCE_RANGE)
    male = extract_both(triage(obs, gender="male")).features.troponin
    assert male.url_ng_l == 20.0
    assert male.ratio_to_url == pytest.approx(1.1)


_UNISEX_HS_TNI = [{"high": {"value": 26, "system": UCUM, "code": "ng/L"}}]  # states no sex


@pytest.mark.parametrize(
    ("gender", "sex_specific_url", "above"),
    [
        ("female", 16.0, ("Observation/tn",)),
        ("unknown", 16.0, ("Observation/tn",)),  # sex unknown: the lower, female limit
        ("male", None, ()),  # 34 ng/L is not below the lab's 26: nothing to add
    ],
)
def test_a_lab_limit_stating_no_sex_is_shown_beside_the_lower_sex_specific_one(
    gender: str, sex_specific_url: float | None, above: tuple[str, ...]
) -> None:
    """Was: the lab's single 26 ng/L limit alone, so a woman's hs-TnI of 20 ng/L (above the
    female 99th percentile, 16) read as normal and nothing said otherwise."""
    obs = troponin("89579-7", 20, "ng/L", referenceRange=_UNISEX_HS_TNI)
    result = extract_both(triage(obs, gender=gender)).features.troponin
    assert (result.url_ng_l, result.url_source) == (26.0, UrlSource.REFERENCE_RANGE)
    assert result.ratio_to_url == pytest.approx(20 / 26)
    assert result.sex_specific_url_ng_l == sex_specific_url
    assert result.above_sex_specific_url.sources == above


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "ranges"),
    [
        ("89579-7", 12, "ng/L", _UNISEX_HS_TNI),  # within the female limit too
        ("89579-7", 40, "ng/L", _UNISEX_HS_TNI),  # above the lab's limit: raised already
        # a range for the patient's sex is the sex-specific limit
        ("89579-7", 20, "ng/L",
         [{"high": {"value": 26, "system": UCUM, "code": "ng/L"},
           "appliesTo": [concept(SNOMED, "248152002")]}]),
        ("10839-9", 0.02, "ng/mL",
         [{"high": {"value": 0.04, "system": UCUM, "code": "ng/mL"}}]),  # conventional
    ],
)  # fmt: skip
def test_no_sex_specific_concern_where_the_lab_limit_says_enough(
    loinc: str, value: float, unit: str, ranges: list[dict[str, Any]]
) -> None:
    obs = troponin(loinc, value, unit, referenceRange=ranges)
    assert not extract_both(triage(obs)).features.troponin.above_sex_specific_url.present


def test_an_earlier_result_above_the_sex_specific_limit_within_the_window_is_listed() -> None:
    data = triage(
        troponin("89579-7", 20, "ng/L", id="tn0", minutes=-180, referenceRange=_UNISEX_HS_TNI),
        troponin("89579-7", 10, "ng/L", id="tn1", minutes=-5, referenceRange=_UNISEX_HS_TNI),
        troponin("89579-7", 30, "ng/L", id="old", minutes=-60 * 30, referenceRange=_UNISEX_HS_TNI),
    )
    result = extract_both(data).features
    assert result.troponin.source == "Observation/tn1"
    assert result.troponin.above_sex_specific_url.sources == ("Observation/tn0",)  # "old": stale
    assert not result.troponin_above_url_in_window.present


@pytest.mark.parametrize(("comparator", "above"), [("<", False), ("<=", False), (">", True)])
def test_a_censored_result_is_above_the_sex_specific_limit_only_when_known_to_be(
    comparator: str, above: bool
) -> None:
    obs = troponin("89579-7", 20, "ng/L", referenceRange=_UNISEX_HS_TNI)
    obs["valueQuantity"]["comparator"] = comparator
    result = extract_both(triage(obs)).features.troponin
    assert result.above_sex_specific_url.present is above


def test_conventional_troponin_default_limit() -> None:
    result = extract_both(triage(troponin("10839-9", 0.12, "ng/mL"))).features.troponin
    assert (result.url_ng_l, result.url_source) == (40.0, UrlSource.DEFAULT)
    assert result.ratio_to_url == pytest.approx(3.0)


def test_troponin_comparator_is_kept_and_flagged() -> None:
    obs = troponin("89579-7", 3, "ng/L")
    obs["valueQuantity"]["comparator"] = "<"
    extraction = extract_both(triage(obs))
    assert extraction.features.troponin.comparator == "<"
    assert extraction.features.troponin.value_ng_l == 3.0
    assert "troponin_censored" in codes_of(extraction)


def test_latest_troponin_by_effective_time() -> None:
    data = triage(
        troponin("89579-7", 80, "ng/L", id="later", minutes=-5),
        troponin("89579-7", 5, "ng/L", id="earlier", minutes=-180),
    )
    assert extract_both(data).features.troponin.source == "Observation/later"


def test_stale_and_missing_troponin() -> None:
    assert extract_both(triage()).features.troponin.status is Status.MISSING
    old = extract_both(triage(troponin("89579-7", 80, "ng/L", minutes=-60 * 30)))
    assert old.features.troponin.status is Status.STALE


# --- ECG ----------------------------------------------------------------------------------


def ecg_observation(finding: str, *, id: str = "ecg", minutes: float = -5) -> Resource:
    obs = observation("11524-6", id=id, minutes=minutes)
    obs["valueCodeableConcept"] = concept(SNOMED, finding)
    return obs


@pytest.mark.parametrize(
    ("finding", "category"),
    [
        ("164854000", EcgCategory.NORMAL),
        ("164909002", EcgCategory.NONSPECIFIC),
        ("10370003", EcgCategory.NONSPECIFIC),
        ("76388001", EcgCategory.ST_DEVIATION),
        ("429622005", EcgCategory.ST_DEVIATION),
    ],
)
def test_ecg_category_from_observation(finding: str, category: EcgCategory) -> None:
    assert extract_both(triage(ecg_observation(finding))).features.ecg.category is category


def test_ecg_category_from_diagnostic_report_conclusion() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "id": "ecg-report",
        "status": "final",
        "code": concept(LOINC, "11524-6"),
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": at(-3),
        "conclusionCode": [concept(SNOMED, "164854000"), concept(SNOMED, "26141007")],
    }
    ecg = extract_both(triage(report)).features.ecg
    assert (ecg.category, ecg.source) == (EcgCategory.ST_DEVIATION, "DiagnosticReport/ecg-report")


def test_no_or_stale_ecg_is_unknown() -> None:
    assert extract_both(triage()).features.ecg.category is EcgCategory.UNKNOWN
    stale = extract_both(triage(ecg_observation("76388001", minutes=-60 * 48)))
    assert stale.features.ecg.category is EcgCategory.UNKNOWN
    assert "stale_value" in codes_of(stale)


def ecg_with_components(*components: dict[str, Any]) -> Resource:
    return observation("11524-6", id="ecg", minutes=-5, components=list(components))


@pytest.mark.parametrize(
    ("component", "category"),
    [
        ({"code": concept(SNOMED, "164931005"), "valueBoolean": True}, EcgCategory.ST_DEVIATION),
        ({"code": concept(LOINC, "18844-1"), "valueCodeableConcept": concept(SNOMED, "164931005")},
         EcgCategory.ST_DEVIATION),
        ({"code": concept(LOINC, "18844-1"), "valueCodeableConcept": concept(SNOMED, "63467002")},
         EcgCategory.NONSPECIFIC),
        # a finding denied, or a finding code that is only a measurement slot: not a finding
        ({"code": concept(SNOMED, "164931005"), "valueBoolean": False}, EcgCategory.UNKNOWN),
        ({"code": concept(SNOMED, "164931005"), "valueQuantity": quantity(0.5, "mm")},
         EcgCategory.UNKNOWN),
    ],
)  # fmt: skip
def test_ecg_findings_in_the_components_of_an_ecg_observation(
    component: dict[str, Any], category: EcgCategory
) -> None:
    ecg = extract_both(triage(ecg_with_components(component))).features.ecg
    assert ecg.category is category
    if category is not EcgCategory.UNKNOWN:
        assert (ecg.source, ecg.status) == ("Observation/ecg", Status.PRESENT)


def test_an_ecg_finding_with_value_boolean_false_does_not_count() -> None:
    denied = observation("x", id="st", minutes=-5, valueBoolean=False)
    denied["code"] = concept(SNOMED, "164931005")
    normal = ecg_observation("164854000", id="normal", minutes=-30)
    ecg = extract_both(triage(denied, normal)).features.ecg
    assert (ecg.category, ecg.source) == (EcgCategory.NORMAL, "Observation/normal")


def test_a_stale_ecg_is_unscored_but_keeps_its_provenance() -> None:
    extraction = extract_both(triage(ecg_observation("76388001", id="old", minutes=-60 * 48)))
    ecg = extraction.features.ecg
    assert ecg.category is EcgCategory.UNKNOWN  # not scored
    assert (ecg.status, ecg.source, ecg.effective) == (
        Status.STALE,
        "Observation/old",
        T0 - timedelta(hours=48),
    )
    assert ("stale_value", "$.entry[2].resource") in [
        (w.code, w.path) for w in extraction.features.warnings
    ]
    assert extract_both(triage()).features.ecg.status is Status.MISSING


def test_ecg_status_defaults_follow_the_category() -> None:
    assert Ecg(EcgCategory.UNKNOWN).status is Status.MISSING
    assert Ecg(EcgCategory.NORMAL, "Observation/ecg", T0).status is Status.PRESENT
    with pytest.raises(ValueError, match="present"):
        Ecg(EcgCategory.NORMAL, status=Status.STALE)


# --- symptoms -----------------------------------------------------------------------------


def test_symptoms_from_reason_code_diagnosis_and_observation() -> None:
    data = bundle(
        patient(),
        encounter(reasons=[(SNOMED, "274667000")]),
        condition(SNOMED, "267036007", id="dys", minutes=0, encounter_ref=ENCOUNTER_REF,
                  category="encounter-diagnosis"),
        condition(ICD10, "R11.0", id="nausea", minutes=-10, clinical=None),
        observation("75325-1", id="sweat", minutes=-2,
                    valueCodeableConcept=concept(SNOMED, "415690000")),
    )  # fmt: skip
    symptoms = extract_both(data).features.symptoms
    assert symptoms.jaw_pain.sources == ("Encounter/e1",)
    assert symptoms.dyspnea.sources == ("Condition/dys",)
    assert symptoms.nausea.sources == ("Condition/nausea",)
    assert symptoms.diaphoresis.sources == ("Observation/sweat",)
    assert not symptoms.chest_pain.present  # an "atypical" presentation is kept as such


@pytest.mark.parametrize(
    ("system", "code", "flag"),
    [
        (SNOMED, "29857009", "chest_pain"),
        (ICD10, "R07.9", "chest_pain"),
        (SNOMED, "45326000", "shoulder_pain"),
        (SNOMED, "102556003", "arm_pain"),
        (SNOMED, "79922009", "epigastric_pain"),
        (ICD10, "R06.00", "dyspnea"),
    ],
)
def test_each_symptom_code(system: str, code: str, flag: str) -> None:
    data = bundle(patient(), encounter(reasons=[(system, code)]))
    assert getattr(extract_both(data).features.symptoms, flag).present


@pytest.mark.parametrize("status", ["resolved", "inactive", "remission"])
def test_a_presenting_symptom_that_has_settled_still_counts(status: str) -> None:
    """Was dropped: chest pain that resolved before triage is how the patient presented
    (the classic story of unstable angina)."""
    pain = condition(SNOMED, "29857009", id="cp", minutes=0, clinical=status,
                     encounter_ref=ENCOUNTER_REF, category="encounter-diagnosis")  # fmt: skip
    assert extract_both(triage(pain)).features.symptoms.chest_pain.sources == ("Condition/cp",)


@pytest.mark.parametrize(
    "denial",
    [
        {"valueCodeableConcept": concept(SNOMED, "373067005")},  # No
        {"valueCodeableConcept": concept(SNOMED, "260385009")},  # Negative
        {"valueCodeableConcept": concept(SNOMED, "2667000")},  # Absent
        {"valueBoolean": False},
        {"valueQuantity": quantity(0, "mm")},  # measured: none
    ],
)
def test_a_finding_the_record_denies_does_not_count(denial: dict[str, Any]) -> None:
    """Was: only valueBoolean false was read as a denial; "No" made the finding present."""
    st = {**observation("8601-7", id="st", minutes=-5), "code": concept(SNOMED, "76388001")}
    pain = {**observation("8601-7", id="cp", minutes=-5), "code": concept(SNOMED, "29857009")}
    features = extract_both(triage({**st, **denial}, {**pain, **denial})).features
    assert features.ecg.category is EcgCategory.UNKNOWN
    assert not features.st_deviation_in_window.present
    assert not features.symptoms.chest_pain.present
    asserted = extract_both(triage(st, pain)).features
    assert asserted.ecg.category is EcgCategory.ST_DEVIATION
    assert asserted.symptoms.chest_pain.present


def test_symptoms_of_another_encounter_do_not_count() -> None:
    old = condition(SNOMED, "29857009", id="cp", minutes=-5,
                    encounter_ref={"reference": "Encounter/old"})  # fmt: skip
    data = bundle(
        patient(), encounter(), encounter(id="old", status="finished", start=at(-900)), old
    )
    extraction = extract_both(data)
    assert not extraction.features.symptoms.chest_pain.present
    assert "unresolved_reference" not in codes_of(extraction)


@pytest.mark.parametrize(
    "reference",
    [
        {"reference": "Encounter/nowhere"},  # resolves to no Encounter in the bundle
        {"reference": "https://other-server/fhir/Encounter/e1"},  # another base: not e1
        {"display": "ED visit"},  # malformed: no reference at all
    ],
)
def test_a_symptom_with_an_unresolvable_encounter_is_judged_by_time_with_a_warning(
    reference: dict[str, str],
) -> None:
    recent = condition(SNOMED, "29857009", id="cp", minutes=-5, encounter_ref=reference)
    old = condition(SNOMED, "422587007", id="nausea", minutes=-60 * 48, encounter_ref=reference)
    extraction = extract_both(triage(recent, old))
    symptoms = extraction.features.symptoms
    assert symptoms.chest_pain.sources == ("Condition/cp",)  # within the window: it counts
    assert not symptoms.nausea.present  # outside it: it does not
    warned = [(w.code, w.path) for w in extraction.features.warnings]
    assert ("unresolved_reference", "$.entry[2].resource.encounter") in warned
    assert ("unresolved_reference", "$.entry[3].resource.encounter") in warned


# --- risk factors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("system", "code", "flag"),
    [
        (SNOMED, "38341003", "hypertension"),
        (ICD10, "I10", "hypertension"),
        (SNOMED, "55822004", "hyperlipidaemia"),
        (ICD10, "E78.5", "hyperlipidaemia"),
        (SNOMED, "44054006", "diabetes"),
        (ICD10, "E11.9", "diabetes"),
        (SNOMED, "414916001", "obesity"),
        (ICD10, "E66.9", "obesity"),
        (SNOMED, "449868002", "smoking"),
        (SNOMED, "1755008", "known_atherosclerosis"),
        (ICD10, "I25.2", "known_atherosclerosis"),
        (SNOMED, "230690007", "known_atherosclerosis"),
        (SNOMED, "400047006", "known_atherosclerosis"),
    ],
)
def test_risk_factor_codes(system: str, code: str, flag: str) -> None:
    risk = extract_both(triage(condition(system, code, id="c"))).features.risk_factors
    assert getattr(risk, flag).sources == ("Condition/c",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"verification": "refuted"},
        {"verification": "entered-in-error"},
        {"clinical": "resolved"},
        {"minutes": 0},  # diagnosed at this encounter: not history
        {"minutes": 30},  # after the anchor
    ],
)
def test_risk_factor_exclusions(kwargs: dict[str, Any]) -> None:
    risk = extract_both(triage(condition(SNOMED, "38341003", id="c", **kwargs))).features
    assert not risk.risk_factors.hypertension.present


def test_resolved_prior_mi_is_still_known_atherosclerosis() -> None:
    data = triage(condition(SNOMED, "22298006", id="mi", clinical="resolved"))
    assert extract_both(data).features.risk_factors.known_atherosclerosis.present


def completed_procedure(code: str, *, id: str, **extra: Any) -> Resource:
    return {
        "resourceType": "Procedure",
        "id": id,
        "status": "completed",
        "code": concept(SNOMED, code),
        "subject": {"reference": "Patient/p1"},
        **extra,
    }


@pytest.mark.parametrize(
    "when", [{"performedString": "2010"}, {"performedAge": {"value": 55, "code": "a"}}, {}]
)
def test_an_undated_completed_cabg_is_known_atherosclerosis(when: dict[str, Any]) -> None:
    """Was ignored with missing_time, while a Condition with the same code and no date
    counted: a completed CABG in the record is history whenever it was."""
    procedure = completed_procedure("232717009", id="cabg", **when)
    extraction = extract_both(triage(procedure))
    assert extraction.features.risk_factors.known_atherosclerosis.sources == ("Procedure/cabg",)
    assert "missing_time" not in codes_of(extraction)
    other = {**procedure, "subject": {"reference": "Patient/other"}}
    assert not extract_both(triage(other)).features.risk_factors.known_atherosclerosis.present


def test_pci_procedure_is_known_atherosclerosis() -> None:
    procedure = completed_procedure("415070008", id="pci", performedDateTime=at(-60 * 24 * 400))
    risk = extract_both(triage(procedure)).features.risk_factors
    assert risk.known_atherosclerosis.sources == ("Procedure/pci",)


@pytest.mark.parametrize(("system", "code"), [(SNOMED, "162864005"), (ICD10, "Z68.35")])
def test_a_bmi_30_finding_gives_way_to_a_recent_measured_bmi(system: str, code: str) -> None:
    """Was: Synthea's never-resolved "BMI 30+" findings made every such patient obese, even
    with every BMI measured since at or below 30."""
    day = 60 * 24
    finding = condition(system, code, id="f", minutes=-3 * 365 * day)
    lean = observation("39156-5", 27.9, "kg/m2", id="bmi", minutes=-100 * day)
    assert not extract_both(triage(finding, lean)).features.risk_factors.obesity.present
    heavy = observation("39156-5", 33, "kg/m2", id="bmi", minutes=-100 * day)
    risk = extract_both(triage(finding, heavy)).features.risk_factors
    assert risk.obesity.sources == ("Observation/bmi",)
    # No BMI within the year: the finding is all there is, and it counts.
    old_lean = observation("39156-5", 27.9, "kg/m2", id="bmi", minutes=-400 * day)
    risk = extract_both(triage(finding, old_lean)).features.risk_factors
    assert risk.obesity.sources == ("Condition/f",)
    # A coded obesity diagnosis is not a measurement: it counts whatever the BMI.
    diagnosis = condition(SNOMED, "414916001", id="dx")
    risk = extract_both(triage(diagnosis, lean)).features.risk_factors
    assert risk.obesity.sources == ("Condition/dx",)


def test_obesity_from_bmi_over_30() -> None:
    data = triage(observation("39156-5", 33, "kg/m2", id="bmi", minutes=-60 * 24 * 100))
    assert extract_both(data).features.risk_factors.obesity.sources == ("Observation/bmi",)
    lean = triage(observation("39156-5", 24, "kg/m2", id="bmi"))
    assert not extract_both(lean).features.risk_factors.obesity.present


def smoking(answer: str, *, id: str, minutes: float) -> Resource:
    return observation("72166-2", id=id, minutes=minutes,
                       valueCodeableConcept=concept(SNOMED, answer))  # fmt: skip


def test_a_later_unknown_smoking_answer_does_not_undo_a_known_one() -> None:
    day = 60 * 24
    for unknown in ("77176002", "266927001"):  # "unknown", "unknown if ever"
        current_then_unknown = triage(
            smoking("449868002", id="known", minutes=-7 * day),
            smoking(unknown, id="later", minutes=-day),
        )
        smoking_status = extract_both(current_then_unknown).features.risk_factors.smoking
        assert smoking_status.present
        assert smoking_status.sources == ("Observation/known",)
    never_then_unknown = triage(
        smoking("266919005", id="known", minutes=-7 * day),
        smoking("77176002", id="later", minutes=-day),
    )
    assert not extract_both(never_then_unknown).features.risk_factors.smoking.present
    # Any other SNOMED answer says something: it decides.
    current_then_not = triage(
        smoking("449868002", id="known", minutes=-7 * day),
        smoking("8392000", id="later", minutes=-day),  # "non-smoker"
    )
    assert not extract_both(current_then_not).features.risk_factors.smoking.present


@pytest.mark.parametrize(
    "later",
    [
        {"dataAbsentReason": concept("http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                     "asked-unknown")},
        {"valueCodeableConcept": concept("http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
                                         "UNK")},
        {"valueCodeableConcept": {"text": "Never smoker"}},  # free text is not read
        {},  # no answer at all
    ],
)  # fmt: skip
def test_a_later_smoking_answer_that_cannot_be_read_does_not_undo_a_known_one(
    later: dict[str, Any],
) -> None:
    """Was: any answer other than SNOMED "unknown" decided, so a later dataAbsentReason or
    null flavour silently turned a current smoker into a non-smoker."""
    day = 60 * 24
    data = triage(
        smoking("449868002", id="known", minutes=-30 * day),
        observation("72166-2", id="later", minutes=-day, **later),
    )
    assert extract_both(data).features.risk_factors.smoking.sources == ("Observation/known",)


def test_a_later_former_smoker_answer_outdates_an_old_smoking_condition() -> None:
    """Was: a never-resolved "smokes daily" Condition from decades ago outranked every later
    "former smoker" answer (a Synthea sample)."""
    day = 60 * 24
    old = condition(SNOMED, "449868002", id="c", minutes=-5 * 365 * day)
    data = triage(old, smoking("8517006", id="former", minutes=-day))
    assert not extract_both(data).features.risk_factors.smoking.present
    # Recorded within the quit window, it still counts: quit within 3 months.
    recent = condition(SNOMED, "449868002", id="c", minutes=-30 * day)
    data = triage(recent, smoking("8517006", id="former", minutes=-day))
    assert extract_both(data).features.risk_factors.smoking.sources == ("Condition/c",)
    # An answer older than the Condition does not outdate it; nor does "unknown".
    for answer in (smoking("8517006", id="a", minutes=-6 * 365 * day),
                   smoking("77176002", id="a", minutes=-day)):  # fmt: skip
        data = triage(old, answer)
        assert extract_both(data).features.risk_factors.smoking.sources == ("Condition/c",)
    # An undated Condition gives way to a dated answer.
    undated = condition(SNOMED, "449868002", id="c")
    del undated["recordedDate"]
    data = triage(undated, smoking("266919005", id="never", minutes=-day))
    assert not extract_both(data).features.risk_factors.smoking.present


def test_smoking_current_former_and_quit_within_three_months() -> None:
    day = 60 * 24
    current = triage(smoking("449868002", id="s", minutes=-day))
    assert extract_both(current).features.risk_factors.smoking.present
    never = triage(smoking("266919005", id="s", minutes=-day))
    assert not extract_both(never).features.risk_factors.smoking.present
    recent_quit = triage(
        smoking("8517006", id="now", minutes=-day),
        smoking("449868002", id="then", minutes=-60 * day),
    )
    assert extract_both(recent_quit).features.risk_factors.smoking.present
    long_quit = triage(
        smoking("8517006", id="now", minutes=-day),
        smoking("449868002", id="then", minutes=-200 * day),
    )
    assert not extract_both(long_quit).features.risk_factors.smoking.present


def test_family_history_of_premature_coronary_disease() -> None:
    assert extract_both(triage(family("FTH", 52))).features.risk_factors.family_history.present
    assert not extract_both(triage(family("FTH", 70))).features.risk_factors.family_history.present
    cousin = triage(family("COUSN", 40))
    assert not extract_both(cousin).features.risk_factors.family_history.present


@pytest.mark.parametrize(
    ("onset", "unit", "warning"),
    [
        (-5, "a", "implausible_value"),  # "before 65", but not an age
        (200, "a", "implausible_value"),
        (40, "wk", "unknown_unit"),  # not convertible to years: never guessed
        (40, None, "missing_unit"),
    ],
)
def test_an_implausible_or_unconvertible_family_onset_age_is_ignored(
    onset: float, unit: str | None, warning: str
) -> None:
    history = family("FTH", 0)
    history["condition"][0]["onsetAge"] = quantity(onset, unit)
    extraction = extract_both(triage(history))
    assert not extraction.features.risk_factors.family_history.present
    assert (warning, "$.entry[2].resource.condition[0].onsetAge") in [
        (w.code, w.path) for w in extraction.features.warnings
    ]


def test_a_family_onset_range_is_checked_like_an_onset_age() -> None:
    history = family("MTH", 0)
    del history["condition"][0]["onsetAge"]
    history["condition"][0]["onsetRange"] = {"high": quantity(-1, "a")}
    extraction = extract_both(triage(history))
    assert not extraction.features.risk_factors.family_history.present
    assert "implausible_value" in codes_of(extraction)
    history["condition"][0]["onsetRange"] = {"high": quantity(600, "mo")}  # 50 years
    assert extract_both(triage(history)).features.risk_factors.family_history.present


# --- audit attributes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("race", "expected"),
    [
        (["2054-5"], "black_or_african_american"),
        (["2106-3", "2028-9"], "multiple"),
        (["2135-2"], "invalid"),
        (["UNK"], "unknown"),
        ([], "unknown"),
        (None, "unknown"),
    ],
)
def test_race_category(race: list[str] | None, expected: str) -> None:
    assert extract_both(triage(race=race)).audit.race.value == expected


def test_race_given_as_value_codeable_concept() -> None:
    ext = {
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "valueCodeableConcept": concept("urn:oid:2.16.840.1.113883.6.238", "2028-9"),
    }
    assert extract_both(triage(extensions=[ext])).audit.race.value == "asian"


@pytest.mark.parametrize(
    ("ethnicity", "expected"),
    [(["2135-2"], "hispanic_or_latino"), (["2186-5"], "not_hispanic_or_latino"),
     (["ASKU"], "unknown"), (["2106-3"], "invalid")],
)  # fmt: skip
def test_ethnicity_category(ethnicity: list[str], expected: str) -> None:
    assert extract_both(triage(ethnicity=ethnicity)).audit.ethnicity.value == expected


@pytest.mark.parametrize(
    ("birth", "band"),
    [("2010-01-01", "under_18"), ("1990-01-01", "18-44"), ("1965-01-01", "45-64"),
     ("1950-01-01", "65-89"), ("1925-01-01", "90+")],
)  # fmt: skip
def test_age_band(birth: str, band: str) -> None:
    assert extract_both(triage(birth_date=birth)).audit.age_band.value == band


def test_facility_and_pseudonyms() -> None:
    audit = extract_both(triage()).audit
    assert audit.facility == "Organization/ed-north"
    assert len(audit.patient_pseudonym) == 64
    assert "p1" not in audit.patient_pseudonym
    assert audit.encounter_pseudonym is not None
    assert audit.encounter_pseudonym != audit.patient_pseudonym
    location_only = encounter(service_provider=None)
    location_only["location"] = [{"location": {"reference": "Location/bay-3"}}]
    assert extract_both(bundle(patient(), location_only)).audit.facility == "Location/bay-3"


def test_partial_and_zoneless_times_are_accepted() -> None:
    obs = observation("8867-4", 88, "/min", id="hr")
    obs["effectiveDateTime"] = "2025-03-01T09:55"  # no seconds, no zone: read as UTC
    hr = extract(triage(obs), CONFIG, request_time=REQUEST_TIME).features.heart_rate
    assert hr.effective == T0 - timedelta(minutes=5)
    assert hr.value == 88.0


# --- chest pain in any form, and a complaint that cannot be read ------------------------------


@pytest.mark.parametrize(
    ("system", "code"),
    [
        (SNOMED, "426396005"),  # cardiac chest pain
        (SNOMED, "23924001"),  # tight chest
        (SNOMED, "279084009"),  # chest discomfort
        (SNOMED, "371807002"),  # atypical angina
        (SNOMED, "274668005"),  # non-cardiac chest pain: a label at triage, not a diagnosis
        (SNOMED, "394659003"),  # acute coronary syndrome
        (ICD10, "R07.1"),  # chest pain on breathing
        (ICD10, "R07.81"),  # pleurodynia
        (ICD10, "R07.82"),  # intercostal pain
        (ICD10, "I21.4"),  # NSTEMI named as the reason for the visit
    ],
)
def test_chest_pain_in_any_form_is_chest_pain(system: str, code: str) -> None:
    """Was no symptom at all: ESI 4, no ECG, and no warning."""
    data = bundle(patient(), encounter(reasons=[(system, code)]))
    extraction = extract_both(data)
    assert extraction.features.symptoms.chest_pain.present
    assert "presenting_complaint_not_recognised" not in codes_of(extraction)


def test_pain_in_the_throat_is_not_chest_pain() -> None:
    data = bundle(patient(), encounter(reasons=[(ICD10, "R07.0")]))
    assert not extract_both(data).features.symptoms.chest_pain.present


@pytest.mark.parametrize(
    "reason",
    [
        {"text": "chest tightness since this morning"},  # free text only
        {"coding": [{"system": "http://hospital.example/complaints", "code": "CP-07"}]},
        {"coding": [{"system": SNOMED, "code": "125605004"}]},  # fracture: not a symptom here
    ],
)
def test_a_reason_in_which_no_symptom_is_recognised_is_warned(reason: dict[str, Any]) -> None:
    visit = encounter()
    visit["reasonCode"] = [reason]
    extraction = extract_both(bundle(patient(), visit))
    assert not extraction.features.symptoms.any()
    assert ("presenting_complaint_not_recognised", "$.entry[1].resource.reasonCode") in {
        (w.code, w.path) for w in extraction.features.warnings
    }


def test_no_reason_or_a_symptom_recorded_elsewhere_is_not_warned() -> None:
    assert "presenting_complaint_not_recognised" not in codes_of(extract_both(triage()))
    visit = encounter()
    visit["reasonCode"] = [{"text": "unwell"}]
    nausea = condition(SNOMED, "422587007", id="nausea", minutes=-5)
    extraction = extract_both(bundle(patient(), visit, nausea))
    assert extraction.features.symptoms.nausea.present
    assert "presenting_complaint_not_recognised" not in codes_of(extraction)


@pytest.mark.parametrize(
    ("resource", "feature", "value"),
    [
        (blood_pressure(38, 20, id="bp"), "systolic_bp", 38.0),  # profound shock
        (observation("59408-5", 45, "%", id="spo2"), "spo2", 45.0),  # profound hypoxaemia
    ],
)
def test_extreme_but_measurable_values_in_the_dangerous_direction_are_kept(
    resource: Resource, feature: str, value: float
) -> None:
    """Was implausible (limits 40 and 50): the reading was dropped and no danger rule fired."""
    measured = getattr(extract_both(triage(resource)).features, feature)
    assert (measured.status, measured.value) == (Status.PRESENT, value)


def test_st_elevation_within_the_window_is_its_own_finding() -> None:
    """Was merged into ST deviation: no STEMI pathway could be offered."""
    data = triage(
        ecg_observation("164931005", id="ems", minutes=-50),  # pre-hospital ST elevation
        ecg_observation("26141007", id="ed", minutes=-5),  # ST depression now
    )
    features = extract_both(data).features
    assert features.ecg.category is EcgCategory.ST_DEVIATION
    assert features.st_deviation_in_window.sources == ("Observation/ems", "Observation/ed")
    assert features.st_elevation_in_window.sources == ("Observation/ems",)
    depression_only = extract_both(triage(ecg_observation("26141007"))).features
    assert not depression_only.st_elevation_in_window.present
