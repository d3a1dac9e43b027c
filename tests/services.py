"""Real Redis and PostgreSQL for integration tests: fail loudly in CI, skip elsewhere."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

REDIS_URL = os.environ.get("NOVARANK_TEST_REDIS", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get("NOVARANK_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _unavailable(what: str, exc: Exception) -> None:
    msg = f"{what} is not reachable ({exc})"
    if os.environ.get("CI"):
        pytest.fail(f"{msg}: integration tests need it in CI", pytrace=False)
    pytest.skip(f"{msg}; start it to run this test (see README, Development)")


def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        _unavailable("Redis at " + REDIS_URL, exc)
    return REDIS_URL


def postgres_url() -> str:
    import psycopg

    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=2).close()
    except Exception as exc:
        _unavailable("PostgreSQL at " + POSTGRES_URL, exc)
    return POSTGRES_URL


def unique_prefix() -> str:
    return f"nrtest:{uuid.uuid4().hex[:8]}:"


def tool(name: str) -> str:
    """A Debian tool the test needs: fails in CI when missing, skips elsewhere."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing: .ci/run installs it (Debian prometheus packages)")
        pytest.skip(f"{name} not installed (apt-get install prometheus prometheus-alertmanager)")
    return path
