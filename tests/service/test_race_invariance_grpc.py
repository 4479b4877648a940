"""End to end through gRPC: the same story told with another race or ethnicity gets exactly
the same answer. Race and ethnicity are not model inputs; this proves it at the boundary."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from triage.v1 import triage_pb2

RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETHNICITY_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
OMB = "urn:oid:2.16.840.1.113883.6.238"
RACES = ["1002-5", "2028-9", "2054-5", "2076-8", "2106-3"]
ETHNICITIES = ["2135-2", "2186-5"]


def _with_demographics(bundle: bytes, race: str, ethnicity: str) -> bytes:
    doc = json.loads(bundle)
    for entry in doc["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] != "Patient":
            continue
        others = [
            ext
            for ext in resource.get("extension", [])
            if ext["url"] not in (RACE_URL, ETHNICITY_URL)
        ]
        resource["extension"] = [
            *others,
            {
                "url": RACE_URL,
                "extension": [{"url": "ombCategory", "valueCoding": {"system": OMB, "code": race}}],
            },
            {
                "url": ETHNICITY_URL,
                "extension": [
                    {"url": "ombCategory", "valueCoding": {"system": OMB, "code": ethnicity}}
                ],
            },
        ]
    return json.dumps(doc).encode()


def _clinical_answer(answer: triage_pb2.Assessment) -> tuple[Any, ...]:
    return (
        answer.mace_probability,
        answer.band,
        answer.esi_level,
        tuple(answer.recommended_actions),
        answer.heart_score,
        answer.heart.SerializeToString(deterministic=True),
        tuple(f.SerializeToString(deterministic=True) for f in answer.top_features),
        tuple(answer.warnings),
    )


def test_race_and_ethnicity_never_change_the_answer(
    serve: Callable[..., Any], example_bundles: list[bytes]
) -> None:
    served = serve()
    served.engine.reload()
    for bundle in example_bundles[:6]:
        answers = {
            _clinical_answer(
                served.stub.Assess(
                    triage_pb2.AssessRequest(
                        fhir_bundle=_with_demographics(bundle, race, ethnicity),
                        request_id=str(uuid.uuid4()),
                    ),
                    timeout=10,
                )
            )
            for race in RACES
            for ethnicity in ETHNICITIES
        }
        assert len(answers) == 1
