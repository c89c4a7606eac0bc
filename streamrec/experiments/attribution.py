"""Attribution: which impression a play or a complete is credited to, and the counts it adds.

Pure rules over one viewer's recent impressions; both engines (the Flink job, the Beam pipeline)
keep a :class:`ViewerAttribution` per viewer in keyed state and call :func:`on_impression` and
:func:`on_watch` in arrival order. The rules:

- every title an impression showed is a *slot* (experiment, variant, row, position) and counts
  one ``impressions`` in the window of the impression's time (:func:`window_of`);
- a ``play`` (``complete``) of a title is credited to the newest slot that showed that title to
  the same viewer at most ``window_ms`` before it (and at most ``skew_ms`` after it: client and
  server clocks differ), and counts one ``plays`` (``completes``) in that slot's window;
- a slot takes at most one play and one complete, and an event (by ``event_id``) is credited at
  most once: replays, retries and a second play of the same title do not count again;
- a watch that finds no slot yet waits (bounded in number) for an impression that may still
  arrive from the other topic, until impressions are read ``skew_ms`` past it;
- the first impression of a viewer in a window counts one ``viewers`` (the sample-ratio check's
  unit), once per (experiment, window).

Counts are keyed by :data:`CountKey` ``(experiment, window start ms, variant, metric, row, position)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from streamrec.events.model import Impression

WINDOW_MS = 24 * 3600 * 1000  # counts are kept per UTC day of the impression
ATTRIBUTION_WINDOW_MS = 30 * 60 * 1000  # a play this long after an impression is not credited to it
SKEW_MS = 10_000  # an impression may carry a time up to this much after the play it led to
MAX_SLOTS = 1000  # slots remembered per viewer (newest kept)
MAX_WAITING = 50  # watches waiting for their impression, per viewer
MAX_EVENT_IDS = 500
POSITION_CAP = 20  # positions from here on are counted together (row lengths default to 20)
ALL = "all"  # the row of the per-viewer count
METRICS = ("impressions", "plays", "completes", "viewers")
WATCH_KINDS = ("play", "complete")

CountKey = tuple[str, int, str, str, str, int]


def window_of(ts_ms: int, window_ms: int = WINDOW_MS) -> int:
    return ts_ms - ts_ms % window_ms


def position_bucket(position: int) -> int:
    return min(position, POSITION_CAP)


@dataclass(slots=True)
class Slot:
    """One title of one impression, and whether a play and a complete were credited to it."""

    ts: int
    experiment: str
    variant: str
    row: str
    position: int
    video_id: str
    played: bool = False
    completed: bool = False


@dataclass(frozen=True, slots=True)
class Watch:
    """A play or a complete, as attribution needs it."""

    event_id: str
    kind: str  # play | complete
    video_id: str
    ts: int


@dataclass(slots=True)
class ViewerAttribution:
    """One viewer's recent slots, waiting watches, credited event ids and counted windows."""

    slots: list[Slot] = field(default_factory=list)  # oldest first
    waiting: list[Watch] = field(default_factory=list)
    credited: list[str] = field(default_factory=list)  # event ids, oldest first
    viewer_windows: set[tuple[str, int]] = field(default_factory=set)  # (experiment, window)
    newest_ts: int = 0

    def empty(self) -> bool:
        return not self.slots and not self.waiting


def _add(counts: dict[CountKey, int], key: CountKey) -> None:
    counts[key] = counts.get(key, 0) + 1


def _metric(kind: str) -> str:
    return "plays" if kind == "play" else "completes"


def _credit(state: ViewerAttribution, watch: Watch, window_ms: int, skew_ms: int,
            counts: dict[CountKey, int], slots: Iterable[Slot]) -> bool:
    """Credit ``watch`` to the newest of ``slots`` that may take it; True when it found one."""
    best: Slot | None = None
    for slot in slots:
        # Ties go to the earlier-added slot (higher on the page).
        if (slot.video_id == watch.video_id and watch.ts - window_ms <= slot.ts <= watch.ts + skew_ms
                and (best is None or slot.ts > best.ts)):
            best = slot
    if best is None:
        return False
    taken = best.played if watch.kind == "play" else best.completed
    if not taken:
        if watch.kind == "play":
            best.played = True
        else:
            best.completed = True
        _add(counts, (best.experiment, window_of(best.ts), best.variant, _metric(watch.kind), best.row,
                      best.position))
    state.credited.append(watch.event_id)
    del state.credited[:-MAX_EVENT_IDS]
    return True


