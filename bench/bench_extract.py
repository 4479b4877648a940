"""Extraction latency: p50 / p99 for a 20-entry triage bundle and a ~1 MB whole-history
bundle, and the ratio to the targets (100 us and 5 ms p50). Not a test: run it by hand,
``.venv/bin/python bench/bench_extract.py``.

For each bundle it also prints the floor no extractor on this machine gets under: parsing
with orjson, the nesting-depth check and freeing the parsed tree, with nothing read from it.

Two ~1 MB whole histories: the Synthea sample closest to 1 MB from ../shared/fhir-samples
(skipped when absent), and a dense one generated here in which three entries in four are
read by the rules (Synthea's are mostly claims, care plans and other resources nobody reads).
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "fhir_adapters"))

from fhir_builder import (  # noqa: E402
    REQUEST_TIME,
    at,
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

SAMPLES = (
    Path(os.environ.get("FHIR_SAMPLES_DIR") or REPO.parent / "shared" / "fhir-samples") / "synthea"
)
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


def synthea_history() -> tuple[bytes, str] | None:
    """The Synthea sample closest to 1 MB: a real-world mix (claims, care plans, imaging ...
    most of which no rule reads)."""
    samples = sorted(SAMPLES.glob("*.json")) if SAMPLES.is_dir() else []
    if not samples:
        return None
    best = min(samples, key=lambda p: abs(p.stat().st_size - 1_000_000))
    return best.read_bytes(), best.name


def dense_history(target_bytes: int = 1_000_000) -> bytes:
    """A ~1 MB history of monthly visits going back from the triage encounter, each an
    Encounter with blood pressure, weight, height (read by the rules) and a cholesterol
    result (not read)."""

    def visit(month: int) -> list[dict[str, object]]:
        minutes = -month * 30 * 24 * 60
        return [
            encounter(id=f"visit{month}", status="finished", start=at(minutes)),
            blood_pressure(120 + month % 20, 80, id=f"bp{month}", minutes=minutes),
            observation("29463-7", 80, "kg", id=f"w{month}", minutes=minutes),
            observation("8302-2", 175, "cm", id=f"h{month}", minutes=minutes),
            observation("2093-3", 190, "mg/dL", id=f"chol{month}", minutes=minutes),
        ]

    base = [patient(), encounter()]
    per_visit = len(bundle(*base, *visit(100))) - len(bundle(*base))
    months = max(1, (target_bytes - len(bundle(*base))) // per_visit)
    return bundle(*base, *(r for month in range(1, months + 1) for r in visit(month)))


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
    synthea = synthea_history()
    if synthea is None:
        print(f"whole history (Synthea sample): skipped, {SAMPLES} is absent")
    else:
        report(f"whole history (Synthea sample {synthea[1]})", synthea[0], TARGET_HISTORY_S, 5.0)
    dense = dense_history()
    entries = len(orjson.loads(dense)["entry"])
    report(f"dense whole history (generated, {entries} entries)", dense, TARGET_HISTORY_S, 5.0)


if __name__ == "__main__":
    main()
