"""Render bench/results/*.json as docs/benchmarks.md (the numbers are never typed by hand)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _load(name: str) -> dict | None:
    p = RESULTS / f"{name}.json"
    return json.loads(p.read_text()) if p.exists() else None


def quality(r: dict) -> list[str]:
    out = [f"## Offline quality — MovieLens-100K ({r['measured_at']})", "",
           f"`python bench/bench_quality.py` · {r['split']}, all ratings as implicit "
           f"interactions, full ranking over unseen items, k={r['k']}. Weights tuned on a "
           f"validation split carved from training data only "
           f"(validation NDCG@10 {r['tuning']['ndcg_before']} → {r['tuning']['ndcg_after']}; "
           f"chosen history half-life {r['tuning'].get('history_half_life')}, ALS share "
           f"{r['tuning']['als_mix']}, weights {r['tuning']['weights']}).",
           "", "| method | cohort | users | Recall@10 | NDCG@10 | HitRate@10 | MRR@10 | coverage |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for row in r["rows"]:
        out.append(f"| {row['method']} | {row['cohort']} | {row['users']} | {row['recall']:.4f} | "
                   f"{row['ndcg']:.4f} | {row['hit_rate']:.4f} | {row['mrr']:.4f} | "
                   f"{row['coverage']:.4f} |")
    p = r["pass"]
    out += ["", f"Targets: Recall@10 ≥ {r['targets']['recall']} → **{_ok(p['recall'])}**, "
            f"NDCG@10 ≥ {r['targets']['ndcg']} → **{_ok(p['ndcg'])}**, beats ALS alone → "
            f"**{_ok(p['beats_baselines']['als'])}**, beats item-item → "
            f"**{_ok(p['beats_baselines']['item_item'])}**.", ""]
    return out


def train(r: dict) -> list[str]:
    out = [f"## Training time and memory ({r['measured_at']})", "",
           "`python bench/bench_train.py` · one `fit_model` (item-item, ALS, popularity, "
           "trending, quality, facets, histories) per data set, each in its own process; "
           "generation/loading is timed separately.", "",
           "| data | users | items | events | load/generate s | fit s | peak RSS MB | target "
           "| result |",
           "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for name in ("ml-100k", "synthetic-10m"):
        d = r[name]
        tgt = r["targets"][name]
        tgt_s = f"fit ≤ {tgt['fit_s_max']} s" + (f", RSS ≤ {tgt['peak_rss_mb_max']} MB"
                                                 if "peak_rss_mb_max" in tgt else "")
        out.append(f"| {name} | {d['users']:,} | {d['items']:,} | {d['events']:,} | "
                   f"{d['load_or_generate_s']} | {d['fit_s']} | {d['peak_rss_mb']:,} | {tgt_s} | "
                   f"**{_ok(r['pass'][name])}** |")
    stages = r["synthetic-10m"]["stages_s"]
    out += ["", "Stages of the 10M fit (s): " + ", ".join(f"{k} {v}" for k, v in stages.items()),
            ""]
    if "synthetic-10m-pipeline" in r:
        p = r["synthetic-10m-pipeline"]
        out += [f"The whole `novarank train` job on the same 10M events (tune on validation, "
                f"evaluate on test, final fit, write and lock): **{p['total_s']} s**, peak RSS "
                f"{p['peak_rss_mb']:,} MB; stages (s): "
                + ", ".join(f"{k} {v}" for k, v in p["stages_s"].items()) + ".", ""]
    return out


def spark(r: dict) -> list[str]:
    out = ['<a id="spark"></a>', "",
           f"## Spark local[2] vs the local engine ({r['measured_at']})", "",
           "`python bench/bench_spark.py` · synthetic interactions (50 events per user), each "
           "(engine, size) in its own process. *fit* is one fit of every release artifact "
           "on all events; *peak* is the whole process tree (Python driver plus, for "
           "Spark, its JVM); Recall/NDCG@10 of a fit on the per-user temporal split's "
           "training part (2,000 sampled users; a size run for its time alone has none). "
           "Spark's session start is timed apart.", "",
           "| engine | events | users | items | fit s | events / core / s | peak MB | "
           "Recall@10 | NDCG@10 | stages (s) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for engine, rows in r["runs"].items():
        for d in rows:
            if "fit_s" not in d:
                out.append(f"| {engine} | {d['events']:,} | failed: "
                           f"{d['failed'].splitlines()[-1][:80] if d['failed'] else '?'} "
                           "| | | | | | | |")
                continue
            stages = ", ".join(f"{k} {v}" for k, v in d["stages_s"].items())
            quality = (f"{d['recall']:.4f} | {d['ndcg']:.4f}" if "recall" in d
                       else "— | —")
            out.append(f"| {engine} | {d['events']:,} | {d['users']:,} | {d['items']:,} | "
                       f"{d['fit_s']} | {d['events_per_core_s']:,} | "
                       f"{d['peak_tree_rss_mb']:,} | {quality} | {stages} |")
    slopes = ", ".join(f"{e} {b}" for e, b in r["slope"].items() if b is not None)
    out += ["", f"Growth: fit time ∝ events^b with b = {slopes} (between the two largest "
            "sizes run). "
            "On one 2-core machine Spark is slower than the local engine: it pays for a "
            "JVM, serialisation and a shuffle the single process does not need. What it "
            "buys is that the cost spreads over executors.",
            "", "Quality parity (Spark's Recall@10 no more than "
            f"{r['targets']['recall_tolerance']} below the local engine's): "
            + ", ".join(f"{int(k):,} events **{_ok(v)}**" for k, v in r["pass"].items()) + ".",
            ""]
    proj = r.get("projection")
    if proj:
        out += ["Projection to a cluster (hours for one fit; "
                f"assumptions: {proj['assumptions']}):", "",
                "| events | executor cores | hours |", "|---:|---:|---:|"]
        out += [f"| {row['events']:,.0f} | {row['cores']:,} | {row['hours']} |"
                for row in proj["rows"]]
        out.append("")
    return out


def latency(r: dict) -> list[str]:
    t, b = r["top10_ms"], r["brute_force_scan_ms"]
    h = r.get("l1_hit_ms")
    return [f"## First page of 10 at {r['catalog_items']:,} items ({r['measured_at']})", "",
            "`python bench/bench_latency.py` · in-process, through the feed path HTTP serves "
            "(`open_local` → `FeedPath.feed`, online/feeds.py), one thread, all five signals, "
            f"{r['users_timed']:,} users ({r['cold_users_timed']} of them cold) after 50 "
            "warm-up calls. A miss reads the user's live history from the state store, ranks "
            f"a window of {r.get('feed_window', 200)}, caches it and renders the page; "
            "candidates from item-item neighbours, "
            f"{r['index']} over ALS factors, trending and fresh lists.", "",
            "| miss p50 ms | p95 ms | p99 ms | max ms | L1 hit p50 / p99 ms | "
            "candidates/user p50 | fill rate | brute-force scan p50 ms | target | result |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
            f"| {t['p50']} | {t['p95']} | {t['p99']} | {t['max']} | "
            + (f"{h['p50']} / {h['p99']}" if h else "—") + " | "
            f"{r['candidates_per_user']['p50']:.0f} | {r['fill_rate']:.3f} | {b['p50']} | "
            f"miss p99 ≤ {r['targets']['top10_p99_ms_max']} ms | **{_ok(r['pass'])}** |", ""]


def _spread(x: dict, unit: str = "") -> str:
    return f"{x['median']:,}{unit} (runs {x['min']:,}-{x['max']:,}, n={x['runs']})"


def serving(r: dict) -> list[str]:
    h, z, m, w = r["l1_hit"], r["cache_pressure"], r["full_miss_1m"], r["two_workers_redis"]
    o = h["open_loop_1000rps"]
    late = sum(f["late_sends"] for f in o["feed_runs"])
    sent = sum(f["sent"] for f in o["feed_runs"])
    p = r["pass"]
    return [
        f"## Serving over HTTP ({r['measured_at']})", "",
        f"`python bench/bench_serving.py` · `novarank serve` ({r['layout']}); open-loop load "
        "generator (`novarank.launch.loadgen`): requests leave on a fixed schedule and latency "
        "is timed from the intended send time; capacity is a closed loop of 32 connections. "
        "The ceiling is `/bench/users/{id}/echo` of the same app: the feed's path shape, its "
        "hand-parsed parameters and routing lookup, and a body of the same size "
        f"({h['response_bytes']} vs {h['echo_bytes']} bytes), without cache or ranking. Feed "
        "and ceiling alternate in one run, same pinning; medians with the range of the runs.",
        "",
        "| scenario | measured | same-run reference | target | result |",
        "|---|---|---|---|---|",
        f"| feed, L1 hit: capacity | {_spread(h['feed_capacity_rps'], ' req/s')} | ceiling "
        f"{_spread(h['ceiling_capacity_rps'], ' req/s')}; ratio "
        f"{_spread(h['throughput_ratio'])} | ratio ≥ 0.70 | "
        f"**{_ok(p['l1_throughput_ratio'])}** |",
        f"| feed, L1 hit at 1,000 req/s | p50 {_spread(o['feed_p50_ms'], ' ms')}, p99 "
        f"{_spread(o['feed_p99_ms'], ' ms')}, late sends {late}/{sent} | ceiling p50 "
        f"{_spread(o['ceiling_p50_ms'], ' ms')}, p99 {_spread(o['ceiling_p99_ms'], ' ms')} | "
        f"p99 ≤ 10 ms | **{_ok(p['l1_p99_at_1000rps'])}** |",
        f"| feed, full miss at {m['catalog_items']:,} items, 200 req/s | p50 "
        f"{m['load']['p50_ms']} ms, p95 {m['load']['p95_ms']} ms, p99 {m['load']['p99_ms']} ms "
        f"| every request a distinct known user | p95 ≤ 30 ms | "
        f"**{_ok(p['miss_1m_p95_at_200rps'])}** |",
        f"| hit rate under pressure: L1 {z['l1_max_bytes'] / 1e6:.0f} MB (a third of the "
        f"{z['warm_plan_bytes'] / 1e6:.0f} MB warm plan), feed TTL {z['feed_ttl_s']:g} s, "
        f"{z['replay_s']:g} s Zipf replay (s={z['zipf_exponent']}), "
        f"{z['likes_during_replay']:,} likes invalidating feeds meanwhile | release users "
        f"{z['hit_rate_release_users']}; newcomers ({z['newcomer_share']:.0%} of requests) "
        f"{z['hit_rate_newcomers']}; {z['l1_evictions']:,} L1 evictions; by level "
        f"{z['by_user_and_level']} | {z['requests']:,} requests at "
        f"{z['load']['rate']:g}/s | release users ≥ 95% | "
        f"**{_ok(p['hit_rate_under_pressure'])}** |",
        f"| two workers sharing Redis | by level {w['by_cache_level']} (an L2 hit is the "
        f"other worker's fill); p50 {w['load']['p50_ms']} ms | kill switch on all workers in "
        f"{w['toggle_effect_on_all_workers_s']} s ({w['toggle_effect_rule']}) | L2 hit seen; "
        f"toggle ≤ 2 s | **{_ok(p['l2_hit_seen'] and p['toggle_within_2s'])}** |", ""]


def telemetry(r: dict) -> list[str]:
    e, t, w, ro = r["emitter"], r["throughput"], r["lake_writer"], r["rollup"]
    p = r["pass"]
    return [
        f"## Telemetry and rollups ({r['measured_at']})", "",
        "`python bench/bench_telemetry.py` · emitter timed in-process over "
        f"{e['requests']:,} feed requests (one Answered each: its request and ranking "
        "events, telemetry/answered.py); throughput is the "
        f"feed L1-hit capacity of `novarank serve` ({t.get('client', 'aiohttp closed loop')}, "
        "server on core 1, load on core 0) with `events_url=null://`, `file://` (the serving "
        "process writes the lake) and a Redis stream (`novarank ingest` writes it elsewhere), "
        "alternated, medians compared; the lake writer runs pinned to one core; the "
        "rollup reads one synthetic day written as Parquet parts.", "",
        "| what | measured | target | result |", "|---|---|---|---|",
        f"| emitter cost per request | median {e['median_us']} µs, p99 {e['p99_us']} µs | "
        f"≤ 50 µs | **{_ok(p['emitter'])}** |",
        f"| throughput with telemetry on / off | {t['median_rps']['telemetry_on']:,} / "
        f"{t['median_rps']['telemetry_off']:,} req/s = {t['ratio']} (runs: {t['runs_rps']}) | "
        f"≥ 0.90 | **{_ok(p['throughput'])}** |",
        *([f"| throughput with the Redis stream sink / off | "
           f"{t['median_rps']['redis_stream']:,} / {t['median_rps']['telemetry_off']:,} req/s"
           f" = {t['stream_ratio']} | — | measured |"] if "stream_ratio" in t else []),
        f"| lake writer, one core | {w['events_per_s']:,} events/s ({w['events']:,} events in "
        f"{w['seconds']} s) | ≥ 200,000/s | **{_ok(p['lake_writer'])}** |",
        *([f"| answered requests into the lake, one core (two events each) | built as "
           f"columns {a['per_s']['columns']:,}/s (runs {a['spread']['columns'][0]:,} to "
           f"{a['spread']['columns'][1]:,}), as dict rows {a['per_s']['rows']:,}/s (runs "
           f"{a['spread']['rows'][0]:,} to {a['spread']['rows'][1]:,}): {a['speedup']}x | "
           "— | measured |"] if (a := r.get("answered_writer")) else []),
        f"| rollup of one day, 2 threads | {ro['events']:,} events in {ro['seconds']} s, "
        f"reconciled: {ro['reconciled']}, orphans: {ro['orphans']} | ≤ 30 s | "
        f"**{_ok(p['rollup'])}** |", ""]


def loadgen(r: dict) -> list[str]:
    out = [f"## Load generator ({r['measured_at']})", "",
           "`python bench/bench_loadgen.py` · the open-loop generator pinned to core 0 drives "
           "`/healthz` of `novarank serve` pinned to core 1 for 10 s per rate; a send is late "
           "when it starts more than 1 ms after its intended time.", "",
           "| scheduled rate | achieved | late sends | p50 ms | p99 ms | errors |",
           "|---:|---:|---:|---:|---:|---:|"]
    for rate, v in r["runs"].items():
        out.append(f"| {int(rate):,}/s | {v['achieved_rps']:,}/s | {v['late_sends']} "
                   f"({v['late_ratio']:.2%}) | {v['p50_ms']} | {v['p99_ms']} | {v['errors']} |")
    out += ["", f"Target: 3,000 req/s with < 1% late sends → **{_ok(r['pass'])}**.", ""]
    return out


def rollout(r: dict) -> list[str]:
    out = [f"## Automatic rollback drill ({r['measured_at']})", "",
           "`python bench/bench_rollout.py` · `novarank serve` with release v1; each drill "
           f"rolls out v2 to {r['canary_share']:.0%} of users with an injected fault (or, "
           "for `broken`, a copy of v2 whose item factors have the wrong shape: it verifies "
           "and loads, then raises on requests) while a client drives feeds; the controller "
           f"ticks every 0.5 s (policy `{r['policy']}`). Detect = decision - the canary's "
           "first answer; roll back = the canary's last answer - decision.", "",
           "| fault | outcome | requests | canary share | failed on canary | failed outside "
           "| detect s | roll back s | top-K fill after |", "|---|---|---:|---:|---:|---:|---:|"
           "---:|---:|"]
    for d in r["drills"]:
        out.append(f"| {d['fault']} | {d['status']} | {d['requests']:,} | "
                   f"{d['canary_share_observed']:.3f} | {d['failed_on_canary']} | "
                   f"{d['failed_outside_canary']} | {d['time_to_detect_s']} | "
                   f"{d['time_to_rollback_s']} | {d['topk_fill_after_rollback']} |")
    out += ["", f"Medians: detect {r['median_time_to_detect_s']} s, roll back "
            f"{r['median_time_to_rollback_s']} s. Targets: detect ≤ 60 s, roll back ≤ 5 s, no "
            f"failure outside the canary, full top-K after → **{_ok(r['pass'])}**.", ""]
    return out


def abuse(r: dict) -> list[str]:
    b = r["budgets_per_s"]
    out = [f"## One abusive key against everyone else ({r['measured_at']})", "",
           "`python bench/bench_abuse.py` · `novarank serve` (auth on, one worker, core 1); a "
           f"frontend key's cached feeds at {r['victim_rate_rps']:,} req/s (open loop, core "
           "0) while another key floods upserts (500 items) or misses (known users outside "
           "the hot set, each a real ranking) from 4 processes on core 0 at the lowest CPU "
           "priority (they stand for other machines), with that key's default budgets on "
           f"(catalog {b['catalog']:g}/s, misses {b['miss']:g}/s) and off; phases alternate, "
           f"{r['rounds']} rounds of {r['seconds_per_phase']} s; medians with the range.", "",
           "| phase | victim p99 | victim p50 | victim errors | attack rate | attacker "
           "answers | result |", "|---|---|---|---:|---|---|---|"]
    for name, p in r["phases"].items():
        verdict = _ok(r["pass"][name]) if name in r["pass"] else "reference"
        out.append(f"| {name.replace('_', ' ')} | {_spread(p['victim_p99_ms'], ' ms')} | "
                   f"{p['victim_p50_ms']['median']} ms | {p['victim_errors']} | "
                   f"{p['attacker_rps']['median']:.0f} req/s | {p['attacker_answers']} | "
                   f"{verdict} |")
    out += ["", f"Target: victim p99 ≤ {r['targets']['victim_p99_ms_max']} ms under a "
            "budgeted flood. An upsert or event batch from a key out of budget is refused "
            "before routing and before its body is read (api/refuse.py), so a budgeted flood "
            "runs faster yet costs the replica little; a miss is refused after the L1 lookup "
            "that tells it is one. Without budgets the same flood doubles or triples the "
            "victim's p99.", ""]
    return out


def trending_cap(r: dict) -> list[str]:
    t = r["takeover"]
    out = [f"## The bound on live trending ({r['measured_at']})", "",
           "`python bench/bench_trending_cap.py` · without the bound = no cap on the trending "
           "standard score and every event counted in full; with it = the cap at 3 and one "
           "share's weight per user, item and hour. Takeover: one `share` of an obscure item "
           "on a release trained 60 days ago with trending weighted like freshness.", "",
           "| | without the bound | with it |", "|---|---|---|",
           f"| takeover: users (of {t['bounded']['users']}) with it as the top item | "
           f"{t['unbounded']['top_item_for_users']} | {t['bounded']['top_item_for_users']} |",
           f"| takeover: largest trending contribution | "
           f"{t['unbounded']['max_trending_contribution']:.1f} | "
           f"{t['bounded']['max_trending_contribution']:.1f} |"]
    for data, v in r["quality"].items():
        out.append(f"| {data}: Recall@10 (popularity {v['bounded']['recall_popularity']}) | "
                   f"{v['unbounded']['recall_ranker']} | {v['bounded']['recall_ranker']} |")
        out.append(f"| {data}: lift over popularity, mean (95% CI) | "
                   f"{v['unbounded']['lift_mean']} ({v['unbounded']['lift_ci95']}) | "
                   f"{v['bounded']['lift_mean']} ({v['bounded']['lift_ci95']}) |")
    return [*out, "", f"Takeover bounded (≤ a quarter of the users) and lift still positive → "
            f"**{_ok(all(r['pass'].values()))}**.", ""]


def serving_summary(r: dict, fl: dict | None) -> list[str]:
    h, z, m = r["l1_hit"], r["cache_pressure"], r["full_miss_1m"]
    o = h["open_loop_1000rps"]
    capacity = (
        f"| HTTP feed, L1 hit, one core: capacity vs a bare ASGI app on the same server "
        f"(same body size) | {fl['capacity_rps']['feed']['median']:,.0f} vs "
        f"{fl['capacity_rps']['bare']['median']:,.0f} req/s (ratio "
        f"{_spread(fl['feed_vs_bare'])}) | ≥ {fl['targets']['capacity_ratio_min']} |"
        if fl else
        f"| HTTP feed, L1 hit: capacity vs the same path without cache or ranking | "
        f"{h['feed_capacity_rps']['median']:,} vs {h['ceiling_capacity_rps']['median']:,} "
        f"req/s (ratio {_spread(h['throughput_ratio'])}) | ≥ 0.70 |")
    return [
        capacity,
        f"| HTTP feed, L1 hit, open loop at 1,000 req/s | p99 "
        f"{_spread(o['feed_p99_ms'], ' ms')} | ≤ 10 ms |",
        f"| HTTP feed, full miss, {m['catalog_items']:,} items, 200 req/s | p95 "
        f"{m['load']['p95_ms']} ms | ≤ {r['targets']['miss_1m_p95_ms_at_200rps_max']} ms |",
        f"| cache hit rate under pressure (L1 a third of the warm plan, 3 TTLs, likes "
        f"invalidating): release users / newcomers | {z['hit_rate_release_users']} / "
        f"{z['hit_rate_newcomers']} | ≥ 0.95 (release users) |"]


def summary(q: dict, t: dict, lat: dict) -> list[str]:
    """The README's headline table (between its bench markers)."""
    def row(method: str) -> dict:
        return next(r for r in q["rows"] if r["method"] == method and r["cohort"] == "all")

    out = ["| what | measured | target |", "|---|---|---|"]
    for method, name in (("ranker", "full ranker"), ("item_item", "item-item alone"),
                         ("als", "ALS alone"), ("popularity", "popularity")):
        r = row(method)
        target = ("Recall ≥ 0.135, NDCG ≥ 0.215, beats ALS and item-item"
                  if method == "ranker" else "baseline")
        out.append(f"| MovieLens-100K, {name}: Recall@10 / NDCG@10 | {r['recall']:.4f} / "
                   f"{r['ndcg']:.4f} | {target} |")
    s, p = t["synthetic-10m"], t.get("synthetic-10m-pipeline")
    out.append(f"| fit on 10M synthetic events (200k users, 100k items) | {s['fit_s']} s, "
               f"peak RSS {s['peak_rss_mb']:,.0f} MB | ≤ 180 s, ≤ 4 GB |")
    if p:
        out.append(f"| whole `novarank train` on those 10M (tune + evaluate + fit + lock) | "
                   f"{p['total_s']} s | — |")
    out.append(f"| fit on MovieLens-100K | {t['ml-100k']['fit_s']} s | ≤ 10 s |")
    ms = lat["top10_ms"]
    out.append(f"| one user's first page of 10 (a miss: rank, cache, render), all five "
               f"signals, {lat['catalog_items']:,} items, in-process through the served feed "
               f"path, {lat['users_timed']:,} users | p50 {ms['p50']} ms, p99 {ms['p99']} ms "
               f"(brute-force ALS scan alone: p50 {lat['brute_force_scan_ms']['p50']} ms) "
               f"| p99 ≤ 5 ms |")
    return out


