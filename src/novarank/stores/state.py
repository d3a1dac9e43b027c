"""Source of truth for live data: engagement, catalog upserts, toggles, small documents.

One SQL implementation serves SQLite (embedded) and PostgreSQL (scale-out); they differ
only in connection, placeholder style and DDL types.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class Engagement:
    user_id: str
    item_id: str
    event: int
    value: float
    ts: int
    event_id: str | None = None  # idempotency key: a stored id is never stored again


@dataclass(frozen=True)
class CatalogItem:
    item_id: str
    title: str
    creator_id: str = ""
    tags: str = ""
    published_at: int | None = None
    duration: float | None = None
    available: bool = True
    seq: int = 0  # catalog change number assigned by the store


class StateStore(Protocol):
    name: str

    def add_engagement(self, rows: Sequence[Engagement]) -> list[bool]: ...
    def history(self, user_id: str, limit: int = 500) -> list[Engagement]: ...
    def delete_user(self, user_id: str) -> int: ...
    def item_stats(self, item_id: str) -> dict[int, int]: ...
    def upsert_item(self, item: CatalogItem) -> int: ...
    def items_since(self, seq: int) -> list[CatalogItem]: ...
    def get_item(self, item_id: str) -> CatalogItem | None: ...
    def set_doc(self, key: str, value: Any) -> None: ...
    def get_docs(self, prefix: str = "") -> dict[str, Any]: ...
    def delete_doc(self, key: str) -> None: ...
    def update_doc(self, key: str, change: Callable[[Any], Any]) -> Any: ...
    def ping(self) -> bool: ...
    def close(self) -> None: ...


_DDL = """
CREATE TABLE IF NOT EXISTS nr_engagement (
    user_id TEXT NOT NULL, item_id TEXT NOT NULL, event SMALLINT NOT NULL,
    value REAL NOT NULL, ts BIGINT NOT NULL, event_id TEXT);
