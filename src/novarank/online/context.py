"""What every role of the service shares, built once by RankingService and handed to each
role explicitly (no role reaches into another through attributes it does not own)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from novarank.config import ServiceSettings
from novarank.online.metrics import ServiceMetrics
from novarank.online.tiered_cache import TieredCache
from novarank.online.toggles import ToggleWatcher
from novarank.stores.state import StateStore
from novarank.telemetry.emitter import Emitter


@dataclass(frozen=True)
class ServiceContext:
    settings: ServiceSettings
    state: StateStore
    cache: TieredCache
    events: Emitter
    metrics: ServiceMetrics
    toggles: ToggleWatcher
    replica: str  # host:pid, how this replica names itself in shared documents
    # the time feeds are ranked at: the wall clock when serving; a release's own clock
    # for reproducible offline feeds (`novarank recommend`)
    clock: Callable[[], float] = field(default=time.time)
