"""The serving half of `novarank demo`: start the service, send a few requests, show them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from rich.table import Table

from novarank.cli.common import console
from novarank.data.synthetic import TasteModel
from novarank.errors import NovarankError

TOKEN = "demo-admin-token"
# the embedded demo's traffic key (read, events, catalog): fixed so a reader can replay the
# tour with curl; a real deployment issues its own with `novarank keys issue`
DEMO_KEY = "nvk_demo_embedded-demo-traffic-key-not-for-production"
KEYED = {"Authorization": f"Bearer {DEMO_KEY}"}
DEMO_SPLIT = {"control": 20.0, "treatment_a": 40.0, "treatment_b": 40.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_keys(workdir: Path) -> Path:
    """The demo's key file: the demo traffic key, hashed like any other."""
    from novarank.keys import issue, listing

    path = workdir / "keys.yaml"
    if not path.exists() or not any(k["id"] == "demo" for k in listing(path)):
        # a frontend's key: it asks feeds for every user, so misses are not budgeted
        issue(path, "embedded demo traffic", ["read", "events", "catalog"], key=DEMO_KEY,
              limits={"miss": 0})
    return path


def start_server(release: Path, workdir: Path, port: int, env: dict[str, str] | None = None,
                 log: Path | None = None) -> subprocess.Popen:
    """`novarank serve` in a child process, waiting until /readyz answers 200. Keys are
    required (the admin token and DEMO_KEY) unless `env` sets NOVARANK_AUTH=off. Its JSON
    log lines go to `log` when given (else to this process's stderr)."""
    full_env = {**os.environ, "NOVARANK_STATE_URL": f"sqlite:///{workdir}/state.db",
                "NOVARANK_EVENTS_URL": f"file://{workdir}/lake", "NOVARANK_ADMIN_TOKEN": TOKEN,
                "NOVARANK_AUTH": "on", "NOVARANK_API_KEYS_FILE": str(demo_keys(workdir)),
                **(env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "novarank.cli.main", "serve", "--release",
                             str(release), "--port", str(port)], env=full_env,
                            stderr=log.open("w") if log is not None else None)
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


def simulate(base: str, truth: TasteModel, user_index: dict[str, int],
             item_index: dict[str, int], sessions: int, seed: int = 0) -> dict[str, int]:
    """Sessions of release users: feed -> impressions -> clicks (and some likes) drawn from
    the synthetic platform's ground truth, so the outcomes tile has real numbers."""
    rng = np.random.default_rng(seed)
    users = list(user_index)
    n = {"feeds": 0, "impressions": 0, "clicks": 0, "likes": 0}
    with httpx.Client(base_url=base, timeout=30, headers=KEYED) as c:
        for uid in rng.choice(users, sessions).tolist():
            feed = c.get(f"/v1/users/{uid}/feed", params={"k": 10}).json()
            items = [it["item_id"] for it in feed["items"]]
            known = [i for i in items if i in item_index]
            p = dict(zip(known, truth.click_prob(user_index[uid],
                                                  np.array([item_index[i] for i in known])),
                         strict=True))
            events = [{"type": "impression", "user_id": uid, "item_id": it, "position": pos,
                       "request_id": feed["request_id"]} for pos, it in enumerate(items)]
            for it in items:
                if rng.random() < p.get(it, 0.0) * 0.5:  # not every appealing item gets a tap
                    events.append({"type": "click", "user_id": uid, "item_id": it,
                                   "request_id": feed["request_id"]})
                    n["clicks"] += 1
                    if rng.random() < 0.2:
                        events.append({"type": "like", "user_id": uid, "item_id": it,
                                       "request_id": feed["request_id"]})
                        n["likes"] += 1
            c.post("/v1/events", json=events)
            n["feeds"] += 1
            n["impressions"] += len(items)
    return n


