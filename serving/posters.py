"""Generated posters: every title's ``thumbnail`` answers 200, with the catalog's own image when it
has one and otherwise an SVG made here (the title, its year and genres, a colour by genre).

``GET /posters/{video_id}.svg`` is public like ``/static/`` (an ``<img>`` sends no bearer token)
and reads only the catalog entry, through the service's shared catalog cache. Rendered posters
are kept in a bounded LRU; a poster drawn while the store is down (no title yet) is not kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import textwrap
from collections import OrderedDict
from xml.sax.saxutils import escape

from aiohttp import web

from serving.keys import CONFIG, POSTERS, SHARED, STORE
from serving.params import check_id
from streamrec.events.model import CatalogItem
from streamrec.store.base import StoreError

#: A colour per common genre (hue, saturation %, lightness %); others get one from the name's hash.
GENRE_COLOURS = {
    "Action": (4, 70, 38), "Adventure": (28, 75, 38), "Animation": (48, 80, 40), "Children": (90, 55, 36),
    "Comedy": (42, 85, 42), "Crime": (220, 25, 26), "Documentary": (180, 35, 30), "Drama": (265, 40, 34),
    "Fantasy": (290, 45, 36), "Film-Noir": (0, 0, 18), "Horror": (350, 65, 24), "Musical": (320, 55, 40),
    "Mystery": (235, 40, 30), "Romance": (335, 60, 42), "Sci-Fi": (195, 70, 32), "Thriller": (12, 45, 26),
    "War": (75, 25, 28), "Western": (32, 50, 32),
}
WIDTH, HEIGHT = 200, 300


def genre_colour(genres: tuple[str, ...]) -> tuple[int, int, int]:
    if not genres:
        return (210, 10, 30)
    genre = genres[0]
    if genre in GENRE_COLOURS:
        return GENRE_COLOURS[genre]
    return (int(hashlib.sha1(genre.encode()).hexdigest()[:4], 16) % 360, 50, 34)


def poster_svg(video_id: str, item: CatalogItem | None) -> bytes:
    """The poster of a title: its title (wrapped), year and genres on its genre's colour."""
    title = item.title if item is not None else f"Title {video_id}"
    genres = item.genres if item is not None else ()
    hue, sat, light = genre_colour(genres)
    lines = textwrap.wrap(title, 14, max_lines=5, placeholder="…") or [video_id]
    first_y = HEIGHT // 2 - (len(lines) - 1) * 12
    # A line wider than the poster (about 12 px a character at this size) is squeezed to fit.
    fit = f' textLength="{WIDTH - 24}" lengthAdjust="spacingAndGlyphs"'
    text = "".join(f'<text x="{WIDTH // 2}" y="{first_y + i * 24}" class="t"{fit if len(line) * 12 > WIDTH - 24 else ""}>'
                   f'{escape(line)}</text>' for i, line in enumerate(lines))
    footer = " · ".join(genres[:2])
    year = str(item.release_year) if item is not None and item.release_year else ""
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title, {chr(34): "&quot;"})}">'
        '<defs><linearGradient id="g" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="hsl({hue},{sat}%,{light + 14}%)"/>'
        f'<stop offset="1" stop-color="hsl({hue},{sat}%,{max(light - 14, 4)}%)"/></linearGradient>'
        '<style>text{font-family:system-ui,sans-serif;fill:#fff;text-anchor:middle}'
        '.t{font-size:19px;font-weight:700}.s{font-size:13px;fill:rgba(255,255,255,.8)}</style></defs>'
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="url(#g)"/>{text}'
        f'<text x="{WIDTH // 2}" y="{HEIGHT - 40}" class="s">{escape(year)}</text>'
        f'<text x="{WIDTH // 2}" y="{HEIGHT - 20}" class="s">{escape(footer)}</text></svg>'
    )
    return svg.encode()


class PosterCache:
    """Rendered posters, least recently used out first."""

    def __init__(self, max_entries: int = 20_000) -> None:
        if max_entries <= 0:
            raise ValueError(f"max_entries: must be positive, got {max_entries}")
        self.max_entries = max_entries
        self._posters: OrderedDict[str, bytes] = OrderedDict()

    def get(self, video_id: str) -> bytes | None:
        body = self._posters.get(video_id)
        if body is not None:
            self._posters.move_to_end(video_id)
        return body

    def put(self, video_id: str, body: bytes) -> None:
        self._posters[video_id] = body
        self._posters.move_to_end(video_id)
        while len(self._posters) > self.max_entries:
            self._posters.popitem(last=False)


async def poster(request: web.Request) -> web.Response:
    video_id = check_id("video_id", request.match_info["video_id"])
    cache = request.app[POSTERS]
    body = cache.get(video_id)
    if body is None:
        config = request.app[CONFIG]
        try:
            async with asyncio.timeout(config.store_deadline_s * 4):
                item = (await request.app[SHARED].items(request.app[STORE], [video_id])).get(video_id)
        except (TimeoutError, StoreError):
            return web.Response(body=poster_svg(video_id, None), content_type="image/svg+xml",
                                headers={"Cache-Control": "no-store"})
        if item is not None and item.thumbnail:
            raise web.HTTPFound(item.thumbnail)  # the catalog's own image
        body = poster_svg(video_id, item)
        cache.put(video_id, body)
    return web.Response(body=body, content_type="image/svg+xml", headers={"Cache-Control": "public, max-age=3600"})
