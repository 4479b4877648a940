from __future__ import annotations

import threading
from typing import Any

import pytest

from service.assessment import AuditStatus
from service.fairness import Decision, FairnessConfig, FairnessMonitor
from service.fairness.stats import newcombe_lower, wilson_interval
from service.shadow import worst_within_stratum_parity
from tests.fairness.streams import stream

Z = 1.959963984540054


def make(
    i: int,
    *,
    race: str = "white",
    sex: str = "female",
    stratum: str = "low",
    escalated: bool = False,
    at: float | None = None,
    facility: str = "f",
    probability: float | None = None,
    age_band: str = "45-64",
) -> Decision:
    return Decision(
        audit_id=f"id-{facility}-{i}",
        at=float(i) if at is None else at,
        facility=facility,
        race=race,
        ethnicity="unknown",
        sex=sex,
        age_band=age_band,
        stratum=stratum,
        model_band=stratum,
        escalated=escalated,
        mace_probability=probability,
    )


def test_wilson_matches_known_values() -> None:
    low, high = wilson_interval(5, 10, Z)
    assert low == pytest.approx(0.2365930, abs=1e-6)
    assert high == pytest.approx(0.7634070, abs=1e-6)
    assert wilson_interval(0, 10, Z)[0] == 0.0
    assert wilson_interval(0, 0, Z) == (0.0, 1.0)


def test_newcombe_lower_bound_matches_the_published_example() -> None:
    # Newcombe (1998), example (a): 56/70 vs 48/80 -> 95% interval 0.0524 to 0.3339
    assert newcombe_lower((56, 70), (48, 80), Z) == pytest.approx(0.0524, abs=1e-4)


def test_decision_rejects_labels_outside_the_fixed_sets() -> None:
    with pytest.raises(ValueError, match="race"):
        make(0, race="martian")


def _gap(monitor: FairnessMonitor, n: int, low_rate: float, high_rate: float) -> None:
    """n decisions per sex in the low stratum with the given escalation rates."""
    for i in range(n):
        monitor.record(make(2 * i, sex="female", escalated=i < n * low_rate))
        monitor.record(make(2 * i + 1, sex="male", escalated=i < n * high_rate))


def test_a_gap_without_enough_data_is_insufficient_never_alert() -> None:
    config = FairnessConfig(min_group_count=30)
    monitor = FairnessMonitor(config, clock=lambda: 0.0)
    _gap(monitor, 20, 0.0, 1.0)  # a 100-point gap on 20 + 20 decisions
    audit = monitor.record(make(999, sex="female"))
    assert audit.status is AuditStatus.INSUFFICIENT_DATA
    assert audit.rule.startswith("insufficient_data")


@pytest.mark.parametrize("few", [1, 2, 3, 29])
def test_a_group_against_too_few_others_is_never_a_gap(few: int) -> None:
    """Was ALERT (adjusted parity): 900 escalated women against 2 non-escalated men, where
    neither two-group comparison has enough data on both sides."""
    monitor = FairnessMonitor(FairnessConfig(), clock=lambda: 2000.0)
    labels = ("A", "white", "not_hispanic_or_latino")
    audit = None
    for i in range(900):
        audit = monitor.record(
            Decision(f"w{i}", 1000 + i * 1e-3, *labels, "female", "45-64", "high", "high", True)
        )
    for i in range(few):
        audit = monitor.record(
            Decision(f"m{i}", 1001 + i * 1e-3, *labels, "male", "45-64", "high", "high", False)
        )
    assert audit is not None
    assert audit.status is AuditStatus.INSUFFICIENT_DATA, audit.rule


def test_an_evidenced_gap_alerts_and_names_the_groups() -> None:
    monitor = FairnessMonitor(FairnessConfig(min_group_count=30), clock=lambda: 0.0)
    _gap(monitor, 200, 0.10, 0.50)
    audit = monitor.record(make(9999, sex="female"))
    assert audit.status is AuditStatus.ALERT
    assert {"sex=female", "sex=male"} <= set(audit.groups_involved)
    cell = next(p for p in audit.parity if p.attribute == "sex" and p.stratum == "low")
    assert cell.sufficient
    assert cell.difference == pytest.approx(0.4, abs=0.01)


