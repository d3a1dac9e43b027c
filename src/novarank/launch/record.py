"""The go/no-go record after the dry-run: sign-off by role, and status messages rendered
from the measured record for each audience (never typed by hand)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from novarank.errors import ConfigError
from novarank.ops.ownership import ROLES

REQUIRED_ROLES = ROLES  # the four primary owners of deploy/ownership.yaml
AUDIENCES = ("product", "qa", "ops", "tech-lead", "management")


def load(pack: Path) -> dict[str, Any]:
    path = pack / "gates.json"
    if not path.exists():
        raise ConfigError(f"{path} not found: run `novarank launch dry-run` first")
    return json.loads(path.read_text())


def decision(record: dict[str, Any]) -> dict[str, Any]:
    """GO needs the gates' GO and a signature from every required role."""
    signed = {s["role"] for s in record.get("signoffs", [])}
    missing = [r for r in REQUIRED_ROLES if r not in signed]
    gates_go = record["decision"]["decision"] == "GO"
    return {"decision": "GO" if gates_go and not missing else "NO-GO", "gates": record[
        "decision"]["decision"], "missing_signoffs": missing}


def sign(pack: Path, approver: str, role: str) -> dict[str, Any]:
    if role not in REQUIRED_ROLES:
        raise ConfigError(f"--role must be one of {list(REQUIRED_ROLES)}, got {role!r}")
    if not approver.strip():
        raise ConfigError("--approver must not be empty")
    record = load(pack)
    record.setdefault("signoffs", [])
    record["signoffs"] = [s for s in record["signoffs"] if s["role"] != role]
    record["signoffs"].append({"approver": approver.strip(), "role": role,
                               "signed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "gates_decision": record["decision"]["decision"]})
    record["final"] = decision(record)
    (pack / "gates.json").write_text(json.dumps(record, indent=2, default=str))
    _render_signoffs(pack, record)
    return record["final"]


def _render_signoffs(pack: Path, record: dict[str, Any]) -> None:
    path = pack / "GO_NO_GO.md"
    text = path.read_text()
    head = text.split("## Sign-off")[0]
    rows = {s["role"]: s for s in record.get("signoffs", [])}
    lines = ["## Sign-off", "", "| approver | role | signed at | gates said |",
             "|---|---|---|---|"]
    for role in REQUIRED_ROLES:
        s = rows.get(role)
        lines.append(f"| {s['approver'] if s else ''} | {role} | "
                     f"{s['signed_at'] if s else ''} | {s['gates_decision'] if s else ''} |")
    final = record["final"]
    lines += ["", f"Final decision: **{final['decision']}** (gates: {final['gates']}; "
              f"missing sign-offs: {', '.join(final['missing_signoffs']) or 'none'})"]
    path.write_text(head + "\n".join(lines) + "\n")


def notify(pack: Path, audience: str) -> str:
    """The status message for one audience, every number taken from the record."""
    if audience not in AUDIENCES:
        raise ConfigError(f"--audience must be one of {list(AUDIENCES)}, got {audience!r}")
    record = load(pack)
    final = decision(record)
    gates = {g["number"]: g for g in record["gates"]}
    meta = record["meta"]
    green = sum(g["verdict"] == "GREEN" for g in gates.values())
    blocking = ", ".join(f"gate {b['gate']} {b['name']} ({b['verdict']})"
                         for b in record["decision"]["blocking"]) or "none"

    def val(n: int, *path: str) -> Any:
        cur: Any = gates[n]["details"]
        for p in path:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return cur

    tiles = gates[7]["details"]
    health = tiles.get("health", {}) if isinstance(tiles, dict) else {}
    outcomes = tiles.get("outcomes", {}) if isinstance(tiles, dict) else {}

    def tile(group: dict, metric: str) -> str:
        m = group.get(metric, {})
        v = m.get("value")
        return "n/a" if v is None else f"{v:.4g} ({m.get('status')})"

    head = (f"Release {meta['release']} (code {meta['code_version']}), dry-run "
            f"{meta['finished_at']}: {green}/{len(gates)} gates green; "
            f"decision {final['decision']}.")
    body = {
        "product": [f"Outcomes: CTR {tile(outcomes, 'ctr')}, allocation SRM p-value "
                    f"{tile(outcomes, 'allocation_srm_p')}, offline Recall@10 "
                    f"{tile(outcomes, 'recall')}, lift over popularity (95% CI low) "
                    f"{tile(outcomes, 'recall_lift_low')}.",
                    f"Sessions simulated: {meta['traffic'].get('sessions')}."],
        "qa": [f"Smoke tests per cohort: {val(2)}.",
               f"Telemetry partitions: {val(5, 'event_partitions')}.",
               f"Join integrity: {val(5, 'join_integrity')}."],
        "ops": [f"Health: p95 {tile(health, 'p95_ms')} ms, error rate "
                f"{tile(health, 'error_rate')}, cache hit rate {tile(health, 'cache_hit_rate')}.",
                f"Cache warm plan: {val(3, 'cache_manifest')}.",
                f"Alerting armed: {val(8, 'ok')}; kill switch drill: {val(9, 'kill_switch')}.",
                f"Rollback drill: {_drill(val(9, 'automatic_rollback'))}.",
                f"On-call problems: {val(10, 'problems')}."],
        "tech-lead": [f"Blocking: {blocking}.",
                      *(f"Why gate {b['gate']}: {b['why']}." for b in record["decision"][
                          "blocking"] if b.get("why")),
                      f"A/B: p = {val(4, 'srm_p_value')}, users in two variants "
                      f"{val(4, 'users_in_two_variants')}.",
                      f"Missing sign-offs: {', '.join(final['missing_signoffs']) or 'none'}."],
        "management": [f"Blocking items: {blocking}.",
                       f"Sign-offs missing: {', '.join(final['missing_signoffs']) or 'none'}."],
    }[audience]
    return "\n".join([head, *body])


def _drill(d: Any) -> str:
    if not isinstance(d, dict) or "status" not in d:
        return str((d or {}).get("skipped", "not run")) if isinstance(d, dict) else "not run"
    return (f"{d['status']} ({d['reason'][:80]}), detected in {d['time_to_detect_s']} s, "
            f"restored in {d['time_to_rollback_s']} s, {d['failed_outside_canary']} failed "
            "requests outside the canary")
