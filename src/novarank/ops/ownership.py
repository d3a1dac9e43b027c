"""Ownership and communications as data (deploy/ownership.yaml): the four primary roles
and their seconds, severities P1-P4 with their receiver, response time and coverage,
business hours in a time zone, and the incident, status and post-mortem templates.

Validated against the on-call file (every owner is a contact with a way to reach them)
and the Alertmanager configuration (every severity's receiver exists, and alerts of that
severity are routed to it); launch sign-off requires the four primary roles.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from novarank.errors import ConfigError

ROLES = ("DRI", "Product owner", "SRE lead", "Platform engineering lead")
SEVERITIES = {"P1": "15m", "P2": "1h", "P3": "4h", "P4": "1d"}  # the checklist's times
COVERAGE = ("24/7", "business-hours")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
TEMPLATES = ("incident", "status", "postmortem")


def load(path: str | Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return doc


def _receivers_for(am: dict[str, Any], severity: str) -> list[str]:
    """Receivers an alert `severity=<severity>` reaches in the route tree (first match,
    `continue` honoured), the way Alertmanager walks it for a plain alert."""
    found: list[str] = []
    for route in am.get("route", {}).get("routes", []):
        matchers = route.get("matchers", [])
        if all(_matches(m, {"severity": severity}) for m in matchers) and matchers:
            found.append(route["receiver"])
            if not route.get("continue"):
                return found
    return found or [am.get("route", {}).get("receiver")]


def _matches(matcher: str, labels: dict[str, str]) -> bool:
    m = re.fullmatch(r'\s*(\w+)\s*(=~|!=|=)\s*"?([^"]*)"?\s*', matcher)
    if m is None:
        return False
    name, op, value = m.groups()
    have = labels.get(name, "")
    return {"=": have == value, "!=": have != value,
            "=~": re.fullmatch(value, have) is not None}[op]


def problems(doc: dict[str, Any], oncall: dict[str, Any], alertmanager: dict[str, Any]
             ) -> list[str]:
    """Everything wrong with the ownership file, each named; empty when it holds."""
    out: list[str] = []
    contacts = oncall.get("contacts", {})
    for tier in ("primary", "secondary"):
        owners = doc.get(tier) or {}
        for role in ROLES:
            who = owners.get(role)
            if who is None:
                out.append(f"{tier} {role}: no owner")
            elif not {"email", "slack", "phone"} & set(contacts.get(who) or {}):
                out.append(f"{tier} {role}: {who} is not reachable (no contact in "
                           "oncall.yaml)")
    hours = doc.get("business_hours") or {}
    try:
        ZoneInfo(str(hours.get("time_zone")))
    except (ZoneInfoNotFoundError, ValueError):
        out.append(f"business_hours: time_zone {hours.get('time_zone')!r} is not an IANA "
                   "time zone")
    if not hours.get("days") or set(hours["days"]) - set(DAYS):
        out.append(f"business_hours: days must be some of {DAYS}")
    for key in ("start", "end"):
        if not re.fullmatch(r"\d\d:\d\d", str(hours.get(key, ""))):
            out.append(f"business_hours: {key} must be HH:MM")
    receivers = {r["name"] for r in alertmanager.get("receivers", [])}
    sev = doc.get("severities") or {}
    for name, within in SEVERITIES.items():
        s = sev.get(name)
        if s is None:
            out.append(f"{name}: not defined")
            continue
        if s.get("respond_within") != within:
            out.append(f"{name}: respond_within {s.get('respond_within')} (the checklist "
                       f"says {within})")
        if s.get("coverage") not in COVERAGE:
            out.append(f"{name}: coverage must be one of {COVERAGE}")
        if s.get("receiver") not in receivers:
            out.append(f"{name}: receiver {s.get('receiver')} is not in alertmanager.yml")
        elif s.get("alert_severity") and s["receiver"] not in _receivers_for(
                alertmanager, s["alert_severity"]):
            out.append(f"{name}: alerts with severity={s['alert_severity']} are routed to "
                       f"{_receivers_for(alertmanager, s['alert_severity'])}, not "
                       f"{s['receiver']}")
    for t in TEMPLATES:
        if not (doc.get("templates") or {}).get(t):
            out.append(f"templates: {t} is missing")
    return out


def check(deploy: Path) -> list[str]:
    return problems(load(deploy / "ownership.yaml"), load(deploy / "oncall.yaml"),
                    load(deploy / "alertmanager" / "alertmanager.yml"))


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # a placeholder the record cannot fill stays visible


def render(doc: dict[str, Any], kind: str, fields: dict[str, Any]) -> str:
    """One of the three templates, filled from the record and the owners."""
    if kind not in TEMPLATES:
        raise ConfigError(f"--kind must be one of {TEMPLATES}, got {kind!r}")
    values = _Fields({**doc.get("primary", {}), **fields})
    sev = (doc.get("severities") or {}).get(str(fields.get("severity")), {})
    values.setdefault("respond_within", sev.get("respond_within", "?"))
    values.setdefault("coverage", sev.get("coverage", "?"))
    return doc["templates"][kind].format_map(values)
