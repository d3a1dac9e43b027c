"""The Health and Outcomes tiles of one day, from its rollups, each number against its SLO.

Health coverage is the share of requested feed slots that were filled (what a user
sees); catalog coverage (distinct items shown / catalog) is reported beside it.
Offline quality (analytics/quality.py) is the release's held-out evaluation: lift over
popularity, against the stable release, and above the data set's floor; online there is no
ground truth.
"""

from __future__ import annotations

from typing import Any

from novarank.analytics.quality import OfflineQuality
from novarank.analytics.sequential import TAU, confidence_radius, rate_difference, rate_two_sided_p
from novarank.analytics.slo import HEALTH, OUTCOMES, QUALITY, Objective
from novarank.analytics.srm import sample_ratio

EXPERIMENT_ALPHA = 0.05  # the experiment rows' always-valid level


def status_of(obj: Objective, value: float | None, samples: int) -> dict[str, Any]:
    if value is None or samples < obj.min_samples:
        verdict = "no_data"
    else:
        verdict = "ok" if obj.holds(value) else "breach"
    unit = f" {obj.unit}" if obj.unit else ""
    return {"name": obj.name, "metric": obj.metric, "value": value, "unit": obj.unit,
            "shown": "—" if value is None else f"{value:.4g}{unit}", "samples": samples,
            "objective": f"{obj.op} {obj.threshold:g}{unit}", "status": verdict}


def shown(name: str, metric: str, value: float | None, samples: int, note: str
          ) -> dict[str, Any]:
    """A row that is reported beside the objectives and never judged."""
    return {"name": name, "metric": metric, "value": value, "unit": "",
            "shown": "—" if value is None else f"{value:.4g}", "samples": samples,
            "objective": "shown, not judged", "status": "info", "note": note}


def health(summary: dict[str, Any]) -> dict[str, Any]:
    reqs = summary["tables"]["daily_requests"]
    feed = next((r for r in reqs if r["level"] == "route" and r["route"] == "feed"), None)
    total = next((r for r in reqs if r["level"] == "all"), None)
    errors = sum(e["errors"] for e in summary["tables"]["daily_errors"] if e["status"] >= 500)
    n_total = total["requests"] if total else 0
    n_feed = feed["requests"] if feed else 0
    values = {
        "p95_ms": feed["p95_ms"] if feed else None,
        "coverage": (feed["items_returned"] / feed["items_requested"])
        if feed and feed["items_requested"] else None,
        "error_rate": errors / (n_total + errors) if n_total + errors else None,
        "cache_hit_rate": (feed["cache_hits"] / feed["cache_lookups"])
        if feed and feed["cache_lookups"] else None,
    }
    samples = {"p95_ms": n_feed, "coverage": n_feed, "error_rate": n_total + errors,
               "cache_hit_rate": feed["cache_lookups"] if feed else 0}
    rows = [status_of(o, values[o.metric], samples[o.metric]) for o in HEALTH]
    return {"tile": "health", "date": summary["date"], "metrics": rows,
            "status": overall(rows), "server_errors": errors, "requests": n_total}


def quality_rows(quality: OfflineQuality | None, floor: float = 0.0
                 ) -> list[dict[str, Any]]:
    """The offline-quality objectives; without a release they have no data."""
    if quality is None:
        return [status_of(QUALITY[0], None, 0), status_of(QUALITY[1], None, 0)]
    return [status_of(obj, value, n) for obj, value, n in quality.rows(floor)]


