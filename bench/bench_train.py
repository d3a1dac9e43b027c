"""Training time and peak memory: 10M synthetic interactions (200k users, 100k items), ML-100K.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_train.py [--events 10000000]
Each size runs in its own process so peak RSS is that size's own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from common import peak_rss_mb, write


def one(spec: str) -> dict:
    from novarank.config import TrainConfig
    from novarank.data.loaders import load
    from novarank.training import fit_model

    t0 = time.perf_counter()
    ds = load(spec)
    load_s = time.perf_counter() - t0
    stages: dict[str, float] = {}
    last = [time.perf_counter(), None]

    def step(name: str) -> None:
        now = time.perf_counter()
        if last[1] is not None:
            stages[last[1]] = round(now - last[0], 2)
        last[:] = [now, name]

    t1 = time.perf_counter()
    fit_model(ds, TrainConfig(), step=step)
    step("end")
    fit_s = time.perf_counter() - t1
    return {"data": spec, "users": ds.n_users, "items": ds.n_items, "events": ds.n_events,
            "load_or_generate_s": round(load_s, 2), "fit_s": round(fit_s, 2),
            "stages_s": stages, "peak_rss_mb": peak_rss_mb()}


def pipeline(spec: str) -> dict:
    """The whole `novarank train` job: tune on validation, evaluate, final fit, lock."""
    import tempfile

    from novarank.data.loaders import load
    from novarank.pipeline import train_release

    ds = load(spec)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        _, res, lock = train_release(ds, f"{tmp}/rel")
    return {"data": spec, "events": ds.n_events, "total_s": round(time.perf_counter() - t, 2),
            "stages_s": res.seconds, "files": len(lock.files), "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--child", default=None)
    ap.add_argument("--mode", default="fit", choices=["fit", "pipeline"])
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one(args.child) if args.mode == "fit" else pipeline(args.child)))
        return
    specs = {"ml-100k": "ml-100k",
             "synthetic-10m": f"synthetic:users=200000,items=100000,creators=5000,"
                              f"events={args.events},days=60"}
    out = {}
    for name, spec in specs.items():
        proc = subprocess.run([sys.executable, __file__, "--child", spec], capture_output=True,
                              text=True, check=True)
        out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    proc = subprocess.run([sys.executable, __file__, "--child", specs["synthetic-10m"],
                           "--mode", "pipeline"], capture_output=True, text=True, check=True)
    out["synthetic-10m-pipeline"] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["targets"] = {"synthetic-10m": {"fit_s_max": 180, "peak_rss_mb_max": 4096},
                      "ml-100k": {"fit_s_max": 10}}
    out["pass"] = {"synthetic-10m": out["synthetic-10m"]["fit_s"] <= 180
                   and out["synthetic-10m"]["peak_rss_mb"] <= 4096,
                   "ml-100k": out["ml-100k"]["fit_s"] <= 10}
    write("train", out)


if __name__ == "__main__":
    main()
