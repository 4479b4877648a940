"""Optional strict mode: full validation with fhir.resources R4B (about 3 ms a bundle).

R4B, not the package default (R5), because R5 rejects R4 Encounters (``class`` became a
list, ``reasonCode`` became ``reason``).

Whatever the validator raises becomes ``BundleRejected(STRICT_VALIDATION_FAILED)``: for an
unknown or non-string ``resourceType`` fhir.resources raises ``KeyError`` / ``TypeError``
whose text quotes the bundle, so no exception from it may escape as it is.
"""

from __future__ import annotations

import re

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from fhir_adapters.errors import BundleRejected, Reason

# A FHIR element name. Anything else in a pydantic location (a validator's own label) is
# not a step of the JSON path and is left out.
_ELEMENT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def validate_strict(bundle: bytes) -> None:
    try:
        Bundle.model_validate_json(bundle)
    except ValidationError as error:
        raise BundleRejected(Reason.STRICT_VALIDATION_FAILED, _first_path(error)) from None
    except Exception:  # noqa: BLE001 - see the module docstring: the text may quote the bundle
        raise BundleRejected(Reason.STRICT_VALIDATION_FAILED) from None


def _first_path(error: ValidationError) -> str:
    """JSON path of the first failure, from its location only (never its input value). For
    an unknown element the location ends with the element's name, which is bundle text: the
    path then names the object that holds it."""
    details = error.errors(include_input=False, include_url=False)
    if not details:
        return "$"
    first = details[0]
    loc = first["loc"]
    if first["type"] == "extra_forbidden":
        loc = loc[:-1]
    path = "$"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _ELEMENT_NAME.fullmatch(part):
            path += f".{part}"
    return path
