"""Conformance: co-watch counts and trimming, item counts, ranked lists, catalog and vectors."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from streamrec.events.model import CatalogItem
from streamrec.model import COWATCH_NEIGHBOURS_LIMIT as K
from streamrec.model import RANKED_LIST_LIMIT, RankedList, ScoredItem, trending_key
from streamrec.store.base import Store


def test_cowatch_increments_add_up_across_calls(store: Store, key: Callable[[str], str]) -> None:
    a, b, c, d = (key(n) for n in "abcd")
    store.add_cowatch({(a, b): 2, (a, c): 1, (b, a): 2})
    store.add_cowatch({(a, c): 3, (a, d): 1})
    got = store.get_neighbours([a, b, key("never")], k=10)
    assert got == {a: [(c, 4), (b, 2), (d, 1)], b: [(a, 2)]}  # unknown items are absent


def test_neighbours_are_cut_to_k_with_ties_ordered_by_id(store: Store, key: Callable[[str], str]) -> None:
    item = key("item")
    names = [key(f"n{i}") for i in range(5)]
    store.add_cowatch({(item, names[4]): 5, (item, names[2]): 3, (item, names[0]): 3, (item, names[1]): 3,
                       (item, names[3]): 1})
    assert store.get_neighbours([item], k=3) == {item: [(names[4], 5), (names[0], 3), (names[1], 3)]}


def test_neighbours_of_many_items_in_one_call(store: Store, key: Callable[[str], str]) -> None:
    items = [key(f"i{i}") for i in range(300)]
    store.add_cowatch({(items[i], items[(i + 1) % 300]): i + 1 for i in range(300)})
    got = store.get_neighbours(items, k=5)
    assert len(got) == 300
    assert all(got[items[i]] == [(items[(i + 1) % 300], i + 1)] for i in range(300))


def test_each_item_keeps_only_its_top_k_neighbours(store: Store, key: Callable[[str], str]) -> None:
    item = key("popular")
    neighbours = [key(f"n{i:03d}") for i in range(K + 50)]
    # counts 1..K+50: the 50 smallest must go, in one call
    store.add_cowatch({(item, nb): i + 1 for i, nb in enumerate(neighbours)})
    kept = store.get_neighbours([item], k=10 * K)[item]
    assert len(kept) == K
    assert [c for _, c in kept] == list(range(K + 50, 50, -1))
    # a newcomer stronger than the weakest enters; the weakest leaves (same operation trims)
    newcomer = key("newcomer")
    store.add_cowatch({(item, newcomer): 1000})
    kept = store.get_neighbours([item], k=10 * K)[item]
    assert len(kept) == K and kept[0] == (newcomer, 1000)
    assert (neighbours[50], 51) not in kept and (neighbours[51], 52) in kept
    # a newcomer weaker than everyone kept is trimmed straight away
    store.add_cowatch({(item, key("weak")): 1})
    assert key("weak") not in dict(store.get_neighbours([item], k=10 * K)[item])


def test_ties_at_the_trim_cut_keep_the_larger_id(store: Store, key: Callable[[str], str]) -> None:
    item = key("tied")
    strong = {(item, key(f"s{i:03d}")): 10 for i in range(K - 1)}
    tied = [key("tie-a"), key("tie-b"), key("tie-c")]
    store.add_cowatch({**strong, **{(item, t): 2 for t in tied}})
    kept = dict(store.get_neighbours([item], k=10 * K)[item])
    assert len(kept) == K
    assert tied[2] in kept and tied[0] not in kept and tied[1] not in kept


def test_cowatch_rejects_self_pairs_and_bad_k(store: Store, key: Callable[[str], str]) -> None:
    with pytest.raises(ValueError, match="neighbour"):
        store.add_cowatch({(key("a"), key("a")): 1})
    with pytest.raises(ValueError, match="k"):
        store.get_neighbours([key("a")], k=0)
    with pytest.raises(ValueError, match="video_id"):
        store.add_cowatch({("", key("a")): 1})


def test_item_counts_add_up(store: Store, key: Callable[[str], str]) -> None:
    a, b = key("a"), key("b")
    store.add_item_counts({a: 3, b: 1})
    store.add_item_counts({a: 4})
    store.add_cowatch({(a, b): 1})  # neighbours and the item's own count live side by side
    assert store.get_item_counts([a, b, key("never")]) == {a: 7, b: 1}
    assert store.get_neighbours([a], k=5) == {a: [(b, 1)]}


def test_ranked_lists_are_replaced_and_cut(store: Store, key: Callable[[str], str]) -> None:
    hour, day = trending_key("1h", key("FR")), trending_key("24h", key("global"))
    items = [ScoredItem(key(f"v{i}"), float(RANKED_LIST_LIMIT + 20 - i)) for i in range(RANKED_LIST_LIMIT + 20)]
    store.put_lists([RankedList(hour, items, updated_at=5000, window_end=3_600_000),
                     RankedList(day, items[:2], updated_at=6000)])
    got = store.get_lists([hour, day, key("none")])
    assert set(got) == {hour, day}
    assert got[hour].items == items[:RANKED_LIST_LIMIT]
    assert (got[hour].updated_at, got[hour].window_end) == (5000, 3_600_000)
    assert got[day] == RankedList(day, items[:2], 6000, None)
    store.put_lists([RankedList(hour, items[5:6], updated_at=7000)])  # replace, window end gone
    assert store.get_lists([hour])[hour] == RankedList(hour, items[5:6], 7000, None)


def test_catalog_and_vectors_are_written_apart_and_read_together(store: Store, key: Callable[[str], str]) -> None:
    a, b, c = key("a"), key("b"), key("c")
    item_a = CatalogItem(a, "Amélie", description="Paris", genres=("Comedy", "Romance"), release_year=2001,
                         language="fr", maturity_rating="R", regions=("FR", "DE"), duration_sec=7320.0,
                         added_at=1_700_000_000_000, thumbnail="https://img/a.jpg", extra={"k": "v"})
    store.upsert_items([item_a, CatalogItem(b, "B")])
    store.put_item_vectors({a: np.array([1.0, 2.0]), c: np.array([0.5, 0.25, 0.125])})
    assert store.get_items([a, b, c]) == {a: item_a, b: CatalogItem(b, "B")}
    vectors = store.get_item_vectors([a, b, c])
    assert set(vectors) == {a, c} and vectors[c].dtype == np.float32
    np.testing.assert_array_equal(vectors[c], [0.5, 0.25, 0.125])
    both = store.get_items_with_vectors([a, b, c, key("none")])
    assert set(both) == {a, b, c}
    assert both[a][0] == item_a and both[a][1] is not None and both[a][1].tolist() == [1.0, 2.0]
    assert both[b] == (CatalogItem(b, "B"), None)
    assert both[c][0] is None
    # replacing metadata keeps the vector; replacing the vector keeps the metadata
    store.upsert_items([CatalogItem(a, "Amélie (2001)")])
    store.put_item_vectors({a: np.array([3.0])})
    meta, vector = store.get_items_with_vectors([a])[a]
    assert meta == CatalogItem(a, "Amélie (2001)") and vector is not None and vector.tolist() == [3.0]


def test_bad_vectors_are_refused(store: Store, key: Callable[[str], str]) -> None:
    with pytest.raises(ValueError, match="vector"):
        store.put_item_vectors({key("a"): np.ones((2, 2))})
    with pytest.raises(ValueError, match="vector"):
        store.put_item_vectors({key("a"): np.array([np.nan])})
