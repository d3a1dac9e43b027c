"""`novarank ingest`, `novarank rollup`, `novarank tiles`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from novarank.analytics.rollup import RollupResult
from novarank.cli.common import console, friendly_errors
from novarank.errors import ConfigError


def _date(value: str | None) -> str:
    if value is None:
        return datetime.now(UTC).strftime("%Y-%m-%d")
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise ConfigError(f"--date must be YYYY-MM-DD, got {value!r}") from None
    return value


def _catalog_items(release: Path | None) -> int | None:
    if release is None:
        return None
    from novarank.release.lock import read_lock

    read_lock(release)
    return int(json.loads((release / "model.json").read_text())["n_items"])


@friendly_errors
def ingest(
    redis_url: str = typer.Option("redis://127.0.0.1:6379/0", help="where replicas XADD"),
    lake: Path = typer.Option(Path("runs/lake"), help="lake root to write"),
    stream: str = typer.Option("nr:telemetry", help="stream key (<key_prefix>telemetry)"),
    group: str = typer.Option("nr-ingest"),
    seconds: float = typer.Option(None, help="stop after this long (default: run forever)"),
    until_idle: bool = typer.Option(False, help="stop when the stream has nothing new and "
                                    "nothing is pending"),
) -> None:
    """Drain the telemetry stream into the lake (ack after the durable write)."""
    from novarank.telemetry.ingest import Ingester
    from novarank.telemetry.sinks import LakeWriter

    ing = Ingester(redis_url, LakeWriter(lake), stream=stream, group=group)
    stats = ing.run(seconds=seconds, until_idle=until_idle)
    console.print_json(json.dumps({**stats.to_dict(), "pending": ing.pending()}))


@friendly_errors
def rollup(
    date: str = typer.Option(None, help="YYYY-MM-DD (UTC); default today"),
    lake: Path = typer.Option(Path("runs/lake")),
    release: Path = typer.Option(None, help="release dir, for catalog coverage"),
    engine: str = typer.Option("duckdb", help="duckdb (this process) or spark (the same SQL "
                               "as Spark jobs; pip install 'novarank[spark]')"),
    master: str = typer.Option(None, help="Spark master (default $SPARK_MASTER, else "
                               "local[2]; under spark-submit, the submit command's)"),
) -> None:
    """Roll one day of the lake up into daily tables, with integrity and reconciliation."""
    from novarank.analytics.rollup import rollup as run

    if engine not in ("duckdb", "spark"):
        raise typer.BadParameter(f"'{engine}' is not an engine (duckdb or spark)",
                                 param_hint="--engine")
    sql = None
    if engine == "spark":
        from novarank.spark.rollup import SparkSqlEngine
        from novarank.spark.session import spark_session

        sql = SparkSqlEngine(spark_session(master))
    res = run(lake, _date(date), _catalog_items(release), engine=sql)
    print_integrity(res)
    if not res.reconciliation["ok"]:
        raise typer.Exit(1)


def print_integrity(res: RollupResult) -> None:
    t = Table(title=f"integrity {res.date} (sql {res.sql_version} on {res.engine}, "
                    f"{res.seconds} s)")
    for col in ("type", "raw_rows", "events", "duplicates", "orphans", "late"):
        t.add_column(col, justify="left" if col == "type" else "right")
    for r in res.tables["daily_integrity"]:
        t.add_row(*(str(r[c]) for c in ("type", "raw_rows", "events", "duplicates", "orphans",
                                        "late")))
    console.print(t)
    rec = res.reconciliation
    verdict = "[green]exact[/]" if rec["ok"] else "[red]MISMATCH[/]"
    console.print(f"reconciliation with independent counts: {verdict} "
                  f"{json.dumps(rec['checks'])}")
    for problem in rec["problems"]:
        console.print(f"[red]reconciliation:[/] {problem}")
    for bad in res.bad_files:
        console.print(f"[yellow]skipped bad file[/] {bad['file']}: {bad['reason']}")


def print_tiles(out: dict, day: str) -> None:
    for tile in out.values():
        t = Table(title=f"{tile['tile'].title()} tile {day}: {tile['status'].upper()}")
        for col in ("metric", "value", "objective", "samples", "status"):
            t.add_column(col)
        for m in tile["metrics"]:
            colour = {"ok": "green", "breach": "red"}.get(m["status"], "yellow")
            t.add_row(m["name"], m["shown"], m["objective"], str(m["samples"]),
                      f"[{colour}]{m['status']}[/]")
        console.print(t)
    console.print(f"allocation: {out['outcomes']['allocation']}")


@friendly_errors
def tiles(
    date: str = typer.Option(None, help="YYYY-MM-DD (UTC); default today"),
    lake: Path = typer.Option(Path("runs/lake")),
    release: Path = typer.Option(None, help="release dir: offline quality and catalog size"),
    replaces: Path = typer.Option(None, help="the stable release it replaces (quality must "
                                  "not fall behind it)"),
    recall_floor: float = typer.Option(0.0, help="this data set's absolute Recall@10 floor"),
    split: str = typer.Option(None, help='planned split as JSON, e.g. {"control": 20, "a": 80}'),
    as_json: bool = typer.Option(False, "--json", help="print JSON only"),
) -> None:
    """Health and Outcomes tiles for one day (runs the rollup first if it is missing)."""
    from novarank.analytics.cuped import experiment_lifts
    from novarank.analytics.quality import release_quality
    from novarank.analytics.rollup import load_summary
    from novarank.analytics.rollup import rollup as run
    from novarank.analytics.tiles import health, outcomes

    day = _date(date)
    summary = load_summary(lake, day) or run(lake, day, _catalog_items(release)).to_dict()
    plan = json.loads(split) if split else None
    quality = release_quality(release, replaces)
    out = {"health": health(summary), "outcomes": outcomes(summary, plan, quality,
                                                           recall_floor,
                                                           experiment_lifts(lake, day))}
    if as_json:
        console.print_json(json.dumps(out, default=str))
        return
    print_tiles(out, day)
