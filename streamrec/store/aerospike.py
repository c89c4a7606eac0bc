"""The production backend: Aerospike, through the official (synchronous, C) ``aerospike`` client.

URL: ``aerospike://host:port[,host:port]/namespace`` (namespace defaults to ``streamrec``).
Layout (ARCHITECTURE.md), bin names <= 15 characters:

=========  =========  =====================================================================
set        key        bins
=========  =========  =====================================================================
user       user_id    ``state`` (packed blob, :mod:`streamrec.store.codec`), ``ver`` (int);
                      record TTL = ``user_ttl_seconds`` (needs ``nsup-period`` on the namespace)
cowatch    video_id   ``nbrs`` KEY_VALUE_ORDERED map neighbour -> count, kept to the top
                      ``COWATCH_NEIGHBOURS_LIMIT`` by rank in the same ``operate``; ``n`` the
                      item's own watch count
trend      list key   ``items`` list of ``[video_id, score]``, ``upd``, ``wend`` (absent: none)
item       video_id   ``meta`` (compact JSON bytes), ``vec`` (float32 bytes)
=========  =========  =====================================================================

Every write call is one ``batch_write`` (one record per key, the ops of that key inside it, so
each record's update is atomic: the version bump is an ``increment`` beside the ``write`` of the
state); every read call is one ``batch_read``. Failures map onto :mod:`streamrec.store.base`:
unreachable cluster or timeouts -> ``StoreUnavailable`` (bounded by ``connect_timeout_ms`` and
``total_timeout_ms``, never a hang), record too big -> ``RecordTooBig``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aerospike
import numpy as np
from aerospike import exception as aerospike_errors
from aerospike_helpers.batch.records import BatchRecords, Write  # type: ignore[import-untyped]
from aerospike_helpers.operations import map_operations, operations  # type: ignore[import-untyped]

from streamrec.events.model import CatalogItem
from streamrec.model import (
    COWATCH_NEIGHBOURS_LIMIT,
    RANKED_LIST_LIMIT,
    RankedList,
    ScoredItem,
    UserState,
)
from streamrec.store import codec
from streamrec.store.base import (
    MAX_RECORD_BYTES,
    USER_TTL_SECONDS,
    RecordTooBig,
    Store,
    StoreError,
    StoreUnavailable,
)

SET_USER, SET_COWATCH, SET_TREND, SET_ITEM = "user", "cowatch", "trend", "item"
BIN_STATE, BIN_VERSION = "state", "ver"
BIN_NEIGHBOURS, BIN_ITEM_COUNT = "nbrs", "n"
BIN_LIST_ITEMS, BIN_LIST_UPDATED, BIN_LIST_WINDOW_END = "items", "upd", "wend"
BIN_META, BIN_VECTOR = "meta", "vec"

_OK, _NOT_FOUND, _TOO_BIG = 0, 2, 13
#: Result codes that mean "the cluster did not answer in time or cannot take the write now":
#: server side timeout, server full, partition unavailable, key busy, device overload; client side
#: async-connection, no more connections, no node, connection, TLS, retries exhausted, error-rate
#: limit, no response. Other negative codes (bad parameter, bad host) are our bugs: StoreError.
_UNAVAILABLE_CODES = frozenset({9, 8, 11, 14, 18, -6, -7, -8, -9, -10, -12, -14, -15})
_COWATCH_MAP_POLICY = {"map_order": aerospike.MAP_KEY_VALUE_ORDERED}


@dataclass(frozen=True, slots=True)
class AerospikeConfig:
    """Where the cluster is and how long to wait for it."""

    hosts: tuple[tuple[str, int], ...]
    namespace: str = "streamrec"
    connect_timeout_ms: int = 1000
    total_timeout_ms: int = 1000  # per call, retries included
    socket_timeout_ms: int = 300  # per attempt, so a retry still fits in the total
    max_retries: int = 2
    user_ttl_seconds: int = USER_TTL_SECONDS
    max_record_bytes: int = MAX_RECORD_BYTES

    def __post_init__(self) -> None:
        if not self.hosts:
            raise ValueError("hosts: at least one host:port is required")
        if not self.namespace:
            raise ValueError("namespace: must not be empty")
        for name in ("connect_timeout_ms", "total_timeout_ms", "user_ttl_seconds", "max_record_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")


def parse_hosts(text: str) -> tuple[tuple[str, int], ...]:
    """``"a:3000,b:3001"`` -> ``(("a", 3000), ("b", 3001))``; the port defaults to 3000."""
    hosts = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        host, _, port = part.rpartition(":") if ":" in part else (part, "", "3000")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"aerospike hosts: {part!r} is not host:port")
        hosts.append((host, int(port)))
    if not hosts:
        raise ValueError(f"aerospike hosts: no host:port in {text!r}")
    return tuple(hosts)


def parse_aerospike_url(url: str) -> AerospikeConfig:
    """``aerospike://host:port[,host:port]/namespace[?total_timeout_ms=..&user_ttl_seconds=..]``."""
    parts = urlsplit(url)
    if parts.scheme != "aerospike":
        raise ValueError(f"store URL {url!r}: expected the aerospike:// scheme")
    options: dict[str, int] = {}
    for pair in filter(None, parts.query.split("&")):
        name, _, value = pair.partition("=")
        if name not in {"connect_timeout_ms", "total_timeout_ms", "socket_timeout_ms", "max_retries",
                        "user_ttl_seconds", "max_record_bytes"}:
            raise ValueError(f"store URL {url!r}: unknown option {name!r}")
        if not value.isdigit():
            raise ValueError(f"store URL {url!r}: option {name} must be an integer, got {value!r}")
        options[name] = int(value)
    namespace = parts.path.strip("/") or "streamrec"
    return AerospikeConfig(hosts=parse_hosts(parts.netloc), namespace=namespace, **options)  # type: ignore[arg-type]


