"""The server's floor: a bare ASGI app answering every request with a fixed JSON body of
NOVARANK_BARE_BYTES bytes. bench_floor.py serves it on the same uvicorn as novarank."""

from __future__ import annotations

import os
from typing import Any

SIZE = int(os.environ.get("NOVARANK_BARE_BYTES", "2000"))
BODY = b'{"x":"' + b"a" * max(0, SIZE - 8) + b'"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
