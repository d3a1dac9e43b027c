"""Identifiers minted on the request path."""

from __future__ import annotations

import random


def new_id() -> str:
    """Request/snapshot ids: unique, not secret (uuid4 reads the OS entropy pool, 10x slower)."""
    return f"{random.getrandbits(128):032x}"
