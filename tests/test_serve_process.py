"""`novarank serve` as a real process: readiness, then SIGTERM loses no accepted event."""

from __future__ import annotations

import httpx
import pyarrow.parquet as pq
import pytest

from novarank.cli.demo_service import KEYED, free_port, start_server, stop_server


@pytest.mark.slow
def test_sigterm_flushes_every_accepted_event(tmp_path):
    from novarank.config import TrainConfig
    from novarank.data.synthetic import SyntheticConfig, generate
    from novarank.release import save_release
    from novarank.training import fit_model

    d = generate(SyntheticConfig(users=200, items=150, events=10_000, seed=9))
    save_release(fit_model(d.dataset, TrainConfig(als_iterations=2, als_factors=8, tune=False)),
                 tmp_path / "rel")
    port = free_port()
    proc = start_server(tmp_path / "rel", tmp_path, port)
    try:
        events = [{"type": "click", "user_id": f"u{i % 50}", "item_id": f"v{i % 150}",
                   "event_id": f"click-{i}"} for i in range(300)]  # 300 distinct events
        r = httpx.post(f"http://127.0.0.1:{port}/v1/events", json=events, timeout=30,
                       headers=KEYED)
        assert r.json()["accepted"] == 300
        assert httpx.get(f"http://127.0.0.1:{port}/v1/users/u1/feed", timeout=30,
                         headers=KEYED).status_code == 200
    finally:
        stop_server(proc)
    clicks = sum(pq.read_table(p).num_rows
                 for p in (tmp_path / "lake" / "events" / "click").rglob("*.parquet"))
    assert clicks == 300  # nothing was flushed before shutdown: the buffer held them all
    requests = list((tmp_path / "lake" / "events" / "request").rglob("*.parquet"))
    assert requests
