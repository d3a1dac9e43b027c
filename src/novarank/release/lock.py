"""release.lock.json: sha256 and size of every artifact; verification names each problem."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from novarank.errors import ReleaseError

LOCK_NAME = "release.lock.json"
LOCK_VERSION = 1


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def artifact_files(directory: Path) -> list[str]:
    """Every file of a release except the lock itself, as sorted relative POSIX paths."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and p.name != LOCK_NAME)


def write_lock(directory: Path, meta: dict[str, Any]) -> dict[str, Any]:
    files = {rel: {"sha256": sha256_file(directory / rel),
                   "bytes": (directory / rel).stat().st_size}
             for rel in artifact_files(directory)}
    lock = {"lock_version": LOCK_VERSION, **meta, "files": files}
    tmp = directory / (LOCK_NAME + ".tmp")
    tmp.write_text(json.dumps(lock, indent=2, sort_keys=True))
    tmp.replace(directory / LOCK_NAME)
    return lock


def read_lock(directory: str | Path) -> dict[str, Any]:
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
    if not isinstance(lock.get("files"), dict):
        raise ReleaseError(f"{path} has no 'files' table")
    return lock


def verify_release(directory: str | Path) -> dict[str, Any]:
    """Check every file against the lock; raise naming each missing, extra or altered file."""
    d = Path(directory)
    lock = read_lock(d)
    expected: dict[str, dict] = lock["files"]
    present = set(artifact_files(d))
    problems = [f"missing: {rel}" for rel in sorted(set(expected) - present)]
    problems += [f"extra: {rel}" for rel in sorted(present - set(expected))]
    for rel in sorted(set(expected) & present):
        p = d / rel
        if p.stat().st_size != expected[rel]["bytes"] or sha256_file(p) != expected[rel]["sha256"]:
            problems.append(f"altered: {rel}")
    if problems:
        raise ReleaseError(f"release {d} failed verification: " + "; ".join(problems))
    return lock
