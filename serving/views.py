"""Request handlers: parse and validate, call one function, map domain errors to HTTP errors."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import secrets
import time
import uuid
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter

from serving import bodies, openapi
from serving.answers import ROW_TYPES
from serving.bodies import BodyError, Preferences
from serving.cache import accepts_gzip
from serving.errors import ApiError
from serving.experiments import UnknownExperiment, viewer_variant
from serving.experiments import results as experiment_results_of
from serving.feed import FeedQuery
from serving.feed_service import dumps, serve_feed
from serving.keys import (
    CONFIG,
    EVENTS_BODY,
    IMPRESSIONS,
    METRICS,
    PRINCIPAL,
    PRODUCER,
    RATE_LIMITS,
    SHARED,
    SIMILAR_ANSWERS,
    STORE,
    TRENDING,
)
from serving.middlewares import require_access
from serving.params import (
    check_id,
    check_known_params,
    choice_param,
    int_param,
    invalid,
    list_param,
    region_param,
)
from serving.titles import (
    SimilarQuery,
    UnknownTitle,
    similar,
    trending,
    trending_document,
)
from streamrec.config import TOPIC_EVENTS
from streamrec.events.codec import default_codec
from streamrec.events.errors import EventValidationError
from streamrec.events.model import EventType, UserEvent
from streamrec.experiments.config import NAME_PATTERN, NAME_RULE
from streamrec.kafka import KafkaPublishError, KafkaUnavailable
from streamrec.store.base import StoreError

JSON = "application/json"
log = logging.getLogger(__name__)


class RequestIds:
    """Request ids unique across processes: 32 hex digits, a random 64-bit prefix per process
    (made again in a forked child) and a counter. ``uuid4()`` reads the kernel's random source on
    every call, a few µs of a cached feed's tens."""

    def __init__(self) -> None:
        self.renew()
        os.register_at_fork(after_in_child=self.renew)

    def renew(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._numbers = itertools.count()

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._numbers):016x}"


next_request_id = RequestIds()


# -- probes and metadata -------------------------------------------------------------------------


async def livez(request: web.Request) -> web.Response:
    """Alive: the event loop answers. Nothing else is checked (a slow store must not restart pods)."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready to serve reads: the store answers, or a degraded answer has titles to show.

    Kafka is not asked: reads never need it (ingest has its own probe, ``/readyz/ingest``), so a
    broker outage does not take the pods that serve feeds out of the load balancer. The body says
    which check failed and nothing else (anyone may call it); the reason goes to the log.
    """
    app = request.app
    try:
        async with asyncio.timeout(1.0):
            await app[STORE].ping()
        store = "ok"
    except (TimeoutError, StoreError) as e:
        log.info("readiness: store unavailable: %s", e or "timeout")
        store = "unavailable"
    fallback = "ok" if app[TRENDING].lists else "empty"
    ready = store == "ok" or fallback == "ok"
    return web.json_response({"ready": ready, "checks": {"store": store, "fallback": fallback}},
                             status=200 if ready else 503)


async def readyz_ingest(request: web.Request) -> web.Response:
    """Ingest health: the Kafka cluster's metadata can be read (``POST /v1/events`` can succeed)."""
    try:
        await asyncio.to_thread(request.app[PRODUCER].ping, 1.0)
        kafka = "ok"
    except KafkaUnavailable as e:
        log.info("ingest readiness: kafka unavailable: %s", e)
        kafka = "unavailable"
    ready = kafka == "ok"
    return web.json_response({"ready": ready, "checks": {"kafka": kafka}}, status=200 if ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi.document(request.app[CONFIG]))


PREFERENCES_BODY = TypeAdapter(Preferences)


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=openapi.DOCS_PAGE, content_type="text/html")


# -- reads ---------------------------------------------------------------------------------------


