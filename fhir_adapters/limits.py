"""Cheap checks that bound the work before the bundle is walked.

Nesting depth is measured on the raw bytes with C-speed ``bytes`` operations (and numpy
for large inputs), not by walking the parsed tree: escaped backslashes and quotes are
dropped, every byte other than quotes and brackets is deleted, string contents (every
other piece between quotes) are removed, and the remaining brackets are peeled one
nesting level per pass (or summed with numpy when there are many). For valid JSON this
is exact; for invalid JSON the caller lets the parser decide.
"""

from __future__ import annotations

import re

import numpy as np

from fhir_adapters.errors import BundleTooLarge, Reason

# Map every opening bracket to "<" and every closing one to ">" and delete everything else
# except the quote, so that only string delimiters and nesting structure remain.
_TABLE = bytes.maketrans(b"{[}]", b"<<>>")
_DELETE = bytes(b for b in range(256) if b not in b'{}[]"')
_ESCAPE = re.compile(rb"\\.", re.DOTALL)
# Few escapes (the common case) are found with bytes.find; many by the regex engine, whose
# fixed per-byte cost is only worth paying when a Python loop would be longer.
_MANY_ESCAPES = 4096
# Above this many bracket bytes numpy's fixed cost (~15 us) beats peeling level by level.
_VECTORISE_ABOVE = 4096
_OPEN = ord("<")


def check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise BundleTooLarge(Reason.TOO_MANY_BYTES)


def exceeds_depth(data: bytes, max_depth: int) -> bool:
    """True when the JSON text nests objects/arrays deeper than ``max_depth`` (or, for
    text that is not valid JSON, when the brackets do not close within that depth)."""
    skeleton = _drop_escapes(data).translate(_TABLE, _DELETE)
    # Quotes alternate open/close. Removing two adjacent quotes drops an empty string or
    # merges two neighbouring strings, neither of which changes the structure; it leaves
    # few quotes, and then every odd piece between quotes is a string's content.
    brackets = b"".join(skeleton.replace(b'""', b"").split(b'"')[::2])
    if len(brackets) > _VECTORISE_ABOVE:
        return _max_depth_vectorised(brackets) > max_depth
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets = brackets.replace(b"<>", b"")
    return bool(brackets)


def _max_depth_vectorised(brackets: bytes) -> int:
    """The same answer for long inputs: the running sum of opens (+1) and closes (-1)."""
    steps = np.where(np.frombuffer(brackets, dtype=np.uint8) == _OPEN, 1, -1)
    return int(np.cumsum(steps).max(initial=0))


def _drop_escapes(data: bytes) -> bytes:
    """Remove the escapes that could be mistaken for structure: an escaped quote or an
    escaped backslash. Other escapes ("\\n", "\\u0041") are deleted with every other
    non-structural byte by the translation that follows."""
    position = data.find(b"\\")
    if position < 0:
        return data
    kept: list[bytes] = []
    start = 0
    escapes = 0
    while position >= 0:
        escapes += 1
        if escapes > _MANY_ESCAPES:
            return _ESCAPE.sub(b"", data)
        if data[position + 1 : position + 2] in (b'"', b"\\"):
            kept.append(data[start:position])
            start = position + 2
        position = data.find(b"\\", position + 2)
    kept.append(data[start:])
    return b"".join(kept)
