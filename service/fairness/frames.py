"""The full (batch) Fairlearn audit of one facility's window, as a JSON-able dict.

Used by the background reporter; far too slow for the request path (a bootstrapped
MetricFrame over a 1,000-row window takes seconds), which is why the request path keeps
incremental counts instead and the tests prove both give the same figures.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
from fairlearn.metrics import MetricFrame, false_negative_rate, selection_rate

from service.fairness.decision import ATTRIBUTES, Decision

CI_QUANTILES = [0.025, 0.975]
JsonDict = dict[str, Any]


def window_frame(rows: Sequence[tuple[Decision, bool | None]]) -> pd.DataFrame:
    """One row per decision: the audited attributes, the HEART stratum, escalation, outcome."""
    records = []
    for decision, outcome in rows:
        record: dict[str, object] = {a: decision.group(a) for a in ATTRIBUTES}
        record["stratum"] = decision.stratum
        record["escalated"] = int(decision.escalated)
        record["outcome"] = math.nan if outcome is None else float(outcome)
        record["mace_probability"] = (
            math.nan if decision.mace_probability is None else decision.mace_probability
        )
        records.append(record)
    columns = [*ATTRIBUTES, "stratum", "escalated", "outcome", "mace_probability"]
    return pd.DataFrame.from_records(records, columns=columns)


@contextmanager
def _quiet_empty_resamples() -> Iterator[None]:
    """A small group can be absent from every bootstrap resample; numpy then warns "All-NaN
    slice encountered" and the interval is NaN, reported as None. That is expected here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning)
        yield


def attribute_report(frame: pd.DataFrame, attribute: str, n_boot: int, seed: int) -> JsonDict:
    """Selection rate by group (overall and within each HEART stratum), the missed-MACE rate
    by group where MACE outcomes exist, and calibration by group — each with bootstrap CIs."""
    with _quiet_empty_resamples():
        return _attribute_report(frame, attribute, n_boot, seed)


def _attribute_report(frame: pd.DataFrame, attribute: str, n_boot: int, seed: int) -> JsonDict:
    report: JsonDict = {
        "selection_rate": _selection(frame, attribute, None, n_boot, seed),
        "selection_rate_by_stratum": _selection(frame, attribute, "stratum", n_boot, seed),
    }
    mace = frame[frame["outcome"] == 1.0]
    if len(mace):
        fnr = MetricFrame(
            metrics=false_negative_rate,
            y_true=mace["outcome"].astype(int),
            y_pred=mace["escalated"],
            sensitive_features=mace[[attribute]],
            n_boot=n_boot,
            ci_quantiles=CI_QUANTILES,
            random_state=seed,
        )
        report["false_negative_rate"] = _summary(fnr, mace.groupby(attribute).size())
    outcomes = frame[frame["outcome"].notna()]
    if len(outcomes):
        grouped = outcomes.groupby(attribute)
        report["calibration"] = {
            str(group): {
                "outcomes": len(part),
                "mean_predicted": _num(part["mace_probability"].mean()),
                "observed_mace_rate": _num(part["outcome"].mean()),
            }
            for group, part in grouped
        }
    return report


def _selection(
    frame: pd.DataFrame, attribute: str, control: str | None, n_boot: int, seed: int
) -> JsonDict:
    metric_frame = MetricFrame(
        metrics=selection_rate,
        y_true=frame["escalated"],
        y_pred=frame["escalated"],
        sensitive_features=frame[[attribute]],
        control_features=None if control is None else frame[[control]],
        n_boot=n_boot,
        ci_quantiles=CI_QUANTILES,
        random_state=seed,
    )
    if control is None:
        return _summary(metric_frame, frame.groupby(attribute).size())
    sizes = frame.groupby([control, attribute]).size()
    by_group = metric_frame.by_group
    low, high = metric_frame.by_group_ci
    difference, ratio = metric_frame.difference(), metric_frame.ratio()
    difference_ci, ratio_ci = metric_frame.difference_ci(), metric_frame.ratio_ci()
    result: JsonDict = {}
    for stratum in sorted({str(key[0]) for key in by_group.index}):
        groups = {}
        for (s, group), rate in by_group.items():
            if s != stratum or math.isnan(rate):
                continue
            groups[str(group)] = {
                "rate": _num(rate),
                "ci": [_num(low.loc[(s, group)]), _num(high.loc[(s, group)])],
                "count": int(sizes.loc[(s, group)]),
            }
        result[stratum] = {
            "by_group": groups,
            "difference": _num(difference.loc[stratum]),
            "difference_ci": [_num(ci.loc[stratum]) for ci in difference_ci],
            "ratio": _num(ratio.loc[stratum]),
            "ratio_ci": [_num(ci.loc[stratum]) for ci in ratio_ci],
        }
    return result


def _summary(metric_frame: MetricFrame, sizes: pd.Series) -> JsonDict:
    low, high = metric_frame.by_group_ci
    return {
        "by_group": {
            str(group): {
                "rate": _num(rate),
                "ci": [_num(low.loc[group]), _num(high.loc[group])],
                "count": int(sizes.loc[group]),
            }
            for group, rate in metric_frame.by_group.items()
        },
        "difference": _num(metric_frame.difference()),
        "difference_ci": [_num(v) for v in metric_frame.difference_ci()],
        "ratio": _num(metric_frame.ratio()),
        "ratio_ci": [_num(v) for v in metric_frame.ratio_ci()],
    }


def _num(value: Any) -> float | None:
    """A JSON-able float: NaN (Fairlearn's 'undefined', e.g. 0/0 ratio) becomes None."""
    number = float(value)
    return None if math.isnan(number) else number
