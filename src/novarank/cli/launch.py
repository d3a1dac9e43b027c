"""`novarank launch baseline|dry-run|sign|notify`: the phased 24-hour baseline, the staging
dry-run with its launch gates, and the go/no-go record's sign-off and notices."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from novarank.cli.common import console, friendly_errors
from novarank.errors import ConfigError

if TYPE_CHECKING:
    from novarank.launch.simulator import Simulator

app = typer.Typer(help="The launch harness: baseline, staging dry-run and go/no-go record.",
                  no_args_is_help=True)


@app.command()
@friendly_errors
def baseline(
    duration: str = typer.Option("24h", help="simulated length, e.g. 24h, 90m"),
    speedup: float = typer.Option(288.0, help="simulated seconds per wall second (1 = real time)"),
    peak_rps: float = typer.Option(150.0, help="sessions/s at the peak of the curve"),
    url: str = typer.Option(None, help="drive this service instead of starting one"),
    release: Path = typer.Option(None, help="with --url: the release it serves (ids, cohorts)"),
    truth: Path = typer.Option(None, help="with --url: ground truth (truth.npz from data synth)"),
    data: str = typer.Option("synthetic:users=20000,items=5000,events=1000000,seed=7",
                             help="without --url: data to build and serve"),
    cohorts: str = typer.Option('{"cold": 0.1, "light": 0.4, "medium": 0.35, "heavy": 0.15}',
                                help="session share per cohort"),
    token: str = typer.Option(None, envvar="NOVARANK_ADMIN_TOKEN", help="admin token (warm plan)"),
    key: str = typer.Option(None, envvar="NOVARANK_API_KEY", help="API key for the simulated "
                            "traffic (read, events, catalog); default: the admin token"),
    out: Path = typer.Option(Path("runs/baseline"), help="report directory"),
    seed: int = typer.Option(0),
    start_at: str = typer.Option(None, help="wait until this UTC time (ISO 8601, e.g. "
                                 "2026-12-07T08:00:00Z) before starting: a scheduled Job"),
) -> None:
    """Warm-up (0-2h), steady (2-8h), peak (8-16h), daily cycle (16-24h); report with plots."""
    if start_at is not None:
        _wait_until(start_at)
    from novarank.cli.demo_service import DEMO_KEY, TOKEN, free_port, start_server, stop_server
    from novarank.launch import baseline as bl
    from novarank.launch import report as rp
    from novarank.launch.schedule import Schedule, parse_duration
    from novarank.launch.world import build_world, saved_truth, simulator_for

    try:
        sched = Schedule(duration_s=parse_duration(duration), speedup=speedup, peak_rps=peak_rps)
        shares = json.loads(cohorts)
    except (ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"baseline: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    proc = None
    if url is None:
        console.print(f"building the service for the run from {data} …")
        release, model_truth, t_users, t_items = build_world(data, out)
        port = free_port()
        for stale in ("state.db", "state.db-wal", "state.db-shm"):
            (out / stale).unlink(missing_ok=True)
        time_env = sched.service_env()
        proc = start_server(release, out.resolve(), port, log=out / "service.log", env=time_env)
        url, token, key = f"http://127.0.0.1:{port}", TOKEN, DEMO_KEY
        time_model = {"scaled": True, "settings": time_env}
    else:
        if release is None or truth is None:
            raise ConfigError("--url needs --release and --truth (the simulator's ground truth)")
        # a service we did not start keeps its own TTLs: a compressed run over-states its
        # cache hit rate (entries live speedup times longer in simulated time)
        time_model = {"scaled": speedup == 1.0, "settings": {}}
        model_truth, t_users, t_items = saved_truth(truth)
    try:
        sim, lock = simulator_for(release, model_truth, t_users, t_items, shares, seed)
        total = len(sched.arrivals())
        columns = (TextColumn("[bold]{task.description}"), BarColumn(),
                   TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("warm-up: running the warm plan", total=total)

            def tick(info: dict) -> None:
                iv = info["interval"]
                s = iv.summary(1.0)
                hit = s["cache_hit_rate"]
                bar.update(task, completed=info["i"], description=(
                    f"{iv.phase} · h {s['start_h']:.0f} · p95 {s['p95_ms'] or 0:.1f} ms · "
                    f"hit {0 if hit is None else hit:.3f}"))

            run = asyncio.run(bl.run(url, sched, sim, admin_token=token, api_key=key,
                                      on_tick=tick))
            bar.update(task, completed=total, description="collection finished")
    finally:
        if proc is not None:
            stop_server(proc)
    meta = {"url": url, "release": lock.version, "finished_at":
            datetime.now(UTC).isoformat(timespec="seconds"),
            "command": f"novarank launch baseline --duration {duration} --speedup {speedup:g} "
                       f"--peak-rps {peak_rps:g}", "cohorts": shares, "seed": seed,
            "time_model": time_model, "elapsed_s": round(time.time() - run.started_at, 1)}
    report = rp.build(run, meta)
    path = rp.write(report, out)
    colour = {"pass": "green", "fail": "red"}.get(report["verdict"], "yellow")
    for t in report["windows"][rp.JUDGED]["targets"]:
        console.print(f"  {t['target']:<30} {str(t['value'])[:10]:>10}  {t['objective']:<10} "
                      f"n={t['samples']:<7} {t['verdict']}")
    console.print(f"[{colour}]baseline {report['verdict'].upper()}[/]; report: {path}")
    if report["verdict"] == "fail":
        raise typer.Exit(1)


def _wait_until(when: str) -> None:
    try:
        at = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--start-at: not an ISO 8601 time: {when!r}") from None
    if at.tzinfo is None:
        raise ConfigError(f"--start-at: give a time zone (e.g. {when}Z for UTC)")
    wait = (at - datetime.now(UTC)).total_seconds()
    if wait > 0:
        console.print(f"waiting {wait / 3600:.2f} h for the start time {at.isoformat()} …")
        time.sleep(wait)


@app.command("dry-run")
@friendly_errors
def dry_run(
    url: str = typer.Option(None, help="a running service (default: start the embedded one)"),
    release: Path = typer.Option(None, help="with --url: the release it serves; without: a "
                                 "release trained on --data to serve instead of a new one"),
    truth: Path = typer.Option(None, help="with --url: ground truth (data synth's truth.npz)"),
    lake: Path = typer.Option(None, help="with --url: the lake the service writes to"),
    token: str = typer.Option(None, envvar="NOVARANK_ADMIN_TOKEN", help="admin token"),
    key: str = typer.Option(None, envvar="NOVARANK_API_KEY", help="API key for the simulated "
                            "traffic (read, events, catalog); default: the admin token"),
    data: str = typer.Option("synthetic:users=5000,items=2000,events=300000,seed=7",
                             help="without --url: data to build and serve (and its truth)"),
    sessions: int = typer.Option(600, help="simulated sessions between gates 3 and 4"),
    split: str = typer.Option('{"control": 20, "treatment_a": 40, "treatment_b": 40}',
                              help="planned split (the started service uses it too)"),
    canary: Path = typer.Option(None, help="with --url: a second release for the rollback "
                                "drill (without it gate 9 is INCONCLUSIVE)"),
    state_url: str = typer.Option(None, help="with --url: the state store the service follows"),
    service_log: Path = typer.Option(None, help="with --url: the service's JSON log, quoted "
                                     "per subsystem in the pack"),
    fault: str = typer.Option("errors:1.0", help="the rollback drill's fault on the canary: "
                              "errors:RATE, latency:MS or broken (a canary that raises)"),
    deploy: Path = typer.Option(Path("deploy"), help="alert rules, routes, oncall.yaml"),
    prometheus_url: str = typer.Option(None, help="with --url: the staging Prometheus (its "
                                       "loaded rules must be the generated ones)"),
    alertmanager_url: str = typer.Option(None, help="with --url: the staging Alertmanager "
                                         "(it must route a dry-run alert)"),
    replaces: Path = typer.Option(None, help="the stable release this one replaces (its "
                                  "offline quality must not fall behind it)"),
    recall_floor: float = typer.Option(0.0, help="this data set's absolute Recall@10 floor "
                                       "(the movie checklist's 0.15 suits MovieLens)"),
    explored: Path = typer.Option(None, help="with --url: the lake of the release this one "
                                  "replaces, served with exploration on (gate 12 estimates "
                                  "this release from it); without --url the dry-run serves "
                                  "that release itself first"),
    explored_date: str = typer.Option(None, help="UTC day of --explored's logs (default: "
                                      "today)"),
    explored_sessions: int = typer.Option(3000, min=1, help="without --url: sessions the "
                                          "replaced release serves with exploration on"),
    exploration: float = typer.Option(0.2, min=0, max=1, help="without --url: exploration "
                                      "epsilon of both services (gates 11 and 12 need it)"),
    out: Path = typer.Option(Path("runs/dryrun"), help="evidence pack directory"),
    seed: int = typer.Option(0),
) -> None:
    """Run the launch gates against a service and write the evidence pack."""
    from novarank.cli.demo_service import DEMO_KEY, TOKEN, free_port, start_server, stop_server
    from novarank.launch.dryrun import DryRun, snapshot, write_logs, write_pack
    from novarank.launch.gates import decide
    from novarank.launch.world import build_world, saved_truth, simulator_for
    from novarank.logs import to_file
    from novarank.release.bundle import code_version

    plan = json.loads(split)
    out.mkdir(parents=True, exist_ok=True)
    for old in ("service.log", "dryrun.log", "dashboard.png", "dashboard.json", "metrics.txt",
                "logs.txt"):
        (out / old).unlink(missing_ok=True)
    proc = None
    staging = url is not None
    if url is None:
        console.print(f"building and serving a release (and a canary) from {data} …")
        release, model_truth, t_users, t_items = build_world(
            data, out, "dryrun", evaluate=True, canary=True, release=release, previous=True)
        for stale in ("state.db", "state.db-wal", "state.db-shm"):
            (out / stale).unlink(missing_ok=True)
        shutil.rmtree(out / "lake", ignore_errors=True)
        console.print(f"the replaced release serves {explored_sessions} sessions with "
                      f"exploration {exploration} (gate 12's logs) …")
        explored = serve_explored(out / "previous", out / "production", exploration,
                                  explored_sessions,
                                  simulator_for(out / "previous", model_truth, t_users,
                                                t_items, None, seed + 1)[0],
                                  out / "previous-since.jsonl")
        port = free_port()
        service_log, canary = out / "service.log", out / "canary"
        state_url = f"sqlite:///{out.resolve()}/state.db"
        proc = start_server(release, out.resolve(), port, log=service_log, env={
            "NOVARANK_DRILLS_ENABLED": "true",  # gate 9 injects a fault on its canary
            "NOVARANK_SPLIT": json.dumps(plan),
            "NOVARANK_EXPLORATION_EPSILON": str(exploration),  # gate 11 replays its pages
            "NOVARANK_VARIANT_WEIGHTS": json.dumps({v: {"trending": 0.5 + 0.5 * n}
                                                    for n, v in enumerate(plan)
                                                    if v != "control"})})
        url, token, lake, key = f"http://127.0.0.1:{port}", TOKEN, out.resolve() / "lake", DEMO_KEY
    else:
        if release is None or truth is None or lake is None or token is None:
            raise ConfigError("--url needs --release, --truth, --lake and --token")
        model_truth, t_users, t_items = saved_truth(truth)
    handler = to_file(out / "dryrun.log")
    try:
        sim, lock = simulator_for(release, model_truth, t_users, t_items, None, seed)
        run = DryRun(url, token, release, lake, deploy, sim, plan, sessions=sessions,
                     canary=canary, state_url=state_url, fault=fault, replaces=replaces,
                     recall_floor=recall_floor, staging=staging,
                     prometheus_url=prometheus_url, alertmanager_url=alertmanager_url,
                     pack=out, key=key, explored=explored, explored_day=explored_date)
        with console.status("running the gates …"):
            results, traffic = run.run(code_version(), lock.version)
            artifacts = run.artifacts or snapshot(url, out)
    finally:
        if proc is not None:
            stop_server(proc)
        logging.getLogger("novarank").removeHandler(handler)
        handler.close()
    artifacts["logs.txt"] = write_logs(out, [p for p in (service_log, out / "dryrun.log")
                                             if p is not None])
    decision = decide(results)
    meta = {"url": url, "release": lock.version, "code_version": code_version(),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "traffic": traffic, "split": plan, "artifacts": artifacts}
    path = write_pack(out, results, decision, meta)
    for r in results:
        colour = {"GREEN": "green", "RED": "red", "YELLOW": "yellow"}.get(r.verdict.value,
                                                                          "magenta")
        console.print(f"  gate {r.number:>2} {r.name:<28} [{colour}]{r.verdict.value}[/] "
                      f"{'' if r.value is None else f'{r.value:.4g}'}")
    console.print(f"go/no-go: [bold]{decision['decision']}[/] "
                  f"({len(decision['blocking'])} blocking); record: {path}")


def serve_explored(release: Path, workdir: Path, epsilon: float, n: int, sim: Simulator,
                   since: Path | None = None) -> Path:
    """Serve `release` with exploration on to `n` simulated sessions, as production would
    have before the dry-run: the logs gate 12 estimates the new release from. `since`: the
    events after the release's training (JSON lines), posted first, as its service would
    have recorded them live."""
    from novarank.cli.demo_service import DEMO_KEY, free_port, start_server, stop_server
    from novarank.launch.dryrun import post_events, sessions

    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    port = free_port()
    proc = start_server(release, workdir.resolve(), port, log=workdir / "service.log",
                        env={"NOVARANK_EXPLORATION_EPSILON": str(epsilon)})
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                          headers={"Authorization": f"Bearer {DEMO_KEY}"}) as http:
            if since:
                post_events(http, [json.loads(ln) for ln in since.read_text().splitlines()])
            sessions(http, sim, n)
    finally:
        stop_server(proc)  # flushes the telemetry
    return workdir.resolve() / "lake"


@app.command()
@friendly_errors
def sign(
    approver: str = typer.Option(..., help="who signs"),
    role: str = typer.Option(..., help="DRI, 'Product owner', 'SRE lead' or 'Platform "
                             "engineering lead'"),
    pack: Path = typer.Option(Path("runs/dryrun"), help="evidence pack of the dry-run"),
) -> None:
    """Record a sign-off; GO needs every gate GREEN (or waived) and all three roles signed."""
    from novarank.launch.record import sign as record_sign

    final = record_sign(pack, approver, role)
    console.print(f"signed as {role}; decision {final['decision']} (gates {final['gates']}, "
                  f"missing sign-offs: {', '.join(final['missing_signoffs']) or 'none'})")


@app.command()
@friendly_errors
def notify(
    audience: str | None = typer.Option(None, help="product, qa, ops, tech-lead or management "
                                 "(without --send: the one to print)"),
    pack: Path = typer.Option(Path("runs/dryrun"), help="evidence pack of the dry-run"),
    send: bool = typer.Option(False, help="deliver every audience's message through its "
                              "channels and record each delivery in the pack"),
    channels: Path = typer.Option(Path("deploy/channels.yaml"), help="channels per audience"),
    retries: int = typer.Option(3, min=1, help="attempts per channel"),
    baseline: Path | None = typer.Option(None, help="the baseline's report directory "
                                         "(criterion 4)"),
    alertmanager_url: str | None = typer.Option(None, help="read critical alerts (criterion 5)"),
) -> None:
    """Print an audience's status message, or --send them all; the Stage 1 criteria follow."""
    from novarank.launch.record import notify as render

    if not send:
        if audience is None:
            raise ConfigError("--audience is needed to print a message (or --send them all)")
        console.print(render(pack, audience), markup=False, highlight=False)
        if audience == "tech-lead":
            _stage(pack, baseline, alertmanager_url)
        return
    from novarank.launch.delivery import deliver, load_channels

    records = deliver(pack, load_channels(channels), lambda a: render(pack, a),
                      retries=retries)
    table = Table("audience", "channel", "outcome", "attempts", "message id")
    for r in records:
        table.add_row(r["audience"], f"{r['channel']} ({r['kind']})",
                      r["outcome"] if r["error"] is None else f"{r['outcome']}: {r['error']}",
                      str(r["attempts"]), r["message_id"])
    console.print(table)
    _stage(pack, baseline, alertmanager_url)
    if any(r["outcome"] == "failed" for r in records):
        raise typer.Exit(1)


