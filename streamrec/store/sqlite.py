"""The embedded default backend: one SQLite file in WAL mode (stdlib ``sqlite3``).

Safe with one writer process and many reader processes at once (the pipeline writes while
serving reads): WAL lets readers proceed during a write, every write call is one
``BEGIN IMMEDIATE`` transaction, and each thread gets its own connection. Tables mirror the
Aerospike sets (see ARCHITECTURE.md):

- ``users``: one row per profile, the state as one packed blob (:mod:`streamrec.store.codec`),
  a store-owned ``version`` and an ``expires_at`` that plays the part of Aerospike's TTL;
- ``cowatch`` (item, neighbour, count), trimmed to the top ``COWATCH_NEIGHBOURS_LIMIT`` per item
  after each call (only the items the call touched can go over it), with a rank index of the
  pairs counted more (or less) than once;
- ``item_counts``, ``lists`` (trending and other ranked lists), ``items`` (metadata + vector).

URL: ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``; optional query
``?user_ttl_seconds=N``.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from streamrec.events.model import CatalogItem
from streamrec.model import (
    COWATCH_NEIGHBOURS_LIMIT,
    RANKED_LIST_LIMIT,
    RankedList,
    UserState,
)
from streamrec.store import codec
from streamrec.store.base import (
    MAX_RECORD_BYTES,
    USER_TTL_SECONDS,
    RecordTooBig,
    Store,
    StoreError,
    StoreUnavailable,
    UserChange,
)

_CHUNK = 500  # ids per IN (...) list, far below SQLite's bound-parameter limit
_PURGE_PER_WRITE = 200  # expired profiles deleted per put_users call: bounded work, no growth

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY, version INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    state BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS users_expiry ON users(expires_at);
CREATE TABLE IF NOT EXISTS cowatch (
    video_id TEXT NOT NULL, neighbour TEXT NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (video_id, neighbour)) WITHOUT ROWID;
-- Top-k reads walk k index entries instead of sorting up to K rows per item. The rank index
-- leaves out the pairs counted exactly once: those are read in primary-key order, which is their
-- rank order (count 1, then id). A new pair of count 1 (35% of the bench loop's pair writes)
-- writes no index entry and its first increment one instead of two: 30% fewer index writes.
CREATE INDEX IF NOT EXISTS cowatch_rank_multi ON cowatch(video_id, count DESC, neighbour)
    WHERE count != 1;
-- Stores made before issue 13: the full rank index, and a per-item neighbour count kept by
-- triggers on every insert (add_cowatch now counts the touched items' rows when it trims).
DROP INDEX IF EXISTS cowatch_rank;
DROP TRIGGER IF EXISTS cowatch_added;
DROP TRIGGER IF EXISTS cowatch_removed;
DROP TABLE IF EXISTS cowatch_size;
CREATE TABLE IF NOT EXISTS item_counts (
    video_id TEXT PRIMARY KEY, count INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lists (
    key TEXT PRIMARY KEY, updated_at INTEGER NOT NULL, window_end INTEGER,
    items BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS items (
    video_id TEXT PRIMARY KEY, meta BLOB, vector BLOB) WITHOUT ROWID;
"""

# A call's increments go in as multi-row upserts of _UPSERT_ROWS pairs each: one statement step
# per chunk instead of one per row (executemany), no staging table. Profiled over the bench's plain
# loop (bench/report.py): ~2 us less per event than staging the rows in a temporary table and
# upserting from it, itself ~10% cheaper than one executemany'd upsert per row. 256 rows are 768
# bound parameters, under SQLite's oldest default limit (999).
_UPSERT_ROWS = 256


def _upsert_cowatch_sql(rows: int) -> str:
    return ("INSERT INTO cowatch (video_id, neighbour, count) VALUES " + ",".join(["(?,?,?)"] * rows)
            + " ON CONFLICT (video_id, neighbour) DO UPDATE SET count = count + excluded.count")


_UPSERT_COWATCH = _upsert_cowatch_sql(_UPSERT_ROWS)
# get_neighbours: "count != 1" names the rank index's condition (so the planner may use it).
_RANKED = ("SELECT neighbour, count FROM cowatch WHERE video_id = ? AND count != 1 "
           "ORDER BY count DESC, neighbour LIMIT ?")
