"""Through the real broker: producer -> Kafka -> consumer -> codec, unchanged."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from streamrec.config import (
    TOPIC_CATALOG,
    TOPIC_DLQ,
    TOPIC_EVENTS,
    TOPIC_IMPRESSIONS,
    TOPIC_PARTITIONS,
)
from streamrec.events.codec import default_codec
from streamrec.events.errors import EventDecodeError
from streamrec.events.model import DeadLetter, EventType
from streamrec.kafka import DeliveryFailed, EventProducer
from streamrec.kafka_topics import (
    LOCAL_MAX_PARTITIONS,
    TopicSpec,
    ensure_topics,
    topic_specs,
)
from tests.events.samples import sample_catalog_item, sample_event, sample_impression
from tests.fixtures.kafka import RunningBroker, read_records

pytestmark = pytest.mark.kafka


def fresh_topic(broker: RunningBroker, partitions: int = 3) -> str:
    """An empty topic of this test's own, so tests sharing the broker never see each other's data."""
    name = f"test.{uuid.uuid4().hex[:12]}"
    assert ensure_topics(broker.bootstrap, [TopicSpec(name, partitions, 1)]) == [name]
    return name


async def test_every_event_kind_round_trips_keyed_by_user(kafka_broker: RunningBroker) -> None:
    codec = default_codec()
    topic = fresh_topic(kafka_broker)
    events = [sample_event(kind, user_id=f"u-{i % 4}", n=i) for i, kind in enumerate(EventType)]
    async with EventProducer(kafka_broker.bootstrap) as producer:
        await producer.send_many(topic, [(e.user_id, codec.encode(e)) for e in events])
    records = read_records(kafka_broker.bootstrap, topic, expected=len(events))
    assert len(records) == len(events)
    decoded = {}
    for record in records:
        event = codec.decode_event(record.value or b"")
        assert record.key == event.user_id.encode()
        decoded[event.event_id] = event
    assert decoded == {e.event_id: e for e in events}


async def test_one_users_events_stay_in_order_on_one_partition(kafka_broker: RunningBroker) -> None:
    codec = default_codec()
    topic = fresh_topic(kafka_broker, partitions=3)
    events = [sample_event(EventType.HEARTBEAT, user_id=f"u-{i % 5}", n=i) for i in range(200)]
    async with EventProducer(kafka_broker.bootstrap) as producer:
        await producer.send_many(topic, [(e.user_id, codec.encode(e)) for e in events])
    records = read_records(kafka_broker.bootstrap, topic, expected=len(events))
    partitions_of: dict[str, set[int]] = {}
    order_of: dict[str, list[int]] = {}
    for record in records:  # partition order, offsets ascending
        event = codec.decode_event(record.value or b"")
        partitions_of.setdefault(event.user_id, set()).add(record.partition)
        order_of.setdefault(event.user_id, []).append(event.timestamp)
    assert all(len(p) == 1 for p in partitions_of.values())
    assert len(set().union(*partitions_of.values())) > 1, "five users should spread over partitions"
    for user, times in order_of.items():
        assert times == sorted(times), user


async def test_impressions_and_catalog_items_round_trip_on_their_topics(kafka_broker: RunningBroker) -> None:
    codec = default_codec()
    impression, item = sample_impression(user_id=f"u-{uuid.uuid4().hex[:6]}"), sample_catalog_item()
    async with EventProducer(kafka_broker.bootstrap) as producer:
        await producer.send(TOPIC_IMPRESSIONS, impression.user_id, codec.encode(impression))
        await producer.send(TOPIC_CATALOG, item.video_id, codec.encode(item))
    seen = [codec.decode(r.value or b"") for r in read_records(kafka_broker.bootstrap, TOPIC_IMPRESSIONS)]
    assert impression in seen
    catalog = [(r.key, codec.decode(r.value or b"")) for r in read_records(kafka_broker.bootstrap, TOPIC_CATALOG)]
    assert (item.video_id.encode(), item) in catalog


async def test_a_corrupt_record_is_rejected_by_the_codec_and_can_go_to_the_dlq(kafka_broker: RunningBroker) -> None:
    codec = default_codec()
    topic = fresh_topic(kafka_broker, partitions=1)
    good = codec.encode(sample_event(EventType.PLAY))
    async with EventProducer(kafka_broker.bootstrap) as producer:
        await producer.send_many(topic, [(b"u-7", good), (b"u-7", good[:-5]), (b"u-7", b'{"json": true}')])
    records = read_records(kafka_broker.bootstrap, topic, expected=3)
    assert codec.decode(records[0].value or b"") == sample_event(EventType.PLAY)
    with pytest.raises(EventDecodeError) as truncated:
        codec.decode(records[1].value or b"")
    assert truncated.value.field == "duration_sec" and "truncated" in truncated.value.reason
    with pytest.raises(EventDecodeError) as not_avro:
        codec.decode(records[2].value or b"")
    assert not_avro.value.field == "header"

    # What a pipeline does with it: a dead letter carrying the original bytes and the reason.
    bad = records[1]
    letter = DeadLetter(
        original=bad.value or b"",
        topic=bad.topic,
        partition=bad.partition,
        offset=bad.offset,
        reason=truncated.value.reason,
        field=truncated.value.field,
        failed_at=1,
        original_key=bad.key,
    )
    dlq_topic = fresh_topic(kafka_broker, partitions=1)
    async with EventProducer(kafka_broker.bootstrap) as producer:
        await producer.send(dlq_topic, bad.key, codec.encode(letter))
    [stored] = read_records(kafka_broker.bootstrap, dlq_topic, expected=1)
    assert codec.decode(stored.value or b"") == letter


def test_streamrec_topics_have_their_settings(kafka_broker: RunningBroker) -> None:
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    topics = admin.list_topics(timeout=10).topics
    for name, production in TOPIC_PARTITIONS.items():
        assert len(topics[name].partitions) == min(production, LOCAL_MAX_PARTITIONS), name
    resources = [ConfigResource("topic", name) for name in (TOPIC_CATALOG, TOPIC_EVENTS, TOPIC_DLQ)]
    configs = {r.name: f.result(timeout=10) for r, f in admin.describe_configs(resources).items()}
    assert configs[TOPIC_CATALOG]["cleanup.policy"].value == "compact"
    assert configs[TOPIC_EVENTS]["cleanup.policy"].value == "delete"
    assert configs[TOPIC_EVENTS]["retention.ms"].value == str(7 * 24 * 3600 * 1000)
    assert configs[TOPIC_DLQ]["retention.ms"].value == str(30 * 24 * 3600 * 1000)


def test_creating_topics_again_changes_nothing(kafka_broker: RunningBroker) -> None:
    assert ensure_topics(kafka_broker.bootstrap, topic_specs(local=True)) == []


async def test_a_record_the_broker_cannot_take_fails_for_good(kafka_broker: RunningBroker) -> None:
    topic = fresh_topic(kafka_broker, partitions=1)
    async with EventProducer(kafka_broker.bootstrap) as producer:
        with pytest.raises(DeliveryFailed):
            await producer.send(topic, b"u-1", b"x" * 2_000_000)  # over the 1 MB message limit


def test_blocking_send_for_tools(kafka_broker: RunningBroker) -> None:
    codec = default_codec()
    topic = fresh_topic(kafka_broker, partitions=1)
    events = [sample_event(EventType.LIKE, n=i) for i in range(50)]
    with EventProducer(kafka_broker.bootstrap) as producer:
        assert producer.send_many_blocking(topic, ((e.user_id, codec.encode(e)) for e in events)) == 50
    assert [codec.decode(r.value or b"") for r in read_records(kafka_broker.bootstrap, topic, expected=50)] == events


async def test_a_full_producer_queue_waits_instead_of_failing(kafka_broker: RunningBroker) -> None:
    codec = default_codec()
    topic = fresh_topic(kafka_broker, partitions=1)
    events = [sample_event(EventType.HEARTBEAT, n=i) for i in range(300)]
    # A queue of 20 records: most produce() calls meet BufferError and must wait for deliveries.
    tiny_queue = {"queue.buffering.max.messages": 20}
    async with EventProducer(kafka_broker.bootstrap, extra_config=tiny_queue) as producer:
        await producer.send_many(topic, [(e.user_id, codec.encode(e)) for e in events])
    stored = read_records(kafka_broker.bootstrap, topic, expected=len(events))
    assert [codec.decode(r.value or b"") for r in stored] == events


async def test_each_record_of_a_batch_gets_its_own_outcome(kafka_broker: RunningBroker) -> None:
    # Issue 11, defect 4: one refused record made the whole batch an error although the records
    # before it were queued (and delivered); the caller could not tell which were in Kafka.
    topic = fresh_topic(kafka_broker, partitions=1)
    records = [(b"u-1", b"first"), (b"u-1", b"x" * 2_000_000), (b"u-1", b"third")]
    async with EventProducer(kafka_broker.bootstrap) as producer:
        outcomes = await producer.send_each(topic, records)
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], DeliveryFailed)
    stored = read_records(kafka_broker.bootstrap, topic, expected=2, timeout_s=10)
    assert [r.value for r in stored] == [b"first", b"third"]
