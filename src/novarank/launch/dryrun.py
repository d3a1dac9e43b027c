"""The staging dry-run: drive a service with simulated users, run the launch gates in
order, and write the evidence pack (gates.json, GO_NO_GO.md, one snippet per gate)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from novarank.analytics.srm import SRM_ALPHA, sample_ratio
from novarank.launch.gates import GateResult, GateSpec, Measurement
from novarank.launch.gates import evaluate as run_gate
from novarank.launch.offpolicy import PreTraffic
from novarank.launch.preflight import PROBES
from novarank.launch.simulator import Simulator
from novarank.ops.ownership import ROLES
from novarank.telemetry.schemas import user_key

SPECS = (
    GateSpec(0, "Infrastructure preflight", "preflight_ok", "==", 1, PROBES,
             how="every replica's /readyz 10 times, the replica count against the manifests, "
                 "state, cache, counters, event stream and lake written, read back and "
                 "cleaned up, free disk; against staging also Prometheus scraping every "
                 "replica and Alertmanager answering (launch/preflight.py)",
             window="10 probes per replica", conclusive_miss=True),
    GateSpec(1, "Artifacts locked", "lock_verified", "==", 1, how="sha256 of every file "
             "vs release.lock.json, and the lock's own digest (and signature, with a key)",
             conclusive_miss=True),
    GateSpec(2, "Scoring service up", "cohorts_passing", "==", 1.0, 4,
             how="one feed per cohort (cold, light, medium, heavy): 200, k valid items, "
                 "latency <= 50 ms", window="4 requests", conclusive_miss=True),
    GateSpec(3, "Candidate cache warmed", "hit_rate_after_warm", ">=", 0.85, 100,
             how="feed hit rate of sampled users before and after the warm plan",
             window="100 users before, 100 after"),
    GateSpec(4, "A/B assignment live", "srm_p_value", ">=", SRM_ALPHA, 300,
             how="anytime-valid SRM p-value of users per variant vs the planned split; "
                 "no user in two variants or outside the plan",
             window="today's feeds in the lake (UTC)"),
    GateSpec(5, "Telemetry flowing", "telemetry_ok", "==", 1, 100, how="request, ranking, "
             "impression, click, error in today's partitions; no orphan impression/click",
             window="today's partitions (UTC)", conclusive_miss=True),
    GateSpec(6, "Daily rollups materialize", "rollup_ok", "==", 1, 100,
             how="`novarank rollup` for today: non-empty, reconciled with counts made "
                 "without its SQL (writers' ledgers, Parquet footers, Arrow)",
             window="today (UTC)", conclusive_miss=True),
    GateSpec(7, "Dashboards green", "tiles_ok", "==", 1, 20, how="Health and Outcomes tiles "
             "within their objectives (analytics/slo.py); offline quality: lift over "
             "popularity on the held-out users, no regression against the stable release, "
             "the data set's floor", window="today's traffic after the warm plan (UTC); the "
             "release's held-out evaluation"),
    GateSpec(8, "Alerts armed", "alerting_ok", "==", 1, 6, how="promtool rule tests, amtool "
             "routes, a test alert delivered to the webhook receiver; against staging also "
             "the rules its Prometheus loaded and its Alertmanager's routing",
             conclusive_miss=True),
    GateSpec(9, "Safety drills pass", "drills_ok", "==", 1, 50, how="kill switch on -> every "
             "feed a full fallback -> off; automatic rollback of a faulty canary",
             window="the drills' traffic", conclusive_miss=True),
    GateSpec(10, "Owner on-call", "oncall_ok", "==", 1, 7 * 24, how="deploy/oncall.yaml "
             "covers the launch window without a gap; escalation L1-L4 complete; "
             "deploy/ownership.yaml: the four owners reachable, P1-P4 routed",
             window="now + 7 days", conclusive_miss=True),
    GateSpec(11, "Replay parity", "exact_match", ">=", 0.99, 100, how="the release's "
             "first pages replayed offline with the inputs each logged (ranking time, live "
             "engagement, trending read, weights): top 10 identical in order; Jaccard, "
             "Kendall tau and each signal's drift beside it (launch/replay.py)",
             window="today's explored first pages of the release (UTC)"),
    GateSpec(12, "Pre-traffic estimate", "ctr_change_lower_bound", ">=",
             -PreTraffic.margin, int(PreTraffic.min_effective), how="the release's CTR@10 "
             "estimated (PBM) from the explored logs of the release it replaces, against "
             "that release: the 95% lower bound of the relative change, before any canary; "
             f"support >= {PreTraffic.min_support} (launch/offpolicy.py)",
             window="the replaced release's explored first pages (UTC day of the logs)"),
)
SPEC = {s.number: s for s in SPECS}
COHORT_LATENCY_MS = 50.0
SNIPPET_LINES = 20


@dataclass
class DryRun:
    url: str
    token: str
    release: Path
    lake: Path
    deploy: Path
    sim: Simulator
    split: dict[str, float]
    sessions: int = 600
    launch_window_days: int = 7
    canary: Path | None = None  # a second release for the rollback drill
    state_url: str | None = None  # the state store the service follows (rollout document)
    fault: str = "errors:1.0"
    service_log: Path | None = None
    replaces: Path | None = None  # the stable release this one replaces (gate 7)
    staging: bool = False  # against a deployed system: gate 8 checks its Prometheus too
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    pack: Path | None = None  # where the metric snapshot and dashboard screenshot go
    recall_floor: float = 0.0  # this data set's absolute Recall@10 floor (gate 7)
    key: str | None = None  # the simulated traffic's API key (read, events); else the token
    explored: Path | None = None  # the replaced release's explored logs (gate 12)
    explored_day: str | None = None  # their UTC day (default: today)

    def __post_init__(self) -> None:
        self.admin = {"Authorization": f"Bearer {self.token}"}
        self.keyed = {"Authorization": f"Bearer {self.key or self.token}"}
        self.http = httpx.Client(base_url=self.url, timeout=30, headers=self.keyed)
        self.day = datetime.now(UTC).strftime("%Y-%m-%d")
        self.rollup_result: Any = None
        self.artifacts: dict[str, str] = {}
        self.warmed_at_ms: int | None = None  # gate 7's tiles judge the traffic after it

    # ---- gates ---------------------------------------------------------------------------
    def g0_preflight(self) -> Measurement:
        from novarank.config import ServiceSettings
        from novarank.launch.preflight import Preflight

        # staging: the backends the replicas share, from the same NOVARANK_* settings the
        # rollout commands use; the embedded world: its one replica, SQLite and the lake
        s = ServiceSettings()
        pre = Preflight(
            replicas=[self.url], state_url=self.state_url or s.state_url,
            cache_url=s.cache_url if self.staging else "memory://",
            counters_url=s.counters_url if self.staging else "memory://",
            events_url=s.events_url if self.staging else f"file://{self.lake}",
            lake=self.lake, prometheus_url=self.prometheus_url,
            alertmanager_url=self.alertmanager_url,
            deploy=self.deploy if self.staging else None)
        res = pre.run()
        probes = sum(c["evidence"].get("ready_probes", 0) for c in res["checks"])
        return Measurement(1 if res["passed"] else 0, probes, res, res,
                           note="; ".join(res["failed"]))

    def g1_lock(self) -> Measurement:
        from novarank.errors import ReleaseError
        from novarank.release import verify_release

        try:
            lock = verify_release(self.release)
            # samples: the artifacts hashed, plus the lock's own digest
            return Measurement(1, len(lock.files) + 1, {"version": lock.version},
                               {"release_lock": {"version": lock.version,
                                                 "total_artifacts": len(lock.files),
                                                 "hash_verification": "passed"}})
        except ReleaseError as exc:
            return Measurement(0, 1, {"problem": str(exc)},
                               {"release_lock": {"hash_verification": "failed",
                                                 "problem": str(exc)[:300]}},
                               note=f"lock verification failed: {str(exc)[:200]}")

    def g2_smoke(self) -> Measurement:
        out, passing, measured = {}, 0, 0
        for cohort in ("cold", "light", "medium", "heavy"):
            user = self.sim.user_in(cohort)
            if user is None:
                out[cohort] = {"success": False, "reason": "no user in this cohort"}
                continue
            measured += 1
            t0 = time.perf_counter()
            r = self.http.get(f"/v1/users/{user}/feed", params={"k": 10})
            ms = (time.perf_counter() - t0) * 1e3
            body = r.json() if r.status_code == 200 else {}
            items = [i["item_id"] for i in body.get("items", [])]
            ok = (r.status_code == 200 and len(items) == 10 and len(set(items)) == 10
                  and ms <= COHORT_LATENCY_MS)
            passing += ok
            out[f"user_{cohort}_{user_key(user)[:6]}"] = {
                "success": ok, "k_returned": len(items), "latency_ms": round(ms, 1)}
        failing = [k for k, v in out.items() if not v["success"]]
        return Measurement(passing / 4, measured, out, {"smoke_test_results": out},
                           note=f"failing: {', '.join(failing)}" if failing else "")

    def _hit_rate(self, users: list[str]) -> tuple[float | None, int]:
        """Feed hit rate over these users' first pages, and how many answered (a failed
        request is no lookup, and is not counted as one)."""
        levels = []
        for u in users:
            r = self.http.get(f"/v1/users/{u}/feed", params={"k": 10})
            if r.status_code == 200:
                levels.append(r.json()["cache"])
        hits = sum(lv in ("l1", "l2") for lv in levels)
        return (hits / len(levels) if levels else None), len(levels)

    def g3_cache(self) -> Measurement:
        # distinct users before and after: a user asked before the warm plan would be a hit
        # afterwards because of that first request, not because of the plan
        users = self.sim.release_users(200)
        half = len(users) // 2
        before, n_before = self._hit_rate(users[:half])
        manifest = self.http.post("/v1/admin/cache/warm", headers=self.admin,
                                  timeout=900).json()
        self.warmed_at_ms = int(time.time() * 1000)
        after, n_after = self._hit_rate(users[half:])
        ev = {"hit_rate_improvement": {
                  "pre_warm": None if before is None else round(before, 3),
                  "post_warm": None if after is None else round(after, 3),
                  "improvement": None if before is None or after is None
                  else round(after - before, 3)},
              "users_measured": {"before": n_before, "after": n_after},
              "cache_manifest": {k: manifest.get(k) for k in ("users", "objects", "bytes",
                                                              "seconds")}}
        note = "" if after is None else f"hit rate after the warm plan {after:.3f}"
        return Measurement(after, n_after, ev, ev, note=note)

    def traffic(self) -> dict[str, int]:
        """Simulated sessions, plus one bad request and one bad event (the error path)."""
        n = sessions(self.http, self.sim, self.sessions)
        self.http.get("/v1/users/x/feed", params={"k": 0})
        self.http.post("/v1/events", json=[{"type": "teleport", "user_id": "x", "item_id": "y"}])
        time.sleep(2.5)  # one telemetry flush interval, and then some
        return n

    def _lake_sql(self, sql: str) -> list[tuple]:
        import duckdb

        from novarank.analytics.lake import parquet_source, scan

        files = scan(self.lake, self.day).files.get("request", [])
        if not files:
            return []
        con = duckdb.connect()
        rows = con.sql(sql.replace("REQUESTS", parquet_source(files))).fetchall()
        con.close()
        return rows

    def g4_ab(self) -> Measurement:
        # users, not requests: the user is what is randomised, and a heavy user's many
        # feeds are one draw (counting requests would flag clustering as a mismatch)
        counts = dict(self._lake_sql("SELECT variant, count(DISTINCT user_key) FROM REQUESTS "
                                     "WHERE route = 'feed' GROUP BY variant"))
        multi = self._lake_sql("SELECT count(*) FROM (SELECT user_key FROM REQUESTS WHERE "
                               "route = 'feed' GROUP BY user_key "
                               "HAVING count(DISTINCT variant) > 1)")
        n_multi = int(multi[0][0]) if multi else 0
        if len(self.split) == 1:
            return self._one_arm(counts, n_multi)
        srm = sample_ratio({k: int(v) for k, v in counts.items()}, self.split)
        ev = {"bucket_distribution": counts,
              "percentages": {v: x["observed"] for v, x in srm["per_variant"].items()},
              "planned": {v: x["planned"] for v, x in srm["per_variant"].items()},
              "tolerance": {v: x["tolerance"] for v, x in srm["per_variant"].items()},
              "within_tolerance": srm["within_tolerance"], "srm_p_value": srm["p_value"],
              "users_in_two_variants": n_multi}
        # judged by the anytime-valid p-value (the spec's threshold), as the Outcomes tile and
        # the rollout are: three per-variant 3-SE bands, read together at a fixed horizon,
        # miss a fair 20/40/40 split of 630 users once in 130 runs; they say where a mismatch lies.
        ok = srm["outside_plan"] == 0 and n_multi == 0
        broken = not ok or (srm["p_value"] or 0.0) < SRM_ALPHA
        off = [f"{v} {x['observed']:.3f} vs {x['planned']:.3f} (+-{x['tolerance']})"
               for v, x in srm["per_variant"].items() if broken and not x["within"]]
        note = "; ".join(([f"SRM p={srm['p_value']:.2g}"] if srm["p_value"] is not None else [])
                         + off + ([f"{n_multi} users in two variants"] if n_multi else []))
        return Measurement(srm["p_value"] if ok else 0.0, srm["n"], ev, ev, note=note)

    def _one_arm(self, counts: dict[str, int], n_multi: int) -> Measurement:
        """A one-arm split has no ratio to test: every user must be on the one variant."""
        (only,) = self.split
        n = sum(int(v) for v in counts.values())
        elsewhere = n - int(counts.get(only, 0))
        ev = {"bucket_distribution": counts, "planned": {only: 1.0},
              "srm": "not tested: a one-arm split has no sample ratio; allocation judged only",
              "users_elsewhere": elsewhere, "users_in_two_variants": n_multi}
        ok = n > 0 and elsewhere == 0 and n_multi == 0
        note = "one-arm split: allocation judged only" + (
            "" if ok else f"; {elsewhere} users outside {only}, {n_multi} in two variants")
        return Measurement(1.0 if ok else 0.0, n, ev, ev, note=note)

    def g5_telemetry(self) -> Measurement:
        from novarank.analytics.lake import scan

        found = scan(self.lake, self.day)
        wanted = ("request", "ranking", "impression", "click", "error")
        missing = [t for t in wanted if not found.files.get(t)]
        from novarank.analytics.rollup import rollup

        self.rollup_result = rollup(self.lake, self.day, self.sim.n_items)
        integ = {r["type"]: r for r in self.rollup_result.tables["daily_integrity"]}
        orphans = integ["impression"]["orphans"] + integ["click"]["orphans"]
        ev = {"event_partitions": {t: {"count": integ.get(t, {}).get("events", 0),
                                       "partition": f"events/{t}/event_date={self.day}"}
                                   for t in wanted},
              "join_integrity": {"orphaned_events": orphans,
                                 "duplicates": sum(r["duplicates"] for r in integ.values())},
              "bad_files": found.bad}
        note = "; ".join(([f"no {', '.join(missing)} events today"] if missing else [])
                         + ([f"{orphans} orphaned impressions/clicks"] if orphans else []))
        counted = sum(integ.get(t, {}).get("events", 0) for t in wanted)
        return Measurement(1 if not missing and orphans == 0 else 0, counted,
                           {"missing_types": missing, **ev}, ev, note=note)

    def g6_rollups(self) -> Measurement:
        res = self.rollup_result
        if res is None:
            return Measurement(None, 0, {"error": "telemetry gate did not roll up"},
                               note="no rollup: the telemetry gate did not run it")
        # the grand-total rows exist even for an empty day: judge by the events behind them
        non_empty = all(res.raw_events[t] > 0 for t in ("request", "ranking", "impression"))
        ev = {"tables": {t: len(v) for t, v in res.tables.items()},
              "events": {t: res.raw_events[t] for t in ("request", "ranking", "impression")},
              "reconciliation": res.reconciliation["checks"], "sql_version": res.sql_version}
        empty = [t for t in ("request", "ranking", "impression") if not res.raw_events[t]]
        note = "; ".join(([f"empty: {', '.join(empty)}"] if empty else [])
                         + res.reconciliation["problems"][:3])
        return Measurement(1 if non_empty and res.reconciliation["ok"] else 0,
                           sum(res.raw_events.values()), ev, ev, note=note)

    def g7_tiles(self) -> Measurement:
        from novarank.analytics.cuped import experiment_lifts
        from novarank.analytics.quality import release_quality
        from novarank.analytics.rollup import window
        from novarank.analytics.tiles import health, outcomes

        # after the warm plan: the cold requests gate 3 sends on purpose are its evidence,
        # not steady-state traffic (as the baseline judges after its warm-up)
        summary = (self.rollup_result.to_dict() if self.warmed_at_ms is None else
                   window(self.lake, self.day, self.warmed_at_ms, self.sim.n_items))
        h = health(summary)
        o = outcomes(summary, self.split, release_quality(self.release, self.replaces),
                     self.recall_floor, experiment_lifts(self.lake, self.day))
        states = {h["status"], o["status"]}
        value = None if "no_data" in states else (1 if states == {"ok"} else 0)
        ev = {tile["tile"]: {m["metric"]: {"value": m["value"], "objective": m["objective"],
                                           "status": m["status"]} for m in tile["metrics"]}
              for tile in (h, o)}
        off = [f"{m['metric']} {m['shown']} ({m['status']}, objective {m['objective']})"
               if isinstance(m["value"], float) else f"{m['metric']} ({m['status']})"
               for tile in (h, o) for m in tile["metrics"] if m["status"] not in ("ok", "info")]
        # samples: the fewest any objective was judged on (each has its own minimum; a
        # row that is shown, not judged, is no objective)
        samples = min(m["samples"] for tile in (h, o) for m in tile["metrics"]
                      if m["status"] != "info")
        return Measurement(value, samples, ev, ev, note="; ".join(off))

    def g8_alerts(self) -> Measurement:
        from novarank.ops.armed import check, check_staging

        res = check(self.deploy)
        if not res["ran"]:
            return Measurement(None, 0, res, res,
                               note=f"not run: missing {', '.join(res['missing_tools'])}")
        failing = [k for k, v in res.items() if v is False and k != "ok"]
        failing += [f"route {k}" for k, v in res["routes_pass"].items() if not v]
        ok, checks = res["ok"], res["checks"]
        details: dict[str, Any] = {"repository": res}
        if self.staging:
            if not (self.prometheus_url and self.alertmanager_url):
                return Measurement(None, checks, details, details, note="staging not "
                                   "checked: give --prometheus-url and --alertmanager-url")
            st = details["staging"] = check_staging(self.prometheus_url,
                                                     self.alertmanager_url, self.deploy)
            ok, checks = ok and st["ok"], checks + st["checks"]
            failing += [f"staging rules {k}: {', '.join(st[k])}"
                        for k in ("rules_missing", "rules_unexpected", "rules_differ")
                        if st.get(k)]
            failing += [f"staging {k}: {st[k]}" for k in ("rules_error", "dryrun_error")
                        if st.get(k)]
            if st.get("dryrun_receivers") not in (None, ["webhook-dryrun"]):
                failing.append(f"staging routed the dry-run alert to {st['dryrun_receivers']}")
        return Measurement(1 if ok else 0, checks, details, details,
                           note=f"failing: {'; '.join(failing)}" if failing else "")

    def g9_drills(self) -> Measurement:
        from novarank.launch import drills

        kill = drills.kill_switch(self.http, self.admin, self.sim.release_users(50))
        rollback = drills.rollback(self.url, self.sim.release_users(300), self.release,
                                   self.canary, self.state_url, self.lake, self.fault,
                                   headers=self.keyed)
        ev = {"kill_switch": kill, "automatic_rollback": rollback}
        note = "; ".join(
            ([] if kill["passed"] else [f"kill switch: {kill}"])
            + ([f"rollback drill not run: {rollback['skipped']}"] if "skipped" in rollback
               else [] if rollback["passed"] else [
                   f"rollback drill: {rollback['status']}, {rollback['failed_outside_canary']} "
                   f"failures outside the canary, detected in {rollback['time_to_detect_s']} s, "
                   f"restored in {rollback['time_to_rollback_s']} s, top-K fill after "
                   f"{rollback['topk_fill_after_rollback']}"]))
        # samples: the drills' requests (the kill switch's feeds and the rollout's traffic)
        n = kill.get("requests", 0) + rollback.get("requests", 0)
        if not kill["passed"] or rollback.get("passed") is False:
            return Measurement(0, n, ev, ev, note=note)
        # both drills are required: a rollback drill that could not run is no pass
        return Measurement(1 if rollback.get("passed") else None, n, ev, ev, note=note)

    def g10_oncall(self) -> Measurement:
        from novarank.ops import ownership
        from novarank.ops.oncall import check

        start = datetime.now(UTC)
        end = start + timedelta(days=self.launch_window_days)
        problems = check(self.deploy / "oncall.yaml", start, end)
        # the owners behind the rotation: reachable, every severity routed
        problems += [f"ownership: {p}" for p in ownership.check(self.deploy)]
        ev = {"window": [start.isoformat(timespec="minutes"), end.isoformat(timespec="minutes")],
              "problems": problems}
        # samples: the hours of the window checked for a primary and every escalation level
        hours = int((end - start).total_seconds() // 3600)
        return Measurement(1 if not problems else 0, hours, ev, ev,
                           note="; ".join(problems)[:300])

    def g11_parity(self) -> Measurement:
        from novarank.launch.replay import parity

        res = parity(str(self.lake), str(self.release), self.day, 10)
        drift = {s: d for s, d in res.signal_drift.items() if d > 1e-3}
        note = "" if res.exact >= SPEC[11].threshold else (
            f"{res.exact:.2%} of {res.pages} pages reproduced; drifting: "
            + (", ".join(f"{s} {d:.3f}" for s, d in drift.items()) or "no signal"))
        return Measurement(res.exact, res.pages, res.to_dict(), res.to_dict(), note=note)

    def g12_estimate(self) -> Measurement:
        from novarank.launch.offpolicy import pre_traffic

        if self.explored is None:
            return Measurement(None, 0, note="no explored logs of the replaced release: give "
                               "--explored LAKE (its lake, served with exploration on)")
        rule = PreTraffic()
        res = pre_traffic(str(self.explored), str(self.release), self.explored_day or self.day,
                          10, rule)
        change, now = res["change"][rule.estimator], res["current"][rule.estimator]
        lower = change["ci95"][0] / now["ctr"] if now["ctr"] > 0 else None
        inconclusive = res["verdict"] == "INCONCLUSIVE"
        return Measurement(None if inconclusive else lower, int(change["effective_requests"]),
                           res, {k: res[k] for k in ("pages", "current", "change", "verdict",
                                                     "reason")},
                           note="" if res["verdict"] == "GREEN" else res["reason"])

    # ---- the run -----------------------------------------------------------------------------
    def run(self, code_version: str, release_version: str) -> tuple[list[GateResult], dict]:
        steps = {0: self.g0_preflight, 1: self.g1_lock, 2: self.g2_smoke, 3: self.g3_cache}
        results = [run_gate(SPEC[n], fn, code_version=code_version,
                            release=release_version) for n, fn in steps.items()]
        traffic = self.traffic()
        for n, fn in ((4, self.g4_ab), (5, self.g5_telemetry), (6, self.g6_rollups),
                      (7, self.g7_tiles), (8, self.g8_alerts), (9, self.g9_drills),
                      (10, self.g10_oncall), (11, self.g11_parity),
                      (12, self.g12_estimate)):
            results.append(run_gate(SPEC[n], fn, code_version=code_version,
                                    release=release_version))
            if n == 7 and self.pack is not None:
                # the page and the metrics over the traffic the tiles judged: taken before
                # the drills, whose injected faults are judged by gate 9, not by the tiles
                self.artifacts = snapshot(self.url, self.pack)
        return results, traffic


def sessions(http: httpx.Client, sim: Simulator, n: int) -> dict[str, int]:
    """`n` simulated sessions: a first page, then the user's impressions and clicks."""
    done = {"sessions": 0, "events": 0}
    for _ in range(n):
        user = sim.pick_user()
        feed = http.get(f"/v1/users/{user.user_id}/feed", params={"k": 10}).json()
        events = sim.react(user, [i["item_id"] for i in feed["items"]], feed["request_id"])
        http.post("/v1/events", json=events)
        done["sessions"] += 1
        done["events"] += len(events)
    return done


