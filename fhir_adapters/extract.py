"""The public entry points: ``extract`` and ``extract_variants``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from fhir_adapters.config import ExtractionConfig
from fhir_adapters.derive import Base, DemographicOverride, derive_base, finish
from fhir_adapters.features import Extraction
from fhir_adapters.reader import load_bundle, read_bundle
from fhir_adapters.strict import validate_strict

logger = logging.getLogger(__name__)


def _base(
    bundle: bytes, config: ExtractionConfig, request_time: datetime, encounter_id: str | None
) -> Base:
    if not config.pseudonym_key:
        # A programming error, not bad input: pseudonyms without a key are reversible.
        raise ValueError("ExtractionConfig.pseudonym_key must be set")
    root = load_bundle(bundle, config)
    if config.strict_validation:
        validate_strict(bundle)
    return derive_base(read_bundle(root), config, request_time, encounter_id)


def extract(
    bundle: bytes,
    config: ExtractionConfig,
    *,
    request_time: datetime,
    encounter_id: str | None = None,
) -> Extraction:
    """FHIR R4 Bundle bytes -> ClinicalFeatures + AuditAttributes.

    Raises ``FhirAdapterError`` subclasses for bundles that cannot be assessed, and
    ``ValueError`` when ``config.pseudonym_key`` is empty. Naive ``request_time`` is UTC.
    """
    return finish(_base(bundle, config, request_time, encounter_id))


def extract_variants(
    bundle: bytes,
    config: ExtractionConfig,
    *,
    request_time: datetime,
    encounter_id: str | None = None,
    variants: Sequence[DemographicOverride],
) -> tuple[Extraction, list[Extraction]]:
    """The actual extraction and one per counterfactual demographic variant, in the order
    given; the bundle is parsed and the sex-independent features derived once, and the
    sex-dependent part once per distinct sex (shared by the variants with that sex)."""
    base = _base(bundle, config, request_time, encounter_id)
    actual = finish(base)
    return actual, [finish(base, variant) for variant in variants]
