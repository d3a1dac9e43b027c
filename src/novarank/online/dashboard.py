"""The live Health and Outcomes tiles of one replica, from its own metrics registry.

The daily tiles (`novarank tiles`) come from the lake; these come from the counters the
service keeps in memory, so an operator sees the same objectives between rollups."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from prometheus_client import CollectorRegistry

from novarank.analytics.quality import OfflineQuality
from novarank.analytics.slo import HEALTH, OUTCOMES
from novarank.analytics.tiles import overall, quality_rows, shown, status_of


def _samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for m in registry.collect() for s in m.samples]


def _quantile(buckets: dict[float, float], q: float) -> float | None:
    """Linear interpolation inside the bucket that holds the q-th observation (ms)."""
    if not buckets:
        return None
    edges = sorted(buckets)
    total = buckets[edges[-1]]
    if total <= 0:
        return None
    rank, prev_edge, prev_count = q * total, 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if edge == float("inf"):
                return prev_edge * 1000
            span = count - prev_count
            frac = (rank - prev_count) / span if span else 1.0
            return (prev_edge + (edge - prev_edge) * frac) * 1000
        prev_edge, prev_count = edge, count
    return prev_edge * 1000


FEED_LEVELS = ("l1", "l2", "miss")


def live_tiles(registry: CollectorRegistry, split: dict[str, float],
               quality: OfflineQuality | None) -> dict[str, Any]:
    buckets: dict[float, float] = defaultdict(float)
    requests = errors = hits = lookups = 0.0
    fill_sum = fill_count = 0.0
    events: dict[str, float] = defaultdict(float)
    assigned: dict[str, float] = defaultdict(float)
    for name, labels, value in _samples(registry):
        if name == "novarank_request_duration_seconds_bucket" and labels.get("route") == "feed":
            buckets[float(labels["le"])] += value
        elif name == "novarank_requests_total":
            requests += value
            errors += value if labels.get("status", "").startswith("5") else 0
        elif (name == "novarank_request_duration_seconds_count"
              and labels.get("route") == "feed" and labels.get("cache") in FEED_LEVELS):
            # feeds answered from a cache level, the same definition as the daily tile (not
            # raw L1 lookups, which count snapshot and page reads too)
            lookups += value
            hits += value if labels["cache"] != "miss" else 0
        elif name == "novarank_feed_fill_ratio_sum":
            fill_sum = value
        elif name == "novarank_feed_fill_ratio_count":
            fill_count = value
        elif name == "novarank_events_total" and labels.get("result") == "accepted":
            events[labels["kind"]] += value
        elif name == "novarank_assignments_total":
            assigned[labels["variant"]] += value
    feed_n = int(fill_count)
    health_values = {"p95_ms": _quantile(buckets, 0.95),
                     "coverage": fill_sum / fill_count if fill_count else None,
                     "error_rate": errors / requests if requests else None,
                     "cache_hit_rate": hits / lookups if lookups else None}
    samples = {"p95_ms": feed_n, "coverage": feed_n, "error_rate": int(requests),
               "cache_hit_rate": int(lookups)}
    health = [status_of(o, health_values[o.metric], samples[o.metric]) for o in HEALTH]
    n_assigned = sum(assigned.values())
    allocation = {v: c / n_assigned for v, c in assigned.items()} if n_assigned else {}
    total_split = sum(split.values()) or 1.0
    deviation = max((abs(allocation.get(v, 0.0) - s / total_split) for v, s in split.items()),
                    default=None) if n_assigned else None
    imps = events.get("impression", 0.0)
    outcomes = [status_of(OUTCOMES[0], events.get("click", 0.0) / imps if imps else None,
                          int(imps)),
                shown("Traffic allocation (max share deviation)", "allocation_max_deviation",
                      deviation, int(n_assigned),
                      "by requests: a replica's counters cannot count users, the unit the "
                      "daily tile and gate 4 judge by a sample-ratio test"),
                *quality_rows(quality)]
    return {"health": {"metrics": health, "status": overall(health)},
            "outcomes": {"metrics": outcomes, "status": overall(outcomes),
                         "allocation": allocation, "planned_split": split},
            "requests": int(requests), "feeds": feed_n}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>novarank — live tiles</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 24px; background: #f6f7f9; color: #1d2330; }
 h1 { font-size: 20px; margin: 0 0 4px; } .sub { color: #5b6475; margin-bottom: 16px; }
 .tiles { display: flex; gap: 16px; flex-wrap: wrap; }
 .tile { background: white; border-radius: 8px; padding: 16px; min-width: 420px;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); }
 .tile h2 { font-size: 16px; margin: 0 0 8px; }
 table { border-collapse: collapse; width: 100%; } td, th { padding: 4px 8px; text-align: left; }
 th { color: #5b6475; font-weight: 500; border-bottom: 1px solid #e3e6eb; }
 .ok { color: #137333; } .breach { color: #b3261e; } .no_data { color: #8a6d00; }
 .badge { font-weight: 600; text-transform: uppercase; font-size: 12px; }
</style></head><body>
<h1>novarank — live Health and Outcomes</h1>
<div class="sub" id="sub">loading…</div>
<div class="tiles">
 <div class="tile" id="health"><h2>Health <span class="badge" id="health-status"></span></h2>
  <table><thead><tr><th>metric</th><th>value</th><th>objective</th><th>n</th><th>status</th>
  </tr></thead><tbody></tbody></table></div>
 <div class="tile" id="outcomes"><h2>Outcomes <span class="badge" id="outcomes-status"></span></h2>
  <table><thead><tr><th>metric</th><th>value</th><th>objective</th><th>n</th><th>status</th>
  </tr></thead><tbody></tbody></table></div>
</div>
<script>
function fmt(v) { return v === null ? "—" : (Math.abs(v) >= 10 ? v.toFixed(1) : v.toPrecision(4)); }
function fill(id, tile) {
  const badge = document.getElementById(id + "-status");
  badge.textContent = tile.status; badge.className = "badge " + tile.status;
  const body = document.querySelector("#" + id + " tbody");
  body.innerHTML = "";
  for (const m of tile.metrics) {
    const tr = document.createElement("tr");
    tr.setAttribute("data-metric", m.metric); tr.setAttribute("data-status", m.status);
    for (const text of [m.name, fmt(m.value) + (m.unit ? " " + m.unit : ""), m.objective,
                        m.samples, m.status]) {
      const td = document.createElement("td"); td.textContent = text; tr.appendChild(td);
    }
    tr.lastChild.className = m.status; body.appendChild(tr);
  }
}
async function refresh() {
  const r = await fetch("dashboard/data"); const d = await r.json();
  fill("health", d.health); fill("outcomes", d.outcomes);
  document.getElementById("sub").textContent = "release " + d.release + " · " + d.requests +
    " requests · " + d.feeds + " feeds · allocation " + JSON.stringify(d.outcomes.allocation);
}
refresh(); setInterval(refresh, 5000);
</script></body></html>
"""
