"""The domain model: a viewer's state, scored titles and ranked lists, and their bounds.

Shared by the recommendation maths (:mod:`streamrec.recommend`), the store contract and its
backends (:mod:`streamrec.store`), the pipelines, serving and the evaluation: the maths depends on
these types, not on the storage contract. The events themselves are in
:mod:`streamrec.events.model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Bounds of the state (every backend stores exactly this much; docs/capacity.md sizes them).
HISTORY_LIMIT = 200  # recent history entries per user
IN_PROGRESS_LIMIT = 50  # continue-watching entries per user
SEEN_LIMIT = 2000  # seen/completed titles remembered per user
DISLIKED_LIMIT = 500
MY_LIST_LIMIT = 200
TOP_PICKS_LIMIT = 100
EVENT_IDS_LIMIT = 256  # recent event ids per user, for idempotent replays
COWATCH_NEIGHBOURS_LIMIT = 200  # K: co-watch neighbours kept per item, by count
RANKED_LIST_LIMIT = 200  # entries kept per ranked list (trending, new releases, genre rows)


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
