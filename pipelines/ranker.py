# ruff: noqa: B008  -- Beam declares DoFn state parameters as defaults
"""The learned ranker's trainer (``streamrec.recommend.learned``) as a Beam stage.

The nearline refresh (``UpdateUserState``'s timer) emits, per user, the examples of the watches
since the last refresh; this stage keys them all to one trainer
(:class:`~streamrec.recommend.learned.OnlineRanker`), which learns from them in arrival order and
emits every new model version as one ranked list (``MODEL_KEY``, its ``window_end`` the version)
for ``WriteRankedLists``: the feed and the next refreshes read it whole.

The model (weights, version, examples seen) is Beam state and is in the store; the window of
recent examples the fit looks at lives in the worker's memory. After a restart the trainer
resumes from the model and waits for a fresh window (``LearningConfig.min_examples``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.transforms.userstate import ReadModifyWriteStateSpec

from streamrec.model import RankedList
from streamrec.recommend.learned import MODEL_KEY, Example, LearningConfig, OnlineRanker
from streamrec.store.retry import RetryingStore

TRAINER_KEY = "ranker"


class TrainRankerFn(beam.DoFn):
    """(TRAINER_KEY, [Example]) -> the model as a RankedList, at every new version."""

    MODEL = ReadModifyWriteStateSpec("model", PickleCoder())

    def __init__(self, store_url: str, config: LearningConfig | None = None) -> None:
        self.store_url = store_url
        self.config = config

    def setup(self) -> None:
        self.store = RetryingStore(self.store_url, "TrainRankerFn")
        self.ranker = OnlineRanker(lambda: self.store.call("get_lists", lambda s: s.get_lists([MODEL_KEY])).get(MODEL_KEY),
                                   self.config)

    def teardown(self) -> None:
        self.store.close()

    def process(self, keyed: tuple[str, Iterable[Example]],
                model_state: Any = beam.DoFn.StateParam(MODEL)) -> Iterator[RankedList]:
        held, written = self.ranker.learn(model_state.read(), keyed[1], int(time.time() * 1000))
        model_state.write(held)
        if written is not None:
            yield written


class TrainRanker(beam.PTransform):  # type: ignore[misc]
    """list[Example] (one refresh's) -> RankedList (each new model version)."""

    def __init__(self, store_url: str, config: LearningConfig | None = None) -> None:
        super().__init__()
        self.fn = TrainRankerFn(store_url, config)

    def expand(self, examples: beam.PCollection) -> beam.PCollection:
        return (examples
                | "NonEmpty" >> beam.Filter(bool)
                | "ToOneTrainer" >> beam.Map(lambda batch: (TRAINER_KEY, batch))
                | "Learn" >> beam.ParDo(self.fn))
