"""Held-out evaluation against TRUE outcomes, overall and by audited group.

"Escalated" here means banded MODERATE or HIGH (not eligible for the low-risk pathway), so
the false-negative rate is the share of MACE banded LOW and sensitivity = 1 - FNR. The
missed-MACE rate in the low band is MACE among those banded LOW (= 1 - NPV). Per-group point
figures come from Fairlearn ``MetricFrame``; rates carry percentile bootstrap 95% intervals.
The same figures are computed for HEART (LOW = total <= 3) on the same rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from fairlearn.metrics import MetricFrame
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from .calibration import calibration_intercept, calibration_slope
from .cohort.table import CohortTable

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]

AUDIT_ATTRIBUTES = ("race", "ethnicity", "sex", "race_sex", "age_band")
MIN_GROUP_MACE = 20  # groups with fewer MACE are reported but not used for worst-case / gaps
# A missed-MACE rate over fewer low-band encounters than this is one event away from any
# value (1/50 = 2%): reported with its interval, not used as the worst case.
MIN_GROUP_LOW_BAND = 100


def audit_groups(table: CohortTable) -> dict[str, StrArray]:
    race, sex = table.race_labels(), table.sex_labels()
    return {
        "race": race,
        "ethnicity": table.ethnicity_labels(),
        "sex": sex,
        "race_sex": np.char.add(np.char.add(race, "|"), sex),
        "age_band": table.age_band_labels(),
    }


def _safe_auroc(y: BoolArray, score: FloatArray) -> float | None:
    return float(roc_auc_score(y, score)) if 0 < y.sum() < len(y) else None


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _point_rates(y: BoolArray, low: BoolArray) -> dict[str, float | None]:
    mace = int(y.sum())
    missed = int((y & low).sum())
    n_low = int(low.sum())
    return {
        "n": float(len(y)),
        "mace": float(mace),
        "prevalence": _rate(mace, len(y)),
        "sensitivity": _rate(mace - missed, mace),
        "fnr": _rate(missed, mace),
        "npv": _rate(n_low - missed, n_low),
        "missed_mace_low": _rate(missed, n_low),
        "low_band_share": _rate(n_low, len(y)),
        "escalation_rate": _rate(len(y) - n_low, len(y)),
    }


def _bootstrap_rates(
    y: BoolArray, low: BoolArray, n_boot: int, rng: np.random.Generator
) -> dict[str, tuple[float, float] | None]:
    n = len(y)
    if n == 0 or n_boot == 0:
        return {}
    idx = rng.integers(0, n, size=(n_boot, n))
    yb, lb = y[idx], low[idx]
    mace = yb.sum(axis=1)
    missed = (yb & lb).sum(axis=1)
    n_low = lb.sum(axis=1)
    out: dict[str, tuple[float, float] | None] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        series = {
            "sensitivity": (mace - missed) / mace,
            "fnr": missed / mace,
            "missed_mace_low": missed / n_low,
            "escalation_rate": (n - n_low) / n,
        }
    for key, values in series.items():
        finite = values[np.isfinite(values)]
        out[key] = (
            (float(np.quantile(finite, 0.025)), float(np.quantile(finite, 0.975)))
            if finite.size
            else None
        )
    return out


def _metric_frame(
    y: BoolArray, score: FloatArray, low: BoolArray, labels: StrArray
) -> dict[str, dict[str, Any]]:
    """Per-group point metrics through Fairlearn's MetricFrame."""

    def rate_metric(key: str) -> Callable[[Any, Any], float]:
        def metric(y_true: Any, low_pred: Any) -> float:
            value = _point_rates(np.asarray(y_true, bool), np.asarray(low_pred, bool))[key]
            return float("nan") if value is None else value

        return metric

    keys = (
        "n",
        "mace",
        "prevalence",
        "sensitivity",
        "fnr",
        "npv",
        "missed_mace_low",
        "escalation_rate",
    )
    frame = MetricFrame(
        metrics={k: rate_metric(k) for k in keys},
        y_true=y,
        y_pred=low,
        sensitive_features=labels,
    )
    by_group: dict[str, dict[str, Any]] = {}
    for group, row in frame.by_group.iterrows():
        values = {k: (None if np.isnan(v) else float(v)) for k, v in row.items()}
        mask = labels == group
        values["auroc"] = _safe_auroc(y[mask], score[mask])
        by_group[str(group)] = values
    return by_group


