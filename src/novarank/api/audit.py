"""The audit trail of admin and privacy actions: who, what, when and the answer.

Every request that asked for the `admin` or `privacy` scope is recorded once it is
answered — refusals too, since a stream of 401s on DELETE is what an operator looks for.
The user is recorded as the lake's pseudonymous key, never the raw id. Each entry goes
to the `novarank.audit` JSON log, to NOVARANK_AUDIT_LOG when set (JSON lines, appended),
and to the lake as an `audit` event.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from novarank.telemetry.schemas import user_key

log = logging.getLogger("novarank.audit")
_write = threading.Lock()


def entry(scope: dict[str, Any], status: int) -> dict[str, Any] | None:
    """The audit record of an answered request, or None when it needs none."""
    state = scope.get("state") or {}
    wanted = state.get("audit")
    if wanted is None:
        return None
    principal = state.get("principal")
    params = scope.get("path_params") or {}
    user = params.get("user_id")
    return {"ts": int(time.time() * 1000),
            "principal": principal.key_id if principal else None,
            "principal_name": principal.name if principal else None,
            "scope": wanted, "method": scope.get("method"),
            "route": getattr(scope.get("route"), "path", scope.get("path")),
            "status": status,
            "user_key": user_key(user) if user else None,
            "target": params.get("item_id")}


def record(scope: dict[str, Any], status: int, service: Any, path: Path | None) -> None:
    found = entry(scope, status)
    if found is None:
        return
    line = json.dumps(found)
    log.info(line)
    if path is not None:
        with _write, path.open("a") as f:
            f.write(line + "\n")
    if service is not None:
        service.events.emit("audit", found)  # the schema keeps its columns, drops the rest
