"""oncall.yaml: who answers, when, and how a page escalates — with a validator the launch
gate uses (the rotation must cover the launch window without a gap).

A rotation is a recurring layer, as paging tools describe one: people taking turns of a
fixed length from a first handoff, the next person in the list as secondary, so it never
runs out. Dated overrides replace the layer for their span (a swap, a holiday); an
override with no primary leaves a gap, and the validator names it. Fixed dated shifts
(`rotation`) are still read, for schedules exported from elsewhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

LEVELS = (("L1", 5), ("L2", 15), ("L3", 30), ("L4", 60))  # the launch guide's escalation


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    slack: str | None = None
    phone: str | None = None


class Shift(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: datetime
    end: datetime
    primary: str
    secondary: str


class Layer(BaseModel):
    """People in turn: turn n starts at start + n * turn_hours; primary people[n % len],
    secondary the next one."""

    model_config = ConfigDict(extra="forbid")
    name: str
    start: datetime  # the first handoff (with its time zone)
    turn_hours: float = Field(gt=0)
    people: list[str] = Field(min_length=2)

    def shifts(self, start: datetime, end: datetime) -> list[Shift]:
        turn = timedelta(hours=self.turn_hours)
        n = max(0, int((start - self.start) / turn))
        out = []
        while self.start + n * turn < end:
            k = len(self.people)
            out.append(Shift(start=self.start + n * turn, end=self.start + (n + 1) * turn,
                             primary=self.people[n % k], secondary=self.people[(n + 1) % k]))
            n += 1
        return out


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: datetime
    end: datetime
    primary: str | None  # None: nobody (a gap the validator names)
    secondary: str | None = None
    reason: str = ""


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: str
    after_minutes: int = Field(ge=0)
    notify: list[str] = Field(min_length=1)


class OnCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: str
    contacts: dict[str, Contact]
    layers: list[Layer] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)
    rotation: list[Shift] = Field(default_factory=list)  # fixed dated shifts
    escalation: list[Level]

    def shifts(self, start: datetime, end: datetime) -> list[Shift]:
        """Who is on call over [start, end): the layers' turns and the dated shifts, cut
        away wherever an override applies, plus the overrides that name someone."""
        base = [*self.rotation, *(s for layer in self.layers for s in layer.shifts(start, end))]
        out: list[Shift] = []
        for s in base:
            pieces = [(s.start, s.end)]
            for o in self.overrides:
                pieces = [part for a, b in pieces for part in
                          ((a, min(b, o.start)), (max(a, o.end), b)) if part[0] < part[1]]
            out += [Shift(start=a, end=b, primary=s.primary, secondary=s.secondary)
                    for a, b in pieces]
        out += [Shift(start=o.start, end=o.end, primary=o.primary,
                      secondary=o.secondary or o.primary)
                for o in self.overrides if o.primary is not None]
        return sorted(out, key=lambda s: s.start)


def load(path: str | Path) -> OnCall:
    return OnCall.model_validate(yaml.safe_load(Path(path).read_text()))


def problems(cfg: OnCall, window_start: datetime, window_end: datetime) -> list[str]:
    """Everything that would leave a page unanswered in the window; empty means ready."""
    out: list[str] = []
    people = set(cfg.contacts)
    if not cfg.layers and not cfg.rotation:
        out.append("rotation: no layers and no dated shifts: nobody is ever on call")
    for layer in cfg.layers:
        out += [f"layers: '{who}' in layer {layer.name} has no contact entry"
                for who in layer.people if who not in people]
    for o in cfg.overrides:
        if o.end <= o.start:
            out.append(f"overrides: {o.start.isoformat()} ends before it starts")
        elif o.primary is None and o.start < window_end and o.end > window_start:
            out.append(f"overrides: nobody is on call from {o.start.isoformat()} to "
                       f"{o.end.isoformat()} ({o.reason or 'override without a primary'})")
        for who in (o.primary, o.secondary):
            if who is not None and who not in people:
                out.append(f"overrides: '{who}' is on call but has no contact entry")
    for s in cfg.rotation:
        if s.end <= s.start:
            out.append(f"rotation: shift {s.start.isoformat()} ends before it starts")
        for who in (s.primary, s.secondary):
            if who not in people:
                out.append(f"rotation: '{who}' is on call but has no contact entry")
        if s.primary == s.secondary:
            out.append(f"rotation: shift {s.start.isoformat()} has the same primary and "
                       "secondary")
    covered = window_start
    for s in cfg.shifts(window_start, window_end):
        if s.end <= covered:
            continue
        if s.start > covered:
            break
        covered = s.end
    if covered < window_end:
        out.append(f"rotation: nobody is on call from {covered.isoformat()} "
                   f"(window ends {window_end.isoformat()})")
    got = [(lv.level, lv.after_minutes) for lv in cfg.escalation]
    if got != list(LEVELS):
        out.append(f"escalation: expected {[f'{n} at {m} min' for n, m in LEVELS]}, "
                   f"got {[f'{n} at {m} min' for n, m in got]}")
    for lv in cfg.escalation:
        for who in lv.notify:
            if who not in people and not who.startswith("role:"):
                out.append(f"escalation: {lv.level} notifies '{who}' who has no contact entry")
    return out


def check(path: str | Path, window_start: datetime, window_end: datetime) -> list[str]:
    try:
        cfg = load(path)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        return [f"{path}: {exc}"]
    return problems(cfg, window_start, window_end)