def evaluate_scores(
    score: FloatArray,
    low: BoolArray,
    y: BoolArray,
    groups: Mapping[str, StrArray],
    *,
    probabilities: bool,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate a score (a probability, or HEART total) and its LOW band on true outcomes."""
    y = np.asarray(y, dtype=bool)
    low = np.asarray(low, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    rng = np.random.default_rng(seed)
    overall: dict[str, Any] = {
        **_point_rates(y, low),
        "auroc": _safe_auroc(y, score),
        "auprc": float(average_precision_score(y, score)),
        "ci": _bootstrap_rates(y, low, n_boot, rng),
    }
    if n_boot:
        idx = rng.integers(0, len(y), size=(n_boot, len(y)))
        aucs = [a for a in (_safe_auroc(y[i], score[i]) for i in idx) if a is not None]
        overall["ci"]["auroc"] = (float(np.quantile(aucs, 0.025)), float(np.quantile(aucs, 0.975)))
    if probabilities:
        overall["brier"] = float(brier_score_loss(y, score))
        overall["calibration_slope"] = calibration_slope(score, y)
        overall["calibration_intercept"] = calibration_intercept(score, y)
    by_attribute: dict[str, Any] = {}
    for attribute, labels in groups.items():
        per_group = _metric_frame(y, score, low, labels)
        for group, values in per_group.items():
            mask = labels == group
            values["ci"] = _bootstrap_rates(y[mask], low[mask], n_boot, rng)
            if probabilities and 0 < y[mask].sum() < mask.sum():
                values["mean_predicted"] = float(score[mask].mean())
                values["calibration_intercept"] = calibration_intercept(score[mask], y[mask])
        eligible = {g: v for g, v in per_group.items() if (v["mace"] or 0) >= MIN_GROUP_MACE}
        fnrs = [v["fnr"] for v in eligible.values() if v["fnr"] is not None]
        by_attribute[attribute] = {
            "groups": per_group,
            "fnr_gap": (max(fnrs) - min(fnrs)) if len(fnrs) >= 2 else None,
            "worst_sensitivity": min(
                (v["sensitivity"] for v in eligible.values() if v["sensitivity"] is not None),
                default=None,
            ),
            "worst_missed_mace_low": max(
                (
                    v["missed_mace_low"]
                    for v in per_group.values()
                    if v["missed_mace_low"] is not None
                    and (v["n"] or 0) * (1 - (v["escalation_rate"] or 0)) >= MIN_GROUP_LOW_BAND
                ),
                default=None,
            ),
        }
    return {"overall": overall, "by_attribute": by_attribute}


def summary_metrics(
    model_eval: Mapping[str, Any], heart_eval: Mapping[str, Any]
) -> dict[str, float]:
    """The flat numbers the manifest records and the promotion gates read."""
    o = model_eval["overall"]
    attrs = model_eval["by_attribute"].values()
    gaps = [a["fnr_gap"] for a in attrs if a["fnr_gap"] is not None]
    sens = [a["worst_sensitivity"] for a in attrs if a["worst_sensitivity"] is not None]
    missed = [a["worst_missed_mace_low"] for a in attrs if a["worst_missed_mace_low"] is not None]
    out = {
        "auroc": o["auroc"],
        "auprc": o["auprc"],
        "brier": o["brier"],
        "calibration_slope": o["calibration_slope"],
        "calibration_intercept": o["calibration_intercept"],
        "sensitivity_low": o["sensitivity"],
        "npv_low": o["npv"],
        "missed_mace_low": o["missed_mace_low"],
        "low_band_share": o["low_band_share"],
        "fnr_gap": max(gaps) if gaps else None,
        "worst_group_sensitivity": min(sens) if sens else None,
        # The whole population is always one of the groups: with small test sets no
        # subgroup may reach MIN_GROUP_LOW_BAND and the gate must still have a number.
        "worst_group_missed_mace_low": max(
            [*missed, o["missed_mace_low"]] if o["missed_mace_low"] is not None else missed,
            default=None,
        ),
        "heart_auroc": heart_eval["overall"]["auroc"],
        "heart_sensitivity_low": heart_eval["overall"]["sensitivity"],
        "heart_missed_mace_low": heart_eval["overall"]["missed_mace_low"],
        "n_test": o["n"],
    }
    return {k: float(v) for k, v in out.items() if v is not None}
