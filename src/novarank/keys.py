"""API keys: scoped, hashed at rest, revocable, re-read when their file changes.

A key is `nvk_<id>_<secret>`: the id finds the entry, the SHA-256 of the whole key is what
the file keeps (the secret is 32 random bytes, so a slow hash buys nothing), and the key is
shown once, when it is issued. The file is YAML so a Kubernetes Secret can carry it; the
service re-reads it within a second of a change, so keys rotate without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from novarank.errors import ConfigError

log = logging.getLogger("novarank.keys")

# what each scope opens (README "Security"); `admin` opens everything
SCOPES = ("read", "events", "catalog", "privacy", "admin")
PREFIX = "nvk_"
LIMIT_KINDS = ("catalog", "events", "miss")  # the rate budgets a key may set (api/ratelimit.py)


@dataclass(frozen=True)
class Principal:
    """Who a request is: a key's id and name (never its secret) and what it may do."""

    key_id: str
    name: str
    scopes: frozenset[str]
    limits: dict[str, float] = field(default_factory=dict)  # per-key rate budgets

    def may(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _parse(key: str) -> str | None:
    """The key's id, or None when it is not of our shape."""
    if not key.startswith(PREFIX) or len(key) > 128:
        return None
    key_id, sep, secret = key[len(PREFIX):].partition("_")
    return key_id if sep and key_id and secret else None


def _entries(data: Any, path: Path) -> dict[str, dict[str, Any]]:
    """Validate the file's entries by id; a broken file is an error naming the entry."""
    if not isinstance(data, dict) or not isinstance(data.get("keys", []), list):
        raise ConfigError(f"{path}: expected a mapping with a 'keys' list")
    out: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(data.get("keys") or []):
        where = f"{path}: keys[{i}]"
        if not isinstance(entry, dict) or not {"id", "sha256", "scopes"} <= set(entry):
            raise ConfigError(f"{where}: needs id, sha256 and scopes")
        bad = set(entry["scopes"]) - set(SCOPES)
        if bad:
            raise ConfigError(f"{where}: unknown scopes {sorted(bad)} (known: {SCOPES})")
        limits = entry.get("limits") or {}
        if not isinstance(limits, dict) or not all(
                k in LIMIT_KINDS and isinstance(v, int | float) and v >= 0
                for k, v in limits.items()):
            raise ConfigError(f"{where}: limits must map {', '.join(LIMIT_KINDS)} to a "
                              f"rate >= 0, got {limits}")
        if entry["id"] in out:
            raise ConfigError(f"{where}: duplicate id {entry['id']}")
        out[str(entry["id"])] = entry
    return out


class Keyring:
    """The keys a replica accepts: the key file's (re-read when it changes) plus the admin
    token, which is an `admin` key under another name."""

    def __init__(self, path: Path | None, admin_token: str | None = None,
                 recheck_s: float = 1.0) -> None:
        self.path = path
        self.admin_token = admin_token
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._entries: dict[str, dict[str, Any]] = {}
        self._verified: dict[str, Principal] = {}  # key -> principal, for keys seen before
        self.reload_errors = 0
        if path is not None:
            self._reload(force=True)

    @property
    def configured(self) -> bool:
        return self.admin_token is not None or self.path is not None

    def _reload(self, force: bool = False) -> None:
        assert self.path is not None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            if force:
                raise ConfigError(f"API key file {self.path} does not exist (make one with "
                                  "`novarank keys issue --file …`)") from None
            raise
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp and not force:
            return
        entries = _entries(yaml.safe_load(self.path.read_text()) or {}, self.path)
        self._entries, self._stamp, self._verified = entries, stamp, {}
        log.info("API keys loaded from %s: %d keys", self.path, len(entries))

    def _fresh(self) -> None:
        """Re-read the file at most once per recheck_s; a broken edit keeps the old keys
        (locking every client out is worse than serving a key a moment longer)."""
        now = time.monotonic()
        if self.path is None or now - self._checked < self.recheck_s:
            return
        with self._lock:
            self._checked = now
            try:
                self._reload()
            except (OSError, ConfigError, yaml.YAMLError) as exc:
                self.reload_errors += 1
                log.error("API key file not re-read, keeping the previous keys: %s", exc)

    def size(self) -> int:
        """Presented keys remembered as verified (at most 10,000)."""
        return len(self._verified)

    def lookup(self, key: str) -> Principal | None:
        """The principal of a presented key, or None when no live key matches."""
        self._fresh()
        known = self._verified.get(key)
        if known is not None:
            return known
        principal = self._check(key)
        if principal is not None:
            if len(self._verified) > 10_000:  # bounded: a flood of keys cannot grow it
                self._verified = {}
            self._verified[key] = principal
        return principal

    def _check(self, key: str) -> Principal | None:
        if self.admin_token is not None and hmac.compare_digest(key.encode(),
                                                                self.admin_token.encode()):
            return Principal("admin-token", "NOVARANK_ADMIN_TOKEN", frozenset({"admin"}))
        key_id = _parse(key)
        entry = self._entries.get(key_id) if key_id else None
        if entry is None or entry.get("revoked"):
            return None
        if not hmac.compare_digest(digest(key), str(entry["sha256"])):
            return None
        return Principal(key_id or "", str(entry.get("name", key_id)),
                         frozenset(entry["scopes"]),
                         {str(k): float(v) for k, v in (entry.get("limits") or {}).items()})


# ---- the key file, for `novarank keys` ---------------------------------------------------
def _load_file(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) if path.exists() else None
    data = data or {"keys": []}
    _entries(data, path)
    return data


def _write_file(path: Path, data: dict[str, Any]) -> None:
    """Atomically, readable by the owner only: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(data, f, sort_keys=False)
    os.replace(tmp, path)


def issue(path: Path, name: str, scopes: list[str], key: str | None = None,
          limits: dict[str, float] | None = None) -> str:
    """Add a key to the file and return it (the only time it is seen in clear)."""
    bad = set(scopes) - set(SCOPES)
    if bad or not scopes:
        raise ConfigError(f"scopes must be some of {', '.join(SCOPES)}; got {scopes}")
    data = _load_file(path)
    key = key or f"{PREFIX}{secrets.token_hex(4)}_{secrets.token_urlsafe(32)}"
    key_id = _parse(key)
    if key_id is None:
        raise ConfigError(f"a key must look like {PREFIX}<id>_<secret>")
    if any(e["id"] == key_id for e in data["keys"]):
        raise ConfigError(f"{path} already has a key with id {key_id}")
    data["keys"].append({"id": key_id, "name": name, "scopes": list(scopes),
                         "sha256": digest(key),
                         "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                         **({"limits": limits} if limits else {})})
    _entries(data, path)  # the new entry obeys the file's rules too
    _write_file(path, data)
    return key


def revoke(path: Path, key_id: str) -> None:
    data = _load_file(path)
    for entry in data["keys"]:
        if entry["id"] == key_id:
            entry["revoked"] = True
            entry["revoked_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            _write_file(path, data)
            return
    raise ConfigError(f"{path} has no key with id {key_id}")


def listing(path: Path) -> list[dict[str, Any]]:
    """The file's keys without their hashes."""
    return [{k: v for k, v in e.items() if k != "sha256"} for e in _load_file(path)["keys"]]
