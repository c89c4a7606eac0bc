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
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from streamrec.events.model import CatalogItem

#: Bounds shared by every backend (and by docs/capacity.md).
HISTORY_LIMIT = 200  # recent history entries per user
IN_PROGRESS_LIMIT = 50  # continue-watching entries per user
SEEN_LIMIT = 2000  # seen/completed titles remembered per user
DISLIKED_LIMIT = 500
MY_LIST_LIMIT = 200
TOP_PICKS_LIMIT = 100
EVENT_IDS_LIMIT = 256  # recent event ids per user, for idempotent replays
COWATCH_NEIGHBOURS_LIMIT = 200  # K: co-watch neighbours kept per item, by count
RANKED_LIST_LIMIT = 200  # entries kept per ranked list (trending, new releases, genre rows)
USER_TTL_SECONDS = 365 * 24 * 3600  # inactive profiles expire
MAX_RECORD_BYTES = 1 << 20  # one record (a user state, an item) may not exceed this: RecordTooBig


class StoreError(Exception):
    """A store operation failed (as opposed to: the record does not exist)."""


class StoreUnavailable(StoreError):
    """The backend cannot be reached or did not answer in time."""


class RecordTooBig(StoreError):
    """A record would exceed the backend's record size limit."""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    video_id: str
    ts: int  # epoch ms
    weight: float = 1.0  # how strong the signal was (complete > play > heartbeat)


@dataclass(frozen=True, slots=True)
class Progress:
    video_id: str
    position_sec: float
    duration_sec: float
    updated_at: int  # epoch ms


@dataclass(frozen=True, slots=True)
class ScoredItem:
    video_id: str
    score: float


@dataclass(slots=True)
class UserState:
    """Everything the feed needs to know about one profile.

    ``version`` is owned by the store: every ``put_users`` bumps it, so a cached feed built at
    version v is stale as soon as the store reports v' != v.
    """

    user_id: str
    history: list[HistoryEntry] = field(default_factory=list)  # newest first, <= HISTORY_LIMIT
    in_progress: dict[str, Progress] = field(default_factory=dict)  # continue watching
    seen: list[str] = field(default_factory=list)  # newest first, <= SEEN_LIMIT
    disliked: list[str] = field(default_factory=list)
    my_list: list[str] = field(default_factory=list)
    vector: np.ndarray | None = None  # float32
    top_picks: list[ScoredItem] = field(default_factory=list)
    top_picks_at: int = 0  # epoch ms
    preferred_genres: list[str] = field(default_factory=list)
    recent_event_ids: list[str] = field(default_factory=list)  # newest last, <= EVENT_IDS_LIMIT
    updated_at: int = 0  # epoch ms of the newest event applied
    version: int = 0

    def bounded(self) -> UserState:
        """The same state cut to the contract's bounds (backends store exactly this)."""
        progress = sorted(self.in_progress.values(), key=lambda p: (-p.updated_at, p.video_id))
        return UserState(
            user_id=self.user_id,
            history=list(self.history[:HISTORY_LIMIT]),
            in_progress={p.video_id: p for p in progress[:IN_PROGRESS_LIMIT]},
            seen=list(self.seen[:SEEN_LIMIT]),
            disliked=list(self.disliked[:DISLIKED_LIMIT]),
            my_list=list(self.my_list[:MY_LIST_LIMIT]),
            vector=None if self.vector is None else np.asarray(self.vector, dtype=np.float32),
            top_picks=list(self.top_picks[:TOP_PICKS_LIMIT]),
            top_picks_at=self.top_picks_at,
            preferred_genres=list(self.preferred_genres),
            recent_event_ids=list(self.recent_event_ids[-EVENT_IDS_LIMIT:]),
            updated_at=self.updated_at,
            version=self.version,
        )


@dataclass(frozen=True, slots=True)
class UserChange:
    """One user's new state and what the events it applied add to the shared counters
    (:meth:`Store.apply_user_updates`)."""

    state: UserState
    cowatch: Mapping[tuple[str, str], int]
    item_counts: Mapping[str, int]
    event_ids: tuple[str, ...] = ()  # the events applied: their counters are added once


@dataclass(frozen=True, slots=True)
class RankedList:
    """A named top-N list: trending per (window, region), new releases, a genre row.

    Keys are built by :func:`trending_key` and friends so every writer and reader agrees.
    """

    key: str
    items: list[ScoredItem]  # best first, <= RANKED_LIST_LIMIT
    updated_at: int  # epoch ms, wall clock of the write
    window_end: int | None = None  # epoch ms, event time; for windowed lists


def trending_key(window: str, region: str) -> str:
    """``window`` is a label such as ``1h`` or ``24h``; ``region`` ``global`` for all regions."""
    return f"trending:{window}:{region}"


def new_releases_key(region: str = "global") -> str:
    return f"new_releases:{region}"


def genre_key(genre: str, region: str = "global") -> str:
    """A genre's popular titles (the pipeline's 24 h window): ``genre:<genre>`` over every region,
    ``genre:<genre>:<region>`` for one."""
    return f"genre:{genre}" if region == "global" else f"genre:{genre}:{region}"


class Store(abc.ABC):
    """The state contract. Implementations must be safe to use from several threads."""

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
