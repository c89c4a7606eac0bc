"""AsyncStore over each real backend: same answers as the sync store, loop never blocked, timeouts."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from streamrec.events.model import CatalogItem
from streamrec.model import RankedList, ScoredItem, UserState
from streamrec.store.aio import AsyncStore
from streamrec.store.base import Store, StoreUnavailable
from streamrec.store.sqlite import SqliteStore


async def test_async_calls_give_the_sync_answers(store: Store, key: Callable[[str], str]) -> None:
    a, b, u = key("a"), key("b"), key("u")
    astore = AsyncStore(store, max_workers=2, timeout=5.0)
    await astore.put_users([UserState(u, seen=[a])])
    await astore.add_cowatch({(a, b): 2})
    await astore.add_item_counts({a: 3})
    await astore.put_lists([RankedList(key("l"), [ScoredItem(a, 1.5)], 10)])
    await astore.upsert_items([CatalogItem(a, "A")])
    await astore.put_item_vectors({a: np.array([1.0, 2.0])})
    users, neighbours, counts, lists, items, vectors, both = await asyncio.gather(
        astore.get_users([u]), astore.get_neighbours([a], 5), astore.get_item_counts([a]),
        astore.get_lists([key("l")]), astore.get_items([a]), astore.get_item_vectors([a]),
        astore.get_items_with_vectors([a, b]))
    assert users[u].seen == store.get_users([u])[u].seen == [a]
    assert (await astore.get_user(u)) is not None
    assert neighbours == store.get_neighbours([a], 5) == {a: [(b, 2)]}
    assert counts == {a: 3} and lists[key("l")].items == [ScoredItem(a, 1.5)]
    assert items == {a: CatalogItem(a, "A")} and vectors[a].tolist() == [1.0, 2.0]
    assert set(both) == {a}
    await astore.ping()
    await astore.close()


@pytest.fixture
def locked_sqlite(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real SQLite store whose write lock another connection holds: writes stall."""
    store = SqliteStore(tmp_path / "state.db", busy_timeout_ms=3000)
    other = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield store
    other.execute("ROLLBACK")
    other.close()
    store.close()


async def test_a_stalled_backend_times_out_as_unavailable_without_blocking_the_loop(
        locked_sqlite: SqliteStore) -> None:
    astore = AsyncStore(locked_sqlite, max_workers=2, timeout=0.3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    start = time.monotonic()
    with pytest.raises(StoreUnavailable, match="put_users"):
        await astore.put_users([UserState("u")])
    elapsed = time.monotonic() - start
    ticking.cancel()
    assert 0.25 < elapsed < 1.5
    assert ticks >= 10  # the loop kept running while the call waited in its thread
    assert await astore.get_users(["u"]) == {}  # reads still answer
    await astore.close()


def test_bad_pool_settings_are_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    with pytest.raises(ValueError, match="max_workers"):
        AsyncStore(store, max_workers=0)
    with pytest.raises(ValueError, match="timeout"):
        AsyncStore(store, timeout=0)
    store.close()


async def test_sqlite_reads_run_on_the_loop_and_still_meet_a_deadline(tmp_path: Path) -> None:
    """The embedded store's reads need no thread (``reads_block`` False): they run on the event
    loop's own thread; a request's deadline still ends a request that read past it."""
    import threading

    store = SqliteStore(tmp_path / "s.db")
    store.put_users([UserState("u", seen=["a"])])
    threads: list[int] = []
    read = store.get_user_versions

    def tracked(user_ids):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return read(user_ids)

    store.get_user_versions = tracked  # type: ignore[method-assign]
    astore = AsyncStore(store)
    try:
        assert await astore.get_user_versions(["u"]) == {"u": 1}
        assert threads == [threading.get_ident()]
        assert (await astore.get_users(["u"]))["u"].seen == ["a"]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1e-9):
                await astore.get_users(["u"])
        # With a per-call timeout the pool is used (the loop cannot time out a call it runs).
        pooled = AsyncStore(store, timeout=5.0)
        await pooled.get_user_versions(["u"])
        assert threads[-1] != threading.get_ident()
        # A cached feed's version check: answered at once on the loop, or None (then awaited).
        assert astore.user_versions_now(["u"]) == {"u": 1} and threads[-1] == threading.get_ident()
        assert pooled.user_versions_now(["u"]) is None
        assert astore.reads_on_loop and not pooled.reads_on_loop
    finally:
        await astore.close()
