"""The serving half of `novarank demo`: start the service, send a few requests, show them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.table import Table

from novarank.cli.common import console
from novarank.errors import NovarankError

TOKEN = "demo-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(release: Path, workdir: Path, port: int, env: dict[str, str] | None = None
                 ) -> subprocess.Popen:
    """`novarank serve` in a child process, waiting until /readyz answers 200."""
    full_env = {**os.environ, "NOVARANK_STATE_URL": f"sqlite:///{workdir}/state.db",
                "NOVARANK_EVENTS_URL": f"file://{workdir}/lake", "NOVARANK_ADMIN_TOKEN": TOKEN,
                **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "novarank.cli.main", "serve", "--release",
                             str(release), "--port", str(port)], env=full_env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise NovarankError(f"the service exited early with code {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise NovarankError("the service did not become ready within 60 s")


def stop_server(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)  # graceful: in-flight requests finish, buffers flush
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def tour(release: Path, workdir: Path, users: list[str]) -> None:
    port = free_port()
    env = {"NOVARANK_SPLIT": '{"control": 20, "treatment_a": 40, "treatment_b": 40}',
           "NOVARANK_VARIANT_WEIGHTS": '{"treatment_a": {"trending": 1.0}, '
                                       '"treatment_b": {"freshness": 1.0}}'}
    console.print(f"starting the service on http://127.0.0.1:{port} (SQLite state, memory "
                  f"cache, Parquet events under {workdir}/lake)…")
    proc = start_server(release, workdir, port, env)
    base = f"http://127.0.0.1:{port}"
    table = Table(title="a few requests against the running service")
    for col in ("request", "status", "ms", "what came back"):
        table.add_column(col)
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            def call(method: str, path: str, summary, **kw) -> dict:  # type: ignore[no-untyped-def]
                t0 = time.perf_counter()
                r = c.request(method, path, **kw)
                ms = (time.perf_counter() - t0) * 1e3
                body = r.json()
                table.add_row(f"{method} {path}", str(r.status_code), f"{ms:.1f}",
                              summary(body) if r.status_code < 400 else str(body["error"]))
                return body

            items = lambda b: ", ".join(i["item_id"] for i in b["items"])  # noqa: E731
            first = call("GET", f"/v1/users/{users[0]}/feed?k=5",
                         lambda b: f"{b['variant']}, cache {b['cache']}: {items(b)}")
            call("GET", f"/v1/users/{users[0]}/feed?k=5",
                 lambda b: f"{b['variant']}, cache {b['cache']}: {items(b)}")
            call("GET", f"/v1/users/{users[0]}/feed?k=5&cursor={first['next_cursor']}",
                 lambda b: f"page 2: {items(b)}")
            liked = first["items"][0]["item_id"]
            call("POST", "/v1/events", lambda b: f"accepted {b['accepted']}, rejected "
                 f"{b['rejected']}", json=[
                     {"type": "impression", "user_id": users[0], "item_id": liked,
                      "request_id": first["request_id"]},
                     {"type": "like", "user_id": users[0], "item_id": liked,
                      "request_id": first["request_id"]},
                     {"type": "watch", "user_id": users[0], "item_id": liked, "value": 7}])
            call("GET", f"/v1/users/{users[0]}/feed?k=5",
                 lambda b: f"after the like, cache {b['cache']}: {items(b)}")
            call("GET", f"/v1/users/{users[1]}/assignment",
                 lambda b: f"bucket {b['bucket']} -> {b['variant']}")
            call("GET", "/v1/trending?window=1h&k=3", items)
            call("GET", f"/v1/items/{liked}/similar?k=3", items)
            call("GET", f"/v1/users/{users[1]}/creators?k=3",
                 lambda b: ", ".join(x["creator_id"] for x in b["creators"]))
            call("GET", f"/v1/search?q=music&user_id={users[1]}&k=3", items)
            call("PUT", "/v1/items/demo-upload", lambda b: f"new item, catalog seq "
                 f"{b['catalog_seq']}", json={"title": "A brand new music upload",
                                               "creator_id": "c1", "tags": ["music"],
                                               "published_at": int(time.time())})
            call("GET", "/v1/users/someone-new/feed?k=3",
                 lambda b: f"cold={b['cold']}: {items(b)}")
            call("PUT", "/v1/admin/toggles", lambda b: f"kill switch {b['kill_switch']}",
                 json={"kill_switch": True}, headers={"Authorization": f"Bearer {TOKEN}"})
            call("GET", f"/v1/users/{users[1]}/feed?k=3",
                 lambda b: f"fallback={b['fallback']}: {items(b)}")
            call("GET", "/v1/users/u1/feed?k=0", str)
    finally:
        code = stop_server(proc)
    console.print(table)
    parts = sorted(p.relative_to(workdir).as_posix() for p in (workdir / "lake").rglob("*.parquet"))
    console.print(f"service stopped (exit {code}); telemetry flushed on shutdown: "
                  f"{len(parts)} Parquet part(s), e.g. {parts[:2]}")
