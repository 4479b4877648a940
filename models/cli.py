"""``triage-models``: cohort, train, evaluate, register, promote, rollback, build-default."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter, ValidationError

from .build import DEFAULT_N_PATIENTS, DEFAULT_SEED, build_default, cohort_description
from .cohort import HISTORICAL_UNDER_TESTING, CohortParams, LabelBias, generate_cohort
from .cohort.bundles import build_bundle
from .errors import EvaluationMismatch, GateFailed, RegistryError
from .evaluate import audit_groups
from .export import export_onnx, onnx_metadata
from .gates import PromotionGates
from .heart import HeartBand, band_for_total
from .label_bias import label_bias_comparison
from .model_card import render_model_card
from .pipeline import demographics, heart_totals, run_pipeline
from .registry import DEFAULT_MODEL_NAME, Registry
from .report import write_report
from .thresholds import Thresholds
from .train import ModelKind

REPO_ROOT = Path(__file__).resolve().parent.parent
REGISTRY_ENV = "TRIAGE_MODEL_REGISTRY"
# The service's setting (Settings.promotion_gates): `promote` applies the gates the service
# will apply on load, so a promoted version is not refused by the running service.
GATES_ENV = "TRIAGE_PROMOTION_GATES"


def _default_registry() -> Path:
    return Path(os.environ.get(REGISTRY_ENV, REPO_ROOT / "models" / "registry"))


def _params(args: argparse.Namespace) -> CohortParams:
    bias = (
        HISTORICAL_UNDER_TESTING
        if getattr(args, "label_bias", "none") == "historical"
        else LabelBias()
    )
    return CohortParams(n=args.n, seed=args.seed, label_bias=bias)


def cmd_cohort(args: argparse.Namespace) -> int:
    table = generate_cohort(_params(args))
    totals = heart_totals(table)
    bands = np.array([band_for_total(int(t)).value for t in totals])
    summary = {
        "n": len(table),
        "true_mace": float(table.true_mace.mean()),
        "recorded_mace": float(table.recorded_mace.mean()),
        "heart_band_share": {b.value: float((bands == b.value).mean()) for b in HeartBand},
        "heart_band_mace": {
            b.value: float(table.true_mace[bands == b.value].mean()) for b in HeartBand
        },
    }
    if args.bundles:
        out = Path(args.bundles)
        out.mkdir(parents=True, exist_ok=True)
        for case in table.cases(range(min(args.limit, len(table)))):
            (out / f"{case.id_prefix}.json").write_bytes(build_bundle(case))
        summary["bundles_written"] = min(args.limit, len(table))
    print(json.dumps(summary, indent=2))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    table = generate_cohort(_params(args))
    result = run_pipeline(
        table,
        seed=args.seed,
        train_on_recorded=args.recorded_labels,
        kind=ModelKind(args.kind),
        n_boot=args.n_boot,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    onnx_bytes = export_onnx(result.model, result.thresholds, model_version="unregistered")
    (out / "model.onnx").write_bytes(onnx_bytes)
    # The evaluation names the artifact it evaluated: `register` refuses any other.
    evaluation = {**result.evaluation, "model_sha256": hashlib.sha256(onnx_bytes).hexdigest()}
    (out / "evaluation.json").write_text(json.dumps(evaluation, indent=2, sort_keys=True))
    (out / "model_card.md").write_text(
        render_model_card(
            name=DEFAULT_MODEL_NAME,
            version="unregistered",
            model_kind=result.model.kind.value,
            evaluation=result.evaluation,
            training_demographics=demographics(result.train_table),
            n_train=len(result.train_table),
            cohort_description=cohort_description(args.n, args.seed),
        )
    )
    print(json.dumps(result.evaluation["summary"], indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    table = generate_cohort(_params(args))
    result = run_pipeline(table, seed=args.seed, n_boot=args.n_boot)
    bias = (
        label_bias_comparison(args.label_bias_n, args.seed, args.n_boot)
        if args.label_bias_n
        else None
    )
    index = write_report(
        Path(args.out),
        result.evaluation,
        result.test_probabilities,
        result.test.true_mace,
        audit_groups(result.test),
        label_bias=bias,
    )
    print(index)
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    src = Path(args.source)
    onnx_bytes = (src / "model.onnx").read_bytes()
    evaluation = json.loads((src / "evaluation.json").read_text())
    if evaluation.get("model_sha256") != hashlib.sha256(onnx_bytes).hexdigest():
        # The metrics the gates judge must be this artifact's, not another run's.
        raise EvaluationMismatch("evaluation.json was not written for this model.onnx")
    meta = onnx_metadata(onnx_bytes)
    th = evaluation["thresholds"]
    model = Registry(Path(args.registry)).register(
        args.name,
        onnx_bytes,
        thresholds=Thresholds(th["low_upper"], th["high_lower"]),
        metrics=evaluation["summary"],
        training_fingerprint=meta.get("training_fingerprint", ""),
        model_card=(src / "model_card.md").read_text(),
        model_kind=meta.get("model_kind", ""),
    )
    print(model.version)
    return 0


def _gates(option: str | None) -> tuple[PromotionGates, str]:
    """``--gates``, else ``TRIAGE_PROMOTION_GATES``, else the defaults; the JSON object is read
    as the service reads it (pydantic, the same field names). Returns the gates and where they
    came from."""
    if option is not None:
        text, source = option, "--gates"
    elif os.environ.get(GATES_ENV):
        text, source = os.environ[GATES_ENV], GATES_ENV
    else:
        return PromotionGates(), "defaults"
    data = json.loads(text)
    # The service's settings refuse unknown keys; a misspelt gate must not silently become
    # the default here either.
    unknown = (
        set(data) - set(PromotionGates.__dataclass_fields__) if isinstance(data, dict) else set()
    )
    if unknown:
        raise ValueError(f"unknown gates: {', '.join(sorted(unknown))}")
    gates = TypeAdapter(PromotionGates).validate_python(data)
    return gates, source


def _gates_or_exit(option: str | None) -> PromotionGates | None:
    try:
        gates, source = _gates(option)
    except (ValueError, ValidationError) as exc:  # JSON or field errors: no gates, no change
        print(f"invalid promotion gates: {exc}", file=sys.stderr)
        return None
    print(f"gates ({source}): {json.dumps(asdict(gates), sort_keys=True)}")
    return gates


def cmd_promote(args: argparse.Namespace) -> int:
    gates = _gates_or_exit(args.gates)
    if gates is None:
        return 2
    report = Registry(Path(args.registry)).promote(args.name, args.version, gates)
    print(report.render())
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    gates = _gates_or_exit(args.gates)
    if gates is None:
        return 2
    print(Registry(Path(args.registry)).rollback(args.name, gates))
    return 0


def cmd_build_default(args: argparse.Namespace) -> int:
    model = build_default(Path(args.registry), n_patients=args.n, seed=args.seed, name=args.name)
    print(f"{model.name} {model.version} sha256={model.sha256}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triage-models", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def cohort_args(p: argparse.ArgumentParser, n: int) -> None:
        p.add_argument("--n", type=int, default=n, help="encounters to generate")
        p.add_argument("--seed", type=int, default=DEFAULT_SEED)
        p.add_argument("--label-bias", choices=("none", "historical"), default="none")

    def registry_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--registry", default=str(_default_registry()))
        p.add_argument("--name", default=DEFAULT_MODEL_NAME)

    p = sub.add_parser("cohort", help="generate a cohort; print its calibration; write bundles")
    cohort_args(p, 10_000)
    p.add_argument("--bundles", help="directory to write FHIR bundles into")
    p.add_argument("--limit", type=int, default=20, help="bundles to write")
    p.set_defaults(func=cmd_cohort)

    p = sub.add_parser("train", help="train, evaluate and export to a directory")
    cohort_args(p, DEFAULT_N_PATIENTS)
    p.add_argument("--out", required=True)
    p.add_argument("--kind", choices=[k.value for k in ModelKind], default=ModelKind.LOGISTIC.value)
    p.add_argument("--recorded-labels", action="store_true", help="train on RECORDED outcomes")
    p.add_argument("--n-boot", type=int, default=200)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="held-out evaluation report (JSON, PNG, HTML)")
    cohort_args(p, DEFAULT_N_PATIENTS)
    p.add_argument("--out", default=str(REPO_ROOT / "reports" / "models"))
    p.add_argument(
        "--label-bias-n",
        type=int,
        default=60_000,
        help="cohort size of the label-bias side-by-side (0: skip)",
    )
    p.add_argument("--n-boot", type=int, default=200)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("register", help="register a `train --out` directory")
    registry_args(p)
    p.add_argument("source")
    p.set_defaults(func=cmd_register)

    def gates_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--gates",
            help=f"promotion gates as a JSON object (default: ${GATES_ENV}, else the built-in)",
        )

    p = sub.add_parser("promote", help="apply the gates, run the model, and make a version active")
    registry_args(p)
    gates_arg(p)
    p.add_argument("version")
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser(
        "rollback", help="re-activate the previously active version (same checks as promote)"
    )
    registry_args(p)
    gates_arg(p)
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("build-default", help="build and promote the default model if none")
    registry_args(p)
    p.add_argument("--n", type=int, default=DEFAULT_N_PATIENTS)
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.set_defaults(func=cmd_build_default)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except GateFailed as exc:
        print(exc.report.render(), file=sys.stderr)
        return 2
    except RegistryError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