def _stage(pack: Path, baseline: Path | None, alertmanager_url: str | None) -> None:
    """The Stage 1 checklist, printed and kept in the pack: STAGE_1_CRITERIA.md, and the
    go/no-go record's own section with the deliveries behind it."""
    from novarank.launch.stage import criteria, record_section
    from novarank.launch.stage import render as render_stage

    rows = criteria(pack, baseline, alertmanager_url)
    text = render_stage(rows)
    (pack / "STAGE_1_CRITERIA.md").write_text(f"# {text}\n")
    record_section(pack, rows)
    console.print(text, markup=False, highlight=False)


@app.command()
@friendly_errors
def ack(
    audience: str = typer.Option(..., help="the audience whose message you received"),
    message: str = typer.Option(..., help="the message id it names"),
    by: str = typer.Option(..., help="who acknowledges (name or handle)"),
    pack: Path = typer.Option(Path("runs/dryrun"), help="evidence pack of the dry-run"),
) -> None:
    """Acknowledge a delivered notification: readiness confirmed, recorded in the pack."""
    from novarank.launch.delivery import acknowledge

    rec = acknowledge(pack, audience, by, message)
    console.print(f"acknowledged {audience} message {message} by {rec['by']} at {rec['at']}")
    _stage(pack, None, None)


