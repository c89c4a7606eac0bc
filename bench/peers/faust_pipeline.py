"""The bench pipeline's work on Faust (faust-streaming, issue 18): run by ``var/peers/faust/venv``.

    var/peers/faust/venv/bin/python bench/peers/faust_pipeline.py --bootstrap HOST:PORT --topic T \\
        --store sqlite:///PATH --group G --state_dir DIR [--commit_s 0.25]

What a Faust user would write for streamrec's user-state stage: an agent on the events topic
(keyed by user id, so the table below is co-partitioned with it), each user's ``UserState`` kept
in a Faust table (in memory, backed by its changelog topic on the broker), the core rule
(``streamrec.recommend.state.apply_event``) per event, and the plain-loop ceiling's batched store
writes (``bench/peers/rules.py``) every 500 events and on a ``--commit_s`` timer. At least once:
Faust commits offsets after processing; replays are deduplicated by the profile's
``recent_event_ids``, as in the Beam job.
"""

from __future__ import annotations

import logging
import pickle
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faust
from rules import Batch, worker_parser

from streamrec.events.codec import default_codec
from streamrec.store import open_store


def create_topics_with_admin_api(bootstrap: str) -> None:
    """Faust 0.11 creates its internal topics (the table's changelog, the assignor's leader topic)
    with a hand-built Metadata v1 request: aiokafka 0.14 can no longer send it (no ``prepare``)
    and Kafka 4 no longer serves it. Create them through the Admin API instead (librdkafka's)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    from faust.transport.drivers.aiokafka import Transport

    admin = AdminClient({"bootstrap.servers": bootstrap})

    async def create(self: Any, owner: Any, client: Any, topic: str, partitions: int, replication: int,
                     *, config: Any = None, retention: Any = None, compacting: Any = None, deleting: Any = None,
                     **_: Any) -> None:
        settings = {**self._topic_config(retention, compacting, deleting), **(config or {})}
        future = admin.create_topics([NewTopic(topic, partitions, replication,
                                               config={k: str(v) for k, v in settings.items()})])[topic]
        try:
            future.result(30)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise

    Transport._really_create_topic = create


def main(argv: list[str] | None = None) -> int:
    parser = worker_parser(__doc__)
    args = parser.parse_args(argv)

    create_topics_with_admin_api(args.bootstrap)
    codec = default_codec()
    batch = Batch()
    store = open_store(args.store)
    app = faust.App(args.group, broker=f"kafka://{args.bootstrap}", store="memory://", datadir=args.state_dir,
                    topic_partitions=args.partitions, web_enabled=False, consumer_auto_offset_reset="earliest",
                    broker_commit_interval=args.commit_s, processing_guarantee="at_least_once")
    topic = app.topic(args.topic, key_type=bytes, value_type=bytes, key_serializer="raw",
                      value_serializer="raw", partitions=args.partitions)
    users = app.Table("users", default=None, partitions=args.partitions, key_type=bytes, value_type=bytes)

    @app.agent(topic)
    async def user_state(stream: Any) -> None:
        async for payload in stream:
            event = codec.decode_event(payload)
            key = event.user_id.encode()
            raw = users.get(key)
            update = batch.step(pickle.loads(raw) if raw is not None else None, event)
            if not update.applied:
                continue
            users[key] = pickle.dumps(update.state, pickle.HIGHEST_PROTOCOL)
            batch.add(event, update)
            if batch.events >= 500:
                batch.flush(store)

    @app.timer(interval=args.commit_s)
    async def flush() -> None:
        if batch.events:
            batch.flush(store)

    logging.getLogger("faust").setLevel(logging.WARNING)
    sys.argv = [sys.argv[0], "worker", "--loglevel", "warn"]
    app.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
