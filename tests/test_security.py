"""Scoped keys against a real `novarank serve`: every route without a key, with each
single-scope key, with a revoked one; rotation without a restart; the refusal to start
without keys; development mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from novarank.cli.demo_service import TOKEN, free_port, start_server, stop_server
from novarank.keys import SCOPES, issue, revoke

# what each operation needs; a route missing here fails the test (no route is open by mistake)
NEEDS = {
    ("GET", "/v1/users/{user_id}/feed"): "read",
    ("GET", "/v1/trending"): "read",
    ("GET", "/v1/search"): "read",
    ("GET", "/v1/users/{user_id}/creators"): "read",
    ("GET", "/v1/items/{item_id}"): "read",
    ("GET", "/v1/items/{item_id}/similar"): "read",
    ("GET", "/v1/users/{user_id}/assignment"): "read",
    ("PUT", "/v1/items/{item_id}"): "catalog",
    ("POST", "/v1/events"): "events",
    ("GET", "/v1/users/{user_id}/history"): "privacy",
    ("DELETE", "/v1/users/{user_id}"): "privacy",
    ("GET", "/v1/admin/toggles"): "admin",
    ("PUT", "/v1/admin/toggles"): "admin",
    ("POST", "/v1/admin/cache/warm"): "admin",
    ("GET", "/v1/admin/release"): "admin",
    ("GET", "/v1/admin/rollout"): "admin",
}
OPEN = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
BODIES = {("PUT", "/v1/items/{item_id}"): {"title": "t", "creator_id": "c1"},
          ("POST", "/v1/events"): [{"type": "click", "user_id": "u1", "item_id": "v1"}],
          ("PUT", "/v1/admin/toggles"): {}}
QUERY = {"/v1/search": {"q": "music"}, "/v1/admin/cache/warm": {"max_users": 1}}


@pytest.fixture(scope="module")
def served(small_release, tmp_path_factory):
    release, users, item = small_release
    work = tmp_path_factory.mktemp("security")
    keys = work / "api-keys.yaml"
    issued = {s: issue(keys, f"{s}-client", [s]) for s in SCOPES}
    port = free_port()
    log = work / "service.log"
    proc = start_server(release, work, port, log=log, env={
        "NOVARANK_API_KEYS_FILE": str(keys), "NOVARANK_AUTH": "on",
        "NOVARANK_DRILLS_ENABLED": "false", "NOVARANK_REFRESH_S": "0.1",
        "NOVARANK_AUDIT_LOG": str(work / "audit.jsonl")})
    try:
        yield f"http://127.0.0.1:{port}", keys, issued, users[0], item, work
    finally:
        stop_server(proc)


def _call(c: httpx.Client, method: str, path: str, user: str, item: str,
          key: str | None) -> httpx.Response:
    url = path.replace("{user_id}", user).replace("{item_id}", item)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return c.request(method, url, headers=headers, json=BODIES.get((method, path)),
                     params=QUERY.get(path))


def test_every_route_needs_its_scope_and_only_its_scope(served):
    url, _, issued, user, item, _work = served
    with httpx.Client(base_url=url, timeout=30) as c:
        doc = c.get("/openapi.json").json()
        assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        published = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
        assert published - OPEN == set(NEEDS), "a route without a declared scope"
        for (method, path), scope in NEEDS.items():
            op = doc["paths"][path][method.lower()]
            assert op.get("security") == [{"HTTPBearer": []}], (method, path)
            r = _call(c, method, path, user, item, None)
            assert r.status_code == 401, (method, path, r.status_code)
            assert r.headers["www-authenticate"] == "Bearer"
            assert scope in r.json()["error"]["message"]
            assert _call(c, method, path, user, item, "nvk_nope_wrong").status_code == 401
            for other, key in issued.items():
                r = _call(c, method, path, user, item, key)
                if other in (scope, "admin"):  # admin opens everything
                    assert r.status_code not in (401, 403), (method, path, other, r.text)
                else:
                    assert r.status_code == 403, (method, path, other, r.status_code)
                    assert f"lacks the '{scope}' scope" in r.json()["error"]["message"]
        for method, path in OPEN:
            assert c.request(method, path).status_code == 200
        # the admin token is an admin key; QA headers on the feed need admin too
        feed = f"/v1/users/{user}/feed"
        assert c.get(feed, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        r = c.get(feed, headers={"Authorization": f"Bearer {issued['read']}",
                                 "X-Variant-Override": "control"})
        assert r.status_code == 403


def test_admin_and_privacy_actions_are_audited_without_raw_ids(served):
    import pyarrow.parquet as pq

    url, _, issued, _user, _item, work = served
    victim = "audit-victim-42"
    with httpx.Client(base_url=url, timeout=30) as c:
        assert c.delete(f"/v1/users/{victim}").status_code == 401
        assert c.delete(f"/v1/users/{victim}", headers={
            "Authorization": f"Bearer {issued['read']}"}).status_code == 403
        assert c.delete(f"/v1/users/{victim}", headers={
            "Authorization": f"Bearer {issued['privacy']}"}).status_code == 200
        assert c.get("/v1/admin/toggles", headers=ADMIN).status_code == 200
        assert c.get("/v1/trending", headers={
            "Authorization": f"Bearer {issued['read']}"}).status_code == 200  # not audited
    trail = work / "audit.jsonl"
    rows: list[dict] = []
    deadline = time.monotonic() + 5  # written just after each answer is sent
    while time.monotonic() < deadline and not any(r["route"] == "/v1/admin/toggles"
                                                  for r in rows):
        time.sleep(0.05)
        rows = [json.loads(ln) for ln in trail.read_text().splitlines()] \
            if trail.exists() else []
    deletes = [(r["principal"], r["status"]) for r in rows if r["route"] == "/v1/users/{user_id}"
               and r["method"] == "DELETE"][-3:]
    read_id, privacy_id = (issued[s].split("_")[1] for s in ("read", "privacy"))
    assert deletes == [(None, 401), (read_id, 403), (privacy_id, 200)], deletes
    assert any(r["route"] == "/v1/admin/toggles" and r["principal"] == "admin-token"
               for r in rows)
    assert not any(r["route"] == "/v1/trending" for r in rows)
    assert victim not in trail.read_text() and victim not in (work / "service.log").read_text()
    deadline = time.monotonic() + 10  # and in the lake, as audit events
    parts: list = []
    while time.monotonic() < deadline and not parts:
        parts = list((work / "lake" / "events" / "audit").rglob("*.parquet"))
        time.sleep(0.3)
    assert parts and sum(pq.read_table(p).num_rows for p in parts) >= 4


def test_keys_rotate_and_revoke_without_a_restart(served):
    url, keys, issued, user, _, _work = served
    feed = f"/v1/users/{user}/feed"

    def status(key: str) -> int:
        return httpx.get(f"{url}{feed}", headers={"Authorization": f"Bearer {key}"},
                         timeout=30).status_code

    fresh = issue(keys, "rotated-in", ["read"])
    revoke(keys, issued["read"].split("_")[1])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (status(fresh), status(issued["read"])) != (200, 401):
        time.sleep(0.2)
    assert (status(fresh), status(issued["read"])) == (200, 401)
    # a broken edit keeps the keys that were loaded (nobody is locked out by a typo)
    good = keys.read_text()
    keys.write_text("keys: [ {broken")
    time.sleep(1.5)
    assert status(fresh) == 200
    keys.write_text(good)


ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _rollout(work, release, canary, fault=None):
    from novarank.launch.rollout import RolloutController
    from novarank.online.releases import Fault, RolloutPolicy
    from novarank.stores import open_state

    state = open_state(f"sqlite:///{work}/state.db")
    try:
        ctl = RolloutController(state, work / "lake")
        current = ctl.current()
        if current is not None and current.status in ("running", "paused"):
            ctl.abort("next test")
        ctl.start(canary, [50.0], RolloutPolicy(step_seconds=600, max_step_seconds=3600),
                  Fault.parse(fault) if fault else None, stable=release)
        return state.get_docs("rollout:error:")
    finally:
        state.close()


def _errors(work) -> dict:
    from novarank.stores import open_state

    state = open_state(f"sqlite:///{work}/state.db")
    try:
        return state.get_docs("rollout:error:")
    finally:
        state.close()


def test_a_rollout_cannot_point_outside_the_releases_root(served, small_release, small_model,
                                                          tmp_path):
    """Whoever writes the state store must not load any path on disk into a replica."""
    from novarank.release import save_release

    url, work = served[0], served[-1]
    release = small_release[0]
    save_release(small_model, tmp_path / "elsewhere", version="evil")
    _rollout(work, release, tmp_path / "elsewhere")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not _errors(work):
        time.sleep(0.2)
    errors = list(_errors(work).values())
    assert errors and "outside the releases root" in errors[0]["error"], errors
    view = httpx.get(f"{url}/v1/admin/rollout", headers=ADMIN, timeout=10).json()
    assert view["canary"] is None and view["stable"] == "r1"
    assert "outside the releases root" in (work / "service.log").read_text()


def test_a_drill_fault_is_ignored_while_drills_are_off(served, small_release, small_model):
    from novarank.release import save_release

    url, _keys, issued, _user, _item, work = served
    release = small_release[0]
    canary = release.parent / "r2-drill"
    if not canary.exists():
        save_release(small_model, canary, version="r2")
    _rollout(work, release, canary, fault="errors:1.0")
    deadline = time.monotonic() + 15
    view: dict = {}
    while time.monotonic() < deadline:
        view = httpx.get(f"{url}/v1/admin/rollout", headers=ADMIN, timeout=10).json()
        if view["canary"] == "r2":
            break
        time.sleep(0.2)
    assert view["canary"] == "r2" and view["fault"] is None, view
    assert view["fault_refused"]["kind"] == "errors"
    key = {"Authorization": f"Bearer {issued['events']}"}  # no read scope: refused first
    assert httpx.get(f"{url}/v1/users/u1/feed", headers=key, timeout=10).status_code == 403
    answers = [httpx.get(f"{url}/v1/users/u{n}/feed", headers=ADMIN, timeout=10)
               for n in range(40)]
    assert {r.status_code for r in answers} == {200}  # no injected 500s
    assert "r2" in {r.json()["release"] for r in answers}  # the canary did serve some
    assert "drills are off" in (work / "service.log").read_text()


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("NOVARANK_AUTH", "NOVARANK_ADMIN_TOKEN", "NOVARANK_API_KEYS_FILE")}
    return subprocess.run([sys.executable, "-m", "novarank.cli.main", "serve", *args],
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_serve_refuses_to_start_without_keys(small_release, tmp_path):
    release = str(small_release[0])
    res = _serve({}, "--release", release)
    assert res.returncode == 2 and "no API keys" in res.stdout + res.stderr
    assert "Traceback" not in res.stdout + res.stderr
    res = _serve({"NOVARANK_API_KEYS_FILE": str(tmp_path / "absent.yaml")}, "--release",
                 release)
    assert res.returncode == 2 and "does not exist" in res.stdout + res.stderr


def test_development_mode_opens_all_but_admin_and_says_so(small_release, tmp_path):
    release, users, _ = small_release
    port = free_port()
    log = tmp_path / "service.log"
    proc = start_server(release, tmp_path, port, env={"NOVARANK_AUTH": "off"}, log=log)
    try:
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/v1/users/{users[0]}/history", timeout=30).status_code == 200
        assert httpx.get(f"{base}/v1/admin/toggles", timeout=30).status_code == 401
    finally:
        stop_server(proc)
    assert "AUTHENTICATION IS OFF" in log.read_text()


def test_rate_budgets_refill_and_name_the_wait():
    from novarank.api.ratelimit import Buckets
    from novarank.errors import RateLimited

    b = Buckets({"catalog": 2.0, "events": 0.0})
    b.take("k", "catalog")
    b.take("k", "catalog")
    b.take("k", "catalog")
    b.take("k", "catalog")  # a burst of two seconds' worth
    with pytest.raises(RateLimited) as err:
        b.take("k", "catalog")
    assert 0 < err.value.retry_after <= 0.5 and "catalog budget of 2/s" in str(err.value)
    b.take("other", "catalog")  # budgets are per key
    for _ in range(1000):
        b.take("k", "events")  # 0 = unlimited
    with pytest.raises(RateLimited):
        b.take("k", "catalog", rate=0.001)  # a key's own limit wins
    time.sleep(0.55)
    b.take("k", "catalog")  # refilled at the rate


def test_many_client_addresses_cannot_grow_the_budget_table():
    """Development mode budgets per address: a flood of addresses is bounded."""
    from novarank.api.ratelimit import Buckets

    b = Buckets({"miss": 5.0}, max_clients=1_000)
    for n in range(20_000):
        b.take(f"addr:10.0.{n // 256}.{n % 256}", "miss")
        assert len(b._tokens) <= 1_000
    assert b.wait("addr:10.0.0.1", "miss") == 0.0  # a forgotten address starts full


def test_the_early_refusal_waits_for_exactly_one_token():
    from novarank.api.ratelimit import Buckets

    b = Buckets({"catalog": 1.0})
    assert b.wait("k", "catalog") == 0.0  # never seen: a full bucket
    b.take("k", "catalog", 2.0)  # the burst, all of it
    assert 0.9 < b.wait("k", "catalog") <= 1.0
    assert b.wait("k", "catalog", 0.0) == 0.0  # a key's own "unlimited" wins
    time.sleep(0.3)
    assert 0.6 < b.wait("k", "catalog") <= 0.7  # refills while it waits


def test_a_key_over_its_budget_gets_429_and_nothing_is_done(served):
    url, keys, _issued, _user, _item, _work = served
    key = issue(keys, "tight", ["read", "events", "catalog"],
                limits={"catalog": 0.5, "events": 2, "miss": 0.5})  # slow refills: a
    # loaded machine taking a second per request still sees the budget spent
    auth = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + 10  # the replica picks the new key up within a second
    while httpx.get(f"{url}/v1/trending", headers=auth, timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    with httpx.Client(base_url=url, timeout=30, headers=auth) as c:
        body = {"title": "t", "creator_id": "c1"}
        codes = [c.put(f"/v1/items/rl-{n}", json=body).status_code for n in range(3)]
        assert codes == [200, 429, 429]
        r = c.put("/v1/items/rl-9", json=body)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "rate_limited"
        assert c.get("/v1/items/rl-9").status_code == 404  # the refused upsert did nothing
        # refused before the body is read: a malformed one is not even looked at
        early = c.put("/v1/items/rl-9", content=b"{not json", headers={
            "content-type": "application/json"})
        assert early.status_code == 429 and "catalog budget of 0.5/s" in early.text
        batch = [{"type": "click", "user_id": "u1", "item_id": "v1"}] * 25
        assert c.post("/v1/events", json=batch).status_code == 200  # a full bucket
        assert c.post("/v1/events", json=batch[:5]).status_code == 429
        misses = [c.get(f"/v1/users/rl-user-{n}/feed").status_code for n in range(3)]
        assert misses == [200, 429, 429]
        assert c.get("/v1/users/rl-user-0/feed").status_code == 200  # an L1 hit is free
        metrics = c.get("/metrics").text
    refused = {kind: sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                         if line.startswith(f'novarank_rate_limited_total{{kind="{kind}"}}'))
               for kind in ("catalog", "events", "miss")}
    assert refused["catalog"] >= 4 and refused["events"] >= 1 and refused["miss"] >= 2, refused
