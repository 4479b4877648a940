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

# ClinicalFeatures fields that hold references: a feature's provenance, or the encounter.
_REFERENCE = frozenset({"source", "encounter"})
_REFERENCES = "sources"


class Pseudonyms(dict[str, str]):
    """Pseudonyms computed once per reference, for one record: its features and its answer
    cite the same resources repeatedly, and each HMAC costs ~2 us."""

    def __init__(self, key: bytes) -> None:
        super().__init__()
        self.key = key

    def __missing__(self, reference: str) -> str:
        value = self[reference] = pseudonym(self.key, reference)
        return value


def stored_features(features: ClinicalFeatures, pseudonyms: Pseudonyms) -> str:
    """``features`` as JSON with every reference pseudonymised and no birth date."""
    document = orjson.loads(orjson.dumps(features))
    age = document.get("age_years")
    if isinstance(age, dict):
        age.pop("effective", None)
    _pseudonymise(document, pseudonyms)
    return orjson.dumps(document).decode()


def _pseudonymise(node: Any, pseudonyms: Pseudonyms) -> None:
    """Replaces the references in the parsed JSON ``node`` in place. Only containers are
    visited (orjson builds exact dicts and lists): scalars cannot hold a reference."""
    for name, value in node.items() if type(node) is dict else enumerate(node):
        if type(value) is str:
            if name in _REFERENCE:
                node[name] = pseudonyms[value]
        elif type(value) is list and name == _REFERENCES:
            node[name] = [pseudonyms[v] if type(v) is str else v for v in value]
        elif type(value) is dict or type(value) is list:
            _pseudonymise(value, pseudonyms)


def stored_assessment(assessment: Assessment, pseudonyms: Pseudonyms) -> Assessment:
    """The answer as the store keeps it: contribution sources pseudonymised."""
    return _map_sources(assessment, pseudonyms.__getitem__)


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
