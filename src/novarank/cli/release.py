"""`novarank release verify`."""

from __future__ import annotations

from pathlib import Path

import typer

from novarank.cli.common import console, friendly_errors
from novarank.release.lock import verify_release

app = typer.Typer(help="Inspect and verify locked releases.", no_args_is_help=True)


@app.command()
@friendly_errors
def verify(directory: Path = typer.Argument(..., help="release directory")) -> None:
    """Check every artifact against release.lock.json; names any missing/extra/altered file."""
    lock = verify_release(directory)
    console.print(f"[green]ok[/] release {lock['version']}: {len(lock['files'])} files match "
                  f"their sha256 (code {lock['code_version']}, data "
                  f"{lock['data_fingerprint'][:12]})")
