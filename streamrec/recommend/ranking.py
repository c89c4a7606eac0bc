"""Top picks: candidates from several bounded sources, one blended score, filters, diversity.

The single implementation behind the feed's "Top Picks" row, the pipeline's nearline top-picks
refresh and the evaluation replay. Pure and deterministic (ties by ``video_id``).

How a caller uses it (two batched store reads, as the feed path requires)::

    user = store.get_user(user_id)
    seeds = seed_titles(user)                                    # recent history to expand
    inputs = RankingInputs(neighbours=store.get_neighbours(seeds, config.neighbours_per_seed),
                           trending=..., genre_lists=..., region=..., max_maturity=...)
    ids = candidate_titles(user, inputs)                         # everything the sources name
    inputs = inputs.with_items(items=store.get_items(ids), item_counts=store.get_item_counts(ids + seeds),
                               item_vectors=store.get_item_vectors(ids))
    picks = top_picks(user, inputs, k=10)

Sources (each bounded, each scored in [0, 1]):

- ``cowatch``: neighbours of the ``seeds`` newest history titles, each seed weighted by recency
  (``0.5 ** (position / recency_half_life)``) and by its history weight, similarity by
  :func:`~streamrec.recommend.similarity.cowatch_similarity` on the *directed* count
  ``seed -> candidate`` (which carries the "watched next" bonus), averaged over the seeds' weights.
- ``vector``: cosine of the user vector with the item vectors of the other sources' candidates
  (clipped at 0): it re-scores what the cheap sources found rather than scanning the catalog.
- ``top_picks``: the user's precomputed list (nearline refresh), by its stored scores.
- ``trending``: the region's trending list, by rank.
- ``content``: content similarity to the newest history title, over trending, new releases and
  the genre rows of the user's genres (cold titles surface here).
- ``preferences``: genre overlap with the stated preferences (onboarding), over the same pool.

Blend: ``raw = sum(weight[s] * score[s]) + multi_source_bonus * (sources - 1)``, and
``match_score = 1 - exp(-raw / match_scale)``: a fixed monotone map, so the same evidence gives the
same score for every user. Then filters (seen/completed, disliked, in continue watching, not
available in the region, above the profile's maturity) and an MMR re-rank over genres.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import chain, count, repeat

import numpy as np

from streamrec.events.model import CatalogItem
from streamrec.model import ScoredItem, UserState
from streamrec.recommend.filters import title_allowed
from streamrec.recommend.similarity import content_scores, genre_mask
from streamrec.recommend.vectors import vector_scores

_FIRST, _SECOND = operator.itemgetter(0), operator.itemgetter(1)
_VIDEO_ID = operator.attrgetter("video_id")

SOURCES = ("cowatch", "vector", "top_picks", "trending", "content", "preferences")


@dataclass(frozen=True, slots=True)
class RankingConfig:
    """Knobs of candidate generation and blending (defaults: the evaluated ones)."""

    seeds: int = 10  # newest history titles whose co-watch neighbours are read
    neighbours_per_seed: int = 50
    recency_half_life: float = 3.0  # in history positions
    alpha: float = 0.5  # co-watch normalisation exponent of the seed's count
    beta: float = 0.3  # ... of the candidate's count (< alpha: popular next titles are likelier)
    weights: Mapping[str, float] = field(default_factory=lambda: {
        # vector: off by default; in the replay it lowered HR@10 (0.180 vs 0.185 over the first 15k
        # events of ml-latest-small) and cost time. The pipelines still maintain the vectors.
        "cowatch": 1.0, "vector": 0.0, "top_picks": 0.3, "trending": 0.05, "content": 0.1, "preferences": 0.3})
    multi_source_bonus: float = 0.02
    source_limit: int = 100  # candidates taken from each list source
    pool: int = 40  # best candidates the diversity re-rank chooses from
    mmr_lambda: float = 0.97  # 1.0: pure relevance; lower: more genre diversity (0.9 cost HR@10)
    match_scale: float = 0.3
    #: Rank with the learned model (``streamrec.recommend.learned``) instead of these weights;
    #: the weights above are then the model's first version and the features' sources.
    learned: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(SOURCES)
        if unknown:
            raise ValueError(f"weights: unknown sources {sorted(unknown)}, expected some of {SOURCES}")
        if self.seeds < 0 or self.neighbours_per_seed < 0 or self.pool < 1:
            raise ValueError("seeds, neighbours_per_seed: must be >= 0; pool: must be >= 1")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda: must be in [0, 1], got {self.mmr_lambda}")
        if self.recency_half_life <= 0 or self.match_scale <= 0:
            raise ValueError("recency_half_life, match_scale: must be > 0")


@dataclass(frozen=True, slots=True)
class RankingInputs:
    """What the caller read from the store for one request (absent entries mean "unknown")."""

    neighbours: Mapping[str, Sequence[tuple[str, int]]] = field(default_factory=dict)  # seed -> top-K
    item_counts: Mapping[str, int] = field(default_factory=dict)  # seeds and candidates
    items: Mapping[str, CatalogItem] = field(default_factory=dict)  # candidates (and seeds, for content)
    item_vectors: Mapping[str, np.ndarray] = field(default_factory=dict)
    trending: Sequence[ScoredItem] = ()  # the user's region, best first
    new_releases: Sequence[ScoredItem] = ()
    genre_lists: Mapping[str, Sequence[ScoredItem]] = field(default_factory=dict)  # genre -> list
    region: str | None = None
    max_maturity: str | None = None  # the profile's cap (kids: "PG"); None: no cap

    def with_items(self, **changes: object) -> RankingInputs:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


DEFAULT_CONFIG = RankingConfig()


def seed_titles(user: UserState, config: RankingConfig = DEFAULT_CONFIG) -> list[str]:
    """The history titles whose co-watch neighbours the ranking reads (newest first)."""
    return [h.video_id for h in user.history[: config.seeds]]


def user_genres(user: UserState, items: Mapping[str, CatalogItem], limit: int = 3) -> list[str]:
    """Stated preferences first, then the most frequent genres of the recent history."""
    counts: dict[str, float] = {}
    for h in user.history[:20]:
        item = items.get(h.video_id)
        for genre in item.genres if item else ():
            counts[genre] = counts.get(genre, 0.0) + h.weight
    ranked = sorted(counts, key=lambda g: (-counts[g], g))
    return list(dict.fromkeys(list(user.preferred_genres) + ranked))[:limit]


def _list_pool(user: UserState, inputs: RankingInputs, config: RankingConfig) -> list[str]:
    pool = [s.video_id for s in inputs.trending[: config.source_limit]]
    pool += [s.video_id for s in inputs.new_releases[: config.source_limit]]
    for genre in user_genres(user, inputs.items) if inputs.genre_lists else ():
        pool += [s.video_id for s in inputs.genre_lists.get(genre, ())[: config.source_limit]]
    return list(dict.fromkeys(pool))


def candidate_titles(user: UserState, inputs: RankingInputs, config: RankingConfig = DEFAULT_CONFIG) -> list[str]:
    """Every title some source would consider, for one batched read of metadata/counts/vectors."""
    ids: list[str] = []
    for seed in seed_titles(user, config):
        ids += [n for n, _ in inputs.neighbours.get(seed, ())[: config.neighbours_per_seed]]
    ids += [s.video_id for s in user.top_picks]
    ids += _list_pool(user, inputs, config)
    return list(dict.fromkeys(ids))


def _cowatch(user: UserState, inputs: RankingInputs, config: RankingConfig) -> dict[str, float] | None:
    """The co-watch source: per seed (the newest ``seeds`` history titles), weight
    ``w = history weight * 0.5 ** (position / recency_half_life)``; per neighbour of a seed,
    ``min(w, w / seed_count ** alpha * pair_count / neighbour_count ** beta)``, summed over the
    seeds in their order and divided by the seeds' total weight (None when that is 0).

    Array form of the per-neighbour loop (tests/recommend/test_fast_paths.py keeps the loop as
    the oracle): the same operations on the same floats in the same order, so the same scores.
    Counts below 1 are raised to 1."""
    counts = inputs.item_counts
    k, half_life, alpha = config.neighbours_per_seed, config.recency_half_life, config.alpha
    total = 0.0
    caps: list[float] = []  # per seed, its weight w
    seed_weights: list[float] = []  # ... and w / seed_count ** alpha
    rows: list[Sequence[tuple[str, int]]] = []
    for position, entry in enumerate(user.history[: config.seeds]):
        w = entry.weight * 0.5 ** (position / half_life)
        total += w
        row = inputs.neighbours.get(entry.video_id, ())[:k]
        if row:
            caps.append(w)
            seed_weights.append(w / max(counts.get(entry.video_id, 0), 1) ** alpha)
            rows.append(row)
    if not total > 0:
        return None
    if not rows:
        return {}
    sizes = list(map(len, rows))
    pairs = list(chain.from_iterable(rows))
    m = len(pairs)
    # Each pair -> where its neighbour was first named (one C pass); the candidates (the keys) in
    # the order they are first named, as the loop's dict had them.
    first: dict[str, int] = {}
    at = np.fromiter(map(first.setdefault, map(_FIRST, pairs), count()), np.intp, m)
    ids, firsts = list(first), list(first.values())
    # neighbour_count ** beta once per candidate, with Python's int ** float (as the loop did)
    norms = np.empty(m)
    norms[firsts] = list(map(pow, map(max, map(counts.get, ids, repeat(0)), repeat(1)), repeat(config.beta)))
    pair_counts = np.fromiter(map(_SECOND, pairs), np.float64, m)
    contribution = np.repeat(seed_weights, sizes) * pair_counts / norms[at]
    cap = np.repeat(caps, sizes)
    # bincount adds each pair's part in input order (seed order), from 0.0, as the loop did
    summed = np.bincount(at, weights=np.where(contribution < cap, contribution, cap), minlength=m)[firsts]
    return dict(zip(ids, (summed / total).tolist()))


def source_scores(user: UserState, inputs: RankingInputs,
                  config: RankingConfig = DEFAULT_CONFIG) -> dict[str, dict[str, float]]:
    """Per source, candidate -> score in [0, 1] (before filters): the explainable part."""
    weights = config.weights
    out: dict[str, dict[str, float]] = {}
    if weights.get("cowatch", 0.0) > 0 and user.history:
        cowatch_scores = _cowatch(user, inputs, config)
        if cowatch_scores is not None:
            out["cowatch"] = cowatch_scores
    if weights.get("vector", 0.0) > 0 and user.vector is not None and inputs.item_vectors:
        # Scored over the other sources' candidates (what the feed reads vectors for), so a
        # caller may pass a larger table than it needs.
        vectors = {v: inputs.item_vectors[v] for v in candidate_titles(user, inputs, config)
                   if v in inputs.item_vectors}
        out["vector"] = {v: c for v, c in vector_scores(user.vector, vectors).items() if c > 0}
    if weights.get("top_picks", 0.0) > 0 and user.top_picks:
        out["top_picks"] = {s.video_id: min(1.0, max(0.0, s.score)) for s in user.top_picks}
    if weights.get("trending", 0.0) > 0 and inputs.trending:
        n = min(len(inputs.trending), config.source_limit)
        out["trending"] = {s.video_id: 1.0 - i / n for i, s in enumerate(inputs.trending[:n])}
    pool = _list_pool(user, inputs, config)
    last = inputs.items.get(user.history[0].video_id) if user.history else None
    if weights.get("content", 0.0) > 0 and last is not None:
        known = list(filter(inputs.items.__contains__, pool))
        out["content"] = dict(zip(known, content_scores(last, list(map(inputs.items.__getitem__, known)))))
    if weights.get("preferences", 0.0) > 0 and user.preferred_genres:
        wanted = set(user.preferred_genres)
        out["preferences"] = {v: len(wanted & set(inputs.items[v].genres)) / len(wanted)
                              for v in pool if v in inputs.items and wanted & set(inputs.items[v].genres)}
    return out


def raw_blend(scores: Mapping[str, Mapping[str, float]], config: RankingConfig = DEFAULT_CONFIG) -> dict[str, float]:
    """Candidate -> ``sum(weight * score) + multi_source_bonus * (sources - 1)`` (unbounded)."""
    raw: dict[str, float] = {}
    bonus = config.multi_source_bonus
    for source, per_item in scores.items():
        weight = config.weights.get(source, 0.0)
        if weight <= 0:
            continue
        get = raw.get
        for video_id, score in per_item.items():
            current = get(video_id)
            raw[video_id] = weight * score if current is None else current + weight * score + bonus
    return raw


def match_score(raw: float, config: RankingConfig = DEFAULT_CONFIG) -> float:
    """The fixed monotone map from blended evidence to a match score in [0, 1)."""
    return 1.0 - math.exp(-max(raw, 0.0) / config.match_scale)


def blend(scores: Mapping[str, Mapping[str, float]], config: RankingConfig = DEFAULT_CONFIG) -> dict[str, float]:
    """Candidate -> match score in [0, 1] (see the module docstring for the formula)."""
    return {v: match_score(r, config) for v, r in raw_blend(scores, config).items()}


def excluded_titles(user: UserState) -> set[str]:
    """Titles the row never shows the user: watched, disliked, in continue watching."""
    return set(user.seen).union(user.disliked, user.in_progress, map(_VIDEO_ID, user.history))


def _item_genre_mask(item: CatalogItem | None) -> int:
    """The title's genres as one bit mask (``similarity.genre_mask``'s bits), 0 when unknown."""
    return genre_mask(item.genres) if item is not None else 0


def diversify_reference(ranked: Sequence[ScoredItem], items: Mapping[str, CatalogItem], k: int,
                        mmr_lambda: float) -> list[ScoredItem]:
    """The rule :func:`diversify` computes (the penalties worked out per pick, readable).

    Maximal marginal relevance over genres: pick, one at a time, the candidate maximising
    ``lambda * score / best_score - (1 - lambda) * max genre-Jaccard with those already picked``
    (relevance relative to the best candidate, so the trade-off does not depend on how large the
    user's scores happen to be).
    Items keep their own scores; equal values go to the higher score, then the smaller id."""
    if mmr_lambda >= 1.0 or k <= 1:
        return sorted(ranked, key=lambda s: (-s.score, s.video_id))[:k]
    remaining = sorted(ranked, key=lambda s: (-s.score, s.video_id))
    masks = [_item_genre_mask(items.get(s.video_id)) for s in remaining]
    penalty = [0.0] * len(remaining)
    chosen: list[ScoredItem] = []
    keep = 1.0 - mmr_lambda
    top = remaining[0].score if remaining and remaining[0].score > 0 else 1.0
    relevance = mmr_lambda / top
    while remaining and len(chosen) < k:
        best_index, best_value = 0, -math.inf
        for index, s in enumerate(remaining):  # strict '>' keeps the first of equals: higher score, smaller id
            gain = relevance * s.score
            if gain <= best_value and relevance >= 0:
                # Scores only fall from here on and penalties are >= 0: no later candidate can win
                # (nor tie and come first). Same pick as scanning them all, ~4x fewer steps.
                break
            value = gain - keep * penalty[index]
            if value > best_value:
                best_index, best_value = index, value
        chosen.append(remaining.pop(best_index))
        picked = masks.pop(best_index)
        penalty.pop(best_index)
        if picked:
            for index, mask in enumerate(masks):
                union = (mask | picked).bit_count()
                if union:
                    overlap = (mask & picked).bit_count() / union
                    penalty[index] = max(penalty[index], overlap)
    return chosen


def diversify(ranked: Sequence[ScoredItem], items: Mapping[str, CatalogItem], k: int,
              mmr_lambda: float) -> list[ScoredItem]:
    """:func:`diversify_reference` (maximal marginal relevance over genres) with its penalties
    brought up to date lazily: a candidate's overlap with the picks is worked out only when the
    scan reaches it (the scan stops early, so most never are), and once per genre combination
    (titles with the same genres have the same penalty). A penalty is the max of the same
    overlaps, so the picks are the reference's."""
    if mmr_lambda >= 1.0 or k <= 1:
        return sorted(ranked, key=lambda s: (-s.score, s.video_id))[:k]
    remaining = sorted(ranked, key=lambda s: (-s.score, s.video_id))
    masks = [_item_genre_mask(items.get(s.video_id)) for s in remaining]
    scores = [s.score for s in remaining]
    top = scores[0] if scores and scores[0] > 0 else 1.0
    relevance = mmr_lambda / top
    gains = [relevance * score for score in scores]
    stop_early = relevance >= 0
    keep = 1.0 - mmr_lambda
    penalty = dict.fromkeys(masks, 0.0)  # per genre combination
    counted = dict.fromkeys(masks, 0)  # how many of the picks' masks each penalty has seen
    picked_masks: list[int] = []
    order = list(range(len(remaining)))  # the candidates not picked yet, best first
    chosen: list[ScoredItem] = []
    while order and len(chosen) < k:
        best_position, best_value = 0, -math.inf
        picks = len(picked_masks)
        for position, index in enumerate(order):  # as in the reference: first of equals, early stop
            gain = gains[index]
            if gain <= best_value and stop_early:
                break
            mask = masks[index]
            if counted[mask] < picks:
                value = penalty[mask]
                for picked in picked_masks[counted[mask]:]:
                    union = (mask | picked).bit_count()
                    if union:
                        overlap = (mask & picked).bit_count() / union
                        if overlap > value:  # noqa: PLR1730 (max(value, overlap); hot loop)
                            value = overlap
                penalty[mask], counted[mask] = value, picks
            value = gain - keep * penalty[mask]
            if value > best_value:
                best_position, best_value = position, value
        picked = order.pop(best_position)
        chosen.append(remaining[picked])
        if masks[picked]:
            picked_masks.append(masks[picked])
    return chosen


def top_picks(user: UserState, inputs: RankingInputs, k: int = 10,
              config: RankingConfig = DEFAULT_CONFIG) -> list[ScoredItem]:
    """The top-picks row: ``k`` titles with their ``match_score``, best first after diversity."""
    if k < 0:
        raise ValueError(f"k: must be >= 0, got {k}")
    return rank_raw(user, inputs, raw_blend(source_scores(user, inputs, config), config), k, config)


def rank_raw(user: UserState, inputs: RankingInputs, raw: Mapping[str, float], k: int,
             config: RankingConfig = DEFAULT_CONFIG) -> list[ScoredItem]:
    """The ranking's tail, whatever scored the candidates (the blend or the learned model):
    best raw score first, filters, ``match_score``, the diversity re-rank over the best ``pool``."""
    # Sort by id, then (stably) by score: ties stay in id order, with C-level keys only.
    order = sorted(raw)
    order.sort(key=raw.__getitem__, reverse=True)
    return _rank_in_order(user, inputs, zip(order, map(raw.__getitem__, order)), k, config)


def rank_scores(user: UserState, inputs: RankingInputs, ids: Sequence[str], scores: np.ndarray, k: int,
                config: RankingConfig = DEFAULT_CONFIG, *, excluded: AbstractSet[str] | None = None) -> list[ScoredItem]:
    """``rank_raw(user, inputs, dict(zip(ids, scores)), k, config)`` for ``ids`` sorted and
    distinct (a request's candidates): the order by one stable argsort instead of two sorts.
    ``excluded``: ``excluded_titles(user)`` when the caller has it already."""
    if any(map(operator.ge, ids, ids[1:])):
        return rank_raw(user, inputs, dict(zip(ids, scores.tolist(), strict=True)), k, config)
    order = np.argsort(-scores, kind="stable").tolist()  # ties in id order, as rank_raw's sorts
    values = scores.tolist()
    return _rank_in_order(user, inputs, zip(map(ids.__getitem__, order), map(values.__getitem__, order)), k, config,
                          excluded)


def _rank_in_order(user: UserState, inputs: RankingInputs, ranked: Iterable[tuple[str, float]], k: int,
                   config: RankingConfig, excluded: AbstractSet[str] | None = None) -> list[ScoredItem]:
    if excluded is None:
        excluded = excluded_titles(user)
    pool: list[ScoredItem] = []
    size = max(config.pool, k)
    item = inputs.items.get
    region, max_maturity = inputs.region, inputs.max_maturity
    for video_id, raw in ranked:
        if video_id not in excluded and title_allowed(item(video_id), region, max_maturity):
            pool.append(ScoredItem(video_id, match_score(raw, config)))
            if len(pool) >= size:
                break
    return diversify(pool, inputs.items, k, config.mmr_lambda)
