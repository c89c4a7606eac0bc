"""Async access to any :class:`~streamrec.store.base.Store` for the aiohttp side.

Both backends are synchronous (stdlib sqlite3; the official Aerospike client is a C extension
with a blocking API), so every call runs in a small, bounded thread pool and the event loop
never blocks. An optional per-call ``timeout`` turns a slow backend into
:class:`StoreUnavailable` (the feed then degrades instead of hanging); the call itself keeps
running in its thread until the backend's own timeout ends it, which is why the backends carry
their own bounded timeouts too.

    store = AsyncStore(open_store(url), max_workers=8, timeout=0.25)
    users = await store.get_users(["u1"])
    await store.close()
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, Self, TypeVar

import numpy as np

from streamrec.events.model import CatalogItem
from streamrec.model import RankedList, UserState
from streamrec.store.base import Store, StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")


class AsyncStore:
    """The :class:`Store` contract as coroutines. ``max_workers`` threads run the calls;
    at most ``max_pending`` calls wait or run at once, so a stalled backend cannot pile up
    an unbounded queue behind the pool."""

    def __init__(self, store: Store, *, max_workers: int = 8, max_pending: int = 256,
                 timeout: float | None = None) -> None:
        if max_workers <= 0:
            raise ValueError(f"max_workers: must be positive, got {max_workers}")
        if max_pending < max_workers:
            raise ValueError(f"max_pending: must be >= max_workers ({max_workers}), got {max_pending}")
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout: must be positive or None, got {timeout}")
        self.store = store
        self.timeout = timeout
        self._inline_reads = not store.reads_block and timeout is None
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="store")
        self._pending = asyncio.Semaphore(max_pending)

    async def _read(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """A read: on the event loop when the backend's reads never wait (``Store.reads_block``
        False: the embedded SQLite file, whose reads are in-process B-tree lookups that a writer
        does not block in WAL mode), else in the pool like every other call. The hop to a thread
        and back costs ~45 µs of CPU (measured), several times such a read; the loop still yields
        once after it, so a request's deadline or a cancellation takes effect as before."""
        if self._inline_reads:
            result = fn(*args, **kwargs)
            await asyncio.sleep(0)
            return result
        return await self._call(fn, *args, **kwargs)

    async def _call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        async def run() -> T:
            async with self._pending:
                loop = asyncio.get_running_loop()
                return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

        if self.timeout is None:
            return await run()
        try:
            return await asyncio.wait_for(run(), self.timeout)
        except TimeoutError as exc:
            name = getattr(fn, "__name__", "call")
            raise StoreUnavailable(f"store {name}: no answer within {self.timeout:.3f}s") from exc

    @property
    def reads_on_loop(self) -> bool:
        """Whether reads run on the event loop (the embedded store, :meth:`_read`): several reads
        then gain nothing from running as concurrent Tasks (``serving.feed.together``)."""
        return self._inline_reads

    # -- reads (the feed's path) --------------------------------------------------------------
    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        return await self._read(self.store.get_users, list(user_ids))

    async def get_user_versions(self, user_ids: Sequence[str]) -> dict[str, int]:
        return await self._read(self.store.get_user_versions, list(user_ids))

    def user_versions_now(self, user_ids: Sequence[str]) -> dict[str, int] | None:
        """:meth:`get_user_versions` answered at once, with no await, when reads run on the event
        loop; None when they run in the pool (then await :meth:`get_user_versions`). A cached
        feed is this one read: a yield and a deadline around it cost as much as the read, and no
        deadline can end a read that does not wait."""
        return self.store.get_user_versions(list(user_ids)) if self._inline_reads else None

    async def get_user(self, user_id: str) -> UserState | None:
        return (await self.get_users([user_id])).get(user_id)

    async def get_neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]:
        return await self._read(self.store.get_neighbours, list(video_ids), k)

    async def get_item_counts(self, video_ids: Sequence[str]) -> dict[str, int]:
        return await self._read(self.store.get_item_counts, list(video_ids))

    async def get_lists(self, keys: Sequence[str]) -> dict[str, RankedList]:
        return await self._read(self.store.get_lists, list(keys))

    async def get_items(self, video_ids: Sequence[str]) -> dict[str, CatalogItem]:
        return await self._read(self.store.get_items, list(video_ids))

    async def get_item_vectors(self, video_ids: Sequence[str]) -> dict[str, np.ndarray]:
        return await self._read(self.store.get_item_vectors, list(video_ids))

    async def get_items_with_vectors(
        self, video_ids: Sequence[str]
    ) -> dict[str, tuple[CatalogItem | None, np.ndarray | None]]:
        return await self._read(self.store.get_items_with_vectors, list(video_ids))

    async def ping(self) -> None:
        await self._read(self.store.ping)

    # -- writes (serving rarely writes; here for symmetry and tools) -----------------------------
    async def put_users(self, users: Iterable[UserState]) -> None:
        await self._call(self.store.put_users, list(users))

    async def add_cowatch(self, increments: Mapping[tuple[str, str], int]) -> None:
        await self._call(self.store.add_cowatch, dict(increments))

    async def add_item_counts(self, increments: Mapping[str, int]) -> None:
        await self._call(self.store.add_item_counts, dict(increments))

    async def put_lists(self, lists: Iterable[RankedList]) -> None:
        await self._call(self.store.put_lists, list(lists))

    async def upsert_items(self, items: Iterable[CatalogItem]) -> None:
        await self._call(self.store.upsert_items, list(items))

    async def put_item_vectors(self, vectors: Mapping[str, np.ndarray]) -> None:
        await self._call(self.store.put_item_vectors, dict(vectors))

    # -- lifecycle ---------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop taking calls, let running ones finish in their threads, close the store."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
