"""Replaying logged first pages through a release: what replay parity and the pre-traffic
estimate stand on.

With exploration on, every first page's `ranking` event carries what its ranking read
besides the release (online/window.py): when it was ranked, the user's live engagement,
which read of live trending it ranked with (that read's `trending` event holds its time
and counts), the weights with toggles applied, and each signal's contribution summed over
the window. A replay ranks with exactly those inputs, so a deterministic release
reproduces its pages; what it still cannot reproduce (catalog upserts, which live in the
state store) shows as a mismatch, never as a silent pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from novarank.config import SIGNALS
from novarank.evaluation.counterfactual import LoggedPage, depth
from novarank.stores.state import Engagement


@dataclass(frozen=True)
class RankContext:
    """One logged first page's inputs besides the release (None: not logged)."""

    user_key: str
    release: str
    ranked_at: int  # unix s
    window: int = 0  # the exploration window's length (what `signals` summed over)
    trending: str | None = None  # the trending read's id ("": the release's own trending)
    live: tuple[tuple[int, str], ...] | None = None  # (event code, item), newest first
    weights: tuple[float, ...] | None = None
    forgotten: bool = False
    signals: tuple[float, ...] | None = None  # summed over the logged window


@dataclass(frozen=True)
class Replayed:
    items: list[str]  # the replay's top n items
    signals: tuple[float, ...]  # each signal's contribution summed over the window


Trending = dict[str, tuple[int, dict[str, float]]]  # read id -> (time, live counts)


def logged_pages(lake: str, date: str, release: str | None = None
                 ) -> tuple[list[LoggedPage], list[RankContext]]:
    """The day's first pages that carry their exploration window, with their clicks, and
    each one's ranking inputs (parts written before a column have it null); with
    `release`, only the pages that release served."""
    import duckdb
    import pyarrow.parquet as pq

    from novarank.analytics.lake import clicked_positions, parquet_source, scan, sql_str

    found = scan(lake, date)
    rankings, clicks = found.files.get("ranking", []), found.files.get("click", [])
    if not rankings:
        return [], []
    columns = {n for f in rankings for n in pq.read_schema(f).names}
    if "window" not in columns:  # written before exploration existed
        return [], []

    def col(name: str, fallback: str = "NULL") -> str:
        return f'"{name}"' if name in columns else fallback

    ranked_at = f"coalesce({col('ranked_at')}, ts // 1000)"
    con = duckdb.connect()
    only = f" AND release = {sql_str(release)}" if release is not None else ""
    rows = con.sql(
        f'SELECT request_id, user_key, release, "window", epsilon, items, {ranked_at}, '
        f"{col('trending_id')}, {col('live_events')}, {col('live_items')}, "
        f"{col('weights')}, {col('forgotten', 'false')}, {col('signals')} "
        f'FROM {parquet_source(rankings)} WHERE "window" IS NOT NULL{only} '
        "ORDER BY ts, request_id").fetchall()
    clicked = clicked_positions(con, clicks)
    con.close()
    pages = [LoggedPage(tuple(r[3]), float(r[4]), tuple(r[5]), frozenset(clicked.get(r[0], ())))
             for r in rows]
    contexts = [RankContext(
        user_key=r[1], release=r[2], ranked_at=int(r[6]), window=len(r[3]),
        trending=r[7],
        live=None if r[8] is None else tuple(zip(r[8], r[9], strict=True)),
        weights=None if r[10] is None else tuple(r[10]), forgotten=bool(r[11]),
        signals=None if r[12] is None else tuple(r[12])) for r in rows]
    return pages, contexts


def trending_log(lake: str, date: str) -> Trending:
    """Each logged read of live trending: its time and counts, by read id."""
    import duckdb

    from novarank.analytics.lake import parquet_source, scan

    files = scan(lake, date).files.get("trending", [])
    if not files:
        return {}
    con = duckdb.connect()
    rows = con.sql(f'SELECT read_id, "at", items, counts FROM {parquet_source(files)}'
                   ).fetchall()
    con.close()
    return {rid: (int(at), dict(zip(items, counts, strict=True)))
            for rid, at, items, counts in rows}


def check_depth(pages: list[LoggedPage], k: int) -> None:
    """Refuse a page size the logs cannot speak for: past the pages served (no click was
    possible there) or past the exploration window (no chance was logged)."""
    from novarank.errors import InputError

    if k > depth(pages):
        raise InputError("k", f"must be at most the logged pages' depth ({depth(pages)}: the "
                         f"page size served and the exploration window), got {k}")


