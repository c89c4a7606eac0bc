"""The learned top-picks ranker: per-candidate features, a linear model, and its online update.

The hand-tuned blend (:mod:`.ranking`) adds the sources' scores with fixed weights. Here the
weights are learned from the stream, continuously, with the rule the pipelines and the evaluation
both run:

- **Features** of a (user, candidate) pair (:data:`FEATURES`, each in [0, 1]) come from what the
  ranking already read: every source's score, how many sources named the title, its popularity
  (log count, relative to the request's most watched candidate), its age (release year against
  the clock), how much of its genres the user watches, and two crosses with the user's history
  length (so heavy and light users can weigh co-watch and trending differently). The user's own
  precomputed ``top_picks`` are *not* a feature: they are this model's output, and learning from
  them would feed the model its own past (a feedback loop).
- **Model**: ``score = w . x``, served through the blend's monotone ``match_score`` map. The
  first version's weights are the blend's (0 for the features it lacks), so learning starts from
  the hand-tuned weighting.
- **Examples** (:func:`examples_for`): a watched title that the candidates of the viewer's state
  *before* the watch contained, beside the candidates the model ranked highest that were not
  watched (what the row would have shown) and each feature's own best (so a weighting the model
  does not use yet can be judged on what it would put on top).
- **Update** (:class:`RankerTrainer`): the newest ``buffer`` examples form a window; every
  ``every`` examples one pass of coordinate ascent (:func:`coordinate_ascent`) tries, weight by
  weight, 0, half, double and ``+-step`` (clipped to ``[-max_weight, max_weight]``) and keeps the
  value with the best NDCG@10 of the watched title over the window. It optimises the top of the
  list directly; pairwise SGD over sampled negatives optimised the whole order and served worse
  lists than the blend (docs/ranking.md has the figures). Deterministic: the same examples in the
  same order give the same weights in the replay and in either engine.

The model is state like any other: :func:`model_to_list` / :func:`model_from_list` store it as
one record (a :class:`~streamrec.model.RankedList` of (feature, weight) under :data:`MODEL_KEY`,
plus its version and example count), written whole, so a reader never sees half of a version.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from streamrec.model import RankedList, ScoredItem, UserState
from streamrec.recommend.ranking import (
    DEFAULT_CONFIG,
    RankingConfig,
    RankingInputs,
    excluded_titles,
    rank_raw,
    rank_scores,
    source_scores,
    user_genres,
)
from streamrec.recommend.similarity import genre_shares

MODEL_KEY = "model:top_picks"
SOURCE_FEATURES = ("cowatch", "vector", "trending", "content", "preferences")
FEATURES = SOURCE_FEATURES + (
    "sources",  # (number of sources naming the title - 1) / 4
    "popularity",  # log1p(count) / log1p(the request's largest count)
    "recency",  # 1 / (1 + years since release), 0 when unknown
    "genre_match",  # share of the title's genres among the user's top genres
    "cowatch_heavy",  # cowatch * activity: heavy users' co-watch
    "trending_light",  # trending * (1 - activity): light users' trending
)
_FEATURE_INDEX = {name: i for i, name in enumerate(FEATURES)}
ACTIVITY_SCALE = math.log1p(100)  # activity = min(1, log1p(history length) / this)
YEAR_MS = 365.25 * 86_400_000


@dataclass(frozen=True, slots=True)
class LearningConfig:
    """The update rule's constants (documented in docs/ranking.md; not fitted to any log)."""

    buffer: int = 3000  # the newest examples the fit looks at (a sliding window of viewers' watches)
    every: int = 1000  # a coordinate-ascent pass after this many new examples
    min_examples: int = 500  # no pass before the buffer holds this many
    negatives: int = 30  # per example: the model's best unwatched candidates kept beside the watch
    per_feature: int = 15  # ... and each feature's best unwatched candidates
    step: float = 0.1  # the additive move tried on each weight (features are in [0, 1])
    max_weight: float = 5.0  # every weight stays in [-max_weight, max_weight]
    min_gain: float = 1e-4  # a move is kept only if the window's NDCG@10 rises by more than this
    confidence_z: float = 2.0  # ... and by more than this many standard errors (paired, per watch)

    def __post_init__(self) -> None:
        if min(self.buffer, self.every, self.min_examples, self.negatives) < 1:
            raise ValueError("buffer, every, min_examples, negatives: must be >= 1")
        if self.step <= 0 or self.max_weight <= 0 or self.min_gain < 0:
            raise ValueError("step, max_weight: must be > 0; min_gain: must be >= 0")


