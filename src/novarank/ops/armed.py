"""Is alerting armed? promtool and amtool pass, and a test alert reaches its receiver."""

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
            "routes_pass": routes, "test_alert_delivered": delivered,
            "delivery_seconds": seconds,
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