def update_readme(lines: list[str]) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench:start -->\n", "\n<!-- bench:end -->"
    if start not in text or end not in text:
        return
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(head + start + "\n".join(lines) + end + tail)


def outage(r: dict) -> list[str]:
    t, sp = r["targets"], r["spread"]
    out = [f"## A Redis outage under load ({r['measured_at']})", "",
           "`python bench/bench_outage.py` · two replicas of `novarank serve` (core 1) on a "
           "Redis of the benchmark's own (L2, counters, invalidations, the telemetry stream; "
           "append-only, fsync always); feeds at "
           f"{r['rate_rps']} req/s to replica A and {r['likes_per_s']} likes/s (each retried "
           "on 503 until acknowledged) from core 0 while `novarank ingest` drains the "
           f"stream; Redis SIGKILLed at {r['redis_down_at_s']:g} s for "
           f"{r['redis_down_for_s']:g} s, then started again on its port; "
           f"{len(r['runs'])} runs.", "",
           "| run | feeds answered | 5xx | p99 during outage | max | L2 back | invalidation "
           "back | likes acknowledged / in lake (raw, distinct) | feeds without their request "
           "event |", "|---|---:|---:|---|---|---|---|---|---:|"]
    for n, run in enumerate(r["runs"], 1):
        f, rec, lk = run["feeds"], run["recovery"], run["likes"]
        out.append(f"| {n} | {f['answered']:,} of {f['sent']:,} | {f['errors_5xx']} | "
                   f"{f['p99_ms_during_outage']} ms | {f['max_ms']} ms | {rec['l2_s']} s | "
                   f"{rec['invalidation_s']} s | {lk['acknowledged']} / {lk['in_lake_raw']}, "
                   f"{lk['in_lake_distinct']} | "
                   f"{run['telemetry']['request_events_missing']} |")
    worst = max(r["runs"], key=lambda x: x["feeds"]["p99_ms_during_outage"])
    by_sec = ", ".join(f"{s['second']}{'*' if s['redis'] == 'down' else ''}: {s['p99_ms']}"
                       for s in worst["by_second"])
    out += ["", f"p99 during the outage {_spread(sp['p99_ms_during_outage'], ' ms')}; "
            f"invalidation back {_spread(sp['invalidation_recovery_s'], ' s')}. "
            f"p99 by second (ms) of the slowest run, * = Redis down: {by_sec}.", "",
            f"Targets: feed error rate ≤ {t['error_rate_max']:.1%}, p99 ≤ {t['p99_ms_max']:g} "
            f"ms during the outage, invalidation back ≤ {t['invalidation_recovery_s_max']:g} "
            "s, every acknowledged like in the lake exactly once, every answered feed's "
            "request event in the lake → " + ", ".join(
                f"{k.replace('_', ' ')} **{_ok(v)}**" for k, v in r["pass"].items()) + ".", ""]
    return out


