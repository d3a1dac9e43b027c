"""Interleaving as an experiment: what the clicks on served interleaved pages say
(`served_preference`, read by `launch interleaving` and the rollout controller), and on
the simulator how many users it needs against an A/B test on CTR. Both designs are judged
by an always-valid test (analytics/sequential.py), so reading it after every page or
stopping at the first significant look is honest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from novarank.analytics.sequential import TAU, mean_difference, two_sided_p
from novarank.launch.offpolicy import Ranker
from novarank.launch.simulator import Simulator
from novarank.ranking.interleave import Interleaved, team_draft

TAU_PREFERENCE = 0.05  # the scale of a per-page preference (-1..1) the test finds fastest


@dataclass(frozen=True)
class Detection:
    design: str
    users: int | None  # users until the test first rejected "no difference"; None: never
    looked_at: int  # users seen (the cap when never)
    effect: float  # the final estimate: mean preference for B, or CTR of B - CTR of A
    p_value: float


@dataclass(frozen=True)
class Preference:
    """The served interleaving so far: each page's preference is +1 when its clicks favour
    the canary's slots, -1 the stable's, 0 for a tie or no click; the always-valid test is
    on their mean, the credit share is the canary's part of the credited clicks."""

    canary: str
    pages: int
    canary_wins: int
    stable_wins: int
    clicks: dict[str, int]  # credited clicks per team: "canary", "stable"
    mean: float  # mean preference for the canary, -1..1
    p_value: float  # always-valid, two-sided: "users prefer neither"

    @property
    def credit_share(self) -> float | None:
        total = self.clicks["canary"] + self.clicks["stable"]
        return self.clicks["canary"] / total if total else None

    def winner(self, alpha: float) -> Literal["canary", "stable"] | None:
        """The release users prefer once the test rejects "neither" at `alpha`."""
        if self.p_value >= alpha or self.mean == 0:
            return None
        return "canary" if self.mean > 0 else "stable"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "credit_share": self.credit_share}


def preference_of(canary: str, pages: list[tuple[list[int], set[int]]]) -> Preference:
    """The test on (teams per slot, clicked positions) of each interleaved page."""
    prefs, clicks = [], {"canary": 0, "stable": 0}
    for teams, clicked in pages:
        valid = [p for p in clicked if p < len(teams)]
        prefs.append(-Interleaved([], teams).credit(valid))  # + favours the canary (B)
        on_canary = sum(teams[p] for p in valid)
        clicks["canary"] += on_canary
        clicks["stable"] += len(valid) - on_canary
    d = np.asarray(prefs, float)
    n = len(d)
    var = float(d.var(ddof=1)) / n if n > 1 else 0.0
    p = two_sided_p(float(d.mean()), var, TAU_PREFERENCE) if var > 0 else 1.0
    return Preference(canary, n, int((d > 0).sum()), int((d < 0).sum()), clicks,
                      float(d.mean()) if n else 0.0, p)


def served_preference(lake: str | Path, canary: str, since: float, until: float
                      ) -> Preference:
    """The interleaved pages `canary` served in [since, until) (unix s), with the clicks
    that joined them by request id and slot, from the telemetry lake."""
    import duckdb
    import pyarrow.parquet as pq

    from novarank.analytics.lake import clicked_positions, files_between, parquet_source, sql_str

    files = files_between(lake, ("ranking", "click"), since, until)
    rankings = [f for f in files["ranking"] if "teams" in pq.read_schema(f).names]
    if not rankings:
        return preference_of(canary, [])
    con = duckdb.connect()
    rows = con.sql(
        f"SELECT DISTINCT ON (event_id) request_id, teams FROM {parquet_source(rankings)} "
        f"WHERE teams IS NOT NULL AND release = {sql_str(canary)} "
        f"AND ts >= {int(since * 1000)} AND ts < {int(until * 1000)}").fetchall()
    clicked = clicked_positions(con, files["click"]) if rows else {}
    con.close()
    return preference_of(canary, [(list(t), clicked.get(r, set())) for r, t in rows])


def interleaved(sim: Simulator, a: Ranker, b: Ranker, k: int, max_users: int, seed: int,
                alpha: float = 0.05, every: int = 50) -> Detection:
    rng = np.random.default_rng(seed)
    prefs: list[float] = []
    p = 1.0
    for n in range(1, max_users + 1):
        user = sim.pick_user()
        page = team_draft(a(user, k), b(user, k), k, rng)
        prefs.append(-float(page.credit(sim.clicks(user, page.items, rng))))  # + favours B
        if n % every == 0:
            d = np.asarray(prefs)
            var = float(d.var(ddof=1)) / n
            p = two_sided_p(float(d.mean()), var, TAU_PREFERENCE) if var > 0 else 1.0
            if p < alpha:
                return Detection("interleaving", n, n, float(d.mean()), p)
    return Detection("interleaving", None, max_users, float(np.mean(prefs)), p)


def ab_test(sim: Simulator, a: Ranker, b: Ranker, k: int, max_users: int, seed: int,
            alpha: float = 0.05, every: int = 50) -> Detection:
    rng = np.random.default_rng(seed)
    ctr: tuple[list[float], list[float]] = ([], [])
    p, est = 1.0, 0.0
    for n in range(1, max_users + 1):
        user = sim.pick_user()
        arm = int(rng.random() < 0.5)
        page = (a, b)[arm](user, k)
        ctr[arm].append(len(sim.clicks(user, page, rng)) / k)
        if n % every == 0 and min(len(ctr[0]), len(ctr[1])) > 1:
            est, var = mean_difference(ctr[1], ctr[0])
            p = two_sided_p(est, var, TAU["ctr"]) if var > 0 else 1.0
            if p < alpha:
                return Detection("ab", n, n, est, p)
    return Detection("ab", None, max_users, est, p)
