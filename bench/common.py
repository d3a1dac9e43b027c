"""Shared helpers for benchmarks: results land in bench/results/*.json."""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

RESULTS = Path(__file__).parent / "results"


def start_redis(port: int, workdir: Path, durable: bool = True) -> subprocess.Popen:
    """A redis-server of the caller's own (never the shared one), up and answering PING.
    `durable`: append-only with fsync on every write, as a stream that holds acknowledged
    events should run; otherwise no persistence at all (tests/test_chaos.py)."""
    persist = ["--appendonly", "yes", "--appendfsync", "always"] if durable else [
        "--appendonly", "no"]
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", *persist, "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as c:
                c.sendall(b"PING\r\n")
                if c.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    payload = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
               **payload}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2))
    print(json.dumps(payload, indent=2))
    return path


def start_pinned(cmd: list[str], probe: str, *, cores: str = "1",
                 env: dict[str, str] | None = None, cwd: Path | None = None,
                 tries: int = 300) -> subprocess.Popen:
    """A server pinned to `cores` (when taskset exists), once `probe` answers 200."""
    import httpx

    if shutil.which("taskset"):
        cmd = ["taskset", "-c", cores, *cmd]
    proc = subprocess.Popen(cmd, env=env, cwd=cwd)
    for _ in range(tries):
        try:
            if httpx.get(probe, timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"did not start: {' '.join(cmd)}")


def rotation(work: Path, name: str, template: str, users: list[str],
             headers: dict[str, str]) -> Path:
    """A wrk script sending each user in turn (`{u}` in the path template)."""
    ids = ", ".join(f'"{u}"' for u in users)
    head = ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items())
    script = work / f"{name}.lua"
    script.write_text(f"local users = {{{ids}}}\nlocal n = 0\nlocal headers = {{{head}}}\n"
                      "request = function()\n  n = n % #users + 1\n"
                      f'  local path = ("{template}"):gsub("{{u}}", users[n])\n'
                      "  return wrk.format(\"GET\", path, headers)\nend\n")
    return script
