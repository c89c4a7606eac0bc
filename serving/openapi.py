"""The OpenAPI 3.1 description of the service (``/openapi.json``) and a self-contained docs page.

The docs page renders the document in the browser with a few lines of script: no CDN, so it
works offline and on the demo machine.
"""

from __future__ import annotations

from typing import Any

from serving.feed import ROW_TYPES
from serving.settings import ServingConfig
from streamrec.events.http_json import MAX_DEVICE_LEN, MAX_WATCH_SEC, MIN_TIMESTAMP_S
from streamrec.events.ids import ID_MAX_LEN, ID_REGEX, REGION_REGEX


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _param(name: str, where: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "required": required or where == "path",
            "schema": schema}


# The id rules of streamrec.events.ids: the same for the paths, the queries and the event fields.
ID = {"type": "string", "pattern": f"^{ID_REGEX}$", "minLength": 1, "maxLength": ID_MAX_LEN}
REGION = {"type": "string", "pattern": f"^{REGION_REGEX}$", "default": "global"}
EVENT_REGION = {"type": "string", "pattern": f"^{REGION_REGEX}$"}
DEVICE = {"type": "string", "pattern": f"^{ID_REGEX}$", "maxLength": MAX_DEVICE_LEN}


def document(config: ServingConfig) -> dict[str, Any]:
    limit = {"type": "integer", "minimum": 1, "maximum": config.max_limit, "default": config.default_limit}
    fields = {"type": "string", "enum": ["full", "ids"], "default": "full"}
    common = {"401": _error("Missing or invalid bearer token"), "403": _error("The token may not act for this profile"),
              "400": _error("Invalid path or query parameter (names the field)")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "streamrec feed service", "version": "1.0.0",
                 "description": "Home feeds, similar titles and trending, assembled in milliseconds from state "
                                "the streaming pipelines maintain; user events in, durable in Kafka before 202."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                           "description": "HS256; sub = profile id; scope 'service' acts for anyone; "
                                                          "optional max_maturity (kids profiles) and name"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"},
                    "errors": {"type": "array", "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "field": {"type": "string"}, "reason": {"type": "string"}}}},
                    "accepted": {"type": "integer"},
                    "events": {"type": "array", "items": {"type": "object", "properties": {
                        "index": {"type": "integer"}, "event_id": {"type": "string", "format": "uuid"},
                        "status": {"type": "string", "enum": ["accepted", "retry", "refused"]},
                        "reason": {"type": "string"}}}}}},
                "Item": {"type": "object", "required": ["video_id"], "properties": {
                    "video_id": {"type": "string"}, "title": {"type": "string"}, "genres": {"type": "array", "items": {"type": "string"}},
                    "year": {"type": ["integer", "null"]}, "type": {"type": "string"}, "maturity": {"type": ["string", "null"]},
                    "thumbnail": {"type": "string"}, "match_score": {"type": "number", "minimum": 0, "maximum": 1},
                    "progress_sec": {"type": "integer"}, "duration_sec": {"type": "integer"}, "score": {"type": "number"}}},
                "Row": {"type": "object", "required": ["type", "title", "items"], "properties": {
                    "type": {"type": "string", "enum": list(ROW_TYPES)}, "title": {"type": "string"},
                    "seed_video_id": {"type": "string"}, "genre": {"type": "string"},
                    "items": {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}}},
                "Feed": {"type": "object", "required": ["user_id", "generated_at", "degraded", "rows"], "properties": {
                    "user_id": {"type": "string"}, "region": {"type": "string"}, "generated_at": {"type": "integer"},
                    "degraded": {"type": "boolean"}, "rows": {"type": "array", "items": {"$ref": "#/components/schemas/Row"}}}},
                "Event": {"type": "object", "required": ["user_id", "event_type", "timestamp"], "properties": {
                    "event_id": {"type": "string", "format": "uuid"}, "user_id": ID,
                    "event_type": {"type": "string", "enum": ["play", "pause", "heartbeat", "complete", "rate", "like",
                                                              "dislike", "add_to_list", "remove_from_list", "search",
                                                              "set_preferences"]},
                    "timestamp": {"type": "number", "minimum": MIN_TIMESTAMP_S,
                                  "description": "Unix seconds, from 1990-01-01 to 300 s past the server's clock"},
                    "video_id": ID,
                    "position_sec": {"type": "number", "minimum": 0, "maximum": MAX_WATCH_SEC},
                    "duration_sec": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WATCH_SEC},
                    "rating": {"type": "number", "minimum": 1, "maximum": 5, "multipleOf": 0.5},
                    "query": {"type": "string"}, "genres": {"type": "array", "items": {"type": "string"}},
                    "device": DEVICE, "region": EVENT_REGION}},
            },
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
                    _param("rows", "query", "Comma-separated row types to include (default: all)",
                           {"type": "string", "example": "continue_watching,top_picks"}),
                    _param("fields", "query", "ids: video ids (and row scores) only", fields)],
                "responses": {"200": {"description": "The feed", "headers": {"X-Request-Id": {"schema": {"type": "string"}}},
                                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Feed"}}}},
                              **common}}},
            "/v1/videos/{video_id}/similar": {"get": {
                "summary": "More like this: co-watch similarity, content similarity for cold titles",
                "parameters": [_param("video_id", "path", "Title id", ID), _param("limit", "query", "Titles", limit),
                               _param("region", "query", "Only titles available here", REGION),
                               _param("fields", "query", "ids: video ids only", fields)],
                "responses": {"200": {"description": "Similar titles with scores in [0, 1]"},
                              "404": _error("Unknown title"), "503": _error("Store unavailable (Retry-After)"), **common}}},
            "/v1/trending": {"get": {
                "summary": "Trending in a region for a window",
                "parameters": [_param("region", "query", "Region (its list, else the global one)", REGION),
                               _param("window", "query", "Window", {"type": "string", "enum": list(config.trending_windows),
                                                                    "default": config.trending_window}),
                               _param("limit", "query", "Titles", limit)],
                "responses": {"200": {"description": "Items with window_end and updated_at (Unix seconds)"}, **common}}},
            "/v1/events": {"post": {
                "summary": "One event or a batch; 202 only after Kafka acknowledged every event",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Event"},
                    {"type": "array", "maxItems": config.max_batch_events, "items": {"$ref": "#/components/schemas/Event"}},
                    {"type": "object", "properties": {"events": {"type": "array", "maxItems": config.max_batch_events,
                                                                 "items": {"$ref": "#/components/schemas/Event"}}}}]}}}},
                "responses": {"202": {"description": "Accepted and durable: {accepted, event_ids, events: "
                                                     "[{index, event_id, status: accepted}]}"},
                              "400": _error("Invalid events (all-or-nothing), with index, field and reason"),
                              "401": common["401"], "403": common["403"],
                              "413": _error(f"Body over {config.max_body_bytes} bytes or over {config.max_batch_events} events"),
                              "415": _error("Not application/json"),
                              "429": _error(f"Over the token's rate ({config.events_burst} events at once, "
                                            f"{config.events_rate_per_s:g}/s); retry after Retry-After seconds"),
                              "502": _error("The broker refused some events for good; body: {accepted, events: "
                                            "[{index, event_id, status: accepted|refused, reason}]}"),
                              "503": _error("Not every event was acknowledged in time (Kafka unavailable); body: "
                                            "{accepted, events: [{index, event_id, status: accepted|retry|refused}]}: "
                                            "resend the events not accepted, with the same event_id, after "
                                            "Retry-After seconds")}}},
            "/v1/users/{user_id}/preferences": {"put": {
                "summary": "Stated genre preferences (onboarding), published as a set_preferences event",
                "parameters": [_param("user_id", "path", "Profile id", ID)],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["genres"], "properties": {
                        "genres": {"type": "array", "items": {"type": "string"}, "minItems": 1}}}}}},
                "responses": {"202": {"description": "Published"}, **common,
                              "429": _error("Over the token's event rate; retry after Retry-After seconds"),
                              "503": _error("Kafka unavailable; retry after Retry-After seconds")}}},
            "/livez": {"get": {"summary": "Alive (the liveness probe)", "security": [],
                               "responses": {"200": {"description": "ok"}}}},
            "/healthz": {"get": {"summary": "Alive (the old name of /livez)", "security": [],
                                 "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {
                "summary": "Ready to serve reads (the readiness probe): the store answers, or degraded "
                           "answers have titles to show. Kafka is not checked.", "security": [],
                "responses": {"200": {"description": "ready: {ready, checks: {store, fallback}}"},
                              "503": {"description": "not ready"}}}},
            "/readyz/ingest": {"get": {
                "summary": "Ingest health: Kafka reachable (POST /v1/events can succeed)", "security": [],
                "responses": {"200": {"description": "ready: {ready, checks: {kafka}}"},
                              "503": {"description": "Kafka unavailable"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "security": [],
                                 "responses": {"200": {"description": "text exposition format"}}}},
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
