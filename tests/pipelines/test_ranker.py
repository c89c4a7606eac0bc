"""The learned ranker in the Beam job: the refresh emits examples, one trainer learns them in order."""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_stream import TestStream
from apache_beam.testing.util import assert_that
from apache_beam.transforms.window import TimestampedValue

from pipelines.ranker import TrainRanker
from pipelines.stages import WriteTrending
from pipelines.user_state import TAG_EXAMPLES, UpdateUserState
from streamrec.events.model import CatalogItem
from streamrec.events.model import EventType as K
from streamrec.recommend.learned import (
    FEATURES,
    MODEL_KEY,
    Example,
    LearningConfig,
    RankerTrainer,
    model_from_list,
)
from streamrec.store import open_store
from tests.pipelines.helpers import T0, event, store_url, streaming_options

pytestmark = pytest.mark.pipeline
MIN = 60_000
COWATCH, TRENDING = FEATURES.index("cowatch"), FEATURES.index("trending")


def _row(**values: float) -> np.ndarray:
    x = np.zeros(len(FEATURES), dtype=np.float32)
    for name, value in values.items():
        x[FEATURES.index(name)] = value
    return x


def test_one_trainer_learns_the_batches_in_order_and_the_store_gets_each_new_version(tmp_path: Path) -> None:
    """Known answer: the watches are trending titles under co-watch ones, so the first pass sets
    the co-watch weight to 0 (tests/recommend/test_learned.py); the stored model is exactly what
    the pure trainer makes of the same examples in the same order."""
    url = store_url(tmp_path)
    config = LearningConfig(buffer=50, every=2, min_examples=2)
    bad = Example(np.vstack([_row(trending=1.0)] + [_row(cowatch=1.0)] * 12))
    batches = [[bad], [bad, bad], [bad]]
    expected = RankerTrainer(config=config)
    for batch in batches:
        expected.add(batch)
    assert expected.model.version == 1 and expected.model.weights[COWATCH] == 0.0
    with beam.Pipeline(options=streaming_options()) as pipeline:
        stream = TestStream()
        for i, batch in enumerate(batches):
            stream = stream.add_elements([TimestampedValue(batch, (T0 + i * MIN) / 1000.0)])
        _ = (pipeline | stream.advance_watermark_to_infinity()
             | TrainRanker(url, config) | WriteTrending(url))
    store = open_store(url)
    try:
        stored = store.get_lists([MODEL_KEY]).get(MODEL_KEY)
    finally:
        store.close()
    model = model_from_list(stored)
    assert (model.version, model.examples) == (1, 3)  # the record of version 1, written after 3 examples
    np.testing.assert_array_equal(model.weights, expected.model.weights)


def test_a_refresh_after_new_watches_emits_their_examples(tmp_path: Path) -> None:
    """u watched a, its picks were refreshed, then it watched b (others' co-watch: a -> b, a -> c):
    the second refresh emits b's example against a's candidates; the first (no history before)
    emits none."""
    url = store_url(tmp_path)
    store = open_store(url)
    try:
        store.upsert_items([CatalogItem(v, v.upper(), genres=("Drama",)) for v in "abc"])
        store.add_cowatch({("a", "b"): 3, ("a", "c"): 5, ("b", "a"): 3, ("c", "a"): 5})
        store.add_item_counts({"a": 8, "b": 3, "c": 5})
    finally:
        store.close()
    events = [event(K.COMPLETE, "u", "a", T0, position_sec=5400.0, duration_sec=5400.0),
              event(K.COMPLETE, "u", "b", T0 + 10 * MIN, position_sec=5400.0, duration_sec=5400.0)]
    stream = (TestStream()
              .add_elements([TimestampedValue(events[0], events[0].timestamp / 1000.0)])
              .advance_watermark_to((T0 + 5 * MIN) / 1000.0)
              .add_elements([TimestampedValue(events[1], events[1].timestamp / 1000.0)])
              .advance_watermark_to((T0 + 20 * MIN) / 1000.0)  # the second refresh fires here
              .advance_watermark_to_infinity())

    def check(batches: list[list[Example]]) -> None:
        assert len(batches) == 1, batches  # the first refresh had no history before its watch
        [example] = batches[0]
        assert example.matrix.shape[1] == len(FEATURES)
        assert example.matrix[0, COWATCH] > 0  # b, co-watched with a by others (u's own pair taken out)

    with beam.Pipeline(options=streaming_options()) as pipeline:
        updated = pipeline | stream | UpdateUserState(url, settle_s=1.0, max_delay_s=2.0, idle_s=3600.0)
        assert_that(updated[TAG_EXAMPLES], check)
