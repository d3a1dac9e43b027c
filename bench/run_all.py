"""Run every benchmark, then write docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

# bench_floor.py needs wrk (apt-get install wrk); the soak, outage, abuse and versions
# benchmarks take long or take arguments and are run on their own, as is bench_spark.py
# (about 25 minutes on 2 cores)
for script in ("bench_quality.py", "bench_train.py", "bench_latency.py", "bench_serving.py",
               "bench_floor.py", "bench_telemetry.py", "bench_loadgen.py", "bench_rollout.py",
               "bench_sequential.py", "bench_miss_profile.py", "report.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
