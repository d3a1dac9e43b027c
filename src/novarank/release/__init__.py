"""Release bundles: every artifact on disk plus a lock file of sha256 digests."""

from novarank.release.bundle import load_release, save_release
from novarank.release.lock import LOCK_NAME, read_lock, verify_release

__all__ = ["LOCK_NAME", "load_release", "read_lock", "save_release", "verify_release"]
