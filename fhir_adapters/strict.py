"""Optional strict mode: full validation with fhir.resources R4B (about 3 ms a bundle).

R4B, not the package default (R5), because R5 rejects R4 Encounters (``class`` became a
list, ``reasonCode`` became ``reason``).
"""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from fhir_adapters.errors import BundleRejected, Reason


def validate_strict(bundle: bytes) -> None:
    try:
        Bundle.model_validate_json(bundle)
    except ValidationError as error:
        raise BundleRejected(Reason.STRICT_VALIDATION_FAILED, _first_path(error)) from None
    except ValueError:  # fhir.resources raises plain ValueError for some structural faults
        raise BundleRejected(Reason.STRICT_VALIDATION_FAILED) from None


def _first_path(error: ValidationError) -> str:
    """JSON path of the first failure, from its location only (never its input value)."""
    details = error.errors(include_input=False, include_url=False)
    if not details:
        return "$"
    path = "$"
    for part in details[0]["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
