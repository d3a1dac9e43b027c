"""Approximate top-N over item factors (faiss IVF), so large catalogs are never scanned whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ItemIndex:
    """Inner-product search over the item vectors of `ids` (default: every item).

    Up to `exact_max` vectors a full scan is both exact and fast; above it an IVF index
    visits only `nprobe` of `nlist` clusters per query. Items with no interactions have
    meaningless factors (ALS leaves them near zero) and would pile into a few huge
    clusters that make every probe slow, so callers index only items with signal;
    the rest reach feeds through the fresh and trending candidate lists.
    """

    def __init__(self, index: object | None, vectors: np.ndarray, ids: np.ndarray) -> None:
        self._index = index
        self._vectors = vectors
        self._ids = ids

    @classmethod
    def build(cls, vectors: np.ndarray, exact_max: int = 50_000, nprobe: int = 32,
              ids: np.ndarray | None = None, seed: int = 0) -> ItemIndex:
        ids = np.arange(len(vectors), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        if len(ids) <= exact_max:
            return cls(None, vectors, ids)
        import faiss

        sub = np.ascontiguousarray(vectors[ids], dtype=np.float32)
        d = sub.shape[1]
        nlist = int(min(4096, max(64, np.sqrt(len(sub)))))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        index.train(sub[rng.choice(len(sub), min(len(sub), nlist * 64), replace=False)])
        index.add_with_ids(sub, ids)
        index.nprobe = nprobe
        return cls(index, vectors, ids)

    @property
    def exact(self) -> bool:
        return self._index is None

    @property
    def size(self) -> int:
        return len(self._ids)

    def search(self, query: np.ndarray, n: int) -> np.ndarray:
        """Item indices of the (approximately) n best inner products, best first."""
        n = min(n, len(self._ids))
        if n <= 0:
            return np.empty(0, np.int64)
        if self._index is None:
            scores = self._vectors[self._ids] @ query
            top = np.argpartition(-scores, n - 1)[:n]
            return self._ids[top[np.argsort(-scores[top])]]
        _, found = self._index.search(query.reshape(1, -1).astype(np.float32), n)
        found = found[0]
        return found[found >= 0]

    def save(self, path: Path) -> bool:
        """Write the IVF index (nothing for an exact index); True when a file was written."""
        if self._index is None:
            return False
        import faiss

        faiss.write_index(self._index, str(path))
        return True

    @classmethod
    def load(cls, path: Path, vectors: np.ndarray, ids: np.ndarray | None = None,
             nprobe: int = 32) -> ItemIndex:
        ids = np.arange(len(vectors), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
        if not path.exists():
            return cls(None, vectors, ids)
        import faiss

        index = faiss.read_index(str(path))
        index.nprobe = nprobe
        return cls(index, vectors, ids)
