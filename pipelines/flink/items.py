"""The Flink job's titles, without Flink: catalog upserts and each title's totals.

:class:`CatalogWriter` decodes catalog records and upserts them; :class:`ItemTotalsWriter` keeps
each title's totals (count, co-watch row, raw vector: :class:`pipelines.flink.core.ItemTotal`) and
writes them idempotently (``target - stored``, see :mod:`pipelines.flink.core`); ``split_increments``
and ``shard_of`` route increments so one title has one writer. Called by ``CatalogFn`` and
``ItemTotalsFn`` (:mod:`pipelines.flink.functions`). Nothing here imports PyFlink.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from pipelines.flink.core import ItemTotal, Pairs, Record, StoreUser, dead_letter
from streamrec.events.codec import default_codec
from streamrec.events.errors import EventError
from streamrec.events.model import CatalogItem, DeadLetter
from streamrec.recommend.vectors import item_basis, item_vector_increments
from streamrec.store import Store


def shard_of(video_id: str, shards: int) -> int:
    import zlib

    return zlib.crc32(video_id.encode()) % shards


def split_increments(pairs: Mapping[tuple[str, str], int], counts: Mapping[str, int],
                     shards: int) -> dict[int, tuple[Pairs, dict[str, int]]]:
    """Increments routed by the title they belong to (a pair ``(a, b)`` is ``a``'s: its count row
    and its vector), so one title has one writer."""
    parts: dict[int, tuple[Pairs, dict[str, int]]] = {}
    for (a, b), n in pairs.items():
        parts.setdefault(shard_of(a, shards), ({}, {}))[0][(a, b)] = n
    for video_id, n in counts.items():
        parts.setdefault(shard_of(video_id, shards), ({}, {}))[1][video_id] = n
    return parts


class ItemTotalsWriter(StoreUser):
    """Keeps each title's totals and writes them idempotently (see the module docstring)."""

    def initial(self, video_ids: Sequence[str]) -> dict[str, ItemTotal]:
        """Titles this job has not written yet start from the store."""
        ids = list(video_ids)

        def read(store: Store) -> dict[str, ItemTotal]:
            counts = store.get_item_counts(ids)
            neighbours = store.get_neighbours(ids, 1_000_000)
            vectors = store.get_item_vectors(ids)
            return {v: ItemTotal(counts.get(v, 0), dict(neighbours.get(v, [])),
                                 np.asarray(vectors[v] if v in vectors else item_basis(v), dtype=np.float32).copy())
                    for v in ids}
        result: dict[str, ItemTotal] = self.call("initial", read)
        return result

    def put_missing_vectors(self, initial: Mapping[str, ItemTotal]) -> None:
        """New catalog titles without a stored vector get their starting one (the basis)."""
        ids = list(initial)

        def put(store: Store) -> None:
            have = store.get_item_vectors(ids)
            missing = {v: initial[v].vector for v in ids if v not in have}
            if missing:
                store.put_item_vectors(missing)
        self.call("put_missing_vectors", put)

    def write(self, totals: dict[str, ItemTotal], pairs: Mapping[tuple[str, str], int],
              counts: Mapping[str, int]) -> dict[str, ItemTotal]:
        """Add the released increments to ``totals`` (changed in place, returned: the titles touched)
        and bring the store to them: counts and pairs as ``total - stored``, vectors replaced."""
        touched: dict[str, ItemTotal] = {}
        for video_id, n in counts.items():
            total = touched[video_id] = totals[video_id]
            total.count += n
        for (a, b), n in pairs.items():
            total = touched[a] = totals[a]
            total.neighbours[b] = total.neighbours.get(b, 0) + n
        for video_id, delta in item_vector_increments(pairs).items():
            totals[video_id].vector = (totals[video_id].vector + delta).astype(np.float32)
        ids = list(touched)

        def write(store: Store) -> None:
            stored_counts = store.get_item_counts([v for v in ids if v in counts])
            stored_rows = {a: dict(row) for a, row in
                           store.get_neighbours(list({a for a, _ in pairs}), 1_000_000).items()}
            count_deltas = {v: totals[v].count - stored_counts.get(v, 0) for v in counts}
            pair_deltas = {(a, b): totals[a].neighbours[b] - stored_rows.get(a, {}).get(b, 0) for a, b in pairs}
            count_deltas = {v: n for v, n in count_deltas.items() if n}
            pair_deltas = {p: n for p, n in pair_deltas.items() if n}
            if pair_deltas:
                store.add_cowatch(pair_deltas)
            if count_deltas:
                store.add_item_counts(count_deltas)
            vectors = {a: totals[a].vector for a in {a for a, _ in pairs}}
            if vectors:
                store.put_item_vectors(vectors)
        self.call("write_items", write)
        return touched


# -- catalog ----------------------------------------------------------------------------------------------
class CatalogWriter(StoreUser):
    """Decodes catalog records and upserts them (a replacement). A title without a vector gets its
    basis vector, as the Beam pipeline's CatalogUpsert does, from the one writer of item vectors
    (:meth:`ItemTotalsWriter.put_missing_vectors`), so the two never overwrite each other."""

    def __init__(self, store_url: str, topic: str) -> None:
        super().__init__(store_url)
        self.topic = topic
        self.codec = default_codec()

    def apply(self, partition: int, records: Iterable[Record]) -> tuple[list[CatalogItem], list[DeadLetter]]:
        items: dict[str, CatalogItem] = {}
        dead = []
        for offset, key, value in sorted(records, key=lambda r: r[0]):
            try:
                if value is None:
                    raise EventError("body", "empty record")
                decoded = self.codec.decode(value)
                if not isinstance(decoded, CatalogItem):
                    raise EventError("header", f"expected a CatalogItem, found a {type(decoded).__name__}")
                items[decoded.video_id] = decoded
            except EventError as exc:
                dead.append(dead_letter(value, key, self.topic, partition, offset, exc, "decode_catalog"))
        if items:
            self.call("upsert_items", lambda store: store.upsert_items(list(items.values())))
        return list(items.values()), dead
