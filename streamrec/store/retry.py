"""Retry with exponential backoff and a bounded budget around store calls (issue 11, defect 7).

A store outage (Aerospike restarting, SQLite's write lock held, a network blip) raises
:class:`~streamrec.store.base.StoreUnavailable`. The pipeline's writers and readers wrap their
store calls in :func:`retry`: waits of ``first_s``, doubling up to ``max_s`` (with jitter, so
many workers do not come back in step), until ``budget_s`` has passed since the first failure;
then the error is raised (the bundle fails and the runner retries it, or the job stops). A store
that is down for ~10 s therefore pauses the pipeline instead of killing it. Any other error
(a record too big, a bug) is raised at once: waiting would not fix it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from streamrec.store.base import Store, StoreUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to keep trying and how long to wait in between."""

    budget_s: float = 120.0  # give up this long after the first failure
    first_s: float = 0.1  # the first wait
    max_s: float = 5.0  # no wait is longer than this
    jitter: float = 0.2  # each wait is drawn from [1 - jitter, 1] of its nominal length

    def __post_init__(self) -> None:
        if self.budget_s < 0 or self.first_s <= 0 or self.max_s < self.first_s or not 0 <= self.jitter < 1:
            raise ValueError(f"backoff: need budget_s >= 0, 0 < first_s <= max_s, 0 <= jitter < 1; got {self}")

    def waits(self, rng: random.Random | None = None) -> Callable[[int], float]:
        draw = (rng or random.Random()).random

        def wait(attempt: int) -> float:  # attempt 0 is the wait after the first failure
            nominal = min(self.max_s, self.first_s * 2 ** min(attempt, 30))
            return nominal * (1 - self.jitter * draw())
        return wait


DEFAULT_BACKOFF = Backoff()


def open_store(url: str) -> Store:
    from streamrec.store import (
        open_store as open_url,  # the package imports this module's users
    )

    return open_url(url)


def retry(call: Callable[[], T], what: str, backoff: Backoff = DEFAULT_BACKOFF, *,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
          on_retry: Callable[[StoreUnavailable, float], None] | None = None) -> T:
    """``call()``, retried on :class:`StoreUnavailable` within ``backoff``'s budget; ``what`` names
    the operation in the log. Returns its result or raises its last error."""
    wait = backoff.waits()
    started: float | None = None
    attempt = 0
    while True:
        try:
            return call()
        except StoreUnavailable as exc:
            now = clock()
            if started is None:
                started = now
            pause = wait(attempt)
            if now + pause - started > backoff.budget_s:
                log.error("%s: store still unavailable after %.1f s, giving up: %s", what, now - started, exc)
                raise
            if attempt == 0 or attempt % 10 == 0:
                log.warning("%s: store unavailable (%s); retrying in %.2f s", what, exc, pause)
            if on_retry is not None:
                on_retry(exc, pause)
            sleep(pause)
            attempt += 1


class RetryingStore:
    """A store opened on first use, whose calls run under :func:`retry`: what the pipeline's
    DoFns hold, so a store that is down at start-up or later pauses them instead of failing."""

    def __init__(self, url: str, owner: str, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        self.url, self.owner, self.backoff = url, owner, backoff
        self.store: Store | None = None

    def call(self, what: str, fn: Callable[[Store], T]) -> T:
        """``fn(store)``, retried with backoff while the store is unavailable."""
        def attempt() -> T:
            if self.store is None:
                self.store = open_store(self.url)
            return fn(self.store)
        return retry(attempt, f"{self.owner}.{what}", self.backoff)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
