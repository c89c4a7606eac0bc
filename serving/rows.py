"""Composing a feed's rows from what :mod:`serving.feed` read (pure: no store, no I/O).

Which rows a page has, in which order, and how a title looks on it (catalog metadata and a
thumbnail URL); the views of the list rows' titles are made once per list object and shared by
every feed. Also the re-shaping of a stored feed for another request (degraded answers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from serving.feed import (
    GENRE_ROWS,
    MIN_MATCH_SCORE,
    FeedInputs,
    FeedQuery,
    because_seed,
    row_titles,
    similar_to,
    title_filter,
)
from serving.ranked_lists import GLOBAL, genre_row, regional, releases_row
from serving.shared_reads import Derived
from streamrec import recommend
from streamrec.events.model import CatalogItem
from streamrec.model import RankedList, ScoredItem, UserState, trending_key
from streamrec.recommend import learned


def shown_titles(feed: Mapping[str, Any], *sources: Mapping[str, CatalogItem]) -> dict[str, CatalogItem]:
    """The catalog entries of the titles on a page, from the first of ``sources`` that has each:
    what re-filtering it later needs."""
    shown: dict[str, CatalogItem] = {}
    for row in feed.get("rows", ()):
        for view in row["items"]:
            video_id = view["video_id"]
            if video_id not in shown:
                for source in sources:
                    item = source.get(video_id)
                    if item is not None:
                        shown[video_id] = item
                        break
    return shown


def item_view(item: CatalogItem | None, video_id: str, thumbnail_template: str, ids_only: bool) -> dict[str, Any]:
    """One title as the page shows it (catalog metadata and a thumbnail URL): a new dict, made
    from the one kept for this catalog entry (:data:`_VIEWS`)."""
    if ids_only:
        return {"video_id": video_id}
    return dict(_VIEWS.get((video_id, thumbnail_template), (item,), _new_view, item, video_id, thumbnail_template))


#: (video_id, thumbnail template) -> the view of its catalog entry: made once per catalog entry
#: object (``SharedReads`` keeps one per title until its TTL) instead of once per row per feed
#: (~150 per page). Bounded like the catalog cache.
_VIEWS: Derived[dict[str, Any]] = Derived(200_000)


def _new_view(item: CatalogItem | None, video_id: str, thumbnail_template: str) -> dict[str, Any]:
    view: dict[str, Any] = {"video_id": video_id,
                            "thumbnail": (item.thumbnail if item and item.thumbnail else
                                          thumbnail_template.format(video_id=video_id))}
    if item is not None:
        view.update(title=item.title, genres=list(item.genres), year=item.release_year,
                    type=item.content_type, maturity=item.maturity_rating)
    return view


class RowBuilder:
    """Filters and shapes titles for one feed: shared by every row of the page."""

    def __init__(self, inputs: FeedInputs, query: FeedQuery, thumbnail_template: str) -> None:
        self.user = inputs.user
        self.items = inputs.ranking.items
        self.query = query
        self.thumbnail_template = thumbnail_template
        self.watched = set(self.user.seen) | set(self.user.disliked) | set(self.user.in_progress)
        self.filter = title_filter(query, self.user.disliked)
        self.rows = inputs.rows

    def allowed(self, video_id: str, *, watched_ok: bool = False) -> bool:
        """The title filter (catalog-known, region, maturity, not disliked), and not watched
        unless ``watched_ok`` (continue watching)."""
        if not watched_ok and video_id in self.watched:
            return False
        return self.filter.allows(video_id, self.items)

    def view(self, video_id: str, **extra: Any) -> dict[str, Any]:
        view = item_view(self.items.get(video_id), video_id, self.thumbnail_template, self.query.ids_only)
        view.update(extra)
        return view

    def listed(self, name: str, ranked: Sequence[ScoredItem]) -> list[dict[str, Any]]:
        """The views of the first ``limit`` titles of the ranked list ``name`` (trending, new
        releases, a genre) that this viewer may see and has not watched (:func:`row_titles`)."""
        titles = self.rows.get(name)
        if titles is None:
            titles = row_titles(name, ranked, self.items, self.query)
        template, ids_only = self.thumbnail_template, self.query.ids_only
        shared_views = _ROW_VIEWS.get((name, template, ids_only), (titles,), _views_of, titles, template, ids_only)
        watched, limit = self.watched, self.query.limit
        views = []
        for video_id, view in shared_views:
            if video_id not in watched:
                views.append(view)
                if len(views) >= limit:
                    break
        return views


#: (list name, thumbnail template, ids only) -> the views of a row's titles (:func:`row_titles`),
#: made once per titles object and shared by every feed: never changed after they are made.
_ROW_VIEWS: Derived[list[tuple[str, dict[str, Any]]]] = Derived(10_000)


def _views_of(titles: Mapping[str, CatalogItem], template: str, ids_only: bool) -> list[tuple[str, dict[str, Any]]]:
    return [(video_id, item_view(item, video_id, template, ids_only)) for video_id, item in titles.items()]


def listed(ranked: Iterable[ScoredItem], allowed: Callable[[str], bool], view: Callable[[str], dict[str, Any]],
           limit: int) -> list[dict[str, Any]]:
    """The views of the first ``limit`` titles of a ranked list that ``allowed`` lets through."""
    views: list[dict[str, Any]] = []
    for s in ranked:  # lists hold up to 200 titles; a row needs `limit` of them
        if allowed(s.video_id):
            views.append(view(s.video_id))
            if len(views) >= limit:
                break
    return views


def continue_watching(b: RowBuilder) -> dict[str, Any] | None:
    progress = sorted(b.user.in_progress.values(), key=lambda p: (-p.updated_at, p.video_id))
    items = [b.view(p.video_id, progress_sec=round(p.position_sec), duration_sec=round(p.duration_sec))
             for p in progress if b.allowed(p.video_id, watched_ok=True)][: b.query.limit]
    name = b.query.profile_name or b.user.user_id
    return {"type": "continue_watching", "title": f"Continue Watching for {name}", "items": items}


def top_picks(b: RowBuilder, inputs: FeedInputs) -> dict[str, Any] | None:
    user = b.user
    # Without any personal signal the "picks" would only be trending again: leave the row out.
    if not (user.history or user.preferred_genres or user.top_picks or user.vector is not None):
        return None
    config, model = inputs.config, inputs.model
    candidates = None
    if not inputs.rank_live:  # the nearline refresh's ranking, current (nearline_picks_served)
        picks = user.top_picks
    elif model is not None:
        candidates = learned.candidate_features(user, inputs.ranking, user.updated_at or None, config)
        picks = learned.learned_top_picks(user, inputs.ranking, model, b.query.limit, config=config,
                                          candidates=candidates)
    else:
        picks = recommend.top_picks(user, inputs.ranking, k=b.query.limit, config=config)
    explain = explanations(user, inputs, candidates) if b.query.explain else {}
    shown = [s for s in picks if s.score >= MIN_MATCH_SCORE and b.allowed(s.video_id)][: b.query.limit]
    items = [b.view(s.video_id, match_score=round(s.score, 4), **explain.get(s.video_id, {})) for s in shown]
    return {"type": "top_picks", "title": "Top Picks for You", "items": items}


def explanations(user: UserState, inputs: FeedInputs, candidates: learned.Candidates | None) -> dict[str, dict[str, Any]]:
    """Per candidate, ``{"explain": {...}}``: which ranker placed it, the model's version, and each
    feature's (or, for the blend, each source's) part of its score."""
    out: dict[str, dict[str, Any]] = {}
    if candidates is not None and inputs.model is not None:
        model = inputs.model
        for video_id, row in zip(candidates.ids, candidates.matrix, strict=True):
            out[video_id] = {"explain": {"ranker": "learned", "model_version": model.version,
                                         "contributions": model.contributions(row)}}
        return out
    weights = inputs.config.weights
    for source, per_item in recommend.source_scores(user, inputs.ranking, inputs.config).items():
        for video_id, score in per_item.items():
            if weights.get(source, 0.0) > 0 and score:
                parts = out.setdefault(video_id, {"explain": {"ranker": "blend", "model_version": None,
                                                              "contributions": {}}})
                parts["explain"]["contributions"][source] = round(weights[source] * score, 6)
    return out


def because_you_watched(b: RowBuilder, inputs: FeedInputs) -> dict[str, Any] | None:
    entry = because_seed(b.user)
    seed = entry.video_id if entry else None
    if seed is None or seed not in b.items:
        return None
    similar = inputs.similar if inputs.similar is not None else similar_to(seed, inputs.ranking, b.query)
    items = [b.view(v) for v in [s.video_id for s in similar if b.allowed(s.video_id)][: b.query.limit]]
    return {"type": "because_you_watched", "title": f"Because You Watched {b.items[seed].title}",
            "seed_video_id": seed, "items": items}


def trending_now(b: RowBuilder, lists: Mapping[str, RankedList], window: str) -> dict[str, Any] | None:
    ranked = regional(lists, trending_key(window, b.query.region), trending_key(window, GLOBAL))
    return None if ranked is None else trending_row(b.query.region, b.listed(ranked.key, ranked.items))


def trending_row(region: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The "Trending Now" row of a feed, and of a degraded one (``serving.clients.TrendingSnapshot``)."""
    where = "" if region == GLOBAL else f" in {region}"
    return {"type": "trending_now", "title": f"Trending Now{where}", "items": items}