_COUNTED_ONCE = "SELECT neighbour, count FROM cowatch WHERE video_id = ? AND count = 1 ORDER BY neighbour LIMIT ?"
_OVER_LIMIT = "SELECT video_id FROM cowatch WHERE video_id IN ({ids}) GROUP BY video_id HAVING count(*) > ?"
# Ties at the cut keep the larger neighbour id, as Aerospike's rank order (value, then key) does.
_TRIM_COWATCH = (
    "DELETE FROM cowatch WHERE video_id = ?1 AND neighbour IN ("
    " SELECT neighbour FROM cowatch WHERE video_id = ?1"
    " ORDER BY count DESC, neighbour DESC LIMIT -1 OFFSET ?2)"
)
_PUT_USER = (
    "INSERT INTO users (user_id, version, expires_at, state) VALUES (?, 1, ?, ?) "
    "ON CONFLICT (user_id) DO UPDATE SET version = version + 1, "
    "expires_at = excluded.expires_at, state = excluded.state"
)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def _marks(n: int) -> str:
    return ",".join("?" * n)


@contextlib.contextmanager
def _mapped_errors(path: str) -> Iterator[None]:
    """sqlite3 errors -> our hierarchy ("busy/cannot open" is unavailability, not a bug)."""
    try:
        yield
    except sqlite3.DataError as exc:
        raise RecordTooBig(f"sqlite {path}: {exc}") from exc
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "too big" in text:
            raise RecordTooBig(f"sqlite {path}: {exc}") from exc
        if any(s in text for s in ("locked", "busy", "unable to open", "disk i/o", "readonly", "read-only")):
            raise StoreUnavailable(f"sqlite {path}: {exc}") from exc
        raise StoreError(f"sqlite {path}: {exc}") from exc
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite {path}: {exc}") from exc



#: This process's id, renewed in a forked child (``os.register_at_fork``).
_PROCESS = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PROCESS.__setitem__(0, os.getpid()))


