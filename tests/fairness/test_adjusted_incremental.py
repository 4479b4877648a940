"""The incremental risk-adjusted rule (``service.fairness.adjusted``) skips groups it has
proven cannot reach the threshold yet; these tests check, after every single decision, that
its verdicts are exactly what the batch rule (``rules.adjusted_verdict``) computes over the
same window, on long streams where the skip limits are actually used: fair, biased near the
warning threshold, and biased past it, with evictions by count, by time and by discard."""

from __future__ import annotations

import random

import pytest

from service.fairness import ATTRIBUTES, FairnessConfig
from service.fairness.decision import HEART_STRATA
from service.fairness.rules import Verdict, adjusted_verdict
from service.fairness.window import FacilityWindow
from tests.fairness.streams import stream


def _batch(window: FacilityWindow, config: FairnessConfig) -> list[Verdict]:
    # The window's live cells are the batch rule's operands; their counts are checked
    # against Fairlearn in test_property.py.
    cells = window._cells  # the test compares the two computations directly
    return [
        adjusted_verdict(
            attribute,
            (
                ((g, c.escalated, c.count) for g, c in cells[attribute, s].groups.items())
                for s in HEART_STRATA
            ),
            config,
        )
        for attribute in ATTRIBUTES
    ]


def _incremental(window: FacilityWindow) -> list[Verdict]:
    return window._adjusted.verdicts()


@pytest.mark.parametrize(
    ("bias", "config"),
    [
        (0.0, FairnessConfig(window_count=400, window_seconds=1e9)),
        (0.10, FairnessConfig(window_count=400, window_seconds=1e9)),
        (0.30, FairnessConfig(window_count=300, window_seconds=1e9)),
        # time eviction: a 4-hour window with a decision a minute keeps ~240
        (0.30, FairnessConfig(window_count=1000, window_seconds=4 * 3600.0)),
        # a low bar, so that many groups cross it back and forth
        (
            0.05,
            FairnessConfig(
                window_count=400, min_group_count=5, warn_difference=0.03, evidence_z=2.0
            ),
        ),
    ],
)
def test_incremental_adjusted_equals_batch_after_every_decision(
    bias: float, config: FairnessConfig
) -> None:
    window = FacilityWindow("facility-a", config)
    fired = 0
    for decision in stream(7, 2500, biased_race="black_or_african_american", bias=bias):
        window.add(decision)
        incremental = _incremental(window)
        assert incremental == _batch(window, config)
        fired += any(v.rule for v in incremental)
    if bias > 0:
        assert fired, "the stream never fired the rule: the test would not exercise it"


def test_incremental_adjusted_equals_batch_with_discards() -> None:
    config = FairnessConfig(window_count=500, window_seconds=1e9, min_group_count=10)
    window = FacilityWindow("facility-a", config)
    rng = random.Random(3)
    kept: list[str] = []
    for decision in stream(11, 2000, biased_race="asian", bias=0.15):
        window.add(decision)
        kept.append(decision.audit_id)
        if rng.random() < 0.2:
            # take back a random recent decision, as a failed audit write does
            assert window.remove(kept.pop(rng.randrange(max(0, len(kept) - 50), len(kept))))
        assert _incremental(window) == _batch(window, config)
