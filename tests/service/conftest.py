"""Fixtures of the engine's tests: hand-built ClinicalFeatures, the session's real model, and
real engines on a fresh data dir (``model_registry`` and ``make_settings`` come from
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from clinical_features import calm_features, finding

from fhir_adapters.features import ClinicalFeatures
from models.registry import RegisteredModel, Registry
from service.settings import Settings


@pytest.fixture
def make_features() -> Callable[..., ClinicalFeatures]:
    """``make_features(heart_rate=present(120), symptoms={"chest_pain": True}, ...)``."""

    def make(**changes: Any) -> ClinicalFeatures:
        base = calm_features()
        symptoms = changes.pop("symptoms", {})
        risks = changes.pop("risk_factors", {})
        base = replace(
            base,
            symptoms=replace(base.symptoms, **{k: finding() for k, v in symptoms.items() if v}),
            risk_factors=replace(
                base.risk_factors, **{k: finding() for k, v in risks.items() if v}
            ),
        )
        return replace(base, **changes)

    return make


@pytest.fixture(scope="session")
def registered_model(model_registry: Path) -> RegisteredModel:
    return Registry(model_registry).load("mace-30d")


@pytest.fixture
def engine_factory(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Any]]:
    """Real engines (SQLite store in tmp_path, the session's ONNX model); closed after the test."""
    from service.engine import Engine
    from service.metrics import Metrics

    engines: list[Any] = []

    def make(**overrides: Any) -> Any:
        engine = Engine.create(make_settings(**overrides), Metrics())
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()
