"""Build, register and promote the default model deterministically (``build-default``)."""

from __future__ import annotations

import logging
from pathlib import Path

from .cohort import CohortParams, generate_cohort
from .export import export_onnx
from .gates import PromotionGates
from .model_card import render_model_card
from .pipeline import PipelineResult, demographics, run_pipeline
from .registry import DEFAULT_MODEL_NAME, RegisteredModel, Registry

logger = logging.getLogger(__name__)

DEFAULT_N_PATIENTS = 100_000
DEFAULT_SEED = 20260105


def cohort_description(n: int, seed: int) -> str:
    return (
        f"Synthetic reference cohort (models.cohort, n={n}, seed={seed}), four facilities "
        "with different demographic mixes, default presentation shift, no label bias; "
        "labels are TRUE 30-day MACE."
    )


def register_result(
    registry: Registry,
    result: PipelineResult,
    *,
    name: str,
    description: str,
    version: str | None = None,
) -> RegisteredModel:
    if version is None:
        existing = registry.versions(name)
        version = f"v{int(existing[-1][1:]) + 1 if existing else 1}"
    onnx_bytes = export_onnx(result.model, result.thresholds, model_version=version)
    card = render_model_card(
        name=name,
        version=version,
        model_kind=result.model.kind.value,
        evaluation=result.evaluation,
        training_demographics=demographics(result.train_table),
        n_train=len(result.train_table),
        cohort_description=description,
    )
    return registry.register(
        name,
        onnx_bytes,
        thresholds=result.thresholds,
        metrics=result.evaluation["summary"],
        training_fingerprint=result.model.training_fingerprint,
        model_card=card,
        model_kind=result.model.kind.value,
        version=version,
    )


def build_default(
    registry_root: Path,
    *,
    n_patients: int = DEFAULT_N_PATIENTS,
    seed: int = DEFAULT_SEED,
    name: str = DEFAULT_MODEL_NAME,
    gates: PromotionGates | None = None,
    n_boot: int = 200,
) -> RegisteredModel:
    """Return the active model, building and promoting one first when there is none."""
    registry = Registry(registry_root)
    if registry.active_version(name) is not None:
        return registry.load(name)
    table = generate_cohort(CohortParams(n=n_patients, seed=seed))
    result = run_pipeline(table, seed=seed, n_boot=n_boot)
    model = register_result(
        registry, result, name=name, description=cohort_description(n_patients, seed)
    )
    report = registry.promote(name, model.version, gates)
    logger.info("promoted %s %s (%d gates passed)", name, model.version, len(report.results))
    return registry.load(name)
