"""Title pages: "more like this" (over ``streamrec.recommend.similar_titles``) and trending lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from serving.feed import SIMILAR_NEIGHBOURS, FeedStore, content_pool, together
from serving.ranked_lists import GLOBAL, own_or_global
from serving.rows import item_view
from serving.shared_reads import SharedReads
from streamrec import recommend
from streamrec.model import RankedList, genre_key, trending_key


class UnknownTitle(LookupError):
    """Neither the catalog nor the co-watch table knows the title."""


@dataclass(frozen=True, slots=True)
class SimilarQuery:
    video_id: str
    limit: int
    region: str
    ids_only: bool = False
    max_maturity: str | None = None


async def similar(store: FeedStore, shared: SharedReads, query: SimilarQuery, thumbnail_template: str) -> dict[str, Any]:
    """Co-watch neighbours first, then content similarity over the title's genre rows."""
    video_id = query.video_id
    seed_items, neighbours = await together(
        store, shared.items(store, [video_id]), store.get_neighbours([video_id], SIMILAR_NEIGHBOURS))
    seed = seed_items.get(video_id)
    own = neighbours.get(video_id, [])
    if seed is None and not own:
        raise UnknownTitle(video_id)
    genre_lists = await shared.lists(store, [genre_key(g) for g in seed.genres]) if seed else {}
    pool = content_pool(ranked.items for ranked in genre_lists.values())
    candidates = list(dict.fromkeys([n for n, _ in own] + pool))
    items, counts = await together(
        store,
        shared.items(store, candidates),
        store.get_item_counts([video_id] + [n for n, _ in own]),
    )
    if seed is not None:
        items[video_id] = seed
    region = None if query.region == GLOBAL else query.region
    ranked = recommend.similar_titles(
        video_id, neighbours=own, item_counts=counts, items=items, content_candidates=pool, k=query.limit,
        region=region, max_maturity=query.max_maturity)
    return {
        "video_id": video_id,
        "title": seed.title if seed else None,
        "items": [{**item_view(items.get(s.video_id), s.video_id, thumbnail_template, query.ids_only),
                   "score": round(s.score, 4)} for s in ranked if s.video_id in items],
    }


def trending_document(ranked: RankedList | None, region: str, window: str, limit: int, items: dict[str, Any],
                      thumbnail_template: str, max_maturity: str | None, degraded: bool = False) -> dict[str, Any]:
    """The trending list of a region and window, with its window end and update time (Unix seconds)."""
    allowed = recommend.TitleFilter(None if region == GLOBAL else region, max_maturity)
    views = []
    for s in ranked.items if ranked else ():
        if not allowed.allows(s.video_id, items):
            continue
        views.append({**item_view(items[s.video_id], s.video_id, thumbnail_template, False), "score": s.score})
        if len(views) >= limit:
            break
    return {
        "region": region,
        "window": window,
        "list_region": ranked.key.rsplit(":", 1)[-1] if ranked else None,
        "window_end": ranked.window_end / 1000 if ranked and ranked.window_end is not None else None,
        "updated_at": ranked.updated_at / 1000 if ranked else None,
        "degraded": degraded,
        "items": views,
    }


async def trending(store: FeedStore, shared: SharedReads, region: str, window: str) -> tuple[RankedList | None, dict[str, Any]]:
    """The region's list (the global one when the region has none) and its titles' metadata."""
    found = await shared.lists(store, [trending_key(window, region), trending_key(window, GLOBAL)])
    ranked = own_or_global(found, trending_key(window, region), trending_key(window, GLOBAL))
    ids = [s.video_id for s in ranked.items] if ranked else []
    return ranked, await shared.items(store, ids)
