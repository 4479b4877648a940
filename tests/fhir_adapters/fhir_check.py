"""Run the fast extractor and the R4B reference extractor and insist they agree."""

from __future__ import annotations

from datetime import datetime

from fhir_builder import CONFIG, REQUEST_TIME

from fhir_adapters import Extraction, ExtractionConfig, extract
from fhir_adapters.reference import extract_reference


def extract_both(
    data: bytes,
    *,
    config: ExtractionConfig = CONFIG,
    request_time: datetime = REQUEST_TIME,
    encounter_id: str | None = None,
) -> Extraction:
    fast = extract(data, config, request_time=request_time, encounter_id=encounter_id)
    slow = extract_reference(data, config, request_time=request_time, encounter_id=encounter_id)
    assert fast == slow
    return fast


def codes_of(extraction: Extraction) -> list[str]:
    return [w.code for w in extraction.features.warnings]