@app.command()
@friendly_errors
def preflight(
    url: list[str] = typer.Option(..., help="every replica's base URL (repeat --url)"),
    state_url: str = typer.Option(None, envvar="NOVARANK_STATE_URL",
                                  help="state store (default: the service's settings)"),
    cache_url: str = typer.Option(None, envvar="NOVARANK_CACHE_URL"),
    counters_url: str = typer.Option(None, envvar="NOVARANK_COUNTERS_URL"),
    events_url: str = typer.Option(None, envvar="NOVARANK_EVENTS_URL"),
    lake: Path = typer.Option(None, help="the lake directory (default: under a file:// "
                              "events URL)"),
    prometheus_url: str = typer.Option(None, help="Prometheus that must scrape every replica"),
    alertmanager_url: str = typer.Option(None, help="Alertmanager that must answer"),
    deploy: Path = typer.Option(None, help="manifests (deploy/): the replica count must match "
                                "the Deployment and the HPA"),
    min_free_gb: float = typer.Option(1.0, help="free disk the lake needs"),
    allocatable: str = typer.Option(None, help="the cluster's free capacity, e.g. "
                                    "cpu=24,memory=96Gi (kubectl describe nodes): the "
                                    "Deployment's requests at the HPA maximum must fit"),
    out: Path = typer.Option(None, help="also write the result here as JSON"),
) -> None:
    """Infrastructure check before the baseline: replicas (/readyz 10/10), their count, each
    store written, read back and cleaned up, the lake, Prometheus, Alertmanager."""
    from novarank.config import ServiceSettings
    from novarank.launch.preflight import Preflight, lake_of

    s = ServiceSettings()
    events = events_url or s.events_url
    pre = Preflight(replicas=[u.rstrip("/") for u in url], state_url=state_url or s.state_url,
                    cache_url=cache_url or s.cache_url,
                    counters_url=counters_url or s.counters_url, events_url=events,
                    lake=lake or lake_of(events), prometheus_url=prometheus_url,
                    alertmanager_url=alertmanager_url, deploy=deploy,
                    min_free_bytes=int(min_free_gb * 2**30),
                    allocatable=dict(kv.split("=", 1) for kv in allocatable.split(","))
                    if allocatable else None)
    with console.status("preflight …"):
        res = pre.run()
    table = Table("check", "verdict", "why")
    colour = {"pass": "green", "fail": "red", "skip": "yellow"}
    for c in res["checks"]:
        table.add_row(c["name"], f"[{colour[c['verdict']]}]{c['verdict']}[/]", c["why"])
    console.print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2))
    console.print(f"preflight: {'PASS' if res['passed'] else 'FAIL'} "
                  f"({res['counts']['pass']} passed, {res['counts']['fail']} failed, "
                  f"{res['counts']['skip']} skipped)")
    if not res["passed"]:
        raise typer.Exit(1)


