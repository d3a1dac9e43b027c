"""Turning raw per-candidate inputs into the five comparable signals and one score."""

from __future__ import annotations

import numpy as np

LN2 = np.log(2.0)


def standardize(x: np.ndarray, min_sd: np.ndarray | None = None) -> np.ndarray:
    """z-score over the candidate set, each column of a 2-D array on its own (one pass for
    all signals); a constant column carries no information -> zeros. `min_sd` (per
    column) floors the deviation: a spread smaller than it is noise, not signal."""
    x = np.asarray(x, dtype=np.float32)
    if x.size == 0:
        return x
    d = x - x.mean(axis=0)  # the deviations once, for the spread and the z-scores
    sd = np.sqrt(np.einsum("ij,ij->j", d, d) / len(x)) if x.ndim == 2 else d.std()
    flat = sd < 1e-9
    if min_sd is not None:
        sd = np.maximum(sd, min_sd)
    z = d / np.where(flat, 1.0, sd).astype(np.float32)
    if flat.any():
        z[..., flat] = 0.0
    return z


def decay(age_s: np.ndarray, half_life_s: float) -> np.ndarray:
    """2^(-age/half_life) for non-negative ages; unknown (negative sentinel) ages give 0."""
    age = np.asarray(age_s, dtype=np.float64)
    out = np.exp(-np.maximum(age, 0.0) * (LN2 / half_life_s))
    out[age < -1e17] = 0.0  # NO_TIME sentinel
    return out.astype(np.float32)


def blend(signals: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, contributions): contributions[i, s] = weights[s] * signals[i, s]."""
    contrib = signals * np.asarray(weights, dtype=np.float32)[None, :]
    return contrib.sum(1), contrib
