"""Experiments on the serving side: the viewer's variant for a feed, and the results route's reads.

The experiments are read through :class:`serving.shared_reads.SharedReads` (ranked lists, held a
couple of seconds), so a changed experiment reaches every feed within that time and a feed costs
no extra store round trip while it is held. A store that fails here costs the viewer nothing but
the experiment: the feed is ranked as outside experiments (``variants.SERVED``) and carries no labels.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

from serving.shared_reads import CatalogReads, SharedReads
from streamrec.experiments.config import Experiment, assign, running_experiment
from streamrec.experiments.results import METRICS, results_document
from streamrec.experiments.storage import (
    INDEX_KEY,
    count_keys,
    counts_from_lists,
    experiment_ids,
    experiment_key,
    experiment_of,
    parse_stored,
)
from streamrec.model import RankedList
from streamrec.store.base import StoreError

log = logging.getLogger(__name__)


#: Stored documents parsed once each (a feed request asks for the running experiment).
_parsed = functools.lru_cache(maxsize=256)(parse_stored)


def _experiment(record: RankedList | None) -> Experiment | None:
    return experiment_of(record, _parsed)


async def experiments(store: CatalogReads, shared: SharedReads) -> list[Experiment]:
    ids = experiment_ids((await shared.lists(store, [INDEX_KEY])).get(INDEX_KEY))
    records = await shared.lists(store, [experiment_key(i) for i in ids]) if ids else {}
    return [e for e in map(_experiment, records.values()) if e is not None]


def held_experiments(shared: SharedReads) -> list[Experiment] | None:
    """:func:`experiments` when every record it reads is held by ``shared``, else None."""
    index = shared.held_lists([INDEX_KEY])
    if index is None:
        return None
    ids = experiment_ids(index.get(INDEX_KEY))
    records = shared.held_lists([experiment_key(i) for i in ids]) if ids else {}
    return None if records is None else [e for e in map(_experiment, records.values()) if e is not None]


async def viewer_variant(store: CatalogReads, shared: SharedReads, user_id: str, deadline_s: float,
                         now_ms: int | None = None) -> tuple[str | None, str | None]:
    """(experiment id, variant) of the experiment running now for ``user_id``, else (None, None).

    Every feed asks, and the records are nearly always held: then no await and no deadline (a
    cached feed's whole budget is a few tens of µs)."""
    found = held_experiments(shared)
    if found is None:
        try:
            async with asyncio.timeout(deadline_s):
                found = await experiments(store, shared)
        except (TimeoutError, StoreError) as e:
            log.warning("experiments unreadable, feed ranked as outside experiments: %s", e or "timeout")
            return None, None
    running = running_experiment(found, int(time.time() * 1000) if now_ms is None else now_ms)
    return (running.id, assign(running, user_id)) if running is not None else (None, None)


class UnknownExperiment(LookupError):
    pass


async def results(store: Any, experiment_id: str, now_ms: int) -> dict[str, Any]:
    """The results document of ``experiment_id`` (raises :class:`UnknownExperiment`)."""
    experiment = _experiment((await store.get_lists([experiment_key(experiment_id)])).get(experiment_key(experiment_id)))
    if experiment is None:
        raise UnknownExperiment(experiment_id)
    keys: Sequence[str] = count_keys(experiment, now_ms, METRICS)
    lists = await store.get_lists(keys) if keys else {}
    return results_document(experiment, counts_from_lists(lists.values()), now_ms)
