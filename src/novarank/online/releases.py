"""Which release serves a request: the stable one, or the canary for a sticky share of users.

The rollout controller (`launch/rollout.py`) keeps one document, `rollout:current`, in the
state store. Every replica re-reads it with the toggles each second and follows it, so a
step up, a promotion or a rollback reaches all replicas within about a second, and a
restarted replica comes back serving what the document says. Switching is one reference
assignment (`Routing`): requests already running finish on what they started with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from novarank.config import ServiceSettings, Weights
from novarank.errors import ConfigError, NovarankError
from novarank.online.assignment import BUCKETS, bucket_of
from novarank.ranking.recommender import Recommender
from novarank.release.bundle import load_release
from novarank.release.lock import ReleaseLock

ROLLOUT_KEY = "rollout:current"
ERROR_PREFIX = "rollout:error:"  # + replica: a replica that could not load the canary
ACTIVE = ("running", "paused")  # the canary takes its share of users in these states


class ReleaseFailure(NovarankError):
    """A request failed inside the release it was routed to (HTTP 500). It names that
    release, so a canary that raises at request time is judged on its own errors."""

    code = "internal"

    def __init__(self, release: str, message: str) -> None:
        self.release = release
        super().__init__(message)


class InjectedFault(ReleaseFailure):
    """A drill's fault on a canary request: what the controller must catch."""

    code = "injected_fault"

    def __init__(self, release: str) -> None:
        super().__init__(release, f"injected fault on canary release {release}")


class Fault(BaseModel):
    """A drill fault on canary feeds: `errors` fails a share of them, `latency` delays them."""

    kind: Literal["errors", "latency"]
    rate: float = Field(1.0, gt=0, le=1, description="share of canary feeds affected")
    ms: float = Field(0.0, ge=0, le=10_000, description="added delay (latency)")

    @classmethod
    def parse(cls, text: str) -> Fault:
        """`errors:0.5` (half of canary feeds fail) or `latency:200` (200 ms added)."""
        kind, _, arg = text.partition(":")
        try:
            if kind == "errors":
                return cls(kind="errors", rate=float(arg or 1.0))
            if kind == "latency":
                return cls(kind="latency", ms=float(arg or 100.0))
        except ValueError:
            pass
        raise ConfigError(f"fault: expected errors:RATE or latency:MS, got {text!r}")


class ReleaseRef(BaseModel):
    version: str
    path: str


class RolloutPolicy(BaseModel):
    """How each step is judged (see launch/rollout.py): dwell, samples and harm margins."""

    step_seconds: float = Field(60.0, gt=0, description="least time on a step before moving")
    max_step_seconds: float = Field(900.0, gt=0, description="pause (no data) after this")
    min_requests: int = Field(200, ge=1, description="feeds per arm for error rate and latency")
    min_impressions: int = Field(1000, ge=0, description="impressions per arm for CTR "
                                 "(0: CTR is reported but not required)")
    sequential_alpha: float = Field(0.05, gt=0, lt=1, description="false-rollback budget "
                                    "of a step, over every look and every guardrail (each "
                                    "gets an equal share; launch/canary.py)")
    max_error_increase: float = Field(0.005, ge=0, description="absolute, e.g. 0.005 = 0.5 pp")
    max_latency_increase: float = Field(0.2, ge=0, description="relative rise of the median")
    min_latency_increase_ms: float = Field(2.0, ge=0, description="and at least this much: "
                                           "a slower cold start of 0.3 ms is no harm")
    max_ctr_drop: float = Field(0.1, ge=0, description="relative fall of the CTR")
    min_watches: int = Field(0, ge=0, description="watch events per arm for the watched "
                             "fraction (0: reported but not required)")
    max_watch_drop: float = Field(0.1, ge=0, description="relative fall of the mean watched "
                                  "fraction")
    promotion: Literal["no_harm", "non_inferior"] = Field(
        "no_harm", description="when a step that has lasted step_seconds moves on: no_harm = "
        "every check has its samples and no evidence of harm; non_inferior = besides, every "
        "guardrail's always-valid bound puts the harm inside its margin (else the step "
        "waits, then pauses at max_step_seconds)")