def initial_weights(config: RankingConfig = DEFAULT_CONFIG) -> np.ndarray:
    """The blend's weights in feature order (0 for features the blend does not have)."""
    w = np.zeros(len(FEATURES))
    for i, name in enumerate(FEATURES):
        if name in SOURCE_FEATURES:
            w[i] = config.weights.get(name, 0.0)
    w[FEATURES.index("sources")] = config.multi_source_bonus * 4
    return w


@dataclass(slots=True)
class RankerModel:
    """Weights in :data:`FEATURES` order, the version (one per fit that changed them) and how
    many examples the model has learned from."""

    weights: np.ndarray = field(default_factory=initial_weights)
    version: int = 0
    examples: int = 0

    def contributions(self, x: np.ndarray) -> dict[str, float]:
        """Each feature's part of the score of one candidate (the ``explain`` of the feed)."""
        return {name: round(float(wi * xi), 6) for name, wi, xi in zip(FEATURES, self.weights, x, strict=True) if xi}


@dataclass(frozen=True, slots=True)
class Candidates:
    """The candidates of one ranking request and their feature rows (``matrix[i]`` is ``ids[i]``'s)."""

    ids: list[str]
    matrix: np.ndarray
    #: The titles the row never shows the user the candidates were computed for
    #: (``ranking.excluded_titles``), kept so ranking them does not work them out again.
    excluded: AbstractSet[str] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Example:
    """One watch, learnable: ``matrix[0]`` is the watched title's features, the other rows the
    best unwatched candidates of the state before it (float32, at most ``1 + negatives`` rows)."""

    matrix: np.ndarray


def examples_for(candidates: Candidates, watched: Iterable[str], model: RankerModel,
                 config: LearningConfig = LearningConfig()) -> list[Example]:
    """An example per watched title the candidates contained: the title, then the ``negatives``
    candidates the model ranks highest among those not watched (what the row would have shown:
    the only ones that decide a top-10 metric)."""
    index = dict(zip(candidates.ids, range(len(candidates.ids))))
    positives = [index[v] for v in dict.fromkeys(watched) if v in index]
    if not positives or len(candidates.ids) < 2:
        return []
    taken = set(positives)
    x = candidates.matrix
    scores = x @ model.weights
    order = np.argsort(-scores, kind="stable")  # by score, ties by index
    shown = [i for i in order[: config.negatives + len(positives)].tolist() if i not in taken][: config.negatives]
    # ... and each feature's own best: a title another weighting would rank near the top must be
    # in the example, or the fit would favour weightings whose top it cannot see. One stable sort
    # of every column at once (each column's order is its own stable argsort).
    keep = dict.fromkeys(shown)
    best = np.argsort(-x, axis=0, kind="stable")[: config.per_feature + len(positives)]
    above = np.take_along_axis(x, best, axis=0) > 0
    for j in np.flatnonzero(x.any(axis=0)).tolist():
        for i, positive in zip(best[:, j].tolist(), above[:, j].tolist(), strict=True):
            if positive and i not in taken:
                keep[i] = None
    shown = list(keep)
    return [Example(np.ascontiguousarray(x[[p, *shown]], dtype=np.float32)) for p in positives]


