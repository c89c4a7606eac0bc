"""The bench pipeline's work on Quix Streams (issue 18): run by ``var/peers/quix/venv``.

    var/peers/quix/venv/bin/python bench/peers/quix_pipeline.py --bootstrap HOST:PORT --topic T \\
        --store sqlite:///PATH --group G --state_dir DIR [--guarantee exactly-once] [--commit_s 0.25]

What a Quix Streams user would write for streamrec's user-state stage: a consumer group on the
events topic (keyed by user id), a stateful ``apply`` that keeps each user's ``UserState`` in
Quix's RocksDB state (changelog topic on the broker, so a restart restores it) and runs the core
rule (``streamrec.recommend.state.apply_event``), and a batching sink that writes each
checkpoint's updates to the store with the plain-loop ceiling's own batched writes
(``bench/peers/rules.py``). Checkpoints every ``--commit_s`` seconds; with ``exactly-once`` the
produced changelog records and the consumer offsets commit in one Kafka transaction, and the sink
is flushed before the checkpoint commits (at-least-once into the store, deduplicated by the
profile's ``recent_event_ids`` like the Beam job).
"""

from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quixstreams import Application, State
from quixstreams.sinks import BatchingSink, SinkBatch
from rules import Batch, worker_parser

from streamrec.events.codec import default_codec
from streamrec.store import open_store


class StoreSink(BatchingSink):
    """Writes a checkpoint's updates with the ceiling's batched store calls."""

    def __init__(self, store_url: str, batch: Batch) -> None:
        super().__init__()
        self.store_url = store_url
        self.batch = batch
        self.store: Any = None

    def setup(self) -> None:
        self.store = open_store(self.store_url)

    def write(self, batch: SinkBatch) -> None:
        for item in batch:
            event, update = item.value
            self.batch.add(event, update)

    def flush(self) -> None:
        """All partitions' records of the checkpoint, then one batched write (not one per partition)."""
        try:
            for batch in self._batches.values():
                self.write(batch)
            self.batch.flush(self.store)
        finally:
            self._batches.clear()


def main(argv: list[str] | None = None) -> int:
    parser = worker_parser(__doc__)
    parser.add_argument("--guarantee", choices=("exactly-once", "at-least-once"), default="exactly-once")
    args = parser.parse_args(argv)

    codec = default_codec()
    batch = Batch()
    app = Application(broker_address=args.bootstrap, consumer_group=args.group, auto_offset_reset="earliest",
                      processing_guarantee=args.guarantee, commit_interval=args.commit_s,
                      state_dir=args.state_dir, loglevel=logging.WARNING)
    topic = app.topic(args.topic, key_deserializer="str", value_deserializer="bytes")

    def step(payload: bytes, state: State) -> tuple[Any, Any] | None:
        event = codec.decode_event(payload)
        raw = state.get_bytes("user")
        update = batch.step(pickle.loads(raw) if raw is not None else None, event)
        if not update.applied:
            return None
        state.set_bytes("user", pickle.dumps(update.state, pickle.HIGHEST_PROTOCOL))
        return event, update

    sdf = app.dataframe(topic)
    sdf = sdf.apply(step, stateful=True).filter(lambda v: v is not None)
    sdf.sink(StoreSink(args.store, batch))
    app.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