class SqliteStore(Store):
    """See the module docstring. ``path`` is a file path (its folder is created if missing)."""

    #: Reads are B-tree lookups in this process's memory-mapped file, and in WAL mode a writer
    #: never blocks them: ``AsyncStore`` runs them on the event loop (no thread hop).
    reads_block = False

    def __init__(self, path: str | os.PathLike[str], *, user_ttl_seconds: int = USER_TTL_SECONDS,
                 busy_timeout_ms: int = 5000, max_record_bytes: int = MAX_RECORD_BYTES) -> None:
        if user_ttl_seconds <= 0:
            raise ValueError(f"user_ttl_seconds: must be positive, got {user_ttl_seconds}")
        self.max_record_bytes = max_record_bytes
        self.path = str(path)
        self.user_ttl_ms = user_ttl_seconds * 1000
        self._busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"sqlite {self.path}: cannot create its folder: {exc}") from exc
        with _mapped_errors(self.path):
            self._conn().executescript(_SCHEMA)

    # -- connections -----------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"sqlite {self.path}: store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        # A connection must not cross a fork: the child opens its own. (The process id is known
        # without a getpid() call, a system call on every store call: ~6 % of a cached feed.)
        if conn is None or self._local.pid != _PROCESS[0]:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=self._busy_timeout_ms / 1000)
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode is durable against process crashes, and loses at most the last
            # transactions on power loss; the pipelines replay from Kafka offsets anyway.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute(f"PRAGMA mmap_size = {int(self.READ_MMAP_BYTES)}")
            self._local.conn, self._local.pid = conn, _PROCESS[0]
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction per call; IMMEDIATE takes the write lock up front (no upgrade deadlock).
        Nested calls on the same thread join the outer transaction (``apply_user_updates``)."""
        with _mapped_errors(self.path):
            conn = self._conn()
            if getattr(self._local, "in_write", False):
                yield conn
                return
            conn.execute("BEGIN IMMEDIATE")
            self._local.in_write = True
            try:
                yield conn
            except BaseException:
                # SQLite may already have rolled back (disk full, interrupt): nothing left to undo.
                with contextlib.suppress(sqlite3.OperationalError):
                    conn.execute("ROLLBACK")
                raise
            finally:
                self._local.in_write = False
            conn.execute("COMMIT")

    def _select(self, sql: str, ids: Sequence[str], *extra: object) -> list[tuple]:  # type: ignore[type-arg]
        """``sql`` holds ``{ids}`` for the IN list; extra parameters follow the ids."""
        rows: list[tuple] = []  # type: ignore[type-arg]
        unique = list(dict.fromkeys(ids))
        with _mapped_errors(self.path):
            conn = self._conn()
            for chunk in _chunks(unique):
                rows.extend(conn.execute(sql.format(ids=_marks(len(chunk))), (*chunk, *extra)))
        return rows

    def _sized(self, what: str, key: str, blob: bytes) -> bytes:
        if len(blob) > self.max_record_bytes:
            raise RecordTooBig(f"sqlite {what} {key!r}: {len(blob)} bytes exceeds {self.max_record_bytes}")
        return blob

    # -- users -----------------------------------------------------------------------------
    # One user (the feed's read): a fixed statement, prepared once per connection (sqlite3's
    # statement cache) and no IN list built: ~5 µs less of a ~55 µs read (issue 13).
    _GET_USER = "SELECT version, state FROM users WHERE user_id = ? AND expires_at > ?"
    _GET_VERSION = "SELECT version FROM users WHERE user_id = ? AND expires_at > ?"
    #: Each connection memory-maps the file for reads, up to this many bytes: a typical profile is
    #: a leaf page and an overflow page, read from the OS page cache without a read() call each (a
    #: primary-key read of one: ~9 -> ~6 µs on the bench's file, far larger than SQLite's 2 MB cache).
    READ_MMAP_BYTES = 1 << 30

    def _user_row(self, sql: str, uid: str) -> tuple | None:  # type: ignore[type-arg]
        """One user's row by ``sql`` (a ``_GET_*`` statement), if live."""
        try:  # (a try costs nothing when nothing is raised; the context manager ~0.7 µs)
            return self._conn().execute(sql, (uid, _now_ms())).fetchone()  # type: ignore[no-any-return]
        except sqlite3.Error:
            with _mapped_errors(self.path):  # mapped as every other call's errors are
                raise

    def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        if len(user_ids) == 1:
            (uid,) = user_ids
            row = self._user_row(self._GET_USER, uid)
            return {} if row is None else {uid: codec.decode_user(uid, row[1], row[0])}
        rows = self._select(
            "SELECT user_id, version, state FROM users WHERE user_id IN ({ids}) AND expires_at > ?",
            user_ids, _now_ms())
        return codec.decode_users((uid, state, version) for uid, version, state in rows)

    def get_user_versions(self, user_ids: Sequence[str]) -> dict[str, int]:
        # The feed cache's validity check: the version column alone, no state decoding.
        if len(user_ids) == 1:
            (uid,) = user_ids
            row = self._user_row(self._GET_VERSION, uid)
            return {} if row is None else {uid: int(row[0])}
        rows = self._select(
            "SELECT user_id, version FROM users WHERE user_id IN ({ids}) AND expires_at > ?",
            user_ids, _now_ms())
        return {uid: int(version) for uid, version in rows}

    def put_users(self, users: Iterable[UserState]) -> None:
        now = _now_ms()
        rows = [(codec.check_id(u.user_id, "user_id"), now + self.user_ttl_ms,
                 self._sized("user", u.user_id, codec.encode_user(u.bounded()))) for u in users]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(_PUT_USER, rows)
            conn.execute(
                "DELETE FROM users WHERE user_id IN "
                "(SELECT user_id FROM users WHERE expires_at <= ? LIMIT ?)", (now, _PURGE_PER_WRITE))

    def apply_user_updates(self, changes: Sequence[UserChange]) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        # One transaction (reads included): the users and their counters, all or nothing.
        with self._write():
            return super().apply_user_updates(changes)

    # -- co-watch --------------------------------------------------------------------------
    def add_cowatch(self, increments: Mapping[tuple[str, str], int]) -> None:
        if not increments:
            return
        # Checked per distinct id and built in C loops: a batch holds thousands of pairs over a
        # few hundred titles (the per-pair checks were a tenth of the pipeline's co-watch write).
        items, neighbours = zip(*increments, strict=True)
        for item in set(items):
            codec.check_id(item, "video_id")
        for neighbour in set(neighbours):
            codec.check_id(neighbour, "neighbour")
        if any(map(operator.eq, items, neighbours)):
            item = next(i for i, n in zip(items, neighbours, strict=True) if i == n)
            raise ValueError(f"neighbour: an item is not its own co-watch neighbour ({item!r})")
        # (item, neighbour, count) flat, in the increments' order, cut into statements' parameters
        flat = list(itertools.chain.from_iterable(zip(items, neighbours, map(int, increments.values()), strict=True)))
        step = 3 * _UPSERT_ROWS
        with self._write() as conn:  # one transaction: a failed call leaves no partial increment
            for start in range(0, len(flat), step):
                chunk = flat[start : start + step]
                conn.execute(_UPSERT_COWATCH if len(chunk) == step else _upsert_cowatch_sql(len(chunk) // 3), chunk)
            # Every item was within the limit after the last call: only the touched can be over.
            touched = list(set(items))
            over = [item for chunk in _chunks(touched) for (item,) in conn.execute(
                _OVER_LIMIT.format(ids=_marks(len(chunk))), (*chunk, COWATCH_NEIGHBOURS_LIMIT))]
            conn.executemany(_TRIM_COWATCH, [(item, COWATCH_NEIGHBOURS_LIMIT) for item in over])

    def get_neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]:
        if k <= 0:
            raise ValueError(f"k: must be positive, got {k}")
        unique = list(dict.fromkeys(video_ids))
        result: dict[str, list[tuple[str, int]]] = {}
        with _mapped_errors(self.path):
            conn = self._conn()
            # One statement per item walks only that item's index range (<= k entries); the
            # pairs counted once are not in the rank index: read in primary-key order (count 1,
            # then id: their rank order) after those counted more, before those counted less.
            # All in one read transaction, so the batch sees one consistent snapshot.
            conn.execute("BEGIN")
            try:
                for item in unique:
                    rows = conn.execute(_RANKED, (item, k)).fetchall()
                    if len(rows) < k or rows[-1][1] < 1:
                        more = [row for row in rows if row[1] > 1]
                        if len(more) < k:
                            once = conn.execute(_COUNTED_ONCE, (item, k - len(more))).fetchall()
                            rows = [*more, *once, *(row for row in rows if row[1] < 1)][:k]
                    if rows:
                        result[item] = rows
            finally:
                conn.execute("COMMIT")
        return result

    def add_item_counts(self, increments: Mapping[str, int]) -> None:
        rows = [(codec.check_id(v, "video_id"), int(n)) for v, n in increments.items()]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO item_counts (video_id, count) VALUES (?, ?) "
                "ON CONFLICT (video_id) DO UPDATE SET count = count + excluded.count", rows)

    def get_item_counts(self, video_ids: Sequence[str]) -> dict[str, int]:
        rows = self._select("SELECT video_id, count FROM item_counts WHERE video_id IN ({ids})", video_ids)
        return dict(rows)

    # -- ranked lists ------------------------------------------------------------------------
    def put_lists(self, lists: Iterable[RankedList]) -> None:
        rows = [(codec.check_id(r.key, "key"), r.updated_at, r.window_end,
                 codec.encode_scored(r.items[:RANKED_LIST_LIMIT])) for r in lists]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO lists (key, updated_at, window_end, items) VALUES (?, ?, ?, ?)", rows)

    def get_lists(self, keys: Sequence[str]) -> dict[str, RankedList]:
        rows = self._select("SELECT key, updated_at, window_end, items FROM lists WHERE key IN ({ids})", keys)
        return {key: RankedList(key, codec.decode_scored(items), updated_at, window_end)
                for key, updated_at, window_end, items in rows}

    # -- catalog and vectors -----------------------------------------------------------------
    def upsert_items(self, items: Iterable[CatalogItem]) -> None:
        rows = [(codec.check_id(i.video_id, "video_id"), self._sized("item", i.video_id, codec.encode_item(i)))
                for i in items]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO items (video_id, meta) VALUES (?, ?) "
                "ON CONFLICT (video_id) DO UPDATE SET meta = excluded.meta", rows)

    def put_item_vectors(self, vectors: Mapping[str, np.ndarray]) -> None:
        rows = [(codec.check_id(v, "video_id"), self._sized("item vector", v, codec.encode_vector(vec)))
                for v, vec in vectors.items()]
        if not rows:
            return
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO items (video_id, vector) VALUES (?, ?) "
                "ON CONFLICT (video_id) DO UPDATE SET vector = excluded.vector", rows)

    def get_items(self, video_ids: Sequence[str]) -> dict[str, CatalogItem]:
        rows = self._select(
            "SELECT video_id, meta FROM items WHERE video_id IN ({ids}) AND meta IS NOT NULL", video_ids)
        return {vid: codec.decode_item(vid, meta) for vid, meta in rows}

    def get_item_vectors(self, video_ids: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self._select(
            "SELECT video_id, vector FROM items WHERE video_id IN ({ids}) AND vector IS NOT NULL", video_ids)
        return {vid: codec.decode_vector(vec) for vid, vec in rows}

    def get_items_with_vectors(
        self, video_ids: Sequence[str]
    ) -> dict[str, tuple[CatalogItem | None, np.ndarray | None]]:
        rows = self._select("SELECT video_id, meta, vector FROM items WHERE video_id IN ({ids})", video_ids)
        return {
            vid: (None if meta is None else codec.decode_item(vid, meta),
                  None if vec is None else codec.decode_vector(vec))
            for vid, meta, vec in rows
        }

    # -- lifecycle ---------------------------------------------------------------------------
    def ping(self) -> None:
        with _mapped_errors(self.path):
            self._conn().execute("SELECT 1 FROM users LIMIT 1").fetchall()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
