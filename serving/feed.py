"""Feed assembly: the store reads of one feed request, then rows composed by ``streamrec.recommend``.

Reads are batched and bounded (the architecture's "one round trip per kind of record"):

1. the user's state (its version is what the response cache is validated against);
2. co-watch neighbours of the ranking's seed titles, and the ranked lists (trending, new
   releases, genre rows) and the catalog entries of the user's recent titles (for their genres);
3. counts and vectors of every candidate title, and their catalog entries.

Catalog entries and ranked lists are the same for every user and go through
:class:`serving.shared_reads.SharedReads`, which holds them briefly in memory.

The maths (candidates, blend, filters, diversity, "more like this") is all in
:mod:`streamrec.recommend`; :mod:`serving.rows` composes the page's rows from what is read here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from serving.answers import ROW_TYPES
from serving.ranked_lists import (
    GLOBAL,
    genre_keys,
    genre_row,
    list_keys,
    regional,
    releases_for,
    releases_row,
)
from serving.shared_reads import Derived, SharedReads
from streamrec import recommend
from streamrec.events.model import CatalogItem
from streamrec.model import (
    HistoryEntry,
    RankedList,
    ScoredItem,
    UserState,
    genre_key,
    trending_key,
)
from streamrec.nearline import watched_since_refresh
from streamrec.recommend.learned import MODEL_KEY, RankerModel, model_from_list
from streamrec.recommend.ranking import excluded_titles
from streamrec.recommend.variants import ranking_config

GENRE_ROWS = 3  # genre rows per page: stated preferences first, then the history's genres
SIMILAR_NEIGHBOURS = 100  # co-watch neighbours read for "more like this"
CONTENT_POOL = 100  # titles per genre list offered to content similarity
#: Below this match score a pick is not worth a place on the page (scores mean the same for every
#: user, so one threshold fits all); a top-picks row with nothing above it is left out.
MIN_MATCH_SCORE = 0.05
#: How old (wall clock, from the refresh's due time) the nearline top picks may be and still be
#: served as they are: the trending window they were ranked with.
PICKS_MAX_AGE_S = 3600.0
#: A "because you watched" ranking is shared only once made this long after the viewer's watch of
#: its seed: by then the pipelines have written that watch's co-watch counts (lag ~1 s in the demo).
SIMILAR_SETTLE_MS = 10_000


class FeedStore(Protocol):
    """The async reads the feed needs (``streamrec.store.aio.AsyncStore`` provides them)."""

    @property
    def reads_on_loop(self) -> bool: ...
    async def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]: ...
    async def get_neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]: ...
    async def get_item_counts(self, video_ids: Sequence[str]) -> dict[str, int]: ...
    async def get_lists(self, keys: Sequence[str]) -> dict[str, RankedList]: ...
    async def get_items(self, video_ids: Sequence[str]) -> dict[str, CatalogItem]: ...
    async def get_item_vectors(self, video_ids: Sequence[str]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class FeedQuery:
    """One validated feed request."""

    user_id: str
    region: str
    limit: int
    rows: tuple[str, ...] = ROW_TYPES
    ids_only: bool = False
    max_maturity: str | None = None  # from the token: a kids profile's cap
    profile_name: str | None = None
    experiment: str | None = None  # the running experiment (streamrec.experiments) and the viewer's
    variant: str | None = None  # variant in it: which ranking the top picks use
    explain: bool = False  # each top pick says why it is there (the ranker's per-feature parts)

    @property
    def ranking(self) -> recommend.RankingConfig:
        return ranking_config(self.variant)

    @property
    def region_filter(self) -> str | None:
        return None if self.region == GLOBAL else self.region

    def cache_key(self) -> tuple[Any, ...]:
        return (self.user_id, self.region, self.limit, self.rows, self.ids_only, self.max_maturity, self.profile_name,
                self.experiment, self.variant, self.explain)


@dataclass(slots=True)
class FeedInputs:
    """Everything read from the store for one feed."""

    user: UserState
    lists: dict[str, RankedList] = field(default_factory=dict)
    ranking: recommend.RankingInputs = field(default_factory=recommend.RankingInputs)
    config: recommend.RankingConfig = recommend.DEFAULT_CONFIG  # the viewer's variant's ranking
    model: RankerModel | None = None  # the learned ranker's newest version (read when it ranks)
    #: The top picks are ranked for this request; False: the nearline refresh's ``user.top_picks``
    #: are served as they are (:func:`nearline_picks_served`), and the ranking's reads were skipped.
    rank_live: bool = True
    #: The "because you watched" ranking of the viewer's seed (:func:`similar_to`), when read or
    #: made with the inputs; None: made from ``ranking`` when the row is composed.
    similar: list[ScoredItem] | None = None
    #: Each list row's titles (:func:`row_titles`) by row name; a row missing here is worked out
    #: from ``ranking.items`` when composed.
    rows: dict[str, dict[str, CatalogItem]] = field(default_factory=dict)

    def item_sources(self) -> tuple[Mapping[str, CatalogItem], ...]:
        """Where the catalog entries of every title the page may show are (:func:`shown_titles`)."""
        return self.ranking.items, *self.rows.values()


def nearline_picks_current(user: UserState, now_ms: int, max_age_ms: int) -> bool:
    """Whether the nearline refresh's picks (``user.top_picks``) still rank what the feed would:
    there are some, no title was watched since the refresh was due (``top_picks_at``: a watch is in
    the next feed at once, ranked for the request), and they are at most ``max_age_ms`` old.

    What this lets through: a like, a rating of an unwatched title or new stated genres changes
    the picks with the refresh (5 s after the last change, at most 60 s after the first: the
    pipelines' ``settle_s``/``max_delay_s``), not at once; a dislike is filtered out at once."""
    if not user.top_picks or now_ms - user.top_picks_at > max_age_ms:
        return False
    return not watched_since_refresh(user)


def nearline_picks_served(user: UserState, query: FeedQuery, now_ms: int, max_age_ms: int) -> bool:
    """Whether this request serves the nearline picks instead of ranking: they are current, enough
    of them are not watched since, and the request needs nothing only the ranking gives (``explain``,
    a kids' maturity cap: capped titles would be dropped after ranking instead of replaced)."""
    if "top_picks" not in query.rows:
        return True  # no top-picks row: nothing to rank
    if query.explain or query.max_maturity is not None or not nearline_picks_current(user, now_ms, max_age_ms):
        return False
    hidden = excluded_titles(user)
    return sum(1 for s in user.top_picks if s.video_id not in hidden and s.score >= MIN_MATCH_SCORE) >= query.limit


async def together(store: FeedStore, *reads: Awaitable[Any]) -> list[Any]:
    """The reads' answers, in order: gathered (concurrent) when the store's reads wait on threads
    or the network; awaited one after the other when they run on the event loop
    (``AsyncStore.reads_on_loop``: the embedded store), where a gather only adds its Tasks and
    their scheduling (~20 µs for three, measured; an uncached feed makes two)."""
    if store.reads_on_loop:
        return [await read for read in reads]
    return list(await asyncio.gather(*reads))


async def read_feed_inputs(
    store: FeedStore, shared: SharedReads, user: UserState, query: FeedQuery, window: str,
    config: recommend.RankingConfig = recommend.DEFAULT_CONFIG, *, rank_live: bool = True,
) -> FeedInputs:
    """Rounds 2 and 3 of the module docstring (round 1, the user, is the caller's).

    ``rank_live=False`` (the nearline picks are served as they are, :func:`nearline_picks_served`):
    only what the other rows need is read: the neighbours and counts of the "because you watched"
    seed and the picks' catalog entries; no other seeds, candidates, vectors or model."""
    seed_entry = because_seed(user)
    byw = [seed_entry.video_id] if seed_entry else []
    similar_key: tuple[object, ...] | None = None
    similar = None
    if seed_entry:
        # "Because you watched", kept for every viewer of the seed; not one made before this viewer's
        # watch of it had time to reach the store (its co-watch counts), so a watch shows at once.
        similar_key = (seed_entry.video_id, 2 * query.limit, query.region_filter, query.max_maturity,
                       config.neighbours_per_seed)
        similar = shared.similar(similar_key, seed_entry.ts + SIMILAR_SETTLE_MS)
    # A seed watched moments ago: its co-watch is read afresh (not as held by SharedReads), as
    # its ranking would be: the pipelines are writing its new pairs right now.
    just_watched = byw if seed_entry and time.time() * 1000 - seed_entry.ts < SIMILAR_SETTLE_MS else []
    seeds = recommend.seed_titles(user, config) if rank_live else byw if similar is None else []
    recent = [h.video_id for h in user.history[:20]]
    first_keys = list_keys(query.region, window) + genre_keys(user.preferred_genres, query.region)
    if config.learned and rank_live:
        first_keys.append(MODEL_KEY)
    neighbours, lists, recent_items = await together(
        store,
        shared.neighbours(store, seeds, config.neighbours_per_seed, fresh=just_watched) if seeds else _empty(),
        shared.lists(store, first_keys),
        shared.items(store, recent + list(user.in_progress)),
    )
    genres = recommend.user_genres(user, recent_items, GENRE_ROWS)
    seed_item = recent_items.get(byw[0]) if byw else None
    seed_genres = seed_item.genres if seed_item and similar is None else ()  # its content pool
    more_keys = genre_keys(genres, query.region) + [genre_key(g) for g in seed_genres]
    lists |= await shared.lists(store, [k for k in dict.fromkeys(more_keys) if k not in lists])

    trending = regional(lists, trending_key(window, query.region), trending_key(window, GLOBAL))
    releases = releases_for(lists, query.region)
    genre_lists = {g: found.items for g in set(genres) | set(seed_genres)
                   if (found := regional(lists, genre_key(g, query.region), genre_key(g))) is not None}
    ranking = recommend.RankingInputs(
        neighbours=neighbours,
        trending=trending.items if trending else (),
        new_releases=releases,
        genre_lists=genre_lists,
        region=query.region_filter,
        max_maturity=query.max_maturity,
        items=recent_items,
    )
    rows = list_rows(query, trending, releases, genres, genre_lists)
    # The list rows' titles come from row_titles, shared by every feed; read only for a list object
    # not worked out yet (once per list per lists_ttl_s).
    shown = [s.video_id for name, ranked in rows if not _ROW_TITLES.holds(row_key(name, query), (ranked,))
             for s in ranked[:ROW_POOL]]
    if rank_live:
        candidates = recommend.candidate_titles(user, ranking, config)
        counted = list(dict.fromkeys([*seeds, *candidates]))
    else:
        candidates = []
        counted = [*byw, *(n for n, _ in neighbours.get(byw[0], ()))] if byw and similar is None else []
        shown += [s.video_id for s in user.top_picks]
    shown += [*byw, *(s.video_id for s in similar or ())]
    to_read = list(dict.fromkeys([*candidates, *counted, *shown, *user.in_progress]))
    metadata, vectors, counts = await together(
        store,
        shared.items(store, to_read),
        # Vectors only when a source scores with them (as the nearline refresh and the evaluation
        # decide): reading ~550 of them was a third of a ranked feed, for nothing, with the vector
        # weight at 0.
        store.get_item_vectors(candidates) if candidates and config.weights.get("vector", 0.0) > 0 else _empty(),
        shared.item_counts(store, counted, fresh=[*just_watched, *(n for s in just_watched
                                                                  for n, _ in neighbours.get(s, ()))])
        if counted else _empty(),
    )
    items = recent_items | metadata
    ranking = ranking.with_items(items=items, item_counts=counts, item_vectors=vectors)
    model = model_from_list(lists.get(MODEL_KEY)) if config.learned and rank_live else None
    if similar is None and similar_key is not None and byw[0] in items:
        try:  # most seeds have enough co-watch neighbours: their content pool is not read at all
            similar = similar_to(byw[0], ranking, query, _POOL_NOT_READ)
        except PoolWanted:
            pool = content_pool(genre_lists.get(g, ()) for g in seed_genres)
            items |= await shared.items(store, pool)
            ranking = ranking.with_items(items=items)
            similar = similar_to(byw[0], ranking, query, pool)
        shared.keep_similar(similar_key, similar)
    return FeedInputs(user=user, lists=lists, ranking=ranking, config=config, model=model, rank_live=rank_live,
                      similar=similar, rows={name: row_titles(name, ranked, items, query) for name, ranked in rows})


def list_rows(query: FeedQuery, trending: RankedList | None, releases: Sequence[ScoredItem], genres: Iterable[str],
              genre_lists: Mapping[str, Sequence[ScoredItem]]) -> list[tuple[str, Sequence[ScoredItem]]]:
    """(name, ranked list) of the page's list rows: trending, new releases, the genre rows."""
    rows: list[tuple[str, Sequence[ScoredItem]]] = [(trending.key, trending.items)] if trending else []
    if releases:
        rows.append((releases_row(query.region), releases))
    return rows + [(genre_row(g, query.region), genre_lists[g]) for g in genres if g in genre_lists]


def similar_to(seed: str, r: recommend.RankingInputs, query: FeedQuery,
               pool: Sequence[str] | None = None) -> list[ScoredItem]:
    """The "because you watched" ranking for ``seed``: its co-watch neighbours, then content
    similarity over its genres' lists (``pool``: by default their :func:`content_pool`); twice the
    row, room for the titles each viewer has seen. The same for every viewer of a region and
    maturity cap (``SharedReads`` keeps it a while)."""
    if pool is None:
        pool = content_pool(r.genre_lists.get(g, ()) for g in r.items[seed].genres)
    return recommend.similar_titles(
        seed, neighbours=r.neighbours.get(seed, ()), item_counts=r.item_counts, items=r.items,
        content_candidates=pool, k=2 * query.limit, region=query.region_filter, max_maturity=query.max_maturity)


class PoolWanted(Exception):
    """The ranking asked for the content pool: its catalog entries must be read first."""


class _PoolNotRead(Sequence[str]):
    """A content pool not read yet: ``similar_titles`` goes to its content pool only when the
    seed's co-watch neighbours leave the list short, and then this raises :class:`PoolWanted`;
    otherwise the ranking is exactly the one the read pool would give, for ~300 fewer titles read."""

    def __len__(self) -> int:
        raise PoolWanted

    def __getitem__(self, index: Any) -> Any:
        raise PoolWanted

    def __iter__(self) -> Iterator[str]:
        raise PoolWanted


_POOL_NOT_READ = _PoolNotRead()


def content_pool(genre_lists: Iterable[Sequence[ScoredItem]]) -> list[str]:
    """The titles "more like this" ranks by content similarity: the first ``CONTENT_POOL`` of
    each of the seed's genre lists, once each (the feed's "because you watched" and the title page)."""
    return list(dict.fromkeys(s.video_id for ranked in genre_lists for s in ranked[:CONTENT_POOL]))


def because_seed(user: UserState) -> HistoryEntry | None:
    """The "because you watched" seed: the newest history entry not disliked."""
    disliked = set(user.disliked)
    return next((h for h in user.history if h.video_id not in disliked), None)


async def _empty() -> dict[Any, Any]:
    return {}


# -- list rows' titles, worked out in the read stage ---------------------------------------


def title_filter(query: FeedQuery, excluded: Iterable[str] = ()) -> recommend.TitleFilter:
    """The title filter every answer for ``query`` passes (``streamrec.recommend.filters``)."""
    return recommend.TitleFilter(query.region_filter, query.max_maturity, frozenset(excluded))


#: Titles of a ranked list a list row may show: as deep as the ranking's list sources go
#: (``RankingConfig.source_limit``), so a viewer who has watched most of a list's top still gets a
#: full row.
ROW_POOL = recommend.DEFAULT_CONFIG.source_limit
#: (list name, region, maturity cap) -> the list's first ``ROW_POOL`` titles that pass the title
#: filter, with their catalog entries. A ranked list object is the same for every feed while
#: ``SharedReads`` holds it (``lists_ttl_s``), and so is whether a title passes the region and
#: maturity filters: worked out once per list object (its titles' entries read then, once) instead
#: of once per feed. One slot per list name, region and cap.
_ROW_TITLES: Derived[dict[str, CatalogItem]] = Derived(10_000)


def row_key(name: str, query: FeedQuery) -> tuple[str, str | None, str | None]:
    return name, query.region_filter, query.max_maturity


def row_titles(name: str, ranked: Sequence[ScoredItem], items: Mapping[str, CatalogItem],
               query: FeedQuery) -> dict[str, CatalogItem]:
    """video_id -> catalog entry of the titles among a list's first ``ROW_POOL`` that the query's
    title filter lets through (catalog-known, region, maturity cap; not the viewer's own
    exclusions), in list order; ``items`` must hold their entries when the list is new."""
    return _ROW_TITLES.get(row_key(name, query), (ranked,), _allowed_titles, ranked, items, query)


def _allowed_titles(ranked: Sequence[ScoredItem], items: Mapping[str, CatalogItem],
                    query: FeedQuery) -> dict[str, CatalogItem]:
    allowed = title_filter(query)
    return {s.video_id: items[s.video_id] for s in ranked[:ROW_POOL] if allowed.allows(s.video_id, items)}