def test_a_small_evidenced_gap_warns() -> None:
    monitor = FairnessMonitor(FairnessConfig(min_group_count=30), clock=lambda: 0.0)
    _gap(monitor, 400, 0.10, 0.25)
    assert monitor.record(make(9999, sex="female")).status is AuditStatus.WARN


def test_equal_rates_are_ok_and_overall_gaps_alone_never_fire() -> None:
    monitor = FairnessMonitor(
        FairnessConfig(min_group_count=30, window_count=5000), clock=lambda: 0.0
    )
    # same rate within each stratum, but women are mostly low risk: a large overall gap
    i = 0
    for stratum, rate, women, men in (("low", 0.1, 300, 50), ("high", 0.9, 50, 300)):
        for sex, count in (("female", women), ("male", men)):
            for k in range(count):
                i += 1
                monitor.record(
                    make(
                        i,
                        sex=sex,
                        stratum=stratum,
                        escalated=k < count * rate,
                        race="white" if k % 2 else "asian",
                    )
                )
    (view,) = monitor.views()
    overall = next(p for p in view.parity if p.attribute == "sex" and p.stratum == "all")
    assert overall.difference is not None
    assert overall.difference > 0.5
    assert view.verdict.status < AuditStatus.WARN  # ethnicity has one group: INSUFFICIENT


