"""The ranked lists a feed reads: their keys for a region, a region's list topped up from the
global one, a region's new releases merged with the global ones, and the names of the rows
made from them. Pure, over the lists ``serving.shared_reads.SharedReads`` hands out; what is
worked out from a pair of list objects is kept while they are the same objects (``Derived``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from serving.shared_reads import Derived
from streamrec import recommend
from streamrec.model import (
    RANKED_LIST_LIMIT,
    RankedList,
    ScoredItem,
    genre_key,
    new_releases_key,
    trending_key,
)

GLOBAL = "global"


def list_keys(region: str, window: str) -> list[str]:
    keys = [trending_key(window, region), new_releases_key(region)]
    if region != GLOBAL:
        keys += [trending_key(window, GLOBAL), new_releases_key(GLOBAL)]
    return keys


def genre_keys(genres: Iterable[str], region: str) -> list[str]:
    """Each genre's list for the region and the global one (the fallback, and the content pool)."""
    keys = []
    for g in genres:
        keys += [genre_key(g, region), genre_key(g)] if region != GLOBAL else [genre_key(g)]
    return keys


def own_or_global(lists: Mapping[str, RankedList], region_key: str, global_key: str) -> RankedList | None:
    """The region's own list, else the global one (``GET /v1/trending``, and :func:`regional`'s
    answer when there is nothing to top up)."""
    return lists.get(region_key) or lists.get(global_key)


def regional(lists: Mapping[str, RankedList], region_key: str, global_key: str) -> RankedList | None:
    """The region's list topped up from the global one, else the global one.

    A region's trending and genre lists count only that region's watches, so they start short
    (early in a window, in a small region) while the global list has plenty: a row of 5 titles
    with 80 to show is a defect a viewer sees. The region's own titles come first, in their order,
    then the global list's other titles, up to ``RANKED_LIST_LIMIT`` (each entry keeps the score
    of the list it came from). Made once per pair of list objects (``SharedReads`` hands every feed
    the same ones for a while), so the rows' views made from it are reused (``RowBuilder.listed``)."""
    own, everywhere = lists.get(region_key), lists.get(global_key)
    if own is None or everywhere is None or own is everywhere or len(own.items) >= RANKED_LIST_LIMIT:
        return own_or_global(lists, region_key, global_key)
    return _TOPPED_UP.get(region_key, (own, everywhere), topped_up, own, everywhere)


def topped_up(own: RankedList, everywhere: RankedList, n: int = RANKED_LIST_LIMIT) -> RankedList:
    """``own``'s entries, then ``everywhere``'s others, up to ``n``: ``own``'s key and times."""
    have = {s.video_id for s in own.items}
    more = [s for s in everywhere.items if s.video_id not in have][: max(0, n - len(own.items))]
    return RankedList(own.key, [*own.items, *more], own.updated_at, own.window_end) if more else own


#: region's list key -> it topped up from the global list, one slot per key (:func:`regional`).
_TOPPED_UP: Derived[RankedList] = Derived(10_000)


def releases_for(lists: Mapping[str, RankedList], region: str, n: int = RANKED_LIST_LIMIT) -> list[ScoredItem]:
    """New releases for a region: its own titles merged with those available everywhere (the
    pipeline keeps a region's list to the titles restricted to it). Merged once per pair of list
    objects (``SharedReads`` hands every feed the same ones for a while), so every feed of the
    region gets the same merged list object and ``RowBuilder.listed`` (:mod:`serving.rows`) can reuse
    its views."""
    found = tuple(lists[k].items for k in dict.fromkeys([new_releases_key(region), new_releases_key(GLOBAL)])
                  if k in lists)
    return _RELEASES.get((region, n), found, recommend.merge_releases, found, n)


#: (region, n) -> the merge of that region's lists, one slot per region, replaced when its lists are.
_RELEASES: Derived[list[ScoredItem]] = Derived(10_000)


def releases_row(region: str) -> str:
    return f"releases:{region}"


def genre_row(genre: str, region: str) -> str:
    return f"genre:{genre}:{region}"