class RolloutDoc(BaseModel):
    """The rollout, as stored: what replicas follow and what the controller resumes from."""

    id: str
    stable: ReleaseRef
    canary: ReleaseRef
    lineage: list[str] = Field(default_factory=list, description="earlier stable versions")
    steps: list[float]
    step: int = 0
    percent: float = 0.0
    status: Literal["running", "paused", "promoted", "rolled_back", "aborted",
                    "concluded"] = "running"  # concluded: an interleaving found its answer
    reason: str = ""
    salt: str
    mode: Literal["canary", "interleave"] = Field(
        "canary", description="canary: the share is served the canary; interleave: the "
        "share is served one page merged from both releases by team draft, until the test "
        "on its clicks finds which release users prefer (launch/interleaving.py)")
    fault: Fault | None = None
    policy: RolloutPolicy = Field(default_factory=RolloutPolicy)
    started_at: float = Field(default_factory=time.time)
    step_started_at: float = Field(default_factory=time.time)
    decided_at: float | None = None
    controller: str | None = Field(None, description="the controller running the steps")
    heartbeat: float = Field(0.0, description="its last tick (unix s): a lease")
    history: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < s <= 100 for s in v) or v != sorted(set(v)):
            raise ValueError(f"must be increasing percentages in (0, 100], got {v}")
        return v

    def governs(self, configured: str) -> bool:
        """A replica configured with `configured` follows this rollout when it rolls out from
        that release (or from one it replaced): another configured release is a new deploy."""
        return configured == self.stable.version or configured in self.lineage


def read_doc(state: Any) -> RolloutDoc | None:
    raw = state.get_docs(ROLLOUT_KEY).get(ROLLOUT_KEY)
    return RolloutDoc.model_validate(raw) if raw else None


@dataclass(frozen=True)
class Served:
    """One loaded release: everything a feed is ranked and rendered with."""

    rec: Recommender
    version: str
    digest: str
    lock: ReleaseLock
    path: str


def load_served(path: str | Path, settings: ServiceSettings) -> Served:
    """Load and verify a release and give it the service's extra variant weights; refuses a
    release that lacks a variant of the split (its users would have nothing to rank with)."""
    model, index, lock = load_release(path)
    base = model.config.ranker
    extra = {name: Weights(**w) for name, w in settings.variant_weights.items()}
    rec = Recommender(model, base.model_copy(update={"variants": {**base.variants, **extra}}),
                      index=index)
    unknown = set(settings.split) - set(rec.ranker.variants)
    if unknown:
        raise ConfigError(f"split: variant(s) {sorted(unknown)} have no weights in release "
                          f"{lock.version} (known: {sorted(rec.ranker.variants)}; add them "
                          "to variant_weights)")
    return Served(rec, lock.version, rec.ranker.digest(), lock, str(path))


@dataclass(frozen=True)
class Routing:
    """Stable, canary and the canary's share, swapped as one object."""

    stable: Served
    canary: Served | None = None
    percent: float = 0.0
    salt: str = ""
    fault: Fault | None = None
    retired: dict[str, Served] = field(default_factory=dict)  # cursors made before a swap
    interleave: bool = False  # the canary's share is served merged pages (RolloutDoc.mode)

    def for_user(self, user_id: str) -> Served:
        if self.canary is not None and on_canary(self.salt, user_id, self.percent):
            return self.canary
        return self.stable

    def by_version(self, version: str) -> Served | None:
        if self.stable.version == version:  # every cache hit asks: the common answer first
            return self.stable
        for s in (self.canary, *self.retired.values()):
            if s is not None and s.version == version:
                return s
        return None

    def interleaved(self, served: Served) -> bool:
        """Whether a user routed to `served` is shown a page merged with the stable one."""
        return self.interleave and served is self.canary

    def loaded(self) -> list[Served]:
        return [s for s in (self.stable, self.canary) if s is not None]


def on_canary(salt: str, user_id: str, percent: float) -> bool:
    """Sticky: a user's bucket never changes, so raising the share only adds users."""
    return bucket_of(salt, user_id) < round(percent * BUCKETS / 100)