def outcomes(summary: dict[str, Any], split: dict[str, float] | None = None,
             quality: OfflineQuality | None = None, recall_floor: float = 0.0,
             lifts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The day's outcomes against their objectives; `lifts` (analytics/cuped.py) adds each
    variant's clicks per user against the control, CUPED-adjusted."""
    out = summary["tables"]["daily_outcomes"]
    total = next((r for r in out if r["level"] == "all"), None)
    imps = total["impressions"] if total else 0
    ctr = total["clicks"] / imps if imps else None
    feed_rows = [r for r in summary["tables"]["daily_requests"]
                 if r["level"] == "group" and r["route"] == "feed"]
    by_variant: dict[str, int] = {}
    # the unit of assignment is the user: a heavy user's many requests are one draw
    unit = "users" if all(r.get("users") is not None for r in feed_rows) else "requests"
    for r in feed_rows:
        by_variant[r["variant"]] = by_variant.get(r["variant"], 0) + r[unit]
    n = sum(by_variant.values())
    allocation = {v: c / n for v, c in by_variant.items()} if n else {}
    srm = sample_ratio(by_variant, split) if split else None
    catalog = summary.get("catalog_items")
    rows = [status_of(OUTCOMES[0], ctr, imps),
            status_of(OUTCOMES[1], srm["p_value"] if srm else None, n if srm else 0),
            shown("Traffic allocation (max share deviation)", "allocation_max_deviation",
                  srm["max_deviation"] if srm else None, n if srm else 0,
                  f"by {unit}; judged by the SRM p-value above"),
            *experiment_rows(out, split), *(cuped_row(r) for r in lifts or []),
            *quality_rows(quality, recall_floor)]
    return {"tile": "outcomes", "date": summary["date"], "metrics": rows,
            "status": overall(rows), "allocation": allocation,
            "planned_split": split or {},
            "catalog_coverage": (total["items_shown"] / catalog) if total and catalog else None,
            "per_variant": [r for r in out if r["level"] == "group"]}


def experiment_rows(out: list[dict[str, Any]], split: dict[str, float] | None
                    ) -> list[dict[str, Any]]:
    """Each variant's CTR against the control (`control`, else the largest planned share),
    judged by the sequential engine the canary uses: an always-valid two-sided p-value and
    a 95% confidence sequence of the lift, so the tile can be read every day of an
    experiment without inflating false discoveries. Shown, not judged: a variant that
    loses is a finding, not an outage."""
    shown_by: dict[str, list[int]] = {}
    for r in out:
        if r["level"] == "group" and r["variant"] is not None:
            got = shown_by.setdefault(r["variant"], [0, 0])
            got[0] += r["impressions"]
            got[1] += r["clicks"]
    planned = split or {}
    base = "control" if "control" in shown_by else max(
        shown_by, key=lambda v: (planned.get(v, 0.0), shown_by[v][0]), default=None)
    rows = []
    for variant in sorted(shown_by):
        if variant == base or base is None:
            continue
        (ni, xi), (nc, xc) = shown_by[variant], shown_by[base]
        name = f"CTR lift: {variant} vs {base}"
        if min(ni, nc) == 0 or xc == 0:
            rows.append(shown(name, f"ctr_lift_{variant}", None, min(ni, nc),
                              "no impressions or clicks on one side yet"))
            continue
        est, var = rate_difference(xi, ni, xc, nc)
        radius = confidence_radius(float(var), TAU["ctr"], EXPERIMENT_ALPHA)
        ctr_c = xc / nc
        rows.append(_lift_row(name, f"ctr_lift_{variant}", float(est) / ctr_c,
                              [(float(est) - radius) / ctr_c, (float(est) + radius) / ctr_c],
                              rate_two_sided_p(xi, ni, xc, nc, TAU["ctr"]), min(ni, nc)))
    return rows


def _lift_row(name: str, metric: str, lift: float, interval: list[float], p: float,
              samples: int, note: str = "") -> dict[str, Any]:
    """A lift shown with its always-valid p-value and 95% confidence sequence."""
    lo, hi = interval
    return shown(name, metric, lift, samples, f"always-valid p={p:.3g}; 95% confidence "
                 f"sequence {lo:+.2%} to {hi:+.2%}{note}") | {"p_value": p,
                                                             "interval": [lo, hi]}


def cuped_row(lift: dict[str, Any]) -> dict[str, Any]:
    """One variant's CUPED lift of clicks per user, shown with what the adjustment bought."""
    name = f"Clicks per user (CUPED): {lift['variant']} vs {lift['control']}"
    samples = min(lift["users"], lift["control_users"])
    got = lift.get("cuped")
    if got is None:
        return shown(name, f"cuped_lift_{lift['variant']}", None, samples,
                     "too few users on one side")
    cut = lift.get("variance_reduction")
    return _lift_row(name, f"cuped_lift_{lift['variant']}", got["lift"], got["interval"],
                     got["p_value"], samples,
                     f"; variance {cut:.0%} lower than unadjusted" if cut is not None else ""
                     ) | {"variance_reduction": cut}


def overall(rows: list[dict[str, Any]]) -> str:
    """breach > no_data > ok; an `info` row is shown, never judged."""
    states = {r["status"] for r in rows} - {"info"}
    return "breach" if "breach" in states else "no_data" if "no_data" in states else "ok"
