"""Every thumbnail a feed names answers 200: generated SVG posters, public, cached, escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from serving.posters import PosterCache, genre_colour, poster_svg
from streamrec.events.model import CatalogItem
from tests.fixtures.serving import token
from tests.serving.test_feed import get_feed


async def test_every_thumbnail_of_a_feed_answers_200_without_a_token(feed_world, serve):
    async with serve(feed_world.store_url) as client:
        feed = await get_feed(client, headers=token("u1"))
        urls = {item["thumbnail"] for row in feed["rows"] for item in row["items"]}
        assert len(urls) >= 5
        for url in urls:
            response = await client.get(url)  # no Authorization: an <img> sends none
            assert response.status == 200, url
            assert response.content_type == "image/svg+xml"
            ET.fromstring(await response.read())  # well-formed
        gamma = await (await client.get("/posters/m3.svg")).text()
        assert "Gamma" in gamma and "Comedy" in gamma and "2021" in gamma
        assert (await client.get("/posters/..%2Fetc.svg")).status in (400, 404)
        assert (await client.get("/posters/bad%20id.svg")).status == 400
        unknown = await client.get("/posters/nobody-knows.svg")
        assert unknown.status == 200 and "nobody-knows" in await unknown.text()


def test_a_poster_escapes_its_title_and_wraps_long_ones() -> None:
    item = CatalogItem("x", 'Tom & Jerry <"The Movie"> and a very long subtitle indeed', genres=("Comedy",),
                       release_year=1992)
    svg = poster_svg("x", item).decode()
    root = ET.fromstring(svg)
    texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "".join(texts).startswith("Tom & Jerry") and len(texts) >= 4
    assert genre_colour(("Comedy",)) != genre_colour(("Horror",))
    assert genre_colour(("Unheard-of",)) == genre_colour(("Unheard-of",))


def test_the_poster_cache_keeps_the_most_recently_used() -> None:
    cache = PosterCache(max_entries=2)
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"
    cache.put("c", b"3")
    assert cache.get("b") is None and cache.get("a") == b"1" and cache.get("c") == b"3"
