"""The bench's plain loop (bench/pipeline_ceiling.py) counts trending watches per 5-minute bucket, as
both engines do, and derives the windows' counts from the buckets: the same counts as one
increment per window (12 one-hour, 24 one-day) per watch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.pipeline_ceiling import BUCKET_MS, window_counts
from streamrec import ratings as rating_logs


def test_window_counts_from_buckets_equal_an_increment_per_window_per_watch(movielens_dir: Path) -> None:
    events = list(rating_logs.history_events(rating_logs.load_ratings(movielens_dir)[:4000]))
    watches = [(e.region or "", e.video_id, e.timestamp) for e in events if e.video_id is not None]
    # Bucket and hour edges, and times before 1970 (floor division both ways).
    watches += [("DE", "ml-1", ts) for ts in (0, -1, 299_999, 300_000, 3_599_999, 3_600_000, -3_600_001)]
    expected: Counter[tuple[str, str, int]] = Counter()
    buckets: dict[tuple[str, str, int], int] = {}
    for region, video_id, ts in watches:
        slide, hour = ts // 300_000, ts // 3_600_000
        expected.update([(region, video_id, slide - k) for k in range(12)])
        expected.update([(region, video_id, -(hour - k)) for k in range(24)])
        bucket = (region, video_id, ts // BUCKET_MS)
        buckets[bucket] = buckets.get(bucket, 0) + 1
    assert len(buckets) > 1000
    assert window_counts(buckets) == expected
