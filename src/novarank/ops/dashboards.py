"""The four Grafana dashboards of the launch guide, generated (never hand-edited JSON).

Every panel query ends in `or vector(0)` where "no events" should read as zero, so a
healthy service never shows an empty panel; tests run each query against a real
Prometheus scraping a real service.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

J = 'job="novarank"'
FEED = '/v1/users/{user_id}/feed'


@dataclass(frozen=True)
class Panel:
    title: str
    expr: str
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"


DASHBOARDS: dict[str, tuple[str, tuple[Panel, ...]]] = {
    "system-health": ("System Health & Resources", (
        Panel("Replicas up", f"count(up{{{J}}} == 1) or vector(0)", kind="stat"),
        Panel("Resident memory", f"process_resident_memory_bytes{{{J}}}", "bytes"),
        Panel("Memory used of limit", f"process_resident_memory_bytes{{{J}}} / "
              f"novarank_memory_limit_bytes{{{J}}}", "percentunit"),
        Panel("CPU (cores)", f"rate(process_cpu_seconds_total{{{J}}}[1m])"),
        Panel("Restarts (15 min)", f"sum(changes(process_start_time_seconds{{{J}}}[15m])) "
              "or vector(0)", kind="stat"),
        Panel("Telemetry lag", f"max(novarank_telemetry_lag_seconds{{{J}}})", "s"),
        Panel("Telemetry written / s", f"sum(rate(novarank_telemetry_written_total{{{J}}}[1m]))"
              " or vector(0)"),
        Panel("Telemetry dropped (1 h)", f"sum(increase(novarank_telemetry_dropped_total"
              f"{{{J}}}[1h])) or vector(0)", kind="stat"),
    )),
    "api-performance": ("API Performance & Latency", (
        Panel("Requests / s by route", f"sum by (route) (rate(novarank_requests_total{{{J}}}"
              "[1m]))", "reqps"),
        Panel("Error rate (5xx)", f'(sum(rate(novarank_requests_total{{{J},status=~"5.."}}[5m]))'
              f" or vector(0)) / sum(rate(novarank_requests_total{{{J}}}[5m]))", "percentunit"),
        Panel("p50 / p95 / p99 feed latency", "histogram_quantile(0.95, sum by (le) (rate("
              f'novarank_request_duration_seconds_bucket{{{J},route="{FEED}"}}[5m])))', "s"),
        Panel("p95 by cache level", "histogram_quantile(0.95, sum by (le, cache) (rate("
              f'novarank_request_duration_seconds_bucket{{{J},route="feed"}}[5m])))', "s"),
        Panel("Fallback responses / s", f"sum(rate(novarank_fallback_total{{{J}}}[5m])) "
              "or vector(0)"),
        Panel("Feeds filled completely", f'sum(rate(novarank_feed_fill_ratio_count{{{J}}}[5m]))'
              f' - sum(rate(novarank_feed_fill_ratio_bucket{{{J},le="0.99"}}[5m]))',
              "reqps"),
    )),
    "cache": ("Cache Performance", (
        Panel("Hit rate by level", "sum by (level) (rate(novarank_cache_requests_total"
              f'{{{J},result="hit"}}[5m])) / sum by (level) (rate(novarank_cache_requests_total'
              f"{{{J}}}[5m]))", "percentunit"),
        Panel("Lookups / s by level and result", "sum by (level, result) (rate("
              f"novarank_cache_requests_total{{{J}}}[1m]))"),
        Panel("L1 bytes", f"novarank_cache_bytes{{{J}}}", "bytes"),
        Panel("L1 entries", f"novarank_cache_entries{{{J}}}"),
        Panel("L1 evictions", f"novarank_cache_evictions{{{J}}}"),
        Panel("Background re-ranks / s", f"sum(rate(novarank_refresh_ahead_total{{{J}}}[5m])) "
              "or vector(0)"),
    )),
    "business": ("Business Metrics", (
        Panel("Events accepted / s by kind", "sum by (kind) (rate(novarank_events_total"
              f'{{{J},result="accepted"}}[5m]))'),
        Panel("Events rejected / s", f'sum(rate(novarank_events_total{{{J},result="rejected"}}'
              "[5m])) or vector(0)"),
        Panel("Click-through (clicks / impressions)", 'sum(rate(novarank_events_total'
              f'{{{J},kind="click",result="accepted"}}[15m])) / sum(rate(novarank_events_total'
              f'{{{J},kind="impression",result="accepted"}}[15m]))', "percentunit"),
        Panel("Traffic by variant", "sum by (variant) (rate(novarank_assignments_total"
              f"{{{J}}}[5m])) / scalar(sum(rate(novarank_assignments_total{{{J}}}[5m])))",
              "percentunit"),
        Panel("Planned split", f"novarank_experiment_split_ratio{{{J}}}", "percentunit"),
        Panel("Catalog items", f"max(novarank_catalog_items{{{J}}})", kind="stat"),
        Panel("Kill switch", f"max(novarank_kill_switch{{{J}}})", kind="stat"),
        Panel("Canary share of users", f"max(novarank_canary_share{{{J}}})", "percentunit",
              kind="stat"),
        Panel("Releases served", f"novarank_release_info{{{J}}} == 1", kind="stat"),
    )),
}


def dashboard(uid: str, title: str, panels: tuple[Panel, ...]) -> dict:
    return {
        "uid": f"novarank-{uid}", "title": f"novarank — {title}", "schemaVersion": 39,
        "tags": ["novarank"], "timezone": "utc", "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource",
                                 "query": "prometheus"}]},
        "panels": [{
            "id": n + 1, "type": p.kind, "title": p.title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {"h": 8, "w": 12, "x": 12 * (n % 2), "y": 8 * (n // 2)},
            "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
            "targets": [{"refId": "A", "expr": p.expr}]} for n, p in enumerate(panels)],
    }


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for uid, (title, panels) in DASHBOARDS.items():
        path = out / f"{uid}.json"
        path.write_text(json.dumps(dashboard(uid, title, panels), indent=2) + "\n")
        paths.append(path)
    (out / "provisioning.yaml").write_text(
        "# Grafana provisioning: mount deploy/grafana as /var/lib/grafana/dashboards/novarank\n"
        "apiVersion: 1\nproviders:\n  - name: novarank\n    folder: novarank\n    type: file\n"
        "    options:\n      path: /var/lib/grafana/dashboards/novarank\n")
    return paths


def all_queries() -> list[tuple[str, str, str]]:
    return [(uid, p.title, p.expr) for uid, (_, panels) in DASHBOARDS.items() for p in panels]