def tour(release: Path, workdir: Path, users: list[str], truth: TasteModel | None = None,
         user_index: dict[str, int] | None = None,
         item_index: dict[str, int] | None = None) -> None:
    port = free_port()
    env = {"NOVARANK_SPLIT": json.dumps(DEMO_SPLIT),
           "NOVARANK_VARIANT_WEIGHTS": '{"treatment_a": {"trending": 1.0}, '
                                       '"treatment_b": {"freshness": 1.0}}'}
    console.print(f"starting the service on http://127.0.0.1:{port} (SQLite state, memory "
                  f"cache, Parquet events under {workdir}/lake, JSON logs in "
                  f"{workdir}/service.log)…")
    proc = start_server(release, workdir, port, env, log=workdir / "service.log")
    base = f"http://127.0.0.1:{port}"
    table = Table(title="a few requests against the running service")
    for col in ("request", "status", "ms", "what came back"):
        table.add_column(col)
    try:
        with httpx.Client(base_url=base, timeout=30, headers=KEYED) as c:
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
            call("GET", f"/v1/users/{users[1]}/feed?k=3", str, headers={"Authorization": ""})
            call("DELETE", f"/v1/users/{users[1]}", str)  # the demo key has no privacy scope
            c.put("/v1/admin/toggles", json={"kill_switch": False},
                  headers={"Authorization": f"Bearer {TOKEN}"})
        if truth is not None and user_index and item_index:
            manifest = httpx.post(f"{base}/v1/admin/cache/warm", timeout=600,
                                  headers={"Authorization": f"Bearer {TOKEN}"}).json()
            console.print(f"warm plan: {manifest}")
            sim = simulate(base, truth, user_index, item_index, sessions=300)
            console.print(f"simulated 300 sessions from the ground truth: {sim}")
    finally:
        code = stop_server(proc)
    console.print(table)
    parts = sorted(p.relative_to(workdir).as_posix() for p in (workdir / "lake").rglob("*.parquet"))
    console.print(f"service stopped (exit {code}); telemetry flushed on shutdown: "
                  f"{len(parts)} Parquet part(s), e.g. {parts[:2]}")
    from novarank.analytics.quality import release_quality
    from novarank.analytics.rollup import rollup
    from novarank.analytics.tiles import health, outcomes
    from novarank.cli.analytics import print_integrity, print_tiles

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    res = rollup(workdir / "lake", day, catalog_items=None)
    print_integrity(res)
    summary = res.to_dict()
    print_tiles({"health": health(summary),
                 "outcomes": outcomes(summary, DEMO_SPLIT, release_quality(release))}, day)


@contextlib.contextmanager
def local_channels(workdir: Path) -> Iterator[Path]:
    """A local SMTP sink (aiosmtpd) and webhook receiver, and a channel file that routes
    every audience to them: the demo delivers its notifications for real, to itself.
    Mail lands in workdir/mail/, webhook bodies in workdir/webhooks.jsonl."""
    import yaml
    from aiosmtpd.controller import Controller

    from novarank.ops.webhook import AlertSink, serve

    mail = workdir / "mail"
    mail.mkdir(parents=True, exist_ok=True)

    class Maildir:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            n = len(list(mail.glob("*.eml")))
            (mail / f"{n:03d}.eml").write_bytes(envelope.original_content or b"")
            return "250 OK"

    smtp_port, hook_port = free_port(), free_port()
    smtp = Controller(Maildir(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hook = serve(hook_port, AlertSink(workdir / "webhooks.jsonl"))
    hook_url = f"http://127.0.0.1:{hook_port}/hook"
    path = workdir / "channels.yaml"
    path.write_text(yaml.safe_dump({
        "channels": {
            "email": {"kind": "smtp", "host": "127.0.0.1", "port": smtp_port,
                      "from": "launch@novarank.local", "to": ["team@novarank.local"]},
            "slack": {"kind": "slack", "url": hook_url},
            "teams": {"kind": "teams", "url": hook_url},
            "pagerduty": {"kind": "pagerduty", "url": hook_url, "routing_key": "demo"}},
        "audiences": {"product": ["email"], "qa": ["email", "teams"],
                      "ops": ["slack", "pagerduty"], "tech-lead": ["email", "slack"],
                      "management": ["email"]}}, sort_keys=False))
    try:
        yield path
    finally:
        smtp.stop()
        hook.shutdown()

