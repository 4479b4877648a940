"""The public entry points: ``extract`` and ``extract_variants``, and their two steps
``parse`` and ``derive_variants`` for callers that time them apart."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from fhir_adapters.config import ExtractionConfig
from fhir_adapters.derive import DemographicOverride, derive_base, finish
from fhir_adapters.errors import BundleRejected, Reason
from fhir_adapters.features import Extraction
from fhir_adapters.reader import JsonObject, load_bundle, parse_json, read_bundle
from fhir_adapters.strict import validate_strict

logger = logging.getLogger(__name__)


def parse(bundle: bytes, config: ExtractionConfig) -> JsonObject:
    """First step: limits, UTF-8 and JSON checks (and R4B validation in strict mode).
    Returns the Bundle as a JSON object for :func:`derive_variants`."""
    if not config.pseudonym_key:
        # A programming error, not bad input: pseudonyms without a key are reversible.
        raise ValueError("ExtractionConfig.pseudonym_key must be set")
    root = load_bundle(bundle, config)
    if config.strict_validation:
        validate_strict(bundle)
    return root


def derive_variants(
    root: JsonObject,
    config: ExtractionConfig,
    *,
    request_time: datetime,
    encounter_id: str | None = None,
    variants: Sequence[DemographicOverride] = (),
) -> tuple[Extraction, list[Extraction]]:
    """Second step: the actual extraction and one per counterfactual demographic variant, in
    the order given; the sex-independent features are derived once, and the sex-dependent
    part once per distinct sex (shared by the variants with that sex)."""
    base = derive_base(read_bundle(root), config, request_time, encounter_id)
    return finish(base), [finish(base, variant) for variant in variants]


def cited_references(bundle: bytes) -> frozenset[str]:
    """Every resource reference an extraction of ``bundle`` can cite as a feature's source:
    lets a caller that stored pseudonyms of the sources map them back given the bundle.

    For a bundle already extracted once (the caller checks its hash): no limits or strict
    validation are applied again, so that settings changed since do not refuse it."""
    root = parse_json(bundle)
    if type(root) is not dict:
        raise BundleRejected(Reason.NOT_A_BUNDLE)
    facts = read_bundle(root)
    headers = (
        *(o.header for o in facts.observations),
        *(c.header for c in facts.conditions),
        *(p.header for p in facts.procedures),
        *(r.header for r in facts.reports),
        *(f.header for f in facts.family_histories),
    )
    return frozenset(
        (facts.patient.ref, *(e.ref for e in facts.encounters), *(h.ref for h in headers))
    )


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
    actual, _ = derive_variants(
        parse(bundle, config), config, request_time=request_time, encounter_id=encounter_id
    )
    return actual


def extract_variants(
    bundle: bytes,
    config: ExtractionConfig,
    *,
    request_time: datetime,
    encounter_id: str | None = None,
    variants: Sequence[DemographicOverride],
) -> tuple[Extraction, list[Extraction]]:
    """:func:`parse` then :func:`derive_variants`: the bundle is parsed once for all."""
    return derive_variants(
        parse(bundle, config),
        config,
        request_time=request_time,
        encounter_id=encounter_id,
        variants=variants,
    )
