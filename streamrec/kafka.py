"""Kafka at the edges of streamrec: a producer that confirms delivery.

- ``EventProducer``: confluent-kafka with ``enable.idempotence=true`` and ``acks=all``. Its
  ``await send_many(topic, [(key, value), ...])`` returns only once the broker acknowledged every
  record, and raises ``KafkaUnavailable`` when that does not happen in time; ``send_each`` tells
  the outcome of every record instead (for answers that must say which records are in Kafka). A background thread
  polls the client so delivery callbacks resolve asyncio futures without blocking the loop;
  ``ping()`` tells whether a broker answers (readiness probes).

confluent-kafka errors stay inside this module: callers see ``KafkaUnavailable`` (broker
unreachable or too slow; retrying later may work) or ``DeliveryFailed`` (the broker refused this
record; retrying will not help).

The topics' settings and their creation (``topic_specs()``, ``ensure_topics()``) are in
:mod:`streamrec.kafka_topics`, the errors in :mod:`streamrec.kafka_errors`; both are re-exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Self

from confluent_kafka import (
    KafkaError,
    KafkaException,
    Message,
    Producer,
)

from streamrec.config import kafka_client_config
from streamrec.kafka_errors import DeliveryFailed, KafkaPublishError, KafkaUnavailable
from streamrec.kafka_topics import (
    PRODUCTION_MIN_INSYNC,
    PRODUCTION_REPLICATION,
    TOPIC_CONFIGS,
    ensure_topics,
    topic_specs,
)

__all__ = [
    "PRODUCTION_MIN_INSYNC",
    "PRODUCTION_REPLICATION",
    "TOPIC_CONFIGS",
    "DeliveryFailed",
    "EventProducer",
    "KafkaPublishError",
    "KafkaUnavailable",
    "QuietLog",
    "ensure_topics",
    "produce_when_room",
    "topic_specs",
]

STATS_INTERVAL_MS = 1000


_UNAVAILABLE_CODES = frozenset(
    {KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT}
)


def produce_when_room(
    producer: Producer, topic: str, value: bytes, *, key: bytes | str | None = None, timestamp: int | None = None,
    on_delivery: Callable[[KafkaError | None, Message], None] | None = None, timeout_s: float = 30.0,
    poll_s: float = 0.05,
) -> None:
    """``producer.produce`` that waits while the local queue is full (``BufferError``), serving
    deliveries so it drains, for at most ``timeout_s``; then ``KafkaUnavailable``. The one copy of
    that loop for every synchronous producer (the event producer, the pipeline's DLQ writer,
    benches and tests); the async path in :class:`EventProducer` yields to the event loop instead."""
    extra: dict[str, object] = {}
    if timestamp is not None:
        extra["timestamp"] = timestamp
    if on_delivery is not None:
        extra["on_delivery"] = on_delivery
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            producer.produce(topic, value=value, key=key, **extra)  # type: ignore[arg-type]
            producer.poll(0)
            return
        except BufferError:
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"producer queue to {topic} stayed full: the broker is not keeping up") from None
            producer.poll(poll_s)


class QuietLog:
    """A librdkafka ``logger`` that lets each kind of line through once per ``window_s``.

    While a broker is down librdkafka reports every reconnect attempt (several lines a second);
    one line per kind and window says the same. Lines differing only in numbers (ports, times)
    are the same kind; the next line of a kind let through tells how many were held back.
    """

    def __init__(self, logger: logging.Logger | logging.LoggerAdapter[logging.Logger], window_s: float = 30.0) -> None:
        self.logger = logger
        self.window_s = window_s
        self._last: dict[str, tuple[float, int]] = {}  # kind -> (last let through, held back since)
        self._lock = threading.Lock()

    def log(self, level: int, msg: str, *args: object, **kwargs: object) -> None:
        text = msg % args if args else msg
        kind = _DIGITS.sub("#", text)
        now = time.monotonic()
        with self._lock:
            last, held = self._last.get(kind, (-math.inf, 0))
            if now - last < self.window_s:
                self._last[kind] = (last, held + 1)
                return
            if len(self._last) > 1000:  # kinds are few; this only bounds a flood of novel lines
                self._last.clear()
            self._last[kind] = (now, 0)
        suffix = f" ({held} like it held back in {self.window_s:.0f}s)" if held else ""
        self.logger.log(level, "%s%s", text, suffix)


_DIGITS = re.compile(r"\d+")
LIBRDKAFKA_LOG = logging.getLogger("streamrec.librdkafka")


class EventProducer:
    """Publishes records and tells when the broker has them.

    Use it as ``async with EventProducer(bootstrap) as producer:`` (or ``start()``/``close()``),
    e.g. from an aiohttp ``cleanup_ctx``. ``delivery_timeout_s`` bounds how long a record may wait
    for its acknowledgement, inside librdkafka (``message.timeout.ms``) and in ``send_many``.
    A record that timed out may still reach the broker later (the client retries); consumers
    deduplicate by ``event_id``, so a client retry after ``KafkaUnavailable`` is safe.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str = "streamrec",
        delivery_timeout_s: float = 10.0,
        linger_ms: int = 5,
        extra_config: dict[str, object] | None = None,
    ) -> None:
        self.delivery_timeout_s = delivery_timeout_s
        config: dict[str, object] = {
            **kafka_client_config(bootstrap),
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            "compression.type": "lz4",
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "socket.connection.setup.timeout.ms": int(min(delivery_timeout_s, 10.0) * 1000),
            # A broker back from an outage is found within a second (the default backs off to 10 s).
            "reconnect.backoff.max.ms": 1000,
            # Broker states, for knowing when one is up again (see available).
            "statistics.interval.ms": STATS_INTERVAL_MS,
            "error_cb": self._on_error,
            "stats_cb": self._on_stats,
        }
        config.update(extra_config or {})
        logger = config.get("logger", LIBRDKAFKA_LOG)
        if not isinstance(logger, QuietLog):
            config["logger"] = QuietLog(logger)  # type: ignore[arg-type]
        self._down = threading.Event()  # every broker connection is down (librdkafka said so)
        self._inflight: dict[asyncio.Future[None], asyncio.AbstractEventLoop] = {}
        self._inflight_lock = threading.Lock()
        self._producer = Producer(config)
        self._closed = threading.Event()
        self._poller: threading.Thread | None = None

    # -- broker availability --------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """False from librdkafka's "all brokers down" until a broker is seen up again."""
        return not self._down.is_set()

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._down.set()
            # Records waiting for an ack will not get one soon: answer them now ("retry": they may
            # still be stored later; a resend under the same event_id is deduplicated downstream).
            with self._inflight_lock:
                waiting = list(self._inflight.items())
            for future, loop in waiting:
                with contextlib.suppress(RuntimeError):  # that loop has closed: nobody waits
                    loop.call_soon_threadsafe(_settle, future, err)

    def _on_stats(self, stats_json: str) -> None:
        if not self._down.is_set():
            return
        try:
            brokers = json.loads(stats_json).get("brokers", {})
        except ValueError:
            return
        if any(b.get("state") == "UP" for b in brokers.values()):
            self._down.clear()

    def ping(self, timeout_s: float = 1.0) -> None:
        """Reads the cluster's metadata over this producer's connections (blocking): returns when a
        broker answers, ``KafkaUnavailable`` when none does within ``timeout_s``."""
        try:
            self._producer.list_topics(timeout=timeout_s)
        except KafkaException as e:
            raise KafkaUnavailable(f"no broker metadata: {e}") from e

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the thread that serves delivery callbacks (needed by ``send_many``)."""
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll_loop, name="kafka-delivery", daemon=True)
            self._poller.start()
        return self

    def _poll_loop(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def close(self, timeout_s: float = 10.0) -> int:
        """Flush what is queued (up to ``timeout_s``) and stop; returns records left unsent."""
        if self._closed.is_set():
            return 0
        left = self._producer.flush(timeout_s)
        self._closed.set()
        if self._poller is not None:
            self._poller.join(timeout=1.0)
            self._poller = None
        if not left and hasattr(self._producer, "close"):  # confluent-kafka >= 2.12
            # Without it the client lingers until garbage-collected, reconnecting to a gone broker.
            self._producer.close()
        return int(left)

    async def __aenter__(self) -> Self:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- publishing -----------------------------------------------------------------------------

    def _produce_blocking(
        self, topic: str, key: bytes | str | None, value: bytes, on_delivery: Callable[[KafkaError | None, Message], None]
    ) -> None:
        produce_when_room(self._producer, topic, value, key=key, on_delivery=on_delivery,
                          timeout_s=self.delivery_timeout_s)

    async def send_each(
        self, topic: str, records: Sequence[tuple[bytes | str | None, bytes]]
    ) -> list[KafkaPublishError | None]:
        """Publish ``(key, value)`` records; the outcome of each, once every one is settled.

        ``None``: the broker acknowledged the record. ``KafkaUnavailable``: not acknowledged
        within ``delivery_timeout_s`` (not sent, or sent and maybe stored: a retry with the same
        record is safe, consumers deduplicate by ``event_id``). ``DeliveryFailed``: the broker or
        the client refused this record for good. One record's failure never stops the others, so
        the caller knows exactly which records are in Kafka. Order per key is kept (idempotent
        producer).
        """
        if not records:
            return []
        self.start()
        if not self.available:  # fail at once rather than after the delivery timeout
            return [KafkaUnavailable(f"no Kafka broker is up: not sent to {topic}", 1) for _ in records]
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[None]] = [loop.create_future() for _ in records]
        with self._inflight_lock:
            self._inflight.update(dict.fromkeys(futures, loop))
        try:
            return await self._send_each(topic, records, loop, futures)
        finally:
            with self._inflight_lock:
                for future in futures:
                    self._inflight.pop(future, None)

    async def _send_each(
        self, topic: str, records: Sequence[tuple[bytes | str | None, bytes]], loop: asyncio.AbstractEventLoop,
        futures: list[asyncio.Future[None]],
    ) -> list[KafkaPublishError | None]:

        def resolver(future: asyncio.Future[None]):  # type: ignore[no-untyped-def]
            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                loop.call_soon_threadsafe(_settle, future, err)

            return on_delivery

        queue_full = False
        for (key, value), future in zip(records, futures, strict=True):
            deadline = time.monotonic() + self.delivery_timeout_s
            while not queue_full:
                try:
                    self._producer.produce(topic, value=value, key=key, on_delivery=resolver(future))
                    self._producer.poll(0)
                    break
                except BufferError:
                    # The local queue is full. Yield to the loop (never block it) while the
                    # delivery thread drains the queue, up to the delivery deadline.
                    if time.monotonic() > deadline:
                        queue_full = True  # this record and the rest are not sent
                    else:
                        await asyncio.sleep(0.01)
                except KafkaException as exc:  # refused by the client (too large, ...): this one only
                    future.set_exception(DeliveryFailed(f"cannot produce to {topic}: {exc}", 1))
                    break
            if queue_full:
                future.set_exception(KafkaUnavailable(
                    f"not sent: the producer queue to {topic} stayed full (the broker is not keeping up)", 1))
        await asyncio.wait(futures, timeout=self.delivery_timeout_s + 2.0)
        outcomes: list[KafkaPublishError | None] = []
        for future in futures:
            if not future.done():
                future.cancel()  # a late delivery report finds it done and is ignored
                outcomes.append(KafkaUnavailable(f"not acknowledged by {topic} in time", 1))
                continue
            error = future.exception()
            outcomes.append(error if isinstance(error, KafkaPublishError) or error is None
                            else DeliveryFailed(str(error), 1))
        return outcomes

    async def send_many(self, topic: str, records: Sequence[tuple[bytes | str | None, bytes]]) -> None:
        """Publish ``(key, value)`` records; return once the broker acknowledged every one of them.

        Raises ``KafkaUnavailable`` when acknowledgements do not arrive within ``delivery_timeout_s``
        and ``DeliveryFailed`` when the broker refused a record (``.failed`` counts the records not
        acknowledged; the others are in Kafka). Callers that must tell which records made it use
        :meth:`send_each`.
        """
        errors = [e for e in await self.send_each(topic, records) if e is not None]
        if errors:
            first = errors[0]
            raise type(first)(f"{len(errors)} of {len(records)} records to {topic} failed: {first}", len(errors))

    async def send(self, topic: str, key: bytes | str | None, value: bytes) -> None:
        await self.send_many(topic, [(key, value)])

    def send_many_blocking(self, topic: str, records: Iterable[tuple[bytes | str | None, bytes]]) -> int:
        """For scripts and tools: publish, flush and raise on any failure; returns the count sent."""
        failures: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(err)

        count = 0
        for key, value in records:
            try:
                self._produce_blocking(topic, key, value, on_delivery)
            except KafkaException as exc:
                raise DeliveryFailed(f"cannot produce to {topic}: {exc}", failed=count + 1) from exc
            count += 1
        left = self._producer.flush(self.delivery_timeout_s + 2.0)
        if left:
            raise KafkaUnavailable(f"{left} of {count} records to {topic} not acknowledged in time", left)
        if failures:
            err = failures[0]
            cls = KafkaUnavailable if err.code() in _UNAVAILABLE_CODES else DeliveryFailed
            raise cls(f"{len(failures)} of {count} records to {topic} failed: {err.str()}", len(failures))
        return count


def _settle(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():  # send_many gave up on it already
        return
    if err is None:
        future.set_result(None)
    elif err.code() in _UNAVAILABLE_CODES:
        future.set_exception(KafkaUnavailable(err.str(), 1))
    else:
        future.set_exception(DeliveryFailed(err.str(), 1))
