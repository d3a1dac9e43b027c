"""Service logs as JSON lines on stderr: one object per record, easy to ship and to grep
by subsystem (the logger name: novarank.service, .toggles, .cache, .telemetry, ...)."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = {"ts": ts, "level": record.levelname, "logger": record.name,
                "msg": record.getMessage()}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure(level: str = "INFO") -> None:
    """Idempotent: the `novarank` loggers get one JSON-lines handler on stderr."""
    root = logging.getLogger("novarank")
    root.setLevel(level.upper())
    if not any(isinstance(h.formatter, JsonLines) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonLines())
        root.addHandler(handler)
    root.propagate = False
    threading.excepthook = _thread_crash


def _thread_crash(args: threading.ExceptHookArgs) -> None:
    """A background thread that dies says so in the JSON log, not as plain-text traceback."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("novarank.threads").error(
        "thread %s died", name, exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def by_subsystem(lines: list[str], per: int = 3) -> dict[str, list[str]]:
    """The last `per` JSON log lines of each logger (what an evidence pack quotes)."""
    out: dict[str, list[str]] = {}
    for raw in lines:
        try:
            name = json.loads(raw)["logger"]
        except (ValueError, KeyError, TypeError):
            continue
        out.setdefault(name, []).append(raw.rstrip())
    return {name: found[-per:] for name, found in sorted(out.items())}


def to_file(path: str | Path) -> logging.Handler:
    """Also write the `novarank` logs (INFO and up) as JSON lines to `path`; the caller
    removes the returned handler when done."""
    root = logging.getLogger("novarank")
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonLines())
    root.addHandler(handler)
    return handler
