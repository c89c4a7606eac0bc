"""Small rating logs for the evaluation tests, written as the real layouts are."""

from __future__ import annotations

import random
from pathlib import Path

from streamrec.ratings import LogFormat, Rating, RatingLog

DAY_S = 86_400


def random_ratings(
    seed: int,
    users: int = 25,
    items: int = 40,
    events: int = 400,
    days: int = 20,
    burst_days: tuple[int, ...] = (),
) -> list[Rating]:
    """A log with skewed title popularity, simultaneous events and a few busy days.

    Every user watches a title at most once. Timestamps fall on ``days`` days; on ``burst_days``
    every user is active, so nightly models see days that touch many users.
    """
    rng = random.Random(seed)
    titles = [f"m{i}" for i in range(items)]
    weights = [1.0 / (i + 1) for i in range(items)]  # Zipf-like popularity
    watched: dict[str, set[str]] = {}
    ratings: list[Rating] = []
    t0 = 1_500_000_000 - 1_500_000_000 % DAY_S
    if events > users * items // 2:
        raise ValueError("too many events for so few users and titles (each watches a title once)")
    while len(ratings) < events:
        day = rng.randrange(days)
        active = range(users) if day in burst_days else [rng.randrange(users)]
        for u in active:
            user = f"u{u}"
            ts = t0 + day * DAY_S + rng.choice([0, 60, 3600, 3600])  # repeats: simultaneous events
            for _ in range(rng.choice([1, 1, 2, 3])):
                item = rng.choices(titles, weights)[0]
                if item in watched.setdefault(user, set()):
                    continue
                watched[user].add(item)
                ratings.append(Rating(user, item, float(rng.randint(1, 5)), ts))
    return ratings


def as_log(ratings: list[Rating], name: str = "synthetic") -> RatingLog:
    return RatingLog(name=name, path=Path(name), format=LogFormat.CSV, ratings=ratings)


def write_csv(path: Path, ratings: list[Rating]) -> Path:
    lines = ["userId,movieId,rating,timestamp"]
    lines += [f"{r.user_id},{r.video_id},{r.stars},{r.timestamp}" for r in ratings]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return path
