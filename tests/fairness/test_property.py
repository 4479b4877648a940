"""The incremental figures equal Fairlearn's on random windows (overall and within stratum),
including empty and single-member groups, and after eviction by count and by time."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    selection_rate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.assessment import ParityResult
from service.fairness import ATTRIBUTES, Decision, FairnessConfig, FairnessMonitor
from service.fairness.decision import BANDS, OVERALL
from service.fairness.stats import parity_difference, parity_ratio

TOL = 1e-12
# A few labels per attribute keep groups small, so single-member and empty groups are common.
RACES = ["white", "asian", "black_or_african_american"]
SEXES = ["female", "male"]


@st.composite
def decisions(draw: st.DrawFn, max_size: int = 40) -> list[Decision]:
    n = draw(st.integers(min_value=0, max_value=max_size))
    out = []
    at = 1_000_000.0
    for i in range(n):
        at += draw(st.sampled_from([0.0, 1.0, 30.0]))
        out.append(
            Decision(
                audit_id=f"a{i}",
                at=at,
                facility="f",
                race=draw(st.sampled_from(RACES)),
                ethnicity=draw(st.sampled_from(["hispanic_or_latino", "unknown"])),
                sex=draw(st.sampled_from(SEXES)),
                age_band=draw(st.sampled_from(["18-44", "65-89"])),
                stratum=draw(st.sampled_from(BANDS)),
                model_band=draw(st.sampled_from(BANDS)),
                escalated=draw(st.booleans()),
            )
        )
    return out


def _expected_window(rows: list[Decision], config: FairnessConfig) -> list[Decision]:
    kept = rows[-config.window_count :] if rows else []
    if not kept:
        return kept
    # time eviction is relative to each new decision; with non-decreasing times the last wins
    cutoff = rows[-1].at - config.window_seconds
    return [d for d in kept if d.at >= cutoff]


def _check(monitor: FairnessMonitor, window: list[Decision]) -> None:
    views = monitor.views()
    if not window:
        assert all(v.size == 0 for v in views)
        assert all(not v.parity for v in views)
        return
    (view,) = views
    assert view.size == len(window)
    cells = {(p.attribute, p.stratum): p for p in view.parity}
    y = np.array([int(d.escalated) for d in window])
    for attribute in ATTRIBUTES:
        sf = pd.Series([d.group(attribute) for d in window], name=attribute)
        overall = cells[attribute, OVERALL]
        rates = {g.group: g.rate for g in overall.groups}
        mf = MetricFrame(metrics=selection_rate, y_true=y, y_pred=y, sensitive_features=sf)
        assert set(rates) == set(mf.by_group.index)
        for group, rate in mf.by_group.items():
            assert abs(rates[group] - rate) <= TOL
        values = list(rates.values())
        dpd = demographic_parity_difference(y, y, sensitive_features=sf)
        dpr = demographic_parity_ratio(y, y, sensitive_features=sf)
        difference = parity_difference(values)
        assert difference is not None
        assert abs(difference - dpd) <= TOL
        ours_ratio = parity_ratio(values)
        assert (ours_ratio is None) == math.isnan(dpr)
        if ours_ratio is not None:
            assert abs(ours_ratio - dpr) <= TOL
        if len(values) >= 2:
            assert overall.difference == parity_difference(values)
            assert overall.ratio == ours_ratio
        else:  # the contract: None when fewer than two groups have data
            assert overall.difference is None
            assert overall.ratio is None
        _check_strata(cells, attribute, window, y, sf)


def _check_strata(
    cells: dict[tuple[str, str], ParityResult],
    attribute: str,
    window: list[Decision],
    y: np.ndarray,
    sf: pd.Series,
) -> None:
    for name, labels in (
        ("stratum", [d.stratum for d in window]),
        ("model", [f"model:{d.model_band}" for d in window]),
    ):
        cf = pd.Series(labels, name=name)
        mf = MetricFrame(
            metrics=selection_rate, y_true=y, y_pred=y, sensitive_features=sf, control_features=cf
        )
        differences, ratios = mf.difference(), mf.ratio()
        for stratum in set(labels):
            cell = cells[attribute, stratum]
            rates = {g.group: g.rate for g in cell.groups}
            expected = mf.by_group.loc[stratum].dropna()
            assert set(rates) == set(expected.index)
            for group, rate in expected.items():
                assert abs(rates[group] - rate) <= TOL
            difference = parity_difference(list(rates.values()))
            assert difference is not None
            assert abs(difference - differences.loc[stratum]) <= TOL
            ratio = parity_ratio(list(rates.values()))
            assert (ratio is None) == math.isnan(ratios.loc[stratum])
            if ratio is not None:
                assert abs(ratio - ratios.loc[stratum]) <= TOL


SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(rows=decisions())
def test_incremental_equals_fairlearn(rows: list[Decision]) -> None:
    config = FairnessConfig(window_count=1000, window_seconds=1e9, min_group_count=2)
    monitor = FairnessMonitor(config, clock=lambda: rows[-1].at if rows else 0.0)
    for d in rows:
        monitor.record(d)
    _check(monitor, rows)


@SETTINGS
@given(
    rows=decisions(),
    window_count=st.integers(1, 15),
    window_seconds=st.sampled_from([10.0, 45.0, 1e9]),
)
def test_eviction_keeps_figures_equal(
    rows: list[Decision], window_count: int, window_seconds: float
) -> None:
    config = FairnessConfig(window_count=window_count, window_seconds=window_seconds)
    monitor = FairnessMonitor(config, clock=lambda: rows[-1].at if rows else 0.0)
    for d in rows:
        monitor.record(d)
    _check(monitor, _expected_window(rows, config))


@SETTINGS
@given(rows=decisions(), data=st.data())
def test_discard_takes_the_decision_back(rows: list[Decision], data: st.DataObject) -> None:
    config = FairnessConfig(window_count=1000, window_seconds=1e9)
    monitor = FairnessMonitor(config, clock=lambda: rows[-1].at if rows else 0.0)
    for d in rows:
        monitor.record(d)
    dropped = set(
        data.draw(st.sets(st.sampled_from([d.audit_id for d in rows]))) if rows else set()
    )
    for audit_id in dropped:
        assert monitor.discard(audit_id)
    assert not monitor.discard("never-recorded")
    _check(monitor, [d for d in rows if d.audit_id not in dropped])


def test_empty_fairlearn_input_is_an_error_and_ours_is_none() -> None:
    with pytest.raises(ValueError, match="need at least one array"):
        demographic_parity_difference(np.zeros(0), np.zeros(0), sensitive_features=np.array([]))
    assert parity_difference([]) is None
    assert parity_ratio([]) is None