def post_events(http: httpx.Client, rows: list[dict], batch: int = 1000) -> int:
    """POST `rows` to /v1/events in batches; a batch refused for the key's budget (429: none
    of it was taken) is sent again after Retry-After. Returns the batches refused."""
    refused = 0
    for start in range(0, len(rows), batch):
        while True:
            r = http.post("/v1/events", json=rows[start:start + batch])
            if r.status_code != 429:
                r.raise_for_status()
                break
            refused += 1
            time.sleep(float(r.headers.get("retry-after", "1")))
    return refused


def snapshot(url: str, out: Path) -> dict[str, str]:
    """While the service still runs: its novarank_* metrics, the numbers behind /dashboard
    and its screenshot, all at one moment (after gate 7, before the drills)."""
    done = {}
    out.mkdir(parents=True, exist_ok=True)
    try:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        keep = [ln for ln in text.splitlines() if ln.startswith("novarank_")
                and "_bucket{" not in ln]
        (out / "metrics.txt").write_text("\n".join(keep) + "\n")
        done["metrics.txt"] = f"{len(keep)} series of {url}/metrics"
    except httpx.HTTPError as exc:
        done["metrics.txt"] = f"not written: {exc}"
    try:
        data = httpx.get(f"{url}/dashboard/data", timeout=10).json()
        (out / "dashboard.json").write_text(json.dumps(data, indent=2))
        done["dashboard.json"] = "the numbers behind the screenshot, taken after gate 7"
    except (httpx.HTTPError, ValueError) as exc:
        done["dashboard.json"] = f"not written: {exc}"
    from novarank.ops.browser import screenshot

    try:
        screenshot(f"{url}/dashboard", out / "dashboard.png")
        done["dashboard.png"] = (f"{url}/dashboard in headless Chromium after gate 7, over "
                                 "the traffic the tiles judged (before the drills)")
    except (FileNotFoundError, OSError) as exc:
        done["dashboard.png"] = f"not taken: {exc}"
    return done


