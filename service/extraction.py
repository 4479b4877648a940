"""FHIR bytes -> Extraction(s), timed as two stages: parse (bytes -> JSON tree, plus R4B
validation in strict mode) and extract (JSON tree -> features and audit attributes, and the
counterfactual variants from the same derivation), with ``fhir_adapters``' two steps."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from fhir_adapters.config import ExtractionConfig
from fhir_adapters.derive import DemographicOverride
from fhir_adapters.extract import derive_variants, parse
from fhir_adapters.features import Extraction


@dataclass(frozen=True, slots=True)
class TimedExtraction:
    actual: Extraction
    variants: tuple[Extraction, ...]
    parse_s: float
    extract_s: float


def extract_timed(
    bundle: bytes,
    config: ExtractionConfig,
    *,
    request_time: datetime,
    encounter_id: str | None,
    variants: Sequence[DemographicOverride],
) -> TimedExtraction:
    t0 = time.perf_counter()
    root = parse(bundle, config)
    t1 = time.perf_counter()
    actual, derived = derive_variants(
        root, config, request_time=request_time, encounter_id=encounter_id, variants=variants
    )
    t2 = time.perf_counter()
    return TimedExtraction(actual, tuple(derived), t1 - t0, t2 - t1)
