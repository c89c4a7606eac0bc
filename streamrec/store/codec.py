"""Compact byte encodings shared by the store backends (pure functions, no I/O).

A user state is one blob: a 1-byte format tag, then either compact JSON or zlib-compressed
compact JSON (states near the bounds are mostly repeated video ids, which compress ~3x).
The user vector is carried inside as base64-free float32 bytes: the blob is
``tag | u32 vector length (0xFFFFFFFF: none) | float32 little-endian | body``.
``user_id`` and ``version`` are not in the blob: they are the record key and a separate
column/bin, so the version can be bumped atomically by the backend.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from streamrec.events.model import CatalogItem
from streamrec.model import HistoryEntry, Progress, ScoredItem, UserState

_PLAIN = 1
_ZLIB = 2
_NO_VECTOR = 0xFFFFFFFF
_HEADER = struct.Struct("<BI")
#: Bodies longer than this are compressed; shorter ones would not gain enough to pay the CPU.
COMPRESS_OVER_BYTES = 512
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


def encode_user(state: UserState) -> bytes:
    """The blob of one user state, already cut to the bounds by the caller."""
    body = _json(
        {
            "h": [[e.video_id, e.ts, e.weight] for e in state.history],
            "p": [[p.video_id, p.position_sec, p.duration_sec, p.updated_at] for p in state.in_progress.values()],
            "s": state.seen,
            "d": state.disliked,
            "l": state.my_list,
            "t": [[s.video_id, s.score] for s in state.top_picks],
            "ta": state.top_picks_at,
            "g": state.preferred_genres,
            "e": state.recent_event_ids,
            "u": state.updated_at,
        }
    )
    vector = b"" if state.vector is None else encode_vector(state.vector)
    tag = _PLAIN
    if len(body) > COMPRESS_OVER_BYTES:
        tag, body = _ZLIB, zlib.compress(body, 1)
    length = _NO_VECTOR if state.vector is None else len(vector) // 4
    return _HEADER.pack(tag, length) + vector + body


def decode_user(user_id: str, blob: bytes, version: int) -> UserState:
    if len(blob) < _HEADER.size:
        raise ValueError(f"user {user_id!r}: state blob of {len(blob)} bytes is truncated")
    tag, length = _HEADER.unpack_from(blob)
    offset = _HEADER.size
    vector = None
    if length != _NO_VECTOR:
        end = offset + 4 * length
        vector = np.frombuffer(blob[offset:end], dtype=_F32).astype(np.float32)
        offset = end
    body = blob[offset:]
    if tag == _ZLIB:
        body = zlib.decompress(body)
    elif tag != _PLAIN:
        raise ValueError(f"user {user_id!r}: unknown state format tag {tag}")
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
    return [ScoredItem(v, s) for v, s in json.loads(raw)]


def check_id(value: object, field_name: str) -> str:
    """Ids are non-empty strings; anything else is a caller bug worth a clear message."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field_name}: expected a non-empty string, got {value!r}")
    return value
