"""Preflight against a real multi-replica setup: three `novarank serve` processes over one
Redis (cache, counters, event stream) and PostgreSQL (state), a real Prometheus scraping
two of them and a real Alertmanager; then each failure mode made to fail on its own."""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
import yaml

from novarank.cli.demo_service import free_port, start_server, stop_server
from novarank.launch.preflight import Preflight
from tests.services import postgres_url, redis_url, tool, unique_prefix

DEAD = "127.0.0.1:9"  # discard port: nothing listens


def _wait(url: str, ok, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if ok(httpx.get(url, timeout=2)):
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture(scope="module")
def cluster(small_release, tmp_path_factory):
    redis, postgres = redis_url(), postgres_url()
    prometheus, alertmanager = tool("prometheus"), tool("prometheus-alertmanager")
    work = tmp_path_factory.mktemp("preflight")
    env = {"NOVARANK_CACHE_URL": redis, "NOVARANK_COUNTERS_URL": redis,
           "NOVARANK_EVENTS_URL": redis, "NOVARANK_STATE_URL": postgres,
           "NOVARANK_KEY_PREFIX": unique_prefix()}
    ports = [free_port() for _ in range(3)]
    procs = [start_server(small_release[0], work, p, env=env, log=work / f"r{p}.log")
             for p in ports]
    prom_port, am_port = free_port(), free_port()
    cfg = work / "prometheus.yml"  # scrapes the first two replicas only
    cfg.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{"job_name": "novarank", "static_configs": [
            {"targets": [f"127.0.0.1:{p}" for p in ports[:2]]}]}]}))
    am_cfg = work / "am.yml"
    am_cfg.write_text(yaml.safe_dump({"route": {"receiver": "null"},
                                      "receivers": [{"name": "null"}]}))
    helpers = [
        subprocess.Popen([prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={work}/tsdb",
                          f"--web.listen-address=127.0.0.1:{prom_port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([alertmanager, f"--config.file={am_cfg}",
                          f"--storage.path={work}/am", f"--web.listen-address=127.0.0.1:{am_port}",
                          f"--cluster.listen-address=127.0.0.1:{free_port()}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    prom, am = f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{am_port}"
    try:
        _wait(f"{prom}/api/v1/targets", lambda r: sum(
            t["health"] == "up" for t in r.json()["data"]["activeTargets"]) == 2)
        _wait(f"{am}/api/v2/status", lambda r: r.status_code == 200)
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        yield Preflight(replicas=urls[:2], state_url=postgres, cache_url=redis,
                        counters_url=redis, events_url=redis, lake=work / "lake",
                        prometheus_url=prom, alertmanager_url=am, min_free_bytes=1 << 20), urls
    finally:
        for h in helpers:
            h.terminate()
            h.wait(timeout=10)
        for p in procs:
            stop_server(p)


def _failed(pre: Preflight) -> dict[str, str]:
    res = pre.run()
    assert res["passed"] == (not res["failed"])
    return {c["name"]: c["why"] for c in res["checks"] if c["verdict"] == "fail"}


def test_a_healthy_setup_passes_every_check(cluster):
    pre, _ = cluster
    res = pre.run()
    assert res["passed"], res["failed"]
    checks = {c["name"]: c for c in res["checks"]}
    for url in pre.replicas:
        assert checks[f"replica {url}"]["evidence"]["probes"] == "10/10"
    assert {n for n, c in checks.items() if c["verdict"] == "skip"} == {"headroom"}  # no
    # cluster capacity given: the only check that cannot run here
    assert checks["event stream"]["evidence"]["cleaned_up"]
    assert checks["prometheus"]["why"] == "scraping all 2 replicas"


def test_each_failure_mode_fails_on_its_own(cluster, tmp_path):
    pre, urls = cluster
    dead = f"http://{DEAD}"
    assert set(_failed(replace(pre, replicas=[*pre.replicas, dead]))) == {
        f"replica {dead}", "replica count", "prometheus"}
    # up and ready, but Prometheus does not scrape it
    only = _failed(replace(pre, replicas=urls))
    assert set(only) == {"prometheus"} and urls[2] in only["prometheus"]
    deploy = tmp_path / "deploy" / "k8s"
    deploy.mkdir(parents=True)
    (deploy / "d.yaml").write_text(yaml.safe_dump(
        {"kind": "Deployment", "metadata": {"name": "novarank"}, "spec": {"replicas": 3}}))
    assert set(_failed(replace(pre, deploy=deploy.parent))) == {"replica count"}
    assert set(_failed(replace(pre, state_url=f"postgresql://postgres@{DEAD}/test"))) == {
        "state store"}
    assert set(_failed(replace(pre, cache_url=f"redis://{DEAD}/0"))) == {"cache"}
    assert set(_failed(replace(pre, counters_url=f"redis://{DEAD}/0"))) == {"counters"}
    assert set(_failed(replace(pre, events_url="null://"))) == {"event stream"}
    blocker = Path(tempfile.mkdtemp()) / "a-file"
    blocker.write_text("not a directory")
    assert set(_failed(replace(pre, lake=blocker / "lake"))) == {"lake"}
    low = _failed(replace(pre, min_free_bytes=1 << 60))
    assert set(low) == {"lake"} and "floor" in low["lake"]
    assert set(_failed(replace(pre, alertmanager_url=dead))) == {"alertmanager"}
    assert set(_failed(replace(pre, prometheus_url=dead))) == {"prometheus"}


def test_headroom_compares_requests_at_the_hpa_maximum():
    from novarank.launch.preflight import headroom

    deploy = Path(__file__).resolve().parent.parent / "deploy"  # 10 pods x (1 cpu, 2Gi)
    assert headroom(deploy, None).verdict == "skip"
    ok = headroom(deploy, {"cpu": "12", "memory": "24Gi"})
    assert ok.verdict == "pass" and ok.evidence["needed_at_max_replicas"]["pods"] == 10
    short = headroom(deploy, {"cpu": "9500m", "memory": "64Gi"})
    assert short.verdict == "fail" and short.why.startswith("cpu needs 10")

