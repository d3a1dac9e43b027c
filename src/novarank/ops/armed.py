"""Is alerting armed? promtool and amtool pass, and a test alert reaches its receiver.

Against staging (`check_staging`) the repository's files are not enough: the rules the
staging Prometheus has loaded must be the generated ones, and the staging Alertmanager's
own configuration must route a dry-run alert to the dry-run receiver.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from novarank.ops.webhook import AlertSink, serve

ROUTE_CASES = (
    ({"severity": "critical", "team": "sre"}, "pagerduty-oncall,slack-sre"),
    ({"severity": "warning", "team": "data"}, "email-data"),
    ({"severity": "warning", "team": "sre"}, "slack-sre"),
    ({"dryrun": "true", "severity": "critical"}, "webhook-dryrun"),
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check(deploy: Path, timeout_s: float = 20.0) -> dict[str, Any]:
    """Run the three checks; a missing tool is reported (the gate is then inconclusive)."""
    tools = {t: shutil.which(t) for t in ("promtool", "amtool", "prometheus-alertmanager")}
    missing = [t for t, p in tools.items() if p is None]
    if missing:
        return {"ran": False, "missing_tools": missing}
    rules = subprocess.run([tools["promtool"], "test", "rules",
                            str(deploy / "prometheus" / "alerts_test.yml")],
                           capture_output=True, text=True)
    am_cfg = deploy / "alertmanager" / "alertmanager.yml"
    routes = {}
    for labels, receivers in ROUTE_CASES:
        res = subprocess.run([tools["amtool"], "config", "routes", "test",
                              f"--config.file={am_cfg}", f"--verify.receivers={receivers}",
                              *(f"{k}={v}" for k, v in labels.items())], capture_output=True)
        routes[",".join(f"{k}={v}" for k, v in labels.items())] = res.returncode == 0
    delivered, seconds = _deliver(tools, am_cfg, timeout_s)
    return {"ran": True, "promtool_tests_pass": rules.returncode == 0,
            "promtool_output": (rules.stdout + rules.stderr)[-400:],
            "routes_pass": routes, "test_alert_delivered": delivered,
            "delivery_seconds": seconds, "checks": 1 + len(routes) + 1,
            "ok": rules.returncode == 0 and all(routes.values()) and delivered}


def _deliver(tools: dict[str, str | None], am_cfg: Path, timeout_s: float
             ) -> tuple[bool, float | None]:
    hook_port, am_port, cluster_port = _port(), _port(), _port()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "am.yml"
        cfg.write_text(am_cfg.read_text().replace("http://127.0.0.1:9095/alerts",
                                                  f"http://127.0.0.1:{hook_port}/alerts"))
        sink = AlertSink()
        hook = serve(hook_port, sink)
        am = subprocess.Popen([tools["prometheus-alertmanager"], f"--config.file={cfg}",
                               f"--storage.path={tmp}/data",
                               f"--web.listen-address=127.0.0.1:{am_port}",
                               f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{am_port}"
        try:
            deadline = time.monotonic() + timeout_s
            while subprocess.run([tools["amtool"], "alert", "query", f"--alertmanager.url={url}"],
                                 capture_output=True).returncode != 0:
                if time.monotonic() > deadline:
                    return False, None
                time.sleep(0.2)
            t0 = time.monotonic()
            subprocess.run([tools["amtool"], "alert", "add", "alertname=NovarankDryRun",
                            "dryrun=true", "severity=critical", f"--alertmanager.url={url}"],
                           capture_output=True)
            while not sink.received:
                if time.monotonic() > deadline + timeout_s:
                    return False, None
                time.sleep(0.1)
            ok = sink.received[0].get("receiver") == "webhook-dryrun"
            return ok, round(time.monotonic() - t0, 2)
        finally:
            am.terminate()
            am.wait(timeout=10)
            hook.shutdown()


def _rule_key(expr: str) -> str:
    """An expression as Prometheus prints it back: no spaces, label matchers sorted."""
    import re

    flat = "".join(expr.split())
    return re.sub(r"\{([^{}]*)\}",
                  lambda m: "{" + ",".join(sorted(m.group(1).split(","))) + "}", flat)


def expected_rules(deploy: Path) -> dict[str, dict[str, Any]]:
    import yaml

    doc = yaml.safe_load((deploy / "prometheus" / "alerts.yml").read_text())
    return {r["alert"]: {"expr": _rule_key(str(r["expr"])), "labels": r.get("labels", {})}
            for g in doc["groups"] for r in g["rules"] if "alert" in r}


def check_staging(prometheus: str, alertmanager: str, deploy: Path,
                  timeout_s: float = 20.0) -> dict[str, Any]:
    """The staging Prometheus's loaded alert rules against the generated ones, and a
    dry-run alert posted to the staging Alertmanager routed to the dry-run receiver."""
    import httpx

    out: dict[str, Any] = {"prometheus": prometheus, "alertmanager": alertmanager}
    want = expected_rules(deploy)
    try:
        groups = httpx.get(f"{prometheus}/api/v1/rules", params={"type": "alert"},
                           timeout=10).json()["data"]["groups"]
        loaded = {r["name"]: {"expr": _rule_key(r["query"]), "labels": r.get("labels", {})}
                  for g in groups for r in g["rules"] if r.get("type") == "alerting"}
        out["rules_missing"] = sorted(set(want) - set(loaded))
        out["rules_unexpected"] = sorted(set(loaded) - set(want))
        out["rules_differ"] = sorted(n for n in set(want) & set(loaded) if want[n] != loaded[n])
        out["rules_loaded"] = len(loaded)
        out["rules_match"] = not (out["rules_missing"] or out["rules_unexpected"]
                                  or out["rules_differ"])
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        out["rules_match"], out["rules_error"] = False, f"{type(exc).__name__}: {exc}"[:200]
    out["dryrun_alert_routed"] = _staging_route(alertmanager, timeout_s, out)
    out["ok"] = bool(out["rules_match"] and out["dryrun_alert_routed"])
    out["checks"] = 2
    return out


def _staging_route(alertmanager: str, timeout_s: float, out: dict[str, Any]) -> bool:
    """Post a dry-run alert; the staging Alertmanager must route it to webhook-dryrun."""
    from datetime import UTC, datetime, timedelta

    import httpx

    marker = f"dryrun-{int(time.time() * 1000)}"
    ends = datetime.now(UTC) + timedelta(seconds=max(60.0, 3 * timeout_s))
    alert = [{"labels": {"alertname": "NovarankDryRun", "dryrun": "true",
                         "severity": "critical", "run": marker},
              "annotations": {"summary": "novarank launch dry-run: routing check"},
              # resolves by itself: the check must not leave staging paging forever
              "endsAt": ends.isoformat(timespec="seconds").replace("+00:00", "Z")}]
    try:
        status = httpx.get(f"{alertmanager}/api/v2/status", timeout=10).json()
        out["alertmanager_version"] = status.get("versionInfo", {}).get("version")
        httpx.post(f"{alertmanager}/api/v2/alerts", json=alert, timeout=10).raise_for_status()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = httpx.get(f"{alertmanager}/api/v2/alerts",
                              params={"filter": f'run="{marker}"'}, timeout=10).json()
            if found:
                receivers = sorted(r["name"] for r in found[0].get("receivers", []))
                out["dryrun_receivers"] = receivers
                return receivers == ["webhook-dryrun"]
            time.sleep(0.2)
        out["dryrun_error"] = "the posted alert never showed up"
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        out["dryrun_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return False
