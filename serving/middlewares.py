"""Middlewares: metrics around everything, then one error handler, then authentication.

The error middleware is the only place an exception becomes a response: an :class:`ApiError` keeps
its status and field errors, an aiohttp ``HTTPException`` keeps its status, anything else is a
logged 500 with a JSON body that says nothing about internals.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from serving import auth
from serving.errors import ApiError
from serving.keys import CONFIG, METRICS, PRINCIPAL

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Routes anyone may call: probes, metrics scraping, the API description, the page.
PUBLIC_PREFIXES = ("/livez", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/static/", "/posters/")
PUBLIC_PATHS = frozenset({"/"})

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    503: "unavailable",
}


def error_response(error: ApiError) -> web.Response:
    return web.json_response(error.body(), status=error.status, headers=error.headers)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    metrics = request.app[METRICS]
    info = request.match_info
    # The route template, not the path: per-user paths must not explode label cardinality.
    route = info.route.resource.canonical if info.route.resource is not None else "unmatched"
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        metrics.request_latency_of(route, request.method).observe(time.perf_counter() - started)
        metrics.responses_of(route, status).inc()


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return error_response(e)
    except web.HTTPException as e:
        if e.status < 400:  # redirects and the like pass through untouched
            raise
        code = _HTTP_CODES.get(e.status, "http_error")
        headers = {k: v for k, v in e.headers.items() if k.lower() in ("allow", "retry-after")}
        message = e.text if e.text and not e.text.startswith(f"{e.status}:") else e.reason
        return error_response(ApiError(e.status, code, message, headers=headers))
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(ApiError(500, "internal_error", "internal error"))


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Verifies the bearer token on every non-public route; the handler checks *whose* data."""
    path = request.path
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="streamrec"'}
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "missing bearer token", headers=challenge)
    token = token.strip()
    verified = request.app[VERIFIED_TOKENS]
    principal = verified.get(token)
    if principal is None or principal.expires_at < time.time():
        try:
            principal = auth.verify_token(token, request.app[CONFIG].jwt_key)
        except auth.InvalidToken as e:
            verified.pop(token, None)
            raise ApiError(401, "unauthorized", str(e), headers=challenge) from e
        verified.put(token, principal)
    request[PRINCIPAL] = principal
    return await handler(request)


class VerifiedTokens:
    """Tokens already verified, until they expire: a client sends the same token with every
    request, and checking an HS256 signature costs more than serving a cached feed."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._tokens: OrderedDict[str, auth.Principal] = OrderedDict()

    def get(self, token: str) -> auth.Principal | None:
        principal = self._tokens.get(token)
        if principal is not None:
            self._tokens.move_to_end(token)
        return principal

    def put(self, token: str, principal: auth.Principal) -> None:
        self._tokens[token] = principal
        if len(self._tokens) > self.max_entries:
            self._tokens.popitem(last=False)

    def pop(self, token: str, default: None = None) -> None:
        self._tokens.pop(token, default)


VERIFIED_TOKENS = web.AppKey("verified_tokens", VerifiedTokens)


def require_access(request: web.Request, user_id: str, action: str) -> auth.Principal:
    """The request's principal, if it may ``action`` for ``user_id``; 403 otherwise."""
    principal = request[PRINCIPAL]
    if not principal.may_act_for(user_id):
        raise ApiError(403, "forbidden", f"token for {principal.user_id!r} may not {action} for {user_id!r}",
                       [{"field": "user_id", "reason": "not the token's profile"}])
    return principal
