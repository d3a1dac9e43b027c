"""The train -> tune -> evaluate -> release job that `novarank train` and the demo run."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from novarank.config import TrainConfig
from novarank.data.dataset import Dataset
from novarank.evaluation.evaluate import EvalReport, evaluate
from novarank.evaluation.split import Holdout, temporal_split
from novarank.evaluation.tuning import TuneResult, tune
from novarank.model import Model
from novarank.release.bundle import save_release
from novarank.release.lock import ReleaseLock
from novarank.training import fit_model

Advance = Callable[[int], None]
Step = Callable[..., Advance]  # step(name, total=None) -> advance(n)


def _quiet(name: str, total: int | None = None) -> Advance:
    return lambda n: None


def _silent(_: str) -> None:
    """An engine's per-stage progress, not shown for the tuning and evaluation fits."""


Data = TypeVar("Data")


class Engine(Protocol, Generic[Data]):
    """Who splits and fits: the local engine on a Dataset, the Spark engine on its frame.
    Tuning and evaluation rank on the driver either way, from the Model and the truth."""

    name: str

    def split(self, data: Data, fraction: float) -> Holdout[Data]: ...

    def fit(self, data: Data, cfg: TrainConfig, step: Callable[[str], object]) -> Model: ...


class LocalEngine:
    """numpy/scipy/implicit in this process (training.py)."""

    name = "local"

    def split(self, data: Dataset, fraction: float) -> Holdout[Dataset]:
        return temporal_split(data, fraction)

    def fit(self, data: Dataset, cfg: TrainConfig, step: Callable[[str], object]) -> Model:
        return fit_model(data, cfg, step=step)


LOCAL = LocalEngine()


@dataclass
class OfflineResult:
    config: TrainConfig
    tuning: TuneResult | None
    report: EvalReport | None
    seconds: dict[str, float] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seconds": self.seconds}
        if self.tuning:
            out["tuning"] = self.tuning.to_dict()
        if self.report:
            out["evaluation"] = self.report.to_dict()
        return out


def offline(ds: Data, cfg: TrainConfig, *, do_tune: bool = True, do_evaluate: bool = True,
            max_eval_users: int | None = 5_000, step: Step = _quiet,
            engine: Engine[Data] = LOCAL) -> OfflineResult:  # type: ignore[assignment]
    """Tune weights on a validation split carved from training data, then evaluate on test.

    test  = each user's last `holdout_fraction` of events;
    valid = the last `holdout_fraction` of what remains. The test split is never seen by
    tuning, so the reported lift is honest.
    """
    seconds: dict[str, float] = {}
    holdout = engine.split(ds, cfg.holdout_fraction)
    result = None
    if do_tune and cfg.tune:
        t = time.perf_counter()
        val = engine.split(holdout.train, cfg.holdout_fraction)
        step("tuning: fitting on the validation split")
        val_model = engine.fit(val.train, cfg, _silent)
        result = tune(val_model, val, max_users=cfg.tune_users, seed=cfg.seed,
                      progress=step("tuning: coordinate ascent on validation NDCG@10",
                                    total=3 * 5))
        cfg = cfg.model_copy(update={"ranker": result.ranker})
        seconds["tune"] = round(time.perf_counter() - t, 2)
    report = None
    if do_evaluate:
        t = time.perf_counter()
        step("evaluation: fitting on the training split")
        eval_model = engine.fit(holdout.train, cfg, _silent)
        n_users = len(holdout.truth) if max_eval_users is None else min(len(holdout.truth),
                                                                          max_eval_users)
        report = evaluate(eval_model, holdout, max_users=max_eval_users, seed=cfg.seed,
                          progress=step("evaluation: ranking held-out users", total=n_users))
        seconds["evaluate"] = round(time.perf_counter() - t, 2)
    return OfflineResult(cfg, result, report, seconds)


def train_release(ds: Data, out: str | Path, cfg: TrainConfig | None = None, *,
                  do_tune: bool = True, do_evaluate: bool = True, version: str | None = None,
                  step: Step = _quiet, engine: Engine[Data] = LOCAL,  # type: ignore[assignment]
                  ) -> tuple[Model, OfflineResult, ReleaseLock]:
    """Offline tuning/evaluation, then the final fit on all data, written as a locked release.
    The release records which engine built it (metrics.engine)."""
    cfg = cfg or TrainConfig()
    res = offline(ds, cfg, do_tune=do_tune, do_evaluate=do_evaluate, step=step, engine=engine)
    t = time.perf_counter()
    step("final fit on all data")
    model = engine.fit(ds, res.config, lambda s: step(f"final fit: {s}"))
    res.seconds["fit"] = round(time.perf_counter() - t, 2)
    model.metrics = {"engine": {"name": engine.name}, **model.metrics, **res.metrics()}
    step("writing and locking the release")
    lock = save_release(model, out, version=version)
    return model, res, lock
