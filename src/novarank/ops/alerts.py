"""Alert rules and their promtool unit tests, generated from one spec.

Every alert carries three cases built from its own sample series: *firing* (the bad
series, evaluated after its `for`), *pending* (the bad series, evaluated before its `for`
elapses: no alert yet) and *silent* (the good series: never an alert). Thresholds that
the launch gates and tiles also use come from analytics/slo.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import yaml

from novarank.analytics.slo import HEALTH

JOB = 'job="novarank"'
_SLO = {o.metric: o.threshold for o in HEALTH}
ERROR_BUDGET = _SLO["error_rate"]  # availability SLO 99.9%: the budget burn rates spend
CACHE_HIT_MIN = _SLO["cache_hit_rate"]  # the same floor the Health tile and gates use


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str  # critical | warning | info
    team: str  # sre | data
    summary: str
    runbook: str
    bad: dict[str, str]  # series -> promtool values (breaching)
    good: dict[str, str]  # series -> promtool values (healthy)
    labels: dict[str, str] = field(default_factory=dict)
    pending_at_m: int = 1  # a minute at which the bad condition already holds
    fire_at_m: int | None = None  # default: `for` + 40 minutes
    exp_labels: dict[str, str] = field(default_factory=dict)  # labels the alert keeps

    def for_minutes(self) -> int:
        m = re.fullmatch(r"(\d+)m", self.for_)
        if not m:
            raise ValueError(f"{self.name}: 'for' must be in minutes, got {self.for_}")
        return int(m.group(1))


def _req(route: str, status: str, per_min: int) -> str:
    return f'novarank_requests_total{{{JOB},route="{route}",status="{status}"}}', \
        f"0+{per_min}x120"  # type: ignore[return-value]


FEED = "/v1/users/{user_id}/feed"
RB = "docs/runbooks/"


def _counter(metric: str, labels: str, per_min: float) -> tuple[str, str]:
    return f"{metric}{{{JOB}{',' + labels if labels else ''}}}", f"0+{per_min:g}x120"


def _gauge(metric: str, labels: str, value: float) -> tuple[str, str]:
    return f"{metric}{{{JOB}{',' + labels if labels else ''}}}", f"{value:g}x120"


def _series(*pairs: tuple[str, str]) -> dict[str, str]:
    return dict(pairs)


def _latency(le_fast: float, le_slow: float, total: float,
             le_one: float | None = None) -> dict[str, str]:
    """Histogram buckets per minute: requests under 0.1 s, 0.5 s, 1 s, 2.5 s and in all."""
    base = f'novarank_request_duration_seconds_bucket{{{JOB},route="{FEED}",cache="all",le='
    return {base + '"0.1"}': f"0+{le_fast:g}x120", base + '"0.5"}': f"0+{le_slow:g}x120",
            base + '"1"}': f"0+{(total if le_one is None else le_one):g}x120",
            base + '"2.5"}': f"0+{total:g}x120", base + '"+Inf"}': f"0+{total:g}x120",
            f'novarank_request_duration_seconds_count{{{JOB},route="{FEED}",cache="all"}}':
                f"0+{total:g}x120"}


ok_traffic = _series(_counter("novarank_requests_total", f'route="{FEED}",status="200"', 6000),
                     _counter("novarank_requests_total", f'route="{FEED}",status="500"', 0))
bad_errors = _series(_counter("novarank_requests_total", f'route="{FEED}",status="200"', 5700),
                     _counter("novarank_requests_total", f'route="{FEED}",status="500"', 300))
def error_ratio(w: str) -> str:
    return (f'sum(rate(novarank_requests_total{{{JOB},status=~"5.."}}[{w}])) / '
            f"sum(rate(novarank_requests_total{{{JOB}}}[{w}]))")


def slow_ratio(w: str) -> str:
    """Share of requests slower than 100 ms (the latency SLO's bad events)."""
    return (f"1 - sum(rate(novarank_request_duration_seconds_bucket{{{JOB},cache=\"all\","
            f'le="0.1"}}[{w}])) / sum(rate(novarank_request_duration_seconds_count'
            f'{{{JOB},cache="all"}}[{w}]))')


def _burn(ratio: Callable[[str], str], long_w: str, short_w: str, factor: float,
          budget: float) -> str:
    """Multi-window burn rate: both windows above factor x the error budget."""
    return (f"({ratio(long_w)}) > {factor * budget:g} and "
            f"({ratio(short_w)}) > {factor * budget:g}")


def _hits(l1: float, miss: float) -> dict[str, str]:
    return _series(_counter("novarank_cache_requests_total", 'level="l1",result="hit"', l1),
                   _counter("novarank_cache_requests_total", 'level="l1",result="miss"', miss))


ALERTS: tuple[Alert, ...] = (
    Alert("NovarankHighErrorRate", error_ratio("5m") + " > 0.01", "5m", "critical", "sre",
          "More than 1% of requests fail with 5xx", RB + "high-error-rate.md",
          bad_errors, ok_traffic),
    Alert("NovarankHighLatencyP95",
          f"histogram_quantile(0.95, sum by (le) (rate(novarank_request_duration_seconds_bucket"
          f'{{{JOB},cache="all"}}[5m]))) > 0.5', "5m", "critical", "sre",
          "p95 request latency above 500 ms", RB + "high-latency.md",
          _latency(1000, 1100, 6000, le_one=3000), _latency(5900, 6000, 6000)),
    Alert("NovarankLowCacheHitRate",
          f'sum(rate(novarank_cache_requests_total{{{JOB},level="l1",result="hit"}}[10m])) / '
          f'sum(rate(novarank_cache_requests_total{{{JOB},level="l1"}}[10m])) < {CACHE_HIT_MIN:g}',
          "10m", "warning", "sre", "L1 cache hit rate below 85%", RB + "low-cache-hit-rate.md",
          _hits(700, 300), _hits(970, 30)),
    Alert("NovarankPodRestarted", f"changes(process_start_time_seconds{{{JOB}}}[15m]) > 0",
          "1m", "warning", "sre", "A replica restarted", RB + "restarts.md",
          {f"process_start_time_seconds{{{JOB},instance=\"a\"}}": "1000x5 2000x115"},
          {f"process_start_time_seconds{{{JOB},instance=\"a\"}}": "1000x120"}, pending_at_m=6,
          fire_at_m=10, exp_labels={"instance": "a", "job": "novarank"}),
    Alert("NovarankMemoryPressure",
          f"max(process_resident_memory_bytes{{{JOB}}} / novarank_memory_limit_bytes{{{JOB}}}) "
          "> 0.8", "5m", "warning", "sre", "A replica uses more than 80% of its memory limit",
          RB + "memory-pressure.md",
          _series(_gauge("process_resident_memory_bytes", "", 900),
                  _gauge("novarank_memory_limit_bytes", "", 1000)),
          _series(_gauge("process_resident_memory_bytes", "", 400),
                  _gauge("novarank_memory_limit_bytes", "", 1000))),
    Alert("NovarankInsufficientReplicas", f"count(up{{{JOB}}} == 1) < 3", "2m", "critical",
          "sre", "Fewer than 3 replicas are up", RB + "insufficient-replicas.md",
          {f'up{{{JOB},instance="a"}}': "1x120", f'up{{{JOB},instance="b"}}': "1x120",
           f'up{{{JOB},instance="c"}}': "0x120"},
          {f'up{{{JOB},instance="a"}}': "1x120", f'up{{{JOB},instance="b"}}': "1x120",
           f'up{{{JOB},instance="c"}}': "1x120"}),
    Alert("NovarankReplicaDown", f"up{{{JOB}}} == 0", "2m", "warning", "sre",
          "A replica does not answer scrapes", RB + "insufficient-replicas.md",
          {f'up{{{JOB},instance="a"}}': "0x120"}, {f'up{{{JOB},instance="a"}}': "1x120"},
          exp_labels={"instance": "a", "job": "novarank"}),
    Alert("NovarankAvailabilityBurnFast", _burn(error_ratio, "1h", "5m", 14.4, ERROR_BUDGET), "2m",
          "critical", "sre", "Availability SLO (99.9%) burning 14x too fast (1h and 5m)",
          RB + "high-error-rate.md", bad_errors, ok_traffic),
    Alert("NovarankAvailabilityBurnSlow", _burn(error_ratio, "6h", "30m", 6, ERROR_BUDGET), "15m",
          "warning",
          "sre", "Availability SLO (99.9%) burning 6x too fast (6h and 30m)",
          RB + "high-error-rate.md", bad_errors, ok_traffic),
    Alert("NovarankLatencyBurnFast", _burn(slow_ratio, "1h", "5m", 14.4, 0.01), "2m", "critical",
          "sre", "Latency SLO (99% under 100 ms) burning 14x too fast", RB + "high-latency.md",
          _latency(4000, 6000, 6000), _latency(5990, 6000, 6000)),
    Alert("NovarankLatencyBurnSlow", _burn(slow_ratio, "6h", "30m", 6, 0.01), "15m", "warning",
          "sre", "Latency SLO (99% under 100 ms) burning 6x too fast", RB + "high-latency.md",
          _latency(4000, 6000, 6000), _latency(5990, 6000, 6000)),
    Alert("NovarankTelemetryLag", f"max(novarank_telemetry_lag_seconds{{{JOB}}}) > 30", "5m",
          "warning", "data", "Telemetry waits more than 30 s to be written",
          RB + "telemetry-stalled.md",
          _series(_gauge("novarank_telemetry_lag_seconds", "", 120)),
          _series(_gauge("novarank_telemetry_lag_seconds", "", 0.5))),
    Alert("NovarankTelemetryDropping",
          f"sum(increase(novarank_telemetry_dropped_total{{{JOB}}}[5m])) > 0", "1m", "warning",
          "data", "Telemetry events are being dropped (buffer full)",
          RB + "telemetry-stalled.md",
          _series(_counter("novarank_telemetry_dropped_total", "", 50)),
          _series(_counter("novarank_telemetry_dropped_total", "", 0))),
    Alert("NovarankIngestStalled",
          f"sum(rate(novarank_requests_total{{{JOB}}}[10m])) > 1 and "
          f"sum(rate(novarank_telemetry_written_total{{{JOB}}}[10m])) == 0", "10m", "critical",
          "data", "Requests are served but no telemetry is written",
          RB + "telemetry-stalled.md",
          {**ok_traffic, **_series(_counter("novarank_telemetry_written_total", "", 0))},
          {**ok_traffic, **_series(_counter("novarank_telemetry_written_total", "", 12000))}),
    Alert("NovarankFallbackRateHigh",
          f"sum(rate(novarank_fallback_total{{{JOB}}}[10m])) / "
          f"sum(rate(novarank_requests_total{{{JOB},route=\"{FEED}\"}}[10m])) > 0.05", "10m",
          "warning", "sre", "More than 5% of feeds come from a fallback path",
          RB + "high-error-rate.md",
          {**ok_traffic, **_series(_counter("novarank_fallback_total", 'reason="sync_error"',
                                            600))},
          {**ok_traffic, **_series(_counter("novarank_fallback_total", 'reason="sync_error"',
                                            6))}),
    Alert("NovarankKillSwitchOn", f"max(novarank_kill_switch{{{JOB}}}) == 1", "1m", "info",
          "sre", "The kill switch is on: every feed is the trending fallback",
          RB + "high-error-rate.md", _series(_gauge("novarank_kill_switch", "", 1)),
          _series(_gauge("novarank_kill_switch", "", 0)), pending_at_m=0),
    Alert("NovarankFillRateLow",
          f'1 - sum(rate(novarank_feed_fill_ratio_bucket{{{JOB},le="0.99"}}[10m])) / '
          f"sum(rate(novarank_feed_fill_ratio_count{{{JOB}}}[10m])) < 0.95", "10m", "warning",
          "sre", "More than 5% of feeds return fewer items than asked", RB + "high-latency.md",
          {f'novarank_feed_fill_ratio_bucket{{{JOB},le="0.99"}}': "0+300x120",
           f"novarank_feed_fill_ratio_count{{{JOB}}}": "0+1000x120"},
          {f'novarank_feed_fill_ratio_bucket{{{JOB},le="0.99"}}': "0+0x120",
           f"novarank_feed_fill_ratio_count{{{JOB}}}": "0+1000x120"}),
    Alert("NovarankEventsRejected",
          f'sum(rate(novarank_events_total{{{JOB},result="rejected"}}[10m])) / '
          f"sum(rate(novarank_events_total{{{JOB}}}[10m])) > 0.1", "10m", "warning", "data",
          "More than 10% of client events are rejected", RB + "telemetry-stalled.md",
          _series(_counter("novarank_events_total", 'kind="click",result="accepted"', 800),
                  _counter("novarank_events_total", 'kind="click",result="rejected"', 200)),
          _series(_counter("novarank_events_total", 'kind="click",result="accepted"', 990),
                  _counter("novarank_events_total", 'kind="click",result="rejected"', 10))),
    Alert("NovarankSampleRatioMismatch",
          f"max(abs(sum by (variant) (rate(novarank_assignments_total{{{JOB}}}[30m])) / "
          f"scalar(sum(rate(novarank_assignments_total{{{JOB}}}[30m]))) - "
          f"max by (variant) (novarank_experiment_split_ratio{{{JOB}}}))) > 0.05", "30m",
          "warning", "data", "Observed traffic per variant is more than 5 points off plan",
          RB + "sample-ratio-mismatch.md",
          _series(_counter("novarank_assignments_total", 'variant="control"', 700),
                  _counter("novarank_assignments_total", 'variant="a"', 300),
                  _gauge("novarank_experiment_split_ratio", 'variant="control"', 0.5),
                  _gauge("novarank_experiment_split_ratio", 'variant="a"', 0.5)),
          _series(_counter("novarank_assignments_total", 'variant="control"', 510),
                  _counter("novarank_assignments_total", 'variant="a"', 490),
                  _gauge("novarank_experiment_split_ratio", 'variant="control"', 0.5),
                  _gauge("novarank_experiment_split_ratio", 'variant="a"', 0.5))),
    Alert("NovarankCatalogEmpty", f"max(novarank_catalog_items{{{JOB}}}) == 0", "2m",
          "critical", "sre", "The live catalog is empty", RB + "high-error-rate.md",
          _series(_gauge("novarank_catalog_items", "", 0)),
          _series(_gauge("novarank_catalog_items", "", 5000))),
    Alert("NovarankHighLatencyMissP99",
          f"histogram_quantile(0.99, sum by (le) (rate(novarank_request_duration_seconds_bucket"
          f'{{{JOB},cache="miss"}}[10m]))) > 1', "10m", "warning", "sre",
          "p99 latency of cache misses above 1 s", RB + "high-latency.md",
          {f'novarank_request_duration_seconds_bucket{{{JOB},route="feed",cache="miss",'
           f'le="1"}}': "0+900x120",
           f'novarank_request_duration_seconds_bucket{{{JOB},route="feed",cache="miss",'
           f'le="2.5"}}': "0+1000x120",
           f'novarank_request_duration_seconds_bucket{{{JOB},route="feed",cache="miss",'
           f'le="+Inf"}}': "0+1000x120"},
          {f'novarank_request_duration_seconds_bucket{{{JOB},route="feed",cache="miss",'
           f'le="1"}}': "0+1000x120",
           f'novarank_request_duration_seconds_bucket{{{JOB},route="feed",cache="miss",'
           f'le="+Inf"}}': "0+1000x120"}),
)


def rules_yaml() -> str:
    groups = {"groups": [{"name": "novarank", "rules": [
        {"alert": a.name, "expr": a.expr, "for": a.for_,
         "labels": {"severity": a.severity, "team": a.team, **a.labels},
         "annotations": {"summary": a.summary, "runbook": a.runbook}} for a in ALERTS]}]}
    return "# Generated by `novarank ops generate` from novarank/ops/alerts.py: do not edit.\n" + \
        yaml.safe_dump(groups, sort_keys=False, width=120)


def unit_tests_yaml(rules_file: str = "alerts.yml") -> str:
    tests = []
    for a in ALERTS:
        expected = [{"exp_labels": {"severity": a.severity, "team": a.team, **a.labels,
                                    **a.exp_labels},
                     "exp_annotations": {"summary": a.summary, "runbook": a.runbook}}]
        fire_at = f"{a.fire_at_m if a.fire_at_m is not None else a.for_minutes() + 40}m"
        pending_at = f"{a.pending_at_m}m"
        # firing: the bad series long enough; pending: bad series before `for` elapses
        tests.append({"interval": "1m", "name": f"{a.name} fires",
                      "input_series": [{"series": s, "values": v} for s, v in a.bad.items()],
                      "alert_rule_test": [
                          {"eval_time": fire_at, "alertname": a.name, "exp_alerts": expected},
                          {"eval_time": pending_at, "alertname": a.name, "exp_alerts": []}]})
        tests.append({"interval": "1m", "name": f"{a.name} stays silent when healthy",
                      "input_series": [{"series": s, "values": v} for s, v in a.good.items()],
                      "alert_rule_test": [{"eval_time": fire_at, "alertname": a.name,
                                           "exp_alerts": []}]})
    doc = {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": tests}
    return "# Generated by `novarank ops generate`: do not edit.\n" + \
        yaml.safe_dump(doc, sort_keys=False, width=120)


METRIC = re.compile(r"\b((?:novarank|process)_[a-z_]+?)(?:_bucket|_count|_sum)?\b")


def metric_names() -> set[str]:
    """Every novarank_/process_ metric family the rules read."""
    names: set[str] = set()
    for a in ALERTS:
        names.update(m.group(1) for m in METRIC.finditer(a.expr))
    return names
