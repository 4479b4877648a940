"""What the audit store keeps instead of the bundle's own identifiers.

Feature sources ("Patient/123", "Observation/abc") are the EHR's identifiers for this
patient's records, so the store holds their keyed pseudonyms (the same HMAC as the
patient and encounter pseudonym columns: whoever holds the key and the bundle can link
them). The birth date behind ``age_years`` is not kept: the age is.

The stored answer that an idempotent retry replays keeps pseudonyms too; a retry carries
the same bundle, whose references map them back (``restore_sources``), so the client gets
exactly the answer it was first given.

A quantity's ``comparator`` is kept only when it is one of FHIR's four bounds
(``fhir_adapters.features.COMPARATORS``). The adapters refuse anything else; this is defence
in depth, since a free-text comparator would put whatever the EHR sent into the store
verbatim (``service.contributions`` drops it too).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import orjson

from fhir_adapters.features import COMPARATORS, ClinicalFeatures, Status
from fhir_adapters.pseudonym import pseudonym
from service.assessment import Assessment, Contribution

# ClinicalFeatures fields that hold references: a feature's provenance, or the encounter.
_REFERENCE = frozenset({"source", "encounter"})
_REFERENCES = "sources"
_COMPARATOR = "comparator"
# How service.contributions renders a troponin value: a bound, the number, the ratio to URL.
_NUMBER = r"(?:-?(?:[0-9][0-9.e+-]*|inf)|nan)"  # what format(x, "g") writes
_BOUND = r"(?:<=|>=|<|>)?"
_TROPONIN_TEXT = re.compile(
    rf"{_BOUND}{_NUMBER} ng/L"
    rf"(?: \({_BOUND}{_NUMBER} x URL(?:; {_BOUND}{_NUMBER} x sex-specific URL)?\))?"
)
_STATUSES = frozenset(s.value for s in Status)
# Appended to the troponin's text when a (newer) result could not be read.
UNREAD_NOTE = "; a troponin result could not be read"


def safe_comparator(comparator: str | None) -> str | None:
    """The comparator when it is one of the four bounds, else None (dropped)."""
    return comparator if comparator in COMPARATORS else None


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
            elif name == _COMPARATOR and value not in COMPARATORS:
                node[name] = None
        elif type(value) is list and name == _REFERENCES:
            node[name] = [pseudonyms[v] if type(v) is str else v for v in value]
        elif type(value) is dict or type(value) is list:
            _pseudonymise(value, pseudonyms)


def stored_assessment(assessment: Assessment, pseudonyms: Pseudonyms) -> Assessment:
    """The answer as the store keeps it: contribution sources pseudonymised, and no troponin
    text with a comparator other than the four bounds."""
    stored = _map_sources(assessment, pseudonyms.__getitem__)
    contributions = tuple(
        _safe_troponin(c) if c.feature == "troponin" else c for c in stored.contributions
    )
    return replace(stored, contributions=contributions)


def _safe_troponin(contribution: Contribution) -> Contribution:
    """A value text in neither rendered form (a status, or a bound and a number) cannot be
    split into comparator and number safely: only its status is kept."""
    text = contribution.value.removesuffix(UNREAD_NOTE)
    if text in _STATUSES or _TROPONIN_TEXT.fullmatch(text):
        return contribution
    return replace(contribution, value=contribution.status)


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
    evidence = tuple(
        replace(e, sources=tuple(convert(s) for s in e.sources)) for e in assessment.evidence
    )
    return replace(assessment, contributions=contributions, evidence=evidence)
