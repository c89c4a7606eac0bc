"""The state store: the contract (:mod:`streamrec.store.base`) and its backends, chosen by URL.

    from streamrec.store import open_store
    store = open_store("sqlite:///var/streamrec.db")          # relative path
    store = open_store("sqlite:////srv/streamrec/state.db")   # absolute path
    store = open_store("aerospike://10.0.0.1:3000,10.0.0.2:3000/streamrec")
    store = open_store(None)   # STREAMREC_STORE / STREAMREC_AEROSPIKE_HOSTS, else the SQLite default

Backends register a factory per URL scheme in ``BACKENDS``; the Aerospike one is imported only
when asked for, so the embedded default never loads the C client.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from streamrec.store.base import RecordTooBig, Store, StoreError, StoreUnavailable

__all__ = [
    "BACKENDS",
    "RecordTooBig",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "open_store",
]


def _int_option(url: str, options: dict[str, list[str]], name: str) -> dict[str, int]:
    if name not in options:
        return {}
    raw = options[name][-1]
    try:
        return {name: int(raw)}
    except ValueError:
        raise ValueError(f"store URL {url!r}: option {name} must be an integer, got {raw!r}") from None


def _open_sqlite(url: str) -> Store:
    from streamrec.store.sqlite import SqliteStore

    parts = urlsplit(url)
    if parts.netloc:
        raise ValueError(f"store URL {url!r}: sqlite takes no host; write sqlite:///relative or sqlite:////absolute")
    path = parts.path[1:]  # "sqlite:///var/x.db" -> "var/x.db"; "sqlite:////tmp/x.db" -> "/tmp/x.db"
    if not path:
        raise ValueError(f"store URL {url!r}: missing the database file path")
    options = parse_qs(parts.query)
    return SqliteStore(path, **_int_option(url, options, "user_ttl_seconds"))


def _open_aerospike(url: str) -> Store:
    from streamrec.store.aerospike import AerospikeStore, parse_aerospike_url

    return AerospikeStore(parse_aerospike_url(url))


#: URL scheme -> factory. Other backends add themselves here.
BACKENDS: dict[str, Callable[[str], Store]] = {
    "sqlite": _open_sqlite,
    "aerospike": _open_aerospike,
}


def open_store(url: str | None = None) -> Store:
    """Open the store named by ``url`` (``None``: from the environment, see ``streamrec.config``).

    Raises ``ValueError`` for a malformed URL and :class:`StoreUnavailable` when the backend
    cannot be reached.
    """
    if url is None:
        from streamrec.config import Settings

        url = Settings.from_env().store_url
    scheme = urlsplit(url).scheme
    factory = BACKENDS.get(scheme)
    if factory is None:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"store URL {url!r}: unknown scheme {scheme!r} (known: {known})")
    return factory(url)
