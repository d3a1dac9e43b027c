"""Notifications delivered for real: a local SMTP server (aiosmtpd) and a local webhook
receiver; delivered, retried after a refused connection, reported failed after the
retries; acknowledged; and the Stage 1 criteria judged from the pack."""

from __future__ import annotations

import json
import threading
import time

import pytest
import yaml

from novarank.cli.demo_service import free_port
from novarank.errors import ConfigError
from novarank.launch.delivery import AUDIENCES, acknowledge, deliver, load_channels
from novarank.launch.stage import criteria, record_section, render
from novarank.ops.webhook import AlertSink, serve


@pytest.fixture()
def smtp():
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.messages: list = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    inbox = Inbox()
    port = free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    yield port, inbox
    ctl.stop()


def _config(tmp_path, smtp_port, hook_port, late_port, dead_port):
    hook = f"http://127.0.0.1:{hook_port}/hook"
    doc = {"channels": {
        "mail": {"kind": "smtp", "host": "127.0.0.1", "port": smtp_port,
                 "from": "launch@novarank.test", "to": ["team@novarank.test"]},
        "slack": {"kind": "slack", "url": hook},
        "teams": {"kind": "teams", "url": hook},
        "pager": {"kind": "pagerduty", "url": hook, "routing_key": "R1"},
        "late": {"kind": "webhook", "url": f"http://127.0.0.1:{late_port}/hook"},
        "dead": {"kind": "webhook", "url": f"http://127.0.0.1:{dead_port}/hook"}},
        "audiences": {"product": ["mail"], "qa": ["teams"], "ops": ["slack", "pager"],
                      "tech-lead": ["mail", "late"], "management": ["mail", "dead"]}}
    path = tmp_path / "channels.yaml"
    path.write_text(yaml.safe_dump(doc))
    return load_channels(path)


def test_deliver_retry_fail_and_acknowledge(tmp_path, smtp):
    smtp_port, inbox = smtp
    sink, late_sink = AlertSink(), AlertSink()
    hook_port, late_port, dead_port = free_port(), free_port(), free_port()
    hook = serve(hook_port, sink)
    late: list = []  # the second receiver comes up only after the first attempt was refused
    timer = threading.Timer(0.3, lambda: late.append(serve(late_port, late_sink)))
    timer.start()
    pack = tmp_path / "pack"
    pack.mkdir()
    try:
        config = _config(tmp_path, smtp_port, hook_port, late_port, dead_port)
        records = deliver(pack, config, lambda a: f"status for {a}\nall gates green",
                          retries=5, backoff_s=0.25)  # waits 0.25, 0.5, 1, 2 s
    finally:
        timer.join()
        hook.shutdown()
        for server in late:
            server.shutdown()
    by = {(r["audience"], r["channel"]): r for r in records}
    assert by[("product", "mail")]["outcome"] == "delivered"
    assert by[("tech-lead", "late")]["outcome"] == "delivered"
    assert by[("tech-lead", "late")]["attempts"] >= 2  # refused, then retried
    dead = by[("management", "dead")]
    assert dead["outcome"] == "failed" and dead["attempts"] == 5 and "onnect" in dead["error"]
    assert len(inbox.messages) == 3  # product, tech-lead, management by mail
    body = inbox.messages[0].content.decode()
    assert "novarank launch ack" in body and by[("product", "mail")]["message_id"] in body
    assert len(sink.received) == 3 and any("routing_key" in p for p in sink.received)
    assert any(p.get("@type") == "MessageCard" for p in sink.received)
    written = [json.loads(ln) for ln in (pack / "deliveries.jsonl").read_text().splitlines()]
    assert len(written) == len(records) == 8
    # acknowledgments name a message that was delivered to that audience
    mid = by[("product", "mail")]["message_id"]
    with pytest.raises(ConfigError):
        acknowledge(pack, "qa", "Q. A. Lead", mid)  # another audience's message
    acknowledge(pack, "product", "P. Owner", mid)
    assert (pack / "acks.jsonl").read_text().count("P. Owner") == 1


def test_channels_file_names_what_is_missing(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"channels": {"m": {"kind": "smtp", "host": "h"}},
                                    "audiences": {a: ["m"] for a in AUDIENCES}}))
    with pytest.raises(ConfigError, match="needs port, from, to"):
        load_channels(path)
    path.write_text(yaml.safe_dump({"channels": {"s": {"kind": "slack", "url": "u"}},
                                    "audiences": {"product": ["s"]}}))
    with pytest.raises(ConfigError, match="audience qa has no channel"):
        load_channels(path)


def test_stage_criteria_follow_the_evidence(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    gates = [{"number": 0, "verdict": "GREEN", "note": ""},
             {"number": 7, "verdict": "GREEN", "samples": 500, "min_samples": 20}]
    (pack / "gates.json").write_text(json.dumps({"gates": gates}))
    (pack / "dashboard.json").write_text(json.dumps({"requests": 120}))
    rows = {r["number"]: r["status"] for r in criteria(pack)}
    assert rows == {1: "pending", 2: "met", 3: "met", 4: "pending", 5: "pending",
                    6: "pending"}
    now = time.strftime("%Y-%m-%dT%H:%M:%S")
    with (pack / "deliveries.jsonl").open("w") as f:
        for a in AUDIENCES:
            f.write(json.dumps({"audience": a, "channel": "c", "message_id": f"m-{a}",
                                "outcome": "failed" if a == "qa" else "delivered",
                                "at": now}) + "\n")
    for a in AUDIENCES[:2]:
        if a != "qa":
            acknowledge(pack, a, "someone", f"m-{a}")
    baseline = tmp_path / "baseline"
    baseline.mkdir()
    (baseline / "baseline.json").write_text("{}")
    gates[0]["verdict"], gates[0]["note"] = "RED", "lake: 0.1 GiB free"
    (pack / "gates.json").write_text(json.dumps({"gates": gates}))
    got = criteria(pack, baseline)
    rows = {r["number"]: r["status"] for r in got}
    assert rows == {1: "not met", 2: "not met", 3: "met", 4: "met", 5: "pending",
                    6: "not met"}
    text = render(got)
    assert "qa via c" in text and "lake: 0.1 GiB free" in text and "waiting for qa" in text
    (pack / "GO_NO_GO.md").write_text("# Go/no-go record\n\n## Sign-off\n")
    record_section(pack, got)
    record_section(pack, got)  # replaced, not appended twice
    record = (pack / "GO_NO_GO.md").read_text()
    assert record.count("## Stage 1 criteria") == 1 and "## Sign-off" in record
    assert "| qa | c | failed |" in record and "product by someone" in record


def test_a_send_that_dies_half_way_keeps_what_went_out(tmp_path, smtp):
    smtp_port, inbox = smtp
    path = tmp_path / "c.yaml"
    mail = {"kind": "smtp", "host": "127.0.0.1", "port": smtp_port, "from": "a@b.test",
            "to": ["c@d.test"]}
    path.write_text(yaml.safe_dump({"channels": {"mail": mail},
                                    "audiences": {a: ["mail"] for a in AUDIENCES}}))

    def render(audience: str) -> str:
        if audience == "ops":
            raise RuntimeError("killed")
        return f"status for {audience}"

    pack = tmp_path / "pack"
    pack.mkdir()
    with pytest.raises(RuntimeError):
        deliver(pack, load_channels(path), render)
    kept = [json.loads(ln)["audience"] for ln in
            (pack / "deliveries.jsonl").read_text().splitlines()]
    assert kept == ["product", "qa"] and len(inbox.messages) == 2