def on_impression(state: ViewerAttribution, impression: Impression, *, window_ms: int = ATTRIBUTION_WINDOW_MS,
                  skew_ms: int = SKEW_MS) -> dict[CountKey, int]:
    """Remember the impression's slots, count them, and credit waiting watches they explain.
    An impression outside any experiment (no ``experiment`` or ``variant``) counts nothing."""
    counts: dict[CountKey, int] = {}
    experiment, variant = impression.experiment, impression.variant
    if not experiment or not variant:
        return counts
    window = window_of(impression.timestamp)
    if (experiment, window) not in state.viewer_windows:
        state.viewer_windows.add((experiment, window))
        _add(counts, (experiment, window, variant, "viewers", ALL, 0))
    new = [Slot(impression.timestamp, experiment, variant, impression.row_type, position_bucket(i), video_id)
           for i, video_id in enumerate(impression.video_ids)]
    for slot in new:
        _add(counts, (experiment, window, variant, "impressions", slot.row, slot.position))
    state.slots.extend(new)
    state.slots.sort(key=lambda s: s.ts)  # stable: the page order of equal times is kept
    del state.slots[:-MAX_SLOTS]
    still = []
    for watch in state.waiting:
        if not _credit(state, watch, window_ms, skew_ms, counts, new):
            still.append(watch)
    state.waiting = still
    state.newest_ts = max(state.newest_ts, impression.timestamp)
    return counts


def on_watch(state: ViewerAttribution, watch: Watch, *, window_ms: int = ATTRIBUTION_WINDOW_MS,
             skew_ms: int = SKEW_MS) -> dict[CountKey, int]:
    """Credit a play or a complete to the slot that showed its title, or let it wait."""
    counts: dict[CountKey, int] = {}
    if watch.kind not in WATCH_KINDS or watch.event_id in state.credited:
        return counts
    if any(w.event_id == watch.event_id for w in state.waiting):
        return counts
    if not _credit(state, watch, window_ms, skew_ms, counts, state.slots):
        state.waiting.append(watch)
        del state.waiting[:-MAX_WAITING]
    state.newest_ts = max(state.newest_ts, watch.ts)
    return counts


def by_experiment(counts: Mapping[CountKey, int]) -> dict[str, dict[CountKey, int]]:
    """Count increments split by experiment (the engines key the totals by experiment)."""
    out: dict[str, dict[CountKey, int]] = {}
    for key, n in counts.items():
        out.setdefault(key[0], {})[key] = n
    return out


def expire(state: ViewerAttribution, *, shown_until: int, watched_until: int, window_ms: int = ATTRIBUTION_WINDOW_MS,
           skew_ms: int = SKEW_MS) -> bool:
    """Forget what can no longer be credited, given how far each stream has been read (event time
    of the newest impression and of the newest watch the caller has seen): a slot once watches
    are read past its window, a waiting watch once impressions are read past its skew, counted
    windows once both streams are past them. True when nothing is left (the engine may drop the
    viewer's state). Two clocks, because the streams come from two topics: a burst of plays read
    ahead of their impressions must not expire while the impressions are still on their way."""
    state.slots = [s for s in state.slots if s.ts + window_ms + skew_ms >= watched_until]
    state.waiting = [w for w in state.waiting if w.ts + skew_ms >= shown_until]
    today = window_of(min(shown_until, watched_until))
    state.viewer_windows = {(e, w) for e, w in state.viewer_windows if w >= today}
    if not state.slots:
        state.credited.clear()
    return state.empty() and not state.viewer_windows
