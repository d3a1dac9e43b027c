"""A Redis outage degrades instead of failing: a Redis of the test's own, killed by its pid
under traffic, then started again on the same port."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from novarank.api import create_app
from novarank.config import ServiceSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from common import start_redis


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis(port: int, workdir) -> subprocess.Popen:
    """A Redis of the test's own, without persistence (a restart comes back empty)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing")
        pytest.skip("redis-server not installed")
    return start_redis(port, workdir, durable=False)


@pytest.fixture(scope="module")
def release(small_release):
    return small_release

@pytest.mark.slow
def test_a_redis_outage_degrades_and_invalidation_comes_back(release, tmp_path):
    path, users, item = release
    port = _port()
    redis = _redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"

    def settings(name: str) -> ServiceSettings:
        return ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/state.db",
                               events_url="null://", cache_url=url, counters_url=url,
                               key_prefix="chaos:", refresh_s=0.2,
                               rate_limits={"miss": 0})  # the outage, not the budget

    with TestClient(create_app(settings("a"))) as a, TestClient(create_app(settings("b"))) as b:
        for u in users[:20]:
            r = a.get(f"/v1/users/{u}/feed")
            assert r.status_code == 200 and r.json()["degraded"] is False
        redis.send_signal(signal.SIGKILL)
        redis.wait(timeout=10)
        answers, slowest, marked = [], 0.0, 0
        for u in users[20:220]:  # distinct users: every one a miss, ranked locally
            t0 = time.perf_counter()
            r = a.get(f"/v1/users/{u}/feed")
            slowest = max(slowest, time.perf_counter() - t0)
            answers.append(r.status_code)
            marked += r.status_code == 200 and r.json()["degraded"]
        assert answers.count(200) == len(answers), sorted(set(answers))
        assert marked >= len(answers) - 1  # the first miss is the one that finds L2 gone
        assert 'novarank_fallback_total{reason="l2_down"}' in a.get("/metrics").text
        assert slowest < 1.0, f"a degraded feed took {slowest:.2f} s"
        liked = a.post("/v1/events", json=[{"type": "like", "user_id": users[0],
                                            "item_id": item}])
        assert liked.status_code == 200 and liked.json()["accepted"] == 1
        assert a.get("/v1/trending").status_code == 200
        ready = a.get("/readyz")
        assert ready.status_code == 200 and ready.json()["degraded"] is True
        metrics = a.get("/metrics").text
        assert "novarank_cache_l2_up 0.0" in metrics

        redis = _redis(port, tmp_path)  # back, on the same port, empty
        user = users[5]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # both replicas use Redis again
            if "novarank_cache_l2_up 1.0" in a.get("/metrics").text:
                break
            a.get(f"/v1/users/{users[6]}/feed")
            time.sleep(0.1)
        back = time.monotonic()
        while time.monotonic() - back < 5:
            b.get(f"/v1/users/{user}/feed")
            if b.get(f"/v1/users/{user}/feed").json()["cache"] == "l1":
                a.post("/v1/events", json=[{"type": "like", "user_id": user, "item_id": item,
                                            "event_id": f"like-{time.monotonic_ns()}"}])
                t0 = time.monotonic()
                while time.monotonic() - t0 < 2:
                    if b.get(f"/v1/users/{user}/feed").json()["cache"] != "l1":
                        break
                    time.sleep(0.05)
                else:
                    continue  # b's listener was not back yet: try once more
                break
            time.sleep(0.2)
        else:
            raise AssertionError("replica b never saw an invalidation after Redis returned")
        assert time.monotonic() - back < 5
    redis.kill()
    redis.wait(timeout=10)


def test_a_dying_thread_is_logged_as_json():
    import json
    import logging
    import threading

    from novarank.logs import JsonLines, configure

    configure("INFO")
    lines: list[str] = []
    handler = logging.Handler()
    handler.setFormatter(JsonLines())
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore
    logging.getLogger("novarank").addHandler(handler)

    def boom() -> None:
        raise RuntimeError("lost the connection")

    try:
        t = threading.Thread(target=boom, name="nr-test")
        t.start()
        t.join()
    finally:
        logging.getLogger("novarank").removeHandler(handler)
    died = [json.loads(ln) for ln in lines if '"novarank.threads"' in ln]
    assert died and died[0]["msg"] == "thread nr-test died" and "RuntimeError" in died[0]["exc"]


