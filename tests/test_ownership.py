"""deploy/ownership.yaml: the four owners reachable, P1-P4 with the checklist's response
times and a receiver that Alertmanager really routes that severity to, business hours in a
real time zone, the three templates; each rule broken on its own is named."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest

from novarank.ops import ownership
from tests.services import tool

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def _docs():
    return (ownership.load(DEPLOY / "ownership.yaml"), ownership.load(DEPLOY / "oncall.yaml"),
            ownership.load(DEPLOY / "alertmanager" / "alertmanager.yml"))


def test_the_shipped_file_holds():
    assert ownership.check(DEPLOY) == []


@pytest.mark.parametrize(("break_it", "named"), [
    (lambda d, o, a: d["primary"].pop("Platform engineering lead"),
     "primary Platform engineering lead: no owner"),
    (lambda d, o, a: o["contacts"].pop("dana"), "primary Product owner: dana is not reachable"),
    (lambda d, o, a: d["business_hours"].update(time_zone="Mars/Olympus"),
     "'Mars/Olympus' is not an IANA time zone"),
    (lambda d, o, a: d["severities"]["P1"].update(respond_within="1h"),
     "P1: respond_within 1h (the checklist says 15m)"),
    (lambda d, o, a: d["severities"].pop("P3"), "P3: not defined"),
    (lambda d, o, a: d["severities"]["P4"].update(receiver="nobody"),
     "P4: receiver nobody is not in alertmanager.yml"),
    (lambda d, o, a: d["severities"]["P1"].update(receiver="email-data"),
     "P1: alerts with severity=critical are routed to"),
    (lambda d, o, a: d["templates"].pop("postmortem"), "templates: postmortem is missing"),
])
def test_each_rule_fails_on_its_own(break_it, named):
    doc, oncall, am = (copy.deepcopy(x) for x in _docs())
    break_it(doc, oncall, am)
    found = ownership.problems(doc, oncall, am)
    assert len(found) == 1 and named in found[0], found


def test_the_route_reading_agrees_with_amtool():
    """Our reading of the route tree is what Alertmanager's own tool says."""
    amtool = tool("amtool")
    doc, _, am = _docs()
    for name, sev in doc["severities"].items():
        if not sev.get("alert_severity"):
            continue
        out = subprocess.run([amtool, "config", "routes", "test", "--config.file",
                              str(DEPLOY / "alertmanager" / "alertmanager.yml"),
                              f"severity={sev['alert_severity']}"],
                             capture_output=True, text=True, check=True).stdout
        assert sorted(out.strip().split(",")) == sorted(
            ownership._receivers_for(am, sev["alert_severity"])), (name, out)


def test_templates_render_from_the_record():
    doc, _, _ = _docs()
    text = ownership.render(doc, "status", {"now": "t", "release": "r1", "gates_green": "11/11",
                                            "decision": "GO", "blocking": "none",
                                            "missing_signoffs": "none"})
    assert "Release r1: 11/11 gates green; decision GO" in text
    assert "Owners: DRI ana, Product owner dana" in text
    incident = ownership.render(doc, "incident", {"severity": "P1", "title": "feeds down"})
    assert "Respond within 15m (24/7); owner: {owner}" in incident  # unfilled stays visible
    with pytest.raises(Exception, match="--kind"):
        ownership.render(doc, "memo", {})
