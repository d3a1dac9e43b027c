"""The miss path against a peer: Cornac's serving module, side by side on one machine.

Same data for both: the MovieLens-100K per-user temporal train split (the last 20% of
each user's ratings held out). Cornac serves EASE (lamb 500) from Flask on gunicorn, one
sync worker, scoring all 1,682 items per request and removing the user's seen items
(`remove_seen=true`; a novarank feed never shows them either), with no cache. novarank
serves the release `novarank train` builds from the same split, with L1 entries living
1 ms, so every request is a miss: live history read, 200 items ranked on five signals,
the window and page cached, the request and ranking events emitted. A third row is the
admin's `Cache-Control: no-cache` re-rank, which takes the full app (and the audit trail).

Each server in turn is pinned to core 1, wrk (one thread, 8 connections, every request a
different user in turn) to core 0; servers alternate `--rounds` times. Cornac is not a
novarank dependency: it runs from its own virtualenv (`--peer-python`, else one made
under bench/.peer with PEER_PINS from the package registry).

Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_peer.py  (needs `wrk`)
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from bench_floor import wrk
from bench_serving import ADMIN, pin_self, serve, spread, stop
from common import rotation, start_pinned, write
from novarank.cli.demo_service import free_port
from novarank.data.loaders import load
from novarank.evaluation.split import temporal_split
from novarank.pipeline import train_release

HERE = Path(__file__).parent
PEER_PINS = ["cornac==3.0.1", "flask==3.1.3", "gunicorn==27.0.1"]
TARGETS = {"miss_vs_peer_min": 1.0}


def peer_python(given: str | None) -> Path:
    """The peer's interpreter: as given, or a virtualenv of PEER_PINS made once."""
    if given:
        return Path(given)
    venv = HERE / ".peer" / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "-q", "install", *PEER_PINS], check=True)
    return python


def split_train(work: Path) -> tuple[Path, list[str]]:
    """The temporal train split as user,item,rating CSV for the peer, and the novarank
    release trained on it; returns (release, user ids)."""
    train = temporal_split(load("ml-100k")).train
    with (work / "train.csv").open("w", newline="") as f:
        out = csv.writer(f)
        for u, i, v in zip(train.user.tolist(), train.item.tolist(), train.value.tolist(),
                           strict=True):
            out.writerow([train.user_ids[u], train.items.ids[i], v])
    train_release(train, work / "release", do_evaluate=False)
    return work / "release", [str(u) for u in train.user_ids]


def fit_peer(python: Path, work: Path) -> Path:
    """EASE on the same split, in the peer's environment; returns its model file."""
    found = subprocess.run([str(python), str(HERE / "peer_cornac.py"), str(work / "train.csv"),
                            str(work / "ease")], check=True, capture_output=True, text=True)
    return Path(found.stdout.strip().splitlines()[-1])


def serve_peer(python: Path, model: Path, work: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "MODEL_PATH": str(model), "MODEL_CLASS": "cornac.models.EASE",
           "TRAIN_SET": str(work / "ease" / "train.pkl"), "OPENBLAS_NUM_THREADS": "1"}
    cmd = [str(python.parent / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}",
           "--log-level", "warning", "cornac.serving.app:app"]
    url = f"http://127.0.0.1:{port}"
    return start_pinned(cmd, url + "/recommend?uid=1&k=10", env=env), url


def check_peer(url: str, user: str) -> None:
    got = httpx.get(f"{url}/recommend?uid={user}&k=10&remove_seen=true").json()
    if len(got["recommendations"]) != 10:
        raise RuntimeError(f"the peer answered {got}")


def check_miss(url: str, user: str) -> None:
    """Ten items, and a second request for the same user is a miss again."""
    for _ in range(2):
        page = httpx.get(f"{url}/v1/users/{user}/feed?k=10", headers=ADMIN).json()
        if len(page["items"]) != 10 or page["cache"] != "miss":
            raise RuntimeError(f"novarank's feed is not a full miss: {page}")


def verdict(ratio: float) -> dict[str, bool]:
    return {"miss_vs_peer": ratio >= TARGETS["miss_vs_peer_min"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--secs", type=float, default=8.0)
    ap.add_argument("--peer-python", help="python of a virtualenv with " + " ".join(PEER_PINS))
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    python = peer_python(args.peer_python)
    pin_self()
    work = Path(tempfile.mkdtemp(prefix="nr-bench-peer-"))
    caps: dict[str, list[float]] = {"peer": [], "miss": [], "no_cache": []}
    try:
        release, users = split_train(work)
        scripts = {
            "peer": rotation(work, "peer", "/recommend?uid={u}&k=10&remove_seen=true", users,
                             {}),
            "miss": rotation(work, "miss", "/v1/users/{u}/feed?k=10", users, ADMIN),
            "no_cache": rotation(work, "no_cache", "/v1/users/{u}/feed?k=10", users,
                                 {**ADMIN, "Cache-Control": "no-cache"})}
        model = fit_peer(python, work)
        for _ in range(args.rounds):
            peer_proc, peer_url = serve_peer(python, model, work)
            try:
                check_peer(peer_url, users[0])
                caps["peer"].append(wrk(peer_url, args.secs, {}, scripts["peer"], 8))
            finally:
                stop(peer_proc)
            proc, url = serve(release, work, env={"NOVARANK_FEED_TTL_S": "0.001"})
            try:
                check_miss(url, users[0])
                for kind in ("miss", "no_cache"):
                    caps[kind].append(wrk(url, args.secs, {}, scripts[kind], 8))
            finally:
                stop(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratios = [m / p for m, p in zip(caps["miss"], caps["peer"], strict=True)]
    write("peer", {"data": "ml-100k temporal train split", "rounds": args.rounds,
                   "seconds": args.secs, "peer": " ".join(PEER_PINS),
                   "capacity_rps": {k: spread(v) for k, v in caps.items()},
                   "miss_vs_peer": spread(ratios), "targets": TARGETS,
                   "pass": verdict(spread(ratios)["median"])})


if __name__ == "__main__":
    main()
