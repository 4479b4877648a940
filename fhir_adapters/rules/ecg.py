"""ECG category (HEART's ECG item) from the latest ECG finding before the anchor.

Findings are SNOMED codes in an Observation's code (unless the Observation denies it:
``facts.denies_finding``) or
valueCodeableConcept; in the components of an ECG Observation (see
``facts.observation_relevance``), as a component's valueCodeableConcept or as its code with
valueBoolean true; or in DiagnosticReport.conclusionCode. One resource's category is its
most severe finding: ST deviation > non-specific (LBBB, LVH, paced, repolarisation) >
normal. The latest resource wins (at equal times the more severe). Older than the ECG
staleness window -> category unknown (not scored) with status stale, the stale resource as
source, and a ``stale_value`` warning. Every resource within the window that shows ST
deviation is also returned, whether or not the latest does (a resolved ST change still
means ischaemia), and those of them that show ST elevation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from fhir_adapters import codes
from fhir_adapters.codes import Coding
from fhir_adapters.facts import Header, ObservationFact, ReportFact, denies_finding
from fhir_adapters.features import ABSENT, Ecg, EcgCategory, Finding, Status
from fhir_adapters.rules.context import Context, sources
from fhir_adapters.warnings import WarningCode

_ECG_CODINGS = frozenset((codes.SNOMED, code) for code in codes.ECG_FINDINGS)
_SEVERITY = {EcgCategory.NORMAL: 0, EcgCategory.NONSPECIFIC: 1, EcgCategory.ST_DEVIATION: 2}
_ST_ELEVATION_CODINGS = frozenset((codes.SNOMED, code) for code in codes.ECG_ST_ELEVATION)
_Candidate = tuple[datetime, int, int, EcgCategory, Header, bool]  # bool: ST elevation


def category_of(findings: Iterable[Coding]) -> EcgCategory:
    snomed = {c for s, c in findings if s == codes.SNOMED}
    if snomed & codes.ECG_ST_DEVIATION:
        return EcgCategory.ST_DEVIATION
    if snomed & codes.ECG_NONSPECIFIC:
        return EcgCategory.NONSPECIFIC
    if snomed & codes.ECG_NORMAL:
        return EcgCategory.NORMAL
    return EcgCategory.UNKNOWN


def derive_ecg(
    ctx: Context,
    observations: list[ObservationFact],
    reports: list[ReportFact],
    staleness: timedelta,
) -> tuple[Ecg, Finding, Finding]:
    """The latest ECG's category, and the ECGs within ``staleness`` showing ST deviation and
    ST elevation."""
    candidates: list[_Candidate] = []
    for obs in observations:
        # A denial (valueBoolean false, "No", a zero measurement) says the finding the code
        # names is absent (as for symptoms); its value codes may still name findings.
        denied = denies_finding(obs)
        findings = list(obs.value_codes if denied else obs.codes)
        if not denied:
            findings += obs.value_codes
        for component in obs.components:
            # A component code alone may be a measurement slot (e.g. ST elevation in mm):
            # it is a finding only when its value says true. (A list: a tuple grown once
            # per component costs quadratic time in a bundle with many components.)
            findings += component.value_codes
            if component.value_boolean is True:
                findings += component.codes
        if _ECG_CODINGS.isdisjoint(findings):
            continue  # no ECG finding: category_of would say UNKNOWN
        _add(candidates, obs.header, findings)
    for report in reports:
        _add(candidates, report.header, report.conclusion_codes)
    if not candidates:
        return Ecg(EcgCategory.UNKNOWN), ABSENT, ABSENT
    anchor = ctx.anchor.time
    st = sorted(
        (c for c in candidates if c[3] is EcgCategory.ST_DEVIATION and anchor - c[0] <= staleness),
        key=lambda c: (c[0], c[2]),
    )
    st_in_window = Finding(True, sources(c[4].ref for c in st)) if st else ABSENT
    elevation = [c for c in st if c[5]]
    st_elevation = Finding(True, sources(c[4].ref for c in elevation)) if elevation else ABSENT
    time, _, _, category, header, _ = max(candidates, key=lambda c: (c[0], c[1], c[2]))
    if anchor - time > staleness:
        ctx.warnings.add(WarningCode.STALE_VALUE, header.path)
        # Not scored (UNKNOWN), but the clinician sees which ECG was too old, and when.
        stale = Ecg(EcgCategory.UNKNOWN, header.ref, time, Status.STALE)
        return stale, st_in_window, st_elevation
    return Ecg(category, header.ref, time), st_in_window, st_elevation


def _add(candidates: list[_Candidate], header: Header, findings: Iterable[Coding]) -> None:
    category = category_of(findings)
    if category is EcgCategory.UNKNOWN or header.time is None:
        return
    elevation = not _ST_ELEVATION_CODINGS.isdisjoint(findings)
    candidates.append((header.time, _SEVERITY[category], header.entry, category, header, elevation))
