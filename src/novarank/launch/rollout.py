"""The progressive rollout controller: shift a sticky share of users to a canary release
step by step, judge each step against the stable release, promote or roll back.

Everything it decides is written to the rollout document in the state store (replicas
follow it, see online/releases.py), so the controller holds no state of its own: kill it,
start it again (`novarank rollout watch`), and it carries on from the document. Every
write is a locked read-modify-write that only lands if the stored rollout is still the
one read, so a stale view never undoes an operator's abort.

Each tick reads the step's samples from the telemetry lake and runs the checks. Every
test is always valid (analytics/sequential.py), so the same verdict, within the step's
false-rollback budget `sequential_alpha`, is read on every tick: a harm rolls back as
soon as it shows, whatever the step's age, and a step that has lasted `step_seconds`
with every check passing (enough samples, no evidence of harm beyond its margin) moves
on. A step still short of samples after
`max_step_seconds` pauses the rollout: missing data is never a pass. A step of 100 is
the promotion itself (there is no stable arm left to compare with).

An interleaving (`mode` interleave) has one step: its share of users is served pages
merged from both releases, the same guardrails judge that merge against the stable arm,
and instead of stepping up it ends `concluded` once the always-valid test on the pages'
click credit finds which release users prefer (launch/interleaving.py).

Each tick renews a lease (`controller`, `heartbeat` in the document): a second controller
refuses to run the same rollout until the first has been silent for LEASE_S. Operators'
`abort` and `resume` never need the lease.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from novarank.errors import ConfigError
from novarank.launch.canary import Analysis, compare, lake_samples
from novarank.online.releases import (
    ACTIVE,
    ERROR_PREFIX,
    ROLLOUT_KEY,
    Fault,
    ReleaseRef,
    RolloutDoc,
    RolloutPolicy,
    read_doc,
)

log = logging.getLogger("novarank.rollout")
LEASE_S = 15.0
Seen = tuple[str | None, str | None]  # (id, status) of the stored rollout when it was read


class LeaseHeld(ConfigError):
    """Another controller ticked this rollout less than LEASE_S ago."""


def _running(doc: RolloutDoc) -> Seen:
    """What a tick read: this rollout, running."""
    return (doc.id, "running")


def parse_steps(text: str) -> list[float]:
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"steps: expected percentages like 10,25,50,100, got {text!r}") from None


def _ref(path: str | Path) -> ReleaseRef:
    from novarank.release import verify_release

    lock = verify_release(path)  # refuse a tampered or incomplete release before any traffic
    return ReleaseRef(version=lock.version, path=str(Path(path).resolve()))


class RolloutController:
    def __init__(self, state: Any, lake: str | Path,
                 clock: Callable[[], float] = time.time) -> None:
        self.state, self.lake, self.clock = state, Path(lake), clock
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def current(self) -> RolloutDoc | None:
        return read_doc(self.state)

    def _save(self, doc: RolloutDoc, read: Seen, event: str | None = None,
              **detail: Any) -> RolloutDoc:
        """Write `doc` only if the stored rollout is still the one read (same id and status):
        an operator's abort, or another controller, is never overwritten by a stale view.
        Returns what is stored afterwards."""
        if event is not None:
            doc.history.append({"event": event, "at": round(self.clock(), 3),
                                "step": doc.step, "percent": doc.percent, **detail})
        payload = doc.model_dump(mode="json")

        def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
            now = (stored["id"], stored["status"]) if stored else (None, None)
            return payload if now == read else None

        if self.state.update_doc(ROLLOUT_KEY, change) is None:
            fresh = self.current()
            log.warning("rollout %s changed meanwhile (now %s): %s not written", doc.id,
                        fresh.status if fresh else "gone", event or "heartbeat")
            return fresh
        if event is not None:
            log.info("rollout %s: %s at %g%% %s", doc.id, event, doc.percent,
                     detail.get("reason", ""))
        return doc

    # ---- commands ----------------------------------------------------------------------
    def start(self, canary: str | Path, steps: list[float], policy: RolloutPolicy | None = None,
              fault: Fault | None = None, stable: str | Path | None = None,
              mode: Literal["canary", "interleave"] = "canary") -> RolloutDoc:
        """Start a rollout (`mode` canary), or an interleaving of the canary with the stable
        release for a share of users (`mode` interleave, one step below 100%), which ends
        concluded once the test finds which release they prefer."""
        if mode == "interleave" and (len(steps) != 1 or steps[0] >= 100):
            raise ConfigError(f"steps: an interleaving takes one share below 100%, got {steps}")
        prev = self.current()
        if prev is not None and prev.status in ACTIVE:
            raise ConfigError(f"rollout {prev.id} of {prev.canary.version} is {prev.status}: "
                              "resume or abort it first")
        if stable is not None:
            base, lineage = _ref(stable), []
        elif prev is not None:
            promoted = prev.status == "promoted"
            base = prev.canary if promoted else prev.stable
            lineage = [*prev.lineage, prev.stable.version] if promoted else prev.lineage
        else:
            raise ConfigError("stable: no earlier rollout in the state store; pass --stable "
                              "(the release the service is configured with)")
        new = _ref(canary)
        if new.version == base.version:
            raise ConfigError(f"canary: release {new.version} is already the stable release")
        now = self.clock()
        doc = RolloutDoc(id=uuid.uuid4().hex[:12], stable=base, canary=new, lineage=lineage,
                         steps=steps, percent=min(steps[0], 100.0), salt=uuid.uuid4().hex,
                         fault=fault, policy=policy or RolloutPolicy(), started_at=now,
                         step_started_at=now, mode=mode)
        read = (prev.id, prev.status) if prev is not None else (None, None)
        if doc.percent >= 100:
            doc.status, doc.decided_at = "promoted", now
            saved = self._save(doc, read, "promote",
                               reason="a single step of 100%: no canary phase")
        else:
            saved = self._save(doc, read, "start", stable=base.version, canary=new.version,
                               mode=mode, fault=fault.model_dump() if fault else None)
        if saved is None or saved.id != doc.id:
            raise ConfigError("another rollout was started at the same moment: see "
                              "`novarank rollout status`")
        return saved

    def resume(self) -> RolloutDoc:
        doc = self._require()
        if doc.status != "paused":
            raise ConfigError(f"rollout {doc.id} is {doc.status}, not paused")
        doc.status, doc.reason, doc.step_started_at = "running", "", self.clock()
        return self._save(doc, (doc.id, "paused"), "resume")

    def abort(self, reason: str = "aborted by an operator") -> RolloutDoc:
        doc = self._require()
        if doc.status not in ACTIVE:
            raise ConfigError(f"rollout {doc.id} is already {doc.status}")
        read = (doc.id, doc.status)
        doc.status, doc.reason, doc.decided_at = "aborted", reason, self.clock()
        return self._save(doc, read, "abort", reason=reason)

    def _require(self) -> RolloutDoc:
        doc = self.current()
        if doc is None:
            raise ConfigError("no rollout in the state store: start one first")
        return doc

    # ---- the loop ----------------------------------------------------------------------
    def tick(self) -> RolloutDoc | None:
        """One look at the running step: roll back, pause, step up, promote or wait."""
        doc = self.current()
        if doc is None or doc.status != "running":
            return doc
        now = self.clock()
        if doc.controller not in (None, self.id) and now - doc.heartbeat < LEASE_S:
            raise LeaseHeld(f"rollout {doc.id} is run by controller {doc.controller} (last "
                              f"tick {now - doc.heartbeat:.0f} s ago); this one can take over "
                              f"after {LEASE_S:g} s of silence")
        doc.controller, doc.heartbeat = self.id, now
        broken = [e for e in self.state.get_docs(ERROR_PREFIX).values()
                  if e.get("version") == doc.canary.version and e.get("at", 0) >= doc.started_at]
        if broken:
            return self._rollback(doc, now, f"canary failed to load on {len(broken)} "
                                  f"replica(s): {broken[0]['error']}", None)
        arms = lake_samples(self.lake, doc.canary.version, doc.stable.version,
                            doc.step_started_at, now)
        canary, stable = arms[doc.canary.version], arms[doc.stable.version]
        p = doc.policy
        final = compare(canary, stable, p, doc.percent)
        if final.verdict == "fail":
            return self._failed(doc, now, final, canary.first_ts)
        elapsed = now - doc.step_started_at
        if doc.mode == "interleave":
            return self._interleaving(doc, now, elapsed, final)
        if elapsed < p.step_seconds:
            return self._save(doc, _running(doc))
        unshown = [c for c in final.checks if c.non_inferior is False]
        if final.verdict == "no_data" or (p.promotion == "non_inferior" and unshown):
            if elapsed >= p.max_step_seconds:
                missing = final.missing()
                doc.status = "paused"
                doc.reason = ("no data: " + "; ".join(f"{c.metric} has {c.samples}"
                                                      for c in missing) if missing else
                              "not shown non-inferior: " + "; ".join(
                                  f"{c.metric} could still be {c.worst:.3g} worse"
                                  for c in unshown))
                return self._save(doc, _running(doc), "pause", reason=doc.reason,
                                  analysis=final.to_dict())
            return self._save(doc, _running(doc))
        judged = doc.percent
        doc.step += 1
        if doc.step >= len(doc.steps) or doc.steps[doc.step] >= 100:
            doc.status, doc.decided_at, doc.percent = "promoted", now, 100.0
            doc.reason = "every step passed"
            return self._save(doc, _running(doc), "promote", judged_percent=judged,
                              analysis=final.to_dict())
        doc.percent, doc.step_started_at = doc.steps[doc.step], now
        return self._save(doc, _running(doc), "step_up", judged_percent=judged,
                          analysis=final.to_dict())

    def _interleaving(self, doc: RolloutDoc, now: float, elapsed: float,
                      guardrails: Analysis) -> RolloutDoc:
        """An interleaving ends concluded when its always-valid test (at the policy's
        sequential_alpha) finds the release users prefer, or after max_step_seconds
        without a preference; its guardrails roll back a harmful merge as in a canary."""
        from novarank.launch.interleaving import served_preference

        pref = served_preference(self.lake, doc.canary.version, doc.step_started_at, now)
        winner = pref.winner(doc.policy.sequential_alpha)
        if winner is None and elapsed < doc.policy.max_step_seconds:
            return self._save(doc, _running(doc))
        share = "n/a" if pref.credit_share is None else f"{pref.credit_share:.3f}"
        said = (f"{pref.pages} interleaved pages, canary credit share {share}, "
                f"p={pref.p_value:.2g}")
        doc.status, doc.decided_at = "concluded", now
        doc.reason = (f"users prefer the {winner} release {getattr(doc, winner).version} "
                      f"({said})" if winner else
                      f"no preference found in {elapsed:.0f} s ({said})")
        return self._save(doc, _running(doc), "conclude", reason=doc.reason,
                          winner=winner, interleaving=pref.to_dict(),
                          analysis=guardrails.to_dict())

    def _failed(self, doc: RolloutDoc, now: float, analysis: Analysis,
                first_ts: float | None) -> RolloutDoc:
        """A harm rolls back. A broken split alone halts instead: with the users not where
        the plan puts them nothing else can be judged, and the canary may be fine."""
        if any(c.metric != "sample_ratio" for c in analysis.failing()):
            return self._rollback(doc, now, _why(analysis), analysis, first_ts)
        split = analysis.failing()[0]
        doc.status = "paused"
        doc.reason = (f"sample ratio mismatch: {split.samples['canary']} canary and "
                      f"{split.samples['stable']} stable users for a {doc.percent:g}% canary "
                      f"(p={split.p_value:.2g}): fix the split, then resume")
        return self._save(doc, _running(doc), "pause", reason=doc.reason,
                          analysis=analysis.to_dict())

    def _rollback(self, doc: RolloutDoc, now: float, reason: str, analysis: Analysis | None,
                  first_canary: float | None = None) -> RolloutDoc:
        doc.status, doc.reason, doc.decided_at = "rolled_back", reason, now
        detail: dict[str, Any] = {"reason": reason}
        if analysis is not None:
            detail["analysis"] = analysis.to_dict()
        if first_canary is not None:
            detail["detected_after_s"] = round(now - first_canary, 3)
        return self._save(doc, _running(doc), "rollback", **detail)

    def run(self, tick_s: float = 2.0, timeout_s: float | None = None,
            on_tick: Callable[[RolloutDoc], None] | None = None) -> RolloutDoc | None:
        """Tick until the rollout is promoted, rolled back, aborted or paused. A lease held by
        a controller that went silent (killed) is waited out; a live one is an error."""
        t0 = time.monotonic()
        while True:
            try:
                doc = self.tick()
            except LeaseHeld:
                if time.monotonic() - t0 > LEASE_S + 2 * tick_s:
                    raise
                time.sleep(tick_s)
                continue
            if on_tick is not None and doc is not None:
                on_tick(doc)
            if doc is None or doc.status != "running":
                return doc
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                return doc
            time.sleep(tick_s)


def _why(analysis: Analysis) -> str:
    parts = []
    for c in analysis.failing():
        parts.append(f"{c.metric}: canary {c.canary:.4g} vs stable {c.stable:.4g} "
                     f"(p={c.p_value:.2g}, n={c.samples['canary']}/{c.samples['stable']})")
    return "; ".join(parts)