def write_logs(out: Path, sources: list[Path], per: int = 3) -> str:
    """logs.txt: the last `per` JSON log lines of each subsystem, from every source."""
    from novarank.logs import by_subsystem

    lines = [ln for src in sources if src.exists() for ln in src.read_text().splitlines()]
    picked = by_subsystem(lines, per)
    text = "".join(f"## {name}\n" + "\n".join(found) + "\n\n" for name, found in picked.items())
    (out / "logs.txt").write_text(text)
    return f"{len(picked)} subsystems, up to {per} lines each"


def snippet(evidence: dict[str, Any], max_lines: int = SNIPPET_LINES) -> str:
    """Valid JSON in at most `max_lines` lines: indented when it fits, else one line per
    top-level key; keys past the limit are counted, not shown (gates.json has them all)."""
    text = json.dumps(evidence, indent=2, default=str)
    if text.count("\n") < max_lines:
        return text + "\n"
    keys = list(evidence)
    shown = keys if len(keys) <= max_lines - 2 else keys[:max_lines - 3]
    rows = [f"  {json.dumps(k)}: {json.dumps(evidence[k], default=str)}" for k in shown]
    if len(shown) < len(keys):
        rows.append(f'  "more": "{len(keys) - len(shown)} keys in gates.json"')
    return "{\n" + ",\n".join(rows) + "\n}\n"