def replay(release: str, contexts: list[RankContext], trending: Trending, n: int,
           variant: str = "control", logged_weights: bool = True) -> list[Replayed]:
    """What `release` ranks for each logged page at its ranking time, with the inputs the
    page logged: the live engagement, the trending read then, and (with `logged_weights`,
    for the release that served) the weights; a candidate ranks with its own weights for
    `variant`. A page that logged no inputs replays with the release's history and
    trending decayed to its time only. A key the release does not know ranks as a
    newcomer."""
    from novarank.ranking.recommender import Recommender
    from novarank.release import load_release
    from novarank.telemetry.schemas import user_key

    model, index, _ = load_release(release)
    rec = Recommender(model, index=index)
    base = rec.catalog
    by_key = {user_key(u): u for u in model.user_ids.tolist()}
    own = rec.weights(variant)
    out: list[Replayed] = []
    built: tuple[str | None, int] | None = None
    for c in contexts:
        # a catalog-wide decay and sort: once per trending read, not per page
        key = (c.trending, c.ranked_at if c.live is None else 0)
        if key != built:
            rec.catalog = base
            if c.live is None:  # no inputs logged: the release's trending at that time
                rec.catalog = rec.catalog_at(c.ranked_at)
            elif c.trending:  # a read that was not logged ranks with no live counts
                at, counts = trending.get(c.trending, (c.ranked_at, {}))
                rec.catalog = rec.catalog_at(at, counts, c.trending)
            built = key
        user = by_key.get(c.user_key, f"\x00unknown:{c.user_key}")
        live = [Engagement(user, item, int(ev), 0.0, 0) for ev, item in (c.live or ())]
        p = rec.profile(user, live, use_release=not c.forgotten)
        w = (np.asarray(c.weights, np.float32) if logged_weights and c.weights is not None
             else own)
        r = rec.rank(p, n, w, c.ranked_at)
        items = np.concatenate([r.items, r.backfill])[:n]
        ranked = r.contributions.reshape(-1, len(SIGNALS))[: c.window]
        out.append(Replayed([str(model.item_ids[i]) for i in items],
                            tuple(float(x) for x in ranked.sum(0))))
    return out


def signal_drift(contexts: list[RankContext], replayed: list[Replayed]) -> dict[str, float]:
    """Per signal: the mean absolute difference between the logged and the replayed
    contribution (summed over the window), relative to the logged one's mean size; pages
    that logged no contributions are left out."""
    pairs = [(c.signals, r.signals) for c, r in zip(contexts, replayed, strict=True)
             if c.signals is not None]
    if not pairs:
        return {}
    logged = np.asarray([a for a, _ in pairs], np.float64)
    again = np.asarray([b for _, b in pairs], np.float64)
    size = np.maximum(np.abs(logged).mean(0), 1e-9)
    return {s: round(float(d), 5) for s, d in
            zip(SIGNALS, np.abs(logged - again).mean(0) / size, strict=True)}


@dataclass(frozen=True)
class Parity:
    date: str
    release: str
    k: int
    pages: int
    exact: float  # share of pages whose top k the replay reproduced in order
    jaccard: float
    kendall_tau: float
    with_inputs: int  # pages that logged their ranking inputs
    signal_drift: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parity(lake: str, release: str, date: str, k: int, variant: str = "control") -> Parity:
    """Replay parity of a release over the first pages it served on `date`: the share of
    top-k reproduced exactly, Jaccard, Kendall tau, and each signal's drift."""
    from novarank.errors import ConfigError
    from novarank.evaluation.overlap import list_agreement
    from novarank.release import read_lock

    version = read_lock(release).version
    pages, contexts = logged_pages(lake, date, release=version)
    if not pages:
        raise ConfigError(f"no feed ranking of release {version} with an exploration window "
                          f"on {date} in {lake}: serve with NOVARANK_EXPLORATION_EPSILON > 0")
    check_depth(pages, k)
    # as deep as the logged windows: their signal sums cover all of them
    deepest = max(k, *(c.window for c in contexts))
    again = replay(release, contexts, trending_log(lake, date), deepest, variant)
    agree = list_agreement([list(p.window[:k]) for p in pages], [r.items for r in again], k)
    return Parity(date, version, k, int(agree["pages"]), float(agree["exact"]),
                  float(agree["jaccard"]), float(agree["kendall_tau"]),
                  sum(c.live is not None for c in contexts), signal_drift(contexts, again))
