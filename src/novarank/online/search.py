"""Full-text search over titles and tags: a sparse TF-IDF index, rebuilt per catalog view."""

from __future__ import annotations

import re

import numpy as np
import scipy.sparse as sp

_TOKEN = re.compile(r"[\w']+", re.UNICODE)


def tokens(text: str) -> list[str]:
    return [t.lower().strip("'") for t in _TOKEN.findall(text) if t.strip("'")]


class SearchIndex:
    """score(q, item) = sum over query terms of tf-idf(term, item), title and tags alike."""

    def __init__(self, titles: np.ndarray, tags: np.ndarray) -> None:
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for i, (title, tag) in enumerate(zip(titles.tolist(), tags.tolist(), strict=True)):
            for t in set(tokens(f"{title} {str(tag).replace('|', ' ')}")):
                rows.append(i)
                cols.append(vocab.setdefault(t, len(vocab)))
        n = len(titles)
        m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                          shape=(n, max(1, len(vocab))))
        df = np.asarray((m > 0).sum(0)).ravel()
        idf = np.log((1 + n) / (1 + df)).astype(np.float32) + 1.0
        lengths = np.asarray(m.sum(1)).ravel()
        norm = 1.0 / np.sqrt(np.maximum(lengths, 1.0))
        self.matrix = (sp.diags(norm.astype(np.float32)) @ m @ sp.diags(idf)).tocsc()
        self.vocab = vocab

    def search(self, query: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, text scores) of items matching any query term, best first."""
        cols = [self.vocab[t] for t in set(tokens(query)) if t in self.vocab]
        if not cols:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        scores = np.asarray(self.matrix[:, cols].sum(1)).ravel()
        hits = np.flatnonzero(scores > 0)
        order = hits[np.argsort(-scores[hits], kind="stable")][:limit]
        return order.astype(np.int64), scores[order].astype(np.float32)