def test_an_escalation_gap_by_age_band_is_reported_but_never_fires() -> None:
    """Was ALERT on the reference cohort: within one HEART band the model rightly escalates
    older patients more (age is a risk factor beyond HEART's three age steps)."""
    monitor = FairnessMonitor(FairnessConfig(min_group_count=30), clock=lambda: 0.0)
    i = 0
    for age_band, rate in (("18-44", 0.10), ("45-64", 0.50)):
        for k in range(400):
            i += 1
            # both sexes and races alike in each age band: only age differs
            sex, race = ("female", "white") if k % 2 else ("male", "asian")
            escalated = (k // 2) < 200 * rate
            monitor.record(make(i, sex=sex, race=race, age_band=age_band, escalated=escalated))
    (view,) = monitor.views()
    by_age = next(p for p in view.parity if p.attribute == "age_band" and p.stratum == "low")
    assert by_age.difference == pytest.approx(0.4)
    assert view.verdict.status < AuditStatus.WARN, view.verdict.rule
    # nor does it make a shadow candidate look less fair
    assert worst_within_stratum_parity(monitor.views()) == pytest.approx(0.0)


def test_missed_mace_by_age_band_still_fires() -> None:
    """Equal opportunity holds whatever the risk: MACE in the young missed far more often."""
    config = FairnessConfig(min_group_count=30, min_mace_count=20, window_count=5000)
    monitor = FairnessMonitor(config, clock=lambda: 0.0)
    i = 0
    for age_band, missed in (("18-44", 120), ("45-64", 10)):
        for k in range(200):
            i += 1
            monitor.record(make(i, age_band=age_band, escalated=k >= missed))
            monitor.record_outcome(f"id-f-{i}", mace=True)
    (view,) = monitor.views()
    assert view.verdict.status is AuditStatus.ALERT
    assert view.verdict.rule.startswith("missed_mace_alert")
    assert set(view.verdict.groups) == {"age_band=18-44", "age_band=45-64"}


def test_count_and_time_eviction(config: FairnessConfig) -> None:
    monitor = FairnessMonitor(config, clock=lambda: 10_000.0)
    for i in range(80):
        monitor.record(make(i, at=10_000.0 - 80 + i))
    assert monitor.views()[0].size == config.window_count
    late = FairnessMonitor(config, clock=lambda: 10_000.0 + config.window_seconds + 1)
    late.restore((make(i, at=10_000.0), None) for i in range(3))
    assert late.views()[0].size == 0


def test_outcomes_give_missed_mace_and_calibration(config: FairnessConfig) -> None:
    monitor = FairnessMonitor(config, clock=lambda: 0.0)
    for i in range(10):
        monitor.record(make(i, escalated=i < 4, probability=0.2))
    for i in range(10):
        assert monitor.record_outcome(f"id-f-{i}", mace=i < 6)
    assert monitor.record_outcome("id-f-0", mace=True)  # idempotent repeat
    assert not monitor.record_outcome("unknown", mace=True)
    (view,) = monitor.views()
    group = next(p for p in view.parity if p.attribute == "sex" and p.stratum == "all").groups[0]
    assert (group.outcomes, group.mace, group.missed) == (10, 6, 2)
    assert group.false_negative_rate == pytest.approx(2 / 6)
    assert group.mean_predicted == pytest.approx(0.2)
    assert group.observed_mace_rate == pytest.approx(0.6)


def test_missed_mace_gap_alerts_when_escalation_rates_are_equal() -> None:
    config = FairnessConfig(min_group_count=30, min_mace_count=20, window_count=5000)
    monitor = FairnessMonitor(config, clock=lambda: 0.0)
    i = 0
    # 190 of 400 escalated for both sexes, but women with MACE are missed 60%, men 5%
    for sex, missed, escalated_without_mace in (("female", 120, 110), ("male", 10, 0)):
        for mace, escalated_count in ((True, 200 - missed), (False, escalated_without_mace)):
            for k in range(200):
                i += 1
                monitor.record(make(i, sex=sex, escalated=k < escalated_count))
                monitor.record_outcome(f"id-f-{i}", mace=mace)
    (view,) = monitor.views()
    assert view.verdict.status is AuditStatus.ALERT
    assert view.verdict.rule.startswith("missed_mace_alert")
    assert set(view.verdict.groups) == {"sex=female", "sex=male"}


def test_facilities_are_separate_and_concurrent_records_are_counted() -> None:
    monitor = FairnessMonitor(FairnessConfig(window_count=100_000), clock=lambda: 0.0)

    def work(facility: str) -> None:
        for i in range(500):
            monitor.record(make(i, facility=facility, escalated=i % 3 == 0))

    threads = [threading.Thread(target=work, args=(f"f{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sizes = {v.facility: v.size for v in monitor.views()}
    assert sizes == {"f0": 500, "f1": 500, "f2": 500, "f3": 500}


def _snapshot(monitor: FairnessMonitor) -> list[Any]:
    return [
        (v.facility, v.size, v.verdict, v.parity, v.rows) for v in monitor.views(with_rows=True)
    ]


@pytest.mark.parametrize("window_seconds", [1e9, 90.0])
def test_a_failed_recording_puts_the_window_back_exactly(window_seconds: float) -> None:
    # Full window (by count, or by time: 60 s apart, 90 s kept), outcomes on the oldest
    # decisions: the failed decision's evictions must come back with their outcomes.
    decisions = list(stream(5, 12, spacing_s=60.0))
    config = FairnessConfig(window_count=10, window_seconds=window_seconds, min_group_count=1)
    # the clock stands at the last decision before the failed one: views() evicts nothing more
    monitor = FairnessMonitor(config, clock=lambda: decisions[-2].at)
    for d in decisions[:-1]:
        monitor.record(d)
    for d in decisions[:6]:
        monitor.record_outcome(d.audit_id, True)
    before = _snapshot(monitor)

    class WriteFailedError(Exception):
        pass

    def failed_write() -> None:
        with monitor.recording(decisions[-1]) as audit:
            assert audit.window_size <= 10
            raise WriteFailedError

    with pytest.raises(WriteFailedError):
        failed_write()
    assert _snapshot(monitor) == before

    with monitor.recording(decisions[-1]):
        pass
    assert _snapshot(monitor) != before
    assert decisions[-1].audit_id in {
        row[0].audit_id for row in monitor.views(with_rows=True)[0].rows
    }


def test_recording_holds_the_decision_from_other_readers() -> None:
    decisions = list(stream(6, 3))
    monitor = FairnessMonitor(FairnessConfig(), clock=lambda: decisions[-1].at)
    monitor.record(decisions[0])
    seen: list[int] = []
    with monitor.recording(decisions[1]):
        reader = threading.Thread(target=lambda: seen.append(monitor.views()[0].size))
        reader.start()
        reader.join(0.2)
        assert reader.is_alive()  # the reader waits until the decision is durable
    reader.join(5)
    assert seen == [2]
