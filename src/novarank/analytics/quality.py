"""A release's offline quality, judged the same way on every data set.

An absolute Recall@10 means different things on different data (0.15 is good on
MovieLens and out of reach on a sparse catalogue), so the objectives are relative: the
ranker must beat popularity measured on the same held-out users in the same evaluation
(the lower end of the paired 95% interval above zero), must not fall behind the stable
release it replaces by more than a margin, and clear an absolute floor that each data set
sets for itself (0 by default). The numbers are the held-out evaluation the training job
sealed into the lock (the release itself is fitted on all data, so re-scoring it on the
holdout would leak); the lock's digest covers them, so they cannot be edited unseen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from novarank.analytics.slo import Objective
from novarank.release.lock import ReleaseLock


@dataclass(frozen=True)
class OfflineQuality:
    recall: float | None  # the ranker's Recall@10 on the held-out users
    users: int
    lift_low: float | None  # lower end of the 95% interval of its paired lift over popularity
    stable_recall: float | None = None

    @classmethod
    def from_lock(cls, lock: ReleaseLock, stable: ReleaseLock | None = None
                  ) -> OfflineQuality:
        ev = lock.metrics.get("evaluation", {})
        rows = {r["method"]: r for r in ev.get("rows", []) if r.get("cohort") == "all"}
        lift = ev.get("lift") or {}
        ranker = rows.get("ranker", {})
        prev = cls.from_lock(stable) if stable is not None else None
        return cls(recall=ranker.get("recall"), users=int(ranker.get("users", 0)),
                   lift_low=(lift.get("ci95") or [None])[0],
                   stable_recall=prev.recall if prev else None)

    def rows(self, floor: float = 0.0) -> list[tuple[Objective, float | None, int]]:
        """(objective, value, samples) for each quality objective that applies."""
        from dataclasses import replace

        from novarank.analytics.slo import QUALITY

        floor_obj, lift_obj, stable_obj = QUALITY
        out = [(replace(floor_obj, threshold=floor), self.recall, self.users),
               (lift_obj, self.lift_low, self.users if self.lift_low is not None else 0)]
        if self.stable_recall is not None:
            delta = None if self.recall is None else self.recall - self.stable_recall
            out.append((stable_obj, delta, self.users))
        return out


def release_quality(release: Path | None, stable: Path | None = None
                    ) -> OfflineQuality | None:
    """The offline quality of a release directory (and of the stable one it replaces)."""
    if release is None:
        return None
    from novarank.release.lock import read_lock

    return OfflineQuality.from_lock(read_lock(release),
                                    read_lock(stable) if stable is not None else None)