class WindowMetric:
    """NDCG@10 of the watched title over a window of examples, for any weight vector: the
    examples stacked once, each evaluation one matrix-vector product and a segmented count."""

    def __init__(self, examples: Sequence[Example]) -> None:
        self.x = np.concatenate([e.matrix for e in examples]).astype(np.float64)
        sizes = np.array([len(e.matrix) for e in examples])
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.segment = np.repeat(np.arange(len(examples)), sizes)

    def __call__(self, w: np.ndarray) -> float:
        return float(self.gains(w).mean())

    def gains(self, w: np.ndarray) -> np.ndarray:
        """Each example's NDCG@10 under ``w``."""
        s = self.x @ w
        positive = s[self.starts]
        # rank = candidates scoring at least as high as the watch (ties count against it)
        above = np.add.reduceat((s >= positive[self.segment]).astype(np.int32), self.starts) - 1
        return np.where(above < 10, 1.0 / np.log2(above + 2.0), 0.0)


def coordinate_ascent(w: np.ndarray, metric: WindowMetric, config: LearningConfig = LearningConfig()) -> np.ndarray:
    """One pass over the features (in order): for each weight try 0, half, double and
    ``+-step``; keep the value with the best window NDCG@10 if its gain over the current weights
    is *significant*: the mean per-example improvement exceeds ``min_gain`` and ``confidence_z``
    standard errors of it (a paired comparison on the same watches), so the weights do not walk
    on the window's noise. The current value wins ties. Deterministic."""
    w = w.copy()
    current_gains = metric.gains(w)
    n = len(current_gains)
    for j in range(len(w)):
        current = w[j]
        tries = {0.0, current * 0.5, current * 2.0, current + config.step, current - config.step}
        chosen, chosen_gains, best = current, current_gains, 0.0
        for value in sorted(tries):
            value = float(np.clip(value, -config.max_weight, config.max_weight))
            if value == current:
                continue
            w[j] = value
            gains = metric.gains(w)
            diff = gains - current_gains
            mean = float(diff.mean())
            error = float(diff.std()) / math.sqrt(n) if n > 1 else 0.0
            if mean > max(config.min_gain, config.confidence_z * error) and mean > best:
                best, chosen, chosen_gains = mean, value, gains
        w[j] = chosen
        current_gains = chosen_gains
    return w


class RankerTrainer:
    """The online learner: examples in, a coordinate-ascent pass over the newest ``buffer`` of
    them every ``every`` examples, a new model version when the pass moved a weight."""

    def __init__(self, model: RankerModel | None = None, config: LearningConfig = LearningConfig()) -> None:
        self.model = model or RankerModel()
        self.config = config
        self.window: deque[Example] = deque(maxlen=config.buffer)
        self.pending = 0

    def add(self, examples: Iterable[Example]) -> bool:
        """Learn from ``examples`` (in order); True when the model got a new version."""
        changed = False
        for example in examples:
            self.window.append(example)
            self.model.examples += 1
            self.pending += 1
            if self.pending >= self.config.every and len(self.window) >= self.config.min_examples:
                changed = self.fit() or changed
        return changed

    def fit(self) -> bool:
        self.pending = 0
        if not self.window:
            return False
        weights = coordinate_ascent(self.model.weights, WindowMetric(list(self.window)), self.config)
        if np.array_equal(weights, self.model.weights):
            return False
        self.model.weights = weights
        self.model.version += 1
        return True


_FEATURE_CONFIGS: dict[tuple[int, bool], tuple[RankingConfig, RankingConfig]] = {}


def _feature_config(config: RankingConfig, with_vectors: bool) -> RankingConfig:
    """``config`` with every feature source on: built once per (config, vectors), not per request
    (the configs are the few variants; the original is kept so its id is never reused)."""
    held = _FEATURE_CONFIGS.get((id(config), with_vectors))
    if held is None or held[0] is not config:
        weights = {s: 1.0 for s in SOURCE_FEATURES}
        weights["vector"] = 1.0 if with_vectors else 0.0
        held = _FEATURE_CONFIGS[(id(config), with_vectors)] = (config, dataclasses.replace(config, weights=weights))
    return held[1]


