"""The world a baseline or dry-run is played in: the release it serves (trained here, or
given), the ground truth its simulated users click by, and the simulator whose cohorts
follow the served release's history sizes. Library calls; the CLI only parses arguments."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from novarank.config import TrainConfig
from novarank.data.dataset import Dataset
from novarank.data.loaders import load
from novarank.data.synthetic import SyntheticConfig, TasteModel, generate
from novarank.launch.simulator import DEFAULT_COHORTS, Simulator, oracle
from novarank.pipeline import train_release
from novarank.release import load_release, save_release
from novarank.release.lock import ReleaseLock
from novarank.training import fit_model

PREVIOUS_SHARE = 0.98  # the release before: the same config on all but the newest 2% of events


def build_world(data: str, workdir: Path, version: str = "baseline", evaluate: bool = False,
                canary: bool = False, release: Path | None = None, previous: bool = False
                ) -> tuple[Path, TasteModel, list[str], list[str]]:
    """Train a release for the run (or take `release`, trained on the same `data`) and
    return (release, truth, truth user ids, item ids). With `canary`, also a second
    release of the same data (more ALS factors) in workdir/canary, version
    `<version>-canary`: what the rollback drill rolls out. With `previous`, the release it
    replaces in workdir/previous (`<version>-previous`): the release's own configuration
    fitted without the newest events, as yesterday's retrain would have been."""
    if data.startswith("synthetic"):
        synth = generate(SyntheticConfig.parse(data))
        ds, truth = synth.dataset, synth.truth
    else:
        ds = load(data)
        truth = oracle(ds.matrix())
    if release is not None:
        pass  # served as it is: the caller built it from the same data
    elif evaluate:  # tuned as a launched release is; its held-out evaluation goes into the
        # lock (gate 7 judges its lift over popularity)
        release = workdir / "release"
        shutil.rmtree(release, ignore_errors=True)
        train_release(ds, release, TrainConfig(), version=version)
    else:
        release = workdir / "release"
        shutil.rmtree(release, ignore_errors=True)
        save_release(fit_model(ds, TrainConfig(tune=False)), release, version=version)
    if canary:
        shutil.rmtree(workdir / "canary", ignore_errors=True)
        save_release(fit_model(ds, TrainConfig(tune=False, als_factors=96)), workdir / "canary",
                     version=f"{version}-canary")
    if previous:
        from novarank.release import read_lock

        cfg = TrainConfig(**{**read_lock(release).config, "tune": False})
        older = ds.ts <= np.quantile(ds.ts, PREVIOUS_SHARE)
        shutil.rmtree(workdir / "previous", ignore_errors=True)
        save_release(fit_model(ds.subset(older), cfg), workdir / "previous",
                     version=f"{version}-previous")
        write_since(ds.subset(~older), workdir / "previous-since.jsonl")
    return release, truth, ds.user_ids.tolist(), ds.items.ids.tolist()


def write_since(ds: Dataset, path: Path) -> int:
    """The events a release's training did not see, as `/v1/events` bodies (JSON lines):
    what its service had recorded live by the time it served (kinds the API does not take
    are left out). Returns how many were written."""
    import json

    from novarank.data.events import Event

    kinds = {"impression", "click", "watch", "like", "share", "skip"}
    n = 0
    with path.open("w") as f:
        for u, i, e, v, t in zip(ds.user.tolist(), ds.item.tolist(), ds.event.tolist(),
                                 ds.value.tolist(), ds.ts.tolist(), strict=True):
            kind = Event(e).name.lower()
            if kind not in kinds:
                continue
            row = {"type": kind, "user_id": str(ds.user_ids[u]), "item_id": str(ds.items.ids[i]),
                   "ts": int(t), **({"value": float(v)} if kind == "watch" else {})}
            f.write(json.dumps(row) + "\n")
            n += 1
    return n


def saved_truth(truth: Path) -> tuple[TasteModel, list[str], list[str]]:
    """The ground truth saved by `novarank data synth` (users u<i>, items v<j>)."""
    model = TasteModel.load(truth / "truth" if truth.is_dir() else truth)
    return (model, [f"u{i}" for i in range(len(model.user_factors))],
            [f"v{i}" for i in range(len(model.item_factors))])


def simulator_for(release: Path, truth: TasteModel, users: list[str], items: list[str],
                  shares: dict[str, float] | None, seed: int) -> tuple[Simulator, ReleaseLock]:
    """A simulator whose cohorts follow the served release's history sizes."""
    model, _, lock = load_release(release)
    index = {u: i for i, u in enumerate(model.user_ids.tolist())}
    sizes = np.diff(model.hist_indptr)
    hist = np.array([sizes[index[u]] if u in index else 0 for u in users])
    return Simulator(truth, items, users, hist, shares or dict(DEFAULT_COHORTS), seed=seed), lock