CREATE INDEX IF NOT EXISTS nr_engagement_user ON nr_engagement (user_id, ts);
CREATE INDEX IF NOT EXISTS nr_engagement_item ON nr_engagement (item_id);
CREATE TABLE IF NOT EXISTS nr_items (
    item_id TEXT PRIMARY KEY, title TEXT NOT NULL, creator_id TEXT NOT NULL,
    tags TEXT NOT NULL, published_at BIGINT, duration REAL, available BOOLEAN NOT NULL,
    seq BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS nr_items_seq ON nr_items (seq);
CREATE TABLE IF NOT EXISTS nr_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS nr_docs (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class SqlStateStore:
    """Shared SQL; subclasses provide the connection and placeholder."""

    name = "sql"
    ph = "?"
    row_lock = ""  # appended to a SELECT that must lock the row it reads

    def __init__(self) -> None:
        self._lock = threading.Lock()

    # subclasses set self._conn and call self._init_schema()
    def _exec(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql.replace("?", self.ph), params)

    def _init_schema(self) -> None:
        with self._lock:
            for stmt in filter(None, (s.strip() for s in _DDL.split(";"))):
                self._exec(stmt)
            try:  # a store made before event ids: add the column (NULL for old rows)
                self._exec("SELECT event_id FROM nr_engagement LIMIT 0")
            except Exception:
                self._exec("ALTER TABLE nr_engagement ADD COLUMN event_id TEXT")
            # unique but NULL-tolerant in both: old rows and rows without an id never clash
            self._exec("CREATE UNIQUE INDEX IF NOT EXISTS nr_engagement_event "
                       "ON nr_engagement (event_id)")
            self._exec("INSERT INTO nr_counters (name, value) VALUES ('catalog', 0) "
                       "ON CONFLICT (name) DO NOTHING")

    @contextmanager
    def _tx(self) -> Iterator[None]:
        raise NotImplementedError

    def add_engagement(self, rows: Sequence[Engagement]) -> list[bool]:
        """Store the rows in one transaction; True for each row stored now, False for one
        whose event_id was already stored (a client's retry), so callers count it once."""
        if not rows:
            return []
        sql = ("INSERT INTO nr_engagement (user_id, item_id, event, value, ts, event_id) "
               "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING").replace("?", self.ph)
        params = [(r.user_id, r.item_id, int(r.event), float(r.value), int(r.ts), r.event_id)
                  for r in rows]
        with self._lock, self._tx():
            return self._insert_each(sql, params)

    def _insert_each(self, sql: str, params: list[tuple[Any, ...]]) -> list[bool]:
        cur = self._conn.cursor()
        return [cur.execute(sql, p).rowcount == 1 for p in params]

    def history(self, user_id: str, limit: int = 500) -> list[Engagement]:
        with self._lock:
            rows = self._exec("SELECT user_id, item_id, event, value, ts, event_id FROM "
                              "nr_engagement WHERE user_id = ? ORDER BY ts DESC LIMIT ?",
                              (user_id, limit)).fetchall()
        return [Engagement(r[0], r[1], int(r[2]), float(r[3]), int(r[4]), r[5]) for r in rows]

    def delete_user(self, user_id: str) -> int:
        with self._lock:
            n = self._exec("DELETE FROM nr_engagement WHERE user_id = ?", (user_id,)).rowcount
        return int(n)

    def item_stats(self, item_id: str) -> dict[int, int]:
        """Live engagement count per event code for one item."""
        with self._lock:
            rows = self._exec("SELECT event, COUNT(*) FROM nr_engagement WHERE item_id = ? "
                              "GROUP BY event", (item_id,)).fetchall()
        return {int(e): int(n) for e, n in rows}

    def upsert_item(self, item: CatalogItem) -> int:
        with self._lock, self._tx():
            seq = int(self._exec("UPDATE nr_counters SET value = value + 1 "
                                 "WHERE name = 'catalog' RETURNING value").fetchone()[0])
            self._exec(
                "INSERT INTO nr_items (item_id, title, creator_id, tags, published_at, "
                "duration, available, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (item_id) DO UPDATE SET title = excluded.title, "
                "creator_id = excluded.creator_id, tags = excluded.tags, "
                "published_at = excluded.published_at, duration = excluded.duration, "
                "available = excluded.available, seq = excluded.seq",
                (item.item_id, item.title, item.creator_id, item.tags, item.published_at,
                 item.duration, item.available, seq))
        return seq

    def _items(self, where: str, params: Sequence[Any]) -> list[CatalogItem]:
        with self._lock:
            rows = self._exec("SELECT item_id, title, creator_id, tags, published_at, duration, "
                              f"available, seq FROM nr_items {where}", params).fetchall()
        return [CatalogItem(r[0], r[1], r[2], r[3], None if r[4] is None else int(r[4]),
                            None if r[5] is None else float(r[5]), bool(r[6]), int(r[7]))
                for r in rows]

    def items_since(self, seq: int) -> list[CatalogItem]:
        return self._items("WHERE seq > ? ORDER BY seq", (seq,))

    def get_item(self, item_id: str) -> CatalogItem | None:
        found = self._items("WHERE item_id = ?", (item_id,))
        return found[0] if found else None

    def set_doc(self, key: str, value: Any) -> None:
        with self._lock:
            self._exec("INSERT INTO nr_docs (key, value) VALUES (?, ?) ON CONFLICT (key) "
                       "DO UPDATE SET value = excluded.value", (key, json.dumps(value)))

    def update_doc(self, key: str, change: Callable[[Any], Any]) -> Any:
        """Read-modify-write of one document in a transaction that locks it, so writers on
        other connections cannot interleave: `change` gets the stored value (None when
        absent) and returns the new one, or None to leave it as it is."""
        with self._lock, self._tx():
            row = self._exec(f"SELECT value FROM nr_docs WHERE key = ?{self.row_lock}",
                             (key,)).fetchone()
            new = change(json.loads(row[0]) if row else None)
            if new is not None:
                self._exec("INSERT INTO nr_docs (key, value) VALUES (?, ?) ON CONFLICT (key) "
                           "DO UPDATE SET value = excluded.value", (key, json.dumps(new)))
            return new

    def get_docs(self, prefix: str = "") -> dict[str, Any]:
        with self._lock:
            rows = self._exec("SELECT key, value FROM nr_docs WHERE key LIKE ?",
                              (prefix.replace("%", r"\%") + "%",)).fetchall()
        return {k: json.loads(v) for k, v in rows}

    def delete_doc(self, key: str) -> None:
        with self._lock:
            self._exec("DELETE FROM nr_docs WHERE key = ?", (key,))

    def ping(self) -> bool:
        try:
            with self._lock:
                self._exec("SELECT 1").fetchone()
            return True
        except Exception:
            return False

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def reset(self) -> None:
        """Drop all novarank data (tests)."""
        with self._lock:
            for t in ("nr_engagement", "nr_items", "nr_docs"):
                self._exec(f"DELETE FROM {t}")
            self._exec("UPDATE nr_counters SET value = 0")


class SQLiteStateStore(SqlStateStore):
    name = "sqlite"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._init_schema()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")


class PostgresStateStore(SqlStateStore):
    name = "postgresql"
    ph = "%s"
    row_lock = " FOR UPDATE"  # (SQLite's BEGIN IMMEDIATE already locks the database)

    def __init__(self, url: str) -> None:
        super().__init__()
        import psycopg

        self._conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        self._init_schema()

    @contextmanager
    def _tx(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def _insert_each(self, sql: str, params: list[tuple[Any, ...]]) -> list[bool]:
        """One round trip for the batch (a pipeline), still a row count per row."""
        cur = self._conn.cursor()
        cur.executemany(sql + " RETURNING 1", params, returning=True)
        stored = []
        while True:
            stored.append(cur.fetchone() is not None)
            if not cur.nextset():
                return stored

