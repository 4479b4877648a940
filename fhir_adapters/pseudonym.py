"""Keyed pseudonyms for patient and encounter references (HMAC-SHA256, hex)."""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(key: bytes, reference: str) -> str:
    if not key:
        # A hash without a key is a lookup table away from the identifier.
        raise ValueError("pseudonym_key must not be empty")
    # The one-shot C implementation; the same value as hmac.new(...).hexdigest().
    return hmac.digest(key, reference.encode("utf-8"), hashlib.sha256).hex()