@app.command()
@friendly_errors
def template(
    kind: str = typer.Option(..., help="incident, status or postmortem"),
    pack: Path = typer.Option(Path("runs/dryrun"), help="evidence pack of the dry-run"),
    severity: str = typer.Option("P2", help="P1-P4 (deploy/ownership.yaml)"),
    title: str = typer.Option("<title>", help="what happened"),
    reporter: str = typer.Option("<you>", help="who opens it"),
    ownership_file: Path = typer.Option(Path("deploy/ownership.yaml"), "--ownership"),
) -> None:
    """Render the incident, status or post-mortem template from the record and the owners."""
    from novarank.launch.record import decision, load
    from novarank.ops import ownership

    record = load(pack)
    final = decision(record)
    gates = record["gates"]
    owners = ownership.load(ownership_file)
    fields = {"severity": severity, "title": title, "reporter": reporter,
              "now": datetime.now(UTC).isoformat(timespec="minutes"),
              "release": record["meta"]["release"],
              "code_version": record["meta"]["code_version"],
              "gates_green": f"{sum(g['verdict'] == 'GREEN' for g in gates)}/{len(gates)}",
              "decision": final["decision"],
              "blocking": ", ".join(f"gate {b['gate']}" for b in record["decision"][
                  "blocking"]) or "none",
              "missing_signoffs": ", ".join(final["missing_signoffs"]) or "none",
              "owner": owners.get("primary", {}).get("SRE lead", "?")}
    console.print(ownership.render(owners, kind, fields), markup=False, highlight=False)



