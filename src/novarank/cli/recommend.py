"""`novarank recommend` (one feed with reasons, or a batch to JSON lines)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import typer
from rich.table import Table

from novarank.cli.common import console, friendly_errors
from novarank.config import SIGNALS
from novarank.errors import ConfigError

if TYPE_CHECKING:
    from novarank.online.results import FeedPage

SHORT = {"relevance": "rel", "freshness": "fresh", "trending": "trend", "affinity": "affin",
         "quality": "qual"}


def print_feed(feed: FeedPage) -> None:
    title = (f"feed for {feed.user_id} ({'cold start' if feed.cold else 'known user'}, "
             f"variant {feed.variant}, release {feed.release})")
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
    """Show one user's feed with per-signal reasons, or score many users in batch. The
    feeds come from the same feed path as the HTTP API, in this process, with no live
    engagement, ranked at the release's clock unless --now is given."""
    if (user is None) == (users is None):
        raise ConfigError("give exactly one of --user or --users")
    if users is not None and out is None:
        raise ConfigError("--users needs --out for the JSON lines")
    if users is not None and not users.exists():
        raise ConfigError(f"--users file not found: {users}")
    from novarank.online.service import open_local  # the serving stack, for this command only

    service = open_local(release, at="release" if now is None else now)
    try:
        if user is not None:
            print_feed(service.feeds.feed(user, k, override=variant))
            return
        ids = [line.strip() for line in users.read_text().splitlines() if line.strip()]
        with out.open("wb") as f:
            for uid in ids:
                feed = service.feeds.feed(uid, k, override=variant)
                f.write(orjson.dumps({"user_id": uid, "cold": feed.cold, "items": [
                    {"item_id": it.item_id, "score": it.score, "source": it.source,
                     "reasons": it.reasons} for it in feed.items]}) + b"\n")
        console.print(f"{len(ids)} feeds written to {out}")
    finally:
        service.close()
