"""`novarank rollout start|watch|status|resume|abort`: the progressive rollout controller.

The controller works on the state store and the telemetry lake the service uses (the same
NOVARANK_STATE_URL and NOVARANK_EVENTS_URL), so it can run anywhere that reaches them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from novarank.cli.common import console, friendly_errors
from novarank.errors import ConfigError

app = typer.Typer(help="Progressive rollout: canary steps, analysis, promotion or rollback.",
                  no_args_is_help=True)

STATE = typer.Option(None, envvar="NOVARANK_STATE_URL",
                     help="state store the replicas follow (default: the service's)")
EVENTS = typer.Option(None, envvar="NOVARANK_EVENTS_URL",
                      help="telemetry sink; the lake under a file:// URL is analysed")
LAKE = typer.Option(None, help="lake directory (default: from NOVARANK_EVENTS_URL)")
TICK = typer.Option(2.0, help="seconds between analyses")


def _controller(state_url: str | None, events_url: str | None, lake: Path | None):
    from novarank.config import ServiceSettings
    from novarank.launch.rollout import RolloutController
    from novarank.stores import open_state

    defaults = ServiceSettings.model_fields
    state_url = state_url or defaults["state_url"].default
    if lake is None:
        events_url = events_url or defaults["events_url"].default
        if not events_url.startswith("file://"):
            raise ConfigError(f"lake: events go to {events_url}; pass --lake (the directory "
                              "`novarank ingest` writes)")
        lake = Path(events_url.removeprefix("file://"))
    return RolloutController(open_state(state_url), lake)


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _checks(h: dict) -> str:
    """One analysis in a line: each check with canary / stable values and sample sizes."""
    parts = []
    for c in h.get("analysis", {}).get("checks", []):
        n = f"n={c['samples']['canary']}/{c['samples']['stable']}"
        if c["canary"] is None:
            parts.append(f"{c['metric']} no data ({n})" if c["verdict"] == "no_data"
                         else f"{c['metric']} not measured ({n})")
        else:
            parts.append(f"{c['metric']} {c['canary']:.3g}/{c['stable']:.3g} {c['verdict']} "
                         f"({n})")
    return "; ".join(parts)


def _share(h: dict) -> str:
    """The share a decision judged, and where it moved the canary."""
    if "judged_percent" in h:
        return f"{h['judged_percent']:g}% -> {h['percent']:g}%"
    return f"{h['percent']:g}%"


def _show(doc) -> None:
    if doc is None:
        console.print("no rollout in the state store")
        return
    colour = {"promoted": "green", "concluded": "green", "rolled_back": "red",
              "aborted": "red", "paused": "yellow"}.get(doc.status, "cyan")
    what = "interleaving" if doc.mode == "interleave" else "rollout"
    console.print(f"{what} {doc.id}: {doc.stable.version} -> {doc.canary.version} "
                  f"[{colour}]{doc.status}[/] at {doc.percent:g}% (steps "
                  f"{','.join(f'{s:g}' for s in doc.steps)})"
                  + (f" — {doc.reason}" if doc.reason else ""))
    table = Table()
    for col in ("at", "event", "share", "verdict", "detail"):
        table.add_column(col)
    for h in doc.history:
        detail = h.get("reason") or _checks(h)
        table.add_row(_when(h["at"]), h["event"], _share(h),
                      h.get("analysis", {}).get("verdict", ""), detail[:160])
    console.print(table)


def _watch(ctl, tick_s: float) -> None:
    seen = [len(ctl.current().history)]

    def on_tick(doc) -> None:
        for h in doc.history[seen[0]:]:
            console.print(f"{_when(h['at'])} {h['event']} {_share(h)}: "
                          f"{h.get('reason') or _checks(h)}")
        seen[0] = len(doc.history)

    doc = ctl.run(tick_s, on_tick=on_tick)
    _show(doc)
    if doc is not None and doc.status in ("rolled_back", "aborted"):
        raise typer.Exit(1)


@app.command()
@friendly_errors
def start(
    canary: Path = typer.Option(..., help="release directory to roll out"),
    steps: str = typer.Option("10,25,50,100", help="canary shares in percent; 100 = promote"),
    stable: Path = typer.Option(None, help="the release replicas serve now (default: the "
                                "last rollout's result, else NOVARANK_RELEASE)"),
    step_seconds: float = typer.Option(60.0, help="least time on each step"),
    max_step_seconds: float = typer.Option(900.0, help="pause when a step has no data by then"),
    min_requests: int = typer.Option(200, help="feeds per arm before a step can pass"),
    min_impressions: int = typer.Option(1000, help="impressions per arm for CTR (0: optional)"),
    promotion: str = typer.Option("no_harm", help="no_harm: a step moves on without evidence "
                                  "of harm; non_inferior: only once every harm is bounded "
                                  "inside its margin"),
    fault: str = typer.Option(None, help="drill: errors:RATE or latency:MS on canary feeds"),
    mode: str = typer.Option("canary", help="canary: steps of users served the canary; "
                             "interleave: one step (--steps 20) of users served pages "
                             "merged from both releases, concluded once the test on their "
                             "clicks finds the release users prefer"),
    watch: bool = typer.Option(True, help="run the controller until the rollout ends"),
    tick_s: float = TICK,
    state_url: str = STATE,
    events_url: str = EVENTS,
    lake: Path = LAKE,
) -> None:
    """Start a rollout of CANARY; with --watch, analyse each step and promote or roll back.
    Exits 1 when the rollout ends rolled back."""
    from novarank.launch.rollout import parse_steps
    from novarank.online.releases import Fault, RolloutPolicy

    try:
        policy = RolloutPolicy(step_seconds=step_seconds, max_step_seconds=max_step_seconds,
                               min_requests=min_requests, min_impressions=min_impressions,
                               promotion=promotion)  # type: ignore[arg-type]  # checked here
    except ValueError as exc:
        raise ConfigError(f"rollout policy: {exc}") from None
    ctl = _controller(state_url, events_url, lake)
    if stable is None and ctl.current() is None:
        from novarank.config import ServiceSettings

        try:
            stable = ServiceSettings().release  # what the replicas are configured with
        except ValueError as exc:
            raise ConfigError(f"service settings: {exc}") from None
    try:
        if mode not in ("canary", "interleave"):
            raise ConfigError(f"mode: canary or interleave, got {mode!r}")
        doc = ctl.start(canary, parse_steps(steps), policy,
                        Fault.parse(fault) if fault else None, stable,
                        "interleave" if mode == "interleave" else "canary")
    except ValueError as exc:  # pydantic: bad steps
        raise ConfigError(f"rollout: {exc}") from None
    _show(doc)
    if watch and doc.status == "running":
        _watch(ctl, tick_s)


@app.command("watch")
@friendly_errors
def watch_cmd(tick_s: float = TICK, state_url: str = STATE, events_url: str = EVENTS,
              lake: Path = LAKE) -> None:
    """Run the controller for the current rollout (e.g. after the previous one was killed)."""
    _watch(_controller(state_url, events_url, lake), tick_s)


@app.command()
@friendly_errors
def status(state_url: str = STATE, events_url: str = EVENTS, lake: Path = LAKE) -> None:
    """The current rollout and every decision taken so far."""
    _show(_controller(state_url, events_url, lake).current())


@app.command()
@friendly_errors
def resume(watch: bool = typer.Option(True), tick_s: float = TICK, state_url: str = STATE,
           events_url: str = EVENTS, lake: Path = LAKE) -> None:
    """Resume a paused rollout: the step starts its analysis afresh."""
    ctl = _controller(state_url, events_url, lake)
    _show(ctl.resume())
    if watch:
        _watch(ctl, tick_s)


@app.command()
@friendly_errors
def abort(reason: str = typer.Option("aborted by an operator"), state_url: str = STATE,
          events_url: str = EVENTS, lake: Path = LAKE) -> None:
    """Send every user back to the stable release now."""
    _show(_controller(state_url, events_url, lake).abort(reason))
