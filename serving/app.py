"""The feed service's app factory.

    from serving.app import create_app
    from serving.settings import ServingConfig
    web.run_app(create_app(ServingConfig.from_env()))

or ``python -m serving`` (``streamrec serve`` does the same). The page the demo serves goes in
``serving/static/``: when that folder holds files they are served under ``/static/``, and
``index.html`` there answers ``/``; without one, ``/`` leads to the API docs.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import TypeAdapter

from serving import bodies, clients
from serving.cache import FeedCache
from serving.feed_service import ASSEMBLIES, READS, Admission
from serving.keys import (
    CONFIG,
    EVENTS_BODY,
    FEED_CACHE,
    METRICS,
    POSTERS,
    RATE_LIMITS,
    SHARED,
    SIMILAR_ANSWERS,
)
from serving.metrics import ServingMetrics
from serving.middlewares import (
    VERIFIED_TOKENS,
    VerifiedTokens,
    auth_middleware,
    error_middleware,
    metrics_middleware,
)
from serving.posters import PosterCache
from serving.ratelimit import RateLimits
from serving.routes import ROUTES
from serving.settings import ServingConfig
from serving.shared_reads import SharedReads, TimedAnswers


def create_app(config: ServingConfig) -> web.Application:
    app = web.Application(
        # Outermost first: metrics see every response, errors become JSON before metrics record them.
        middlewares=[metrics_middleware, error_middleware, auth_middleware],
        client_max_size=config.max_body_bytes,
    )
    app[CONFIG] = config
    app[METRICS] = ServingMetrics()
    app[FEED_CACHE] = FeedCache(config.cache_ttl_s, config.cache_max_entries)
    app[SHARED] = SharedReads(config.catalog_ttl_s, config.lists_ttl_s, similar_ttl_s=config.similar_ttl_s,
                              cowatch_ttl_s=config.cowatch_ttl_s)
    app[SIMILAR_ANSWERS] = TimedAnswers(config.similar_ttl_s)
    app[RATE_LIMITS] = RateLimits(config.events_rate_per_s, config.events_burst)
    app[POSTERS] = PosterCache()
    app[EVENTS_BODY] = TypeAdapter(bodies.events_body(config.max_batch_events))
    app[VERIFIED_TOKENS] = VerifiedTokens()
    app[READS] = Admission(config.max_feed_reads)
    app[ASSEMBLIES] = Admission(config.max_feed_assemblies)
    app.cleanup_ctx.append(clients.store_ctx)
    app.cleanup_ctx.append(clients.producer_ctx)
    if config.impressions:
        app.cleanup_ctx.append(clients.impressions_ctx)
    app.cleanup_ctx.append(clients.trending_ctx)
    app.router.add_routes(ROUTES)
    _add_page(app, config)
    return app


def _add_page(app: web.Application, config: ServingConfig) -> None:
    static = config.static_dir
    if static.is_dir() and any(static.iterdir()):
        app.router.add_static("/static/", static, name="static")
    index = static / "index.html"

    async def home(request: web.Request) -> web.StreamResponse:
        if index.is_file():
            return web.FileResponse(index)
        raise web.HTTPFound("/docs")

    app.router.add_get("/", home, name="home")