def new_releases(b: RowBuilder, inputs: FeedInputs) -> dict[str, Any] | None:
    ranked = inputs.ranking.new_releases  # the region's and the global list, merged once per request
    if not ranked:
        return None
    return {"type": "new_releases", "title": "New Releases",
            "items": b.listed(releases_row(b.query.region), ranked)}


def genre_rows(b: RowBuilder, inputs: FeedInputs) -> list[dict[str, Any]]:
    """Stated preferences first ("Because You Like ..."), then the history's genres ("Popular in ...")."""
    rows = []
    for genre in recommend.user_genres(b.user, b.items, GENRE_ROWS):
        ranked = inputs.ranking.genre_lists.get(genre)
        if ranked:
            title = f"Because You Like {genre}" if genre in b.user.preferred_genres else f"Popular in {genre}"
            rows.append({"type": "genre", "genre": genre, "title": title,
                         "items": b.listed(genre_row(genre, b.query.region), ranked)})
    return rows


def compose_feed(inputs: FeedInputs, query: FeedQuery, *, window: str, thumbnail_template: str,
                 now_s: float | None = None) -> dict[str, Any]:
    """The page: the rows asked for, in page order, each left out when it has nothing to show."""
    b = RowBuilder(inputs, query, thumbnail_template)
    wanted = set(query.rows)
    rows: list[dict[str, Any] | None] = []
    if "continue_watching" in wanted:
        rows.append(continue_watching(b))
    if "top_picks" in wanted:
        rows.append(top_picks(b, inputs))
    if "because_you_watched" in wanted:
        rows.append(because_you_watched(b, inputs))
    if "trending_now" in wanted:
        rows.append(trending_now(b, inputs.lists, window))
    if "new_releases" in wanted:
        rows.append(new_releases(b, inputs))
    if "genre" in wanted:
        rows.extend(genre_rows(b, inputs))
    return {
        "user_id": query.user_id,
        "region": query.region,
        "generated_at": int(time.time() if now_s is None else now_s),
        "degraded": False,
        "rows": [r for r in rows if r is not None and r["items"]],
        **experiment_labels(query),
    }


