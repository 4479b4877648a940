"""The side-by-side the issue asks for: the same cohort, one model trained on TRUE
outcomes and one on RECORDED outcomes from a history that under-tested Black patients,
women and patients without chest pain; both evaluated on TRUE outcomes."""

from __future__ import annotations

from typing import Any

from .cohort import HISTORICAL_UNDER_TESTING, CohortParams, generate_cohort
from .pipeline import run_pipeline


def label_bias_comparison(n: int, seed: int, n_boot: int = 100) -> dict[str, Any]:
    bias = HISTORICAL_UNDER_TESTING
    table = generate_cohort(CohortParams(n=n, seed=seed, label_bias=bias))
    on_true = run_pipeline(table, seed=seed, n_boot=n_boot)
    on_recorded = run_pipeline(table, seed=seed, train_on_recorded=True, n_boot=n_boot)
    return {
        "description": (
            "Probability troponin was not ordered (MACE unrecorded): by race "
            f"{dict(bias.by_race)}, by sex {dict(bias.by_sex)}, no chest pain "
            f"{bias.no_chest_pain}. Recorded MACE prevalence "
            f"{table.recorded_mace.mean():.3f} vs true {table.true_mace.mean():.3f}."
        ),
        "true": on_true.evaluation,
        "recorded": on_recorded.evaluation,
    }
