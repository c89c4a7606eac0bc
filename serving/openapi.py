"""The OpenAPI 3.1 description of the service (``/openapi.json``) and a self-contained docs page.

Every body's schema is generated from its one declaration in :mod:`serving.bodies` (requests: the
models the server validates with) or :mod:`serving.answers`; this module only says which operation answers which body with which
status. Parameters take their rules from the same constants the handlers check
(:mod:`serving.params`, :mod:`streamrec.events.ids`).

The docs page renders the document in the browser with a few lines of script: no CDN, so it
works offline and on the demo machine.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from serving import answers, bodies
from serving.answers import ROW_TYPES
from serving.bodies import MAX_FUTURE_SKEW_S, MIN_TIMESTAMP_S
from serving.settings import ServingConfig
from streamrec.events.ids import ID_MAX_LEN, ID_REGEX, REGION_MAX_LEN, REGION_REGEX
from streamrec.experiments.config import NAME_MAX_LEN, NAME_PATTERN

REF = "#/components/schemas/{model}"


class _Schemas(GenerateJsonSchema):
    """JSON Schema without the titles pydantic makes from field names (noise in a document)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        out = super().model_schema(schema)
        out.pop("title", None)
        return out


def _components(config: ServingConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every body's schema: (the references by name, the component schemas)."""
    named: dict[str, Any] = {
        "Event": bodies.Event,
        "EventsBody": bodies.events_body(config.max_batch_events),
        "Preferences": bodies.Preferences,
        "EventsAccepted": answers.EventsAccepted,
        "PreferencesAccepted": answers.PreferencesAccepted,
        "Error": answers.Error,
        "Feed": answers.Feed,
        "Similar": answers.Similar,
        "Trending": answers.Trending,
        "Alive": answers.Alive,
        "Ready": answers.Ready,
        "ExperimentResults": answers.ExperimentResults,
    }
    refs, defs = TypeAdapter.json_schemas([(name, "validation", TypeAdapter(shape)) for name, shape in named.items()],
                                          ref_template=REF, schema_generator=_Schemas)
    schemas = dict(defs.get("$defs", {}))
    by_name = {}
    for (name, _), schema in refs.items():
        if "$ref" in schema:
            by_name[name] = schema
        else:  # not a model (the events body is a union): a component of its own
            schemas[name] = schema
            by_name[name] = {"$ref": REF.format(model=name)}
    event = schemas["Event"]
    for name in ("EventsBody", "EventBatch"):  # the event union, written once
        schemas[name] = _shared(schemas[name], event, by_name["Event"])
    return by_name, schemas


def _shared(schema: Any, part: Any, ref: dict[str, Any]) -> Any:
    """``schema`` with every copy of ``part`` replaced by ``ref``."""
    if schema == part:
        return ref
    if isinstance(schema, dict):
        return {k: _shared(v, part, ref) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_shared(v, part, ref) for v in schema]
    return schema


def _with_clock(schemas: dict[str, Any], now_s: float) -> None:
    """The latest event time the server takes now: its clock plus the allowed skew."""
    for schema in schemas.values():
        stamp = schema.get("properties", {}).get("timestamp")
        if stamp is not None and stamp.get("minimum") == MIN_TIMESTAMP_S:
            stamp["maximum"] = float(int(now_s + MAX_FUTURE_SKEW_S))


def _json(ref: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": ref}}}
    if headers:
        answer["headers"] = headers
    return answer


def _header(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema or {"type": "string"}}


def _param(name: str, where: str, description: str, schema: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": where == "path",
            "schema": schema, **more}


# The id rules of streamrec.events.ids: the same for the paths, the queries and the event fields.
ID = {"type": "string", "pattern": f"^{ID_REGEX}$", "minLength": 1, "maxLength": ID_MAX_LEN}
REGION = {"type": "string", "pattern": f"^{REGION_REGEX}$", "minLength": 1, "maxLength": REGION_MAX_LEN,
          "default": "global"}
EXPERIMENT_ID = {"type": "string", "pattern": f"^{NAME_PATTERN.pattern}$", "minLength": 1, "maxLength": NAME_MAX_LEN}
RETRY_AFTER = _header("Seconds to wait before trying again", {"type": "string", "pattern": "^[0-9]+$"})
CHALLENGE = _header("Bearer realm")


def document(config: ServingConfig, now_s: float | None = None) -> dict[str, Any]:
    """The document as of ``now_s`` (the server's clock: the latest event time it takes)."""
    refs, schemas = _components(config)
    _with_clock(schemas, config.clock() if now_s is None else now_s)
    error = refs["Error"]
    limit = {"type": "integer", "minimum": 1, "maximum": config.max_limit, "default": config.default_limit}
    fields = {"type": "string", "enum": ["full", "ids"], "default": "full"}
    bad_request = _json(error, "Invalid path or query parameter (names the field)")
    unauthorized = _json(error, "Missing or invalid bearer token", {"WWW-Authenticate": CHALLENGE})
    forbidden = _json(error, "The token may not act for this profile")
    too_large = _json(error, f"Body over {config.max_body_bytes} bytes or over {config.max_batch_events} events")
    not_json = _json(error, "Not application/json")
    rate_limited = _json(error, f"Over the token's rate ({config.events_burst} events at once, "
                                f"{config.events_rate_per_s:g}/s); retry after Retry-After seconds",
                         {"Retry-After": RETRY_AFTER})
    refused = _json(error, "The broker refused some events for good; every event's outcome is listed")
    unavailable = _json(error, "Not every event was acknowledged in time (Kafka unavailable); every event's outcome "
                               "is listed: resend those not accepted, with the same event_id, after Retry-After "
                               "seconds", {"Retry-After": RETRY_AFTER})
    # What a write can answer besides 202 and 400: the same for events and preferences.
    write_errors = {"401": unauthorized, "403": forbidden, "413": too_large, "415": not_json, "429": rate_limited,
                    "502": refused, "503": unavailable}
    public: dict[str, Any] = {"security": []}
    ready = refs["Ready"]
    return {
        "openapi": "3.1.0",
        "info": {"title": "streamrec feed service", "version": "1.0.0",
                 "description": "Home feeds, similar titles and trending, assembled in milliseconds from state "
                                "the streaming pipelines maintain; user events in, durable in Kafka before 202."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                           "description": "HS256; sub = profile id; scope 'service' acts for anyone; "
                                                          "optional max_maturity (kids profiles) and name"}},
            "schemas": schemas,
        },
        "security": [{"bearer": []}],
        "paths": {
            "/v1/users/{user_id}/feed": {"get": {
                "summary": "The home page as rows",
                "description": "Rows with nothing to show are left out. Never 5xx because of a backend: when the "
                               "store is slow or down the answer is the last cached feed or trending, with degraded=true.",
                "parameters": [
                    _param("user_id", "path", "Profile id (the token's sub, unless a service token)", ID),
                    _param("region", "query", "Region for availability and trending", REGION),
                    _param("limit", "query", "Items per row", limit),
                    _param("rows", "query", "Row types to include, comma-separated (default: all)",
                           {"type": "array", "items": {"type": "string", "enum": list(ROW_TYPES)}, "minItems": 1},
                           style="form", explode=False),
                    _param("fields", "query", "ids: video ids (and row scores) only", fields),
                    _param("explain", "query", "true: each top pick says why it is there (ranker, model "
                           "version, each feature's part of its score)",
                           {"type": "string", "enum": ["true", "false"], "default": "false"})],
                "responses": {"200": _json(refs["Feed"], "The feed", {"X-Request-Id": _header("The request's id")}),
                              "400": bad_request, "401": unauthorized, "403": forbidden}}},
            "/v1/videos/{video_id}/similar": {"get": {
                "summary": "More like this: co-watch similarity, content similarity for cold titles",
                "parameters": [_param("video_id", "path", "Title id", ID), _param("limit", "query", "Titles", limit),
                               _param("region", "query", "Only titles available here", REGION),
                               _param("fields", "query", "ids: video ids only", fields)],
                "responses": {"200": _json(refs["Similar"], "Similar titles with scores in [0, 1]"),
                              "400": bad_request, "401": unauthorized, "404": _json(error, "Unknown title"),
                              "503": _json(error, "Store unavailable", {"Retry-After": RETRY_AFTER})}}},
            "/v1/trending": {"get": {
                "summary": "Trending in a region for a window",
                "parameters": [_param("region", "query", "Region (its list, else the global one)", REGION),
                               _param("window", "query", "Window", {"type": "string", "enum": list(config.trending_windows),
                                                                    "default": config.trending_window}),
                               _param("limit", "query", "Titles", limit)],
                "responses": {"200": _json(refs["Trending"], "Trending titles with window_end and updated_at"),
                              "400": bad_request, "401": unauthorized}}},
            "/v1/experiments/{experiment_id}": {"get": {
                "summary": "An experiment's results: per variant counts and rates, lift against the control, "
                           "sample-ratio check (service tokens only)",
                "description": "Counted by the pipeline from impressions and the plays and completes credited to "
                               "them (docs/experiments.md): rates with Wilson 95 % intervals, lift with a pooled "
                               "two-proportion z-test, the split checked by chi-square against the shares.",
                "parameters": [_param("experiment_id", "path", "Experiment id", EXPERIMENT_ID)],
                "responses": {"200": _json(refs["ExperimentResults"], "The results so far"),
                              "400": bad_request, "401": unauthorized,
                              "403": _json(error, "Not a service token"),
                              "404": _json(error, "Unknown experiment"),
                              "503": _json(error, "Store unavailable", {"Retry-After": RETRY_AFTER})}}},
            "/v1/events": {"post": {
                "summary": "One event or a batch; 202 only after Kafka acknowledged every event",
                "description": "All or nothing: one invalid event refuses the batch (400, with index, field and "
                               "reason). A token that is not a service token posts only its own profile's events.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": refs["EventsBody"]}}},
                "responses": {"202": _json(refs["EventsAccepted"], "Accepted and durable: every event's id"),
                              "400": _json(error, "Invalid events (nothing was accepted), with index, field and reason"),
                              **write_errors}}},
            "/v1/users/{user_id}/preferences": {"put": {
                "summary": "Stated genre preferences (onboarding), published as a set_preferences event",
                "parameters": [_param("user_id", "path", "Profile id", ID)],
                "requestBody": {"required": True, "content": {"application/json": {"schema": refs["Preferences"]}}},
                "responses": {"202": _json(refs["PreferencesAccepted"], "Published"),
                              "400": _json(error, "Invalid preferences (names the field)"), **write_errors}}},
            "/posters/{video_id}.svg": {"get": {
                "summary": "The poster of a title without a catalog image (public: an <img> sends no token)",
                **public,
                "parameters": [_param("video_id", "path", "Title id", ID)],
                "responses": {"200": {"description": "An SVG poster",
                                      "content": {"image/svg+xml": {"schema": {"type": "string"}}}},
                              "302": {"description": "The title's catalog thumbnail",
                                      "headers": {"Location": _header("The catalog's image")}},
                              "400": bad_request}}},
            "/livez": {"get": {"summary": "Alive (the liveness probe)", **public,
                               "responses": {"200": _json(refs["Alive"], "ok")}}},
            "/healthz": {"get": {"summary": "Alive (the old name of /livez)", **public,
                                 "responses": {"200": _json(refs["Alive"], "ok")}}},
            "/readyz": {"get": {
                "summary": "Ready to serve reads (the readiness probe): the store answers, or degraded "
                           "answers have titles to show. Kafka is not checked.", **public,
                "responses": {"200": _json(ready, "ready: checks store and fallback"),
                              "503": _json(ready, "not ready")}}},
            "/readyz/ingest": {"get": {
                "summary": "Ingest health: Kafka reachable (POST /v1/events can succeed)", **public,
                "responses": {"200": _json(ready, "ready: checks kafka"), "503": _json(ready, "Kafka unavailable")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", **public,
                                 "responses": {"200": {"description": "text exposition format",
                                                       "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", **public,
                                      "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")}}},
            "/docs": {"get": {"summary": "This document as a page", **public,
                              "responses": {"200": {"description": "HTML",
                                                    "content": {"text/html": {"schema": {"type": "string"}}}}}}},
        },
    }


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamrec API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{margin-top:2rem;font-family:monospace} .m{display:inline-block;min-width:3.5rem;font-weight:bold}
.get{color:#0a6} .post{color:#06c} .put{color:#a60} table{border-collapse:collapse;margin:.4rem 0}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top} code{background:#f4f4f4}
</style></head><body>
<h1>streamrec feed service</h1><p id="about"></p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Requests carry
<code>Authorization: Bearer &lt;JWT&gt;</code> (<code>streamrec token USER</code> mints one).</p>
<div id="paths"></div>
<script>
fetch('/openapi.json').then(r => r.json()).then(doc => {
  const esc = s => String(s ?? '').replace(/[&<>]/g, c => ({'&': '&amp;', '<': '&lt;', '>': '&gt;'}[c]));
  document.getElementById('about').textContent = doc.info.description;
  const out = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      out.push(`<h2><span class="m ${method}">${method.toUpperCase()}</span> ${esc(path)}</h2>`);
      out.push(`<p><b>${esc(op.summary)}</b> ${esc(op.description)}</p>`);
      if (op.parameters) {
        out.push('<table><tr><th>parameter</th><th>in</th><th>schema</th><th>meaning</th></tr>');
        for (const p of op.parameters) out.push(`<tr><td><code>${esc(p.name)}</code></td><td>${p.in}</td>` +
          `<td><code>${esc(JSON.stringify(p.schema))}</code></td><td>${esc(p.description)}</td></tr>`);
        out.push('</table>');
      }
      out.push('<table><tr><th>status</th><th>meaning</th></tr>');
      for (const [code, r] of Object.entries(op.responses)) out.push(`<tr><td>${code}</td><td>${esc(r.description)}</td></tr>`);
      out.push('</table>');
    }
  }
  document.getElementById('paths').innerHTML = out.join('\\n');
});
</script></body></html>
"""
