"""Write a Model as a release directory and load it back, memory-mapped and verified."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from novarank.candidates.ann import ItemIndex
from novarank.config import TrainConfig
from novarank.errors import ReleaseError
from novarank.model import Model
from novarank.release.lock import ReleaseLock, verify_release, write_lock

DENSE = ("user_ids", "item_ids", "titles", "creators", "creator_names", "tags", "published_at",
         "available", "hist_indptr", "hist_items", "hist_ts", "hist_weight", "popularity",
         "trending", "quality", "als_users", "als_items", "facet_names")
SPARSE = ("item_item", "facets")
TEXT = {"user_ids", "item_ids", "titles", "creator_names", "tags", "facet_names"}
ANN_FILE = "ann.faiss"


def code_version() -> str:
    from novarank.version import __version__

    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__


def save_release(model: Model, out: str | Path, version: str | None = None,
                 index: ItemIndex | None = None, extra: dict[str, Any] | None = None
                 ) -> ReleaseLock:
    """Write all artifacts to `out` (must not exist or be empty), then lock them."""
    d = Path(out)
    if d.exists() and any(d.iterdir()):
        raise ReleaseError(f"{d} already exists and is not empty: releases are immutable, "
                           "choose a new directory")
    tmp = d.with_name(d.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "arrays").mkdir(parents=True)
    for name in DENSE:
        arr = getattr(model, name)
        if name in TEXT:
            arr = np.asarray(arr, dtype=str)
        np.save(tmp / "arrays" / f"{name}.npy", np.ascontiguousarray(arr), allow_pickle=False)
    for name in SPARSE:
        m: sp.csr_matrix = getattr(model, name).tocsr()
        for part in ("data", "indices", "indptr"):
            np.save(tmp / "arrays" / f"{name}.{part}.npy", getattr(m, part), allow_pickle=False)
    index = index or model.build_index()
    index.save(tmp / ANN_FILE)
    meta = {"name": model.name, "as_of": model.as_of, "n_users": model.n_users,
            "n_items": model.n_items, "item_item_shape": list(model.item_item.shape),
            "facets_shape": list(model.facets.shape)}
    (tmp / "model.json").write_text(json.dumps(meta, indent=2))
    lock = write_lock(tmp, {
        "version": version or d.name,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "data_fingerprint": model.data_fingerprint,
        "config": model.config.model_dump(mode="json"),
        "metrics": model.metrics,
        **(extra or {}),
    })
    if d.exists():
        d.rmdir()
    os.replace(tmp, d)
    return lock


def load_release(directory: str | Path, verify: bool = True
                 ) -> tuple[Model, ItemIndex, ReleaseLock]:
    """(model, ann index, lock). Verifies every hash first and refuses a bad release."""
    d = Path(directory)
    if verify:
        lock = verify_release(d)
    else:
        from novarank.release.lock import read_lock

        lock = read_lock(d)
    meta = json.loads((d / "model.json").read_text())
    arrays = d / "arrays"

    def load(name: str) -> np.ndarray:
        arr = np.load(arrays / f"{name}.npy", mmap_mode="r", allow_pickle=False)
        # a plain ndarray view of the mapping: np.memmap's per-index overhead is ~15 us
        return arr.astype(object) if name in TEXT else arr.view(np.ndarray)

    dense = {name: load(name) for name in DENSE}
    shapes = {"item_item": meta["item_item_shape"], "facets": meta["facets_shape"]}
    sparse = {name: sp.csr_matrix((load(f"{name}.data"), load(f"{name}.indices"),
                                   load(f"{name}.indptr")), shape=tuple(shapes[name]))
              for name in SPARSE}
    config = TrainConfig.model_validate(lock.config)
    model = Model(name=meta["name"], as_of=int(meta["as_of"]), config=config,
                  data_fingerprint=lock.data_fingerprint, metrics=lock.metrics,
                  **dense, **sparse)
    index = ItemIndex.load(d / ANN_FILE, model.als_items, model.ann_ids())
    return model, index, lock
