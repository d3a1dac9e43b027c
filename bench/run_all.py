"""Run every benchmark, then write docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

for script in ("bench_quality.py", "bench_train.py", "bench_latency.py", "bench_serving.py",
               "bench_telemetry.py", "bench_loadgen.py", "bench_rollout.py", "report.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
