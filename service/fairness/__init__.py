"""Per-recommendation fairness audit: incremental demographic parity and missed-MACE rates
per facility window, the rules that turn gaps into WARN / ALERT, a background Fairlearn
report, and the Prometheus collector of the fairness gauges. No gRPC here."""

from service.fairness.config import FairnessConfig
from service.fairness.decision import ATTRIBUTES, GROUPS, STRATA, Decision
from service.fairness.monitor import FairnessMonitor
from service.fairness.reporter import FairnessReporter

__all__ = [
    "ATTRIBUTES",
    "GROUPS",
    "STRATA",
    "Decision",
    "FairnessConfig",
    "FairnessMonitor",
    "FairnessReporter",
]
