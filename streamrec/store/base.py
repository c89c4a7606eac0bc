"""The state store contract: what pipelines write and the feed reads.

One small interface, two real backends (``sqlite``: embedded default, ``aerospike``: production),
chosen by URL through :func:`streamrec.store.open_store`. Every backend passes the one conformance
suite in ``tests/store/``. Writes come from the pipelines (synchronous, batched); reads come from
serving through :class:`streamrec.store.aio.AsyncStore`, which keeps the event loop free.

Absence is not failure: a missing record is simply absent from the returned mapping; failures
raise :class:`StoreError` subclasses.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np

from streamrec.events.model import CatalogItem
from streamrec.model import (
    RankedList,
    UserState,
)

USER_TTL_SECONDS = 365 * 24 * 3600  # inactive profiles expire
MAX_RECORD_BYTES = 1 << 20  # one record (a user state, an item) may not exceed this: RecordTooBig


class StoreError(Exception):
    """A store operation failed (as opposed to: the record does not exist)."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached or did not answer in time."""


class RecordTooBig(StoreError):
    """A record would exceed the backend's record size limit."""


@dataclass(frozen=True, slots=True)
class UserChange:
    """One user's new state and what the events it applied add to the shared counters
    (:meth:`Store.apply_user_updates`)."""

    state: UserState
    cowatch: Mapping[tuple[str, str], int]
    item_counts: Mapping[str, int]
    event_ids: tuple[str, ...] = ()  # the events applied: their counters are added once


class Store(abc.ABC):
    """The state contract. Implementations must be safe to use from several threads."""

    #: Whether a read may wait on something outside the process (a network, a lock). False only
    #: for a backend whose reads are bounded in-process work (the embedded SQLite store):
    #: :class:`~streamrec.store.aio.AsyncStore` then runs them on the event loop.
    reads_block: bool = True

    # -- users ---------------------------------------------------------------------------
    @abc.abstractmethod
    def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        """Batched read; unknown users are absent from the result."""

    @abc.abstractmethod
    def put_users(self, users: Iterable[UserState]) -> None:
        """Write whole user states (cut to the bounds), bumping each one's version."""

    def get_user(self, user_id: str) -> UserState | None:
        return self.get_users([user_id]).get(user_id)

    def get_user_versions(self, user_ids: Sequence[str]) -> dict[str, int]:
        """State versions alone (the feed cache's validity check); unknown users are absent.
        Backends override this default, which decodes whole states, with a read of the version."""
        return {user_id: state.version for user_id, state in self.get_users(user_ids).items()}

    def apply_user_updates(self, changes: Sequence[UserChange]) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
        """The pipeline's write of user states with the co-watch and item-count increments their
        events produced, applied once: the increments of a change whose ``event_ids`` the stored
        user already holds are skipped (a retried or re-run write; the state and its counters are
        written together, so a stored event's counters are stored); returns the increments added.
        Backends with multi-record
        transactions override this to do it all or nothing (SQLite); this default reads, then
        writes the counters, then the users: a crash in between counts that batch again on replay
        (at least once), it never loses it."""
        stored = self.get_users([c.state.user_id for c in changes])
        cowatch: dict[tuple[str, str], int] = {}
        item_counts: dict[str, int] = {}
        known = {uid: set(state.recent_event_ids) for uid, state in stored.items()}
        for change in changes:
            applied = known.setdefault(change.state.user_id, set())
            if not applied.isdisjoint(change.event_ids):
                continue
            applied.update(change.event_ids)
            for pair, n in change.cowatch.items():
                cowatch[pair] = cowatch.get(pair, 0) + n
            for video_id, n in change.item_counts.items():
                item_counts[video_id] = item_counts.get(video_id, 0) + n
        if cowatch:
            self.add_cowatch(cowatch)
        if item_counts:
            self.add_item_counts(item_counts)
        self.put_users([c.state for c in changes])
        return cowatch, item_counts

    # -- co-watch ------------------------------------------------------------------------
    @abc.abstractmethod
    def add_cowatch(self, increments: Mapping[tuple[str, str], int]) -> None:
        """Add ``count`` to the directed pair ``(item, neighbour)`` for each entry, keeping
        each item's neighbours trimmed to the top ``COWATCH_NEIGHBOURS_LIMIT`` by count
        (ties at the cut: the larger neighbour id stays, as in Aerospike's rank order).
        Callers add both directions when they want a symmetric relation."""

    @abc.abstractmethod
    def get_neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]:
        """Top-``k`` neighbours by count (ties by id), for many items in one call."""

    @abc.abstractmethod
    def add_item_counts(self, increments: Mapping[str, int]) -> None:
        """Add to per-item watch counts (the normaliser of co-watch similarity)."""

    @abc.abstractmethod
    def get_item_counts(self, video_ids: Sequence[str]) -> dict[str, int]:
        """Counts for many items; items never watched are absent."""

    # -- ranked lists (trending, new releases, genre rows) ---------------------------------
    @abc.abstractmethod
    def put_lists(self, lists: Iterable[RankedList]) -> None:
        """Replace each list (cut to ``RANKED_LIST_LIMIT``)."""

    @abc.abstractmethod
    def get_lists(self, keys: Sequence[str]) -> dict[str, RankedList]:
        """Batched read; unknown keys are absent."""

    # -- catalog and item vectors ----------------------------------------------------------
    @abc.abstractmethod
    def upsert_items(self, items: Iterable[CatalogItem]) -> None:
        """Insert or replace catalog metadata (an item's vector is left as it is)."""

    @abc.abstractmethod
    def get_items(self, video_ids: Sequence[str]) -> dict[str, CatalogItem]:
        """Catalog metadata for many items in one call; unknown items are absent."""

    @abc.abstractmethod
    def put_item_vectors(self, vectors: Mapping[str, np.ndarray]) -> None:
        """Write item vectors (float32); metadata is left as it is."""

    @abc.abstractmethod
    def get_item_vectors(self, video_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors for many items in one call; items without one are absent."""

    def get_items_with_vectors(
        self, video_ids: Sequence[str]
    ) -> dict[str, tuple[CatalogItem | None, np.ndarray | None]]:
        """Metadata and vector of many items in one round trip (the feed's candidate read);
        items with neither are absent. Backends override this default of two reads."""
        items, vectors = self.get_items(video_ids), self.get_item_vectors(video_ids)
        return {v: (items.get(v), vectors.get(v)) for v in video_ids if v in items or v in vectors}

    # -- lifecycle ---------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` unless the backend answers."""
        self.get_users(["__ping__"])

    def close(self) -> None:
        """Release connections. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