def write_pack(out: Path, results: list[GateResult], decision: dict, meta: dict) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "snippets").mkdir(exist_ok=True)
    payload = {"meta": meta, "decision": decision, "gates": [r.to_dict() for r in results]}
    (out / "gates.json").write_text(json.dumps(payload, indent=2, default=str))
    for r in results:
        (out / "snippets" / f"gate-{r.number:02d}.json").write_text(
            snippet({"gate": r.number, "verdict": r.verdict.value, **(
                r.evidence if isinstance(r.evidence, dict) else {"evidence": r.evidence})}))
    lines = ["# Go/no-go record", "", f"Decision: **{decision['decision']}**", "",
             f"- release {meta['release']}, code {meta['code_version']}, run at "
             f"{meta['finished_at']} against {meta['url']}",
             f"- traffic: {meta['traffic']}", "",
             "| # | gate | verdict | measured | objective | samples | window | how |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        v = "—" if r.value is None else f"{r.value:.4g}"
        lines.append(f"| {r.number} | {r.name} | **{r.verdict.value}**"
                     f"{' (waived: ' + r.waiver + ')' if r.waiver else ''} | {v} | "
                     f"{r.objective} | {r.samples} (min {r.min_samples}) | {r.window} | "
                     f"{r.how} |")
    lines.append(f"| — | Go/no-go decision | **{decision['decision']}** | "
                 f"{len(decision['blocking'])} blocking | all GREEN or waived YELLOW | — | — | "
                 f"gates 0-{results[-1].number if results else 0} |")
    if decision["blocking"]:
        lines += ["", "## Blocking", ""]
        lines += [f"- gate {b['gate']} ({b['name']}, {b['verdict']}): {b['why']}"
                  for b in decision["blocking"]]
    lines += ["", "Evidence: `gates.json` (every measurement and its details) and "
              "`snippets/gate-NN.json` (redacted: users appear only as hashed keys)"
              + "".join(f"; `{name}` ({what})" for name, what in
                        meta.get("artifacts", {}).items()) + ".", "",
              "## Sign-off", "", "| approver | role | signed at |", "|---|---|---|",
              *(f"| | {role} | |" for role in ROLES)]
    path = out / "GO_NO_GO.md"
    path.write_text("\n".join(lines) + "\n")
    return path

