"""The launch guide's Stage 1 success criteria, judged from the evidence pack.

Six criteria: every stakeholder notification sent and confirmed (delivered), the
infrastructure preflight passed (gate 0), dashboards active and receiving data, the
24-hour baseline started, no critical incident (no critical alert fired in the window,
read from Alertmanager), and every audience acknowledged. Each is met, not met, or
pending (its evidence does not exist yet), with what was read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from novarank.launch.delivery import AUDIENCES, acks, deliveries


def _criterion(n: int, name: str, met: bool | None, evidence: str) -> dict[str, Any]:
    return {"number": n, "criterion": name, "status": "pending" if met is None
            else "met" if met else "not met", "evidence": evidence}


def _gates(pack: Path) -> dict[int, dict[str, Any]]:
    path = pack / "gates.json"
    if not path.exists():
        return {}
    return {g["number"]: g for g in json.loads(path.read_text())["gates"]}


def critical_alerts(alertmanager: str) -> list[str]:
    """Critical alerts Alertmanager holds (firing, or resolved but still kept), by name."""
    r = httpx.get(f"{alertmanager.rstrip('/')}/api/v2/alerts", timeout=10,
                  params={"filter": 'severity="critical"'})
    r.raise_for_status()
    return sorted({a["labels"].get("alertname", "?") for a in r.json()
                   if not a["labels"].get("dryrun")})


def criteria(pack: Path, baseline: Path | None = None,
             alertmanager: str | None = None) -> list[dict[str, Any]]:
    gates, sent = _gates(pack), deliveries(pack)
    delivered = {d["audience"] for d in sent if d["outcome"] == "delivered"}
    failed = sorted({f"{d['audience']} via {d['channel']}" for d in sent
                     if d["outcome"] == "failed"})
    out = [_criterion(1, "All five stakeholder notifications sent and confirmed",
                      None if not sent else delivered >= set(AUDIENCES),
                      "not sent yet (`novarank launch notify --send`)" if not sent else
                      f"delivered to {len(delivered)}/5 audiences"
                      + (f"; failed: {', '.join(failed)}" if failed else ""))]
    pre = gates.get(0)
    out.append(_criterion(2, "Infrastructure verification passed",
                          None if pre is None else pre["verdict"] == "GREEN",
                          "no preflight in this pack" if pre is None else
                          f"gate 0 {pre['verdict']}" + (f": {pre['note']}" if pre.get("note")
                                                        else "")))
    tiles, board = gates.get(7), pack / "dashboard.json"
    live = (json.loads(board.read_text()) if board.exists() else {}).get("requests", 0)
    receiving = None if tiles is None else tiles["samples"] >= tiles["min_samples"] and live > 0
    out.append(_criterion(3, "Dashboards active and receiving data", receiving,
                          "no dashboard snapshot" if tiles is None else
                          f"gate 7 judged {tiles['samples']} feeds; the live page had {live} "
                          "requests"))
    report = baseline / "baseline.json" if baseline is not None else None
    started = report is not None and report.exists()
    out.append(_criterion(4, "24-hour baseline started", started or None,
                          f"report in {baseline}" if started else
                          "no baseline report (`novarank launch baseline`, or the "
                          "deploy/k8s/jobs/baseline.yaml Job)"))
    if alertmanager is None:
        out.append(_criterion(5, "No critical incident during the baseline", None,
                              "no --alertmanager-url: alerts not read"))
    else:
        try:
            names = critical_alerts(alertmanager)
            out.append(_criterion(5, "No critical incident during the baseline", not names,
                                  "no critical alert in Alertmanager" if not names else
                                  f"critical alerts: {', '.join(names)}"))
        except (httpx.HTTPError, ValueError) as exc:
            out.append(_criterion(5, "No critical incident during the baseline", None,
                                  f"Alertmanager not readable: {exc}"))
    acked = {a["audience"] for a in acks(pack)}
    missing = [a for a in AUDIENCES if a not in acked]
    out.append(_criterion(6, "Every stakeholder acknowledged readiness",
                          None if not sent else not missing,
                          "nothing sent to acknowledge" if not sent else
                          f"acknowledged by {len(acked)}/5"
                          + (f"; waiting for {', '.join(missing)}" if missing else "")))
    return out


def render(rows: list[dict[str, Any]]) -> str:
    mark = {"met": "[x]", "not met": "[!]", "pending": "[ ]"}
    met = sum(r["status"] == "met" for r in rows)
    lines = [f"Stage 1 criteria: {met}/{len(rows)} met"]
    lines += [f"- {mark[r['status']]} {r['number']}. {r['criterion']} — {r['status']}: "
              f"{r['evidence']}" for r in rows]
    return "\n".join(lines)


SECTION = "## Stage 1 criteria"


def record_section(pack: Path, rows: list[dict[str, Any]]) -> None:
    """Put the checklist and the deliveries into GO_NO_GO.md (replacing an older copy)."""
    path = pack / "GO_NO_GO.md"
    if not path.exists():
        return
    sent = deliveries(pack)
    lines = [SECTION, "", render(rows), ""]
    if sent:
        lines += ["| audience | channel | outcome | attempts | message id | at |",
                  "|---|---|---|---:|---|---|"]
        lines += [f"| {d['audience']} | {d['channel']} | {d['outcome']} | "
                  f"{d.get('attempts', '')} | {d['message_id']} | {d['at']} |" for d in sent]
        lines += [""]
    lines += ["Acknowledged: " + (", ".join(f"{a['audience']} by {a['by']} ({a['at']})"
                                             for a in acks(pack)) or "nobody yet"), ""]
    text = path.read_text()
    head = text.split(SECTION, 1)[0].rstrip() + "\n\n"
    path.write_text(head + "\n".join(lines))

