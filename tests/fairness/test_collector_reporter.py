from __future__ import annotations

import json
import math
import time

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fairness.streams import stream
from service.fairness import GROUPS, STRATA, FairnessConfig, FairnessMonitor, FairnessReporter


def _samples(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(registry).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def test_collector_exposes_the_gauges_with_bounded_labels() -> None:
    monitor = FairnessMonitor(FairnessConfig(), clock=lambda: 0.0)
    decisions = list(stream(3, 600))
    for d in decisions:
        monitor.record(d)
    for d in decisions[:300]:
        monitor.record_outcome(d.audit_id, mace=d.stratum == "high")
    registry = CollectorRegistry()
    registry.register(monitor.collector())
    samples = _samples(registry)
    (status,) = samples["triage_fairness_audit_status"]
    assert status[0] == {"facility": "facility-a"}
    assert status[1] == float(monitor.views()[0].verdict.status)
    for name in (
        "triage_fairness_group_rate",
        "triage_fairness_group_rate_count",
        "triage_fairness_group_rate_ci_low",
        "triage_fairness_group_rate_ci_high",
    ):
        for labels, value in samples[name]:
            assert labels["group"] in GROUPS[labels["attribute"]]
            assert labels["stratum"] in STRATA
            assert 0.0 <= value <= (600 if name.endswith("count") else 1.0)
    counts = {
        (lab["attribute"], lab["group"]): v
        for lab, v in samples["triage_fairness_group_rate_count"]
        if lab["stratum"] == "all"
    }
    assert sum(v for (a, _), v in counts.items() if a == "sex") == 600
    attributes = {lab["attribute"] for lab, _ in samples["triage_fairness_parity_difference"]}
    assert attributes == set(GROUPS)
    assert samples["triage_fairness_false_negative_rate"]
    assert all(
        set(lab) == {"facility", "attribute", "group"}
        for lab, _ in samples["triage_fairness_false_negative_rate"]
    )


def test_reporter_runs_fairlearn_and_stops_promptly() -> None:
    config = FairnessConfig(report_interval_s=3600.0, report_n_boot=5)
    monitor = FairnessMonitor(config, clock=lambda: 0.0)
    for d in stream(4, 120):
        monitor.record(d)
        monitor.record_outcome(d.audit_id, mace=d.stratum == "high")
    reporter = FairnessReporter(monitor, config)
    assert reporter.latest()["generated_at"] is None
    reporter.start()
    assert reporter.wait_for_report(timeout=60)
    started = time.monotonic()
    reporter.stop()
    assert time.monotonic() - started < 5  # the hour-long wait is interrupted at once
    report = reporter.latest()
    json.dumps(report, allow_nan=False)
    facility = report["facilities"]["facility-a"]
    assert facility["window_size"] == 120
    race = facility["attributes"]["race"]
    (view,) = monitor.views()
    incremental = {
        g.group: g.rate
        for p in view.parity
        if p.attribute == "race" and p.stratum == "all"
        for g in p.groups
    }
    for group, entry in race["selection_rate"]["by_group"].items():
        assert math.isclose(entry["rate"], incremental[group], abs_tol=1e-12)
        low, high = entry["ci"]
        assert low <= high
    assert "false_negative_rate" in race
    assert "calibration" in race
    assert set(race["selection_rate_by_stratum"]) <= {"low", "moderate", "high"}
