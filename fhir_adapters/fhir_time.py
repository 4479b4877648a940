"""FHIR date / dateTime / instant strings to timezone-aware UTC datetimes.

FHIR allows partial dates ("2020", "2020-05", "2020-05-01"); a partial date stands for the
start of the period it names. A dateTime without a timezone (not valid FHIR, but sent) is
read as UTC. Anything unreadable is ``None``: the caller warns and ignores the element.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

_YEAR = re.compile(r"\d{4}")
_YEAR_MONTH = re.compile(r"(\d{4})-(\d{2})")


# Parsed strings, shared across requests: whole histories repeat the same timestamps
# (every Observation of a visit), and datetimes are immutable. Bounded: cleared when full.
_CACHE: dict[str, datetime | None] = {}
_CACHE_SIZE = 8192


def parse_fhir_datetime(text: object) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return _CACHE[text]
    except KeyError:
        pass
    parsed = _parse(text)
    if len(text) <= 40:  # keeps the cache small: longer strings are not worth remembering
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[text] = parsed
    return parsed


def _parse(text: str) -> datetime | None:
    if len(text) < 4:
        return None
    try:
        if len(text) == 4:
            return _from_partial(_YEAR.fullmatch(text), month=False)
        if len(text) == 7:
            return _from_partial(_YEAR_MONTH.fullmatch(text), month=True)
        parsed = datetime.fromisoformat(text)
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            # A bare date: fromisoformat gave midnight, which is the start of the day.
            return parsed.replace(tzinfo=UTC)
        if "T" not in text:
            return None  # FHIR separates date and time with "T" only
        return to_utc(parsed)
    except (ValueError, OverflowError):  # out-of-range dates, or UTC shifts past year 9999
        return None


def _from_partial(match: re.Match[str] | None, *, month: bool) -> datetime | None:
    if match is None:
        return None
    year = int(match.group(1) if month else match.group(0))
    return datetime(year, int(match.group(2)) if month else 1, 1, tzinfo=UTC)


def local_date(value: object) -> date | None:
    """The calendar date a FHIR date / dateTime names where it was recorded, i.e. in the
    offset it was written with: "2025-03-01T20:00:00-08:00" -> 2025-03-01 (in UTC it is
    already 2025-03-02). Takes the JSON string, or the date / datetime an R4B model holds.
    ``None`` when unreadable (as ``parse_fhir_datetime``)."""
    if isinstance(value, datetime):  # before date: a datetime is a date
        return value.date()  # an aware datetime's own (local) date
    if isinstance(value, date):
        return value
    utc = parse_fhir_datetime(value)
    if utc is None or not isinstance(value, str):
        return None
    if "T" in value:  # a dateTime with a time: its date before conversion to UTC
        return datetime.fromisoformat(value).date()
    return utc.date()  # a (partial) date: UTC midnight of that very date


def to_utc(value: datetime) -> datetime:
    """Naive datetimes are read as UTC (documented)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def date_to_utc(value: date) -> datetime:
    return datetime(value.year, value.month, value.day, tzinfo=UTC)
