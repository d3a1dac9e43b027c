"""The open-loop generator against a small HTTP server of the test's own: latency counted
from the intended send time (no coordinated omission), statuses, errors, timeouts,
chunked answers and reused connections."""

from __future__ import annotations

import asyncio
import socket

import orjson

from novarank.launch.loadgen import open_loop


class Server:
    """Answers `GET /ok` (200, a JSON body), `/slow` (after 20 ms), `/chunked` (chunked
    transfer encoding), `/fail` (500), `/close` (Connection: close), `/idle` (then closes
    the connection unannounced, as a keep-alive timeout does) and `/hang` (never)."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1].decode()
                body = orjson.dumps({"cache": "l1" if path != "/fail" else None})
                if path == "/hang":
                    await asyncio.sleep(30)
                if path == "/slow":
                    await asyncio.sleep(0.02)
                status = b"500 Internal Server Error" if path == "/fail" else b"200 OK"
                if path == "/chunked":
                    half = len(body) // 2
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                 + b"%x\r\n%s\r\n" % (half, body[:half])
                                 + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - half, body[half:]))
                else:
                    close = b"connection: close\r\n" if path == "/close" else b""
                    writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: %d\r\n" % len(body)
                                 + close + b"\r\n" + body)
                await writer.drain()
                if path == "/close":
                    break
                if path == "/idle":  # a keep-alive timeout: closed soon after, unannounced
                    await asyncio.sleep(0.02)
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


def _run(path: str, rate: float = 200, seconds: float = 0.5, **kw):
    async def go():
        server = Server()
        url = await server.start()
        try:
            return await open_loop(url, lambda i: path, rate, seconds, **kw), server
        finally:
            server.close()

    return asyncio.run(go())


def _tag(body: bytes) -> str | None:
    return orjson.loads(body).get("cache")


def test_answers_are_counted_and_connections_reused():
    r, server = _run("/ok", tag=_tag)
    s = r.summary()
    assert s["sent"] == s["completed"] == 100 and s["errors"] == 0
    assert s["statuses"] == {200: 100} and s["tags"] == {"l1": 100}
    assert server.connections <= 5  # keep-alive: a few connections carry every request
    assert s["p50_ms"] < 20


def test_latency_counts_from_the_intended_send_not_from_a_free_connection():
    free = _run("/slow", rate=100, seconds=0.5)[0].summary()
    assert 20 <= free["p50_ms"] < 40  # each waits its 20 ms
    # one connection, a request every 10 ms, 20 ms each: the queue grows and is measured
    queued = _run("/slow", rate=100, seconds=0.5, connections=1)[0].summary()
    assert queued["p99_ms"] > 400 and queued["completed"] == 50


def test_errors_timeouts_chunked_answers_and_closed_connections():
    failed = _run("/fail", rate=100, seconds=0.2)[0].summary()
    assert failed["errors"] == 20 and failed["statuses"] == {500: 20}
    chunked = _run("/chunked", rate=100, seconds=0.2, tag=_tag)[0].summary()
    assert chunked["errors"] == 0 and chunked["tags"] == {"l1": 20}
    closing, server = _run("/close", rate=100, seconds=0.2)
    assert closing.summary()["statuses"] == {200: 20} and server.connections == 20
    idle, server = _run("/idle", rate=20, seconds=0.5)  # 50 ms apart: each finds it closed
    assert idle.summary()["statuses"] == {200: 10} and server.connections == 10
    hung = _run("/hang", rate=50, seconds=0.1, timeout_s=0.2)[0].summary()
    assert hung["errors"] == 5 and hung["statuses"] == {"error": 5} and hung["completed"] == 5
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    refused = asyncio.run(open_loop(f"http://127.0.0.1:{port}", lambda i: "/", 100, 0.1))
    assert refused.errors == 10 and refused.completed == 10
