"""Headless Chromium (Debian's `chromium`): the dashboard page's DOM and a screenshot, as
an operator would see it, for tests and the dry-run's evidence pack."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=4000", "--window-size=1280,760"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(url: str, *args: str) -> str:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args, url],
                              capture_output=True, text=True, timeout=90).stdout


def dump_dom(url: str) -> str:
    """The page after its scripts ran (the tiles are filled in by JavaScript)."""
    return _run(url, "--dump-dom")


def screenshot(url: str, out: Path) -> Path:
    _run(url, f"--screenshot={out}")
    if not out.exists():
        raise FileNotFoundError(f"chromium wrote no screenshot of {url}")
    return out
