"""Compact byte encodings shared by the store backends (pure functions, no I/O).

A user state is one blob: a 1-byte format tag, a u32 vector length (``0xFFFFFFFF``: none), the
user vector as float32 little-endian bytes (no base64), then the body. The body is MessagePack
with the lists laid out as columns (history ids, times and weights, ...), so a read unpacks a few
arrays in C and builds the entries from them in C loops (:func:`_packed_user`); bodies over
``COMPRESS_OVER_BYTES`` are Zstandard-compressed (level 1: a typical profile's 7.4 KB body to
~3.3 KB, as small as the zlib+JSON record was, decompressed ~3x faster than zlib; a profile at the
bounds to ~14.4 KB). Decoding a typical profile costs a fraction of the compact JSON it replaced
(issue 13); a backend's batch read decodes through :func:`decode_users`, which keeps the garbage
collector off while the batch's entries are built. Blobs written before are still read: JSON bodies (tags ``_PLAIN``, ``_ZLIB``) and
zlib-compressed MessagePack (``_PACKED_ZLIB``, written for a day). ``user_id`` and ``version``
are not in the blob: they are the record key and a separate column/bin, so the version can be
bumped atomically by the backend.
"""

from __future__ import annotations

import gc
import json
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, repeat, starmap
from operator import attrgetter
from typing import Any

import msgpack  # type: ignore[import-untyped]
import msgspec
import numpy as np
import zstandard

from streamrec.events.model import CatalogItem
from streamrec.model import HistoryEntry, Progress, ScoredItem, UserState

_PLAIN = 1  # compact JSON body: written until issue 13, still read
_ZLIB = 2  # zlib of a compact JSON body: idem
_PACKED = 3  # MessagePack body (columns)
_PACKED_ZLIB = 4  # zlib of a MessagePack body: written for a day, still read
_PACKED_ZSTD = 5  # Zstandard (level 1) of a MessagePack body
_NO_VECTOR = 0xFFFFFFFF
_HEADER = struct.Struct("<BI")
#: Bodies longer than this are compressed; shorter ones would not gain enough to pay the CPU.
COMPRESS_OVER_BYTES = 512
# zstandard's (de)compressor objects are not thread safe, and one made per call costs more than
# the call: one of each per thread.
_zstd = threading.local()


def _zstd_compress(body: bytes) -> bytes:
    compressor = getattr(_zstd, "compressor", None)
    if compressor is None:
        compressor = _zstd.compressor = zstandard.ZstdCompressor(level=1)
    return compressor.compress(body)  # type: ignore[no-any-return]


def _zstd_decompress(body: bytes | memoryview) -> bytes:
    decompressor = getattr(_zstd, "decompressor", None)
    if decompressor is None:
        decompressor = _zstd.decompressor = zstandard.ZstdDecompressor()
    return decompressor.decompress(body)  # type: ignore[no-any-return]
