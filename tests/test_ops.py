"""Operations as code, checked by the real tools: promtool, amtool, a running Alertmanager."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from novarank.ops import oncall
from novarank.ops.alerts import ALERTS, metric_names, rules_yaml, unit_tests_yaml
from novarank.ops.webhook import AlertSink, serve
from tests.services import tool

ROOT = Path(__file__).resolve().parent.parent
PROM, AM = ROOT / "deploy" / "prometheus", ROOT / "deploy" / "alertmanager" / "alertmanager.yml"


def test_generated_rule_files_are_current():
    assert (PROM / "alerts.yml").read_text() == rules_yaml()
    assert (PROM / "alerts_test.yml").read_text() == unit_tests_yaml()


def test_at_least_twenty_alerts_with_the_guides_six():
    names = {a.name for a in ALERTS}
    assert len(names) == len(ALERTS) >= 20
    for required in ("NovarankHighErrorRate", "NovarankLowCacheHitRate",
                     "NovarankHighLatencyP95", "NovarankPodRestarted",
                     "NovarankMemoryPressure", "NovarankInsufficientReplicas",
                     "NovarankAvailabilityBurnFast", "NovarankLatencyBurnFast",
                     "NovarankTelemetryLag", "NovarankIngestStalled", "NovarankFallbackRateHigh",
                     "NovarankSampleRatioMismatch"):
        assert required in names


def test_promtool_checks_and_unit_tests_every_alert(tmp_path):
    promtool = tool("promtool")
    assert subprocess.run([promtool, "check", "rules", str(PROM / "alerts.yml")],
                          capture_output=True).returncode == 0
    res = subprocess.run([promtool, "test", "rules", str(PROM / "alerts_test.yml")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    doc = yaml.safe_load((PROM / "alerts_test.yml").read_text())
    fires = [t for t in doc["tests"] if t["name"].endswith("fires")]
    silent = [t for t in doc["tests"] if t["name"].endswith("silent when healthy")]
    assert len(fires) == len(silent) == len(ALERTS)
    assert all(len(t["alert_rule_test"]) == 2 for t in fires)  # firing + pending


def test_a_broken_rule_fails_promtool(tmp_path):
    promtool = tool("promtool")
    broken = tmp_path / "alerts.yml"
    broken.write_text(rules_yaml().replace("> 0.01", "> 0.5", 1))  # threshold drift
    (tmp_path / "alerts_test.yml").write_text(unit_tests_yaml())
    res = subprocess.run([promtool, "test", "rules", str(tmp_path / "alerts_test.yml")],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "NovarankHighErrorRate" in res.stdout + res.stderr


ROUTES = [
    ({"severity": "critical", "team": "sre"}, "pagerduty-oncall,slack-sre"),
    ({"severity": "critical", "team": "data"}, "pagerduty-oncall,slack-sre"),
    ({"severity": "warning", "team": "sre"}, "slack-sre"),
    ({"severity": "warning", "team": "data"}, "email-data"),
    ({"severity": "info", "team": "sre"}, "slack-sre"),
    ({"severity": "critical", "team": "sre", "dryrun": "true"}, "webhook-dryrun"),
]


@pytest.mark.parametrize(("labels", "receivers"), ROUTES)
def test_alert_routing(labels, receivers):
    amtool = tool("amtool")
    args = [amtool, "config", "routes", "test", f"--config.file={AM}",
            f"--verify.receivers={receivers}", *(f"{k}={v}" for k, v in labels.items())]
    res = subprocess.run(args, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_every_alert_reaches_a_human_and_misroutes_fail():
    amtool = tool("amtool")
    for a in ALERTS:
        expected = "pagerduty-oncall,slack-sre" if a.severity == "critical" else (
            "email-data" if a.team == "data" else "slack-sre")
        res = subprocess.run([amtool, "config", "routes", "test", f"--config.file={AM}",
                              f"--verify.receivers={expected}", f"severity={a.severity}",
                              f"team={a.team}", f"alertname={a.name}"], capture_output=True)
        assert res.returncode == 0, a.name
    wrong = subprocess.run([amtool, "config", "routes", "test", f"--config.file={AM}",
                            "--verify.receivers=email-data", "severity=warning", "team=sre"],
                           capture_output=True)
    assert wrong.returncode != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_test_alert_reaches_the_webhook_through_alertmanager(tmp_path):
    binary = tool("prometheus-alertmanager")
    amtool = tool("amtool")
    hook_port, am_port, cluster_port = _free_port(), _free_port(), _free_port()
    cfg = tmp_path / "am.yml"
    cfg.write_text(AM.read_text().replace("http://127.0.0.1:9095/alerts",
                                          f"http://127.0.0.1:{hook_port}/alerts"))
    sink = AlertSink(tmp_path / "alerts.jsonl")
    hook = serve(hook_port, sink)
    am = subprocess.Popen([binary, f"--config.file={cfg}", f"--storage.path={tmp_path}/data",
                           f"--web.listen-address=127.0.0.1:{am_port}",
                           f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{am_port}"
        deadline = time.monotonic() + 20
        while subprocess.run([amtool, "check-config", str(cfg)],
                             capture_output=True).returncode != 0 or subprocess.run(
                [amtool, "alert", "query", f"--alertmanager.url={url}"],
                capture_output=True).returncode != 0:
            assert time.monotonic() < deadline, "alertmanager did not start"
            time.sleep(0.2)
        subprocess.run([amtool, "alert", "add", "alertname=NovarankDryRun", "dryrun=true",
                        "severity=critical", "team=sre", f"--alertmanager.url={url}",
                        "--annotation=summary=dry-run"], check=True, capture_output=True)
        deadline = time.monotonic() + 20
        while not sink.received:
            assert time.monotonic() < deadline, "the test alert never reached the webhook"
            time.sleep(0.1)
        got = sink.received[0]
        assert got["receiver"] == "webhook-dryrun"
        assert got["alerts"][0]["labels"]["alertname"] == "NovarankDryRun"
    finally:
        am.terminate()
        am.wait(timeout=10)
        hook.shutdown()


def test_every_metric_a_rule_reads_is_exported(small_model, tmp_path):
    from fastapi.testclient import TestClient

    from novarank.api import create_app
    from novarank.config import ServiceSettings
    from novarank.release import save_release

    save_release(small_model, tmp_path / "rel")
    s = ServiceSettings(release=tmp_path / "rel", state_url=f"sqlite:///{tmp_path}/s.db",
                        events_url=f"file://{tmp_path}/lake")
    with TestClient(create_app(s)) as c:
        c.get("/v1/users/u1/feed")
        c.post("/v1/events", json=[{"type": "click", "user_id": "u1", "item_id": "v1"},
                                   {"type": "nope"}])
        text = c.get("/metrics").text
    exported = {m.group(1) for m in re.finditer(r"^# TYPE (\w+) ", text, re.M)}
    missing = sorted(metric_names() - exported)
    assert not missing, f"rules read metrics the service does not export: {missing}"


def test_every_runbook_exists_with_the_escalation_path():
    books = {a.runbook for a in ALERTS}
    assert len(books) >= 7
    others = {f"docs/runbooks/{p.name}" for p in (ROOT / "docs/runbooks").glob("*.md")
              if p.stem not in ("hourly-checklist", "incident-log-template")}
    for book in books | others:
        text = (ROOT / book).read_text()
        for section in ("## Alert", "## Diagnosis", "## Remediation", "## Escalation"):
            assert section in text, (book, section)
        assert "5 min" in text and "15 min" in text and "30 min" in text and "60 min" in text
    assert (ROOT / "docs/runbooks/hourly-checklist.md").exists()
    assert (ROOT / "docs/runbooks/incident-log-template.md").exists()
    remediations = " ".join((ROOT / b).read_text() for b in books)
    assert "kill_switch" in remediations and "rollout undo" in remediations


def _utc(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def test_oncall_covers_the_window_and_names_gaps(tmp_path):
    path = ROOT / "deploy" / "oncall.yaml"
    assert oncall.check(path, _utc("2026-11-20T00:00:00"), _utc("2026-12-20T00:00:00")) == []
    # a recurring layer never runs out: a window years ahead is covered too
    assert oncall.check(path, _utc("2031-06-01T00:00:00"), _utc("2031-09-01T00:00:00")) == []
    cfg = oncall.load(path)
    shifts = cfg.shifts(_utc("2026-12-20T00:00:00"), _utc("2026-12-30T00:00:00"))
    assert [(s.primary, s.secondary) for s in shifts if s.start == _utc("2026-12-24T00:00:00")
            ] == [("bruno", "chen")]  # the holiday override replaces the layer
    doc = yaml.safe_load(path.read_text())
    doc["overrides"].append({"start": "2029-02-01T00:00:00Z", "end": "2029-02-03T00:00:00Z",
                             "primary": None, "reason": "offsite, nobody assigned"})
    doc["layers"][0]["people"][1] = "nobody"
    doc["escalation"].pop()  # no L4
    broken = tmp_path / "oncall.yaml"
    broken.write_text(yaml.safe_dump(doc))
    issues = oncall.check(broken, _utc("2029-01-20T00:00:00"), _utc("2029-03-01T00:00:00"))
    assert ("overrides: nobody is on call from 2029-02-01T00:00:00+00:00 to "
            "2029-02-03T00:00:00+00:00 (offsite, nobody assigned)") in issues
    assert "rotation: nobody is on call from 2029-02-01T00:00:00+00:00 (window ends " \
           "2029-03-01T00:00:00+00:00)" in issues
    assert any(p.startswith("escalation: expected") for p in issues)
    assert "layers: 'nobody' in layer primary has no contact entry" in issues
    # fixed dated shifts are still read, and still end
    dated = {**yaml.safe_load(path.read_text()), "layers": [], "overrides": [], "rotation": [
        {"start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z", "primary": "ana",
         "secondary": "bruno"}]}
    broken.write_text(yaml.safe_dump(dated))
    assert oncall.check(broken, _utc("2026-11-20T00:00:00"), _utc("2026-12-05T00:00:00")) == [
        "rotation: nobody is on call from 2026-12-01T00:00:00+00:00 "
        "(window ends 2026-12-05T00:00:00+00:00)"]


def test_kubernetes_manifests_validate_against_the_schemas(tmp_path):
    import kubernetes_validate

    docs = []
    for path in sorted((ROOT / "deploy" / "k8s").rglob("*.yaml")):  # jobs/ too
        for doc in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(doc, "1.30.0", strict=True)
            docs.append(doc)
    kinds = {(d["kind"], d["metadata"].get("name", d["metadata"].get("generateName")))
             for d in docs}
    assert {("Deployment", "novarank"), ("HorizontalPodAutoscaler", "novarank"),
            ("PodDisruptionBudget", "novarank"), ("Deployment", "novarank-ingest"),
            ("CronJob", "novarank-rollup"), ("Secret", "novarank-admin"),
            ("Job", "novarank-rollout-"), ("CronJob", "novarank-train")} <= kinds
    train = next(d for d in docs if d["kind"] == "CronJob"
                 and d["metadata"]["name"] == "novarank-train")
    driver = train["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert "--engine spark" in " ".join(driver["command"])
    submit = next(e["value"] for e in driver["env"] if e["name"] == "PYSPARK_SUBMIT_ARGS")
    import importlib.metadata
    import importlib.util

    pinned = next(line.split("==")[1] for line in (ROOT / "constraints.txt").read_text()
                  .splitlines() if line.startswith("pyspark=="))
    assert f"apache/spark:{pinned}" in submit  # executors run the driver's Spark version
    if importlib.util.find_spec("pyspark"):
        assert importlib.metadata.version("pyspark") == pinned
    api = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] ==
               "novarank")
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert api["spec"]["replicas"] == 3
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    probes = api["spec"]["template"]["spec"]["containers"][0]
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # production requires keys: auth on, and the key file it names is a mounted Secret
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert config["NOVARANK_AUTH"] == "on"
    mounts = {m["name"]: m["mountPath"] for m in probes["volumeMounts"]}
    secrets = {v["name"]: v["secret"]["secretName"]
               for v in api["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert config["NOVARANK_API_KEYS_FILE"].startswith(mounts["api-keys"] + "/")
    assert ("Secret", secrets["api-keys"]) in kinds
    for doc in docs:  # no manifest turns development mode on
        env = doc.get("data", {}) if doc["kind"] == "ConfigMap" else {}
        assert env.get("NOVARANK_AUTH", "on") == "on", doc["metadata"]["name"]
    # a broken manifest is caught, not waved through
    bad = dict(api, spec={**api["spec"], "replicas": "three"})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.30.0", strict=True)


def test_dashboards_are_generated_and_current():
    from novarank.ops.dashboards import DASHBOARDS, dashboard

    assert [t for t, _ in DASHBOARDS.values()] == [
        "System Health & Resources", "API Performance & Latency", "Cache Performance",
        "Business Metrics"]
    for uid, (title, panels) in DASHBOARDS.items():
        committed = (ROOT / "deploy" / "grafana" / f"{uid}.json").read_text()
        assert committed == json.dumps(dashboard(uid, title, panels), indent=2) + "\n"


@pytest.mark.slow
def test_every_panel_query_returns_data_from_a_real_prometheus(tmp_path, small_model):
    """A real Prometheus scrapes a real `novarank serve` under a little traffic; every panel
    query must parse and return at least one series (no empty or wrong panel)."""
    import httpx

    from novarank.cli.demo_service import KEYED, free_port, start_server, stop_server
    from novarank.ops.dashboards import all_queries
    from novarank.release import save_release

    prometheus = tool("prometheus")
    save_release(small_model, tmp_path / "rel")
    port, prom_port = free_port(), free_port()
    proc = start_server(tmp_path / "rel", tmp_path, port,
                        env={"NOVARANK_SPLIT": '{"control": 100}'})
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "novarank",
                            "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]}))
    prom = subprocess.Popen([prometheus, f"--config.file={cfg}",
                             f"--storage.tsdb.path={tmp_path}/tsdb",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60  # a few scrapes are needed before rate() has data
        while True:
            with httpx.Client(base_url=base, timeout=10, headers=KEYED) as c:
                for n in range(20):
                    feed = c.get(f"/v1/users/u{n}/feed", params={"k": 5}).json()
                    c.post("/v1/events", json=[
                        {"type": "impression", "user_id": f"u{n}", "item_id": it["item_id"],
                         "request_id": feed["request_id"]} for it in feed["items"]] + [
                        {"type": "click", "user_id": f"u{n}",
                         "item_id": feed["items"][0]["item_id"]}])
            empty = []
            for uid, title, expr in all_queries():
                try:
                    r = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query",
                                  params={"query": expr}, timeout=10).json()
                except (httpx.HTTPError, ValueError):
                    empty.append(f"{uid}: {title} (prometheus not up yet)")
                    continue
                if r.get("status") != "success":  # starting up, or a query that cannot parse
                    empty.append(f"{uid}: {title} ({r.get('error', r)})")
                elif not r["data"]["result"]:
                    empty.append(f"{uid}: {title}")
            if not empty or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        assert not empty, f"panels without data: {empty}"
    finally:
        prom.terminate()
        prom.wait(timeout=10)
        stop_server(proc)


def test_dashboard_data_quantile_interpolation():
    from novarank.online.dashboard import _quantile

    # 100 observations: 50 under 10 ms, 40 more under 20 ms, 10 more under 50 ms
    buckets = {0.01: 50, 0.02: 90, 0.05: 100, float("inf"): 100}
    assert _quantile(buckets, 0.5) == pytest.approx(10.0)
    assert _quantile(buckets, 0.95) == pytest.approx(35.0)
    assert _quantile({}, 0.95) is None


@pytest.mark.slow
def test_dashboard_page_renders_tiles_in_headless_chromium(tmp_path, small_model):
    import httpx

    from novarank.cli.demo_service import KEYED, free_port, start_server, stop_server
    from novarank.ops import browser
    from novarank.release import save_release

    tool("chromium")
    save_release(small_model, tmp_path / "rel")
    port = free_port()
    proc = start_server(tmp_path / "rel", tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10, headers=KEYED) as c:
            for n in range(30):
                feed = c.get(f"/v1/users/u{n}/feed", params={"k": 5}).json()
                c.post("/v1/events", json=[
                    {"type": "impression", "user_id": f"u{n}", "item_id": it["item_id"],
                     "request_id": feed["request_id"]} for it in feed["items"]])
        dom = browser.dump_dom(f"{base}/dashboard")
        shot = browser.screenshot(f"{base}/dashboard", tmp_path / "dashboard.png")
    finally:
        stop_server(proc)
    rows = re.findall(r'data-metric="(\w+)" data-status="(\w+)"', dom)
    metrics = dict(rows)
    assert {"p95_ms", "coverage", "error_rate", "cache_hit_rate", "ctr",
            "allocation_max_deviation", "recall"} <= set(metrics), dom[:2000]
    assert metrics["coverage"] == "ok"  # 30 feeds, every slot filled
    assert shot.exists() and shot.stat().st_size > 10_000


def _start(cmd: list[str], ready: str, timeout: float = 30.0) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(ready, timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{cmd[0]} did not become ready at {ready}")
        time.sleep(0.2)


@pytest.mark.slow
def test_staging_alerting_is_checked_on_the_live_prometheus_and_alertmanager(tmp_path):
    """Gate 8 against staging: the rules its Prometheus loaded must be the generated ones
    (a drifted threshold is named), and its Alertmanager must route a dry-run alert."""
    from novarank.ops.armed import check_staging

    prometheus, alertmanager = tool("prometheus"), tool("prometheus-alertmanager")
    deploy = tmp_path / "deploy"
    shutil.copytree(ROOT / "deploy", deploy)
    rules = tmp_path / "loaded.yml"
    am_port, cluster_port = _free_port(), _free_port()
    am = _start([alertmanager, f"--config.file={AM}", f"--storage.path={tmp_path}/am",
                 f"--web.listen-address=127.0.0.1:{am_port}",
                 f"--cluster.listen-address=127.0.0.1:{cluster_port}"],
                f"http://127.0.0.1:{am_port}/-/ready")
    procs = [am]
    try:
        results = {}
        for name, text in (("same", (PROM / "alerts.yml").read_text()),
                           ("drifted", (PROM / "alerts.yml").read_text().replace(
                               "> 0.8", "> 0.95", 1))):
            rules.write_text(text)
            cfg = tmp_path / f"prom-{name}.yml"
            cfg.write_text(yaml.safe_dump({"rule_files": [str(rules)]}))
            port = _free_port()
            prom = _start([prometheus, f"--config.file={cfg}",
                           f"--storage.tsdb.path={tmp_path}/tsdb-{name}",
                           f"--web.listen-address=127.0.0.1:{port}"],
                          f"http://127.0.0.1:{port}/-/ready")
            procs.append(prom)
            results[name] = check_staging(f"http://127.0.0.1:{port}",
                                          f"http://127.0.0.1:{am_port}", deploy)
            prom.terminate()
            prom.wait(timeout=10)
        same, drifted = results["same"], results["drifted"]
        assert same["ok"], json.dumps(same)
        assert same["rules_loaded"] >= 20 and same["dryrun_receivers"] == ["webhook-dryrun"]
        assert not drifted["ok"] and drifted["rules_differ"] == ["NovarankMemoryPressure"], drifted
        # an Alertmanager that routes the dry-run elsewhere fails too
        wrong = tmp_path / "am-wrong.yml"
        wrong.write_text(AM.read_text().replace("- receiver: webhook-dryrun",
                                                "- receiver: slack-sre", 1))
        am.terminate()
        am.wait(timeout=10)
        am2_port = _free_port()
        am2 = _start([alertmanager, f"--config.file={wrong}", f"--storage.path={tmp_path}/am2",
                      f"--web.listen-address=127.0.0.1:{am2_port}",
                      f"--cluster.listen-address=127.0.0.1:{_free_port()}"],
                     f"http://127.0.0.1:{am2_port}/-/ready")
        procs.append(am2)
        rules.write_text((PROM / "alerts.yml").read_text())
        port = _free_port()
        procs.append(_start([prometheus, f"--config.file={tmp_path}/prom-same.yml",
                             f"--storage.tsdb.path={tmp_path}/tsdb-3",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            f"http://127.0.0.1:{port}/-/ready"))
        misrouted = check_staging(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{am2_port}",
                                  deploy, timeout_s=5)
        assert misrouted["rules_match"] and not misrouted["dryrun_alert_routed"]
        assert misrouted["dryrun_receivers"] == ["slack-sre"]
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=10)


def test_the_baseline_jobs_run_options_the_command_has():
    """The scheduled baseline (a Job that waits for its start, a weekly CronJob) calls
    `novarank launch baseline` with options that exist, against a URL, into /shared."""
    import shlex

    from typer.testing import CliRunner

    from novarank.cli.main import app

    docs = list(yaml.safe_load_all((ROOT / "deploy/k8s/jobs/baseline.yaml").read_text()))
    assert {d["kind"] for d in docs} == {"Job", "CronJob"}
    helptext = CliRunner().invoke(app, ["launch", "baseline", "--help"],
                                  env={"COLUMNS": "200"}).output
    for doc in docs:
        spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
        cmd = spec["template"]["spec"]["containers"][0]["command"]
        argv = shlex.split(cmd[2]) if cmd[0] == "sh" else cmd
        argv = argv[1:] if argv[0] == "exec" else argv
        assert argv[:3] == ["novarank", "launch", "baseline"], argv
        flags = [a for a in argv if a.startswith("--")]
        assert {"--url", "--release", "--truth", "--out"} <= set(flags)
        assert all(f in helptext for f in flags), [f for f in flags if f not in helptext]
        out = argv[argv.index("--out") + 1]
        assert out.startswith("/shared/baseline/")
    assert "--start-at" in docs[0]["spec"]["template"]["spec"]["containers"][0]["command"]


def test_start_at_waits_or_refuses(monkeypatch):
    from novarank.cli import launch
    from novarank.errors import ConfigError

    slept: list[float] = []
    monkeypatch.setattr(launch.time, "sleep", slept.append)
    launch._wait_until("2000-01-01T00:00:00Z")  # past: starts at once
    assert slept == []
    launch._wait_until("2999-01-01T00:00:00+00:00")
    assert slept and slept[0] > 3600 * 24 * 365
    with pytest.raises(ConfigError, match="time zone"):
        launch._wait_until("2999-01-01T00:00:00")
    with pytest.raises(ConfigError, match="ISO 8601"):
        launch._wait_until("next monday")


def test_the_sample_channel_file_routes_every_audience():
    from novarank.launch.delivery import AUDIENCES, load_channels

    config = load_channels(ROOT / "deploy" / "channels.yaml")
    assert set(config["audiences"]) >= set(AUDIENCES)
