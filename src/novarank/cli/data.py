"""`novarank data synth`: write a synthetic catalog in the generic format."""

from __future__ import annotations

from pathlib import Path

import typer

from novarank.cli.common import console, friendly_errors
from novarank.data.synthetic import SyntheticConfig, generate, save

app = typer.Typer(help="Data sets.", no_args_is_help=True)


@app.command()
@friendly_errors
def synth(
    out: Path = typer.Option(..., help="directory for interactions.parquet, items.parquet, truth"),
    users: int = typer.Option(SyntheticConfig.users),
    items: int = typer.Option(SyntheticConfig.items),
    events: int = typer.Option(SyntheticConfig.events),
    seed: int = typer.Option(SyntheticConfig.seed),
) -> None:
    """Generate the synthetic video platform (deterministic by seed) with its ground truth."""
    data = generate(SyntheticConfig(users=users, items=items, events=events, seed=seed))
    save(data, out)
    console.print(f"{data.dataset.describe()} -> {out}")
