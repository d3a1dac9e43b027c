"""`novarank release verify` and `novarank release sign`."""

from __future__ import annotations

from pathlib import Path

import typer

from novarank.cli.common import console, friendly_errors
from novarank.errors import ConfigError
from novarank.release.lock import KEY_ENV, sign_release, signing_key, verify_release

app = typer.Typer(help="Inspect, verify and sign locked releases.", no_args_is_help=True)


@app.command()
@friendly_errors
def verify(directory: Path = typer.Argument(..., help="release directory")) -> None:
    """Check the lock's own digest, its signature (with NOVARANK_RELEASE_KEY set) and every
    artifact; names each altered lock field and any missing/extra/altered file."""
    lock = verify_release(directory)
    signed = "signed, signature checked" if signing_key() else (
        "signed, signature not checked (no key)" if lock.signed else "unsigned")
    console.print(f"[green]ok[/] release {lock.version}: lock digest "
                  f"{(lock.digest or '')[:12]} ({signed}), {len(lock.files)} files "
                  f"match their sha256 (code {lock.code_version}, data "
                  f"{lock.data_fingerprint[:12]})")


@app.command()
@friendly_errors
def sign(directory: Path = typer.Argument(..., help="release directory")) -> None:
    """Sign a verified release with the key in NOVARANK_RELEASE_KEY (HMAC-SHA256)."""
    key = signing_key()
    if not key:
        raise ConfigError(f"{KEY_ENV} is not set: nothing to sign with")
    lock = sign_release(directory, key)
    console.print(f"[green]signed[/] release {lock.version} (digest "
                  f"{(lock.digest or '')[:12]})")
