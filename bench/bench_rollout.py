"""The automatic-rollback drill, repeated: how fast a faulty canary is caught and removed.

`novarank serve` (SQLite state, Parquet lake) serves release v1; each drill rolls out v2
to 10% of users with an injected fault (or, for "broken", as a copy whose item factors
have the wrong shape: it verifies, then raises on requests) while one client drives feeds,
and the controller (0.5 s ticks) must roll it back. Time to detect = decision - the
canary's first answer; time to roll back = the canary's last answer - decision (replicas
re-read the rollout document every second).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_rollout.py
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from pathlib import Path

from bench_serving import ADMIN, serve, stop
from common import write
from novarank.config import TrainConfig
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.launch.drills import ROLLBACK_POLICY, rollback
from novarank.launch.simulator import Simulator
from novarank.release import save_release
from novarank.training import fit_model

FAULTS = ("errors:1.0", "errors:1.0", "errors:1.0", "errors:0.2", "latency:100", "broken")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="nr-ro-"))
    try:
        data = generate(SyntheticConfig(users=4000, items=1500, events=250_000, seed=7))
        for version, factors in (("v1", 64), ("v2", 96)):
            save_release(fit_model(data.dataset, TrainConfig(tune=False, als_factors=factors)),
                         work / version, version=version)
        ds = data.dataset
        sim = Simulator(data.truth, ds.items.ids.tolist(), ds.user_ids.tolist(),
                        ds.history_sizes(), seed=1)
        proc, url = serve(work / "v1", work, cores="0,1", env={"NOVARANK_DRILLS_ENABLED": "true"})
        drills = []
        try:
            state = next(work.glob("state-*.db"))
            for fault in FAULTS:
                drills.append(rollback(url, sim.release_users(300), work / "v1", work / "v2",
                                       f"sqlite:///{state}", work / "lake", fault,
                                       headers=ADMIN))
                print(drills[-1])
        finally:
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(key: str) -> float:
        return round(statistics.median(d[key] for d in drills), 3)

    write("rollout", {
        "policy": ROLLBACK_POLICY, "canary_share": 0.10, "drills": drills,
        "median_time_to_detect_s": med("time_to_detect_s"),
        "median_time_to_rollback_s": med("time_to_rollback_s"),
        "failed_outside_canary": sum(d["failed_outside_canary"] for d in drills),
        "targets": {"time_to_detect_s": 60, "time_to_rollback_s": 5,
                    "failed_outside_canary": 0},
        "pass": all(d["passed"] for d in drills)})


if __name__ == "__main__":
    main()
