"""STAGING_BASELINE_REPORT.md + baseline.json + PNG plots from a baseline run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from novarank.launch.baseline import TARGETS, BaselineRun, aggregate, judge, windows
from novarank.launch.schedule import PHASES

JUDGED = "after warm-up (phases 2-4)"


def build(run: BaselineRun, meta: dict[str, Any]) -> dict[str, Any]:
    bucket_wall = run.schedule.wall_s / len(run.intervals)
    per_interval = [iv.summary(bucket_wall) for iv in run.intervals]
    # cpu seconds are cumulative: report utilisation per interval
    prev = None
    for row in per_interval:
        cpu = row.get("cpu_s")
        row["cpu_util"] = round((cpu - prev) / bucket_wall, 3) if cpu is not None and \
            prev is not None else None
        prev = cpu if cpu is not None else prev
    wins = windows(run)
    judged = {}
    for name, idx in wins.items():
        values = aggregate(run, idx)
        rows = []
        for t in TARGETS:
            if name == PHASES[0].name and t.metric == "cache_hit_rate":
                rows.append({"target": t.name, "objective": f"{t.op} {t.threshold:g}",
                             "value": values.get(t.metric), "samples": values.get("lookups"),
                             "min_samples": t.min_samples,
                             "verdict": "not judged (cache initialisation)"})
            else:
                rows.append(judge(values, t))
        judged[name] = {"intervals": idx, "values": values, "targets": rows}
    final = judged[JUDGED]["targets"]
    verdicts = {r["verdict"] for r in final}
    overall = "fail" if "fail" in verdicts else "inconclusive" if "inconclusive" in verdicts \
        else "pass"
    return {"meta": meta, "schedule": {"duration_s": run.schedule.duration_s,
                                       "speedup": run.schedule.speedup,
                                       "peak_rps": run.schedule.peak_rps,
                                       "wall_s": round(run.wall_s, 1)},
            "load": {"scheduled": run.scheduled, "late_sends": run.late_sends,
                     "late_ratio": round(run.late_sends / run.scheduled, 5)
                     if run.scheduled else None, "events_posted": run.events_posted,
                     "uploads": run.uploads, "uploads_shown_in_feeds": run.uploads_shown},
            "warm_plan": run.warm, "intervals": per_interval, "windows": judged,
            "verdict": overall}


def target_lines(keys: set[str]) -> list[tuple[float, str]]:
    """The guide's targets for the series a plot draws, as (threshold, legend label)."""
    from novarank.launch.baseline import TARGETS

    return [(float(t.threshold), f"target: {t.name.lower()} {t.op} {t.threshold:g}")
            for t in TARGETS if t.metric in keys]


def plots(report: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["intervals"]
    x = [r["start_h"] for r in rows]
    specs = [
        ("latency.png", "Latency percentiles (ms)",
         [("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"),
          ("hit_p95_ms", "p95 hit"), ("miss_p95_ms", "p95 miss")]),
        ("throughput.png", "Throughput (feed requests/s, wall clock)", [("rps", "rps")]),
        ("cache_hit_rate.png", "Cache hit rate", [("cache_hit_rate", "hit rate")]),
        ("error_rate.png", "Error rate", [("error_rate", "errors"),
                                          ("fallback_rate", "fallbacks")]),
        ("memory.png", "Service memory (RSS MB)", [("rss_mb", "RSS")]),
    ]
    written = []
    out.mkdir(parents=True, exist_ok=True)
    hours = report["schedule"]["duration_s"] / 86_400  # phases are defined on 24 h
    for fname, title, series in specs:
        fig, ax = plt.subplots(figsize=(8, 3.4))
        keys = {key for key, _ in series}
        for key, label in series:
            ax.plot(x, [r.get(key) if r.get(key) is not None else float("nan") for r in rows],
                    marker=".", label=label)
        for threshold, label in target_lines(keys):  # a breach shows without the table
            ax.axhline(threshold, color="red", lw=1.0, ls=":", label=label)
        for p in PHASES:
            if p.start_h > 0:
                ax.axvline(p.start_h * hours, color="grey", lw=0.6, ls="--")
            ax.text((p.start_h + p.end_h) / 2 * hours, 1.0, p.name.split(" &")[0],
                    transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                    fontsize=7, color="dimgrey")
        ax.set_title(title, pad=14)
        ax.set_xlabel("simulated hour")
        ax.grid(alpha=0.3)
        if len(ax.get_lines()) > 1:
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / fname, dpi=90)
        plt.close(fig)
        written.append(fname)
    return written


