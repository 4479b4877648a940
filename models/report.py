"""Evaluation report a person would rather look at: evaluation.json, PNG plots (calibration,
ROC and escalation rate by group) and one HTML page, plus the label-bias side-by-side."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_curve

from .evaluate import MIN_GROUP_MACE

FloatArray = npt.NDArray[np.float64]
StrArray = npt.NDArray[np.str_]
PLOTTED_ATTRIBUTES = ("race", "sex", "ethnicity")


def _calibration_plot(
    p: FloatArray, y: npt.NDArray[np.bool_], labels: StrArray, path: Path
) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    edges = np.quantile(p, np.linspace(0, 1, 11))
    for group in np.unique(labels):
        mask = labels == group
        if y[mask].sum() < MIN_GROUP_MACE:
            continue
        bins = np.clip(np.searchsorted(edges, p[mask], side="right") - 1, 0, 9)
        xs = [p[mask][bins == b].mean() for b in range(10) if (bins == b).any()]
        ys = [y[mask][bins == b].mean() for b in range(10) if (bins == b).any()]
        ax.plot(xs, ys, marker="o", label=str(group))
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlabel="predicted 30-day MACE", ylabel="observed (true) MACE", title=path.stem)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _roc_plot(p: FloatArray, y: npt.NDArray[np.bool_], labels: StrArray, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    for group in np.unique(labels):
        mask = labels == group
        if y[mask].sum() < MIN_GROUP_MACE or y[mask].all():
            continue
        fpr, tpr, _ = roc_curve(y[mask], p[mask])
        ax.plot(fpr, tpr, label=str(group))
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlabel="false positive rate", ylabel="sensitivity", title=path.stem)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _escalation_plot(block: Mapping[str, Any], path: Path) -> None:
    groups = sorted(block["groups"])
    rates = [block["groups"][g]["escalation_rate"] or 0.0 for g in groups]
    cis = [(block["groups"][g].get("ci") or {}).get("escalation_rate") for g in groups]
    lo = [r - (c[0] if c else r) for r, c in zip(rates, cis, strict=True)]
    hi = [(c[1] if c else r) - r for r, c in zip(rates, cis, strict=True)]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.bar(range(len(groups)), rates, yerr=[lo, hi], capsize=3)
    ax.set_xticks(range(len(groups)), groups, rotation=30, ha="right", fontsize=7)
    ax.set(ylabel="escalated (band not LOW)", title=path.stem)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _table(block: Mapping[str, Any], title: str) -> str:
    rows = []
    for group, v in sorted(block["groups"].items()):
        ci = (v.get("ci") or {}).get("missed_mace_low")
        ci_text = "" if ci is None else f" ({100 * ci[0]:.2f}-{100 * ci[1]:.2f})"
        cells = [
            group,
            str(int(v["n"] or 0)),
            str(int(v["mace"] or 0)),
            "n/a" if v["sensitivity"] is None else f"{100 * v['sensitivity']:.1f}%",
            "n/a"
            if v["missed_mace_low"] is None
            else f"{100 * v['missed_mace_low']:.2f}%{ci_text}",
            "n/a" if v["escalation_rate"] is None else f"{100 * v['escalation_rate']:.1f}%",
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "group",
            "n",
            "MACE",
            "sensitivity",
            "missed MACE in low band (95% CI)",
            "escalated",
        )
    )
    return f"<h3>{html.escape(title)}</h3><table><tr>{head}</tr>{''.join(rows)}</table>"


def write_report(
    out_dir: Path,
    evaluation: Mapping[str, Any],
    p: FloatArray,
    y: npt.NDArray[np.bool_],
    groups: Mapping[str, StrArray],
    *,
    label_bias: Mapping[str, Any] | None = None,
) -> Path:
    """Write evaluation.json, PNGs and index.html into ``out_dir``; returns the HTML path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    full = dict(evaluation)
    if label_bias is not None:
        full["label_bias_comparison"] = label_bias
    (out_dir / "evaluation.json").write_text(json.dumps(full, indent=2, sort_keys=True))
    images = []
    for attribute in PLOTTED_ATTRIBUTES:
        labels = groups[attribute]
        for kind, draw in (("calibration", _calibration_plot), ("roc", _roc_plot)):
            path = out_dir / f"{kind}_by_{attribute}.png"
            draw(p, y, labels, path)
            images.append(path.name)
        path = out_dir / f"escalation_by_{attribute}.png"
        _escalation_plot(evaluation["model"]["by_attribute"][attribute], path)
        images.append(path.name)
    s = evaluation["summary"]
    parts = [
        "<html><head><meta charset='utf-8'><title>30-day MACE model evaluation</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}table{border-collapse:"
        "collapse}</style></head><body>",
        "<h1>30-day MACE model: held-out evaluation (synthetic reference cohort)</h1>",
        "<p>Against TRUE outcomes. Escalated = band MODERATE or HIGH.</p><ul>",
        *(f"<li>{html.escape(k)}: {v:.4f}</li>" for k, v in sorted(s.items())),
        "</ul>",
    ]
    for attribute in ("race", "ethnicity", "sex", "race_sex", "age_band"):
        parts.append(
            _table(evaluation["model"]["by_attribute"][attribute], f"model by {attribute}")
        )
        parts.append(
            _table(evaluation["heart"]["by_attribute"][attribute], f"HEART by {attribute}")
        )
    parts += [f"<img src='{name}' alt='{name}'>" for name in images]
    if label_bias is not None:
        parts.append("<h2>Label bias: trained on TRUE vs RECORDED (under-tested) outcomes</h2>")
        parts.append(f"<p>{html.escape(label_bias['description'])}</p>")
        for key in ("true", "recorded"):
            for attribute in ("race", "sex"):
                parts.append(
                    _table(
                        label_bias[key]["model"]["by_attribute"][attribute],
                        f"trained on {key} labels, by {attribute}",
                    )
                )
    parts.append("</body></html>")
    index = out_dir / "index.html"
    index.write_text("\n".join(parts))
    return index
