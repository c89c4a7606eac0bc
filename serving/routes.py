"""Every route of the service, in one table."""

from __future__ import annotations

from aiohttp import web

from serving import posters, views

ROUTES = [
    web.get("/livez", views.livez, name="livez"),
    web.get("/healthz", views.livez, name="healthz"),  # the old name of /livez, kept for callers
    web.get("/readyz", views.readyz, name="readyz"),
    web.get("/readyz/ingest", views.readyz_ingest, name="readyz_ingest"),
    web.get("/metrics", views.metrics, name="metrics"),
    web.get("/openapi.json", views.openapi_json, name="openapi"),
    web.get("/docs", views.docs, name="docs"),
    # Any path segment matches ({x:[^/]+}, not aiohttp's default [^{}/]+): the handler checks the id
    # and a bad one is a 400 naming the field, not a 404 that names nothing.
    web.get("/v1/users/{user_id:[^/]+}/feed", views.feed, name="feed"),
    web.put("/v1/users/{user_id:[^/]+}/preferences", views.put_preferences, name="preferences"),
    web.get("/v1/videos/{video_id:[^/]+}/similar", views.similar_titles, name="similar"),
    web.get("/v1/trending", views.trending_now, name="trending"),
    web.get("/v1/experiments/{experiment_id:[^/]+}", views.experiment_results, name="experiment"),
    web.post("/v1/events", views.post_events, name="events"),
    web.get("/posters/{video_id:[^/]+}.svg", posters.poster, name="poster"),
]
