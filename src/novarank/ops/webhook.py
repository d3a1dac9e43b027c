"""A webhook receiver for Alertmanager: records every notification as a JSON line, so a
dry-run can prove that a test alert reached its receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class AlertSink:
    def __init__(self, out: Path | None = None) -> None:
        self.out = out
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self.received.append(payload)
            if self.out is not None:
                self.out.parent.mkdir(parents=True, exist_ok=True)
                with self.out.open("a") as f:
                    f.write(json.dumps(payload) + "\n")


def serve(port: int, sink: AlertSink, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Start the receiver in a daemon thread; POST /alerts with Alertmanager's JSON body."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            try:
                sink.add(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
            except json.JSONDecodeError:
                self.send_response(400)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="nr-alert-webhook", daemon=True).start()
    return server
