"""Counters and histograms the request path adds to without a lock, exported as ordinary
Prometheus families.

prometheus_client's children take a lock and run four Python calls per `inc()`, and a
cached feed adds to seven of them. Here each thread adds to cells of its own (one dict
lookup by thread id, then a list item), so no two threads ever write the same cell, and a
scrape sums the cells: a scrape reads the same numbers (tests/test_tally.py). What it
gains a cached feed: bench/bench_ab.py with the revision before it.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from threading import get_ident
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString


class CounterCell:
    """One labelled counter: `inc()` from any thread."""

    __slots__ = ("_cells", "created")

    def __init__(self) -> None:
        self._cells: dict[int, list[float]] = {}
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        cell = self._cells.get(get_ident())
        if cell is None:
            cell = self._cells[get_ident()] = [0.0]
        cell[0] += amount

    def value(self) -> float:
        return sum(cell[0] for cell in list(self._cells.values()))


class HistogramCell:
    """One labelled histogram: `observe()` from any thread. A cell holds each bucket's own
    count (the last one +Inf) and then the sum."""

    __slots__ = ("_bounds", "_cells")

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(bounds)
        self._cells: dict[int, list[float]] = {}

    def observe(self, amount: float) -> None:
        cell = self._cells.get(get_ident())
        if cell is None:
            cell = self._cells[get_ident()] = [0.0] * (len(self._bounds) + 2)
        cell[bisect_left(self._bounds, amount)] += 1  # the first bound >= amount: le
        cell[-1] += amount

    def totals(self) -> tuple[list[float], float]:
        """(cumulative count per bucket, +Inf last; sum)."""
        summed = [sum(col) for col in zip(*list(self._cells.values()), strict=True)] or [
            0.0] * (len(self._bounds) + 2)
        cumulative, acc = [], 0.0
        for n in summed[:-1]:
            acc += n
            cumulative.append(acc)
        return cumulative, summed[-1]


class Tally:
    """A counter or histogram family (as prometheus_client's `Counter` and `Histogram`:
    the same names and samples), registered in `registry`."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = (), *,
                 registry: CollectorRegistry, buckets: Sequence[float] | None = None) -> None:
        self.name, self.documentation = name, documentation
        self.labelnames = tuple(labelnames)
        self.buckets = tuple(sorted(buckets)) if buckets is not None else None
        self._children: dict[tuple[str, ...], Any] = {}
        self._default = None if self.labelnames else self.labels()
        registry.register(self)

    def labels(self, *values: str) -> Any:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: labels {self.labelnames}, got {values}")
        key = tuple(str(v) for v in values)
        child = self._children.get(key)
        if child is None:
            child = self._children.setdefault(key, CounterCell() if self.buckets is None
                                              else HistogramCell(self.buckets))
        return child

    def inc(self, amount: float = 1.0) -> None:
        assert self._default is not None, f"{self.name} has labels"
        self._default.inc(amount)

    def observe(self, amount: float) -> None:
        assert self._default is not None, f"{self.name} has labels"
        self._default.observe(amount)

    def describe(self) -> list[Metric]:
        return [self._family()]

    def _family(self) -> Metric:
        if self.buckets is None:
            return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for values, child in list(self._children.items()):
            if isinstance(child, CounterCell):
                assert isinstance(family, CounterMetricFamily)
                family.add_metric(list(values), child.value(), created=child.created)
            else:
                assert isinstance(family, HistogramMetricFamily) and self.buckets is not None
                counts, total = child.totals()
                bounds = [floatToGoString(b) for b in self.buckets] + ["+Inf"]
                family.add_metric(list(values), list(zip(bounds, counts, strict=True)),
                                  total)
        yield family
