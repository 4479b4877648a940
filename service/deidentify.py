"""What the audit store keeps instead of the bundle's own identifiers.

Feature sources ("Patient/123", "Observation/abc") are the EHR's identifiers for this
patient's records, so the store holds their keyed pseudonyms (the same HMAC as the
patient and encounter pseudonym columns: whoever holds the key and the bundle can link
them). The birth date behind ``age_years`` is not kept: the age is.

The stored answer that an idempotent retry replays keeps pseudonyms too; a retry carries
the same bundle, whose references map them back (``restore_sources``), so the client gets
exactly the answer it was first given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import orjson

from fhir_adapters.features import ClinicalFeatures
from fhir_adapters.pseudonym import pseudonym
from service.assessment import Assessment

# ClinicalFeatures fields that hold references (a feature's provenance, or the encounter).
_REFERENCE_KEYS = frozenset({"source", "encounter"})
_REFERENCES_KEYS = frozenset({"sources"})


def stored_features(features: ClinicalFeatures, key: bytes) -> str:
    """``features`` as JSON with every reference pseudonymised and no birth date."""
    document = orjson.loads(orjson.dumps(features))
    age = document.get("age_years")
    if isinstance(age, dict):
        age.pop("effective", None)
    return orjson.dumps(_pseudonymise(document, key)).decode()


def _pseudonymise(node: Any, key: bytes) -> Any:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for name, value in node.items():
            if name in _REFERENCE_KEYS and isinstance(value, str):
                out[name] = pseudonym(key, value)
            elif name in _REFERENCES_KEYS and isinstance(value, list):
                out[name] = [pseudonym(key, v) if isinstance(v, str) else v for v in value]
            else:
                out[name] = _pseudonymise(value, key)
        return out
    if isinstance(node, list):
        return [_pseudonymise(v, key) for v in node]
    return node


def stored_assessment(assessment: Assessment, key: bytes) -> Assessment:
    """The answer as the store keeps it: contribution sources pseudonymised."""
    return _map_sources(assessment, lambda ref: pseudonym(key, ref))


def restore_sources(assessment: Assessment, references: Iterable[str], key: bytes) -> Assessment:
    """The stored answer with its sources mapped back through the retried bundle's
    ``references``. A pseudonym the bundle does not explain stays as it is (the bundle
    hash matched, so this does not happen)."""
    by_pseudonym = {pseudonym(key, ref): ref for ref in references}
    return _map_sources(assessment, lambda p: by_pseudonym.get(p, p))


def _map_sources(assessment: Assessment, convert: Callable[[str], str]) -> Assessment:
    contributions = tuple(
        replace(c, sources=tuple(convert(s) for s in c.sources)) for c in assessment.contributions
    )
    return replace(assessment, contributions=contributions)
