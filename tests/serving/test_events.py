"""POST /v1/events, PUT preferences, impressions and /readyz against the real app and the real broker."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import quote

import pytest

from serving.keys import STORE, TRENDING
from streamrec.config import TOPIC_EVENTS, TOPIC_IMPRESSIONS
from streamrec.events.codec import default_codec
from streamrec.events.model import EventType, Impression, UserEvent
from tests.fixtures.kafka import read_records
from tests.fixtures.serving import free_port, service_token, token

CODEC = default_codec()


def heartbeat(user: str = "u1", **overrides: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "user_id": user, "event_type": "heartbeat", "video_id": "m3",
            "timestamp": time.time() - 5, "position_sec": 455, "duration_sec": 5400, **overrides}


async def in_topic(bootstrap: str, topic: str, event_ids: set[str]) -> dict[str, tuple[bytes | None, Any]]:
    """The records of ``topic`` whose event_id is one of ``event_ids``: id -> (key, decoded record)."""
    records = await asyncio.to_thread(read_records, bootstrap, topic)
    found = {}
    for record in records:
        decoded = CODEC.decode(record.value or b"")
        if decoded.event_id in event_ids:
            found[decoded.event_id] = (record.key, decoded)
    return found


async def test_one_event_is_acknowledged_only_once_durable(feed_world, serve, kafka_broker):
    event = heartbeat()
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        response = await client.post("/v1/events", json=event, headers=token("u1"))
        assert response.status == 202, await response.text()
        assert await response.json() == {"accepted": 1, "event_ids": [event["event_id"]], "events": [
            {"index": 0, "event_id": event["event_id"], "status": "accepted"}]}
    found = await in_topic(kafka_broker.bootstrap, TOPIC_EVENTS, {event["event_id"]})
    key, decoded = found[event["event_id"]]
    assert key == b"u1"
    assert isinstance(decoded, UserEvent)
    assert decoded.event_type is EventType.HEARTBEAT and decoded.video_id == "m3" and decoded.position_sec == 455
    assert decoded.timestamp == round(event["timestamp"] * 1000)


async def test_a_batch_is_accepted_whole_in_both_shapes(feed_world, serve, kafka_broker):
    bare = [heartbeat(), heartbeat(event_type="play", position_sec=0), {"user_id": "u1", "event_type": "search",
                                                                      "query": "space", "timestamp": time.time()}]
    wrapped = {"events": [heartbeat(), heartbeat()]}
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        first = await client.post("/v1/events", json=bare, headers=token("u1"))
        second = await client.post("/v1/events", json=wrapped, headers=token("u1"))
        assert first.status == 202 and second.status == 202
        one, two = await first.json(), await second.json()
        metrics = await (await client.get("/metrics")).text()
    assert one["accepted"] == 3 and two["accepted"] == 2
    generated = one["event_ids"][2]
    assert uuid.UUID(generated)  # made by the server when the client sent none
    ids = set(one["event_ids"]) | set(two["event_ids"])
    assert set(await in_topic(kafka_broker.bootstrap, TOPIC_EVENTS, ids)) == ids
    assert 'streamrec_events_accepted_total{event_type="heartbeat"} 3.0' in metrics


async def test_one_invalid_event_rejects_the_whole_batch_with_field_errors(feed_world, serve, kafka_broker):
    good = heartbeat()
    bad = heartbeat(position_sec=-3)
    worse = {"user_id": "u1", "event_type": "teleport", "timestamp": "yesterday"}
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        response = await client.post("/v1/events", json=[good, bad, worse], headers=token("u1"))
        body = await response.json()
    assert response.status == 400 and body["error"] == "invalid_events"
    where = {(e["index"], e["field"]) for e in body["errors"]}
    assert (1, "position_sec") in where and (2, "event_type") in where and (2, "timestamp") in where
    assert not any(e["index"] == 0 for e in body["errors"])
    assert await in_topic(kafka_broker.bootstrap, TOPIC_EVENTS, {good["event_id"]}) == {}


async def test_posting_for_another_profile_is_forbidden_unless_service(feed_world, serve, kafka_broker):
    theirs = heartbeat(user="u2")
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        denied = await client.post("/v1/events", json=[heartbeat(), theirs], headers=token("u1"))
        assert denied.status == 403
        assert (await denied.json())["errors"][0] == {"index": 1, "field": "user_id", "reason": "not the token's profile"}
        allowed = await client.post("/v1/events", json=theirs, headers=service_token())
        assert allowed.status == 202
        anonymous = await client.post("/v1/events", json=theirs)
        assert anonymous.status == 401 and anonymous.headers["WWW-Authenticate"].startswith("Bearer")


async def test_size_limits(feed_world, serve, kafka_broker):
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        too_many = await client.post("/v1/events", json=[heartbeat() for _ in range(501)], headers=token("u1"))
        assert too_many.status == 413
        assert "at most 500" in (await too_many.json())["message"]
        most = await client.post("/v1/events", json=[heartbeat() for _ in range(500)], headers=token("u1"))
        assert most.status == 202 and (await most.json())["accepted"] == 500
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap, max_body_bytes=64 * 1024) as client:
        too_big = await client.post("/v1/events", json=heartbeat(query="x" * 70_000), headers=token("u1"))
        assert too_big.status == 413
        body = await too_big.json()
        assert body["error"] == "payload_too_large" and "65536" in body["message"]


async def test_malformed_bodies(feed_world, serve, kafka_broker):
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        not_json = await client.post("/v1/events", data=b"{oops", headers={**token("u1"), "Content-Type": "application/json"})
        assert not_json.status == 400 and (await not_json.json())["error"] == "invalid_json"
        wrong_type = await client.post("/v1/events", data=b"a=b", headers={**token("u1"), "Content-Type": "text/plain"})
        assert wrong_type.status == 415
        empty = await client.post("/v1/events", json=[], headers=token("u1"))
        assert empty.status == 400 and (await empty.json())["errors"][0]["field"] == "events"


async def test_kafka_down_answers_503_with_retry_after(feed_world, serve):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    async with serve(feed_world.store_url, kafka=dead, kafka_ack_timeout_s=1.0, retry_after_s=7) as client:
        response = await client.post("/v1/events", json=heartbeat(), headers=token("u1"))
        assert response.status == 503
        assert response.headers["Retry-After"] == "7"
        assert (await response.json())["error"] == "kafka_unavailable"
        prefs = await client.put("/v1/users/u1/preferences", json={"genres": ["Drama"]}, headers=token("u1"))
        assert prefs.status == 503
        feed = await client.get("/v1/users/u1/feed", headers=token("u1"))  # the feed does not need Kafka
        assert feed.status == 200 and (await feed.json())["degraded"] is False
        ready = await client.get("/readyz")  # reads do not need Kafka: still ready
        assert ready.status == 200 and (await ready.json())["checks"]["store"] == "ok"
        assert (await client.get("/readyz/ingest")).status == 503


async def test_preferences_are_published_as_an_event(feed_world, serve, kafka_broker):
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        response = await client.put("/v1/users/u2/preferences", json={"genres": ["Drama", "Comedy"]}, headers=token("u2"))
        assert response.status == 202, await response.text()
        body = await response.json()
        forbidden = await client.put("/v1/users/u1/preferences", json={"genres": ["Drama"]}, headers=token("u2"))
        assert forbidden.status == 403
        empty = await client.put("/v1/users/u2/preferences", json={"genres": []}, headers=token("u2"))
        assert empty.status == 400 and (await empty.json())["errors"][0]["field"] == "genres"
        unknown = await client.put("/v1/users/u2/preferences", json={"genres": ["Drama"], "mood": "sad"},
                                   headers=token("u2"))
        assert unknown.status == 400 and (await unknown.json())["errors"][0]["field"] == "mood"
    found = await in_topic(kafka_broker.bootstrap, TOPIC_EVENTS, {body["event_id"]})
    key, event = found[body["event_id"]]
    assert key == b"u2" and event.event_type is EventType.SET_PREFERENCES and event.genres == ("Drama", "Comedy")


async def test_every_feed_served_produces_impressions(feed_world, serve, kafka_broker):
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        response = await client.get("/v1/users/u1/feed?region=US", headers=token("u1"))
        feed = await response.json()
        request_id = response.headers["X-Request-Id"]
        # Produced in the background: wait for the publisher, not for the response.
        for _ in range(100):
            metrics = await (await client.get("/metrics")).text()
            if 'streamrec_impressions_total{outcome="sent"}' in metrics:
                break
            await asyncio.sleep(0.1)
    records = await asyncio.to_thread(read_records, kafka_broker.bootstrap, TOPIC_IMPRESSIONS)
    mine = [CODEC.decode(r.value or b"") for r in records]
    mine = [i for i in mine if isinstance(i, Impression) and i.request_id == request_id]
    assert [(i.row_type, list(i.video_ids)) for i in mine] == [
        (row["type"], [item["video_id"] for item in row["items"]]) for row in feed["rows"]]
    assert all(i.user_id == "u1" and i.region == "US" for i in mine)


async def test_readyz_is_about_reads_and_ingest_health_about_kafka(feed_world, serve, kafka_broker):
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap) as client:
        ready = await client.get("/readyz")
        assert ready.status == 200, await ready.text()
        assert await ready.json() == {"ready": True, "checks": {"store": "ok", "fallback": "ok"}}
        ingest = await client.get("/readyz/ingest")
        assert ingest.status == 200 and await ingest.json() == {"ready": True, "checks": {"kafka": "ok"}}
        assert (await client.get("/livez")).status == 200


async def test_readyz_does_not_fail_when_kafka_is_down(feed_world, serve):
    # Issue 11, defect 5: a broker outage took every pod out of the load balancer while the
    # feed still answered.
    dead = f"127.0.0.1:{free_port()}"
    async with serve(feed_world.store_url, kafka=dead) as client:
        ready = await client.get("/readyz")
        assert ready.status == 200, await ready.text()
        ingest = await client.get("/readyz/ingest")
        assert ingest.status == 503 and await ingest.json() == {"ready": False, "checks": {"kafka": "unavailable"}}
        assert (await client.get("/livez")).status == 200


async def test_readyz_with_the_store_down_tells_no_internals(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        client.app[STORE].store.close()
        down = await client.get("/readyz")
        text = await down.text()
        # Degraded answers are still possible (the trending snapshot is warm): still ready.
        assert down.status == 200 and await down.json() == {
            "ready": True, "checks": {"store": "unavailable", "fallback": "ok"}}
        assert "state.db" not in text and "closed" not in text
        client.app[TRENDING].lists = {}  # nothing to fall back on either: not ready
        empty = await client.get("/readyz")
        assert empty.status == 503 and await empty.json() == {
            "ready": False, "checks": {"store": "unavailable", "fallback": "empty"}}


# -- issue 11: hostile input answers 400 naming the field, never 500 -----------------------------


async def test_json_nested_too_deep_is_a_400_naming_the_body(feed_world, serve):
    deep = b"[" * 1100 + b"]" * 1100
    nested_event = b'{"events": ' + b"[" * 1100 + b"]" * 1100 + b"}"
    async with serve(feed_world.store_url) as client:
        for body in (deep, nested_event):
            response = await client.post("/v1/events", data=body,
                                         headers={**token("u1"), "Content-Type": "application/json"})
            assert response.status == 400, await response.text()
            error = (await response.json())["errors"][0]
            assert error["field"] == "body" and "nested" in error["reason"]
        prefs = await client.put("/v1/users/u1/preferences", data=deep,
                                 headers={**token("u1"), "Content-Type": "application/json"})
        assert prefs.status == 400


async def test_huge_integers_are_a_400_naming_the_field(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        for name in ("position_sec", "duration_sec", "timestamp"):
            body = ('{"user_id": "u1", "event_type": "heartbeat", "video_id": "m3", "timestamp": %s, '
                    '"position_sec": %s, "duration_sec": %s}')
            values = {"timestamp": int(time.time()), "position_sec": 10, "duration_sec": 100} | {name: 10**400}
            raw = body % (values["timestamp"], values["position_sec"], values["duration_sec"])
            response = await client.post("/v1/events", data=raw.encode(),
                                         headers={**token("u1"), "Content-Type": "application/json"})
            assert response.status == 400, await response.text()
            assert {e["field"] for e in (await response.json())["errors"]} == {name}


async def test_events_refuse_the_ids_the_read_routes_refuse(feed_world, serve):
    dead = f"127.0.0.1:{free_port()}"
    async with serve(feed_world.store_url, kafka=dead, kafka_ack_timeout_s=1.0) as client:
        for bad in ("../../x<script>", "a b", "new\nline"):
            read = await client.get(f"/v1/users/{quote(bad, safe='')}/feed", headers=service_token())
            assert read.status == 400
            response = await client.post("/v1/events", json=heartbeat(bad), headers=service_token())
            assert response.status == 400, await response.text()
            assert (await response.json())["errors"][0]["field"] == "user_id"
            response = await client.post("/v1/events", json=heartbeat(video_id=bad), headers=token("u1"))
            assert response.status == 400
            assert (await response.json())["errors"][0]["field"] == "video_id"


# -- issue 11, defect 4: every answer says, per event, its id and whether it is in Kafka ----------


async def test_kafka_down_lists_every_event_id_so_a_retry_resends_the_same_ids(feed_world, serve):
    dead = f"127.0.0.1:{free_port()}"
    given = heartbeat()
    server_made = {k: v for k, v in heartbeat().items() if k != "event_id"}
    async with serve(feed_world.store_url, kafka=dead, kafka_ack_timeout_s=1.0) as client:
        response = await client.post("/v1/events", json=[given, server_made], headers=token("u1"))
        body = await response.json()
    assert response.status == 503 and "Retry-After" in response.headers
    assert body["accepted"] == 0
    assert [(e["index"], e["status"]) for e in body["events"]] == [(0, "retry"), (1, "retry")]
    assert body["events"][0]["event_id"] == given["event_id"]
    assert uuid.UUID(body["events"][1]["event_id"])  # the id the server made, for the retry


async def test_a_partly_refused_batch_says_which_events_are_in_kafka(feed_world, serve, kafka_broker):
    # A record over the producer's message size is refused by the client while the others of the
    # same batch are delivered: the answer must say so, event by event.
    small = {"message.max.bytes": 1000}
    big = {"user_id": "u1", "event_type": "set_preferences", "timestamp": time.time(),
           "genres": [f"genre-{i}-" + "x" * 50 for i in range(50)]}
    first, last = heartbeat(), {k: v for k, v in heartbeat().items() if k != "event_id"}
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap, kafka_producer_config=small) as client:
        response = await client.post("/v1/events", json=[first, big, last], headers=token("u1"))
        body = await response.json()
    assert response.status == 502, body
    assert [e["status"] for e in body["events"]] == ["accepted", "refused", "accepted"]
    assert body["accepted"] == 2
    delivered = {body["events"][0]["event_id"], body["events"][2]["event_id"]}
    assert set(await in_topic(kafka_broker.bootstrap, TOPIC_EVENTS, delivered)) == delivered


# -- issue 11, item 8: a per-token rate limit on posting events -----------------------------------


def test_token_buckets_refill_at_their_rate():
    from serving.ratelimit import RateLimits

    limits = RateLimits(rate_per_s=2.0, burst=4, max_keys=2)
    assert limits.take("a", 3, now=0.0) == 0.0
    assert limits.take("a", 2, now=0.0) == pytest.approx(0.5)  # one short: half a second at 2/s
    assert limits.take("a", 2, now=0.5) == 0.0
    assert limits.take("b", 4, now=0.5) == 0.0  # buckets are per key
    assert limits.take("c", 1, now=0.5) == 0.0  # a third key evicts the least recently used
    assert len(limits) == 2


async def test_posting_faster_than_the_token_rate_answers_429_with_retry_after(feed_world, serve, kafka_broker):
    limits = {"events_rate_per_s": 0.5, "events_burst": 3, "max_batch_events": 3}
    async with serve(feed_world.store_url, kafka=kafka_broker.bootstrap, **limits) as client:
        first = await client.post("/v1/events", json=[heartbeat(), heartbeat()], headers=token("u1"))
        second = await client.post("/v1/events", json=heartbeat(), headers=token("u1"))
        over = await client.post("/v1/events", json=heartbeat(), headers=token("u1"))
        other = await client.post("/v1/events", json=heartbeat("u2"), headers=token("u2"))
        gateway = await client.post("/v1/events", json=[heartbeat("u1") for _ in range(3)], headers=service_token())
        body = await over.json()
    assert (first.status, second.status, other.status, gateway.status) == (202, 202, 202, 202)
    assert over.status == 429 and int(over.headers["Retry-After"]) >= 1
    assert body["error"] == "rate_limited" and body["errors"][0]["field"] == "events"
