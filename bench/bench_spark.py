"""The local engine vs Spark local[2] on synthetic interactions: wall time, peak memory of
the whole process tree (the Python driver and, for Spark, its JVM), quality, and how each
grows with data size.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_spark.py [--sizes 1000000,10000000]
     (then e.g. --sizes 30000000 --time-only-above 10000000 --merge for the slope alone)
Each (engine, size) runs in its own process, so a peak is that run's own. Per run: one
fit of every artifact on all events (timed), and Recall/NDCG@10 of a fit on the per-user
temporal split's training part (2,000 sampled users).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import threading
import time

import psutil

from common import RESULTS, write

CORES = 2  # local[2]; the local engine's ALS also uses both cores


def spec(events: int) -> str:
    users = max(2_000, events // 50)
    return (f"synthetic:users={users},items={max(1_000, users // 2)},"
            f"creators={max(100, users // 40)},events={events},days=60")


class TreePeak:
    """Peak RSS of this process plus its children (the JVM), sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.2):
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a child that just exited
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak / 2**20, 1)


def child(engine: str, events: int, quality: bool = True) -> dict:
    from novarank.config import TrainConfig
    from novarank.data.loaders import load
    from novarank.pipeline import LOCAL, offline

    peak = TreePeak()
    t = time.perf_counter()
    ds = load(spec(events))
    gen_s = time.perf_counter() - t
    cfg = TrainConfig(tune=False)
    if engine == "spark":
        from novarank.spark.engine import SparkEngine
        from novarank.spark.interactions import from_dataset
        from novarank.spark.session import spark_session

        t = time.perf_counter()
        spark = spark_session("local[2]", conf={"spark.driver.memory": "12g"})
        eng = SparkEngine(spark)
        data = from_dataset(spark, ds)
        start_s = time.perf_counter() - t
    else:
        eng, data, start_s = LOCAL, ds, 0.0
    t = time.perf_counter()
    stages: dict[str, float] = {}
    last: list = [time.perf_counter(), None]

    def step(name: str) -> None:
        now = time.perf_counter()
        if last[1] is not None:
            stages[last[1]] = round(now - last[0], 2)
        last[:] = [now, name]

    eng.fit(data, cfg, step)  # type: ignore[arg-type]
    step("end")
    fit_s = time.perf_counter() - t
    row = {"engine": engine, "events": ds.n_events, "users": ds.n_users, "items": ds.n_items,
           "generate_s": round(gen_s, 2), "session_s": round(start_s, 2),
           "fit_s": round(fit_s, 2), "stages_s": stages,
           "events_per_core_s": round(ds.n_events / fit_s / CORES)}
    if quality:
        res = offline(data, cfg, do_tune=False, max_eval_users=2_000, engine=eng)  # type: ignore
        assert res.report is not None
        ranker = res.report.get("ranker")
        row.update(evaluate_s=res.seconds.get("evaluate"), recall=ranker["recall"],
                   ndcg=ranker["ndcg"])
    row["peak_tree_rss_mb"] = peak.stop()
    return row


def slope(rows: list[dict]) -> float | None:
    """Exponent b of fit_s ~ events^b between the two largest sizes (the closest to how
    the cost grows at scale: fixed costs weigh least there)."""
    if len(rows) < 2:
        return None
    a, b = rows[-2], rows[-1]
    return round(math.log(b["fit_s"] / a["fit_s"]) / math.log(b["events"] / a["events"]), 3)


def project(row: dict, b: float, events: float, cores: int, efficiency: float = 0.6
            ) -> float:
    """Hours for `events` on `cores` executor cores: the measured run scaled by the
    measured exponent, spread over the cores at `efficiency` (shuffle over a network and
    stragglers cost what one machine's local shuffle does not)."""
    core_s = row["fit_s"] * CORES * (events / row["events"]) ** b
    return round(core_s / (cores * efficiency) / 3600, 2)


