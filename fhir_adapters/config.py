"""Extraction settings: limits and clinical windows. Built by the service from its one
settings object; defaults here are the documented defaults."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class ExtractionConfig:
    max_bytes: int = 8 * 1024 * 1024  # whole-history $everything bundles run to several MB
    max_entries: int = 20_000
    max_depth: int = 64  # JSON nesting depth
    vitals_staleness: timedelta = timedelta(hours=24)  # vitals older than this are "stale"
    troponin_staleness: timedelta = timedelta(hours=24)
    ecg_staleness: timedelta = timedelta(hours=24)
    strict_validation: bool = False  # also validate with fhir.resources R4B (about 3 ms)
    pseudonym_key: bytes = b""  # HMAC key for patient / encounter pseudonyms; set by service
