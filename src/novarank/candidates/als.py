"""Matrix factorisation with the `implicit` library's ALS (confidence-weighted)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits


@dataclass(frozen=True)
class ALSConfig:
    factors: int = 64
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 15
    seed: int = 0


def fit_als(interactions: sp.csr_matrix, cfg: ALSConfig = ALSConfig()
            ) -> tuple[np.ndarray, np.ndarray]:
    """(user_factors, item_factors) as float32 arrays; score(u, i) = U[u] . V[i]."""
    from implicit.cpu.als import AlternatingLeastSquares

    # implicit parallelises itself; a second BLAS thread pool would only fight it
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=cfg.factors, regularization=cfg.regularization,
                                        alpha=cfg.alpha, iterations=cfg.iterations,
                                        random_state=cfg.seed, dtype=np.float32)
        model.fit(interactions.tocsr().astype(np.float32), show_progress=False)
    return (np.ascontiguousarray(model.user_factors, dtype=np.float32),
            np.ascontiguousarray(model.item_factors, dtype=np.float32))
