"""Catalog upserts swap an immutable snapshot: feeds and warm plans that run while items
are being added never see half of one (an index past the end of an older view)."""

from __future__ import annotations

import threading

import httpx
import pytest
from fastapi.testclient import TestClient

from novarank.api import create_app
from novarank.config import ServiceSettings

TOKEN = "s3cret"


@pytest.fixture(scope="module")
def release(small_release):
    path, users, _ = small_release
    return path, users[:100]

def _hammer(get, put, users: list[str], upserts: int = 300) -> list[tuple]:
    """Two feed readers (a fresh re-rank each: Cache-Control no-cache) against one writer
    adding a new item per request; every answer's status is kept."""
    answers: list[tuple] = []
    done = threading.Event()

    def writer() -> None:
        for n in range(upserts):
            r = put(f"/v1/items/race-{n}", {"title": f"race {n}", "tags": ["race"],
                                            "creator_id": f"c{n % 7}"})
            answers.append(("put", r.status_code))
        done.set()

    def reader(offset: int) -> None:
        n = offset
        while not done.is_set():
            r = get(f"/v1/users/{users[n % len(users)]}/feed")
            answers.append(("feed", r.status_code))
            n += 2

    threads = [threading.Thread(target=writer), threading.Thread(target=reader, args=(0,)),
               threading.Thread(target=reader, args=(1,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return answers


def test_concurrent_upserts_and_feeds_answer_no_5xx(release, tmp_path):
    path, users = release
    s = ServiceSettings(release=path, state_url=f"sqlite:///{tmp_path}/s.db",
                        events_url="null://", admin_token=TOKEN, refresh_s=0.05,
                        rate_limits={"catalog": 0, "miss": 0})  # the race, not the budget
    headers = {"Authorization": f"Bearer {TOKEN}", "Cache-Control": "no-cache"}
    with TestClient(create_app(s)) as c:
        answers = _hammer(lambda p: c.get(p, headers=headers),
                          lambda p, body: c.put(p, json=body), users, 200)
        warm = c.post("/v1/admin/cache/warm", headers=headers)
    feeds = [st for kind, st in answers if kind == "feed"]
    assert len(feeds) > 50 and {st for _, st in answers} == {200}, sorted(set(answers))
    assert warm.status_code == 200


@pytest.mark.slow
def test_a_real_process_under_upserts_answers_no_5xx(release, tmp_path):
    from novarank.cli.demo_service import TOKEN as DEMO_TOKEN
    from novarank.cli.demo_service import free_port, start_server, stop_server

    path, users = release
    port = free_port()
    proc = start_server(path, tmp_path, port, env={"NOVARANK_REFRESH_S": "0.05",
                                                    "NOVARANK_RATE_LIMITS": '{"catalog": 0}'})
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}", "Cache-Control": "no-cache"}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            answers = _hammer(lambda p: c.get(p, headers=headers),
                              lambda p, body: c.put(p, json=body, headers=headers), users, 300)
    finally:
        stop_server(proc)
    assert {st for _, st in answers} == {200}, sorted(set(answers))
