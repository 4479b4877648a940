"""Troponin: the latest result before the anchor, in ng/L, with its upper reference limit;
and every result within the staleness window that was above its limit.

A comparator other than FHIR's "<", "<=", ">=", ">" makes the result malformed (not read).

The URL is ``Observation.referenceRange.high`` (the range whose ``appliesTo`` matches the
patient's sex, else the first range without ``appliesTo``); otherwise the documented
default for the LOINC code, sex-specific for high-sensitivity assays. With sex unknown a
high-sensitivity assay uses the female (lower) limit: a lower limit errs towards
flagging, never towards missing, an infarction.

A lab range that states no sex on a high-sensitivity assay is still the limit (it is the
assay's own), but where the sex-specific default is lower it is reported beside it
(``Troponin.sex_specific_url_ng_l``), and results above it within the window are listed
(``Troponin.above_sex_specific_url``): the policy does not suggest early discharge on them.

Defaults (99th percentile URLs, ng/L), sources in docs/fhir_adapters.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from fhir_adapters import codes
from fhir_adapters.facts import ObservationFact, Quantity, ReferenceRange
from fhir_adapters.features import (
    ABSENT,
    COMPARATORS,
    ClinicalSex,
    Finding,
    Status,
    Troponin,
    TroponinAssay,
    UrlSource,
    above_limit,
)
from fhir_adapters.rules.context import Context, sources
from fhir_adapters.rules.readings import Limits, read_quantity
from fhir_adapters.units import Dimension, UnitProblem, convert
from fhir_adapters.warnings import WarningCode

TROPONIN_LIMITS = Limits(0.0, 1_000_000.0)  # ng/L; above 1 g/L is not a measurement


@dataclass(frozen=True, slots=True)
class DefaultUrl:
    female: float
    male: float

    @property
    def sex_specific(self) -> bool:
        return self.female != self.male


DEFAULT_URL_NG_L: dict[str, DefaultUrl] = {
    "89579-7": DefaultUrl(female=16.0, male=34.0),  # hs-TnI, Abbott ARCHITECT STAT
    "67151-1": DefaultUrl(female=9.0, male=17.0),  # hs-TnT, Roche Elecsys (sex-specific)
    "10839-9": DefaultUrl(40.0, 40.0),  # TnI, Siemens ADVIA Centaur TnI-Ultra
    "49563-0": DefaultUrl(40.0, 40.0),  # TnI (sensitive), same default
    "42757-5": DefaultUrl(80.0, 80.0),  # TnI whole blood, Abbott i-STAT cTnI
    "6598-7": DefaultUrl(10.0, 10.0),  # TnT, Roche Elecsys 4th generation
    "48425-3": DefaultUrl(10.0, 10.0),  # TnT whole blood, same analyte limit (unverified)
}


_TROPONIN_CODINGS = frozenset((codes.LOINC, code) for code in codes.TROPONIN)


@dataclass(slots=True)
class _Result:
    obs: ObservationFact
    loinc: str
    value_ng_l: float | None  # None: implausible
    comparator: str | None


def derive_troponin(
    ctx: Context, observations: list[ObservationFact], sex: ClinicalSex, staleness: timedelta
) -> tuple[Troponin, Finding]:
    """The latest result, and the results within ``staleness`` above their limit."""
    results, newest_unread = _results(ctx, observations)
    latest = _latest(ctx, results, sex, staleness)
    above_url, above_sex_specific_url = _raised_in_window(ctx, results, sex, staleness)
    if newest_unread is not None and (latest.effective is None or newest_unread > latest.effective):
        # Also when none was read: "missing" must not hide a result that exists.
        latest = replace(latest, newer_unread=True)
    if above_sex_specific_url.present:
        latest = replace(latest, above_sex_specific_url=above_sex_specific_url)
    return latest, above_url


def _raised_in_window(
    ctx: Context, results: list[_Result], sex: ClinicalSex, staleness: timedelta
) -> tuple[Finding, Finding]:
    """The results within ``staleness`` above their limit, and those above only a lower
    sex-specific limit (see the module docstring)."""
    raised = []
    raised_for_sex = []
    for result in results:
        header = result.obs.header
        assert header.time is not None  # the gate admits only timed resources
        value = result.value_ng_l
        if value is None or ctx.anchor.time - header.time > staleness:
            continue
        # The latest result's limit problems are warned by _latest; not twice here.
        url, _, sex_specific_url = _url(None, result, sex)
        if above_limit(value, url, result.comparator):
            raised.append((header.time, header.entry, header.ref))
        elif sex_specific_url is not None and above_limit(
            value, sex_specific_url, result.comparator
        ):
            raised_for_sex.append((header.time, header.entry, header.ref))
    return _finding(raised), _finding(raised_for_sex)


def _finding(raised: list[tuple[datetime, int, str]]) -> Finding:
    return Finding(True, sources(ref for _, _, ref in sorted(raised))) if raised else ABSENT


def _latest(
    ctx: Context, results: list[_Result], sex: ClinicalSex, staleness: timedelta
) -> Troponin:
    plausible = [r for r in results if r.value_ng_l is not None]
    if not plausible:
        if not results:
            return Troponin.missing()
        worst = max(results, key=_order)
        return Troponin(
            Status.IMPLAUSIBLE, source=worst.obs.header.ref, effective=worst.obs.header.time
        )
    latest = max(plausible, key=_order)
    header = latest.obs.header
    analyte, high_sensitivity = codes.TROPONIN[latest.loinc]
    assay = TroponinAssay.HIGH_SENSITIVITY if high_sensitivity else TroponinAssay.CONVENTIONAL
    assert header.time is not None
    assert latest.value_ng_l is not None
    if ctx.anchor.time - header.time > staleness:
        ctx.warnings.add(WarningCode.STALE_VALUE, header.path)
        return Troponin(
            Status.STALE, assay=assay, analyte=analyte, loinc=latest.loinc, source=header.ref,
            effective=header.time,
        )  # fmt: skip
    url, url_source, sex_specific_url = _url(ctx, latest, sex)
    if latest.comparator is not None:
        ctx.warnings.add(WarningCode.TROPONIN_CENSORED, header.path + ".valueQuantity.comparator")
    return Troponin(
        Status.PRESENT,
        value_ng_l=latest.value_ng_l,
        comparator=latest.comparator,
        assay=assay,
        analyte=analyte,
        loinc=latest.loinc,
        url_ng_l=url,
        url_source=url_source,
        ratio_to_url=latest.value_ng_l / url if url > 0 else None,
        source=header.ref,
        effective=header.time,
        sex_specific_url_ng_l=sex_specific_url,
    )


def _order(result: _Result) -> tuple[object, float, int]:
    # Latest by time; at the same time the higher value (the safer reading), then entry.
    header = result.obs.header
    return (header.time, result.value_ng_l or 0.0, header.entry)


def _results(
    ctx: Context, observations: list[ObservationFact]
) -> tuple[list[_Result], datetime | None]:
    """The troponin results read, and the time of the newest one that could not be read."""
    results = []
    newest_unread: datetime | None = None
    for obs in observations:
        loinc = None
        for coding in obs.codes:
            if coding in _TROPONIN_CODINGS:
                loinc = coding[1]
                break
        if loinc is None:
            continue
        usable, value = read_quantity(
            ctx, obs.quantity, obs.absent, Dimension.MASS_CONCENTRATION_NG_L, TROPONIN_LIMITS,
            obs.header.entry, ".valueQuantity",
        )  # fmt: skip
        comparator = obs.quantity.comparator if obs.quantity is not None else None
        if usable and comparator is not None and comparator not in COMPARATORS:
            # Not a bound FHIR defines: what the number means is unknown.
            ctx.warnings.add(WarningCode.MALFORMED, obs.header.path + ".valueQuantity")
            usable = False
        if usable:
            results.append(_Result(obs, loinc, value, comparator))
        if not usable or value is None:
            time = obs.header.time
            if time is not None and (newest_unread is None or time > newest_unread):
                newest_unread = time
    return results, newest_unread


def _url(
    ctx: Context | None, result: _Result, sex: ClinicalSex
) -> tuple[float, UrlSource, float | None]:
    """The result's upper reference limit and its source; a reported limit's problems warned
    given ``ctx``. Third: the lower sex-specific default beside a lab limit that states no
    sex (high-sensitivity assays only), else None."""
    default = DEFAULT_URL_NG_L[result.loinc]
    # With sex unknown the female (lower) limit: it errs towards flagging, never missing.
    for_sex = default.male if sex is ClinicalSex.MALE else default.female
    reported = _reported_url(ctx, result.obs, sex)
    if reported is not None:
        url, states_sex = reported
        lower = default.sex_specific and not states_sex and for_sex < url
        return url, UrlSource.REFERENCE_RANGE, for_sex if lower else None
    if default.sex_specific and sex in (ClinicalSex.MALE, ClinicalSex.FEMALE):
        return for_sex, UrlSource.DEFAULT_SEX_SPECIFIC, None
    return for_sex, UrlSource.DEFAULT, None


def _reported_url(
    ctx: Context | None, obs: ObservationFact, sex: ClinicalSex
) -> tuple[float, bool] | None:
    """The reported limit in ng/L and whether its range states the patient's sex; None when
    there is none usable (warned, given ``ctx``)."""
    chosen = _matching_range(obs.ranges, sex)
    if chosen is None or chosen.high is None:
        return None
    high: Quantity = chosen.high
    problem = None
    if high.value is None:
        problem = WarningCode.MALFORMED
    else:
        converted = convert(high.value, high.code, high.system, Dimension.MASS_CONCENTRATION_NG_L)
        if converted.problem is not None or converted.value is None:
            missing = converted.problem is UnitProblem.MISSING
            problem = WarningCode.MISSING_UNIT if missing else WarningCode.UNKNOWN_UNIT
        elif not TROPONIN_LIMITS.accepts(converted.value) or converted.value <= 0:
            problem = WarningCode.IMPLAUSIBLE_VALUE
        else:
            return converted.value, bool(chosen.applies_to)
    if ctx is not None:
        ctx.warnings.add(problem, f"{obs.header.path}.referenceRange[{chosen.index}].high")
    return None


def _matching_range(ranges: tuple[ReferenceRange, ...], sex: ClinicalSex) -> ReferenceRange | None:
    with_high = [r for r in ranges if r.high is not None]
    wanted = {ClinicalSex.FEMALE: codes.FEMALE_CODES, ClinicalSex.MALE: codes.MALE_CODES}.get(sex)
    if wanted is not None:
        for candidate in with_high:
            if any(code in wanted for _, code in candidate.applies_to):
                return candidate
    return next((r for r in with_high if not r.applies_to), None)
