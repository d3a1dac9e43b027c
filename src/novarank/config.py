"""Typed configuration for training and ranking; built once at the entry point, passed down."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SIGNALS = ("relevance", "freshness", "trending", "affinity", "quality")


class Weights(BaseModel):
    """Blend weights of the five signals; one set per experiment variant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    relevance: float = Field(default=1.0, ge=0, le=100)
    freshness: float = Field(default=0.1, ge=0, le=100)
    trending: float = Field(default=0.1, ge=0, le=100)
    affinity: float = Field(default=0.1, ge=0, le=100)
    quality: float = Field(default=0.05, ge=0, le=100)

    def vector(self) -> list[float]:
        return [getattr(self, s) for s in SIGNALS]

    @classmethod
    def from_vector(cls, v: list[float]) -> Weights:
        return cls(**dict(zip(SIGNALS, (round(float(x), 4) for x in v), strict=True)))


class RankerConfig(BaseModel):
    """How a feed is assembled from a release: signals, diversity, candidate budgets."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    als_mix: float = Field(default=0.5, ge=0, le=10, description="weight of ALS inside relevance")
    history_half_life: float = Field(default=10.0, gt=0,
                                     description="in interactions, newest first")
    max_history: int = Field(default=200, ge=1, le=10_000)
    freshness_half_life_days: float = Field(default=14.0, gt=0)
    trending_half_life_days: float = Field(default=7.0, gt=0)
    creator_cap: int = Field(default=3, ge=0,
                             description="max items per creator in a feed; 0 = no cap")
    full_scan_max: int = Field(default=50_000, ge=0,
                               description="catalogs up to this size are scored whole")
    neighbour_candidates: int = Field(default=500, ge=0,
                                      description="best item-item neighbours kept")
    ann_candidates: int = Field(default=300, ge=0)
    trending_candidates: int = Field(default=200, ge=0)
    fresh_candidates: int = Field(default=100, ge=0)
    variants: dict[str, Weights] = Field(default_factory=lambda: {"control": Weights()})

    @field_validator("variants")
    @classmethod
    def _non_empty(cls, v: dict[str, Weights]) -> dict[str, Weights]:
        if not v:
            raise ValueError("at least one variant is required")
        return v

    def weights(self, variant: str) -> Weights:
        try:
            return self.variants[variant]
        except KeyError:
            raise KeyError(f"unknown variant '{variant}' (known: {sorted(self.variants)})"
                           ) from None

    def digest(self) -> str:
        """Short stable hash: part of every cache key, so a weight change never serves stale."""
        raw = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:12]


class TrainConfig(BaseModel):
    """Everything `novarank train` fits; stored in the release lock for reproducibility."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    neighbours: int = Field(default=200, ge=1, le=5_000)
    shrinkage: float = Field(default=10.0, ge=0)
    als_factors: int = Field(default=64, ge=2, le=1024)
    als_regularization: float = Field(default=0.05, ge=0)
    als_alpha: float = Field(default=10.0, gt=0)
    als_iterations: int = Field(default=15, ge=1, le=200)
    quality_prior: float = Field(default=20.0, ge=0)
    tune: bool = True
    tune_users: int = Field(default=3_000, ge=10, description="validation users sampled for tuning")
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0
    ranker: RankerConfig = Field(default_factory=RankerConfig)


