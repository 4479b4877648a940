"""Synthetic reference cohort: generative model (``generator``), columns and their map to
``ClinicalFeatures`` (``table``), and FHIR R4 triage bundles for any subset (``bundles``)."""

from .generator import generate_cohort
from .params import (
    HISTORICAL_UNDER_TESTING,
    CohortParams,
    LabelBias,
    PresentationShift,
)
from .table import CohortCase, CohortTable

__all__ = [
    "HISTORICAL_UNDER_TESTING",
    "CohortCase",
    "CohortParams",
    "CohortTable",
    "LabelBias",
    "PresentationShift",
    "generate_cohort",
]
