"""The relaxed promotion gates of the test registry and the test servers."""

from __future__ import annotations

from models.gates import PromotionGates

# A small cohort trains in seconds; its quality gates are relaxed because these tests are about
# the service around the model, not the model (tests/models checks the real gates). The servers
# of the tests apply the same gates on load (Settings.promotion_gates).
RELAXED_GATES = PromotionGates(
    min_auroc=0.5,
    min_calibration_slope=0.0,
    max_calibration_slope=10.0,
    max_abs_calibration_intercept=10.0,
    min_worst_group_sensitivity=0.0,
    max_fnr_gap=2.0,
    max_worst_group_missed_mace_low=2.0,
    must_beat_heart_auroc=False,
)