async def feed(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    user_id = check_id("user_id", request.match_info["user_id"])
    principal = require_access(request, user_id, "read the feed")
    q = request.query
    check_known_params(q, ("region", "limit", "rows", "fields", "explain"))
    experiment, variant = await viewer_variant(request.app[STORE], request.app[SHARED], user_id,
                                               config.store_deadline_s)
    query = FeedQuery(
        user_id=user_id,
        region=region_param(q, config.default_region),
        limit=int_param(q, "limit", config.default_limit, 1, config.max_limit),
        rows=list_param(q, "rows", ROW_TYPES) or ROW_TYPES,
        ids_only=choice_param(q, "fields", "full", ("full", "ids")) == "ids",
        max_maturity=principal.max_maturity,
        profile_name=principal.name,
        experiment=experiment,
        variant=variant,
        explain=choice_param(q, "explain", "false", ("true", "false")) == "true",
    )
    answer = await serve_feed(request.app, query)
    request_id = next_request_id()
    if config.impressions and answer.feed["rows"]:
        request.app[IMPRESSIONS].publish(user_id, request_id, query.region, answer.feed["rows"],
                                         experiment=answer.feed.get("experiment"), variant=answer.feed.get("variant"))
    # A feed is answered compressed from its first repeat on (a cache hit), when the client
    # takes gzip as browsers and mobile HTTP stacks do; the one that builds it is sent as built.
    headers = {"X-Request-Id": request_id, "Cache-Control": "private, no-store", "Vary": "Accept-Encoding"}
    body = answer.body
    if answer.entry is not None and accepts_gzip(request.headers.get("Accept-Encoding", "")):
        body, headers["Content-Encoding"] = answer.entry.gzipped(), "gzip"
    return web.Response(body=body, content_type=JSON, headers=headers)


async def experiment_results(request: web.Request) -> web.Response:
    """Per-variant counts, rates, lift and the sample-ratio check of one experiment (service tokens)."""
    experiment_id = request.match_info["experiment_id"]
    if NAME_PATTERN.fullmatch(experiment_id) is None:
        raise invalid("experiment_id", NAME_RULE)
    if not request[PRINCIPAL].is_service:
        raise ApiError(403, "forbidden", "experiment results: only a service token may read them",
                       [{"field": "Authorization", "reason": "not a service token"}])
    check_known_params(request.query, ())
    config = request.app[CONFIG]
    try:
        async with asyncio.timeout(config.store_deadline_s * 4):
            document = await experiment_results_of(request.app[STORE], experiment_id, round(config.clock() * 1000))
    except UnknownExperiment as e:
        raise ApiError(404, "unknown_experiment", f"experiment_id: no experiment {experiment_id!r}",
                       [{"field": "experiment_id", "reason": "unknown experiment"}]) from e
    except (TimeoutError, StoreError) as e:
        raise _store_unavailable(config.retry_after_s) from e
    return web.json_response(document, headers={"Cache-Control": "no-store"})


async def similar_titles(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    video_id = check_id("video_id", request.match_info["video_id"])
    q = request.query
    check_known_params(q, ("limit", "region", "fields"))
    query = SimilarQuery(
        video_id=video_id,
        limit=int_param(q, "limit", config.default_limit, 1, config.max_limit),
        region=region_param(q, config.default_region),
        ids_only=choice_param(q, "fields", "full", ("full", "ids")) == "ids",
        max_maturity=request[PRINCIPAL].max_maturity,
    )
    answers = request.app[SIMILAR_ANSWERS]
    key = (query.video_id, query.limit, query.region, query.ids_only, query.max_maturity)
    body = answers.get(key)
    if body is None:
        try:
            async with asyncio.timeout(config.store_deadline_s * 4):
                document = await similar(request.app[STORE], request.app[SHARED], query, config.thumbnail_template)
        except UnknownTitle as e:
            raise ApiError(404, "unknown_video", f"video_id: no title {video_id!r}",
                           [{"field": "video_id", "reason": "unknown title"}]) from e
        except (TimeoutError, StoreError) as e:
            body = answers.stale(key)  # an older list is a better answer than an error
            if body is None:
                raise _store_unavailable(config.retry_after_s) from e
            request.app[METRICS].degraded.labels("similar_cache", "store_error").inc()
        else:
            body = dumps(document)
            answers.put(key, body)
    return web.Response(body=body, content_type=JSON)


async def trending_now(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    q = request.query
    check_known_params(q, ("region", "window", "limit"))
    region = region_param(q, config.default_region)
    window = choice_param(q, "window", config.trending_window, config.trending_windows)
    limit = int_param(q, "limit", config.default_limit, 1, config.max_limit)
    maturity = request[PRINCIPAL].max_maturity
    snapshot = request.app[TRENDING]
    snapshot.track(region)
    try:
        async with asyncio.timeout(config.store_deadline_s * 4):
            ranked, items = await trending(request.app[STORE], request.app[SHARED], region, window)
        document = trending_document(ranked, region, window, limit, items, config.thumbnail_template, maturity)
    except (TimeoutError, StoreError):
        request.app[METRICS].degraded.labels("trending", "store_error").inc()
        document = trending_document(snapshot.get(region, window), region, window, limit, snapshot.items,
                                     config.thumbnail_template, maturity, degraded=True)
    return web.json_response(document)


# -- writes --------------------------------------------------------------------------------------


async def post_events(request: web.Request) -> web.Response:
    """One event or a batch; all accepted (202, after the broker's acks) or none (400/403/413/503)."""
    config, metrics_ = request.app[CONFIG], request.app[METRICS]
    check_known_params(request.query, ())
    raw = await _json_bytes(request)
    try:
        events = bodies.events_of(bodies.read(request.app[EVENTS_BODY], raw, now_s=config.clock()))
    except BodyError as e:
        if e.batch_size is not None:
            metrics_.events_rejected.labels("too_large").inc(e.batch_size)
            raise ApiError(413, "payload_too_large", f"events: {e.batch_size} in one batch, at most "
                           f"{config.max_batch_events}",
                           [{"field": "events", "reason": f"at most {config.max_batch_events} per batch"}]) from e
        metrics_.events_rejected.labels("invalid").inc()
        if e.not_json:
            raise ApiError(400, "invalid_json", f"body: {e.errors[0]['reason']}", e.errors) from e
        raise ApiError(400, "invalid_events", f"{len(e.errors)} field error(s); nothing was accepted", e.errors) from e
    _rate_limit(request, len(events))
    for index, event in enumerate(events):
        if not request[PRINCIPAL].may_act_for(event.user_id):
            metrics_.events_rejected.labels("forbidden").inc(len(events))
            raise ApiError(403, "forbidden", f"events[{index}].user_id: this token may not post for {event.user_id!r}",
                           [{"index": index, "field": "user_id", "reason": "not the token's profile"}])
    await _publish(request, events)
    return web.json_response({"accepted": len(events), "event_ids": [e.event_id for e in events],
                              "events": _outcomes(events, [None] * len(events))}, status=202)


async def put_preferences(request: web.Request) -> web.Response:
    """Stated genres, published as a ``set_preferences`` event: the pipeline stays the only writer."""
    user_id = check_id("user_id", request.match_info["user_id"])
    require_access(request, user_id, "set preferences")
    check_known_params(request.query, ())
    raw = await _json_bytes(request)
    try:
        preferences: Preferences = bodies.read(PREFERENCES_BODY, raw)
    except BodyError as e:
        code = "invalid_json" if e.not_json else "invalid_preferences"
        raise ApiError(400, code, str(e), e.errors) from e
    _rate_limit(request, 1)
    event = UserEvent(event_id=str(uuid.uuid4()), event_type=EventType.SET_PREFERENCES, user_id=user_id,
                      timestamp=round(request.app[CONFIG].clock() * 1000), device=preferences.device,
                      region=preferences.region, genres=tuple(preferences.genres))
    await _publish(request, [event])
    return web.json_response({"accepted": 1, "event_id": event.event_id, "genres": list(event.genres)}, status=202)


def _rate_limit(request: web.Request, events: int) -> None:
    """429 + Retry-After past the token's rate (``events_rate_per_s``, ``events_burst``).

    Service tokens (a gateway posting for many profiles) are not limited here: their limits are
    the gateway's. Checked once the body is read and valid (one pass, a few hundred microseconds
    for a hundred events), before anything is published.
    """
    principal = request[PRINCIPAL]
    if principal.is_service:
        return
    wait = request.app[RATE_LIMITS].take(principal.user_id, events, time.monotonic())
    if wait > 0:
        request.app[METRICS].events_rejected.labels("rate_limited").inc(events)
        limits = request.app[RATE_LIMITS]
        reason = f"at most {limits.burst} events at once and {limits.rate_per_s:g}/s per token"
        retry = str(max(1, math.ceil(min(wait, 3600.0))))
        raise ApiError(429, "rate_limited", f"events: too many for this token ({reason}); retry after {retry} s",
                       [{"field": "events", "reason": reason}], headers={"Retry-After": retry})


async def _json_bytes(request: web.Request) -> bytes:
    """The body of a JSON request, unparsed: ``serving.bodies`` parses and validates it in one pass."""
    if request.content_type != JSON:
        raise ApiError(415, "unsupported_media_type", f"Content-Type: must be {JSON}, got {request.content_type!r}",
                       [{"field": "Content-Type", "reason": f"must be {JSON}"}])
    return await request.read()  # over client_max_size: HTTPRequestEntityTooLarge -> 413


async def _publish(request: web.Request, events: list[UserEvent]) -> None:
    config, metrics_ = request.app[CONFIG], request.app[METRICS]
    codec = default_codec()
    try:
        records = [(e.user_id, codec.encode(e)) for e in events]
    except EventValidationError as e:  # the Avro schema is the last word on what is valid
        metrics_.events_rejected.labels("invalid").inc(len(events))
        raise ApiError(400, "invalid_events", str(e), e.to_list()) from e
    outcomes = await request.app[PRODUCER].send_each(TOPIC_EVENTS, records)
    for event, outcome in zip(events, outcomes, strict=True):
        if outcome is None:
            metrics_.events_accepted.labels(event.event_type.value).inc()
        else:
            reason = "kafka_unavailable" if isinstance(outcome, KafkaUnavailable) else "delivery_failed"
            metrics_.events_rejected.labels(reason).inc()
    if any(o is not None for o in outcomes):
        raise _not_all_accepted(events, outcomes, config.retry_after_s)


#: What each event of an answer is: in Kafka; not acknowledged in time (resend it with the same
#: event_id: it may be stored already, and consumers drop duplicates by id); refused for good.
ACCEPTED, RETRY, REFUSED = "accepted", "retry", "refused"


def _outcomes(events: list[UserEvent], outcomes: list[KafkaPublishError | None]) -> list[dict[str, Any]]:
    listed = []
    for index, (event, outcome) in enumerate(zip(events, outcomes, strict=True)):
        entry: dict[str, Any] = {"index": index, "event_id": event.event_id}
        if outcome is None:
            entry["status"] = ACCEPTED
        else:
            entry["status"] = RETRY if isinstance(outcome, KafkaUnavailable) else REFUSED
            entry["reason"] = str(outcome)
        listed.append(entry)
    return listed


def _not_all_accepted(events: list[UserEvent], outcomes: list[KafkaPublishError | None],
                      retry_after_s: int) -> ApiError:
    """503 (+ Retry-After) when some event may succeed on a retry, else 502; the body lists every
    event with its ``event_id`` and status, so a client resends exactly the ones not accepted,
    under the same ids (server-made ids included)."""
    listed = _outcomes(events, outcomes)
    accepted = sum(e["status"] == ACCEPTED for e in listed)
    extra = {"accepted": accepted, "events": listed}
    if any(e["status"] == RETRY for e in listed):
        return ApiError(503, "kafka_unavailable",
                        f"{len(events) - accepted} of {len(events)} events could not be made durable now; "
                        "resend those with status 'retry', with the same event_id, after Retry-After",
                        headers={"Retry-After": str(retry_after_s)}, extra=extra)
    return ApiError(502, "delivery_failed",
                    f"the broker refused {len(events) - accepted} of {len(events)} events (status 'refused')",
                    extra=extra)


def _store_unavailable(retry_after_s: int) -> ApiError:
    return ApiError(503, "store_unavailable", "the state store did not answer in time; retry later",
                    headers={"Retry-After": str(retry_after_s)})
