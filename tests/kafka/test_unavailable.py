"""Publishing when there is no broker: the producer says so in time instead of hanging."""

from __future__ import annotations

import logging
import time

import pytest

from streamrec.kafka import EventProducer, KafkaUnavailable
from streamrec.kafka_topics import ensure_topics, topic_specs
from streamrec_cli.localkafka import free_port


async def test_send_many_raises_kafka_unavailable_when_no_broker_answers() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    began = time.monotonic()
    async with EventProducer(bootstrap, delivery_timeout_s=1.5) as producer:
        with pytest.raises(KafkaUnavailable) as err:
            await producer.send_many("streamrec.events.v1", [(b"u-1", b"a"), (b"u-2", b"b")])
    assert err.value.failed == 2
    assert time.monotonic() - began < 8, "must give up near its delivery timeout"


def test_blocking_send_raises_kafka_unavailable_when_no_broker_answers() -> None:
    producer = EventProducer(f"127.0.0.1:{free_port()}", delivery_timeout_s=1.0)
    try:
        with pytest.raises(KafkaUnavailable):
            producer.send_many_blocking("streamrec.events.v1", [(b"u-1", b"a")])
    finally:
        producer.close(timeout_s=0.5)


def test_topics_cannot_be_made_without_a_broker() -> None:
    with pytest.raises(KafkaUnavailable, match="cannot list topics"):
        ensure_topics(f"127.0.0.1:{free_port()}", topic_specs(local=True), timeout_s=1.0)


def test_production_topic_specs_follow_the_shared_config() -> None:
    specs = {s.name: s for s in topic_specs()}
    local = {s.name: s for s in topic_specs(local=True)}
    from streamrec.config import TOPIC_CATALOG, TOPIC_PARTITIONS

    assert {n: s.partitions for n, s in specs.items()} == TOPIC_PARTITIONS
    assert all(s.replication == 3 and s.config["min.insync.replicas"] == "2" for s in specs.values())
    assert all(s.replication == 1 and s.partitions <= 3 for s in local.values())
    assert specs[TOPIC_CATALOG].config["cleanup.policy"] == "compact"


async def test_send_each_says_every_record_is_unavailable_when_no_broker_answers() -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    async with EventProducer(bootstrap, delivery_timeout_s=1.0) as producer:
        outcomes = await producer.send_each("streamrec.events.v1", [(b"u-1", b"a"), (b"u-2", b"b")])
    assert [type(o) for o in outcomes] == [KafkaUnavailable, KafkaUnavailable]


async def test_once_no_broker_is_up_publishing_fails_at_once() -> None:
    # Issue 11: with the broker down every POST waited the whole delivery timeout before its 503.
    bootstrap = f"127.0.0.1:{free_port()}"
    async with EventProducer(bootstrap, delivery_timeout_s=5.0) as producer:
        first = await producer.send_each("streamrec.events.v1", [(b"u-1", b"a")])
        assert isinstance(first[0], KafkaUnavailable)
        began = time.monotonic()
        again = await producer.send_each("streamrec.events.v1", [(b"u-1", b"b")])
        took = time.monotonic() - began
    assert isinstance(again[0], KafkaUnavailable)
    assert took < 2.5, f"took {took:.2f}s (its delivery timeout is 5 s)"


def test_a_down_broker_is_not_logged_several_times_a_second() -> None:
    # Issue 11: librdkafka logged ~6 lines/s while the broker was down.
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(f"test.librdkafka.{free_port()}")
    logger.propagate = False
    logger.addHandler(Keep())
    producer = EventProducer(f"127.0.0.1:{free_port()}", delivery_timeout_s=1.0, extra_config={"logger": logger})
    try:
        producer.start()
        time.sleep(4.0)
    finally:
        producer.close(timeout_s=0.5)
    assert 1 <= len(records) <= 4, [r.getMessage() for r in records]
