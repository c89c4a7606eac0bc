"""Fuzzing the HTTP API from its own OpenAPI document (hypothesis).

Every operation of ``/openapi.json`` gets requests built from its parameters and body schema:
values that follow the schema (patterns, ranges, enums) mixed with values that do not (any text,
integers far past any range, wrong JSON types, unknown parameters, arbitrary JSON bodies). The
real app serves them on a real port, over the real SQLite store and the real broker. Checked:
no answer is a 5xx, and every 4xx body names the field at fault.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from serving.settings import ServingConfig
from tests.fixtures.serving import (
    JWT_KEY,
    ServerThread,
    free_port,
    service_token,
    token,
)

CASES = 5000
Json = Any


# -- strategies from the OpenAPI document --------------------------------------------------------

ANY_JSON: st.SearchStrategy[Json] = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
#: Integers no float can hold (10**400): the overflow the issue found.
HUGE = st.integers(min_value=10**300, max_value=10**400) | st.integers(min_value=-(10**400), max_value=-(10**300))


def resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = doc["components"]["schemas"][name]
    return schema


def valid_value(schema: dict[str, Any], doc: dict[str, Any]) -> st.SearchStrategy[Json]:
    """Values that follow ``schema``."""
    schema = resolve(schema, doc)
    if "oneOf" in schema:
        return st.one_of([from_schema(s, doc) for s in schema["oneOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        if schema.get("format") == "uuid":
            return st.uuids().map(str)
        return st.text(max_size=40)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        low, high = schema.get("minimum", schema.get("exclusiveMinimum")), schema.get("maximum")
        return st.floats(low, high, allow_nan=False, allow_infinity=False) | st.integers(
            None if low is None else int(low) + 1, None if high is None else int(high))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), doc), max_size=min(schema.get("maxItems", 5), 5))
    if kind == "object" or "properties" in schema:
        properties = {k: from_schema(v, doc) for k, v in schema.get("properties", {}).items()}
        required = {k: properties.pop(k) for k in schema.get("required", []) if k in properties}
        return st.fixed_dictionaries(required, optional=properties)
    return ANY_JSON


def from_schema(schema: dict[str, Any], doc: dict[str, Any]) -> st.SearchStrategy[Json]:
    """Mostly values that follow the schema; sometimes any JSON, text, or a huge integer."""
    return st.one_of(valid_value(schema, doc), valid_value(schema, doc), valid_value(schema, doc),
                     ANY_JSON, st.text(max_size=40), HUGE)


def path_value(schema: dict[str, Any], doc: dict[str, Any]) -> st.SearchStrategy[str]:
    # Not "", "." or ".." and no "/": those are other paths (the router's 404), not this route's ids.
    anything = st.text(min_size=1, max_size=140).filter(lambda s: "/" not in s and s not in (".", ".."))
    return st.one_of(valid_value(schema, doc).map(str), anything)


def query_value(schema: dict[str, Any], doc: dict[str, Any]) -> st.SearchStrategy[str]:
    return st.one_of(valid_value(schema, doc).map(str), st.text(max_size=40), HUGE.map(str))


Request = tuple[str, str, bytes | None, dict[str, str]]
TOKENS = [service_token(), token("u1"), token("u1", max_maturity="PG")]
SPOILERS = [0, 1, 2]  # half a body, a body not declared as JSON, JSON nested 1,100 deep


def operation(path: str, method: str, op: dict[str, Any], doc: dict[str, Any]) -> st.SearchStrategy[Request]:
    """Requests for one operation (strategies built once: building them per example is slow)."""
    params = op.get("parameters", [])
    in_path = {p["name"]: path_value(p["schema"], doc) for p in params if p["in"] == "path"}
    in_query = {p["name"]: query_value(p["schema"], doc) for p in params if p["in"] == "query"}
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    body = st.one_of(from_schema(content["schema"], doc), ANY_JSON) if content else st.none()
    unknown = st.lists(st.tuples(st.text(min_size=1, max_size=10), st.text(max_size=10)), max_size=1)

    @st.composite
    def build(draw: st.DrawFn) -> Request:
        url = path
        for name, values in in_path.items():
            url = url.replace("{" + name + "}", quote(draw(values), safe=""))
        query = [(name, draw(values)) for name, values in in_query.items() if draw(st.booleans())]
        if draw(st.integers(0, 9)) == 0:  # now and then a parameter the route does not know
            query += draw(unknown)
        if query:
            url += "?" + urlencode(query)
        headers = draw(st.sampled_from(TOKENS))
        raw: bytes | None = None
        if content is not None:
            headers = {**headers, "Content-Type": "application/json"}
            raw = json.dumps(draw(body)).encode()
            if draw(st.integers(0, 19)) == 0:
                spoil = draw(st.sampled_from(SPOILERS))
                if spoil == 0:
                    raw = raw[: len(raw) // 2]
                elif spoil == 1:
                    headers = {**headers, "Content-Type": "text/plain"}
                else:
                    raw = b"[" * 1100 + b"]" * 1100
        return method.upper(), url, raw, headers

    return build()


def requests(doc: dict[str, Any]) -> st.SearchStrategy[Request]:
    return st.one_of([operation(path, method, op, doc)
                      for path, ops in doc["paths"].items() for method, op in ops.items()])


# -- the test --------------------------------------------------------------------------------------


@pytest.fixture
def api(feed_world, kafka_broker, tmp_path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    config = ServingConfig(store_url=feed_world.store_url, kafka_bootstrap=kafka_broker.bootstrap, jwt_key=JWT_KEY,
                           port=free_port(), impressions=False, static_dir=tmp_path / "no-static",
                           store_deadline_s=5.0)
    with ServerThread(config):
        connection = http.client.HTTPConnection("127.0.0.1", config.port, timeout=30)
        connection.request("GET", "/openapi.json")
        doc = json.loads(connection.getresponse().read())
        connection.close()
        yield config.port, doc


@pytest.mark.fault("hostile and malformed requests built from the service's own OpenAPI document",
                   f"{CASES} requests over every operation: no 5xx, every 4xx body names the field")
def test_fuzz_the_api_from_its_openapi_document(api: tuple[int, dict[str, Any]], measured: dict[str, Any]) -> None:
    port, doc = api
    statuses: dict[int, int] = {}
    problems: list[str] = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, bytes]:
        nonlocal connection
        for attempt in range(2):  # a connection the server closed is opened again, once
            try:
                connection.request(method, url, body=body, headers=headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    @settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate],  # no shrinking: a failure is reported as found
              suppress_health_check=list(HealthCheck))
    @given(requests(doc))
    def one(request: Request) -> None:
        method, url, body, headers = request
        status, raw = send(method, url, body, headers)
        statuses[status] = statuses.get(status, 0) + 1
        if status >= 500:
            problems.append(f"{status} for {method} {url} {body[:200] if body else b''!r}: {raw[:300]!r}")
        elif status >= 400:
            try:
                errors = json.loads(raw).get("errors") or []
            except ValueError:
                errors = []
            # A field is named by its name, whatever the client called it ("" is an unknown key "").
            if not errors or not all(isinstance(e.get("field"), str) for e in errors):
                problems.append(f"{status} without a field for {method} {url}: {raw[:300]!r}")

    try:
        one()
    finally:
        connection.close()
    measured.update({"cases": sum(statuses.values()),
                     "statuses": " ".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
                     "problems": len(problems)})
    assert sum(statuses.values()) >= CASES
    assert not problems, "\n".join(problems[:20])
