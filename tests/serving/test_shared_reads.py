"""SharedReads: catalog entries and ranked lists held for their TTL, over the real SQLite store."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from serving.shared_reads import Derived, Held, SharedReads
from streamrec.model import RankedList, ScoredItem
from streamrec.store import open_store
from streamrec.store.aio import AsyncStore
from tests.fixtures.serving import CATALOG


async def test_items_are_held_for_their_ttl_and_unknown_titles_too(feed_world):
    store = AsyncStore(open_store(feed_world.store_url))
    shared = SharedReads(items_ttl_s=0.3, lists_ttl_s=0.3)
    try:
        first = await shared.items(store, ["m1", "nope"])
        assert list(first) == ["m1"] and first["m1"].title == "Alpha"
        renamed = dataclasses.replace(CATALOG[0], title="Alpha (restored)")
        await store.upsert_items([renamed, dataclasses.replace(CATALOG[0], video_id="nope", title="New")])
        held = await shared.items(store, ["m1", "nope"])
        assert held == first  # within the TTL: the remembered entries, the unknown still unknown
        await asyncio.sleep(0.35)
        fresh = await shared.items(store, ["m1", "nope"])
        assert fresh["m1"].title == "Alpha (restored)" and fresh["nope"].title == "New"
    finally:
        await store.close()


async def test_lists_are_held_for_their_ttl(feed_world):
    store = AsyncStore(open_store(feed_world.store_url))
    shared = SharedReads(items_ttl_s=60, lists_ttl_s=0.3)
    try:
        before = await shared.lists(store, ["trending:1h:global", "genre:Nothing"])
        assert list(before) == ["trending:1h:global"]
        await store.put_lists([RankedList("trending:1h:global", [ScoredItem("m3", 9.0)], 1, 1)])
        assert await shared.lists(store, ["trending:1h:global"]) == {"trending:1h:global": before["trending:1h:global"]}
        await asyncio.sleep(0.35)
        after = await shared.lists(store, ["trending:1h:global"])
        assert [s.video_id for s in after["trending:1h:global"].items] == ["m3"]
    finally:
        await store.close()


def stopped_clock(monkeypatch) -> list[float]:  # type: ignore[no-untyped-def]
    """SharedReads' clock, moved only by the test (``clock[0] += s``): a busy machine cannot let a
    TTL pass between two steps that must see the same held value."""
    from serving import shared_reads

    clock = [1000.0]
    monkeypatch.setattr(shared_reads.time, "monotonic", lambda: clock[0])
    return clock


async def test_cowatch_neighbours_and_counts_are_held_for_their_ttl(feed_world, monkeypatch):
    clock = stopped_clock(monkeypatch)
    store = AsyncStore(open_store(feed_world.store_url))
    shared = SharedReads(cowatch_ttl_s=5.0)
    try:
        direct_n, direct_c = await store.get_neighbours(["m1", "nope"], 2), await store.get_item_counts(["m1", "nope"])
        first_n = await shared.neighbours(store, ["m1", "nope"], 2)
        first_c = await shared.item_counts(store, ["m1", "nope"])
        assert first_n == direct_n and list(first_n) == ["m1"] and first_c == direct_c and list(first_c) == ["m1"]
        assert await shared.neighbours(store, ["m1"], 3) == await store.get_neighbours(["m1"], 3)  # k is in the key
        await store.add_cowatch({("m1", "nope"): 99, ("nope", "m1"): 99})
        await store.add_item_counts({"m1": 5, "nope": 1})
        assert await shared.neighbours(store, ["m1", "nope"], 2) == first_n  # within the TTL, unknown still unknown
        assert await shared.item_counts(store, ["m1", "nope"]) == first_c
        # A title just watched is read afresh (its neighbours' counts too), the others stay held.
        assert (await shared.neighbours(store, ["m1", "nope"], 2, fresh=["m1"]))["m1"][0] == ("nope", 99)
        assert await shared.item_counts(store, ["m1", "nope"], fresh=["nope"]) == {"m1": first_c["m1"], "nope": 1}
        clock[0] += 4.9
        assert await shared.neighbours(store, ["nope"], 2) == {}  # still within the TTL
        clock[0] += 0.2
        after_n = await shared.neighbours(store, ["m1", "nope"], 2)
        assert after_n["m1"][0] == ("nope", 99) and after_n["nope"] == [("m1", 99)]
        assert await shared.item_counts(store, ["m1", "nope"]) == {"m1": first_c["m1"] + 5, "nope": 1}
    finally:
        await store.close()


async def test_held_lists_answer_without_a_read_only_while_every_key_is_fresh(feed_world, monkeypatch):
    clock = stopped_clock(monkeypatch)
    store = AsyncStore(open_store(feed_world.store_url))
    shared = SharedReads(items_ttl_s=60, lists_ttl_s=2.0)
    try:
        assert shared.held_lists(["trending:1h:global"]) is None  # never read
        read = await shared.lists(store, ["trending:1h:global", "genre:Nothing"])
        assert shared.held_lists(["trending:1h:global", "genre:Nothing"]) == read  # unknown keys held as unknown
        assert shared.held_lists(["trending:1h:global", "genre:Drama"]) is None  # one key not read yet
        clock[0] += 1.9
        assert shared.held_lists(["trending:1h:global"]) == {"trending:1h:global": read["trending:1h:global"]}
        clock[0] += 0.2
        assert shared.held_lists(["trending:1h:global"]) is None  # past the TTL
    finally:
        await store.close()


async def test_similar_rankings_are_held_for_their_ttl_and_bounded() -> None:
    shared = SharedReads(similar_ttl_s=0.2, max_items=30)  # at most 3 rankings kept
    ranked = [ScoredItem("m2", 0.5)]
    shared.keep_similar(("m1", 20), ranked)
    assert shared.similar(("m1", 20)) is ranked and shared.similar(("m1", 10)) is None
    import time

    assert shared.similar(("m1", 20), made_after_ms=int(time.time() * 1000) + 5_000) is None  # made too early
    await asyncio.sleep(0.25)
    assert shared.similar(("m1", 20)) is None  # past the TTL
    for n in range(5):
        shared.keep_similar((f"m{n}", 20), ranked)
    assert [shared.similar((f"m{n}", 20)) is not None for n in range(5)] == [False, False, True, True, True]


def test_derived_values_follow_their_sources_and_adopt_equal_newer_ones() -> None:
    """A list read again after its TTL is a new object with the same entries: the value made from
    the old one is kept, and from then on the new object is compared by pointer (comparing every
    entry of every list on every feed was ~1,700 entry compares per feed)."""
    compares = 0

    @dataclasses.dataclass
    class Source:
        value: int

        def __eq__(self, other: object) -> bool:
            nonlocal compares
            compares += 1
            return isinstance(other, Source) and other.value == self.value

    derived: Derived[str] = Derived(max_entries=10)
    made: list[int] = []

    def make(source: Source) -> str:
        made.append(source.value)
        return f"v{source.value}"

    first, again, changed = Source(1), Source(1), Source(2)
    assert derived.get("a", (first,), make, first) == "v1"
    assert derived.get("a", (first,), make, first) == "v1" and compares == 0  # the same object
    assert derived.get("a", (again,), make, again) == "v1" and compares == 1  # equal: kept value
    for _ in range(3):
        assert derived.holds("a", (again,)) and derived.get("a", (again,), make, again) == "v1"
    assert compares == 1  # the equal newer object was adopted: pointer compares since
    assert derived.get("a", (changed,), make, changed) == "v2" and made == [1, 2]


async def test_held_values_expire_by_read_time_are_bounded_and_hold_unknown_keys(monkeypatch) -> None:
    from serving import shared_reads

    clock = [100.0]
    monkeypatch.setattr(shared_reads.time, "monotonic", lambda: clock[0])
    reads: list[list[str]] = []
    store = {"a": 1, "b": 0, "c": 3, "d": 4}

    async def fetch(keys: list[str]) -> dict[str, int]:
        reads.append(keys)
        return {k: store[k] for k in keys if k in store}

    held: Held[str, int] = Held(ttl_s=10.0, max_entries=3)
    assert await held.through(["a", "b", "nope", "a"], fetch) == {"a": 1, "b": 0}  # 0 is a value, nope unknown
    store.update(a=10, b=20)
    clock[0] = 105.0
    assert await held.through(["nope", "b", "a"], fetch) == {"b": 0, "a": 1} and len(reads) == 1  # all held
    assert await held.through(["a", "b"], fetch, fresh=["a"]) == {"b": 0, "a": 10}  # held first, then read
    clock[0] = 111.0  # b and nope were read 11 s ago; a only 6 s ago (its first read's queue entry is void)
    assert await held.through(["a", "b", "nope"], fetch) == {"a": 10, "b": 20}
    assert reads[-1] == ["b", "nope"]
    assert await held.through(["c", "d"], fetch) == {"c": 3, "d": 4} and len(held) == 3  # a, the first read, went
    assert await held.through(["a"], fetch) == {"a": 10} and reads[-1] == ["a"]


@pytest.mark.parametrize("on_loop", [True, False])
async def test_a_feeds_reads_are_gathered_only_when_they_wait_on_threads(on_loop: bool) -> None:
    """``serving.feed.together``: on a store whose reads run on the event loop the reads go one
    after the other (a gather would only add its Tasks, and more yields let more feeds in at
    once past the admission control); on a pooled store they run at once."""
    from types import SimpleNamespace

    from serving.feed import together

    log: list[tuple[str, str]] = []

    async def read(name: str) -> str:
        log.append(("start", name))
        await asyncio.sleep(0)
        log.append(("end", name))
        return name

    store = SimpleNamespace(reads_on_loop=on_loop)
    assert await together(store, read("a"), read("b"), read("c")) == ["a", "b", "c"]  # type: ignore[arg-type]
    if on_loop:
        assert log == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b"), ("start", "c"), ("end", "c")]
    else:
        assert log[:3] == [("start", "a"), ("start", "b"), ("start", "c")]
