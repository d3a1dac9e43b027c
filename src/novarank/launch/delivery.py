"""Stakeholder notifications delivered, recorded and acknowledged.

`launch notify --send` renders each audience's message from the measured record and
delivers it through the channels configured for that audience (deploy/channels.yaml):
email over SMTP, and Slack-, Teams- and PagerDuty-style JSON webhooks. Every attempt is
recorded in the pack (deliveries.jsonl: channel, time, message id, outcome, attempts);
each message names the command that acknowledges it, and acks.jsonl keeps who did.
"""

from __future__ import annotations

import json
import smtplib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import yaml

from novarank.errors import ConfigError
from novarank.launch.record import AUDIENCES  # the audiences the record has a message for

KINDS = ("smtp", "slack", "teams", "pagerduty", "webhook")


def load_channels(path: Path) -> dict[str, Any]:
    """The channel file, validated: every audience routed, every channel known and whole."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    channels, audiences = doc.get("channels") or {}, doc.get("audiences") or {}
    for name, ch in channels.items():
        kind = ch.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{path}: channel {name}: kind must be one of {KINDS}")
        need = ("host", "port", "from", "to") if kind == "smtp" else ("url",)
        missing = [k for k in need if not ch.get(k)]
        if missing:
            raise ConfigError(f"{path}: channel {name} ({kind}) needs {', '.join(missing)}")
    for audience in AUDIENCES:
        routed = audiences.get(audience) or []
        if not routed:
            raise ConfigError(f"{path}: audience {audience} has no channel")
        unknown = [c for c in routed if c not in channels]
        if unknown:
            raise ConfigError(f"{path}: audience {audience} names unknown channels {unknown}")
    return {"channels": channels, "audiences": audiences}


def _payload(kind: str, ch: dict[str, Any], subject: str, text: str, mid: str
             ) -> dict[str, Any]:
    """The JSON each webhook style expects."""
    if kind == "slack":
        return {"text": f"*{subject}*\n{text}", "metadata": {"event_type": "novarank_launch",
                                                           "event_payload": {"id": mid}}}
    if kind == "teams":
        return {"@type": "MessageCard", "@context": "https://schema.org/extensions",
                "summary": subject, "title": subject, "text": text.replace("\n", "<br>"),
                "potentialAction": [], "correlationId": mid}
    if kind == "pagerduty":
        return {"routing_key": ch.get("routing_key", ""), "event_action": "trigger",
                "dedup_key": mid, "payload": {"summary": subject[:1024], "severity": "info",
                                              "source": "novarank launch",
                                              "custom_details": {"message": text}}}
    return {"id": mid, "subject": subject, "text": text}


def _send_one(kind: str, ch: dict[str, Any], subject: str, text: str, mid: str) -> str:
    """Deliver once; returns the receiver's id for the message (or ours)."""
    if kind == "smtp":
        msg = EmailMessage()
        msg["Subject"], msg["From"] = subject, ch["from"]
        msg["To"] = ", ".join(ch["to"]) if isinstance(ch["to"], list) else ch["to"]
        msg["Message-ID"] = f"<{mid}@novarank>"
        msg.set_content(text)
        with smtplib.SMTP(ch["host"], int(ch["port"]), timeout=10) as smtp:
            smtp.send_message(msg)
        return msg["Message-ID"]
    r = httpx.post(ch["url"], json=_payload(kind, ch, subject, text, mid), timeout=10)
    if r.status_code >= 300:
        raise ConnectionError(f"HTTP {r.status_code}: {r.text[:200]}")
    return mid


def deliver(pack: Path, config: dict[str, Any], render: Callable[[str], str],
            retries: int = 3, backoff_s: float = 0.5, ack_hint: str = "") -> list[dict]:
    """Send every audience's message on each of its channels; every outcome is recorded."""
    records = []
    for audience in AUDIENCES:
        mid = uuid.uuid4().hex[:16]
        ack = (f"novarank launch ack --pack {pack} --audience {audience} --message {mid} "
               f"--by <your name>")
        text = render(audience) + f"\n\nAcknowledge: {ack}{ack_hint}"
        subject = f"[novarank launch] {audience}: {text.splitlines()[0][:120]}"
        for name in config["audiences"][audience]:
            ch = config["channels"][name]
            attempts, error, receipt = 0, None, None
            for attempt in range(1, retries + 1):
                attempts = attempt
                try:
                    receipt = _send_one(ch["kind"], ch, subject, text, mid)
                    error = None
                    break
                except (OSError, smtplib.SMTPException, httpx.HTTPError) as exc:
                    error = f"{type(exc).__name__}: {exc}"[:300]
                    if attempt < retries:
                        time.sleep(backoff_s * 2 ** (attempt - 1))
            rec = {"audience": audience, "channel": name, "kind": ch["kind"],
                   "message_id": mid, "receipt": receipt,
                   "at": datetime.now(UTC).isoformat(timespec="seconds"),
                   "outcome": "delivered" if error is None else "failed",
                   "attempts": attempts, "error": error}
            # recorded as each one ends: a send killed half-way still knows what went out
            with (pack / "deliveries.jsonl").open("a") as f:
                f.write(json.dumps(rec) + "\n")
            records.append(rec)
    return records


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


def deliveries(pack: Path) -> list[dict[str, Any]]:
    return _lines(pack / "deliveries.jsonl")


def acknowledge(pack: Path, audience: str, by: str, message_id: str) -> dict[str, Any]:
    """Record that `by` read `audience`'s message `message_id` and confirms readiness."""
    sent = {d["message_id"] for d in deliveries(pack)
            if d["audience"] == audience and d["outcome"] == "delivered"}
    if message_id not in sent:
        raise ConfigError(f"no delivered {audience} message {message_id} in {pack}; "
                          "acknowledge a message id from the notification you received")
    if not by.strip():
        raise ConfigError("--by: say who acknowledges")
    rec = {"audience": audience, "by": by.strip(), "message_id": message_id,
           "at": datetime.now(UTC).isoformat(timespec="seconds")}
    with (pack / "acks.jsonl").open("a") as f:
        f.write(json.dumps(rec) + "\n")
    return rec


def acks(pack: Path) -> list[dict[str, Any]]:
    return _lines(pack / "acks.jsonl")
