"""The safety drills of gate 9, against a running service over HTTP.

Kill switch: on -> every feed a full fallback -> off, with the time each takes effect.
Automatic rollback: a canary release with an injected fault (errors, latency) or a broken
canary (verifies, then raises at request time) under traffic; the rollout controller must
roll it back by itself, with no failed request outside the canary.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

# a 10% canary judged quickly; it must be caught within 60 s and gone from every replica
# within 5 s of the decision
ROLLBACK_STEPS = (10.0, 50.0, 100.0)
ROLLBACK_POLICY = {"step_seconds": 10.0, "max_step_seconds": 60.0, "min_requests": 50,
                   "min_impressions": 0}
ROLLBACK_DETECT_S, ROLLBACK_RESTORE_S = 60.0, 5.0
KILL_EFFECT_S = 2.0


def _wait_for(check: Any, timeout_s: float = 10.0) -> float:
    t0 = time.perf_counter()
    while not check() and time.perf_counter() - t0 < timeout_s:
        time.sleep(0.05)
    return time.perf_counter() - t0


BROKEN = "broken"  # the fault that is no injection: a release that raises at request time


def broken_release(release: Path, out: Path) -> Path:
    """A copy of `release` whose item factors have one column too many, locked afresh: it
    verifies and loads, then every ranking of a known user raises (a shape mismatch)."""
    from novarank.release.lock import read_lock, write_lock

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(release, out)
    path = out / "arrays" / "als_items.npy"
    items = np.load(path, allow_pickle=False)
    np.save(path, np.hstack([items, np.zeros((len(items), 1), items.dtype)]),
            allow_pickle=False)
    lock = read_lock(out)
    write_lock(out, lock.meta() | {"version": f"{lock.version}-broken"})
    return out


def kill_switch(http: httpx.Client, admin: dict[str, str], users: list[str]) -> dict[str, Any]:
    """Turn it on, check that every feed is a full fallback, turn it off again."""
    def fallback(user: str) -> bool:
        return bool(http.get(f"/v1/users/{user}/feed").json()["fallback"])

    probe = users[0]
    http.put("/v1/admin/toggles", json={"kill_switch": True}, headers=admin)
    effect_on = _wait_for(lambda: fallback(probe))
    fills = []
    for u in users:
        body = http.get(f"/v1/users/{u}/feed", params={"k": 10}).json()
        fills.append(body["fallback"] and len(body["items"]) == 10)
    http.put("/v1/admin/toggles", json={"kill_switch": False}, headers=admin)
    effect_off = _wait_for(lambda: not fallback(probe))
    out = {"time_to_effect_s": round(effect_on, 3), "fallback_full_fill": sum(fills) /
           len(fills), "time_to_restore_s": round(effect_off, 3), "requests": len(fills)}
    out["passed"] = (out["fallback_full_fill"] == 1.0 and effect_on < KILL_EFFECT_S
                     and effect_off < KILL_EFFECT_S)
    return out


def rollback(url: str, users: list[str], release: Path, canary: Path | None,
             state_url: str | None, lake: Path, fault: str = "errors:1.0",
             timeout_s: float = 120.0, headers: dict[str, str] | None = None
             ) -> dict[str, Any]:
    """Roll out the canary with an injected fault while a client drives feeds; the controller
    must return every user to the stable release with no failure outside the canary."""
    from novarank.launch.rollout import RolloutController
    from novarank.online.releases import Fault, RolloutPolicy
    from novarank.stores import open_state

    if canary is None or state_url is None:
        return {"passed": None, "skipped": "needs a canary release and the state store "
                "URL (--canary, --state-url)"}
    injected = None
    if fault == BROKEN:  # no injection: the canary itself raises on requests
        canary = broken_release(canary, canary.with_name(canary.name + "-broken"))
    else:
        injected = Fault.parse(fault)
    state = open_state(state_url)
    ctl = RolloutController(state, lake)
    doc = ctl.start(canary, list(ROLLBACK_STEPS), RolloutPolicy(**ROLLBACK_POLICY),
                    injected, stable=release)
    canary_version, answers, stop = doc.canary.version, [], threading.Event()

    def drive() -> None:
        with httpx.Client(base_url=url, timeout=10, headers=headers) as c:
            n = 0
            while not stop.is_set():
                user = users[n % len(users)]
                n += 1
                try:
                    r = c.get(f"/v1/users/{user}/feed", params={"k": 10})
                    body = r.json()
                    version = body.get("release") or body.get("error", {}).get("release")
                    answers.append((time.time(), r.status_code, version,
                                    len(body.get("items", ()))))
                except httpx.HTTPError:
                    answers.append((time.time(), 0, None, 0))

    worker = threading.Thread(target=drive, daemon=True)
    worker.start()
    try:
        final = ctl.run(tick_s=0.5, timeout_s=timeout_s)
        if final is not None and final.status == "running":
            final = ctl.abort("drill timed out")
        # keep driving until the canary has been gone for two seconds
        quiet_since = time.time()
        while time.time() - quiet_since < 2 and time.time() - final.decided_at < 15:
            if any(a[2] == canary_version for a in answers[-50:] if a[0] > quiet_since):
                quiet_since = time.time()
            time.sleep(0.2)
    finally:
        stop.set()
        worker.join(timeout=15)
        state.close()
    return _outcome(final, answers, canary_version, fault)


def _outcome(final: Any, answers: list[tuple], canary_version: str, fault: str
             ) -> dict[str, Any]:
    on_canary = [a for a in answers if a[2] == canary_version]
    failed = [a for a in answers if a[1] != 200]
    outside = [a for a in failed if a[2] != canary_version]
    decided = final.decided_at or time.time()
    first = min((a[0] for a in on_canary), default=None)
    last = max((a[0] for a in on_canary), default=decided)
    after = [a for a in answers if a[0] > last]
    # the canary phase: from the canary's first answer to the controller's decision
    during = [a for a in answers if (first or decided) <= a[0] <= decided]
    out = {"rollout": final.id, "status": final.status, "reason": final.reason[:200],
           "fault": fault, "canary_share_planned": ROLLBACK_STEPS[0] / 100,
           "requests": len(answers),
           "canary_share_observed": round(len([a for a in during if a[2] == canary_version])
                                          / max(len(during), 1), 4),
           "failed_requests": len(failed), "failed_on_canary": len(failed) - len(outside),
           "failed_outside_canary": len(outside),
           "time_to_detect_s": None if first is None else round(decided - first, 3),
           "time_to_rollback_s": round(max(0.0, last - decided), 3),
           "topk_fill_after_rollback": round(sum(a[1] == 200 and a[3] == 10 for a in after)
                                             / len(after), 4) if after else None}
    out["passed"] = (final.status == "rolled_back" and not outside and first is not None
                     and out["topk_fill_after_rollback"] == 1.0
                     and out["time_to_detect_s"] <= ROLLBACK_DETECT_S
                     and out["time_to_rollback_s"] <= ROLLBACK_RESTORE_S)
    return out
