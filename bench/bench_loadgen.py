"""The open-loop generator itself: can it keep a 3,000 req/s schedule on one core?

The service (`novarank serve`, pinned to core 1) answers /healthz, the cheapest route;
the generator runs pinned to core 0. Late sends (started more than 1 ms after their
intended time) must stay under 1%.

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_loadgen.py
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

from bench_serving import build_release, serve, stop
from common import write
from novarank.launch.loadgen import open_loop


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="nr-lg-"))
    try:
        build_release(work / "rel", 300, 200, 10_000)
        proc, url = serve(work / "rel", work, env={"NOVARANK_EVENTS_URL": "null://"})
        try:
            if hasattr(os, "sched_setaffinity"):
                os.sched_setaffinity(0, {0})
            asyncio.run(open_loop(url, lambda i: "/healthz", 500, 2))  # warm-up
            runs = {rate: asyncio.run(open_loop(url, lambda i: "/healthz", rate, 10)).summary()
                    for rate in (1_000, 3_000, 4_000)}
        finally:
            stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    r3 = runs[3_000]
    write("loadgen", {"target_url": "/healthz", "runs": {str(k): v for k, v in runs.items()},
                      "targets": {"rate": 3_000, "late_ratio_max": 0.01},
                      "pass": r3["late_ratio"] < 0.01 and r3["errors"] == 0
                      and r3["achieved_rps"] >= 0.99 * 3_000})


if __name__ == "__main__":
    main()
