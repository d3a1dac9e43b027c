"""Identifiers minted on the request path and by the telemetry writer (event ids)."""

from __future__ import annotations

import random


def new_id() -> str:
    """Request, snapshot and event ids: unique, not secret (uuid4 reads the OS entropy
    pool, 10x slower)."""
    return f"{random.getrandbits(128):032x}"