def cowatch_ops(neighbour_counts: Mapping[str, int]) -> list[dict[str, Any]]:
    """One item's increments, then the trim to the top K by rank, for a single atomic ``operate``.

    ``inverted=True`` keeps the ranks inside [-K, -1] (the K largest counts; ties at the cut are
    ranked by key, so the larger id stays) and removes everything else.
    """
    ops = [map_operations.map_increment(BIN_NEIGHBOURS, nb, int(c), _COWATCH_MAP_POLICY)
           for nb, c in sorted(neighbour_counts.items())]
    ops.append(map_operations.map_remove_by_rank_range(
        BIN_NEIGHBOURS, -COWATCH_NEIGHBOURS_LIMIT, COWATCH_NEIGHBOURS_LIMIT,
        aerospike.MAP_RETURN_NONE, inverted=True))
    return ops


def user_ops(blob: bytes) -> list[dict[str, Any]]:
    """Replace the state and bump the version in the same record operation."""
    return [operations.write(BIN_STATE, blob), operations.increment(BIN_VERSION, 1)]


def list_ops(ranked: RankedList) -> list[dict[str, Any]]:
    ops = [operations.write(BIN_LIST_ITEMS, [[s.video_id, float(s.score)] for s in ranked.items[:RANKED_LIST_LIMIT]]),
           operations.write(BIN_LIST_UPDATED, int(ranked.updated_at))]
    if ranked.window_end is not None:
        ops.append(operations.write(BIN_LIST_WINDOW_END, int(ranked.window_end)))
    return ops