def verdict(runs: dict[str, list[dict]], tolerance: float = 0.01) -> dict[str, bool]:
    """Per size both engines ran: does Spark's release rank as well as the local one's
    (Recall@10 no more than `tolerance` below)? A size where either failed does not pass."""
    by_size: dict[int, dict[str, dict]] = {}
    for engine, rows in runs.items():
        for r in rows:
            by_size.setdefault(r["events"], {})[engine] = r
    out = {}
    for size, pair in sorted(by_size.items()):
        spark, local = pair.get("spark", {}), pair.get("local", {})
        if spark.get("quality") is False and local.get("quality") is False:
            continue  # a size run for its time only (--time-only-above)
        out[str(size)] = ("recall" in spark and "recall" in local
                          and spark["recall"] >= local["recall"] - tolerance)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--engines", default="local,spark")
    ap.add_argument("--child", nargs=3, default=None)
    ap.add_argument("--time-only-above", type=int, default=None,
                    help="sizes above this are timed without the quality fit")
    ap.add_argument("--merge", action="store_true",
                    help="add these runs to bench/results/spark.json (same engine and size: "
                         "replaced)")
    ap.add_argument("--summarise", action="store_true",
                    help="recompute the derived fields of bench/results/spark.json")
    args = ap.parse_args()
    if args.summarise:
        runs = json.loads((RESULTS / "spark.json").read_text())["runs"]
        write("spark", summarise(runs))
        return
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), args.child[2] == "1")))
        return

    runs: dict[str, list[dict]] = (json.loads((RESULTS / "spark.json").read_text())["runs"]
                                   if args.merge else {})
    for engine in args.engines.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            quality = args.time_only_above is None or size <= args.time_only_above
            proc = subprocess.run([sys.executable, __file__, "--child", engine, str(size),
                                   "1" if quality else "0"], capture_output=True, text=True)
            row = ({"events": size, "failed": proc.stderr[-800:]} if proc.returncode
                   else json.loads(proc.stdout.strip().splitlines()[-1]))
            row["quality"] = quality
            print(json.dumps(row), flush=True)
            kept = [r for r in runs.get(engine, []) if r["events"] != size]
            runs[engine] = sorted([*kept, row], key=lambda r: r["events"])
    write("spark", summarise(runs))


def summarise(runs: dict[str, list[dict]]) -> dict:
    """Slopes, the cluster projection and the verdict, from the runs alone."""
    ok = {e: [r for r in rows if "fit_s" in r] for e, rows in runs.items()}
    out: dict = {"runs": runs, "cores": CORES,
                 "slope": {e: slope(rows) for e, rows in ok.items()}}
    spark = ok.get("spark", [])
    b = out["slope"].get("spark")
    if spark and b is not None:
        grow = max(b, 1.0)
        out["projection"] = {
            "exponent": grow,
            "assumptions": f"fit time grows as events^{grow} from the largest run (the "
                           f"measured {b} is below 1 because fixed costs — session, job "
                           "planning, small shuffles — still weigh at these sizes; at "
                           "scale the work is at least linear); executor cores at 60% "
                           "efficiency; the history cap of 1,000 keeps the self-join per "
                           "user bounded; the driver holds the release arrays (about 16 "
                           "bytes per distinct user-item pair) and ranks the evaluation "
                           "sample",
            "rows": [{"events": n, "cores": c, "hours": project(spark[-1], grow, n, c)}
                     for n in (1e9, 1e10) for c in (64, 256, 1024)]}
    local = {r["events"]: r for r in ok.get("local", [])}
    out["quality_gap"] = [{"events": r["events"],
                           "recall_spark_minus_local": round(r["recall"]
                                                             - local[r["events"]]["recall"], 4)}
                          for r in spark
                          if "recall" in r and "recall" in local.get(r["events"], {})]
    out["targets"] = {"recall_tolerance": 0.01}
    out["pass"] = verdict(runs)
    return out


if __name__ == "__main__":
    main()
