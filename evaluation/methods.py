"""The contract between the prequential replay (``evaluation.protocol``) and a method under test.

A *method* is anything that, given what it has learned so far, can rank titles for a user. The
replay drives every method through the same calls, in event-time order:

1. ``on_day_boundary(day_start_ms)`` — once whenever the next event's UTC day (event time) is later
   than the previous event's; ``day_start_ms`` is the start of the new day. Nightly models retrain
   here on everything learned before it. Days without events are skipped (one call per jump).
2. ``recommend(user, now_ms, k, exclude)`` — the top ``k`` title ids for ``user`` at event time
   ``now_ms``, best first, never containing a title of ``exclude`` (the titles the user has
   already watched, as the replay knows them). Fewer than ``k`` is allowed. The replay calls it
   once per (user, timestamp) group, *before* any event of that group is learned: a user's events
   that share one timestamp are simultaneous and all scored against the same list.
3. ``learn(events)`` — the events of that group (one user, one timestamp), after scoring. Every
   rating in a log is treated as a watch of that title; the events are
   ``streamrec.events.model.UserEvent`` with ``event_type=RATE``, ``video_id`` and ``rating`` set
   and ``timestamp`` in epoch milliseconds; ``event_id`` is ``"<user>:<item>:<ts>"`` (stable across
   runs, so replays can deduplicate). During the warm-up (the first 20% of events) only
   ``learn`` and ``on_day_boundary`` are called.

A method never sees the event it is scored on before ``recommend`` returns; it may keep any state
it likes. Methods are built by a factory taking an ``EvalContext`` (``MethodFactory``), so a run
can build fresh instances. The recommendation engine's adapter lives in
``evaluation/streamrec_method.py`` and must expose::

    def create(context: EvalContext) -> Method

The replay skips it, with a note, while that module does not exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from streamrec.events.model import CatalogItem, UserEvent

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class EvalContext:
    """What a method may know before the replay starts (nothing about future events).

    ``catalog`` holds title metadata when the data set ships it (``movies.csv`` / ``movies.dat``
    beside the ratings), else it is empty; ``seed`` makes randomised methods reproducible.
    """

    dataset: str
    catalog: Mapping[str, CatalogItem] = field(default_factory=dict)
    seed: int = 0


@runtime_checkable
class Method(Protocol):
    """A recommender under prequential test (see the module docstring for the call order)."""

    name: str

    def recommend(self, user: str, now_ms: int, k: int, exclude: AbstractSet[str]) -> list[str]:
        """Top ``k`` title ids for ``user`` at ``now_ms``, best first, none of them in ``exclude``."""
        ...

    def learn(self, events: Sequence[UserEvent]) -> None:
        """Take in one user's simultaneous events (same user, same timestamp), after they were scored."""
        ...

    def on_day_boundary(self, day_start_ms: int) -> None:
        """Event time has entered a new UTC day starting at ``day_start_ms``; retrain if nightly."""
        ...


MethodFactory = Callable[[EvalContext], Method]