def map_error(exc: aerospike_errors.AerospikeError, what: str) -> StoreError:
    """An aerospike exception as one of ours (the caller raises it ``from exc``)."""
    code = getattr(exc, "code", None)
    message = f"aerospike {what}: {getattr(exc, 'msg', None) or exc} (code {code})"
    if isinstance(exc, aerospike_errors.RecordTooBig) or code == _TOO_BIG:
        return RecordTooBig(message)
    if isinstance(exc, (aerospike_errors.TimeoutError, aerospike_errors.ClusterError)) or code in _UNAVAILABLE_CODES:
        return StoreUnavailable(message)
    return StoreError(message)


def result_error(code: int, what: str) -> StoreError | None:
    """A per-record batch result code as one of our errors; ``None`` for ok / not found."""
    if code in (_OK, _NOT_FOUND):
        return None
    message = f"aerospike {what}: record failed with result code {code}"
    if code == _TOO_BIG:
        return RecordTooBig(message)
    if code in _UNAVAILABLE_CODES:
        return StoreUnavailable(message)
    return StoreError(message)


class AerospikeStore(Store):
    """See the module docstring. Connects lazily, on first use, and again on every use while the
    cluster cannot be reached: a service opens its store and starts (degraded) while Aerospike is
    down, and recovers when it comes back. The C client is thread-safe and pools its own
    connections, so one instance serves every thread."""

    def __init__(self, config: AerospikeConfig) -> None:
        self.config = config
        self.namespace = config.namespace
        timeouts = {"total_timeout": config.total_timeout_ms, "socket_timeout": config.socket_timeout_ms,
                    "max_retries": config.max_retries}
        self._batch_policy = dict(timeouts)
        self._client_config = {
            "hosts": list(config.hosts),
            "connect_timeout": config.connect_timeout_ms,
            "policies": {"read": dict(timeouts), "write": dict(timeouts), "operate": dict(timeouts),
                         "batch": dict(timeouts)},
        }
        self._client: Any = None
        self._connecting = threading.Lock()
        self._closed = False

    @property
    def client(self) -> Any:
        """The connected client; connects first if need be (``StoreUnavailable`` if it cannot)."""
        client = self._client
        if client is not None:
            return client
        if self._closed:
            raise StoreError("aerospike: store is closed")
        with self._connecting:  # one thread connects; the others wait for its result
            if self._client is None:
                try:
                    client = aerospike.client(self._client_config)
                    if not client.is_connected():
                        client.connect()
                except aerospike_errors.AerospikeError as exc:
                    hosts = ",".join(f"{h}:{p}" for h, p in self.config.hosts)
                    raise StoreUnavailable(f"aerospike {hosts}: cannot connect: {exc}") from exc
                self._client = client
            return self._client

    # -- plumbing --------------------------------------------------------------------------
    def _key(self, set_name: str, key: str) -> tuple[str, str, str]:
        return (self.namespace, set_name, key)

    def _write(self, records: list[Write], what: str) -> None:
        if not records:
            return
        batch = BatchRecords(records)
        try:
            self.client.batch_write(batch, self._batch_policy)
        except aerospike_errors.AerospikeError as exc:
            raise map_error(exc, what) from exc
        # batch_write raises only when the whole request fails: a record can fail alone.
        for record in batch.batch_records:
            error = result_error(record.result, what)
            if error is not None:
                raise error

    def _read(self, set_name: str, ids: Sequence[str], bins: list[str], what: str) -> dict[str, dict[str, Any]]:
        """Bins of the records that exist, by id (one ``batch_read``)."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return {}
        try:
            batch = self.client.batch_read([self._key(set_name, i) for i in unique], bins, self._batch_policy)
        except aerospike_errors.AerospikeError as exc:
            raise map_error(exc, what) from exc
        found: dict[str, dict[str, Any]] = {}
        # Results come back in request order; keys are digests on the server, so pair by position.
        for video_or_user_id, record in zip(unique, batch.batch_records, strict=True):
            error = result_error(record.result, what)
            if error is not None:
                raise error
            if record.result == _OK and record.record is not None:
                found[video_or_user_id] = record.record[2] or {}
        return found

    def _check_size(self, what: str, key: str, size: int) -> None:
        if size > self.config.max_record_bytes:
            raise RecordTooBig(f"aerospike {what} {key!r}: {size} bytes exceeds {self.config.max_record_bytes}")

    # -- users -----------------------------------------------------------------------------
    def get_users(self, user_ids: Sequence[str]) -> dict[str, UserState]:
        found = self._read(SET_USER, user_ids, [BIN_STATE, BIN_VERSION], "get_users")
        return codec.decode_users((uid, bytes(bins[BIN_STATE]), int(bins.get(BIN_VERSION) or 0))
                                  for uid, bins in found.items() if bins.get(BIN_STATE) is not None)

    def get_user_versions(self, user_ids: Sequence[str]) -> dict[str, int]:
        # One batch read of the version bin alone: the feed cache's validity check.
        found = self._read(SET_USER, user_ids, [BIN_VERSION], "get_user_versions")
        return {uid: int(bins[BIN_VERSION]) for uid, bins in found.items() if bins.get(BIN_VERSION) is not None}

    def put_users(self, users: Iterable[UserState]) -> None:
        policy = {"ttl": self.config.user_ttl_seconds}
        records = []
        for user in users:
            uid = codec.check_id(user.user_id, "user_id")
            blob = codec.encode_user(user.bounded())
            self._check_size("user", uid, len(blob))
            records.append(Write(self._key(SET_USER, uid), user_ops(blob), policy=policy))
        self._write(records, "put_users")

    # -- co-watch --------------------------------------------------------------------------
    def add_cowatch(self, increments: Mapping[tuple[str, str], int]) -> None:
        by_item: dict[str, dict[str, int]] = defaultdict(dict)
        for (item, neighbour), count in increments.items():
            codec.check_id(item, "video_id")
            codec.check_id(neighbour, "neighbour")
            if item == neighbour:
                raise ValueError(f"neighbour: an item is not its own co-watch neighbour ({item!r})")
            by_item[item][neighbour] = by_item[item].get(neighbour, 0) + int(count)
        policy = {"ttl": aerospike.TTL_NEVER_EXPIRE}
        self._write([Write(self._key(SET_COWATCH, item), cowatch_ops(counts), policy=policy)
                     for item, counts in by_item.items()], "add_cowatch")

    def get_neighbours(self, video_ids: Sequence[str], k: int) -> dict[str, list[tuple[str, int]]]:
        if k <= 0:
            raise ValueError(f"k: must be positive, got {k}")
        # The whole map (<= K entries) comes back so ties are ordered by id exactly as the
        # contract says; a rank-range read would cut ties by the server's key order instead.
        found = self._read(SET_COWATCH, video_ids, [BIN_NEIGHBOURS], "get_neighbours")
        result = {}
        for item, bins in found.items():
            neighbours = bins.get(BIN_NEIGHBOURS)
            if neighbours:
                ranked = sorted(((str(nb), int(c)) for nb, c in neighbours.items()), key=lambda p: (-p[1], p[0]))
                result[item] = ranked[:k]
        return result

    def add_item_counts(self, increments: Mapping[str, int]) -> None:
        policy = {"ttl": aerospike.TTL_NEVER_EXPIRE}
        self._write([Write(self._key(SET_COWATCH, codec.check_id(v, "video_id")),
                           [operations.increment(BIN_ITEM_COUNT, int(n))], policy=policy)
                     for v, n in increments.items()], "add_item_counts")

    def get_item_counts(self, video_ids: Sequence[str]) -> dict[str, int]:
        found = self._read(SET_COWATCH, video_ids, [BIN_ITEM_COUNT], "get_item_counts")
        return {v: int(bins[BIN_ITEM_COUNT]) for v, bins in found.items() if bins.get(BIN_ITEM_COUNT) is not None}

    # -- ranked lists ------------------------------------------------------------------------
    def put_lists(self, lists: Iterable[RankedList]) -> None:
        # CREATE_OR_REPLACE: the record is exactly the new list (an old window end disappears).
        policy = {"ttl": aerospike.TTL_NEVER_EXPIRE, "exists": aerospike.POLICY_EXISTS_CREATE_OR_REPLACE}
        self._write([Write(self._key(SET_TREND, codec.check_id(r.key, "key")), list_ops(r), policy=policy)
                     for r in lists], "put_lists")

    def get_lists(self, keys: Sequence[str]) -> dict[str, RankedList]:
        found = self._read(SET_TREND, keys, [BIN_LIST_ITEMS, BIN_LIST_UPDATED, BIN_LIST_WINDOW_END], "get_lists")
        result = {}
        for key, bins in found.items():
            if bins.get(BIN_LIST_ITEMS) is None:
                continue
            window_end = bins.get(BIN_LIST_WINDOW_END)
            result[key] = RankedList(
                key=key,
                items=[ScoredItem(str(v), float(s)) for v, s in bins[BIN_LIST_ITEMS]],
                updated_at=int(bins.get(BIN_LIST_UPDATED) or 0),
                window_end=None if window_end is None else int(window_end),
            )
        return result

    # -- catalog and vectors -----------------------------------------------------------------
    def upsert_items(self, items: Iterable[CatalogItem]) -> None:
        records = []
        policy = {"ttl": aerospike.TTL_NEVER_EXPIRE}
        for item in items:
            vid = codec.check_id(item.video_id, "video_id")
            meta = codec.encode_item(item)
            self._check_size("item", vid, len(meta))
            # Default exists policy (update): the other bin, the vector, is left as it is.
            records.append(Write(self._key(SET_ITEM, vid), [operations.write(BIN_META, meta)], policy=policy))
        self._write(records, "upsert_items")

    def put_item_vectors(self, vectors: Mapping[str, np.ndarray]) -> None:
        records = []
        policy = {"ttl": aerospike.TTL_NEVER_EXPIRE}
        for vid, vector in vectors.items():
            codec.check_id(vid, "video_id")
            raw = codec.encode_vector(vector)
            self._check_size("item vector", vid, len(raw))
            records.append(Write(self._key(SET_ITEM, vid), [operations.write(BIN_VECTOR, raw)], policy=policy))
        self._write(records, "put_item_vectors")

    def get_items(self, video_ids: Sequence[str]) -> dict[str, CatalogItem]:
        found = self._read(SET_ITEM, video_ids, [BIN_META], "get_items")
        return {v: codec.decode_item(v, bytes(b[BIN_META])) for v, b in found.items() if b.get(BIN_META) is not None}

    def get_item_vectors(self, video_ids: Sequence[str]) -> dict[str, np.ndarray]:
        found = self._read(SET_ITEM, video_ids, [BIN_VECTOR], "get_item_vectors")
        return {v: codec.decode_vector(bytes(b[BIN_VECTOR])) for v, b in found.items() if b.get(BIN_VECTOR) is not None}

    def get_items_with_vectors(
        self, video_ids: Sequence[str]
    ) -> dict[str, tuple[CatalogItem | None, np.ndarray | None]]:
        found = self._read(SET_ITEM, video_ids, [BIN_META, BIN_VECTOR], "get_items_with_vectors")
        result: dict[str, tuple[CatalogItem | None, np.ndarray | None]] = {}
        for vid, bins in found.items():
            meta, vector = bins.get(BIN_META), bins.get(BIN_VECTOR)
            if meta is None and vector is None:
                continue
            result[vid] = (None if meta is None else codec.decode_item(vid, bytes(meta)),
                           None if vector is None else codec.decode_vector(bytes(vector)))
        return result

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            client, self._client = self._client, None
            try:
                if client is not None:
                    client.close()
            except aerospike_errors.AerospikeError:
                pass  # closing a client whose cluster is gone is not an error worth raising
