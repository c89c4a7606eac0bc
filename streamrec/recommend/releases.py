"""New releases: the newest titles available in a region, kept by the stream from the catalog.

Pure rules, no I/O; the pipelines keep a :class:`ReleasePool` per list key and call these.

A title is *released* once the stream's clock (the newest watch's event time) has reached its
``added_at``, and *ages out* ``max_age_ms`` later. The list ranks released titles by the day they
were added (newest first), then by early momentum (watches since added), then by id. The score
written with each title encodes exactly that order, ``day + watches / (watches + 1)``, so lists of
two regions can be merged by score.

Why the clock is the watch stream's event time and not the wall clock: a backfill or a replayed
log moves through history, and "new" must mean new *at that moment of the log*; in production the
two clocks agree within seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streamrec.events.model import CatalogItem
from streamrec.model import ScoredItem

DAY_MS = 86_400_000
DEFAULT_MAX_AGE_DAYS = 30
DEFAULT_LIST_SIZE = 100
GLOBAL = "global"


def release_regions(item: CatalogItem) -> tuple[str, ...]:
    """The list keys' regions a title belongs to: the global list always, and each region it is
    restricted to (a title available everywhere is read from the global list by every region)."""
    return (GLOBAL, *sorted(set(item.regions) - {GLOBAL}))


def release_score(added_at_ms: int, watches: int) -> float:
    """``day + watches / (watches + 1)``: by day added, then by momentum (always below 1)."""
    if watches < 0:
        raise ValueError(f"watches: must be >= 0, got {watches}")
    return float(added_at_ms // DAY_MS) + watches / (watches + 1.0)


@dataclass(slots=True)
class ReleasePool:
    """The titles of one list that have not aged out yet (released or still to come), and the
    clock. ``clock_ms`` is the newest watch seen (``None``: none yet, so nothing is held back)."""

    added: dict[str, int] = field(default_factory=dict)  # video_id -> added_at (ms)
    watches: dict[str, int] = field(default_factory=dict)  # video_id -> watches since added
    clock_ms: int | None = None

    def add(self, video_id: str, added_at_ms: int | None, max_age_ms: int) -> None:
        """A catalog record: a title with no ``added_at`` (or one already aged out) leaves the pool."""
        if added_at_ms is None or self._aged(added_at_ms, max_age_ms):
            self.added.pop(video_id, None)
            self.watches.pop(video_id, None)
        else:
            self.added[video_id] = added_at_ms

    def watched(self, counts: Mapping[str, int]) -> None:
        """Watches of the list's scope: only titles in the pool are counted (early momentum)."""
        for video_id, n in counts.items():
            if video_id in self.added:
                self.watches[video_id] = self.watches.get(video_id, 0) + n

    def advance(self, clock_ms: int, max_age_ms: int) -> None:
        """The stream reached ``clock_ms``: the clock never moves back; aged-out titles leave."""
        if self.clock_ms is not None and clock_ms <= self.clock_ms:
            return
        self.clock_ms = clock_ms
        self.added = {v: t for v, t in self.added.items() if not self._aged(t, max_age_ms)}
        self.watches = {v: n for v, n in self.watches.items() if v in self.added}

    def _aged(self, added_at_ms: int, max_age_ms: int) -> bool:
        return self.clock_ms is not None and added_at_ms < self.clock_ms - max_age_ms

    def released(self) -> dict[str, int]:
        """Titles whose ``added_at`` the clock has reached."""
        if self.clock_ms is None:
            return dict(self.added)
        return {v: t for v, t in self.added.items() if t <= self.clock_ms}


    def ranked(self, n: int = DEFAULT_LIST_SIZE) -> list[ScoredItem]:
        """The list: released titles by :func:`release_score`, best first, ties by id."""
        return rank_releases(self.released(), self.watches, n)

    @classmethod
    def from_list(cls, items: Iterable[ScoredItem]) -> ReleasePool:
        """A pool recovered from a written list (a restarted job): each title's day and watches are
        read back from its score; ``added_at`` becomes the start of that day."""
        pool = cls()
        for s in items:
            day, fraction = divmod(s.score, 1.0)
            pool.added[s.video_id] = int(day) * DAY_MS
            pool.watches[s.video_id] = round(fraction / (1.0 - fraction)) if fraction < 1.0 else 0
        return pool


def rank_releases(released: Mapping[str, int], watches: Mapping[str, int], n: int = DEFAULT_LIST_SIZE) -> list[ScoredItem]:
    """Released titles by :func:`release_score`, best first, ties by id."""
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    scored = ((v, release_score(t, max(0, watches.get(v, 0)))) for v, t in released.items())
    return [ScoredItem(v, s) for v, s in sorted(scored, key=lambda vs: (-vs[1], vs[0]))[:n]]


def merge_releases(lists: Iterable[Iterable[ScoredItem]], n: int) -> list[ScoredItem]:
    """Several regions' lists as one (a region's own titles and those available everywhere)."""
    best: dict[str, float] = {}
    for ranked in lists:
        for s in ranked:
            best[s.video_id] = max(s.score, best.get(s.video_id, s.score))
    return [ScoredItem(v, s) for v, s in sorted(best.items(), key=lambda vs: (-vs[1], vs[0]))[:n]]
