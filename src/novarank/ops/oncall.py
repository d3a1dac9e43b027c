"""oncall.yaml: who answers, when, and how a page escalates — with a validator the launch
gate uses (the rotation must cover the launch window without a gap)."""

from __future__ import annotations

from datetime import datetime
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


class Level(BaseModel):
    model_config = ConfigDict(extra="forbid")
    level: str
    after_minutes: int = Field(ge=0)
    notify: list[str] = Field(min_length=1)


class OnCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    team: str
    contacts: dict[str, Contact]
    rotation: list[Shift] = Field(min_length=1)
    escalation: list[Level]


def load(path: str | Path) -> OnCall:
    return OnCall.model_validate(yaml.safe_load(Path(path).read_text()))


def problems(cfg: OnCall, window_start: datetime, window_end: datetime) -> list[str]:
    """Everything that would leave a page unanswered in the window; empty means ready."""
    out: list[str] = []
    people = set(cfg.contacts)
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
    for s in sorted(cfg.rotation, key=lambda s: s.start):
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
