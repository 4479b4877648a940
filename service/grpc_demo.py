"""``triage demo``: send a handful of generated encounters through a running server and print
the screens. The encounters are synthetic (``models.cohort``); two are shaped on purpose:

- a man with shoulder pain (no chest pain), hypertension and a family history of premature
  coronary disease;
- a woman with dyspnea and nausea and no chest pain: the "atypical" presentation that must
  not be under-triaged.
"""

from __future__ import annotations

import dataclasses
import sys
import uuid

import grpc
from google.protobuf import json_format
from triage.v1 import triage_pb2, triage_pb2_grpc

from fhir_adapters.features import ClinicalSex, Finding, RiskFactors, Symptoms
from models.cohort.bundles import build_bundle, example_cases
from models.cohort.table import CohortCase
from service import screen

_DEMO_SEED = 7
_OTHERS = 3


def _with_story(case: CohortCase, symptoms: Symptoms, risk_factors: RiskFactors) -> CohortCase:
    return dataclasses.replace(
        case,
        features=dataclasses.replace(case.features, symptoms=symptoms, risk_factors=risk_factors),
    )


def demo_cases() -> list[tuple[str, CohortCase]]:
    """(title, case) pairs: the two shaped stories first, then a few cohort encounters."""
    cases = example_cases(seed=_DEMO_SEED, n=40)
    yes = Finding(True)
    man = next(c for c in cases if c.sex is ClinicalSex.MALE and 50 <= c.age <= 70)
    woman = next(c for c in cases if c.sex is ClinicalSex.FEMALE and 55 <= c.age <= 80)
    shaped = [
        (
            "Man, shoulder pain, hypertension, family history",
            _with_story(
                dataclasses.replace(man, smoker=False, obesity_coded=False),
                Symptoms(shoulder_pain=yes),
                RiskFactors(hypertension=yes, family_history=yes),
            ),
        ),
        (
            "Woman, dyspnea and nausea, no chest pain",
            _with_story(woman, Symptoms(dyspnea=yes, nausea=yes), woman.features.risk_factors),
        ),
    ]
    others = [c for c in cases if c is not man and c is not woman][:_OTHERS]
    return shaped + [(f"Cohort encounter {c.index}", c) for c in others]


def run(target: str, *, as_json: bool = False, timeout: float = 10.0) -> int:
    """Assess every demo case through ``target``; 0 when all succeeded."""
    failures = 0
    with grpc.insecure_channel(target) as channel:
        stub = triage_pb2_grpc.TriageServiceStub(channel)
        for title, case in demo_cases():
            request = triage_pb2.AssessRequest(
                fhir_bundle=build_bundle(case, validate=False),
                request_id=f"demo-{uuid.uuid4()}",
            )
            try:
                answer = stub.Assess(request, timeout=timeout)
            except grpc.RpcError as err:
                failures += 1
                print(f"{title}: {err.code().name}: {err.details()}", file=sys.stderr)
                continue
            if as_json:
                print(json_format.MessageToJson(answer))
            else:
                print(screen.render(answer, title=title))
                print()
    return 0 if failures == 0 else 1
