"""Model card with the ONC HTI-1 (45 CFR 170.315(b)(11)) source attributes, filled from the
evaluation and the training data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .schema import EXCLUDED_BY_DESIGN, FEATURE_SCHEMA, PROTECTED_ATTRIBUTES


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def render_model_card(
    *,
    name: str,
    version: str,
    model_kind: str,
    evaluation: Mapping[str, Any],
    training_demographics: Mapping[str, Mapping[str, float]],
    n_train: int,
    cohort_description: str,
) -> str:
    s = evaluation["summary"]
    th = evaluation["thresholds"]
    lines = [
        f"# Model card: {name} {version}",
        "",
        "**Synthetic reference model. Not clinically validated.** Trained and tested on a "
        "synthetic cohort calibrated to published anchors (docs/models.md).",
        "",
        "## Intended use, population and users",
        "Decision support at emergency-department triage for adults with chest pain or a "
        "cardiac-equivalent presentation: estimates 30-day major adverse cardiac events (MACE) "
        "and a risk band. Users: triage nurses and emergency physicians, who review the basis "
        "(inputs, HEART components) and decide.",
        "",
        "## Cautioned out-of-scope use",
        "Not for patients under 18, not a diagnosis of myocardial infarction, not for "
        "discharge without clinician review and serial troponins, not for use outside the "
        "chest-pain pathway, not validated on real patients.",
        "",
        "## Inputs",
        f"Feature schema {FEATURE_SCHEMA.version}: {', '.join(FEATURE_SCHEMA.names)}.",
        "",
        "- Race: **not used**. Ethnicity: **not used**. Language, insurance, address and other "
        f"declared proxies ({', '.join(sorted(PROTECTED_ATTRIBUTES))}): **not used**.",
        f"- Sex ({', '.join(sorted(EXCLUDED_BY_DESIGN))}): **not a direct input**; it acts only "
        "through sex-specific troponin reference limits (troponin / URL).",
        "- Social determinants of health: not used.",
        "",
        "## Training data and its demographic make-up",
        f"{cohort_description} Training encounters: {n_train}.",
        "",
    ]
    for attribute, shares in training_demographics.items():
        parts = ", ".join(f"{g} {_pct(v)}" for g, v in sorted(shares.items()))
        lines.append(f"- {attribute}: {parts}")
    lines += [
        "",
        "## Approach to fair output and bias management",
        "Race and ethnicity are audited, never inputs. One band threshold for everyone, "
        "chosen on validation data so that missed MACE in the low band is below 1% in every "
        "audited group with enough data (race, ethnicity, sex, race x sex, age band). Labels "
        "are TRUE 30-day outcomes; the report shows what training on under-tested RECORDED "
        "outcomes would do.",
        "",
        f"Thresholds: LOW below {th['low_upper']:.4f}; HIGH at or above {th['high_lower']:.4f}.",
        "",
        "## Validity and fairness in test data (held-out synthetic encounters)",
        f"- AUROC {_num(s.get('auroc'))} (HEART on the same rows {_num(s.get('heart_auroc'))}); "
        f"AUPRC {_num(s.get('auprc'))}; Brier {_num(s.get('brier'))}",
        f"- Calibration slope {_num(s.get('calibration_slope'))}, intercept "
        f"{_num(s.get('calibration_intercept'))}",
        f"- Sensitivity at the low threshold {_pct(s.get('sensitivity_low'))}; NPV "
        f"{_pct(s.get('npv_low'))}; missed MACE in the low band {_pct(s.get('missed_mace_low'))} "
        f"(HEART: {_pct(s.get('heart_missed_mace_low'))}); low band share "
        f"{_pct(s.get('low_band_share'))}",
        f"- Worst-group sensitivity {_pct(s.get('worst_group_sensitivity'))}; worst-group "
        f"missed MACE in the low band {_pct(s.get('worst_group_missed_mace_low'))}; largest "
        f"false-negative-rate gap {_pct(s.get('fnr_gap'))}",
        "",
        "| attribute | group | n | MACE | sensitivity | missed MACE in low band (95% CI) |",
        "|---|---|---|---|---|---|",
    ]
    for attribute, block in evaluation["model"]["by_attribute"].items():
        for group, v in sorted(block["groups"].items()):
            ci = (v.get("ci") or {}).get("missed_mace_low")
            ci_text = "" if ci is None else f" ({_pct(ci[0])}-{_pct(ci[1])})"
            lines.append(
                f"| {attribute} | {group} | {int(v['n'] or 0)} | {int(v['mace'] or 0)} | "
                f"{_pct(v['sensitivity'])} | {_pct(v['missed_mace_low'])}{ci_text} |"
            )
    lines += [
        "",
        "## Validity and fairness in external data",
        "None: no external data set was available. Must be established before clinical use.",
        "",
        "## Validity and fairness monitoring in local data",
        "The service audits escalation parity within HEART strata and, once outcomes are "
        "reported, false-negative rates by group per facility (Prometheus `triage_fairness_*`).",
        "",
        "## Update schedule",
        "Retrained and re-evaluated when the monitoring raises an alert, when the feature "
        "schema changes, or at least yearly; every version passes the promotion gates.",
        "",
        f"Model family: {model_kind}.",
    ]
    return "\n".join(lines) + "\n"
