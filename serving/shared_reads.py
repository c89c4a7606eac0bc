"""What every feed shares, held in memory for a short while: catalog entries and ranked lists.

Neither is per user, and both change slowly (a catalog entry when the catalog topic says so, a
ranked list once per trending window), while decoding them is most of a feed's store time: a
feed reads the metadata of hundreds of candidate titles. So:

- catalog entries are kept ``items_ttl_s`` (a title's new region list or rating reaches feeds
  within that time), titles the store does not know are remembered as unknown just as long;
- ranked lists (trending, new releases, genre rows) are kept ``lists_ttl_s``;
- a title's "because you watched" ranking (its co-watch neighbours, then content similarity
  over its genres' lists) is kept ``similar_ttl_s``, like the "more like this" answers: many
  viewers' newest title is the same popular one;
- titles' co-watch neighbours and watch counts are kept ``cowatch_ttl_s`` (5 s): a ranked feed
  scores ~400 candidates by counts and reads its ~10 seeds' neighbours, mostly the same popular
  titles as the feeds around it. The feed cache already lets others' co-watch be ``cache_ttl_s``
  (30 s) old. A title the viewer watched less than ``serving.feed.SIMILAR_SETTLE_MS`` ago is
  read afresh, its neighbours' counts too: its "because you watched" row is ranked from the
  co-watch its watch has just added, as before.

Item vectors and everything per user are always read from the store.
"""

from __future__ import annotations

import operator
import time
from collections import OrderedDict, deque
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Hashable,
    Iterable,
    Mapping,
    Sequence,
)
from itertools import repeat
from typing import Any, Generic, Protocol, TypeVar

from streamrec.events.model import CatalogItem
from streamrec.model import RankedList, ScoredItem


class CatalogReads(Protocol):
    async def get_items(self, video_ids: Sequence[str]) -> dict[str, CatalogItem]: ...
    async def get_lists(self, keys: Sequence[str]) -> dict[str, RankedList]: ...


class CowatchReads(Protocol):
    async def get_neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]: ...
    async def get_item_counts(self, video_ids: Sequence[str]) -> dict[str, int]: ...


