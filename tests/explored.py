"""A lake of explored first pages served by the real app, with clicks between them (so live
engagement and live trending move the rankings): what replay and the estimates read."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def serve_explored(release: Path, users: list[str], lake: Path, state_db: Path, pages: int,
                   k: int = 10, window: int = 30, seed: int = 0, refresh_every: int = 60
                   ) -> None:
    from fastapi.testclient import TestClient

    from novarank.api import create_app
    from novarank.config import ServiceSettings

    settings = ServiceSettings(release=release, state_url=f"sqlite:///{state_db}",
                               events_url=f"file://{lake}", exploration_epsilon=0.3,
                               exploration_window=window,
                               rate_limits={"catalog": 20.0, "events": 5000.0, "miss": 0.0})
    rng = np.random.default_rng(seed)
    with TestClient(create_app(settings)) as c:
        for n in range(pages):
            user = users[n % len(users)]
            feed = c.get(f"/v1/users/{user}/feed?k={k}").json()
            clicks = [{"type": "click", "user_id": user, "item_id": it["item_id"],
                       "request_id": feed["request_id"], "position": pos}
                      for pos, it in enumerate(feed["items"]) if rng.random() < 0.3 / (1 + pos)]
            if clicks:
                assert c.post("/v1/events", json=clicks).status_code in (200, 202)
            if n % refresh_every == refresh_every - 1:
                svc = c.app.state.service
                svc.live.refresh_trending(svc.routing.loaded())
