from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.calibration import calibration_intercept, calibration_slope
from models.cli import main
from models.evaluate import audit_groups
from models.pipeline import PipelineResult
from models.report import write_report
from models.thresholds import Thresholds, choose_thresholds, wilson_interval


def test_wilson_interval() -> None:
    lo, hi = wilson_interval(0, 100)
    assert lo == pytest.approx(0.0, abs=1e-12)
    assert hi == pytest.approx(0.037, abs=0.001)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_calibration_of_a_calibrated_score() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.9, 50_000)
    y = rng.random(50_000) < p
    assert calibration_slope(p, y) == pytest.approx(1.0, abs=0.05)
    assert calibration_intercept(p, y) == pytest.approx(0.0, abs=0.05)
    assert calibration_intercept(p / 2, y) > 0.3  # under-prediction shows as positive


def test_thresholds_meet_the_floor_in_every_group(small_result: PipelineResult) -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(0.5, 6.0, 20_000)
    y = rng.random(20_000) < p
    groups = {"g": np.where(rng.random(20_000) < 0.3, "a", "b")}
    t = choose_thresholds(p, y, groups)
    low = p < t.low_upper
    for g in ("a", "b"):
        mask = low & (groups["g"] == g)
        assert mask.sum() > 500
        assert y[mask].mean() < 0.01
    with pytest.raises(ValueError, match="thresholds"):
        Thresholds(0.5, 0.2)


def test_evaluation_reports_model_and_heart_by_group(small_result: PipelineResult) -> None:
    ev = small_result.evaluation
    for key in ("model", "heart"):
        assert set(ev[key]["by_attribute"]) == {"race", "ethnicity", "sex", "race_sex", "age_band"}
    s = ev["summary"]
    assert s["auroc"] > s["heart_auroc"]
    assert s["worst_group_missed_mace_low"] < 0.01
    assert (
        ev["model"]["overall"]["ci"]["auroc"][0]
        < s["auroc"]
        < ev["model"]["overall"]["ci"]["auroc"][1]
    )


def test_report_writes_json_png_html(small_result: PipelineResult, tmp_path: Path) -> None:
    index = write_report(
        tmp_path,
        small_result.evaluation,
        small_result.test_probabilities,
        small_result.test.true_mace,
        audit_groups(small_result.test),
    )
    assert index.exists()
    assert (tmp_path / "evaluation.json").exists()
    assert (tmp_path / "calibration_by_race.png").stat().st_size > 1000
    assert "HEART by race" in index.read_text()


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, reg = tmp_path / "trained", tmp_path / "registry"
    assert main(["cohort", "--n", "300", "--bundles", str(tmp_path / "b"), "--limit", "2"]) == 0
    assert len(list((tmp_path / "b").glob("*.json"))) == 2
    assert main(["train", "--n", "6000", "--seed", "3", "--out", str(out), "--n-boot", "20"]) == 0
    # The evaluation names the artifact it evaluated: another model.onnx beside it is refused.
    (tmp_path / "other").mkdir()
    for name in ("evaluation.json", "model_card.md"):
        (tmp_path / "other" / name).write_bytes((out / name).read_bytes())
    (tmp_path / "other" / "model.onnx").write_bytes((out / "model.onnx").read_bytes() + b"\0")
    assert main(["register", "--registry", str(reg), str(tmp_path / "other")]) == 1
    assert "evaluation_mismatch" in capsys.readouterr().err
    assert main(["register", "--registry", str(reg), str(out)]) == 0
    assert main(["promote", "--registry", str(reg), "v1"]) == 0
    assert main(["rollback", "--registry", str(reg)]) == 1  # nothing to roll back
    assert (
        main(
            [
                "evaluate",
                "--n",
                "6000",
                "--out",
                str(tmp_path / "rep"),
                "--label-bias-n",
                "6000",
                "--n-boot",
                "20",
            ]
        )
        == 0
    )
    assert "trained on recorded labels" in (tmp_path / "rep" / "index.html").read_text()
    capsys.readouterr()
