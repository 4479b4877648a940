"""Cohort -> split -> fit -> thresholds -> held-out evaluation, shared by the CLI and
``build_default``. Splits are by encounter with a seeded permutation: 60% train, 20%
validation (threshold choice), 20% test (reported figures)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .cohort.table import CohortTable
from .evaluate import audit_groups, evaluate_scores, summary_metrics
from .heart import LOW_MAX, heart_score
from .schema import vectorize_many
from .thresholds import Thresholds, choose_thresholds
from .train import ModelKind, TrainedModel, fit_model


@dataclass(frozen=True, slots=True)
class Split:
    train: npt.NDArray[np.int64]
    validation: npt.NDArray[np.int64]
    test: npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PipelineResult:
    model: TrainedModel
    thresholds: Thresholds
    evaluation: dict[str, Any]  # {"model": ..., "heart": ..., "summary": ...}
    test: CohortTable
    test_probabilities: npt.NDArray[np.float64]
    train_table: CohortTable


def split_indices(n: int, seed: int) -> Split:
    order = np.random.default_rng(seed + 7919).permutation(n)
    a, b = int(n * 0.6), int(n * 0.8)
    return Split(np.sort(order[:a]), np.sort(order[a:b]), np.sort(order[b:]))


def labels(table: CohortTable, *, recorded: bool) -> npt.NDArray[np.int64]:
    y = table.recorded_mace if recorded else table.true_mace
    return y.astype(np.int64)


def heart_totals(table: CohortTable) -> npt.NDArray[np.float64]:
    return np.array([heart_score(f).total for f in table.features()], dtype=np.float64)


def run_pipeline(
    table: CohortTable,
    *,
    seed: int,
    train_on_recorded: bool = False,
    kind: ModelKind = ModelKind.LOGISTIC,
    n_boot: int = 200,
) -> PipelineResult:
    """Train on TRUE (default) or RECORDED outcomes; choose thresholds on the validation
    split with the same kind of label; evaluate on the test split against TRUE outcomes."""
    split = split_indices(len(table), seed)
    train, val, test = (table.subset(i) for i in (split.train, split.validation, split.test))
    model = fit_model(
        vectorize_many(train.features()),
        labels(train, recorded=train_on_recorded),
        kind=kind,
        seed=seed,
    )
    p_val = model.predict_proba(vectorize_many(val.features()))
    thresholds = choose_thresholds(
        p_val, labels(val, recorded=train_on_recorded).astype(bool), audit_groups(val)
    )
    p_test = model.predict_proba(vectorize_many(test.features()))
    y_test = test.true_mace
    groups = audit_groups(test)
    model_eval = evaluate_scores(
        p_test,
        p_test < thresholds.low_upper,
        y_test,
        groups,
        probabilities=True,
        n_boot=n_boot,
        seed=seed,
    )
    totals = heart_totals(test)
    heart_eval = evaluate_scores(
        totals, totals <= LOW_MAX, y_test, groups, probabilities=False, n_boot=n_boot, seed=seed
    )
    evaluation = {
        "model": model_eval,
        "heart": heart_eval,
        "summary": summary_metrics(model_eval, heart_eval),
        "thresholds": {"low_upper": thresholds.low_upper, "high_lower": thresholds.high_lower},
        "trained_on": "recorded" if train_on_recorded else "true",
    }
    return PipelineResult(model, thresholds, evaluation, test, p_test, train)


def demographics(table: CohortTable) -> dict[str, dict[str, float]]:
    """Share of each audited group in a table (for the model card)."""
    out: dict[str, dict[str, float]] = {}
    for attribute, values in audit_groups(table).items():
        if attribute == "race_sex":
            continue
        names, counts = np.unique(values, return_counts=True)
        out[attribute] = {
            str(k): float(c) / len(values) for k, c in zip(names, counts, strict=True)
        }
    return out