def candidate_features(user: UserState, inputs: RankingInputs, now_ms: int | None = None,
                       config: RankingConfig = DEFAULT_CONFIG, with_vectors: bool = False) -> Candidates:
    """Every candidate some source names that the row could show (not watched, not disliked,
    not in progress) and its feature row (see the module docstring)."""
    scores = source_scores(user, inputs, _feature_config(config, with_vectors))
    excluded = excluded_titles(user)
    named = set().union(*scores.values())
    named.difference_update(excluded)
    ids = sorted(named)
    n = len(ids)
    columns = np.zeros((len(FEATURES), n))  # built column by column, returned transposed
    if not n:
        return Candidates(ids, columns.T, excluded)
    for column, source in enumerate(SOURCE_FEATURES):
        per_item = scores.get(source)
        if per_item:
            columns[column] = np.fromiter(map(per_item.get, ids, repeat(0.0, n)), np.float64, n)  # score, else 0
    named_feature = _FEATURE_INDEX
    columns[named_feature["sources"]] = np.clip((np.count_nonzero(columns[: len(SOURCE_FEATURES)], axis=0) - 1) / 4.0, 0.0, 1.0)
    counts = np.log1p(np.maximum(np.fromiter(map(inputs.item_counts.get, ids, repeat(0, n)), np.float64, n), 0.0))
    top = counts.max()
    if top > 0:
        columns[named_feature["popularity"]] = counts / top
    catalog = list(map(inputs.items.get, ids))  # None for a title the catalog lacks (getattr's default)
    if now_ms is not None:
        # 1 / (1 + max(0, years since release - 0.5)), 0 without a year: elementwise, the same floats
        year_now = 1970 + now_ms / YEAR_MS
        years = np.array(list(map(getattr, catalog, repeat("release_year", n), repeat(None, n))), dtype=np.float64)
        known = (years != 0) & ~np.isnan(years)  # None became NaN; 0 counts as unknown
        recency = 1.0 / (1.0 + np.maximum(0.0, year_now - years - 0.5))
        columns[named_feature["recency"]] = np.where(known, recency, 0.0)
    genres = user_genres(user, inputs.items)
    if genres:
        title_genres = list(map(getattr, catalog, repeat("genres", n), repeat((), n)))
        columns[named_feature["genre_match"]] = genre_shares(genres, title_genres)
    activity = min(1.0, math.log1p(len(user.history)) / ACTIVITY_SCALE)
    columns[named_feature["cowatch_heavy"]] = columns[named_feature["cowatch"]] * activity
    columns[named_feature["trending_light"]] = columns[named_feature["trending"]] * (1.0 - activity)
    return Candidates(ids, np.ascontiguousarray(columns.T), excluded)


def learned_raw(candidates: Candidates, model: RankerModel) -> dict[str, float]:
    """Candidate -> the model's score ``w . x`` (unbounded, like the blend's raw score)."""
    if not candidates.ids:
        return {}
    return dict(zip(candidates.ids, (candidates.matrix @ model.weights).tolist(), strict=True))


def without_watches(user: UserState, watched: Sequence[str]) -> UserState:
    """What the ranking knew of ``user`` before ``watched``: those titles leave the history (and
    the seen titles); preferences and vector stay (a vector's one fold-in is not undone)."""
    gone = set(watched)
    if not gone:
        return user
    return dataclasses.replace(user, history=[h for h in user.history if h.video_id not in gone],
                               seen=[v for v in user.seen if v not in gone])


