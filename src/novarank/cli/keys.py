"""`novarank keys issue|revoke|list`: the API key file a replica reads (NOVARANK_API_KEYS_FILE).

A running replica re-reads the file within a second of a change: issue the new key, move
the clients over, revoke the old one, with no restart.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from novarank.cli.common import console, friendly_errors

app = typer.Typer(help="Scoped API keys: issue, revoke, list (hashed at rest).",
                  no_args_is_help=True)
FILE = typer.Option(..., "--file", envvar="NOVARANK_API_KEYS_FILE", help="the key file")


@app.command()
@friendly_errors
def issue(file: Path = FILE,
          name: str = typer.Option(..., help="who holds the key (shown in the audit log)"),
          scopes: str = typer.Option(..., help="comma-separated: read, events, catalog, "
                                               "privacy, admin"),
          limit: list[str] = typer.Option([], help="this key's rate budget per second and "
                                          "replica, e.g. --limit miss=2000 --limit "
                                          "events=20000 (default: NOVARANK_RATE_LIMITS)")
          ) -> None:
    """Add a key and print it once; the file keeps only its SHA-256."""
    from novarank.errors import ConfigError
    from novarank.keys import issue as issue_key

    limits = {}
    for item in limit:
        kind, _, rate = item.partition("=")
        try:
            limits[kind.strip()] = float(rate)
        except ValueError:
            raise ConfigError(f"--limit {item!r}: expected KIND=RATE, e.g. miss=2000") from None
    key = issue_key(file, name, [s.strip() for s in scopes.split(",") if s.strip()],
                    limits=limits or None)
    console.print(key, soft_wrap=True, highlight=False)


@app.command()
@friendly_errors
def revoke(key_id: str = typer.Argument(..., help="the id: the part after nvk_"),
           file: Path = FILE) -> None:
    """Revoke a key; replicas refuse it within a second."""
    from novarank.keys import revoke as revoke_key

    revoke_key(file, key_id)
    console.print(f"revoked {key_id}")


@app.command("list")
@friendly_errors
def list_keys(file: Path = FILE) -> None:
    """The file's keys (ids, names, scopes, state), never their hashes."""
    from novarank.keys import listing

    table = Table("id", "name", "scopes", "created", "state")
    for k in listing(file):
        table.add_row(k["id"], str(k.get("name", "")), ",".join(k["scopes"]),
                      str(k.get("created_at", "")),
                      "revoked" if k.get("revoked") else "active")
    console.print(table)