class ServiceSettings(BaseSettings):
    """How `novarank serve` runs. Every field can be set as NOVARANK_<FIELD> in the
    environment (e.g. NOVARANK_CACHE_URL=redis://127.0.0.1:6379/0)."""

    model_config = SettingsConfigDict(env_prefix="NOVARANK_", extra="forbid", frozen=True)

    release: Path = Field(default=Path("runs/demo/release"), description="locked release directory")
    releases_root: Path | None = Field(default=None, description="a rollout may name releases only "
                                       "under this directory (default: the release's parent)")
    drills_enabled: bool = Field(default=False, description="honour drill faults from the rollout "
                                 "document (staging and dry-runs only)")
    cache_url: str = Field(default="memory://", description="L2 cache: memory:// (none) or redis://")
    counters_url: str = Field(default="memory://", description="live trending counters")
    state_url: str = Field(default="sqlite:///runs/state.db", description="sqlite:/// or postgresql://")
    events_url: str = Field(default="file://runs/lake", description="telemetry sink: file://DIR or null://")
    admin_token: SecretStr | None = Field(default=None, description="bearer token with the admin "
                                          "scope; unset = only admin keys open admin routes")
    auth: Literal["on", "off"] = Field(default="on", description="off = development mode: every "
                                       "route but /v1/admin answers without a key")
    rate_limits: dict[str, float] = Field(
        default_factory=lambda: {"catalog": 20.0, "events": 5000.0, "miss": 50.0},
        description="per key and replica, per second (bursts of two seconds' worth): catalog "
                    "upserts, events, feeds that miss L1; 0 = unlimited; a key's `limits` "
                    "in the key file override them")
    audit_log: Path | None = Field(default=None, description="also append the audit trail of admin "
                                   "and privacy actions here (JSON lines)")
    api_keys_file: Path | None = Field(default=None, description="YAML file of hashed, scoped API "
                                       "keys (`novarank keys issue`); re-read when it changes")
    experiment_salt: str = "novarank-exp-1"
    split: dict[str, float] = Field(default_factory=lambda: {"control": 100.0})
    variant_weights: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="extra weight sets by variant, on top of the release's")
    l1_max_entries: int = Field(default=200_000, ge=0)
    l1_max_bytes: int = Field(default=256 << 20, ge=0)
    feed_ttl_s: float = Field(default=300.0, gt=0)
    feed_prepared_bytes: int = Field(default=64 << 20, ge=0, description="memory for cached "
                                     "first pages kept ready to answer again, each counting "
                                     "its body and ids (0 = off): online/prepared.py")
    feed_threads: int = Field(default=16, ge=1, description="threads that rank feed misses "
                              "(ranking holds the GIL; more threads overlap state and L2 reads)")
    feed_window: int = Field(default=200, ge=1, le=1000,
                             description="items ranked per feed snapshot")
    snapshot_ttl_s: float = Field(default=1800.0, gt=0, description="how long a cursor stays valid")
    exploration_epsilon: float = Field(
        default=0.0, ge=0, le=1, description="chance a first page is a random ordering of the "
        "ranker's top `exploration_window`, its propensities logged for counterfactual "
        "estimates (0 = off)")
    exploration_window: int = Field(default=30, ge=2, le=1000,
                                    description="how deep exploration reaches into the ranking")
    max_batch: int = Field(default=1000, ge=1, description="events per POST /v1/events")
    max_body_bytes: int = Field(default=1 << 20, ge=1024, description="largest request body; a "
                                "larger one is refused with 413 before it is parsed")
    refresh_s: float = Field(default=1.0, gt=0, description="toggles and catalog re-read period")
    malloc_arenas: int = Field(default=2, ge=0, description="cap on glibc malloc arenas in `serve` "
                               "(RSS stays bounded; 0 = glibc's default of 8 per core)")
    switch_interval_ms: float = Field(default=1.0, gt=0, le=100, description="how long a "
                                      "thread keeps the GIL while another waits for it in "
                                      "`serve` (Python's own is 5 ms): the event loop answering "
                                      "cached feeds waits at most this for the telemetry writer "
                                      "and the refresh loop")
    trending_refresh_s: float = Field(default=5.0, gt=0)
    refresh_ahead_queue: int = Field(default=10_000, ge=1,
                                     description="users waiting to be re-ranked after "
                                     "engagement; when full, their next feed is a miss")
    key_prefix: str = "nr:"
    bench_routes: bool = Field(default=False, description="expose /bench/users/{id}/echo (the "
                               "framework ceiling)")