def without_own_increments(before: UserState, inputs: RankingInputs, watched: Sequence[str]) -> RankingInputs:
    """The store reads as they were before ``watched`` (for learning after the fact, as the
    pipeline's nearline step does): the co-watch and item counts those watches added (seed ->
    watched pairs of ``before``'s history, one watch each) taken back out. ``before``:
    :func:`without_watches` of the user."""
    gone = set(watched)
    seeds = {h.video_id for h in before.history}
    neighbours = {
        seed: [(v, c - 1 if v in gone else c) for v, c in row if not (v in gone and c <= 1)]
        if seed in seeds else list(row)
        for seed, row in inputs.neighbours.items()
    }
    counts = {v: (c - 1 if v in gone else c) for v, c in inputs.item_counts.items()}
    return inputs.with_items(neighbours=neighbours, item_counts=counts)


#: What an engine keeps of the model in its keyed state: (weights, version, examples).
HeldModel = tuple[list[float], int, int]


class OnlineRanker:
    """The trainer as both engines run it (one instance per worker, one key): the model is the
    engine's keyed state (:data:`HeldModel`, small) and the store's; the window of examples lives
    in this object's memory. After a restart, or when another worker moved the model on, it
    resumes from the held model (else the stored one) with an empty window."""

    def __init__(self, load_stored: Callable[[], RankedList | None], config: LearningConfig | None = None) -> None:
        self.load_stored = load_stored
        self.config = config or LearningConfig()
        self.trainer: RankerTrainer | None = None

    def learn(self, held: HeldModel | None, examples: Iterable[Example], now_ms: int) -> tuple[HeldModel, RankedList | None]:
        """``examples`` learned; the model to hold, and the record to write when a version is new."""
        if self.trainer is None or held is None or held[1] != self.trainer.model.version:
            model = (RankerModel(np.asarray(held[0], dtype=np.float64), held[1], held[2]) if held is not None
                     else model_from_list(self.load_stored()))
            self.trainer = RankerTrainer(model, self.config)
        changed = self.trainer.add(examples)
        model = self.trainer.model
        return (model.weights.tolist(), model.version, model.examples), (model_to_list(model, now_ms) if changed else None)


def model_to_list(model: RankerModel, now_ms: int) -> RankedList:
    """The model as one store record (``RankedList`` under :data:`MODEL_KEY`): the features'
    weights in order, then ``#version`` and ``#examples``."""
    items = [ScoredItem(name, float(w)) for name, w in zip(FEATURES, model.weights, strict=True)]
    items += [ScoredItem("#version", float(model.version)), ScoredItem("#examples", float(model.examples))]
    # window_end: the version, so a sink keeping the newest list per key never puts an older model back
    return RankedList(MODEL_KEY, items, now_ms, window_end=model.version)


def model_from_list(stored: RankedList | None) -> RankerModel:
    """The stored model; a fresh one when there is none or it was written for other features
    (a model is used whole or not at all)."""
    if stored is None:
        return RankerModel()
    values: Mapping[str, float] = {s.video_id: s.score for s in stored.items}
    if [s.video_id for s in stored.items[: len(FEATURES)]] != list(FEATURES):
        return RankerModel()
    weights = np.array([values[name] for name in FEATURES], dtype=np.float64)
    if not np.all(np.isfinite(weights)):
        return RankerModel()
    return RankerModel(weights, int(values.get("#version", 0)), int(values.get("#examples", 0)))


def learned_top_picks(user: UserState, inputs: RankingInputs, model: RankerModel, k: int = 10,
                      now_ms: int | None = None, config: RankingConfig = DEFAULT_CONFIG,
                      candidates: Candidates | None = None) -> list[ScoredItem]:
    """The top-picks row ranked by ``model`` (then the blend's filters and diversity re-rank);
    ``candidates``: features already computed for this request."""
    if k < 0:
        raise ValueError(f"k: must be >= 0, got {k}")
    if candidates is None:
        candidates = candidate_features(user, inputs, now_ms, config)
    if not candidates.ids:
        return rank_raw(user, inputs, {}, k, config)
    return rank_scores(user, inputs, candidates.ids, candidates.matrix @ model.weights, k, config,
                       excluded=candidates.excluded)
