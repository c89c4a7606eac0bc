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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from streamrec.events.model import CatalogItem
from streamrec.model import ScoredItem
from streamrec.recommend.filters import (
    MATURITY_ORDER,
    available_in,
    maturity_allowed,
    title_allowed,
)

__all__ = [
    "MATURITY_ORDER",
    "available_in",
    "content_scorer",
    "content_scores",
    "content_similarity",
    "cowatch_similarity",
    "genre_mask",
    "genre_shares",
    "maturity_allowed",
    "similar_titles",
]

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


def content_scores(a: CatalogItem, pool: Sequence[CatalogItem]) -> list[float]:
    """``[content_similarity(a, b) for b in pool]`` as arrays: the pool's metadata is laid out once
    (and kept while the same catalog entries are asked for again: a trending list is the pool
    of every viewer for an hour), then each part is one elementwise step. The same operations on
    the same floats in the same order (the year part's ``exp`` from a table made with
    ``math.exp``), so the same scores as :func:`content_scorer`."""
    columns = _pool_columns(pool)
    if columns is None or not (a.release_year is None or (isinstance(a.release_year, int) and abs(a.release_year) < _YEAR_LIMIT)):
        return list(map(content_scorer(a), pool))
    genres_a = _genre_set(a.genres)
    mask_a = genre_mask(a.genres)
    if mask_a >= 1 << 64:  # over 64 genres: no masks
        return list(map(content_scorer(a), pool))
    common = np.bitwise_count(columns.masks & mask_a).astype(np.int64)
    union = len(genres_a) + columns.sizes - common
    value = CONTENT_WEIGHTS["genres"] * np.divide(common, union, out=np.zeros(len(pool)), where=union > 0)
    if a.release_year is not None and columns.dated.any():
        gaps = np.where(columns.dated, np.abs(columns.years - a.release_year), 0)
        value += np.where(columns.dated, CONTENT_WEIGHTS["year"] * _year_decay(int(gaps.max()))[gaps], 0.0)
    value += np.where(columns.types == a.content_type, CONTENT_WEIGHTS["type"], 0.0)
    if a.language is not None:
        value += np.where(columns.languages == a.language, CONTENT_WEIGHTS["language"], 0.0)
    return value.tolist()


def genre_shares(wanted: Collection[str], genre_tuples: Sequence[tuple[str, ...]]) -> np.ndarray:
    """Per title, ``len(set(wanted) & set(genres)) / len(genres)`` (0.0 without genres): one bit
    mask per genre combination (kept), counted and divided elementwise, the same floats."""
    n = len(genre_tuples)
    wanted_set = frozenset(wanted)
    try:
        masks = np.fromiter(map(_TUPLE_MASKS.__getitem__, genre_tuples), np.uint64, n)
        common = np.bitwise_count(masks & np.uint64(_genre_mask(wanted_set)))
    except OverflowError:  # over 64 genres: no masks
        overlap = wanted_set.intersection
        return np.array([len(overlap(g)) / len(g) if g else 0.0 for g in genre_tuples], dtype=np.float64)
    sizes = np.fromiter(map(len, genre_tuples), np.int64, n)  # the tuple's length, repeats included
    return np.divide(common, sizes, out=np.zeros(n), where=sizes > 0)


class _TupleMasks(dict[tuple[str, ...], int]):
    """Genre tuple -> its genres' bit mask, made on first use."""

    def __missing__(self, genres: tuple[str, ...]) -> int:
        if len(self) > 100_000:  # genre combinations are few; this only bounds abuse
            self.clear()
        mask = self[genres] = _genre_mask(_genre_set(genres))
        return mask


_TUPLE_MASKS = _TupleMasks()


def genre_mask(genres: tuple[str, ...]) -> int:
    """A genre tuple as one bit mask, a bit per genre (kept per tuple; one registry of bits for
    content similarity, genre shares and the diversity re-rank)."""
    return _TUPLE_MASKS[genres]


@dataclass(frozen=True, slots=True)
class _PoolColumns:
    items: list[CatalogItem]  # held, so the ids of the cache key are not reused while it is kept
    masks: np.ndarray  # genre bit masks (uint64)
    sizes: np.ndarray  # distinct genres per title
    years: np.ndarray  # release years (0 where unknown)
    dated: np.ndarray  # whether the year is known
    types: np.ndarray  # content types (objects, compared with ==)
    languages: np.ndarray


_POOLS: dict[tuple[int, ...], _PoolColumns] = {}
_SIGHTED: dict[tuple[int, ...], list[CatalogItem]] = {}  # pools seen once, not laid out yet
_GENRE_BITS: dict[str, int] = {}
_YEAR_DECAY = np.zeros(0)
_YEAR_LIMIT = 100_000  # years beyond this are left to the scalar path (no table that long)


def _pool_columns(pool: Sequence[CatalogItem]) -> _PoolColumns | None:
    """The pool's columns, None when they cannot be arrays (over 64 genres, a year not an int) or
    the pool is new (laid out from its second request on: a viewer's own genre rows may never
    come again)."""
    key = tuple(map(id, pool))
    held = _POOLS.get(key)
    if held is not None:
        return held
    if _SIGHTED.pop(key, None) is None:  # a pool seen once is scored title by title: laying it out costs more
        if len(_SIGHTED) >= 1024:
            _SIGHTED.clear()
        _SIGHTED[key] = list(pool)  # held, so the ids of the key stay these entries'
        return None
    items = list(pool)
    genre_sets = [_GENRE_SETS.get(b.genres) or _genre_set(b.genres) for b in items]
    years = [b.release_year for b in items]
    if not all(y is None or (isinstance(y, int) and abs(y) < _YEAR_LIMIT) for y in years):
        return None
    masks = [genre_mask(b.genres) for b in items]
    if max(masks, default=0) >= 1 << 64:
        return None
    dated = np.array([y is not None for y in years], dtype=bool)
    held = _PoolColumns(
        items, np.array(masks, dtype=np.uint64), np.array(list(map(len, genre_sets)), dtype=np.int64),
        np.array([y or 0 for y in years], dtype=np.int64), dated,
        np.array([b.content_type for b in items], dtype=object), np.array([b.language for b in items], dtype=object))
    if len(_POOLS) >= 256:  # pools are few at a time (trending per region, new releases, genre rows)
        _POOLS.clear()
    _POOLS[key] = held
    return held


def _genre_mask(genres: frozenset[str]) -> int:
    mask = 0
    for genre in genres:
        bit = _GENRE_BITS.get(genre)
        if bit is None:
            bit = _GENRE_BITS[genre] = 1 << len(_GENRE_BITS)
        mask |= bit
    return mask


def _year_decay(gap: int) -> np.ndarray:
    """``math.exp(-g / YEAR_SCALE)`` for every gap ``g`` up to at least ``gap`` (content_scorer's floats)."""
    global _YEAR_DECAY
    if len(_YEAR_DECAY) <= gap:
        _YEAR_DECAY = np.array([math.exp(-g / YEAR_SCALE) for g in range(max(gap + 1, 2 * len(_YEAR_DECAY), 128))])
    return _YEAR_DECAY


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
