"""Infrastructure preflight: before the baseline starts, is everything it needs there?

The launch guide's Stage 1 check, as measurements: every replica's /readyz ten times in a
row, the replica count against the Deployment and the HPA, each shared store written and
read back and cleaned up (state, cache, counters, event stream, lake), free disk for the
lake, Prometheus scraping every replica, Alertmanager answering. Each check has a verdict
(pass, fail, or skip with the reason) and its evidence; the whole passes when none fails.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import yaml

PROBES = 10  # the guide's "health probes 10/10"
MIN_FREE_BYTES = 1 << 30  # the lake's floor: a day of telemetry at launch traffic


@dataclass
class Check:
    name: str
    verdict: str  # pass | fail | skip
    why: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)


def _run(name: str, fn: Callable[[], Check]) -> Check:
    """A check that raises failed, and says why (a preflight never crashes half-way)."""
    try:
        return fn()
    except Exception as exc:
        return Check(name, "fail", f"{type(exc).__name__}: {exc}"[:300])


def replica_probes(url: str, probes: int = PROBES, key: str | None = None) -> Check:
    name = f"replica {url}"
    statuses, body = [], {}
    for _ in range(probes):
        try:
            r = httpx.get(f"{url}/readyz", timeout=5)
            statuses.append(r.status_code)
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            statuses.append(0)
            body = {"error": str(exc)[:200]}
    ok = sum(s == 200 for s in statuses)
    ev = {"probes": f"{ok}/{probes}", "ready_probes": ok, "statuses": statuses,
          "checks": body.get("checks"), "degraded": body.get("degraded"),
          "release": body.get("release")}
    if ok < probes:
        return Check(name, "fail", f"/readyz answered 200 to {ok} of {probes} probes", ev)
    if body.get("degraded"):
        return Check(name, "fail", f"ready but degraded: {body.get('degraded')}", ev)
    return Check(name, "pass", f"/readyz {ok}/{probes}", ev)


def planned_replicas(deploy: Path | None) -> dict[str, int] | None:
    """The Deployment's replicas and the HPA's bounds from the manifests, when given."""
    if deploy is None or not (deploy / "k8s").is_dir():
        return None
    found: dict[str, int] = {}
    for path in sorted((deploy / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict) or doc.get("metadata", {}).get("name") != "novarank":
                continue
            if doc.get("kind") == "Deployment":
                found["replicas"] = int(doc["spec"]["replicas"])
            elif doc.get("kind") == "HorizontalPodAutoscaler":
                found["min"] = int(doc["spec"]["minReplicas"])
                found["max"] = int(doc["spec"]["maxReplicas"])
    return found or None


def replica_count(up: int, total: int, plan: dict[str, int] | None) -> Check:
    ev = {"ready": up, "given": total, "planned": plan}
    if up < total:
        return Check("replica count", "fail", f"{up} of {total} replicas ready", ev)
    if plan is None:
        return Check("replica count", "pass", f"{up} of {total} ready (no manifest to "
                     "compare with)", ev)
    low, high = plan.get("min", plan.get("replicas", 1)), plan.get("max", 10 ** 6)
    want = plan.get("replicas", low)
    if up < want or not low <= up <= high:
        return Check("replica count", "fail", f"{up} ready, the Deployment wants {want} "
                     f"(HPA {low}-{high})", ev)
    return Check("replica count", "pass", f"{up} ready; Deployment {want}, HPA {low}-{high}",
                 ev)


def _quantity(text: str | int | float) -> float:
    """A Kubernetes quantity as a number: cores for CPU ("500m" = 0.5), bytes for memory."""
    s = str(text).strip()
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
             "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    for suffix in sorted(units, key=len, reverse=True):
        if s.endswith(suffix):
            return float(s[: -len(suffix)]) * units[suffix]
    return float(s)


def planned_requests(deploy: Path | None) -> dict[str, float] | None:
    """CPU and memory the API needs at the HPA's maximum: requests per pod x max replicas."""
    if deploy is None or not (deploy / "k8s").is_dir():
        return None
    plan = planned_replicas(deploy) or {}
    for path in sorted((deploy / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if (isinstance(doc, dict) and doc.get("kind") == "Deployment"
                    and doc.get("metadata", {}).get("name") == "novarank"):
                req = doc["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
                pods = plan.get("max", plan.get("replicas", 1))
                return {"cpu": _quantity(req["cpu"]) * pods,
                        "memory": _quantity(req["memory"]) * pods, "pods": pods}
    return None


def headroom(deploy: Path | None, allocatable: dict[str, str] | None) -> Check:
    """Requests at the HPA's maximum against what the cluster can still allocate."""
    if not allocatable:
        return Check("headroom", "skip", "no --allocatable (the cluster's free CPU and "
                     "memory): requests not compared")
    need = planned_requests(deploy)
    if need is None:
        return Check("headroom", "skip", "no --deploy manifests: requests unknown")
    have = {k: _quantity(v) for k, v in allocatable.items()}
    short = [f"{k} needs {need[k]:g}, {have.get(k, 0):g} allocatable"
             for k in ("cpu", "memory") if need[k] > have.get(k, 0)]
    ev = {"needed_at_max_replicas": need, "allocatable": have}
    if short:
        return Check("headroom", "fail", "; ".join(short), ev)
    return Check("headroom", "pass", f"{int(need['pods'])} pods fit: cpu {need['cpu']:g} of "
                 f"{have['cpu']:g}, memory {need['memory'] / 2**30:.1f} of "
                 f"{have['memory'] / 2**30:.1f} GiB", ev)


def state_roundtrip(url: str) -> Check:
    from novarank.stores import open_state

    key = f"preflight:{uuid.uuid4().hex}"
    state = open_state(url)
    try:
        t0 = time.perf_counter()
        state.set_doc(key, {"at": time.time()})
        back = state.get_docs(key)
        state.delete_doc(key)
        gone = key not in state.get_docs(key)
        ms = round((time.perf_counter() - t0) * 1e3, 1)
    finally:
        state.close()
    ev = {"url": _safe(url), "round_trip_ms": ms, "cleaned_up": gone}
    if key not in back or not gone:
        return Check("state store", "fail", "document not read back or not cleaned up", ev)
    return Check("state store", "pass", f"write, read, delete in {ms} ms", ev)


def redis_roundtrip(name: str, url: str, stream: bool = False) -> Check:
    """A key (or a stream entry) written, read back and deleted; memory:// has nothing
    shared to check."""
    if urlparse(url).scheme == "memory":
        return Check(name, "skip", "memory://: in-process, nothing shared to check",
                     {"url": url})
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    key = f"nr:preflight:{uuid.uuid4().hex}"
    try:
        t0 = time.perf_counter()
        if stream:
            entry = client.xadd(key, {"preflight": "1"})
            ok = bool(client.xrange(key, entry, entry))
        else:
            client.set(key, b"1", px=60_000)
            ok = client.get(key) == b"1"
        client.delete(key)
        gone = not client.exists(key)
        ms = round((time.perf_counter() - t0) * 1e3, 1)
    finally:
        client.close()
    ev = {"url": _safe(url), "round_trip_ms": ms, "cleaned_up": gone}
    if not ok or not gone:
        return Check(name, "fail", "not read back or not cleaned up", ev)
    return Check(name, "pass", f"write, read, delete in {ms} ms", ev)


def lake_writable(lake: Path | None, min_free: int = MIN_FREE_BYTES) -> Check:
    if lake is None:
        return Check("lake", "fail", "no lake: telemetry would not be kept")
    lake.mkdir(parents=True, exist_ok=True)
    probe = lake / f".preflight-{uuid.uuid4().hex}"
    probe.write_bytes(b"preflight")
    ok = probe.read_bytes() == b"preflight"
    probe.unlink()
    free = shutil.disk_usage(lake).free
    ev = {"path": str(lake), "free_bytes": free, "min_free_bytes": min_free}
    if not ok:
        return Check("lake", "fail", "written file not read back", ev)
    if free < min_free:
        return Check("lake", "fail", f"{free / 2**30:.2f} GiB free, under the "
                     f"{min_free / 2**30:.2f} GiB floor", ev)
    return Check("lake", "pass", f"writable, {free / 2**30:.1f} GiB free", ev)


def events_sink(url: str) -> Check:
    scheme = urlparse(url).scheme
    if scheme == "null":
        return Check("event stream", "fail", "null://: telemetry is off, no gate could judge "
                     "the launch", {"url": url})
    if scheme == "file":
        return Check("event stream", "skip", "file://: replicas write the lake directly "
                     "(checked as the lake)", {"url": url})
    return redis_roundtrip("event stream", url, stream=True)


def prometheus_scrapes(prom: str | None, replicas: list[str]) -> Check:
    if prom is None:
        return Check("prometheus", "skip", "no --prometheus-url: scraping not checked")
    r = httpx.get(f"{prom.rstrip('/')}/api/v1/targets", timeout=10)
    r.raise_for_status()
    targets = r.json()["data"]["activeTargets"]
    seen = {urlparse(t["scrapeUrl"]).netloc: t["health"] for t in targets}
    missing = {u: seen.get(urlparse(u).netloc, "not a target") for u in replicas
               if seen.get(urlparse(u).netloc) != "up"}
    ev = {"targets": seen, "replicas": replicas, "not_scraped": missing}
    if missing:
        return Check("prometheus", "fail", "not scraping " + ", ".join(
            f"{u} ({why})" for u, why in missing.items()), ev)
    return Check("prometheus", "pass", f"scraping all {len(replicas)} replicas", ev)


def alertmanager_up(url: str | None) -> Check:
    if url is None:
        return Check("alertmanager", "skip", "no --alertmanager-url: not checked")
    r = httpx.get(f"{url.rstrip('/')}/api/v2/status", timeout=10)
    ev = {"status": r.status_code}
    if r.status_code != 200:
        return Check("alertmanager", "fail", f"/api/v2/status answered {r.status_code}", ev)
    ev["cluster"] = r.json().get("cluster", {}).get("status")
    return Check("alertmanager", "pass", f"answering (cluster {ev['cluster']})", ev)


def lake_of(events_url: str) -> Path | None:
    """The lake under a file:// events URL (else the ingester's, which must be given)."""
    return Path(events_url.removeprefix("file://")) if events_url.startswith("file://") \
        else None


def _safe(url: str) -> str:
    """A URL without its password, for the record."""
    p = urlparse(url)
    return p._replace(netloc=p.hostname + (f":{p.port}" if p.port else "")).geturl() \
        if p.password and p.hostname else url


@dataclass
class Preflight:
    """What to check: the replicas' URLs and the backends they share."""

    replicas: list[str]
    state_url: str
    cache_url: str = "memory://"
    counters_url: str = "memory://"
    events_url: str = "file://runs/lake"
    lake: Path | None = None
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    deploy: Path | None = None
    min_free_bytes: int = MIN_FREE_BYTES
    probes: int = PROBES
    allocatable: dict[str, str] | None = None  # the cluster's free cpu and memory

    def run(self) -> dict[str, Any]:
        checks = [_run(f"replica {u}", lambda u=u: replica_probes(u, self.probes))
                  for u in self.replicas]
        up = sum(c.verdict == "pass" for c in checks)
        plan = planned_replicas(self.deploy)
        checks += [
            replica_count(up, len(self.replicas), plan),
            _run("state store", lambda: state_roundtrip(self.state_url)),
            _run("cache", lambda: redis_roundtrip("cache", self.cache_url)),
            _run("counters", lambda: redis_roundtrip("counters", self.counters_url)),
            _run("event stream", lambda: events_sink(self.events_url)),
            _run("lake", lambda: lake_writable(self.lake, self.min_free_bytes)),
            _run("prometheus", lambda: prometheus_scrapes(self.prometheus_url,
                                                          self.replicas)),
            _run("alertmanager", lambda: alertmanager_up(self.alertmanager_url)),
            _run("headroom", lambda: headroom(self.deploy, self.allocatable)),
        ]
        failed = [c for c in checks if c.verdict == "fail"]
        return {"passed": not failed, "checks": [asdict(c) for c in checks],
                "failed": [f"{c.name}: {c.why}" for c in failed],
                "counts": {v: sum(c.verdict == v for c in checks)
                           for v in ("pass", "fail", "skip")}}
