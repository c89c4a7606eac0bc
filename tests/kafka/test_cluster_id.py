"""The local broker's cluster id: what ``StorageTool format -t`` accepts, every time."""

from __future__ import annotations

import base64
import itertools
import re

from streamrec_cli.localkafka.broker import new_cluster_id


def test_a_cluster_id_never_begins_with_a_dash() -> None:
    # 0xF8..0xFB as the first byte encode to "-" in base64url (~1 in 64 random ids): the
    # StorageTool then reads "-t -Xy..." as a missing argument. Kafka's Uuid.randomUuid draws again.
    dashed = bytes([0xF8]) + bytes(15)
    assert base64.urlsafe_b64encode(dashed).decode().startswith("-")
    draws = itertools.chain([dashed, bytes([0xFB]) + bytes(15)], itertools.repeat(bytes(range(1, 17))))
    cluster_id = new_cluster_id(lambda: next(draws))
    assert not cluster_id.startswith("-")
    assert cluster_id == base64.urlsafe_b64encode(bytes(range(1, 17))).decode().rstrip("=")


def test_random_cluster_ids_are_22_base64url_characters_without_a_leading_dash() -> None:
    ids = [new_cluster_id() for _ in range(2000)]  # ~31 of them would begin with "-" unchecked
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)
    assert len(set(ids)) == len(ids)
