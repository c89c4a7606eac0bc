"""The streamrec topics: the settings production uses, and creating the ones missing.

- ``TOPIC_CONFIGS``: per-topic settings (retention, ``cleanup.policy=compact`` for the catalog;
  the terraform module must agree, a test checks it); partitions from
  ``streamrec.config.TOPIC_PARTITIONS``.
- ``topic_specs()`` / ``ensure_topics()``: the four topics as ``TopicSpec``s and their creation;
  ``local=True`` gives the single-broker variant (replication 1, at most ``LOCAL_MAX_PARTITIONS``
  partitions).

``TOPIC_CONFIGS``, ``PRODUCTION_*``, ``topic_specs`` and ``ensure_topics`` are re-exported by
:mod:`streamrec.kafka`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from streamrec.config import (
    TOPIC_CATALOG,
    TOPIC_DLQ,
    TOPIC_EVENTS,
    TOPIC_IMPRESSIONS,
    TOPIC_PARTITIONS,
    kafka_client_config,
)
from streamrec.kafka_errors import KafkaUnavailable

DAY_MS = 24 * 3600 * 1000
#: A single local broker on two cores gets at most this many partitions per topic.
LOCAL_MAX_PARTITIONS = 3

#: Per-topic settings production uses (the terraform module must agree; a test checks it).
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    # Events are replayable for a week: long enough to rebuild state after a bad deploy.
    TOPIC_EVENTS: {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS), "compression.type": "producer"},
    # The catalog is a table: the latest record per video_id is kept forever.
    TOPIC_CATALOG: {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "retention.ms": "-1"},
    TOPIC_IMPRESSIONS: {"cleanup.policy": "delete", "retention.ms": str(3 * DAY_MS), "compression.type": "producer"},
    # Dead letters wait a month for someone to look at them.
    TOPIC_DLQ: {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
}
PRODUCTION_REPLICATION = 3
PRODUCTION_MIN_INSYNC = 2


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)


def topic_specs(*, local: bool = False) -> list[TopicSpec]:
    """The streamrec topics; ``local`` shrinks them to one broker (replication 1, few partitions)."""
    specs = []
    for name, partitions in TOPIC_PARTITIONS.items():
        config = dict(TOPIC_CONFIGS[name])
        if local:
            specs.append(TopicSpec(name, min(partitions, LOCAL_MAX_PARTITIONS), 1, config | {"min.insync.replicas": "1"}))
        else:
            config["min.insync.replicas"] = str(PRODUCTION_MIN_INSYNC)
            specs.append(TopicSpec(name, partitions, PRODUCTION_REPLICATION, config))
    return specs


def ensure_topics(bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 30.0) -> list[str]:
    """Create the topics that do not exist yet; existing ones are left as they are.

    Returns the names created. Idempotent: a second call creates nothing.
    """
    admin = AdminClient(kafka_client_config(bootstrap))
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise KafkaUnavailable(f"cannot list topics on {bootstrap}: {exc}") from exc
    wanted = [
        NewTopic(s.name, num_partitions=s.partitions, replication_factor=s.replication, config=s.config)
        for s in specs
        if s.name not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # lost a race: fine
                raise KafkaUnavailable(f"cannot create topic {name}: {exc}") from exc
    # Creation is asynchronous on the broker: wait until metadata shows every partition has a leader.
    deadline = time.monotonic() + timeout_s
    for spec in wanted:
        while True:
            topic = admin.list_topics(topic=spec.topic, timeout=timeout_s).topics.get(spec.topic)
            if topic is not None and topic.error is None and len(topic.partitions) == spec.num_partitions and all(
                p.leader >= 0 for p in topic.partitions.values()
            ):
                break
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"topic {spec.topic} has no leader after {timeout_s}s")
            time.sleep(0.05)
    return created