@app.command()
@friendly_errors
def estimate(
    lake: Path = typer.Option(..., help="the telemetry lake the current release logged to"),
    candidate: Path = typer.Option(..., help="the release to estimate before it takes traffic"),
    current: Path | None = typer.Option(
        None, help="the release that logged: replayed the same way as the candidate (so "
        "what replay cannot reproduce, such as live trending, cancels); default: the "
        "pages it served"),
    date: str = typer.Option("", help="UTC day of the logs (default: today)"),
    k: int = typer.Option(10, min=1, help="page size the CTR is estimated at"),
    variant: str = typer.Option("control", help="the candidate's weight set"),
    margin: float = typer.Option(0.05, min=0, help="relative CTR loss the candidate may cost"),
    min_effective: float = typer.Option(300.0, help="effective requests needed to conclude"),
    min_support: float = typer.Option(0.95, min=0, max=1,
                                      help="share of the candidate's slots exploration reached"),
    out: Path | None = typer.Option(None, help="also write the estimate here (JSON)"),
) -> None:
    """Estimate a candidate release's CTR from explored logs, against the current ranker's,
    and judge it (GREEN / RED / INCONCLUSIVE; the exit code is 0 only for GREEN)."""
    from novarank.launch.gates import Verdict
    from novarank.launch.offpolicy import PreTraffic, pre_traffic

    day = date or datetime.now(UTC).strftime("%Y-%m-%d")
    rule = PreTraffic(margin, min_effective, min_support)
    res = pre_traffic(str(lake), str(candidate), day, k, rule,
                      str(current) if current else None, variant)
    table = Table(title=f"CTR@{k} from {res['pages']:,} logged first pages ({day})")
    for col in ("estimator", "current", "candidate (95% CI)", "change (95% CI)",
                "effective requests", "support"):
        table.add_column(col)
    for e in ("ips", "snips", "dr", "pbm"):
        c, n, d = res["current"][e], res["candidate_ctr"][e], res["change"][e]
        table.add_row(e, f"{c['ctr']:.4f}",
                      f"{n['ctr']:.4f} ({n['ci95'][0]:.4f}, {n['ci95'][1]:.4f})",
                      f"{d['ctr']:+.4f} ({d['ci95'][0]:+.4f}, {d['ci95'][1]:+.4f})",
                      f"{n['effective_requests']:,.0f}", f"{n['support']:.2f}")
    console.print(table)
    console.print(f"pre-traffic estimate ({rule.estimator}): {res['verdict']}: {res['reason']}")
    if out:
        out.write_text(json.dumps(res, indent=2, default=str))
    if res["verdict"] is not Verdict.GREEN:
        raise typer.Exit(1)


