"""The lock-free counters and histograms (online/tally.py) expose what prometheus_client's
own would, and lose no add when many threads add at once."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from novarank.online.tally import Tally

BOUNDS = (0.001, 0.01, 0.1, 1.0)


def _samples(registry: CollectorRegistry) -> list[tuple[str, list, float]]:
    return sorted((s.name, sorted(s.labels.items()), s.value) for m in registry.collect()
                  for s in m.samples
                  if not s.name.endswith("_created"))


def test_a_tally_exposes_the_samples_prometheus_client_does():
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    pairs = [(Tally("x_total", "x", ["route"], registry=ours),
              Counter("x_total", "x", ["route"], registry=theirs)),
             (Tally("y_seconds", "y", ["route"], registry=ours, buckets=BOUNDS),
              Histogram("y_seconds", "y", ["route"], registry=theirs, buckets=BOUNDS)),
             (Tally("z_ratio", "z", registry=ours, buckets=BOUNDS),
              Histogram("z_ratio", "z", registry=theirs, buckets=BOUNDS))]
    values = [0.0005, 0.001, 0.0011, 0.05, 0.1, 0.5, 1.0, 3.0, 0.0]
    for n, v in enumerate(values):
        route = "a" if n % 3 else "b"
        for tally, native in pairs[:2]:
            if isinstance(native, Counter):
                tally.labels(route).inc(v)
                native.labels(route).inc(v)
            else:
                tally.labels(route).observe(v)
                native.labels(route).observe(v)
        pairs[2][0].observe(v)
        pairs[2][1].observe(v)
    assert _samples(ours) == _samples(theirs)
    text = generate_latest(ours).decode()
    assert 'y_seconds_bucket{le="+Inf",route="b"} 3.0' in text
    assert 'y_seconds_bucket{le="0.1",route="a"} 4.0' in text  # 0.0005 .. 0.1: le is <=
    assert "x_total{route=" in text and "x_created{route=" in text


def test_no_add_is_lost_when_threads_add_at_once():
    registry = CollectorRegistry()
    counter = Tally("c_total", "c", ["k"], registry=registry).labels("v")
    hist = Tally("h_seconds", "h", registry=registry, buckets=BOUNDS)
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(20_000):
            counter.inc()
            hist.observe(0.05)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = {(s.name, s.labels.get("le")): s.value for m in registry.collect() for s in m.samples}
    assert got[("c_total", None)] == 160_000
    assert got[("h_seconds_count", None)] == 160_000
    assert got[("h_seconds_bucket", "0.01")] == 0 and got[("h_seconds_bucket", "0.1")] == 160_000
    assert got[("h_seconds_sum", None)] == pytest.approx(8_000)


def test_a_counter_refuses_to_go_down_and_labels_are_checked():
    registry = CollectorRegistry()
    tally = Tally("d_total", "d", ["a"], registry=registry)
    with pytest.raises(ValueError):
        tally.labels("x").inc(-1)
    with pytest.raises(ValueError):
        tally.labels("x", "y")
    with pytest.raises(ValueError):  # a second family of the same name
        Tally("d_total", "d", ["a"], registry=registry)