K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SharedReads:
    """Read-through caches of catalog entries and ranked lists, and "because you watched"
    rankings (event-loop only, not thread-safe)."""

    def __init__(self, items_ttl_s: float = 60.0, lists_ttl_s: float = 2.0, max_items: int = 200_000,
                 similar_ttl_s: float = 30.0, cowatch_ttl_s: float = 5.0) -> None:
        if min(items_ttl_s, lists_ttl_s, max_items, similar_ttl_s, cowatch_ttl_s) <= 0:
            raise ValueError("items_ttl_s, lists_ttl_s, max_items, similar_ttl_s, cowatch_ttl_s: must be positive")
        self.items_ttl_s = items_ttl_s
        self.lists_ttl_s = lists_ttl_s
        self.similar_ttl_s = similar_ttl_s
        self.cowatch_ttl_s = cowatch_ttl_s
        self.max_items = max_items
        self._items: Held[str, CatalogItem] = Held(items_ttl_s, max_items)
        self._neighbours: Held[tuple[str, int], list[tuple[str, int]]] = Held(cowatch_ttl_s, max_items)
        self._counts: Held[str, int] = Held(cowatch_ttl_s, max_items)
        # Genre and region keys are few: the bound only stops abuse.
        self._lists: Held[str, RankedList] = Held(lists_ttl_s, 10_000)
        self._similar: OrderedDict[tuple[object, ...], tuple[float, int, list[ScoredItem]]] = OrderedDict()

    def similar(self, key: tuple[object, ...], made_after_ms: int = 0) -> list[ScoredItem] | None:
        """A "more like this" ranking kept by :meth:`keep_similar` at most ``similar_ttl_s`` ago
        and made after ``made_after_ms`` (epoch ms: a ranking made before the pipelines wrote a
        watch of the title is not the answer for that viewer); the same for every viewer, each
        viewer's own filter is applied after."""
        entry = self._similar.get(key)
        if entry is None or time.monotonic() - entry[0] > self.similar_ttl_s or entry[1] < made_after_ms:
            return None
        return entry[2]

    def keep_similar(self, key: tuple[object, ...], ranked: list[ScoredItem]) -> None:
        self._similar[key] = (time.monotonic(), int(time.time() * 1000), ranked)
        self._similar.move_to_end(key)
        while len(self._similar) > self.max_items // 10:
            self._similar.popitem(last=False)

    async def items(self, store: CatalogReads, video_ids: Iterable[str]) -> dict[str, CatalogItem]:
        """Catalog entries of ``video_ids`` (unknown titles absent); one store read for the misses."""
        return await self._items.through(video_ids, store.get_items)

    async def neighbours(self, store: CowatchReads, video_ids: Iterable[str], k: int,
                         fresh: Collection[str] = ()) -> dict[str, list[tuple[str, int]]]:
        """Each title's top-``k`` co-watch neighbours (titles with none absent), held
        ``cowatch_ttl_s``: popular titles are seeds of many viewers' feeds at once. Titles in
        ``fresh`` are read from the store whatever is held (a title the viewer has just watched)."""
        async def fetch(keys: list[tuple[str, int]]) -> dict[tuple[str, int], list[tuple[str, int]]]:
            found = await store.get_neighbours([v for v, _ in keys], k)
            return {(v, k): ns for v, ns in found.items()}

        held = await self._neighbours.through([(v, k) for v in video_ids], fetch, [(v, k) for v in fresh])
        return {v: ns for (v, _), ns in held.items()}

    async def item_counts(self, store: CowatchReads, video_ids: Iterable[str],
                          fresh: Collection[str] = ()) -> dict[str, int]:
        """Titles' watch counts (titles never watched absent), held ``cowatch_ttl_s``: a ranked
        feed scores ~400 candidates by them, mostly the same popular titles as other feeds'.
        Titles in ``fresh`` are read from the store whatever is held."""
        return await self._counts.through(video_ids, store.get_item_counts, fresh)

    def held_lists(self, keys: Iterable[str]) -> dict[str, RankedList] | None:
        """The ranked lists of ``keys`` as :meth:`lists` answers them, if every one is held and
        fresh (no store read needed: a caller can skip the await and its deadline); else None."""
        return self._lists.held(keys)

    async def lists(self, store: CatalogReads, keys: Iterable[str]) -> dict[str, RankedList]:
        """Ranked lists by key, in ``keys`` order (unknown keys absent); one store read for the misses."""
        wanted = list(dict.fromkeys(keys))
        held = await self._lists.through(wanted, store.get_lists)
        return {k: held[k] for k in wanted if k in held}


class Held(Generic[K, T]):
    """A read-through table of store values, each held ``ttl_s`` after it was read (keys the
    store does not know are held as unknown just as long); past ``max_entries`` the first read
    are dropped first. Event-loop only.

    A ranked feed looks up ~1,200 keys here, nearly all held: the lookup is one C loop over the
    keys (``map(dict.get)``), with no per-entry time to compare; entries are dropped by their read
    time in read order instead (a queue), when next looked up. ~2x cheaper per key than an
    entry holding its time, in a table of 200,000 titles.
    """

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        if ttl_s <= 0 or max_entries <= 0:
            raise ValueError("ttl_s, max_entries: must be positive")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._values: dict[K, T | _Unknown] = {}
        self._read: deque[tuple[float, K]] = deque()  # (read time, key) in read order
        self._read_at: dict[K, float] = {}  # each held key's latest read (older queue entries are void)

    def __len__(self) -> int:
        return len(self._values)

    async def through(self, keys: Iterable[K], fetch: Callable[[list[K]], Awaitable[Mapping[K, T]]],
                      fresh: Collection[K] = ()) -> dict[K, T]:
        """The values of ``keys`` (unknown keys absent), one ``fetch`` for those not held and
        for ``fresh``. Held keys come first in the answer, in ``keys`` order, then the fetched."""
        now = time.monotonic()
        self._drop(now - self.ttl_s)
        wanted = list(dict.fromkeys(keys))
        got = list(map(self._values.get, wanted))
        out = dict(zip(wanted, got))
        missing = []
        if fresh or any(map(operator.is_, got, repeat(None))):
            refresh = set(fresh)
            missing = [k for k, v in zip(wanted, got, strict=True) if v is None or k in refresh]
            for key in missing:
                del out[key]
        if any(map(operator.is_, got, repeat(UNKNOWN))):
            for key in [k for k, v in out.items() if v is UNKNOWN]:
                del out[key]
        if missing:
            fetched = await fetch(missing)
            for key in missing:
                value = fetched.get(key)
                self._keep(key, UNKNOWN if value is None else value, now)
                if value is not None:
                    out[key] = value
        return out  # type: ignore[return-value]  # UNKNOWN removed above

    def held(self, keys: Iterable[K]) -> dict[K, T] | None:
        """The values of ``keys`` in their order (unknown keys absent) if every key is held, with
        no fetch (a caller can skip the await); None if any is not."""
        self._drop(time.monotonic() - self.ttl_s)
        values = self._values
        out: dict[K, T] = {}
        for key in keys:
            value = values.get(key)
            if value is None:
                return None
            if value is not UNKNOWN:
                out[key] = value  # type: ignore[assignment]  # UNKNOWN skipped
        return out

    def _keep(self, key: K, value: T | _Unknown, now: float) -> None:
        self._values[key] = value
        self._read_at[key] = now
        self._read.append((now, key))
        while len(self._values) > self.max_entries:
            self._drop_first()

    def _drop(self, oldest: float) -> None:
        read = self._read
        while read and read[0][0] < oldest:
            self._drop_first()

    def _drop_first(self) -> None:
        at, key = self._read.popleft()
        if self._read_at.get(key) == at:  # not read again since
            del self._values[key], self._read_at[key]