def soak(r: dict) -> list[str]:
    s = r["samples"]
    marks = [x for i, x in enumerate(s) if i % max(1, len(s) // 10) == 0 or i == len(s) - 1]
    out = [f"## Memory at constant load ({r['measured_at']})", "",
           f"`python bench/bench_soak.py --minutes {r['minutes']:g}` · `novarank serve` "
           f"(embedded default, L1 bounded to {r['l1_max_mb']:g} MB) fed "
           f"{r['feed_rate_rps']} feeds/s (10% newcomers never seen before) and "
           f"{r['likes_per_s']} likes/s plus an upsert a second for {r['minutes']:g} min; "
           "RSS from /metrics every 10 s.", "",
           "| minute | RSS | L1 bytes |", "|---:|---|---|"]
    out += [f"| {x['t_s'] / 60:.1f} | {x['rss_mb']} MB | {x['l1_mb']} MB |" for x in marks]
    f = r["feeds"]
    out += ["", f"Feeds: {f['completed']:,} answered, {f['errors']} errors, p99 "
            f"{f['p99_ms']} ms; writes {r['writes']}. Bound: RSS at start "
            f"{r['start_rss_mb']} MB + L1 {r['l1_max_mb']:g} MB + "
            + (f"prepared {r['prepared_max_mb']:g} MB + " if "prepared_max_mb" in r else "")
            + f"{r['allowance_mb']:g} MB "
            f"= {r['bound_mb']} MB; levelled off = the last third grows ≤ "
            f"{r['plateau_growth_max']:.0%} → " + ", ".join(
                f"{k.replace('_', ' ')} **{_ok(v)}**" for k, v in r["pass"].items()) + ".", ""]
    return out


def _per_request_us(rps: dict[str, float]) -> str:
    """What the lake costs a cached feed, from the capacities with and without it."""
    return f"{1e6 / rps['telemetry_on'] - 1e6 / rps['telemetry_off']:.1f}"


def floor(r: dict) -> list[str]:
    c = r["capacity_rps"]
    out = [f"## The cached feed against the server's floor ({r['measured_at']})", "",
           "`python bench/bench_floor.py` (needs `wrk`) · one uvicorn worker (uvloop, "
           "httptools) pinned to core 1, the load on core 0. Capacity: wrk, one thread, 32 "
           f"connections, {r['seconds']:g} s, alternated {r['rounds']} times; the bare ASGI "
           f"app returns a body of the feed's size ({r['body_bytes']:,} bytes). The feed "
           "keeps its telemetry (request and ranking events), metrics and request ids.", "",
           "| server | req/s, median (range) |", "|---|---|",
           f"| bare ASGI app, same uvicorn, same body size | {_spread(c['bare'])} |",
           f"| novarank `GET /healthz` | {_spread(c['healthz'])} |",
           f"| novarank cached feed (L1 hits, 5,000 warmed users asked in turn) | "
           f"{_spread(c['feed'])} |", "",
           f"Cached feed / floor: **{_spread(r['feed_vs_bare'])}** (target ≥ "
           f"{r['targets']['capacity_ratio_min']}).", "",
           "Open loop (latency from the intended send time), every user warmed; the bare "
           "app at the same rate just before, as the machine's floor:", "",
           "| rate req/s | achieved | p50 ms | p99 ms | floor p50 ms | floor p99 ms | late sends "
           "| errors |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    out += [f"| {x['rate']:,} | {x.get('achieved_rps', '—')} | {x['p50_ms']} | {x['p99_ms']} | "
            f"{x.get('floor_p50_ms', '—')} | {x.get('floor_p99_ms', '—')} | "
            f"{x['late_ratio']:.2%} | {x['errors']} |" for x in r["curve"]]
    out += ["", "Saturation: the wrk capacity above (the open loop's one core sends at most "
            "~8,000 req/s, so its curve stops short of it). Targets: ratio ≥ "
            f"{r['targets']['capacity_ratio_min']}, p99 ≤ {r['targets']['p99_ms_at_1000_max']}"
            " ms at 1,000 req/s → " + ", ".join(f"{k.replace('_', ' ')} **{_ok(v)}**"
                                                for k, v in r["pass"].items()) + ".", ""]
    return out


def ab(r: dict) -> list[str]:
    """Revisions paired in one run (bench/bench_ab.py)."""
    c, first = r["capacity_rps"], next(iter(r["revs"].values()))
    out = [f"## Revisions paired in one run: {r['path']} ({r['measured_at']})", "",
           "`python bench/bench_ab.py " + " ".join(r["revs"]) + "` · every revision's "
           "server up at once from its own worktree, all on core 1, wrk on core 0 "
           f"alternating {r['seconds']:g} s runs between them and the bare app, "
           f"{r['rounds']} rounds; ratios are per round, then the median (range).", "",
           f"| revision | req/s, median (range) | vs {first} | vs the bare app |",
           "|---|---|---|---|"]
    out += [f"| {commit} | {_spread(c[commit])} | {_spread(r['vs_first'][commit])} | "
            f"{_spread(r['vs_bare'][commit])} |" for commit in r["revs"].values()]
    return [*out, f"| bare ASGI app ({r['body_bytes']:,} B) | {_spread(c['bare'])} | — | — |",
            ""]


def sequential(r: dict) -> list[str]:
    names = {"peeking_z_0.05": "plain z-test at 0.05, read every look",
             "peeking_0.05": "fixed-horizon test at 0.05, read every look",
             "old_judge": f"old: fixed-horizon test at {r['policy']['early_alpha']:g} every "
                          f"look, {r['policy']['alpha']:g} at the last",
             "growthbook": "GrowthBook's sequential test (two-sided mixture, N* 5,000), "
                           "every look, the same level",
             "netflix_counts": "counts test after Netflix's (Beta-binomial mixture on the "
                               "arms' counts), every look, the same level",
             "new_judge": f"new: always-valid, every look, {r['policy']['sequential_alpha']:g}"
                          " per step over every guardrail",
             "new_at_alpha_0.01": f"new: always-valid at {r['policy']['alpha']:g}, every look"}
    out = [f"## Canary rate tests under continuous monitoring ({r['measured_at']})", "",
           f"`python bench/bench_sequential.py` · {r['runs']:,} simulated steps per scenario, "
           f"{r['looks']} looks each, {r['users_per_arm_per_look']} users per arm per look "
           f"({r.get('latency_feeds_per_arm_per_look', '—')} feeds for latency, log-normal); "
           "fixed-horizon tests: z-test on rates, Mann-Whitney U on latency; the rate and "
           "latency scenarios judge the evidence alone (the practical margins apply to every "
           "judge alike), the cohort scenarios apply the margins too (cold users' CTR -40% "
           "moves the overall CTR 6%, inside its 10% margin). A/A: "
           "the rate of false rollbacks (95% Wilson interval); A/B: how often the harm is "
           "caught by the step's end, and the median look at which it is.", "",
           "| scenario | judge | rollbacks | 95% interval | median look |",
           "|---|---|---:|---|---:|"]
    for scen, judges in r["results"].items():
        for judge, x in judges.items():
            lo, hi = x["rollback_rate_ci95"]
            look = x["median_looks_to_rollback"]
            out.append(f"| {scen} | {names.get(judge, judge)} | {x['rollback_rate']:.2%} | "
                       f"{lo:.2%}-{hi:.2%} | {look if look is not None else '—'} |")
    per = r["policy"].get("per_guardrail")
    out += ["", (f"The new judge reads each of {r['policy']['guardrails']} guardrails at "
                 f"{per:g}, its share of the step's budget of "
                 f"{r['policy']['sequential_alpha']:g} (the cohort guardrail's share split "
                 "over the five cohorts); aa_overall is a step judged on every A/A guardrail "
                 "at once (error rate, latency, CTR overall and by cohort). " if per else "") +
            "Verdict (false rollbacks ≤ 5% at the interval's upper end, each guardrail and "
            "all at once; each harm caught within the step in ≥ 95% of runs) → " + ", ".join(
                f"{k.replace('_', ' ')} **{_ok(v)}**" for k, v in r["pass"].items()) + ".", ""]
    return out


def versions(r: dict) -> list[str]:
    names = {"capacity_rps": f"L1-hit capacity, {r.get('capacity_client', 'closed loop')}, "
                             "32 connections (req/s)",
             "hit_p50_ms": "L1 hit p50 at 1,000 req/s (ms)",
             "hit_p99_ms": "L1 hit p99 at 1,000 req/s (ms)",
             "miss_p50_ms": "miss (no-cache) p50 at 200 req/s (ms)",
             "miss_p95_ms": "miss (no-cache) p95 at 200 req/s (ms)", "errors": "errors"}
    out = [f"## Two versions side by side ({r['measured_at']})", "",
           f"`python bench/bench_versions.py --base {r['base_rev']}` · revision "
           f"{r['base_rev']} against {r['new_rev']}, the same release (20,000 users, "
           "5,000 items), one worker pinned to core 1, started in alternation "
           f"{r['rounds']} times each, "
           f"{r['seconds_per_load']:g} s per load. Median (range).", "",
           f"| figure | {r['base_rev']} | {r['new_rev']} |", "|---|---|---|"]
    for key, label in names.items():
        out.append(f"| {label} | {_spread(r['base'][key])} | {_spread(r['new'][key])} |")
    out += ["", "Within noise (capacity ≥ 95% of the base, p99 ≤ base + "
            f"{r['tolerance']['p99_ms']} ms, miss p95 ≤ 110% + {r['tolerance']['p99_ms']} ms, "
            "no errors) → " + ", ".join(f"{k.replace('_', ' ')} **{_ok(v)}**"
                                        for k, v in r["pass"].items()) + ".", ""]
    return out


def peer(r: dict) -> list[str]:
    c = r["capacity_rps"]
    return [f"## The miss path against a peer ({r['measured_at']})", "",
            "`python bench/bench_peer.py` (needs `wrk`; the peer runs from its own virtualenv, "
            f"{r['peer']}) · {r['data']}, both servers trained on it. Each server pinned to "
            "core 1 in turn, wrk (one thread, 8 connections, every request the next user) on "
            f"core 0, {r['seconds']:g} s, alternated {r['rounds']} times. Cornac: EASE from "
            "Flask on gunicorn (one sync worker), all 1,682 items scored per request, seen "
            "items removed, no cache. novarank: L1 entries live 1 ms, so every feed is a miss "
            "(live history read, 200 items ranked on five signals, window and page cached, "
            "request and ranking events emitted).", "",
            "| server | req/s, median (range) |", "|---|---|",
            f"| Cornac EASE, `/recommend?k=10&remove_seen=true` | {_spread(c['peer'])} |",
            f"| novarank feed, every request a miss | {_spread(c['miss'])} |",
            f"| novarank feed, admin `Cache-Control: no-cache` (full app, audited) | "
            f"{_spread(c['no_cache'])} |", "",
            f"Miss / peer: **{_spread(r['miss_vs_peer'])}** (target ≥ "
            f"{r['targets']['miss_vs_peer_min']}) → " + ", ".join(
                f"{k.replace('_', ' ')} **{_ok(v)}**" for k, v in r["pass"].items()) + ".", ""]


def miss_profile(r: dict) -> list[str]:
    """Where a miss spends its time (bench/bench_miss_profile.py)."""
    t = r["us_per_miss"]
    out = [f"## Where a feed miss spends its time ({r['measured_at']})", "",
           f"`python bench/bench_miss_profile.py` · in process, one core, {r['release']}, "
           f"{r['misses']:,} misses (each a re-rank: the history read, 200 items ranked on "
           "five signals, the window and page cached, the request and ranking events). "
           f"A miss: {t['median']} µs (median of runs {t['runs']}); each stage is its share "
           "under cProfile (which inflates small calls) scaled to that.", "",
           "| stage | share | µs |", "|---|---:|---:|"]
    out += [f"| {name} | {v['share']:.1%} | {v['us']} |" for name, v in r["stages"].items()]
    aside = sum(r["stages"][k]["share"] for k in ("snapshot encoding + cache writes",
                                                   "metrics + request/ranking events"))
    return [*out, "", "What this answer itself does not need — the snapshot's encoding and "
            f"cache writes (for the next request and the cursors), the metrics and events — "
            f"is {aside:.1%} of a miss.", ""]


def offpolicy(r: dict) -> list[str]:
    cal = r["calibration"]
    out = [f"## Counterfactual CTR against the simulator's truth ({r['measured_at']})", "",
           f"`python bench/bench_offpolicy.py` · the calibrated synthetic world "
           f"({r['world']['users']:,} users, {r['world']['items']:,} items), the control "
           f"ranker serving {r['requests']:,} simulated requests per seed with exploration "
           f"ε={r['epsilon']} over its top {r['window']}, {r['seeds']} seeds. Each candidate's "
           f"CTR@{r['k']} is estimated from the logs alone and compared with its true CTR on the "
           "same requests (the simulator's click model). better / equal / worse reorder the "
           "logged window (full support); relevance_only and trending_only are real rerankings "
           "whose pages leave the window (partial support).", "",
           "| candidate | true CTR | support | IPS coverage · mean error · CI width "
           "| SNIPS | DR | PBM (the gate's) |", "|---|---:|---:|---|---|---|---|"]
    for cand, s in r["summary"].items():
        cells = [f"{s[e]['coverage']:.0%} · {s[e]['mean_error']:+.4f} · {s[e]['ci_width']:.4f}"
                 for e in ("ips", "snips", "dr", "pbm") if e in s]
        out.append(f"| {cand} | {s['truth_mean']:.4f} | {s['support']:.2f} | "
                   + " | ".join(cells) + " |")
    c = r["exploration_cost"]
    syn, ml = cal["synthetic"], cal["movielens"]
    out += ["", f"Coverage of the 95% intervals on full-support candidates ≥ "
            f"{r['target_coverage']:.0%} → " + ", ".join(
                f"{e.upper()} **{_ok(v)}**" for e, v in r["pass"].items()) + ".",
            "", f"Exploration cost: true CTR {c['deterministic_ctr']:.4f} without, logged CTR "
            f"{c['logged_ctr']:.4f} with (-{c['relative_ctr_loss']:.1%}); drawing a page "
            f"takes {c['serve_us_per_page']} µs. First page through the served feed path "
            f"(in process, L1 warm; p50 / p99): off "
            f"{c['first_page_latency']['off']['p50_us']} / "
            f"{c['first_page_latency']['off']['p99_us']} µs, on "
            f"{c['first_page_latency']['on']['p50_us']} / "
            f"{c['first_page_latency']['on']['p99_us']} µs (on: the window read for the log, "
            f"and a new snapshot for an explored page).", "",
            "The world's calibration against MovieLens-100K (Recall@10 lift over popularity; "
            "share of positives on the top 10% of items; taste concentration):", "",
            "| data | item-item | ALS | ranker | top-10% share | taste |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, w in (("MovieLens-100K", ml), ("synthetic (default)", syn)):
        out.append(f"| {name} | {w['lift']['item_item']:.2f}x | {w['lift']['als']:.2f}x | "
                   f"{w['lift']['ranker']:.2f}x | {w['top_decile_share']:.2f} | "
                   f"{w['taste_concentration']:.2f} |")
    out += ["", "Calibrated (within tolerance): **"
            + ("pass" if not cal["differences"] else "FAIL: " + "; ".join(cal["differences"]))
            + "**.", ""]
    return out


def interleaving(r: dict) -> list[str]:
    out = [f"## Interleaving vs A/B: users to find a known difference ({r['measured_at']})", "",
           f"`python bench/bench_interleaving.py` · the calibrated synthetic world, the control "
           f"ranker against two rerankings whose true CTR@10 the simulator knows, {r['seeds']} "
           f"seeds each. Team-draft interleaving (one merged page per user, a click credited to "
           f"the ranker that placed the item) and an A/B test on CTR (users split 50/50) over "
           f"the same simulated population, each judged by an always-valid test (alpha "
           f"{r['alpha']}) read every {r['every']} users, stopped at the first rejection or at "
           f"{r['max_users']:,} users.", "",
           "| candidate | true CTR vs control | interleaving: users, median (range) | "
           "A/B: users, median (range) | A/B / interleaving |", "|---|---|---|---|---:|"]

    def cell(x: dict) -> str:
        rng = f"{x['min']:,}-{x['max']:,}" if x["min"] is not None else "none found"
        missed = "" if x["detected"] == x["runs"] else f", {x['runs'] - x['detected']} not found"
        return f"{x['median']:,.0f} ({rng}{missed})"
    for cand, c in r["candidates"].items():
        ratio = c["ab"]["median"] / max(c["interleaving"]["median"], 1)
        out.append(f"| {cand} | {c['true_ctr']:.4f} vs {c['control_true_ctr']:.4f} | "
                   f"{cell(c['interleaving'])} | {cell(c['ab'])} | {ratio:.1f}x |")
    aa = r["aa"]
    out += ["", f"A/A (control against itself, interleaved): {aa['detected']} of {aa['runs']} "
            f"runs rejected. → " + ", ".join(f"{k.replace('_', ' ')} **{_ok(v)}**"
                                            for k, v in r["pass"].items()) + ".", ""]
    return out


def _ok(flag: bool) -> str:
    return "pass" if flag else "FAIL"


def main() -> None:
    lines = ["# Benchmarks", "",
             "Generated by `python bench/report.py` from `bench/results/*.json`; rerun a "
             "benchmark, then the report. Machine: 2 cores. Machines are noisy (up to 2x "
             "between runs): compare numbers only within one run.", ""]
    for name, fn in (("quality", quality), ("train", train), ("latency", latency),
                     ("serving", serving), ("telemetry", telemetry), ("loadgen", loadgen),
                     ("rollout", rollout), ("abuse", abuse),
                     ("trending_cap", trending_cap), ("outage", outage), ("soak", soak),
                     ("floor", floor), ("ab", ab), ("peer", peer),
                     ("miss_profile", miss_profile), ("versions", versions),
                     ("sequential", sequential), ("spark", spark), ("offpolicy", offpolicy),
                     ("interleaving", interleaving)):
        r = _load(name)
        lines += fn(r) if r else [f"## {name}", "", "not measured yet", ""]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines))
    print("\n".join(lines))
    q, t, lat, srv = _load("quality"), _load("train"), _load("latency"), _load("serving")
    tel = _load("telemetry")
    if q and t and lat:
        rows = summary(q, t, lat) + (serving_summary(srv, _load("floor")) if srv else [])
        pr = _load("peer")
        if pr:
            rows.append(f"| HTTP feed, every request a miss, MovieLens-100K, one core: "
                        f"capacity vs Cornac's EASE serving side by side | "
                        f"{pr['capacity_rps']['miss']['median']:,.0f} vs "
                        f"{pr['capacity_rps']['peer']['median']:,.0f} req/s (ratio "
                        f"{_spread(pr['miss_vs_peer'])}) | ≥ {pr['targets']['miss_vs_peer_min']} |")
        lg = _load("loadgen")
        if lg:
            r3 = lg["runs"]["3000"]
            rows.append(f"| load generator at 3,000 req/s on one core | late sends "
                        f"{r3['late_ratio']:.2%} | < 1% |")
        if tel:
            rows += [f"| telemetry: emitter cost per request (median) | "
                     f"{tel['emitter']['median_us']} µs | ≤ 50 µs |",
                     f"| telemetry: cached-feed throughput on / off | {tel['throughput']['ratio']} "
                     f"({_per_request_us(tel['throughput']['median_rps'])} µs a request) "
                     "| ≥ 0.90 |",
                     f"| rollup of a {tel['rollup']['events']:,}-event day | "
                     f"{tel['rollup']['seconds']} s | ≤ 30 s |"]
        ro = _load("rollout")
        if ro:
            rows.append(f"| rollback drill, faulty canary at 10%: time to detect / to roll back "
                        f"(medians of {len(ro['drills'])}) | {ro['median_time_to_detect_s']} s /"
                        f" {ro['median_time_to_rollback_s']} s, "
                        f"{ro['failed_outside_canary']} failures outside the canary | ≤ 60 s / "
                        "≤ 5 s, 0 |")
        sk = _load("spark")
        if sk:
            local = {r["events"]: r for r in sk["runs"].get("local", []) if "fit_s" in r}
            big = max((r for r in sk["runs"].get("spark", []) if "recall" in r
                       and r["events"] in local), key=lambda r: r["events"], default=None)
            if big:
                lo = local[big["events"]]
                rows.append(f"| Spark local[2] vs the local engine, {big['events']:,} events: "
                            f"one fit / Recall@10 | {big['fit_s']} s vs {lo['fit_s']} s / "
                            f"{big['recall']:.4f} vs {lo['recall']:.4f} | Recall within "
                            f"{sk['targets']['recall_tolerance']} "
                            f"(**{_ok(sk['pass'][str(big['events'])])}**) |")
        op = _load("offpolicy")
        if op:
            full = [op["summary"][c] for c in ("better", "equal", "worse")]
            cov = " / ".join(f"{sum(s[e]['coverage'] for s in full) / len(full):.0%}"
                             for e in ("ips", "snips", "dr", "pbm") if e in full[0])
            rows.append(f"| counterfactual CTR from explored logs ({op['seeds']} seeds): 95% "
                        f"interval coverage of the true CTR over better, equal and worse "
                        f"candidates, IPS / SNIPS / DR / PBM | {cov} | "
                        f"≥ {op['target_coverage']:.0%} |")
        il = _load("interleaving")
        if il:
            c = il["candidates"]["relevance_only"]
            rows.append(f"| users to find a {1 - c['true_ctr'] / c['control_true_ctr']:.0%} "
                        f"CTR drop (median of {il['seeds']}): interleaving vs A/B | "
                        f"{c['interleaving']['median']:,.0f} vs {c['ab']['median']:,.0f} | "
                        "≥ 2x fewer |")
        update_readme(rows)


if __name__ == "__main__":
    main()