@pytest.mark.slow
def test_events_refused_while_the_stream_is_down_leave_no_trace(release, tmp_path):
    """Stream sink: with Redis down the batch is refused (503) and kept nowhere; the
    client's retry after Redis returns lands exactly once in the lake."""
    from novarank.telemetry.ingest import Ingester
    from novarank.telemetry.sinks import LakeWriter

    path, users, item = release
    port = _port()
    redis = _redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    s = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/state.db",
                        events_url=url, key_prefix="chaos:")
    now = int(time.time())
    batch = [{"type": "click", "user_id": users[1], "item_id": item, "ts": now - 5},
             {"type": "like", "user_id": users[1], "item_id": item, "ts": now - 4}]
    with TestClient(create_app(s)) as c:
        redis.send_signal(signal.SIGKILL)
        redis.wait(timeout=10)
        r = c.post("/v1/events", json=batch)
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["error"]["code"] == "unavailable"
        assert c.get(f"/v1/users/{users[1]}/history").json()["live"] == []  # no trace
        redis = _redis(port, tmp_path)
        for _ in range(2):  # the retry, and a duplicate retry: one event each in the lake
            assert c.post("/v1/events", json=batch).json()["accepted"] == 2
    ingester = Ingester(url, LakeWriter(tmp_path / "lake"), stream="chaos:telemetry")
    ingester.run(seconds=10, until_idle=True)
    kinds = dict(ingester.stats.by_kind)
    assert (kinds["click"], kinds["engagement"], ingester.stats.duplicates) == (1, 1, 2)
    assert kinds.get("error") == 1  # the 503 itself, as an error event
    redis.kill()
    redis.wait(timeout=10)


@pytest.mark.slow
def test_request_telemetry_outlives_a_stream_outage(release, tmp_path):
    """Feeds answered while the stream is down are in the lake once it returns: their
    events wait in the emitter's buffer; the outage shows in readiness and the gauge."""
    from novarank.telemetry.ingest import Ingester
    from novarank.telemetry.sinks import LakeWriter

    path, users, _item = release
    port = _port()
    redis = _redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    s = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/state.db",
                        events_url=url, key_prefix="out:", rate_limits={"miss": 0})
    with TestClient(create_app(s)) as c:
        redis.send_signal(signal.SIGKILL)
        redis.wait(timeout=10)
        answered = sum(c.get(f"/v1/users/{u}/feed").status_code == 200 for u in users[:60])
        deadline = time.monotonic() + 5
        while c.get("/readyz").json()["checks"]["telemetry"]:  # the next flush meets it
            assert time.monotonic() < deadline, "the emitter never noticed the outage"
            time.sleep(0.1)
        ready = c.get("/readyz").json()
        assert ready["ready"] and ready["degraded"]  # still serving: not taken out
        assert "novarank_telemetry_sink_up 0.0" in c.get("/metrics").text
        redis = _redis(port, tmp_path)
        deadline = time.monotonic() + 5
        while not c.get("/readyz").json()["checks"]["telemetry"]:
            assert time.monotonic() < deadline, "the emitter never wrote again"
            time.sleep(0.1)
        dropped = [ln for ln in c.get("/metrics").text.splitlines()
                   if ln.startswith("novarank_telemetry_dropped_total{")]
    ingester = Ingester(url, LakeWriter(tmp_path / "lake"), stream="out:telemetry")
    ingester.run(seconds=10, until_idle=True)
    assert answered == 60 and dropped == []
    assert ingester.stats.by_kind["request"] == answered  # none lost to the outage
    redis.kill()
    redis.wait(timeout=10)


@pytest.mark.slow
def test_the_ingester_waits_out_a_redis_restart(tmp_path):
    import threading

    import pyarrow.parquet as pq

    from novarank.telemetry.ingest import Ingester
    from novarank.telemetry.sinks import LakeWriter, StreamWriter

    port = _port()
    redis = _redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    ingester = Ingester(url, LakeWriter(tmp_path / "lake"), stream="t", claim_idle_ms=0)
    worker = threading.Thread(target=ingester.run, kwargs={"seconds": 20}, daemon=True)
    worker.start()
    now = int(time.time() * 1000)
    StreamWriter(url, "t").write("click", [{"event_id": "before", "ts": now, "item_id": "x"}])
    time.sleep(1.0)
    redis.send_signal(signal.SIGKILL)
    redis.wait(timeout=10)
    time.sleep(1.5)  # the ingester meets a dead Redis, and must not exit
    assert worker.is_alive()
    redis = _redis(port, tmp_path)  # empty: its consumer group is gone too
    StreamWriter(url, "t").write("click", [{"event_id": "after", "ts": now, "item_id": "x"}])
    deadline = time.monotonic() + 10
    ids: set[str] = set()
    while time.monotonic() < deadline and "after" not in ids:
        time.sleep(0.2)
        parts = (tmp_path / "lake" / "events" / "click").glob("event_date=*/part-*.parquet")
        ids = {r["event_id"] for p in parts for r in pq.read_table(p).to_pylist()}
    assert ids == {"before", "after"} and ingester.stats.reconnects > 0
    redis.kill()
    redis.wait(timeout=10)
