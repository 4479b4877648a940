"""When a gap is evidence: the WARN / ALERT / INSUFFICIENT_DATA rules for one cell.

A cell is one attribute in one stratum. A gap between two groups counts only when
- both groups are *sufficient* (at least ``min_group_count`` decisions; for missed MACE, at
  least ``min_mace_count`` MACE outcomes),
- the gap is at least ``warn_difference`` (WARN) or ``alert_difference`` (ALERT), and
- Newcombe's interval for the difference at ``evidence_z`` excludes zero.
So a gap without enough data is never WARN or ALERT. Overall parity (stratum "all") is context:
base rates differ between groups (age, sex), so it is reported but never fires a rule. The
model-band strata ("model:low" ...) are context too: escalation follows the HEART band as well
as the model, so within one model band, groups whose HEART profiles differ (age above all) are
escalated at different rates on a perfectly fair stream.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from service.assessment import AuditStatus
from service.fairness.config import FairnessConfig
from service.fairness.decision import HEART_STRATA, OVERALL
from service.fairness.stats import wilson_interval


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of the rules for one cell (or for a whole facility)."""

    status: AuditStatus
    rule: str = ""
    groups: tuple[str, ...] = ()
    difference: float = 0.0


OK = Verdict(AuditStatus.OK)
INSUFFICIENT = Verdict(AuditStatus.INSUFFICIENT_DATA, "insufficient_data")

Counted = tuple[str, int, int]  # (group, successes, total)
Part = tuple[int, int, int, int]  # (escalated, count, rest escalated, rest count) in one band


def parity_verdict(
    attribute: str, stratum: str, groups: Iterable[Counted], config: FairnessConfig
) -> Verdict:
    """Escalation parity rule for one attribute in one stratum, from
    ``(group, escalated, count)`` triples."""
    minimum = config.min_group_count
    sufficient = [g for g in groups if g[2] >= minimum]
    if len(sufficient) < 2:
        return INSUFFICIENT
    if stratum not in HEART_STRATA:
        return OK
    return _worst_gap("parity", attribute, stratum, sufficient, config)


def missed_mace_verdict(
    attribute: str, groups: Iterable[Counted], config: FairnessConfig
) -> Verdict | None:
    """Equal-opportunity rule: the missed-MACE (false-negative) rate across groups, from
    ``(group, missed, mace)`` triples.

    None when fewer than two groups have ``min_mace_count`` MACE outcomes: outcomes arrive
    weeks late, so their absence does not make the facility's status INSUFFICIENT_DATA.
    """
    minimum = config.min_mace_count
    eligible = [g for g in groups if g[2] >= minimum]
    if len(eligible) < 2:
        return None
    return _worst_gap("missed_mace", attribute, OVERALL, eligible, config)


def _worst_gap(
    name: str,
    attribute: str,
    stratum: str,
    groups: list[Counted],
    config: FairnessConfig,
) -> Verdict:
    """The most severe evidenced gap among ``(group, successes, total)`` triples.

    Newcombe's lower bound for ``p_high - p_low`` is
    ``d - sqrt((p_high - wilson_low_high)^2 + (wilson_high_low - p_low)^2)``; the Wilson
    bounds at ``evidence_z`` are computed once per group, not once per pair.
    """
    rated = sorted((s / n, group, s, n) for group, s, n in groups)
    if rated[-1][0] - rated[0][0] < config.warn_difference:
        return OK
    z = config.evidence_z
    bounds = [wilson_interval(s, n, z) for _, _, s, n in rated]
    worst = OK
    for i, (low_rate, low_group, _, _) in enumerate(rated):
        above = bounds[i][1] - low_rate
        for j in range(len(rated) - 1, i, -1):
            high_rate, high_group = rated[j][0], rated[j][1]
            difference = high_rate - low_rate
            if difference < config.warn_difference:
                break
            below = high_rate - bounds[j][0]
            if difference - math.sqrt(below * below + above * above) <= 0.0:
                continue
            severity = (
                AuditStatus.ALERT if difference >= config.alert_difference else AuditStatus.WARN
            )
            if (severity, difference) > (worst.status, worst.difference):
                level = "alert" if severity is AuditStatus.ALERT else "warn"
                worst = Verdict(
                    severity,
                    f"{name}_{level}: {attribute} in stratum {stratum}: difference "
                    f"{difference:.3f} >= {_threshold(severity, config):.2f} and the "
                    f"z={z:g} Newcombe interval excludes 0",
                    (f"{attribute}={high_group}", f"{attribute}={low_group}"),
                    difference,
                )
    return worst