_F32 = np.dtype("<f4")


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def encode_vector(vector: np.ndarray | Sequence[float]) -> bytes:
    """A 1-D float vector as float32 little-endian bytes."""
    array = np.asarray(vector, dtype=_F32)
    if array.ndim != 1:
        raise ValueError(f"vector: expected a 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("vector: contains NaN or infinity")
    return array.tobytes()


def decode_vector(raw: bytes) -> np.ndarray:
    if len(raw) % 4:
        raise ValueError(f"vector: {len(raw)} bytes is not a whole number of float32")
    return np.frombuffer(raw, dtype=_F32).astype(np.float32)


# Entries are built by C loops over the columns (:func:`decode_user`): ``object.__new__`` called
# over the count, then each field's slot descriptor ``__set__`` called over its column. A frozen
# dataclass's ``__init__`` sets each field through ``object.__setattr__`` in Python: half a read's
# time went there. The entry types have no ``__post_init__``: nothing is skipped. The calls go
# through ``starmap`` over one argument tuple (``repeat``) or ``zip``'s (which zip reuses while
# nothing holds it), not ``map``: neither callable takes vectorcall, so ``map`` made and freed an
# argument tuple per call, ~30 % of building the entries (a typical profile: ~580 calls).
_NEW = object.__new__
# Runs an iterator to its end, keeping nothing (a maxlen-0 deque's extend touches no state: thread safe).
_consume: Callable[[Iterable[Any]], None] = deque(maxlen=0).extend


def _setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    return getattr(cls, name).__set__  # type: ignore[no-any-return]


_set_h_video, _set_h_ts, _set_h_weight = (_setter(HistoryEntry, f) for f in ("video_id", "ts", "weight"))
_set_p_video, _set_p_position, _set_p_duration, _set_p_updated = (
    _setter(Progress, f) for f in ("video_id", "position_sec", "duration_sec", "updated_at"))
_set_s_video, _set_s_score = _setter(ScoredItem, "video_id"), _setter(ScoredItem, "score")
# A field added to an entry type needs its column and its loop here (a test checks the fields).


def _calls(setter: Callable[[Any, Any], None], entries: list[Any], column: list[Any]) -> Iterator[None]:
    """``setter(entry, value)`` over the pairs, lazily, in C (see above: not ``map``)."""
    return starmap(setter, zip(entries, column))  # noqa: RUF058 (map: an argument tuple per call)


_video_id, _ts, _weight = attrgetter("video_id"), attrgetter("ts"), attrgetter("weight")
_position, _duration, _updated_at = attrgetter("position_sec"), attrgetter("duration_sec"), attrgetter("updated_at")
_score = attrgetter("score")


def encode_user(state: UserState) -> bytes:
    """The blob of one user state, already cut to the bounds by the caller."""
    history, progress, picks = state.history, list(state.in_progress.values()), state.top_picks
    body = msgpack.packb([
        list(map(_video_id, history)), list(map(_ts, history)), list(map(_weight, history)),
        list(map(_video_id, progress)), list(map(_position, progress)), list(map(_duration, progress)),
        list(map(_updated_at, progress)),
        state.seen, state.disliked, state.my_list,
        list(map(_video_id, picks)), list(map(_score, picks)), state.top_picks_at,
        state.preferred_genres, state.recent_event_ids, state.updated_at,
    ])
    vector = b"" if state.vector is None else encode_vector(state.vector)
    tag = _PACKED
    if len(body) > COMPRESS_OVER_BYTES:
        tag, body = _PACKED_ZSTD, _zstd_compress(body)
    length = _NO_VECTOR if state.vector is None else len(vector) // 4
    return _HEADER.pack(tag, length) + vector + body


class _GcPause:
    """``with _gc_paused:`` keeps the cyclic garbage collector off for the block (issue 13).

    A batch of 50 typical profiles makes ~8,400 entry objects, all tracked by the collector: with
    it on, decoding the batch ran ~12 young collections and promoted the states to the older
    generations, whose full collections walk the whole heap (in a profile of a loop of batch
    decodes ~45 % of the time was the collector's, and a batch's p99 was a full collection).
    Paused, the states are walked once, by the first young collection after the batch. Threads
    share the pause: the first one in turns the collector off, the last one out turns it back
    on, and only if it was on when the first came in. A decode makes no cycles: nothing is kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._resume = False

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._depth += 1

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._resume:
                gc.enable()


_gc_paused = _GcPause()
#: Users decoded per pause: a large read (the pipeline's) lets the collector run between chunks.
_PAUSE_ROWS = 256


def decode_users(rows: Iterable[tuple[str, bytes, int]]) -> dict[str, UserState]:
    """Each ``(user_id, blob, version)`` decoded as :func:`decode_user` does (a batch read's
    states), with the garbage collector paused while they are built (:class:`_GcPause`)."""
    rows = list(rows)
    out: dict[str, UserState] = {}
    for start in range(0, len(rows), _PAUSE_ROWS):
        with _gc_paused:
            for user_id, blob, version in rows[start : start + _PAUSE_ROWS]:
                out[user_id] = decode_user(user_id, blob, version)
    return out


def decode_user(user_id: str, blob: bytes, version: int) -> UserState:
    if len(blob) < _HEADER.size:
        raise ValueError(f"user {user_id!r}: state blob of {len(blob)} bytes is truncated")
    tag, length = _HEADER.unpack_from(blob)
    offset = _HEADER.size
    vector = None
    if length != _NO_VECTOR:
        if len(blob) < offset + 4 * length:
            raise ValueError(f"user {user_id!r}: state blob of {len(blob)} bytes is truncated")
        vector = np.frombuffer(blob, _F32, length, offset).astype(np.float32)
        offset += 4 * length
    if tag == _PACKED_ZSTD:  # the typical profile; zstandard reads a copied body ~1 µs faster than a view
        return _packed_user(user_id, msgpack.unpackb(_zstd_decompress(blob[offset:])), vector, version)
    body: bytes | memoryview = memoryview(blob)[offset:]  # no copy of the body
    if tag == _PACKED_ZLIB or tag == _ZLIB:
        body = zlib.decompress(body)
    if tag != _PACKED and tag != _PACKED_ZLIB:
        if tag != _PLAIN and tag != _ZLIB:
            raise ValueError(f"user {user_id!r}: unknown state format tag {tag}")
        return _decode_json_user(user_id, bytes(body), vector, version)
    return _packed_user(user_id, msgpack.unpackb(body), vector, version)


def _packed_user(user_id: str, columns: list[Any], vector: np.ndarray | None, version: int) -> UserState:
    """The state from a MessagePack body's columns (unpacked), entries built in C loops."""
    (hv, ht, hw, pv, pp, pd, pt, seen, disliked, my_list, tv, ts, top_picks_at, genres, event_ids,
     updated_at) = columns
    n, m, k = len(hv), len(pv), len(tv)
    if len(ht) != n or len(hw) != n or len(pp) != m or len(pd) != m or len(pt) != m or len(ts) != k:
        raise ValueError(f"user {user_id!r}: columns of different lengths in a state blob")
    history: list[HistoryEntry] = list(starmap(_NEW, repeat((HistoryEntry,), n)))
    progress: list[Progress] = list(starmap(_NEW, repeat((Progress,), m)))
    picks: list[ScoredItem] = list(starmap(_NEW, repeat((ScoredItem,), k)))
    _consume(chain(  # one C loop over every column's setter calls
        _calls(_set_h_video, history, hv), _calls(_set_h_ts, history, ht), _calls(_set_h_weight, history, hw),
        _calls(_set_p_video, progress, pv), _calls(_set_p_position, progress, pp),
        _calls(_set_p_duration, progress, pd), _calls(_set_p_updated, progress, pt),
        _calls(_set_s_video, picks, tv), _calls(_set_s_score, picks, ts)))
    return UserState(
        user_id=user_id, history=history, in_progress=dict(zip(pv, progress)), seen=seen, disliked=disliked,
        my_list=my_list, vector=vector, top_picks=picks, top_picks_at=top_picks_at, preferred_genres=genres,
        recent_event_ids=event_ids, updated_at=updated_at, version=version)


def _decode_json_user(user_id: str, body: bytes, vector: np.ndarray | None, version: int) -> UserState:
    """A state written in the JSON format (before issue 13)."""
    d: dict[str, Any] = json.loads(body)
    # map() over the unzipped columns builds the records in a C loop: the feed's hot path.
    progress = list(map(Progress, *zip(*d["p"], strict=True))) if d["p"] else []
    return UserState(
        user_id=user_id,
        history=list(map(HistoryEntry, *zip(*d["h"], strict=True))) if d["h"] else [],
        in_progress={p.video_id: p for p in progress},
        seen=d["s"],
        disliked=d["d"],
        my_list=d["l"],
        vector=vector,
        top_picks=list(map(ScoredItem, *zip(*d["t"], strict=True))) if d["t"] else [],
        top_picks_at=d["ta"],
        preferred_genres=d["g"],
        recent_event_ids=d["e"],
        updated_at=d["u"],
        version=version,
    )


def encode_item(item: CatalogItem) -> bytes:
    """Catalog metadata as compact JSON (the vector is stored apart)."""
    return _json(
        [
            item.title,
            item.description,
            list(item.genres),
            item.content_type,
            item.release_year,
            item.language,
            item.maturity_rating,
            list(item.regions),
            item.duration_sec,
            item.added_at,
            item.thumbnail,
            item.extra,
        ]
    )


def decode_item(video_id: str, raw: bytes) -> CatalogItem:
    title, desc, genres, ctype, year, lang, maturity, regions, duration, added, thumb, extra = json.loads(raw)
    return CatalogItem(
        video_id=video_id,
        title=title,
        description=desc,
        genres=tuple(genres),
        content_type=ctype,
        release_year=year,
        language=lang,
        maturity_rating=maturity,
        regions=tuple(regions),
        duration_sec=duration,
        added_at=added,
        thumbnail=thumb,
        extra=extra,
    )


def encode_scored(items: Sequence[ScoredItem]) -> bytes:
    return _json([[s.video_id, s.score] for s in items])


def decode_scored(raw: bytes) -> list[ScoredItem]:
    """A ranked list's entries, as ``[ScoredItem(v, s) for v, s in json.loads(raw)]`` (the same
    values and types): msgspec's JSON reader, and the entries built in C loops as a user's top
    picks are. Every feed's ranked lists are read again each ``lists_ttl_s``: ~340 -> ~150 µs
    for a list of 1,000."""
    pairs = _JSON_DECODER.decode(raw)
    n = len(pairs)
    entries: list[ScoredItem] = list(starmap(_NEW, repeat((ScoredItem,), n)))
    if n:
        ids, scores = zip(*pairs, strict=True)  # every entry a [video_id, score] pair, or ValueError
        _consume(chain(_calls(_set_s_video, entries, ids), _calls(_set_s_score, entries, scores)))  # type: ignore[arg-type]
    return entries


_JSON_DECODER = msgspec.json.Decoder()


def check_id(value: object, field_name: str) -> str:
    """Ids are non-empty strings; anything else is a caller bug worth a clear message."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field_name}: expected a non-empty string, got {value!r}")
    return value
