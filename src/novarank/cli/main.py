"""Entry point: `novarank --help`."""

from __future__ import annotations

import typer

from novarank.cli import data, keys, launch, ops, release, rollout
from novarank.cli.analytics import ingest, rollup, tiles
from novarank.cli.common import single_blas_thread
from novarank.cli.recommend import recommend
from novarank.cli.serve import cache_app, serve
from novarank.cli.train import demo, evaluate, train

app = typer.Typer(help="novarank: personalized ranking that proves its own launch.",
                  no_args_is_help=True, pretty_exceptions_show_locals=False)
app.command()(train)
app.command()(evaluate)
app.command()(recommend)
app.command()(demo)
app.command()(serve)
app.command()(ingest)
app.command()(rollup)
app.command()(tiles)
app.add_typer(cache_app, name="cache")
app.add_typer(release.app, name="release")
app.add_typer(data.app, name="data")
app.add_typer(launch.app, name="launch")
app.add_typer(ops.app, name="ops")
app.add_typer(rollout.app, name="rollout")
app.add_typer(keys.app, name="keys")


@app.callback()
def _setup() -> None:
    single_blas_thread()


if __name__ == "__main__":
    app()
