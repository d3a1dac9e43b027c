from __future__ import annotations

import numpy as np
import pytest

from novarank.errors import ConfigError, InputError
from novarank.online.assignment import Splitter, bucket_of
from novarank.online.window import Window, decode_cursor, encode_cursor

# Golden vectors: changing the hashing would silently reshuffle every running experiment.
# Computed outside Python: printf 'exp-1:u1' | sha256sum -> first 16 hex digits mod 10000.
GOLDEN = [("exp-1", "u1", 6308), ("exp-1", "u2", 2707), ("exp-1", "alice", 4415),
          ("exp-2", "u1", 9623), ("novarank-exp-1", "196", 9455)]


@pytest.mark.parametrize(("salt", "user", "bucket"), GOLDEN)
def test_assignment_hash_is_pinned(salt, user, bucket):
    assert bucket_of(salt, user) == bucket


def test_split_matches_its_shares_and_is_sticky():
    s = Splitter({"control": 20, "a": 40, "b": 40}, "exp-1")
    got = [s.assign(f"user-{i}")[0] for i in range(20_000)]
    share = {v: got.count(v) / len(got) for v in ("control", "a", "b")}
    assert share["control"] == pytest.approx(0.2, abs=0.015)
    assert share["a"] == pytest.approx(0.4, abs=0.015)
    assert [s.assign(f"user-{i}")[0] for i in range(100)] == got[:100]


@pytest.mark.parametrize("split", [{}, {"a": 50, "b": 40}, {"a": 120, "b": -20}])
def test_bad_splits_are_refused(split):
    with pytest.raises(ConfigError, match="experiment split"):
        Splitter(split, "x")


def test_window_round_trip():
    rng = np.random.default_rng(0)
    w = Window({"snapshot": "abc", "user_id": "u", "variant": "a", "cold": False},
               rng.integers(0, 1000, 50).astype(np.int32), rng.random(50).astype(np.float32),
               rng.random((50, 5)).astype(np.float32), rng.integers(0, 3, 50).astype(np.uint8))
    back = Window.decode(w.encode())
    assert back.meta == w.meta
    for name in ("items", "scores", "reasons", "sources"):
        np.testing.assert_array_equal(getattr(back, name), getattr(w, name))
    assert len(w.encode()) < 50 * 40


def test_cursor_round_trip_and_garbage():
    assert decode_cursor(encode_cursor("snap1", 40)) == ("snap1", 40)
    with pytest.raises(InputError, match="cursor"):
        decode_cursor("!!!not-base64")


def test_malloc_arenas_are_capped_unless_told_otherwise(monkeypatch):
    import platform

    from novarank.memory import cap_arenas

    assert cap_arenas(0) is False  # 0: glibc's default
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_arenas(2) is False  # glibc's own variable wins
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    if platform.libc_ver()[0] == "glibc":
        assert cap_arenas(2) is True


def test_an_echo_is_skipped_once_and_counts_from_before_a_subscription_are_dropped(
        small_release):
    """A replica's own drop echoes back once and is skipped (refresh-ahead's re-ranked feed
    survives it); drops counted before the listener subscribed never echo, so the count is
    reset there and a later drop from another replica is applied, not mistaken for one."""
    import threading

    from novarank.online.service import open_local

    path, users, _ = small_release
    service = open_local(path)
    inv, l1 = service.feeds.invalidation, service.cache.l1
    user = users[0]
    key = inv.keys(user)[0]

    def hear(messages: list[tuple[str, bool]]) -> None:
        """Run the listener over (user, published here just before) messages."""
        stop = threading.Event()

        class PubSub:
            def get_message(self, timeout: float):
                if not messages:
                    stop.set()
                    return None
                who, own = messages.pop(0)
                if own:
                    inv._expect(who, 1)
                return {"type": "message", "data": who.encode()}

            def close(self) -> None:
                pass

        class L2:
            def subscribe(self, channel: str) -> PubSub:
                return PubSub()

        inv.listen(L2(), stop)  # type: ignore[arg-type]

    try:
        inv._expect(user, 1)  # published before the subscription: its echo never comes
        l1.set_many({key: b"fresh"}, 60)
        hear([(user, False)])  # another replica's drop, after subscribing: applied
        assert l1.get_many([key]) == [None]
        l1.set_many({key: b"fresh"}, 60)
        hear([(user, True)])  # this replica's own drop echoing back: skipped
        assert l1.get_many([key]) == [b"fresh"]
        hear([(user, False)])  # and only once: the next drop is applied
        assert l1.get_many([key]) == [None]
    finally:
        service.close()
