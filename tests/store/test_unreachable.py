"""Unreachable backends fail fast with StoreUnavailable, never hang.

These need no server: the Aerospike cases point the real client at a closed port and at a
port that accepts connections but never answers.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamrec.store import StoreUnavailable, open_store


def test_sqlite_on_an_unwritable_path_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreUnavailable, match="sqlite"):
        open_store(f"sqlite:///{blocker / 'state.db'}")


def test_sqlite_held_write_lock_is_unavailable_after_the_busy_timeout(tmp_path: Path) -> None:
    import sqlite3

    from streamrec.model import UserState
    from streamrec.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "state.db", busy_timeout_ms=200)
    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock and never lets go
    try:
        start = time.monotonic()
        with pytest.raises(StoreUnavailable, match="locked"):
            store.put_users([UserState("u")])
        assert time.monotonic() - start < 5
        assert store.get_users(["u"]) == {}  # readers are not blocked by the writer (WAL)
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


@pytest.mark.aerospike
def test_aerospike_on_a_closed_port_opens_degraded_and_is_unavailable_quickly(closed_port: int) -> None:
    # Issue 11, defect 7: the store opens without its cluster (a service starts degraded); every
    # call while it is down fails fast with StoreUnavailable, and tries to connect again.
    start = time.monotonic()
    store = open_store(f"aerospike://127.0.0.1:{closed_port}/streamrec")
    try:
        for _ in range(2):
            with pytest.raises(StoreUnavailable, match="cannot connect"):
                store.get_users(["u"])
        with pytest.raises(StoreUnavailable, match="cannot connect"):
            store.ping()
    finally:
        store.close()
    assert time.monotonic() - start < 6


@pytest.mark.aerospike
def test_aerospike_that_never_answers_is_unavailable_within_the_connect_timeout(silent_port: int) -> None:
    start = time.monotonic()
    store = open_store(f"aerospike://127.0.0.1:{silent_port}/streamrec?connect_timeout_ms=300")
    with pytest.raises(StoreUnavailable, match="cannot connect"):
        store.get_users(["u"])
    store.close()
    assert time.monotonic() - start < 3
