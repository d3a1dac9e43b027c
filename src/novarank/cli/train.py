"""`novarank train`, `novarank evaluate` and the `novarank demo` main job."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer

from novarank.cli.common import console, friendly_errors, metrics_table, steps
from novarank.cli.recommend import print_feed
from novarank.config import TrainConfig
from novarank.data.loaders import load
from novarank.pipeline import LOCAL, offline, train_release

DATA_HELP = ("'ml-100k' (built in), 'synthetic[:users=..,items=..,events=..,seed=..]', "
             "or a path (MovieLens dir, RecBole .inter, generic CSV/Parquet)")


class TrainEngine(StrEnum):
    local = "local"
    spark = "spark"


@friendly_errors
def train(
    data: str = typer.Option(..., help=DATA_HELP + "; with --engine spark also a Parquet "
                             "path or prefix read by Spark (parquet:s3a://bucket/interactions)"),
    out: Path = typer.Option(..., help="release directory to create, e.g. releases/v1"),
    tune: bool = typer.Option(True, help="tune blend weights on a validation split"),
    evaluate: bool = typer.Option(True, help="evaluate on the temporal test split"),
    version: str = typer.Option(None, help="release version (default: directory name)"),
    engine: TrainEngine = typer.Option(TrainEngine.local, help="local: this process; spark: "
                                       "Spark jobs (pip install 'novarank[spark]')"),
    master: str = typer.Option(None, help="Spark master (default $SPARK_MASTER, else local[2]; "
                               "under spark-submit, the submit command's)"),
    items: str = typer.Option(None, help="item catalog Parquet for a Spark-read --data"),
    lake: Path = typer.Option(None, help="also train on this telemetry lake's clicks and "
                              "engagement (users the data knows are matched by their key)"),
    lake_since: str = typer.Option(None, help="only lake days from this YYYY-MM-DD on"),
) -> None:
    """Fit every component, tune, evaluate and write a locked release."""
    with steps("train") as step:
        step(f"loading {data}" + (f" and the lake {lake}" if lake else ""))
        source: Any
        trainer: Any
        if engine is TrainEngine.spark:
            from novarank.spark.engine import SparkEngine
            from novarank.spark.interactions import with_feedback
            from novarank.spark.session import spark_session

            trainer = SparkEngine(spark_session(master))
            source = trainer.read(data, items)
            if lake:
                source = with_feedback(trainer.spark, source, str(lake), lake_since)
        else:
            from novarank.analytics.feedback import with_feedback as local_feedback

            trainer, source = LOCAL, load(data)
            if lake:
                source = local_feedback(source, lake, lake_since)
        name = source.name
        _, res, lock = train_release(source, out, TrainConfig(), do_tune=tune,
                                     do_evaluate=evaluate, version=version, step=step,
                                     engine=trainer)
    if res.report:
        console.print(metrics_table(res.report.rows, f"offline metrics @10 on {name} "
                                    f"({engine.value} engine)", cohorts=False))
    console.print(f"release [bold]{lock.version}[/] written to {out} "
                  f"({len(lock.files)} files locked, code {lock.code_version})")


@friendly_errors
def evaluate(
    data: str = typer.Option("ml-100k", help=DATA_HELP),
    out: Path = typer.Option(None, help="write the metrics as JSON here"),
    max_users: int = typer.Option(5_000, help="evaluate a seeded sample of at most N users"),
    tune: bool = typer.Option(True, help="tune weights on validation first"),
) -> None:
    """Offline evaluation: the ranker and its baselines, overall and per cohort."""
    with steps("evaluate") as step:
        step(f"loading {data}")
        ds = load(data)
        res = offline(ds, TrainConfig(), do_tune=tune, max_eval_users=max_users, step=step)
    assert res.report is not None
    console.print(metrics_table(res.report.rows, f"offline metrics @10 on {ds.name} "
                                f"(per-user temporal split, {res.report.users} users)"))
    if res.tuning:
        console.print(f"tuned on validation: NDCG@10 {res.tuning.ndcg_before:.4f} -> "
                      f"{res.tuning.ndcg_after:.4f}; weights {res.tuning.to_dict()['weights']}, "
                      f"als_mix {res.tuning.ranker.als_mix}")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"data": ds.describe(), **res.metrics()}, indent=2))
        console.print(f"metrics written to {out}")


@friendly_errors
def demo(
    workdir: Path = typer.Option(Path("runs/demo"), help="where the demo writes its release"),
    data: str = typer.Option("synthetic:users=4000,items=1500,events=250000",
                             help=DATA_HELP),
    serve: bool = typer.Option(True, help="also start the service and send it requests"),
    dry_run: bool = typer.Option(True, help="end with the staging dry-run's go/no-go record"),
) -> None:
    """The main job on the embedded default: train, evaluate, lock, show feeds."""
    import shutil

    release = workdir / "release"
    shutil.rmtree(release, ignore_errors=True)
    truth = None
    with steps("demo") as step:
        step(f"generating {data}")
        if data.startswith("synthetic"):
            from novarank.data.synthetic import SyntheticConfig, generate

            synth = generate(SyntheticConfig.parse(data))
            ds, truth = synth.dataset, synth.truth
        else:
            ds = load(data)
        _, res, lock = train_release(ds, release, TrainConfig(), version="demo", step=step)
    console.print(f"dataset: {ds.describe()}")
    assert res.report is not None
    console.print(metrics_table(res.report.rows, "offline metrics @10 (temporal split)"))
    console.print(f"locked release {release} ({len(lock.files)} files), verifying and "
                  "loading it back…")
    from novarank.online.service import open_local

    service = open_local(release, at="release")  # verifies and loads it, as serve does
    model = service.rec.model
    sizes = model.hist_indptr[1:] - model.hist_indptr[:-1]
    heavy = str(model.user_ids[int(sizes.argmax())])
    light = str(model.user_ids[int(abs(sizes - 10).argmin())])
    try:
        for user in (heavy, light, "new-user"):
            print_feed(service.feeds.feed(user, k=5, override="control"))
    finally:
        service.close()
    if serve:
        from novarank.cli.demo_service import tour

        for stale in ("state.db", "state.db-wal", "state.db-shm"):
            (workdir / stale).unlink(missing_ok=True)
        shutil.rmtree(workdir / "lake", ignore_errors=True)
        tour(release, workdir.resolve(), [heavy, light], truth=truth,
             user_index={str(u): i for i, u in enumerate(ds.user_ids.tolist())},
             item_index={str(it): i for i, it in enumerate(ds.items.ids.tolist())})
    if dry_run:
        from typer.main import get_command

        from novarank.cli.launch import app as launch_app

        console.rule("staging dry-run: the preflight and the launch gates")
        checkout = Path(__file__).resolve().parents[3] / "deploy"  # src/novarank/cli/ -> repo
        # through the command line parser, so every option keeps its declared default
        get_command(launch_app).main([
            "dry-run", "--data", data, "--release", str(release), "--sessions", "600", "--split",
            '{"control": 20, "treatment_a": 40, "treatment_b": 40}',
            "--deploy", str(checkout if checkout.exists() else Path("deploy")),
            "--out", str(workdir / "dryrun"), "--seed", "0",
            # gate 12: with 3,000 explored sessions its lower bound sat within noise of the
            # 5% margin (a CI run came out INCONCLUSIVE); 6,000 narrow it by 1/sqrt(2)
            "--explored-sessions", "6000"], standalone_mode=False)
        from novarank.cli.demo_service import local_channels
        from novarank.cli.launch import notify

        console.rule("Stage 1 notifications: delivered to a local SMTP sink and webhook")
        with local_channels(workdir.resolve()) as channels:
            notify(audience=None, pack=workdir / "dryrun", send=True, channels=channels,
                   retries=3, baseline=None, alertmanager_url=None)
