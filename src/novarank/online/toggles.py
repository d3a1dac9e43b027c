"""Safety toggles kept in the state store and re-read by every replica about once a second."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from novarank.config import SIGNALS
from novarank.errors import ConfigError
from novarank.stores.state import StateStore

PREFIX = "toggle:"
log = logging.getLogger("novarank.toggles")


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
    """The last toggles read from the state store. `current()` never does I/O (the request
    path may be on the event loop); the service's background loop calls `refresh()`, and a
    write through this replica is applied here at once."""

    def __init__(self, state: StateStore) -> None:
        self.state = state
        self._current = Toggles()
        self.refresh()

    def current(self) -> Toggles:
        return self._current

    def refresh(self) -> Toggles:
        new = Toggles.from_docs(self.state.get_docs(PREFIX))
        # unchanged toggles stay the same object: prepared feeds stand while it does
        # (online/prepared.py)
        if new != self._current:
            log.info("toggles now %s", new.to_dict())
            self._current = new
        return self._current

    def set(self, *, kill_switch: bool | None = None, signals_off: list[str] | None = None,
            variants_off: list[str] | None = None) -> Toggles:
        if kill_switch is not None:
            self.state.set_doc(PREFIX + "kill_switch", bool(kill_switch))
        if signals_off is not None:
            self.state.set_doc(PREFIX + "signals_off", sorted(set(signals_off)))
        if variants_off is not None:
            self.state.set_doc(PREFIX + "variants_off", sorted(set(variants_off)))
        return self.refresh()
