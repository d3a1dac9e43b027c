"""Who a user is to the service: the variant they are served, their profile (the release's
history plus live events) and whether they asked to be forgotten."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from novarank.config import SIGNALS
from novarank.errors import InputError
from novarank.online.assignment import Splitter
from novarank.online.context import ServiceContext
from novarank.online.follower import ReleaseFollower
from novarank.online.releases import Served
from novarank.online.results import Assignment
from novarank.online.toggles import Toggles
from novarank.ranking.recommender import UserProfile
from novarank.stores.state import Engagement

FORGOTTEN = "forgotten:"  # + user id: a state-store document per forgotten user


class Audience:
    def __init__(self, ctx: ServiceContext, releases: ReleaseFollower) -> None:
        self.ctx, self.releases = ctx, releases
        self.splitter = Splitter(ctx.settings.split, ctx.settings.experiment_salt)
        self.forgotten: set[str] = set()

    def refresh_forgotten(self) -> None:
        """Forgotten users as every replica recorded them (read each sync)."""
        self.forgotten = {k.split(":", 1)[1] for k in self.ctx.state.get_docs(FORGOTTEN)}

    def forget(self, user_id: str) -> int:
        """Delete the user's live events and never use their release rows again."""
        n = self.ctx.state.delete_user(user_id)
        self.ctx.state.set_doc(f"{FORGOTTEN}{user_id}", int(time.time()))
        self.forgotten.add(user_id)
        return n

    def variant(self, user_id: str, override: str | None, toggles: Toggles) -> str:
        """The variant served: the override (validated) or the assignment, unless that
        variant is switched off."""
        if override is not None:
            known = self.releases.rec.ranker.variants
            if override not in known:
                raise InputError("X-Variant-Override", f"unknown variant '{override}' "
                                 f"(known: {sorted(known)})")
            variant = override
        else:
            variant = self.splitter.assign(user_id)[0]
        return "control" if variant in toggles.variants_off else variant

    def assignment(self, user_id: str, override: str | None = None) -> Assignment:
        assigned, bucket = self.splitter.assign(user_id)
        toggles = self.ctx.toggles.current()
        asked = override if override is not None else assigned
        return Assignment(user_id, bucket, assigned, self.variant(user_id, override, toggles),
                          override is not None, asked in toggles.variants_off,
                          self.releases.routing.for_user(user_id).version, self.splitter.salt)

    def profile(self, user_id: str, served: Served | None = None,
                live: Sequence[Engagement] | None = None) -> UserProfile:
        """`live`: the user's history already read (newest first), so ranking one user
        for two releases reads the state store once."""
        rec = (served or self.releases.routing.stable).rec
        limit = rec.ranker.max_history * 2
        live = self.ctx.state.history(user_id, limit) if live is None else live[:limit]
        # a forgotten user's old rows are still in the release: never use them again
        return rec.profile(user_id, live, use_release=user_id not in self.forgotten)

    @staticmethod
    def weights(variant: str, toggles: Toggles, served: Served) -> np.ndarray:
        """The variant's signal weights with the signals switched off set to zero."""
        w = served.rec.weights(variant).copy()
        for name in toggles.signals_off:
            w[SIGNALS.index(name)] = 0.0
        return w
