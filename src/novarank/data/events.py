"""Engagement kinds and how much each one says about a user's taste."""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Event(IntEnum):
    """Kinds of interaction. Codes are stored in datasets and releases: never renumber."""

    IMPRESSION = 0
    CLICK = 1
    WATCH = 2
    LIKE = 3
    SHARE = 4
    SKIP = 5
    RATING = 6

    @classmethod
    def parse(cls, name: str) -> Event:
        try:
            return cls[name.strip().upper()]
        except KeyError:
            allowed = ", ".join(e.name.lower() for e in cls)
            raise ValueError(f"unknown event '{name}' (allowed: {allowed})") from None


# Preference weight of one event of each kind in the training matrix. Impressions say
# nothing on their own and skips are negative feedback: neither becomes a positive entry.
PREFERENCE_WEIGHT: dict[Event, float] = {
    Event.IMPRESSION: 0.0,
    Event.CLICK: 1.0,
    Event.WATCH: 1.0,
    Event.LIKE: 2.0,
    Event.SHARE: 3.0,
    Event.SKIP: 0.0,
    Event.RATING: 1.0,
}

# Events after which an item counts as "seen" by the user and is filtered from feeds.
SEEN_EVENTS = frozenset(
    {Event.CLICK, Event.WATCH, Event.LIKE, Event.SHARE, Event.SKIP, Event.RATING})


def satisfaction(events: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-event observations of item quality in [0, 1]: (mask of events that say something, value).

    watch -> watched fraction, like/share -> 1, skip -> 0, rating (1..5) -> (r - 1) / 4.
    """
    out = np.full(len(events), np.nan, dtype=np.float32)
    out[events == Event.WATCH] = np.clip(values[events == Event.WATCH], 0.0, 1.0)
    out[(events == Event.LIKE) | (events == Event.SHARE)] = 1.0
    out[events == Event.SKIP] = 0.0
    rated = events == Event.RATING
    out[rated] = np.clip((values[rated] - 1.0) / 4.0, 0.0, 1.0)
    mask = ~np.isnan(out)
    return mask, out


def weights_of(events: np.ndarray) -> np.ndarray:
    """Preference weight per event, vectorised over an array of event codes."""
    table = np.zeros(max(Event) + 1, dtype=np.float32)
    for kind, weight in PREFERENCE_WEIGHT.items():
        table[kind] = weight
    return table[events]


def seen_mask(events: np.ndarray) -> np.ndarray:
    table = np.zeros(max(Event) + 1, dtype=bool)
    table[list(SEEN_EVENTS)] = True
    return table[events]
