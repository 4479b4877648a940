"""Extraction latency: p50 / p99 for a 20-entry triage bundle and a ~1 MB whole-history
bundle, and the ratio to the targets (100 us and 5 ms p50). Not a test: run it by hand,
``.venv/bin/python bench/bench_extract.py``.

For each bundle it also prints the floor no extractor on this machine gets under: parsing
with orjson, the nesting-depth check and freeing the parsed tree, with nothing read from it.

The 1 MB bundle is the Synthea sample closest to 1 MB from ../shared/fhir-samples when
present, else one generated here (a patient with 25 years of yearly visits).
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "fhir_adapters"))

from fhir_builder import (  # noqa: E402
    REQUEST_TIME,
    blood_pressure,
    bundle,
    concept,
    condition,
    encounter,
    observation,
    patient,
)

from fhir_adapters import ExtractionConfig, extract  # noqa: E402
from fhir_adapters.limits import exceeds_depth  # noqa: E402

SAMPLES = REPO.parent / "shared" / "fhir-samples" / "synthea"
CONFIG = ExtractionConfig(pseudonym_key=b"bench-key")
TARGET_TRIAGE_S = 100e-6
TARGET_HISTORY_S = 5e-3


def triage_bundle() -> bytes:
    """20 entries: Patient, Encounter, 12 Observations, 6 Conditions."""
    sn = "http://snomed.info/sct"
    resources = [
        patient(race=["2054-5"], ethnicity=["2186-5"]),
        encounter(reasons=[(sn, "29857009")]),
        blood_pressure(150, 92, id="bp"),
        observation("8867-4", 104, "/min", id="hr"),
        observation("9279-1", 20, "/min", id="rr"),
        observation("59408-5", 95, "%", id="spo2"),
        observation("8310-5", 37.2, "Cel", id="temp"),
        observation("29463-7", 92, "kg", id="wt"),
        observation("8302-2", 170, "cm", id="ht"),
        observation("39156-5", 31.8, "kg/m2", id="bmi"),
        observation("89579-7", 41, "ng/L", id="tn1", minutes=-5),
        observation("89579-7", 12, "ng/L", id="tn0", minutes=-180),
        observation("72166-2", id="smk", valueCodeableConcept=concept(sn, "449868002")),
        observation("11524-6", id="ecg", valueCodeableConcept=concept(sn, "428750005")),
        condition(sn, "38341003", id="htn"),
        condition(sn, "55822004", id="hld"),
        condition(sn, "44054006", id="dm"),
        condition(sn, "267036007", id="dys", minutes=0),
        condition(sn, "399211009", id="mi"),
        condition(sn, "422587007", id="nausea", minutes=-5),
    ]
    return bundle(*resources)


def history_bundle() -> tuple[bytes, str]:
    samples = sorted(SAMPLES.glob("*.json")) if SAMPLES.is_dir() else []
    if samples:
        best = min(samples, key=lambda p: abs(p.stat().st_size - 1_000_000))
        return best.read_bytes(), f"Synthea sample {best.name}"
    start = datetime(2000, 1, 1, tzinfo=UTC)
    resources = [patient()]
    for year in range(25):
        for visit in range(12):
            minutes = start + timedelta(days=365 * year + 30 * visit) - REQUEST_TIME
            offset = minutes.total_seconds() / 60 + (REQUEST_TIME - start).total_seconds() / 60
            tag = f"{year}-{visit}"
            resources.append(
                encounter(
                    id=f"e{tag}",
                    status="finished",
                    start=(start + timedelta(minutes=offset)).isoformat(),
                )
            )
            resources.append(blood_pressure(120 + visit, 80, id=f"bp{tag}", minutes=offset))
            resources.append(observation("29463-7", 80, "kg", id=f"w{tag}", minutes=offset))
            resources.append(observation("8302-2", 175, "cm", id=f"h{tag}", minutes=offset))
            resources.append(observation("2093-3", 190, "mg/dL", id=f"chol{tag}", minutes=offset))
    return bundle(*resources), "generated"


def measure(fn: Callable[[], object], seconds: float) -> list[float]:
    for _ in range(20):
        fn()
    samples = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        begin = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - begin)
    return samples


def parse_only(data: bytes) -> None:
    """The fixed cost of any extraction: the depth check, orjson, and freeing the tree."""
    exceeds_depth(data, CONFIG.max_depth)
    orjson.loads(data)


def report(name: str, data: bytes, target: float, seconds: float) -> None:
    samples = measure(lambda: extract(data, CONFIG, request_time=REQUEST_TIME), seconds)
    p50 = statistics.median(samples)
    p99 = statistics.quantiles(samples, n=100)[98]
    print(
        f"{name}: {len(data) / 1024:.0f} KiB, n={len(samples)}, p50={p50 * 1e6:.0f} us, "
        f"p99={p99 * 1e6:.0f} us, p50/target={p50 / target:.2f} (target {target * 1e6:.0f} us)"
    )
    floor = statistics.median(measure(lambda: parse_only(data), seconds / 2))
    print(
        f"  floor (depth check + orjson.loads + free, nothing read): p50={floor * 1e6:.0f} us "
        f"= {floor / target:.2f} of the target; reading and deriving: {(p50 - floor) * 1e6:.0f} us"
    )


def main() -> None:
    gc.freeze()  # as the service does after start-up: keeps GC pauses out of the tail
    data = triage_bundle()
    assert len(orjson.loads(data)["entry"]) == 20
    report("triage bundle (20 entries)", data, TARGET_TRIAGE_S, 3.0)
    history, origin = history_bundle()
    report(f"whole history ({origin})", history, TARGET_HISTORY_S, 5.0)


if __name__ == "__main__":
    main()
