"""Experiments and their counts in the state store, through the contract's ranked lists.

The store contract has no document type and needs none here: an experiment is one small JSON
document, kept as the single entry of the ranked list ``experiment:<id>``, and the index
``experiments`` lists the ids. Serving, the pipelines and the CLI read them the same way, so an
experiment set with ``streamrec experiment set FILE`` reaches the feed within the serving list
cache's lifetime (2 s) and the nearline refresh on its next read: no deploy.

The counts of :mod:`streamrec.experiments.attribution` are lists too, one per
(experiment, window, variant, metric): ``experiment_counts:<id>:<window start ms>:<variant>:<metric>``
whose entries are ``<row>:<position>`` with the count as the score (6 rows x 21 positions stay
under the list bound). The pipeline replaces them by value from its keyed state (idempotent, like
the trending lists), so a replay after a crash writes the same numbers again.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

from streamrec.experiments.attribution import WINDOW_MS, CountKey, window_of
from streamrec.experiments.config import (
    Experiment,
    assign,
    parse_experiment,
    running_experiment,
)
from streamrec.model import RANKED_LIST_LIMIT, RankedList, ScoredItem
from streamrec.store.base import Store, StoreError

INDEX_KEY = "experiments"
MAX_WINDOWS = 90  # the results read at most this many windows (days) back from now or the stop


def experiment_key(experiment_id: str) -> str:
    return f"experiment:{experiment_id}"


def counts_key(experiment_id: str, window: int, variant: str, metric: str) -> str:
    return f"experiment_counts:{experiment_id}:{window}:{variant}:{metric}"


def experiment_record(experiment: Experiment, now_ms: int) -> RankedList:
    document = json.dumps(experiment.to_dict(), separators=(",", ":"), sort_keys=True)
    return RankedList(experiment_key(experiment.id), [ScoredItem(document, 0.0)], updated_at=now_ms)


def parse_stored(document: str) -> Experiment:
    """A stored experiment document (variants are not checked against this process's table: a
    variant this build does not know ranks as the control, see ``streamrec.recommend.variants``)."""
    raw = json.loads(document)
    return parse_experiment(raw, known_variants=[v["name"] for v in raw.get("variants", ())])


def experiment_of(record: RankedList | None, parse: Callable[[str], Experiment] = parse_stored) -> Experiment | None:
    return parse(record.items[0].video_id) if record is not None and record.items else None


def experiment_ids(index: RankedList | None) -> list[str]:
    return [s.video_id for s in index.items] if index is not None else []


def put_experiment(store: Store, experiment: Experiment, now_ms: int | None = None) -> None:
    """Write (or replace) ``experiment`` and list it in the index."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    ids = experiment_ids(store.get_lists([INDEX_KEY]).get(INDEX_KEY))
    if experiment.id not in ids:
        if len(ids) >= RANKED_LIST_LIMIT:
            raise ValueError(f"id: {RANKED_LIST_LIMIT} experiments are stored already; remove one first")
        ids.append(experiment.id)
    store.put_lists([experiment_record(experiment, now_ms),
                     RankedList(INDEX_KEY, [ScoredItem(i, 0.0) for i in ids], updated_at=now_ms)])


def experiments_in(lists: Mapping[str, RankedList]) -> list[Experiment]:
    """The experiments among ``lists`` (read ``INDEX_KEY``, then each ``experiment_key``)."""
    found = (experiment_of(record) for key, record in lists.items() if key.startswith("experiment:"))
    return [e for e in found if e is not None]


def get_experiments(store: Store) -> list[Experiment]:
    ids = experiment_ids(store.get_lists([INDEX_KEY]).get(INDEX_KEY))
    return experiments_in(store.get_lists([experiment_key(i) for i in ids])) if ids else []


class RunningExperiments:
    """The stored experiments, read again at most every ``ttl_s``, and a viewer's variant in the
    one running (what the nearline refresh ranks with). Absent or unreadable: no variant."""

    def __init__(self, ttl_s: float = 10.0) -> None:
        self.ttl_s = ttl_s
        self._read_at = -math.inf
        self._experiments: list[Experiment] = []

    def variant(self, store: Store, user_id: str, now_ms: int) -> str | None:
        if time.monotonic() - self._read_at > self.ttl_s:
            self._read_at = time.monotonic()
            try:
                self._experiments = get_experiments(store)
            except StoreError:
                pass  # the last ones read stand; the refresh itself will meet the store's trouble
        running = running_experiment(self._experiments, now_ms)
        return assign(running, user_id) if running is not None else None


# -- counts ------------------------------------------------------------------------------------------


def windows_of(experiment: Experiment, now_ms: int) -> list[int]:
    """The windows the experiment has counts in (newest ``MAX_WINDOWS``), oldest first."""
    end = now_ms if experiment.stop_ms is None else min(now_ms, experiment.stop_ms)
    last, first = window_of(end), window_of(experiment.start_ms)
    first = max(first, last - (MAX_WINDOWS - 1) * WINDOW_MS)
    return list(range(first, last + 1, WINDOW_MS)) if last >= first else []


def count_keys(experiment: Experiment, now_ms: int, metrics: Sequence[str]) -> list[str]:
    return [counts_key(experiment.id, w, arm, m) for w in windows_of(experiment, now_ms)
            for arm in experiment.arms for m in metrics]


def counts_lists(totals: Mapping[CountKey, int], touched: Iterable[tuple[str, int, str, str]],
                 now_ms: int) -> list[RankedList]:
    """The count lists of the ``touched`` (experiment, window, variant, metric), from ``totals``."""
    by_list: dict[tuple[str, int, str, str], list[ScoredItem]] = {t: [] for t in touched}
    for (experiment, window, variant, metric, row, position), n in totals.items():
        entries = by_list.get((experiment, window, variant, metric))
        if entries is not None:
            entries.append(ScoredItem(f"{row}:{position}", float(n)))
    return [RankedList(counts_key(*t), sorted(entries, key=lambda s: (-s.score, s.video_id)), updated_at=now_ms,
                       window_end=t[1] + WINDOW_MS)
            for t, entries in by_list.items()]


def counts_from_lists(lists: Iterable[RankedList]) -> dict[CountKey, int]:
    counts: dict[CountKey, int] = {}
    for record in lists:
        _, experiment, window, variant, metric = record.key.split(":")
        for s in record.items:
            row, _, position = s.video_id.rpartition(":")
            counts[(experiment, int(window), variant, metric, row, int(position))] = round(s.score)
    return counts
