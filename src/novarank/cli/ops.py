"""`novarank ops`: generate the alert rules and tests, check on-call, run the alert webhook."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import typer

from novarank.cli.common import console, friendly_errors
from novarank.errors import ConfigError

app = typer.Typer(help="Operations as code.", no_args_is_help=True)
PROM = Path("deploy/prometheus")


@app.command()
@friendly_errors
def generate(out: Path = typer.Option(PROM, help="where alerts.yml and alerts_test.yml go"),
             check: bool = typer.Option(False, help="fail if the files differ from the spec")
             ) -> None:
    """Write the Prometheus rules, their promtool tests and the Grafana dashboards."""
    import json

    from novarank.ops.alerts import ALERTS, rules_yaml, unit_tests_yaml
    from novarank.ops.dashboards import DASHBOARDS, dashboard

    files = {out / "alerts.yml": rules_yaml(), out / "alerts_test.yml": unit_tests_yaml()}
    grafana = out.parent / "grafana"
    for uid, (title, panels) in DASHBOARDS.items():
        files[grafana / f"{uid}.json"] = json.dumps(dashboard(uid, title, panels),
                                                    indent=2) + "\n"
    if check:
        stale = [str(p) for p, text in files.items() if not p.exists() or p.read_text() != text]
        if stale:
            raise ConfigError(f"generated files are stale: {stale}; run `novarank ops generate`")
        console.print(f"[green]ok[/] {len(ALERTS)} alerts, {len(DASHBOARDS)} dashboards, "
                      "files up to date")
        return
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    console.print(f"{len(ALERTS)} alerts -> {', '.join(str(p) for p in files)}")


@app.command()
@friendly_errors
def oncall(file: Path = typer.Option(Path("deploy/oncall.yaml")),
           window_start: datetime = typer.Option(..., help="launch window start (ISO, UTC)"),
           window_end: datetime = typer.Option(..., help="launch window end (ISO, UTC)")) -> None:
    """Validate the rotation and escalation for a launch window (exit 1 on any gap)."""
    from novarank.ops.oncall import check

    issues = check(file, window_start, window_end)
    for p in issues:
        console.print(f"[red]✗[/] {p}")
    if issues:
        raise typer.Exit(1)
    console.print(f"[green]ok[/] on-call covers {window_start} → {window_end}; escalation "
                  "L1 5 → L2 15 → L3 30 → L4 60 min")


@app.command("ownership")
@friendly_errors
def ownership_check(deploy: Path = typer.Option(Path("deploy"), help="holds ownership.yaml, "
                                                "oncall.yaml and alertmanager/")) -> None:
    """Validate owners, severities and templates (exit 1 on any problem)."""
    from novarank.ops.ownership import check

    issues = check(deploy)
    for p in issues:
        console.print(f"[red]✗[/] {p}")
    if issues:
        raise typer.Exit(1)
    console.print("[green]ok[/] four primary owners reachable, P1-P4 routed, business "
                  "hours with a time zone, three templates")


@app.command()
def webhook(port: int = typer.Option(9095), out: Path = typer.Option(Path("runs/alerts.jsonl")),
            seconds: float = typer.Option(None, help="stop after this long")) -> None:
    """Receive Alertmanager notifications and append them to a JSON-lines file."""
    from novarank.ops.webhook import AlertSink, serve

    server = serve(port, AlertSink(out))
    console.print(f"listening on 127.0.0.1:{port}/alerts, writing {out}")
    try:
        deadline = None if seconds is None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