def _fmt(v: Any, metric: str = "") -> str:
    if v is None:
        return "—"
    if metric == "start_h":
        return f"{v:g}"
    if isinstance(v, float):
        return f"{v:.4f}" if ("rate" in metric or v < 1) else f"{v:.1f}"
    return str(v)


def time_model_line(report: dict[str, Any]) -> str:
    """How the service's clocks relate to the simulated one (what the cache numbers mean)."""
    tm = report["meta"].get("time_model") or {}
    speedup = report["schedule"]["speedup"]
    if speedup == 1.0:
        return "real time: TTLs and refresh periods as configured"
    if tm.get("scaled"):
        return (f"compressed {speedup:g}x; the service's TTLs and refresh periods were scaled "
                f"with it ({tm.get('settings')})")
    return (f"compressed {speedup:g}x against a service whose TTLs were not scaled: its cache "
            "numbers are valid only for real-time runs (entries outlive their simulated TTL)")


def markdown(report: dict[str, Any], images: list[str]) -> str:
    s, load = report["schedule"], report["load"]
    lines = [
        "# Staging baseline report", "",
        f"Verdict: **{report['verdict'].upper()}** (judged after warm-up; a window with too "
        "few samples is inconclusive, never a pass).", "",
        f"- collection: {s['duration_s'] / 3600:g} h simulated at speedup {s['speedup']:g} "
        f"({s['wall_s']} s of wall clock), peak {s['peak_rps']:g} sessions/s",
        f"- target: {report['meta'].get('url')} (release {report['meta'].get('release')})",
        f"- load: {load['scheduled']:,} scheduled sessions, {load['late_sends']} sent late "
        f"({load['late_ratio']}), {load['events_posted']:,} events posted, "
        f"{load['uploads']} new uploads, {load['uploads_shown_in_feeds']} of them shown in "
        "feeds",
        f"- warm plan: {report.get('warm_plan')}",
        f"- measured at {report['meta'].get('finished_at')} with `{report['meta'].get('command')}`",
        f"- time model: {time_model_line(report)}",
        "", "## Targets", "",
        "| window | target | objective | measured | samples | verdict |",
        "|---|---|---|---|---|---|"]
    for name, w in report["windows"].items():
        hours = [report["intervals"][i]["start_h"] for i in w["intervals"]]
        step_h = report["schedule"]["duration_s"] / 3600 / len(report["intervals"])
        span = f"{min(hours):g}-{max(hours) + step_h:g} h" if hours else "empty"
        for t in w["targets"]:
            lines.append(f"| {name} ({span}) | {t['target']} | {t['objective']} | "
                         f"{_fmt(t['value'], t['target'].lower())} | {t['samples']} | "
                         f"{t['verdict']} |")
    lines += ["", "## Per interval", "",
              "| h | phase | requests | rps | p50 | p95 | p99 | hit p95 | miss p95 | hit rate "
              "| errors | fallbacks | RSS MB | CPU | telemetry lag s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["intervals"]:
        lines.append("| " + " | ".join(_fmt(r.get(k), k) for k in (
            "start_h", "phase", "requests", "rps", "p50_ms", "p95_ms", "p99_ms", "hit_p95_ms",
            "miss_p95_ms", "cache_hit_rate", "errors", "fallbacks", "rss_mb", "cpu_util",
            "telemetry_lag_s")) + " |")
    lines += ["", "Latencies in ms, timed by the client from each request's intended send "
              "time (open loop). RSS, CPU and telemetry lag are scraped from the service's "
              "/metrics; a change of process_start_time_seconds counts as a restart.", "",
              "## Plots", ""] + [f"![{i}](plots/{i})" for i in images]
    return "\n".join(lines) + "\n"


def write(report: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    images = plots(report, out / "plots")
    (out / "baseline.json").write_text(json.dumps(report, indent=2, default=str))
    path = out / "STAGING_BASELINE_REPORT.md"
    path.write_text(markdown(report, images))
    return path
