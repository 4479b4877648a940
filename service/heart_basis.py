"""``models.heart.HeartScore`` -> the transport-free ``HeartBasis`` the Assessment carries."""

from __future__ import annotations

from models.heart import HeartScore
from service.assessment import HeartBasis, RiskBand


def heart_basis(score: HeartScore) -> HeartBasis:
    return HeartBasis(
        total=score.total,
        history=score.history,
        ecg=score.ecg,
        age=score.age,
        risk_factors=score.risk_factors,
        troponin=score.troponin,
        band=RiskBand(score.band.value),
    )


def heart_warnings(score: HeartScore) -> tuple[str, ...]:
    """Engine warnings for HEART items scored 0 for lack of data, e.g. ``heart_ecg_unknown``."""
    return tuple(f"heart_{note.value}" for note in score.notes)
