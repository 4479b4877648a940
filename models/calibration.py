"""Calibration slope and intercept (logistic recalibration), by Newton's method.

slope: coefficient b of ``logit P(y) = a + b * logit(p)`` (1 is ideal; < 1 means the model
is over-confident). intercept: calibration-in-the-large, ``a`` in
``logit P(y) = a + logit(p)`` with the slope fixed at 1 (0 is ideal; > 0 means the model
under-predicts risk).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
_EPS = 1e-6


def _logit(p: FloatArray) -> FloatArray:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    out: FloatArray = np.log(q / (1 - q))
    return out


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


def calibration_slope(p: FloatArray, y: npt.NDArray[np.bool_], iterations: int = 50) -> float:
    lp = _logit(p)
    design = np.column_stack([np.ones_like(lp), lp])
    beta = np.array([0.0, 1.0])
    yf = np.asarray(y, dtype=np.float64)
    for _ in range(iterations):
        mu = _sigmoid(design @ beta)
        grad = design.T @ (yf - mu)
        hess = (design * (mu * (1 - mu))[:, None]).T @ design
        step = np.linalg.solve(hess + 1e-9 * np.eye(2), grad)
        beta = beta + step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[1])


def calibration_intercept(p: FloatArray, y: npt.NDArray[np.bool_], iterations: int = 50) -> float:
    lp = _logit(p)
    yf = np.asarray(y, dtype=np.float64)
    a = 0.0
    for _ in range(iterations):
        mu = _sigmoid(a + lp)
        step = float((yf - mu).sum() / max((mu * (1 - mu)).sum(), 1e-12))
        a += step
        if abs(step) < 1e-12:
            break
    return a
