"""Safety toggles kept in the state store and re-read by every replica about once a second."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from novarank.config import SIGNALS
from novarank.errors import ConfigError
from novarank.stores.state import StateStore

PREFIX = "toggle:"


@dataclass(frozen=True)
class Toggles:
    kill_switch: bool = False  # serve the trending fallback to everyone
    signals_off: frozenset[str] = field(default_factory=frozenset)  # weights forced to 0
    variants_off: frozenset[str] = field(default_factory=frozenset)  # users get control

    @classmethod
    def from_docs(cls, docs: dict) -> Toggles:
        return cls(kill_switch=bool(docs.get(PREFIX + "kill_switch", False)),
                   signals_off=frozenset(docs.get(PREFIX + "signals_off", [])),
                   variants_off=frozenset(docs.get(PREFIX + "variants_off", [])))

    def to_dict(self) -> dict:
        return {"kill_switch": self.kill_switch, "signals_off": sorted(self.signals_off),
                "variants_off": sorted(self.variants_off)}


def validate(kill_switch: bool | None, signals_off: list[str] | None,
             variants_off: list[str] | None, variants: set[str]) -> None:
    if signals_off is not None:
        unknown = set(signals_off) - set(SIGNALS)
        if unknown:
            raise ConfigError(f"signals_off: unknown signal(s) {sorted(unknown)} "
                              f"(known: {list(SIGNALS)})")
    if variants_off is not None:
        unknown = set(variants_off) - variants
        if unknown:
            raise ConfigError(f"variants_off: unknown variant(s) {sorted(unknown)} "
                              f"(known: {sorted(variants)})")


class ToggleWatcher:
    """Caches the toggles for `refresh_s`; a write through this replica is seen at once."""

    def __init__(self, state: StateStore, refresh_s: float = 1.0) -> None:
        self.state, self.refresh_s = state, refresh_s
        self._current = Toggles()
        self._read_at = 0.0
        self._lock = threading.Lock()

    def current(self) -> Toggles:
        now = time.monotonic()
        if now - self._read_at >= self.refresh_s:
            with self._lock:
                if now - self._read_at >= self.refresh_s:
                    self._current = Toggles.from_docs(self.state.get_docs(PREFIX))
                    self._read_at = now
        return self._current

    def set(self, *, kill_switch: bool | None = None, signals_off: list[str] | None = None,
            variants_off: list[str] | None = None) -> Toggles:
        if kill_switch is not None:
            self.state.set_doc(PREFIX + "kill_switch", bool(kill_switch))
        if signals_off is not None:
            self.state.set_doc(PREFIX + "signals_off", sorted(set(signals_off)))
        if variants_off is not None:
            self.state.set_doc(PREFIX + "variants_off", sorted(set(variants_off)))
        self._read_at = 0.0
        return self.current()