class _Unknown:
    """What the store did not know, held as such (a title not in the catalog, never watched)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()


V = TypeVar("V")


class Derived(Generic[V]):
    """Values worked out from shared objects (ranked lists, catalog entries), one slot per name.

    ``SharedReads`` hands every feed the very same objects until their TTL, so what is worked out
    from them (a list's filtered views, a region's merged new releases, a title's view) holds as
    long as they are the same objects: a slot is reused while its sources are the same (or equal:
    the same value then) and replaced when newer ones come, so there are as many slots as names in
    use. Bounded: cleared past
    ``max_entries``. Event-loop only; the values are shared, never changed after they are made.
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries: must be positive, got {max_entries}")
        self.max_entries = max_entries
        self._slots: dict[Hashable, tuple[tuple[object, ...], V]] = {}

    def get(self, name: Hashable, sources: tuple[object, ...], make: Callable[..., V], *args: Any) -> V:
        """The value kept under ``name`` if made from these very ``sources``, else ``make(*args)``."""
        kept = self._kept(name, sources)
        if kept is not None:
            return kept[1]
        value = make(*args)
        if len(self._slots) >= self.max_entries:
            self._slots.clear()
        self._slots[name] = (sources, value)  # the sources are kept: their ids are not reused meanwhile
        return value

    def holds(self, name: Hashable, sources: tuple[object, ...]) -> bool:
        """Whether :meth:`get` would return the kept value (nothing to read for it)."""
        return self._kept(name, sources) is not None

    def _kept(self, name: Hashable, sources: tuple[object, ...]) -> tuple[tuple[object, ...], V] | None:
        kept = self._slots.get(name)
        if kept is None:
            return None
        made_from = kept[0]
        if len(made_from) == len(sources) and all(map(operator.is_, made_from, sources)):
            return kept  # the same objects: a pointer compare each
        if made_from == sources:
            # Equal but newer objects (a list read again after its TTL, unchanged): kept from now
            # on, so the next feeds compare pointers again, not every entry of every list.
            kept = self._slots[name] = (sources, kept[1])
            return kept
        return None

    def clear(self) -> None:
        self._slots.clear()

    def __len__(self) -> int:
        return len(self._slots)


class TimedAnswers:
    """Serialized answers that are the same for every user (``similar``), kept ``ttl_s``.

    ``get`` returns a fresh answer; ``stale`` any answer ever kept, for when the store fails.
    """

    def __init__(self, ttl_s: float, max_entries: int = 20_000) -> None:
        if ttl_s <= 0 or max_entries <= 0:
            raise ValueError("ttl_s, max_entries: must be positive")
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._answers: OrderedDict[tuple[object, ...], tuple[float, bytes]] = OrderedDict()

    def get(self, key: tuple[object, ...]) -> bytes | None:
        entry = self._answers.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        self._answers.move_to_end(key)
        return entry[1]

    def stale(self, key: tuple[object, ...]) -> bytes | None:
        entry = self._answers.get(key)
        return None if entry is None else entry[1]

    def put(self, key: tuple[object, ...], body: bytes) -> None:
        self._answers[key] = (time.monotonic(), body)
        self._answers.move_to_end(key)
        if len(self._answers) > self.max_entries:
            self._answers.popitem(last=False)
