"""The replica's side of a rollout: which releases are loaded and who gets which.

The rollout document (online/releases.py) is re-read with the toggles; a release it names
is loaded and verified in the background, parked in a pool, and put in place by the next
sync as one new `Routing`: the one reference every request reads once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from novarank.config import ServiceSettings
from novarank.errors import ConfigError
from novarank.online.context import ServiceContext
from novarank.online.releases import (
    ACTIVE,
    ERROR_PREFIX,
    Fault,
    ReleaseRef,
    Routing,
    Served,
    load_served,
    read_doc,
)
from novarank.ranking.recommender import Recommender
from novarank.release.lock import ReleaseLock

log = logging.getLogger("novarank.service")


def inside_root(path: str, settings: ServiceSettings) -> None:
    """Whoever can write the state store must not point replicas at any path on disk: a
    rollout names releases under the releases root only (symlinks resolved)."""
    root = Path(settings.releases_root or Path(settings.release).resolve().parent).resolve()
    target = Path(path).resolve()
    if not target.is_relative_to(root):
        raise ConfigError(f"{path} is outside the releases root {root} "
                          "(NOVARANK_RELEASES_ROOT): refused")


class ReleaseFollower:
    """Owns the routing. `prepare` brings a release loaded for the rollout live (catalog
    upserts, trending) before it is put in place."""

    def __init__(self, ctx: ServiceContext, configured: Served,
                 prepare: Callable[[Served], None]) -> None:
        self.ctx, self._configured, self._prepare = ctx, configured, prepare
        self.routing = Routing(configured)
        self._pool: dict[str, Served] = {}  # loaded in the background, not routed yet
        self._loading: set[str] = set()
        self._load_failed: dict[str, float] = {}
        self._refused_fault: Fault | None = None

    @property
    def rec(self) -> Recommender:
        """The stable release's recommender (discovery, search and item calls use it)."""
        return self.routing.stable.rec

    @property
    def release(self) -> str:
        return self.routing.stable.version

    @property
    def digest(self) -> str:
        return self.routing.stable.digest

    @property
    def lock(self) -> ReleaseLock:
        return self.routing.stable.lock

    def follow(self, wait: bool = False) -> None:
        """Make the routing match the rollout document. A release not loaded yet is loaded
        in the background (`wait`: right here, at startup); until then nothing changes."""
        base = self._configured
        doc = read_doc(self.ctx.state)
        stable, canary, percent = ReleaseRef(version=base.version, path=base.path), None, 0.0
        if doc is not None and doc.governs(base.version):
            stable = doc.canary if doc.status == "promoted" else doc.stable
            if doc.status in ACTIVE:
                canary, percent = doc.canary, doc.percent
        r = self.routing
        want = [ref for ref in (stable, canary) if ref is not None]
        found = {ref.version: self._served(ref, base, wait) for ref in want}
        loaded = {v: s for v, s in found.items() if s is not None}
        if len(loaded) < len(found):
            return  # still loading (or failed: reported, and retried later)
        new_stable = loaded[stable.version]
        new_canary = loaded[canary.version] if canary is not None else None
        fault = doc.fault if canary is not None and doc is not None else None
        if fault is not None and not self.ctx.settings.drills_enabled:
            if fault != self._refused_fault:  # once per document, not once per second
                log.error("refused the rollout document's drill fault %s: drills are off on "
                          "this replica (NOVARANK_DRILLS_ENABLED)", fault.model_dump())
                self._refused_fault = fault
            fault = None
        salt = doc.salt if doc is not None else ""
        interleave = new_canary is not None and doc is not None and doc.mode == "interleave"
        if (new_stable is r.stable and new_canary is r.canary and percent == r.percent
                and fault == r.fault and interleave == r.interleave):
            return
        retired = {s.version: s for s in (*r.retired.values(), *r.loaded())
                   if s.version not in loaded}
        self.routing = Routing(new_stable, new_canary, percent, salt, fault,
                               dict(list(retired.items())[-2:]), interleave)
        for version in loaded:
            self._pool.pop(version, None)
        self.ctx.events.release = new_stable.version  # events default to the stable release
        for s in r.loaded():
            self.ctx.metrics.of(self.ctx.metrics.release_info, s.version).set(0)
        for s in self.routing.loaded():
            self.ctx.metrics.of(self.ctx.metrics.release_info, s.version).set(1)
        self.ctx.metrics.canary_share.set(percent / 100.0 if new_canary is not None else 0.0)
        log.info("serving release %s%s", new_stable.version,
                 f" with canary {new_canary.version} "
                 f"{'interleaved ' if interleave else ''}for {percent:g}% of users"
                 + (f" (drill fault: {fault.kind})" if fault else "") if new_canary else "")

    def _served(self, ref: ReleaseRef, base: Served, wait: bool) -> Served | None:
        found = (base if ref.version == base.version
                 else self.routing.by_version(ref.version) or self._pool.get(ref.version))
        if found is not None:
            return found
        if time.monotonic() - self._load_failed.get(ref.version, -1e9) < 30:
            return None
        if wait:
            return self._load(ref)
        if ref.version not in self._loading:
            self._loading.add(ref.version)
            threading.Thread(target=self._load, args=(ref,), name="nr-load-release",
                             daemon=True).start()
        return None

    def _load(self, ref: ReleaseRef) -> Served | None:
        """Load a release for the rollout; a failure is written where the controller sees it."""
        try:
            inside_root(ref.path, self.ctx.settings)
            served = load_served(ref.path, self.ctx.settings)
            if served.version != ref.version:
                raise ConfigError(f"{ref.path} holds release {served.version}, "
                                  f"not {ref.version}")
            self._prepare(served)
            self._pool[served.version] = served  # the next sync puts it in place
            return served
        except Exception as exc:
            log.error("could not load release %s from %s: %s", ref.version, ref.path, exc)
            self._load_failed[ref.version] = time.monotonic()
            self.ctx.state.set_doc(f"{ERROR_PREFIX}{self.ctx.replica}", {
                "version": ref.version, "path": ref.path, "error": str(exc)[:500],
                "at": time.time()})
            return None
        finally:
            self._loading.discard(ref.version)

    def rollout_view(self) -> dict[str, Any]:
        r = self.routing
        doc = read_doc(self.ctx.state)
        return {"replica": self.ctx.replica, "configured": self._configured.version,
                "stable": r.stable.version, "canary": r.canary.version if r.canary else None,
                "canary_percent": r.percent if r.canary else 0.0,
                "interleave": r.interleave,
                "fault": r.fault.model_dump() if r.fault else None,
                "fault_refused": self._refused_fault.model_dump()
                if self._refused_fault is not None and self._refused_fault == (
                    doc.fault if doc else None) else None,
                "loading": sorted(self._loading),
                "rollout": doc.model_dump(mode="json", exclude={"history"}) if doc else None,
                "follows_rollout": bool(doc and doc.governs(self._configured.version))}