def experiment_labels(query: FeedQuery) -> dict[str, str]:
    """``experiment`` and ``variant`` of an answer, when the viewer is in an experiment."""
    if query.experiment is None or query.variant is None:
        return {}
    return {"experiment": query.experiment, "variant": query.variant}


def reshape(feed: Mapping[str, Any], query: FeedQuery, titles: Mapping[str, CatalogItem],
            excluded: Iterable[str] = ()) -> dict[str, Any]:
    """A stored feed cut to another request's rows, limit and fields (for degraded answers).

    Every title passes this request's title filter again (the stored feed may have been built for
    another token: no maturity cap, another profile name), judged on ``titles``, the catalog
    entries kept with the stored feed; a title without one is not shown. Rows left empty go.
    """
    allowed = title_filter(query, excluded)
    rows = []
    for row in feed.get("rows", ()):
        if row["type"] not in query.rows:
            continue
        items = [item for item in row["items"] if allowed.allows(item["video_id"], titles)][: query.limit]
        if query.ids_only:
            keep = ("video_id", "match_score", "progress_sec", "duration_sec")
            items = [{k: v for k, v in item.items() if k in keep} for item in items]
        if items:
            rows.append({**row, "items": items})
    unlabelled = {k: v for k, v in feed.items() if k not in ("experiment", "variant")}
    return {**unlabelled, "user_id": query.user_id, "rows": rows, **experiment_labels(query)}
