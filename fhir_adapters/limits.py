"""Cheap checks that bound the work before the bundle is walked.

Nesting depth is measured on the raw bytes with C-speed ``bytes`` operations (and numpy
for large inputs), not by walking the parsed tree: escaped backslashes and quotes are
skipped, every byte other than quotes and brackets is deleted, string contents (every
other piece between quotes) are removed, and the remaining brackets are peeled one
nesting level per pass (or summed with numpy when there are many). For valid JSON this
is exact; for invalid JSON the caller lets the parser decide.

Large inputs are translated in slices of at most 64 KiB rather than copied whole: a
fresh megabyte-sized buffer per request cost ~0.6 ms of a 1 MB extraction in page faults
here, while slices that small are served, and reused, from the heap. Past a few thousand
escapes the regex fallback does copy the input once.
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
_SLICE = 64 * 1024


def check_size(data: bytes, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise BundleTooLarge(Reason.TOO_MANY_BYTES)


def exceeds_depth(data: bytes, max_depth: int) -> bool:
    """True when the JSON text nests objects/arrays deeper than ``max_depth`` (or, for
    text that is not valid JSON, when the brackets do not close within that depth)."""
    skeleton = _skeleton(data)
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


def _skeleton(data: bytes) -> bytes:
    """The quotes and brackets of ``data``, without those of escapes ("\\"" and "\\\\")."""
    spans = _spans_between_escapes(data)
    if spans is None:
        return _ESCAPE.sub(b"", data).translate(_TABLE, _DELETE)
    if len(spans) == 1 and len(data) <= _SLICE:
        return data.translate(_TABLE, _DELETE)  # the common case: no copy at all
    return b"".join(
        data[begin : min(begin + _SLICE, end)].translate(_TABLE, _DELETE)
        for start, end in spans
        for begin in range(start, end, _SLICE)
    )


def _spans_between_escapes(data: bytes) -> list[tuple[int, int]] | None:
    """The byte ranges around every escaped quote or backslash; None when there are too
    many escapes for a Python loop (the caller then uses the regex engine). A JSON
    reader pairs a backslash with the byte after it, so the search resumes two bytes on
    and a run of backslashes pairs up from its start. Other escapes ("\\n", "\\u0041")
    need no care: translation deletes both of their bytes."""
    spans: list[tuple[int, int]] = []
    start = 0
    escapes = 0
    position = data.find(b"\\")
    while position >= 0:
        escapes += 1
        if escapes > _MANY_ESCAPES:
            return None
        if data[position + 1 : position + 2] in (b'"', b"\\"):
            spans.append((start, position))
            start = position + 2
        position = data.find(b"\\", position + 2)
    spans.append((start, len(data)))
    return spans