def _threshold(severity: AuditStatus, config: FairnessConfig) -> float:
    if severity is AuditStatus.ALERT:
        return config.alert_difference
    return config.warn_difference


def adjusted_verdict(
    attribute: str, strata: Iterable[Iterable[Counted]], config: FairnessConfig
) -> Verdict:
    """Risk-adjusted parity: each group against everyone else *in the same HEART band*,
    pooled over the bands (a Mantel-Haenszel-style weighted difference, weights = the
    group's decisions per band).

    ``d = sum_s n_gs (p_gs - p_rest,s) / sum_s n_gs``; its variance uses Agresti-Caffo
    adjusted rates ``(e + 1) / (n + 2)`` so that rates of 0 or 1 do not fake certainty.
    WARN / ALERT when ``|d|`` reaches the thresholds and ``|d| / sd >= evidence_z``. Pooling
    the bands is what "same risk, different answer" asks, and with one test per group rather
    than one per pair and band it detects a consistent gap sooner with fewer false alarms.
    """
    per_group: dict[str, list[Part]] = {}
    for cell in strata:
        rows = list(cell)
        total_e = sum(e for _, e, _ in rows)
        total_n = sum(n for _, _, n in rows)
        for group, e, n in rows:
            if total_n > n:
                per_group.setdefault(group, []).append((e, n, total_e - e, total_n - n))
    worst = OK
    for group, parts in per_group.items():
        verdict = adjusted_group_verdict(attribute, group, parts, config)
        if verdict is not None and (verdict.status, verdict.difference) > (
            worst.status,
            worst.difference,
        ):
            worst = verdict
    return worst


def adjusted_group_verdict(
    attribute: str, group: str, parts: list[Part], config: FairnessConfig
) -> Verdict | None:
    """The risk-adjusted rule for one group, from its ``parts`` in HEART-band order (only
    bands where the group and the rest both have decisions). None when it does not fire.
    Both sides need ``min_group_count`` decisions: the group, and everyone else in its bands
    (900 escalated women against 2 men is not evidence of a gap)."""
    weight = sum(n for _, n, _, _ in parts)
    if weight < config.min_group_count:
        return None
    if sum(rn for _, _, _, rn in parts) < config.min_group_count:
        return None
    difference = sum(e - n * re / rn for e, n, re, rn in parts) / weight
    magnitude = abs(difference)
    if magnitude < config.warn_difference:
        return None
    variance = sum(n * n * (_adj_var(e, n) + _adj_var(re, rn)) for e, n, re, rn in parts)
    if magnitude * weight < config.evidence_z * math.sqrt(variance):
        return None
    severity = AuditStatus.ALERT if magnitude >= config.alert_difference else AuditStatus.WARN
    level = "alert" if severity is AuditStatus.ALERT else "warn"
    direction = "less" if difference < 0 else "more"
    return Verdict(
        severity,
        f"adjusted_parity_{level}: {attribute}={group} escalated {magnitude:.3f} "
        f"{direction} than others in the same HEART band (>= "
        f"{_threshold(severity, config):.2f}, z >= {config.evidence_z:g})",
        (f"{attribute}={group}",),
        magnitude,
    )


def _adj_var(events: int, total: int) -> float:
    p = (events + 1) / (total + 2)
    return p * (1.0 - p) / (total + 2)
