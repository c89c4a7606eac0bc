"""Item-to-item similarity: co-watch (read at request time) and content (for cold titles).

Co-watch counts are stored raw and directed (``(item, neighbour) -> count``, see
:mod:`streamrec.recommend.state`), so increments stay commutative and cheap; similarity is computed
when read, by normalising the pair count by the two items' own watch counts::

    cowatch_similarity = pair / (count(item) ** alpha * count(neighbour) ** beta)

``alpha = beta = 0.5`` is the cosine of the two items' binary watcher vectors (for symmetric
counts). Content similarity compares catalog metadata only, so a title nobody has watched yet can
still be recommended. Both are in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from streamrec.events.model import CatalogItem
from streamrec.model import ScoredItem
from streamrec.recommend.filters import (
    MATURITY_ORDER,
    available_in,
    maturity_allowed,
    title_allowed,
)

__all__ = ["MATURITY_ORDER", "available_in", "content_scorer", "content_similarity", "cowatch_similarity",
           "maturity_allowed", "similar_titles"]

#: Weights of the content-similarity parts; they sum to 1 so the result is in [0, 1].
CONTENT_WEIGHTS = {"genres": 0.6, "year": 0.2, "type": 0.1, "language": 0.1}
YEAR_SCALE = 10.0  # years apart at which the year part has fallen to 1/e

def cowatch_similarity(pair_count: float, item_count: float, neighbour_count: float,
                       alpha: float = 0.5, beta: float = 0.5) -> float:
    """Pair count normalised by both items' counts, clamped to [0, 1].

    Counts below 1 are raised to 1 (a pair was counted before its items' counts arrived in the
    store, which the batched writes allow).
    """
    if pair_count <= 0:
        return 0.0
    denominator = max(item_count, 1.0) ** alpha * max(neighbour_count, 1.0) ** beta
    return min(1.0, pair_count / denominator)


def content_similarity(a: CatalogItem, b: CatalogItem) -> float:
    """Genres (Jaccard), release year (exponential in the gap), content type and language."""
    genres_a, genres_b = set(a.genres), set(b.genres)
    union = genres_a | genres_b
    score = CONTENT_WEIGHTS["genres"] * (len(genres_a & genres_b) / len(union) if union else 0.0)
    if a.release_year is not None and b.release_year is not None:
        score += CONTENT_WEIGHTS["year"] * math.exp(-abs(a.release_year - b.release_year) / YEAR_SCALE)
    if a.content_type == b.content_type:
        score += CONTENT_WEIGHTS["type"]
    if a.language is not None and a.language == b.language:
        score += CONTENT_WEIGHTS["language"]
    return score


def content_scorer(a: CatalogItem) -> Callable[[CatalogItem], float]:
    """``content_similarity(a, b)`` for many ``b``: ``a``'s parts worked out once and each genre
    tuple's set made once per process, the same arithmetic (so the same floats). The feed scores
    ~400 candidates against one title per ranking; this is ~2x cheaper per candidate."""
    genres_a = _genre_set(a.genres)
    size_a = len(genres_a)
    year_a, type_a, language_a = a.release_year, a.content_type, a.language
    w_genres, w_year, w_type, w_language = (CONTENT_WEIGHTS[k] for k in ("genres", "year", "type", "language"))
    exp = math.exp

    def score(b: CatalogItem) -> float:
        genres_b = _GENRE_SETS.get(b.genres) or _genre_set(b.genres)
        common = len(genres_a & genres_b)
        union = size_a + len(genres_b) - common
        value = w_genres * (common / union if union else 0.0)
        if year_a is not None and b.release_year is not None:
            value += w_year * exp(-abs(year_a - b.release_year) / YEAR_SCALE)
        if type_a == b.content_type:
            value += w_type
        if language_a is not None and language_a == b.language:
            value += w_language
        return value

    return score


_GENRE_SETS: dict[tuple[str, ...], frozenset[str]] = {}


def _genre_set(genres: tuple[str, ...]) -> frozenset[str]:
    held = _GENRE_SETS.get(genres)
    if held is None:
        if len(_GENRE_SETS) > 100_000:  # genre combinations are few; this only bounds abuse
            _GENRE_SETS.clear()
        held = _GENRE_SETS[genres] = frozenset(genres)
    return held


def similar_titles(
    video_id: str,
    *,
    neighbours: Sequence[tuple[str, int]],
    item_counts: Mapping[str, int],
    items: Mapping[str, CatalogItem],
    content_candidates: Sequence[str] = (),
    k: int = 10,
    min_cowatch: int = 3,
    region: str | None = None,
    max_maturity: str | None = None,
) -> list[ScoredItem]:
    """"More like this" for one title.

    ``neighbours`` are the title's stored co-watch neighbours (``Store.get_neighbours``);
    ``item_counts`` must hold the counts of the title and of those neighbours; ``items`` the
    catalog entries of the title and of every candidate (for filters and content similarity).
    Neighbours co-watched at least ``min_cowatch`` times rank first by co-watch similarity; the
    rest of the list is filled from ``content_candidates`` (and weakly co-watched neighbours) by
    content similarity, scaled below the co-watch part, so a cold title still gets a list.
    The title itself and what the title filter refuses (unknown to the catalog, unavailable,
    too mature: :mod:`streamrec.recommend.filters`) are left out. Ties by ``video_id``.
    """
    if k < 0:
        raise ValueError(f"k: must be >= 0, got {k}")
    own = item_counts.get(video_id, 0)
    seed = items.get(video_id)

    def allowed(candidate: str) -> bool:
        return candidate != video_id and title_allowed(items.get(candidate), region, max_maturity)

    scores: dict[str, float] = {}
    for neighbour, count in neighbours:
        if count >= min_cowatch and allowed(neighbour):
            # co-watch scores live in [1, 2), content scores in [0, 1): co-watch evidence wins.
            scores[neighbour] = 1.0 + 0.999 * cowatch_similarity(count, own, item_counts.get(neighbour, 0))
    if seed is not None and len(scores) < k:
        pool = list(content_candidates) + [n for n, c in neighbours if c < min_cowatch]
        content = content_scorer(seed)
        for candidate in pool:
            if candidate in scores or not allowed(candidate) or candidate not in items:
                continue
            scores[candidate] = 0.999 * content(items[candidate])
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
    # Report similarities in [0, 1] whichever part they came from.
    return [ScoredItem(v, s - 1.0 if s >= 1.0 else s) for v, s in ranked]
