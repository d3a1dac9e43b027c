"""Approximate top-N over item factors (faiss IVF), so large catalogs are never scanned whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ItemIndex:
    """Inner-product search over item vectors.

    Up to `exact_max` items a full scan is both exact and fast; above it an IVF index
    visits only `nprobe` of `nlist` clusters per query.
    """

    def __init__(self, index: object | None, vectors: np.ndarray) -> None:
        self._index = index
        self._vectors = vectors

    @classmethod
    def build(cls, vectors: np.ndarray, exact_max: int = 50_000, nprobe: int = 32,
              seed: int = 0) -> ItemIndex:
        if len(vectors) <= exact_max:
            return cls(None, vectors)
        import faiss

        d = vectors.shape[1]
        nlist = int(min(4096, max(64, np.sqrt(len(vectors)))))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = vectors[rng.choice(len(vectors), min(len(vectors), nlist * 64), replace=False)]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        index.nprobe = nprobe
        return cls(index, vectors)

    @property
    def exact(self) -> bool:
        return self._index is None

    def search(self, query: np.ndarray, n: int) -> np.ndarray:
        """Item indices of the (approximately) n best inner products, best first."""
        n = min(n, len(self._vectors))
        if self._index is None:
            scores = self._vectors @ query
            top = np.argpartition(-scores, n - 1)[:n]
            return top[np.argsort(-scores[top])]
        _, ids = self._index.search(query.reshape(1, -1).astype(np.float32), n)
        ids = ids[0]
        return ids[ids >= 0]

    def save(self, path: Path) -> bool:
        """Write the IVF index (nothing for an exact index); True when a file was written."""
        if self._index is None:
            return False
        import faiss

        faiss.write_index(self._index, str(path))
        return True

    @classmethod
    def load(cls, path: Path, vectors: np.ndarray, nprobe: int = 32) -> ItemIndex:
        if not path.exists():
            return cls(None, vectors)
        import faiss

        index = faiss.read_index(str(path))
        index.nprobe = nprobe
        return cls(index, vectors)