@app.command()
@friendly_errors
def parity(
    lake: Path = typer.Option(..., help="the telemetry lake the release logged to"),
    release: Path = typer.Option(..., help="the release that served those pages"),
    date: str = typer.Option("", help="UTC day of the logs (default: today)"),
    k: int = typer.Option(10, min=1, help="page size compared"),
    variant: str = typer.Option("control", help="the weight set the pages were served with"),
    min_exact: float = typer.Option(0.99, min=0, max=1,
                                    help="share of pages the replay must reproduce exactly"),
    out: Path | None = typer.Option(None, help="also write the result here (JSON)"),
) -> None:
    """Replay the first pages a release served (logged with exploration on) through the
    release offline, with the inputs each page logged, and report how exactly it
    reproduces them and how far each signal drifts; exit 1 below --min-exact."""
    from novarank.launch.replay import parity as replay_parity

    day = date or datetime.now(UTC).strftime("%Y-%m-%d")
    res = replay_parity(str(lake), str(release), day, k, variant)
    ok = res.exact >= min_exact
    drift = ", ".join(f"{s} {d:.3f}" for s, d in res.signal_drift.items())
    console.print(f"replay parity of {res.release} over {res.pages:,} first pages "
                  f"({day}), top {k}: exact {res.exact:.2%}, Jaccard {res.jaccard:.3f}, "
                  f"Kendall tau {res.kendall_tau:.3f}; signal drift: {drift or 'not logged'}"
                  f" -> {'PASS' if ok else 'FAIL'} (exact >= {min_exact:.0%})")
    if out:
        out.write_text(json.dumps({**res.to_dict(), "min_exact": min_exact, "pass": ok},
                                  indent=2))
    if not ok:
        raise typer.Exit(1)


