"""What only a real Aerospike server can show: its own record-size limit and the TTL it stores.

Runs when ``STREAMREC_AEROSPIKE_HOSTS`` is set (``pytest -m aerospike``), skipped otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from streamrec.model import UserState
from streamrec.store.base import RecordTooBig
from tests.fixtures.store import BACKENDS, StoreFactory

ONLY_AEROSPIKE = pytest.mark.parametrize("backend", [p for p in BACKENDS if p.values == ("aerospike",)])


@ONLY_AEROSPIKE
def test_the_servers_own_record_limit_maps_to_record_too_big(make_store: StoreFactory,
                                                            key: Callable[[str], str]) -> None:
    # Lift our client-side bound so the 9 MiB record reaches the server (write block <= 8 MiB).
    store = make_store(max_record_bytes=64 << 20)
    uid = key("enormous")
    with pytest.raises(RecordTooBig):
        store.put_users([UserState(uid, vector=np.ones(9 << 18, dtype=np.float32))])
    assert store.get_user(uid) is None


@ONLY_AEROSPIKE
def test_user_records_carry_the_configured_ttl_and_co_watch_records_none(make_store: StoreFactory,
                                                                       key: Callable[[str], str]) -> None:
    from streamrec.store.aerospike import SET_COWATCH, SET_USER, AerospikeStore

    store = make_store(user_ttl_seconds=3600)
    assert isinstance(store, AerospikeStore)
    uid, a, b = key("u"), key("a"), key("b")
    store.put_users([UserState(uid)])
    store.add_cowatch({(a, b): 1})
    _, user_meta, bins = store.client.get((store.namespace, SET_USER, uid))
    assert 3590 <= user_meta["ttl"] <= 3600 and bins["ver"] >= 1
    _, cowatch_meta, _ = store.client.get((store.namespace, SET_COWATCH, a))
    assert cowatch_meta["ttl"] in (-1, 0xFFFFFFFF)  # never expires
