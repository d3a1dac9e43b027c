"""release.lock.json: sha256 and size of every artifact, and a digest of the lock itself.

Serving builds its ranker (weights, creator cap) and the launch gates read metrics from the
lock, so hashing the artifacts alone would let an edited lock serve. Every top-level field
of the lock has its own sha256 (so verification names the field that changed), the lock's
digest covers those, and an operator holding a key can sign the digest (HMAC-SHA256): with
`NOVARANK_RELEASE_KEY` set, an unsigned or wrongly signed release is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novarank.errors import ReleaseError

LOCK_NAME = "release.lock.json"
LOCK_VERSION = 2
INTEGRITY = "integrity"
KEY_ENV = "NOVARANK_RELEASE_KEY"


@dataclass(frozen=True)
class ReleaseLock:
    """A release's lock as read: the fields serving, the gates and the CLI use, typed, and
    the document as written (`doc`), which sealing, signing and re-locking work on."""

    version: str
    created_at: str | None
    code_version: str | None
    data_fingerprint: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    files: dict[str, dict[str, Any]]
    digest: str | None  # of the lock's fields (None: a lock from before integrity blocks)
    signed: bool
    doc: dict[str, Any]

    @classmethod
    def of(cls, doc: dict[str, Any]) -> ReleaseLock:
        """From a lock document with a 'files' table (`_read_doc` checked it)."""
        integrity = doc.get(INTEGRITY) if isinstance(doc.get(INTEGRITY), dict) else {}
        return cls(version=str(doc.get("version", "")), created_at=doc.get("created_at"),
                   code_version=doc.get("code_version"),
                   data_fingerprint=str(doc.get("data_fingerprint", "")),
                   config=dict(doc.get("config") or {}),
                   metrics=dict(doc.get("metrics") or {}), files=doc["files"],
                   digest=integrity.get("digest"),
                   signed=isinstance(integrity.get("signature"), dict), doc=doc)

    def meta(self) -> dict[str, Any]:
        """What a release was locked with (for `write_lock`): every field but the files,
        the integrity block and the lock format."""
        return {k: v for k, v in self.doc.items()
                if k not in ("files", INTEGRITY, "lock_version")}


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _sections(lock: dict[str, Any]) -> dict[str, str]:
    return {k: hashlib.sha256(_canonical(v)).hexdigest() for k, v in lock.items()
            if k != INTEGRITY}


def _digest(sections: dict[str, str]) -> str:
    return hashlib.sha256(_canonical(sections)).hexdigest()


def _sign(key: str, digest: str) -> str:
    return hmac.new(key.encode(), digest.encode(), hashlib.sha256).hexdigest()


def signing_key() -> str | None:
    """The operator's release key (NOVARANK_RELEASE_KEY), or None when signing is off."""
    return os.environ.get(KEY_ENV) or None


def artifact_files(directory: Path) -> list[str]:
    """Every file of a release except the lock itself, as sorted relative POSIX paths."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and p.name != LOCK_NAME)


def seal(lock: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    """The lock with its integrity block (field digests, lock digest, optional signature)."""
    body = {k: v for k, v in lock.items() if k != INTEGRITY}
    sections = _sections(body)
    digest = _digest(sections)
    integrity: dict[str, Any] = {"algorithm": "sha256", "sections": sections, "digest": digest}
    if key:
        integrity["signature"] = {"algorithm": "hmac-sha256", "value": _sign(key, digest)}
    return {**body, INTEGRITY: integrity}


def _store(directory: Path, lock: dict[str, Any]) -> None:
    tmp = directory / (LOCK_NAME + ".tmp")
    tmp.write_text(json.dumps(lock, indent=2, sort_keys=True))
    tmp.replace(directory / LOCK_NAME)


def write_lock(directory: Path, meta: dict[str, Any], key: str | None = None) -> ReleaseLock:
    files = {rel: {"sha256": sha256_file(directory / rel),
                   "bytes": (directory / rel).stat().st_size}
             for rel in artifact_files(directory)}
    lock = seal({"lock_version": LOCK_VERSION, **meta, "files": files},
                key if key is not None else signing_key())
    _store(directory, lock)
    return ReleaseLock.of(lock)


def sign_release(directory: str | Path, key: str) -> ReleaseLock:
    """Sign an existing release with `key`, after verifying it as it stands."""
    d = Path(directory)
    lock = seal(verify_release(d, key="").doc, key)  # as it stands, whatever key is set
    _store(d, lock)
    return ReleaseLock.of(lock)


def read_lock(directory: str | Path) -> ReleaseLock:
    """The lock as it stands (not verified: `verify_release` checks it)."""
    return ReleaseLock.of(_read_doc(directory))


def _read_doc(directory: str | Path) -> dict[str, Any]:
    d = Path(directory)
    path = d / LOCK_NAME
    if not d.is_dir():
        raise ReleaseError(f"release directory not found: {d}")
    if not path.exists():
        raise ReleaseError(f"{path} is missing: not a locked release")
    try:
        lock = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReleaseError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(lock, dict) or not isinstance(lock.get("files"), dict):
        raise ReleaseError(f"{path} has no 'files' table")
    return lock


def _lock_problems(lock: dict[str, Any], key: str | None) -> list[str]:
    integrity = lock.get(INTEGRITY)
    if not isinstance(integrity, dict) or not isinstance(integrity.get("sections"), dict):
        return [f"the lock has no integrity digest (lock_version {lock.get('lock_version')}; "
                f"this code writes {LOCK_VERSION}): rebuild the release"]
    stored: dict[str, str] = integrity["sections"]
    now = _sections(lock)
    problems = [f"lock field altered: {k}" for k in sorted(set(now) & set(stored))
                if now[k] != stored[k]]
    problems += [f"lock field added: {k}" for k in sorted(set(now) - set(stored))]
    problems += [f"lock field removed: {k}" for k in sorted(set(stored) - set(now))]
    if not problems and integrity.get("digest") != _digest(stored):
        problems.append("lock integrity block altered: its digest does not cover its fields")
    if problems:
        return problems
    signature = integrity.get("signature")
    if key:
        if not isinstance(signature, dict):
            return [f"unsigned: {KEY_ENV} is set, so releases must be signed "
                    "(novarank release sign)"]
        if not hmac.compare_digest(str(signature.get("value")), _sign(key, integrity["digest"])):
            return ["signature does not match the configured release key"]
    return []


def verify_release(directory: str | Path, key: str | None = None) -> ReleaseLock:
    """Check the lock's own digest (and signature, with a key), then every file against it;
    raise naming each altered lock field and each missing, extra or altered file."""
    d = Path(directory)
    lock = _read_doc(d)
    problems = _lock_problems(lock, key if key is not None else signing_key())
    expected: dict[str, dict] = lock["files"]
    present = set(artifact_files(d))
    problems += [f"missing: {rel}" for rel in sorted(set(expected) - present)]
    problems += [f"extra: {rel}" for rel in sorted(present - set(expected))]
    for rel in sorted(set(expected) & present):
        p = d / rel
        meta = expected[rel]
        if not isinstance(meta, dict) or p.stat().st_size != meta.get("bytes") \
                or sha256_file(p) != meta.get("sha256"):
            problems.append(f"altered: {rel}")
    if problems:
        raise ReleaseError(f"release {d} failed verification: " + "; ".join(problems))
    return ReleaseLock.of(lock)
