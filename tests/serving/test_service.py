"""Probes, metrics, the API description, the page slot, errors as JSON, and the token rules."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt
import pytest

from serving import auth
from tests.fixtures.serving import JWT_KEY, token


async def test_healthz_needs_no_token(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        response = await client.get("/healthz")
        assert response.status == 200 and await response.json() == {"status": "ok"}


async def test_metrics_expose_latency_per_route_rows_and_rejections(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        await client.get("/v1/users/u1/feed", headers=token("u1"))
        await client.post("/v1/events", json=[{"user_id": "u1"}], headers=token("u1"))
        text = await (await client.get("/metrics")).text()
    assert 'streamrec_http_request_duration_seconds_count{method="GET",route="/v1/users/{user_id}/feed"} 1.0' in text
    assert 'streamrec_feed_row_items_count{row_type="top_picks"} 1.0' in text
    assert 'streamrec_feed_cache_total{result="miss"} 1.0' in text
    assert 'streamrec_events_rejected_total{reason="invalid"} 1.0' in text
    assert 'streamrec_http_responses_total{route="/v1/events",status="400"} 1.0' in text


async def test_openapi_describes_every_route_and_the_docs_page_renders_it(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        doc = await (await client.get("/openapi.json")).json()
        page = await client.get("/docs")
        page_text = await page.text()
        home = await client.get("/", allow_redirects=False)
        routes = {r.resource.canonical for r in client.app.router.routes() if r.resource is not None}
    assert doc["openapi"].startswith("3.")
    assert routes - {"/"} == set(doc["paths"])  # every route but the page
    for path, operations in doc["paths"].items():  # every answer with a body has its schema
        for answer in (a for op in operations.values() for a in op["responses"].values()):
            assert all("schema" in c for c in answer.get("content", {}).values()), path
    assert page.status == 200 and "/openapi.json" in page_text
    assert home.status == 302 and home.headers["Location"] == "/docs"


async def test_a_static_page_is_served_when_present(feed_world, serve, tmp_path: Path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text("<h1>streamrec</h1>")
    (static / "app.js").write_text("console.log(1)")
    async with serve(feed_world.store_url, static_dir=static) as client:
        home = await client.get("/")
        script = await client.get("/static/app.js")
        assert home.status == 200 and "streamrec" in await home.text()
        assert script.status == 200


async def test_unknown_routes_and_methods_answer_json(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        missing = await client.get("/v1/nothing", headers=token("u1"))
        assert missing.status == 404 and (await missing.json())["error"] == "not_found"
        wrong = await client.delete("/v1/trending", headers=token("u1"))
        assert wrong.status == 405 and (await wrong.json())["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic dTE6cHc=",
        "Bearer not-a-jwt",
        "Bearer " + jwt.encode({"sub": "u1", "exp": int(time.time()) + 60}, "another-key-" + "y" * 30, algorithm="HS256"),
        "Bearer " + auth.mint_token("u1", JWT_KEY, ttl_seconds=1, now=time.time() - 3600),
        "Bearer " + jwt.encode({"sub": "u1", "exp": int(time.time()) + 60}, None, algorithm="none"),
    ],
    ids=["missing", "basic", "garbage", "wrong-key", "expired", "alg-none"],
)
async def test_requests_without_a_valid_token_are_refused(feed_world, serve, header):
    async with serve(feed_world.store_url) as client:
        headers = {"Authorization": header} if header else {}
        response = await client.get("/v1/users/u1/feed", headers=headers)
        assert response.status == 401
        assert (await response.json())["error"] == "unauthorized"


async def test_a_remembered_token_still_expires(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        # exp (with the 30 s leeway) two seconds from now: verified once, then remembered until then.
        headers = {"Authorization": "Bearer " + auth.mint_token("u1", JWT_KEY, ttl_seconds=2, now=time.time() - 30)}
        first = await client.get("/v1/users/u1/feed", headers=headers)
        assert first.status == 200
        await asyncio.sleep(2.5)
        again = await client.get("/v1/users/u1/feed", headers=headers)
        assert again.status == 401 and "expired" in (await again.json())["message"]


def test_tokens_round_trip_their_claims():
    principal = auth.verify_token(auth.mint_token("u7", JWT_KEY, max_maturity="PG", name="Kid"), JWT_KEY)
    assert (principal.user_id, principal.scopes, principal.max_maturity, principal.name) == ("u7", frozenset(), "PG", "Kid")
    assert principal.may_act_for("u7") and not principal.may_act_for("u8")
    service = auth.verify_token(auth.mint_token("gw", JWT_KEY, scopes=("service",)), JWT_KEY)
    assert service.is_service and service.may_act_for("anyone")


def test_minting_refuses_weak_keys_and_bad_claims():
    with pytest.raises(ValueError, match="jwt key"):
        auth.mint_token("u1", "short")
    with pytest.raises(ValueError, match="max_maturity"):
        auth.mint_token("u1", JWT_KEY, max_maturity="X")
    with pytest.raises(ValueError, match="user_id"):
        auth.mint_token("", JWT_KEY)


def test_key_from_env_creates_one_shared_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("STREAMREC_JWT_KEY", raising=False)
    monkeypatch.setenv("STREAMREC_JWT_KEY_FILE", str(tmp_path / "jwt.key"))
    first = auth.key_from_env()
    assert auth.key_from_env() == first and len(first) >= auth.MIN_KEY_BYTES
    assert (tmp_path / "jwt.key").stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("STREAMREC_JWT_KEY", "z" * 40)
    assert auth.key_from_env() == "z" * 40


async def test_write_routes_take_no_query_parameters(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        events = await client.post("/v1/events?debug=1", json={}, headers=token("u1"))
        prefs = await client.put("/v1/users/u1/preferences?x=y", json={"genres": ["Drama"]}, headers=token("u1"))
        for response, field in ((events, "debug"), (prefs, "x")):
            assert response.status == 400
            assert (await response.json())["errors"][0]["field"] == field


def test_request_ids_are_unique_and_a_forked_process_makes_its_own() -> None:
    import os

    from serving.views import RequestIds

    ids = RequestIds()
    made = [ids() for _ in range(1000)]
    assert len(set(made)) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in made)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # the child: its ids must not repeat the parent's
        os.write(writer, ids().encode())
        os._exit(0)
    os.waitpid(child, 0)
    from_child = os.read(reader, 64).decode()
    os.close(reader), os.close(writer)
    assert len(from_child) == 32 and from_child[:16] != made[0][:16] and from_child not in made
