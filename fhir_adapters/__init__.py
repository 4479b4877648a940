"""FHIR R4 Bundle -> ``ClinicalFeatures`` (for the model and the clinical rules) and
``AuditAttributes`` (for the fairness audit only).

    extract(bundle, config, *, request_time, encounter_id=None) -> Extraction
    extract_variants(bundle, config, *, request_time, encounter_id=None, variants)
        -> (Extraction, [Extraction per DemographicOverride])
    (the same in two steps, for callers that time them apart: fhir_adapters.extract.parse
    then fhir_adapters.extract.derive_variants)
    cited_references(bundle, config) -> every reference a feature's source can be

See docs/fhir_adapters.md for the features, codes and rules.
"""

from fhir_adapters.config import ExtractionConfig
from fhir_adapters.derive import DemographicOverride
from fhir_adapters.errors import BundleRejected, BundleTooLarge, FhirAdapterError, Reason
from fhir_adapters.extract import cited_references, extract, extract_variants
from fhir_adapters.features import Extraction
from fhir_adapters.warnings import WarningCode

__all__ = [
    "BundleRejected",
    "BundleTooLarge",
    "DemographicOverride",
    "Extraction",
    "ExtractionConfig",
    "FhirAdapterError",
    "Reason",
    "WarningCode",
    "cited_references",
    "extract",
    "extract_variants",
]
