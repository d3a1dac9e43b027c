"""Sparse item-item neighbours: cosine with shrinkage, top-N per item, computed in blocks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class ItemItemConfig:
    neighbours: int = 200
    shrinkage: float = 10.0
    block: int = 4096  # items per block: bounds peak memory of the co-occurrence product


def top_n_per_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the n largest entries of each row (ties broken by column index)."""
    m = m.tocsr()
    m.eliminate_zeros()
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((m.indices, -m.data, rows))
    rank = np.arange(len(order)) - m.indptr[rows[order]]
    keep = order[rank < n]
    keep.sort()  # original order is row-major, so sorted positions stay row-major
    new_counts = np.bincount(rows[keep], minlength=m.shape[0])
    indptr = np.concatenate([[0], np.cumsum(new_counts)]).astype(np.int64)
    return sp.csr_matrix((m.data[keep], m.indices[keep], indptr), shape=m.shape)


def fit_item_item(interactions: sp.csr_matrix, cfg: ItemItemConfig = ItemItemConfig(),
                  progress: Callable[[int], None] | None = None) -> sp.csr_matrix:
    """Row i holds the `neighbours` most similar items to i, by shrunk cosine.

    sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i| |U_j|) + shrinkage), over binarised interactions.
    """
    x = interactions.tocsr().astype(np.float32)
    x.data[:] = 1.0
    n_items = x.shape[1]
    norms = np.sqrt(np.asarray(x.sum(0)).ravel()).astype(np.float32)
    xc = x.tocsc()
    xt = x.T.tocsr()
    blocks = []
    for lo in range(0, n_items, cfg.block):
        hi = min(lo + cfg.block, n_items)
        co = (xt[lo:hi] @ x).tocsr()  # (block, items) co-occurrence counts
        rows = np.repeat(np.arange(hi - lo), np.diff(co.indptr))
        co.data = co.data / (norms[lo + rows] * norms[co.indices] + cfg.shrinkage)
        co.data[co.indices == lo + rows] = 0.0  # an item is not its own neighbour
        blocks.append(top_n_per_row(co, cfg.neighbours).astype(np.float32))
        if progress:
            progress(hi - lo)
    del xc
    return sp.vstack(blocks, format="csr")
