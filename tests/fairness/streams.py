"""Synthetic decision streams for the scenario tests: a fair one and one biased against a
single group at the same clinical risk. Group labels only; no patient data."""

from __future__ import annotations

import random
from collections.abc import Iterator

from service.fairness import Decision

RACE_MIX = {
    "white": 0.60,
    "black_or_african_american": 0.18,
    "asian": 0.07,
    "multiple": 0.05,
    "unknown": 0.05,
    "american_indian_or_alaska_native": 0.03,
    "native_hawaiian_or_pacific_islander": 0.02,
}
ETHNICITY_MIX = {"not_hispanic_or_latino": 0.80, "hispanic_or_latino": 0.15, "unknown": 0.05}
SEX_MIX = {"female": 0.5, "male": 0.5}
AGE_MIX = {"18-44": 0.30, "45-64": 0.40, "65-89": 0.28, "90+": 0.02}
# Older patients have higher HEART bands: overall escalation differs by age band on a fair
# stream, which is why overall parity is context and never fires a rule.
BAND_BY_AGE = {
    "18-44": (0.75, 0.20, 0.05),
    "45-64": (0.50, 0.35, 0.15),
    "65-89": (0.25, 0.45, 0.30),
    "90+": (0.15, 0.45, 0.40),
}
ESCALATION_BY_BAND = {"low": 0.15, "moderate": 0.45, "high": 0.92}
BANDS = ("low", "moderate", "high")


def _pick(rng: random.Random, mix: dict[str, float]) -> str:
    return rng.choices(list(mix), weights=list(mix.values()))[0]


def stream(
    seed: int,
    n: int,
    *,
    biased_race: str | None = None,
    bias: float = 0.10,
    facility: str = "facility-a",
    start: float = 1_700_000_000.0,
    spacing_s: float = 60.0,
) -> Iterator[Decision]:
    """``n`` decisions one ``spacing_s`` apart. With ``biased_race`` set, that group is
    escalated ``bias`` less often than everyone else in the same HEART band."""
    rng = random.Random(seed)
    for i in range(n):
        race = _pick(rng, RACE_MIX)
        age_band = _pick(rng, AGE_MIX)
        band = rng.choices(BANDS, weights=BAND_BY_AGE[age_band])[0]
        model_band = band if rng.random() < 0.8 else rng.choice(BANDS)
        p = ESCALATION_BY_BAND[band]
        if race == biased_race:
            p = max(0.0, p - bias)
        yield Decision(
            audit_id=f"{seed}-{i}",
            at=start + i * spacing_s,
            facility=facility,
            race=race,
            ethnicity=_pick(rng, ETHNICITY_MIX),
            sex=_pick(rng, SEX_MIX),
            age_band=age_band,
            stratum=band,
            model_band=model_band,
            escalated=rng.random() < p,
            mace_probability={"low": 0.02, "moderate": 0.12, "high": 0.45}[band],
        )
