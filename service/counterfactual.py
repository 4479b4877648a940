"""The "same story, different patient" check.

The encounter is re-assessed as if the patient's race, ethnicity and sex were each of a grid
of values (default: the five OMB races x Hispanic / not Hispanic x female / male = 20
variants). ``fhir_adapters`` parses the bundle once and derives each variant (sex changes the
sex-specific troponin limit; race and ethnicity reach only the audit attributes). The variants
are vectorised together, scored in ONE batched ONNX call, and run through the same HEART
scoring and recommendation policy as the real assessment.

``race_ethnicity_invariant``: within each sex, every race x ethnicity variant gets the same
band, ESI and actions. It must always hold: race and ethnicity are not model inputs.
``sex_invariant``: every variant gets the same band, ESI and actions. It may be false where the
clinical rules use sex (sex-specific troponin limits); it is reported, not hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import product

from fhir_adapters.derive import DemographicOverride
from fhir_adapters.features import ClinicalFeatures, ClinicalSex, Ethnicity, Extraction, Race
from models.heart import heart_score
from models.schema import vectorize_many
from service.assessment import Counterfactual, CounterfactualVariant, Recommendation
from service.heart_basis import heart_basis
from service.policy import BandThresholds, recommend
from service.scoring import Scorer

OMB_RACES: tuple[Race, ...] = (
    Race.AMERICAN_INDIAN_OR_ALASKA_NATIVE,
    Race.ASIAN,
    Race.BLACK_OR_AFRICAN_AMERICAN,
    Race.NATIVE_HAWAIIAN_OR_PACIFIC_ISLANDER,
    Race.WHITE,
)
ETHNICITIES: tuple[Ethnicity, ...] = (
    Ethnicity.HISPANIC_OR_LATINO,
    Ethnicity.NOT_HISPANIC_OR_LATINO,
)
SEXES: tuple[ClinicalSex, ...] = (ClinicalSex.FEMALE, ClinicalSex.MALE)


def variant_grid(
    races: Sequence[Race] = OMB_RACES,
    ethnicities: Sequence[Ethnicity] = ETHNICITIES,
    sexes: Sequence[ClinicalSex] = SEXES,
) -> tuple[DemographicOverride, ...]:
    return tuple(DemographicOverride(r, e, s) for r, e, s in product(races, ethnicities, sexes))


def _decision(rec: Recommendation) -> tuple[str, int, tuple[str, ...]]:
    return (rec.band.value, rec.esi_level, rec.actions)


def evaluate(
    actual: Recommendation,
    variants: Sequence[Extraction],
    scorer: Scorer,
    thresholds: BandThresholds,
    escalation_max_esi: int,
) -> Counterfactual:
    """Score and decide every variant extraction; compare each with ``actual``."""
    if not variants:
        return Counterfactual(race_ethnicity_invariant=True, sex_invariant=True, variants=())
    # Variants whose ClinicalFeatures are equal get the same model input, HEART score and
    # policy result (all are functions of ClinicalFeatures alone), so each distinct value is
    # scored and decided once. Equality is checked on the derived features, so a variant that
    # race or ethnicity did change would be scored on its own. Variants of one sex share one
    # features object: grouping by identity first leaves a couple of equality checks instead
    # of hashing twenty deep frozen values.
    slot_of: dict[int, int] = {}
    distinct: list[ClinicalFeatures] = []
    for extraction in variants:
        features = extraction.features
        if id(features) in slot_of:
            continue
        slot = next((i for i, seen in enumerate(distinct) if seen == features), len(distinct))
        if slot == len(distinct):
            distinct.append(features)
        slot_of[id(features)] = slot
    probabilities = scorer.probabilities(vectorize_many(distinct))
    decided: list[tuple[float, Recommendation]] = []
    for features, p in zip(distinct, probabilities, strict=True):
        heart = heart_basis(heart_score(features))
        rec = recommend(features, float(p), thresholds, heart, escalation_max_esi)
        decided.append((float(p), rec))
    results: list[CounterfactualVariant] = []
    decisions_by_sex: dict[str, set[tuple[str, int, tuple[str, ...]]]] = {}
    for extraction in variants:
        p, rec = decided[slot_of[id(extraction.features)]]
        decision = _decision(rec)
        decisions_by_sex.setdefault(extraction.audit.sex.value, set()).add(decision)
        actions_changed = rec.actions != actual.actions
        results.append(
            CounterfactualVariant(
                race=extraction.audit.race.value,
                ethnicity=extraction.audit.ethnicity.value,
                sex=extraction.audit.sex.value,
                band=rec.band,
                esi_level=rec.esi_level,
                mace_probability=p,
                actions_changed=actions_changed,
                differs=decision != _decision(actual),
            )
        )
    all_decisions = set().union(*decisions_by_sex.values())
    return Counterfactual(
        race_ethnicity_invariant=all(len(d) == 1 for d in decisions_by_sex.values()),
        sex_invariant=len(all_decisions) == 1,
        variants=tuple(results),
    )
