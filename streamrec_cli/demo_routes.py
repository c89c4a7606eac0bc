"""Two helper routes the demo page needs, added to the feed service only by ``streamrec serve --demo-dir``.

- ``GET /demo/token?user_id=1``: a short-lived token for any profile, so a visitor can pick a
  viewer on the page. Never installed outside the demo: it hands out identities.
- ``GET /demo/stats``: the live replay's counters (events/s, last event time, pipeline lag), read
  from the ``stats.json`` the demo process keeps current.
- ``GET /demo/experiment``: the running experiment's id and a short-lived service token, so the
  page can read ``GET /v1/experiments/{id}`` (which only service tokens may) like any client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from serving import auth
from serving.experiments import experiments
from serving.keys import SHARED, STORE
from streamrec.experiments.config import running_experiment
from streamrec.ratings import region_for
from streamrec.store.base import StoreError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TOKEN_TTL_SECONDS = 12 * 3600
MAX_USER_ID_LENGTH = 64


def install(app: web.Application, demo_dir: Path, jwt_key: str) -> None:
    stats_path = Path(demo_dir) / "stats.json"

    async def demo_token(request: web.Request) -> web.Response:
        user_id = request.query.get("user_id", "").strip()
        if not user_id or len(user_id) > MAX_USER_ID_LENGTH or not user_id.isprintable():
            raise web.HTTPBadRequest(
                text=json.dumps({"error": f"user_id: must be 1..{MAX_USER_ID_LENGTH} printable characters"}),
                content_type="application/json",
            )
        token = auth.mint_token(user_id, jwt_key, ttl_seconds=TOKEN_TTL_SECONDS)
        return web.json_response({"user_id": user_id, "token": token, "region": region_for(user_id)})

    async def demo_stats(request: web.Request) -> web.Response:
        try:
            stats = json.loads(stats_path.read_text())
        except (OSError, ValueError):
            stats = {"running": False}
        return web.json_response(stats, headers={"Cache-Control": "no-store"})

    async def demo_experiment(request: web.Request) -> web.Response:
        try:
            running = running_experiment(await experiments(request.app[STORE], request.app[SHARED]),
                                         int(time.time() * 1000))
        except StoreError:
            running = None
        token = auth.mint_token("demo-page", jwt_key, scopes=(auth.SERVICE_SCOPE,), ttl_seconds=3600)
        return web.json_response({"id": running.id if running else None, "token": token},
                                 headers={"Cache-Control": "no-store"})

    routes = {"/demo/token": demo_token, "/demo/stats": demo_stats, "/demo/experiment": demo_experiment}

    # The service's auth middleware guards every path it does not know as public; these two are
    # public by design (the token route is how a visitor gets a token), so they are answered by
    # the outermost middleware, before the auth check, and only in the demo.
    @web.middleware
    async def demo_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = routes.get(request.path)
        if route is None:
            return await handler(request)
        if request.method != "GET":
            raise web.HTTPMethodNotAllowed(request.method, ["GET"])
        return await route(request)

    app.middlewares.insert(0, demo_middleware)