@app.command()
@friendly_errors
def interleaving(
    lake: Path = typer.Option(..., help="the telemetry lake the service logs to"),
    canary: str = typer.Option(..., help="version of the release interleaved with stable"),
    since: str = typer.Option("", help="from this UTC time, ISO (default: 24 hours ago)"),
    alpha: float = typer.Option(0.05, min=1e-6, max=0.5, help="the test's level"),
    out: Path | None = typer.Option(None, help="also write the result here (JSON)"),
) -> None:
    """What users' clicks on the served interleaved pages say so far: pages won by either
    release, the canary's credit share, and the always-valid test of "users prefer
    neither" (valid at every look). Exit 0 when the test has found a preference."""
    import time as _time

    from novarank.launch.interleaving import served_preference

    now = _time.time()
    start = (datetime.fromisoformat(since).replace(tzinfo=UTC).timestamp() if since
             else now - 86_400)
    res = served_preference(lake, canary, start, now)
    share = "n/a" if res.credit_share is None else f"{res.credit_share:.3f}"
    winner = res.winner(alpha)
    console.print(f"interleaving of {canary} with the stable release: {res.pages:,} pages, "
                  f"won by the canary {res.canary_wins:,}, by stable {res.stable_wins:,}; "
                  f"credited clicks {res.clicks['canary']:,} / {res.clicks['stable']:,} "
                  f"(canary share {share}); mean preference {res.mean:+.4f}, "
                  f"p={res.p_value:.3g} -> "
                  + (f"users prefer the {winner}" if winner else "no preference yet"))
    if out:
        out.write_text(json.dumps({**res.to_dict(), "alpha": alpha, "winner": winner},
                                  indent=2))
    if winner is None:
        raise typer.Exit(1)
