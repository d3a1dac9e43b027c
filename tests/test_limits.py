"""Bounded input: a body over `max_body_bytes` is refused with 413 before it is parsed,
declared or streamed; memory stays flat under a stream of 50 MB bodies."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from novarank.api import create_app
from novarank.config import ServiceSettings


@pytest.fixture(scope="module")
def release(small_release):
    return small_release[0]

def test_an_oversized_body_is_refused_before_parsing(release, tmp_path):
    s = ServiceSettings(release=release, state_url=f"sqlite:///{tmp_path}/s.db",
                        events_url="null://", max_body_bytes=64 * 1024)
    big = b"[" + b",".join([b'{"type":"click","user_id":"u1","item_id":"v1"}'] * 5000) + b"]"
    with TestClient(create_app(s)) as c:
        r = c.post("/v1/events", content=big, headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        err = r.json()["error"]
        assert err["field"] == "body" and "65536 bytes" in err["message"]

        def chunks():  # no Content-Length: counted as it streams in
            for start in range(0, len(big), 8192):
                yield big[start:start + 8192]

        r = c.post("/v1/events", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        small = b'[{"type":"click","user_id":"u1","item_id":"v1"}]'
        assert c.post("/v1/events", content=small,
                      headers={"Content-Type": "application/json"}).status_code == 200
        assert 'novarank_requests_total{route="unmatched",status="413"}' in c.get(
            "/metrics").text


@pytest.mark.slow
def test_memory_stays_flat_under_a_stream_of_50mb_bodies(release, tmp_path):
    import httpx
    import psutil

    from novarank.cli.demo_service import KEYED, free_port, start_server, stop_server

    port = free_port()
    proc = start_server(release, tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    body = b"x" * (50 << 20)
    try:
        rss = psutil.Process(proc.pid)
        before = rss.memory_info().rss
        with httpx.Client(base_url=url, timeout=60, headers=KEYED) as c:
            for _ in range(5):
                r = c.post("/v1/events", content=body,
                           headers={"Content-Type": "application/json"})
                assert r.status_code == 413
            assert c.get("/v1/users/u1/feed").status_code == 200
        grown = rss.memory_info().rss - before
    finally:
        stop_server(proc)
    assert grown < 20 << 20, f"RSS grew {grown / 1e6:.1f} MB over five 50 MB bodies"
