"""`novarank recommend` (one feed with reasons, or a batch to JSON lines)."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer
from rich.table import Table

from novarank.cli.common import console, friendly_errors
from novarank.config import SIGNALS
from novarank.errors import ConfigError
from novarank.ranking.recommender import Feed, Recommender
from novarank.release.bundle import load_release

SHORT = {"relevance": "rel", "freshness": "fresh", "trending": "trend", "affinity": "affin",
         "quality": "qual"}


def print_feed(feed: Feed, release: str) -> None:
    title = (f"feed for {feed.user_id} ({'cold start' if feed.cold else 'known user'}, "
             f"variant {feed.variant}, release {release})")
    table = Table(title=title, caption="per-signal contributions: score = sum of the five")
    for col in ("item", "title", "score", *SHORT.values(), "via"):
        table.add_column(col, justify="left" if col in ("item", "title", "via") else "right",
                         no_wrap=col != "title")
    for it in feed.items:
        table.add_row(it.item_id, it.title[:28], f"{it.score:.2f}",
                      *(f"{it.reasons.get(s, 0.0):+.2f}" for s in SIGNALS),
                      "rank" if it.source == "ranked" else "fill")
    console.print(table)


@friendly_errors
def recommend(
    release: Path = typer.Option(..., help="release directory"),
    user: str = typer.Option(None, help="one user id"),
    users: Path = typer.Option(None, help="file with one user id per line (batch mode)"),
    k: int = typer.Option(10, "-k", "--k", help="items per feed"),
    variant: str = typer.Option("control", help="experiment variant (weight set)"),
    out: Path = typer.Option(None, help="batch output, one JSON line per user"),
    now: int = typer.Option(None, help="unix time to rank at (default: the release's clock)"),
) -> None:
    """Show one user's feed with per-signal reasons, or score many users in batch."""
    if (user is None) == (users is None):
        raise ConfigError("give exactly one of --user or --users")
    model, index, lock = load_release(release)
    rec = Recommender(model, index=index)
    at = model.as_of if now is None else now
    if user is not None:
        print_feed(rec.recommend(user, k=k, variant=variant, now=at), lock.version)
        return
    if out is None:
        raise ConfigError("--users needs --out for the JSON lines")
    if not users.exists():
        raise ConfigError(f"--users file not found: {users}")
    ids = [line.strip() for line in users.read_text().splitlines() if line.strip()]
    with out.open("wb") as f:
        for uid in ids:
            feed = rec.recommend(uid, k=k, variant=variant, now=at)
            f.write(orjson.dumps({"user_id": uid, "cold": feed.cold, "items": [
                {"item_id": it.item_id, "score": it.score, "source": it.source,
                 "reasons": it.reasons} for it in feed.items]}) + b"\n")
    console.print(f"{len(ids)} feeds written to {out}")
