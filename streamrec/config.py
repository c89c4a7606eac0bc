"""Names and settings every component agrees on, overridable by environment variables.

One typed, validated config object per component lives beside that component; this module holds
only what crosses component boundaries (topic names, default addresses, the store URL).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

TOPIC_EVENTS = "streamrec.events.v1"  # key: user_id, so one user's events stay ordered
TOPIC_CATALOG = "streamrec.catalog.v1"  # key: video_id, compacted
TOPIC_IMPRESSIONS = "streamrec.impressions.v1"  # key: user_id
TOPIC_DLQ = "streamrec.events.dlq.v1"  # undecodable or invalid records, with the reason

#: Partitions and settings production uses; infra/terraform reads the same numbers (checked by a test).
TOPIC_PARTITIONS = {TOPIC_EVENTS: 12, TOPIC_CATALOG: 3, TOPIC_IMPRESSIONS: 12, TOPIC_DLQ: 3}

DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_STORE_URL = "sqlite:///var/streamrec.db"


@dataclass(frozen=True, slots=True)
class Settings:
    kafka_bootstrap: str
    store_url: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            kafka_bootstrap=os.environ.get("STREAMREC_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP),
            store_url=os.environ.get("STREAMREC_STORE") or aerospike_url_from_env() or DEFAULT_STORE_URL,
        )


def aerospike_url_from_env() -> str | None:
    """``aerospike://HOSTS/NAMESPACE`` when ``STREAMREC_AEROSPIKE_HOSTS`` is set (namespace from
    ``STREAMREC_AEROSPIKE_NAMESPACE``, default ``streamrec``), else ``None``."""
    hosts = os.environ.get("STREAMREC_AEROSPIKE_HOSTS")
    if not hosts:
        return None
    return f"aerospike://{hosts}/" + os.environ.get("STREAMREC_AEROSPIKE_NAMESPACE", "streamrec")


def kafka_client_config(bootstrap: str) -> dict[str, str | int | float | bool]:
    """librdkafka connection settings for every Kafka client streamrec makes.

    Locally that is just ``bootstrap.servers``. Production clusters (e.g. Google Cloud Managed
    Kafka: TLS + SASL) add security settings through the environment, so no code changes:
    ``STREAMREC_KAFKA_SECURITY_PROTOCOL`` (``security.protocol``), ``STREAMREC_KAFKA_SASL_MECHANISM``
    (``sasl.mechanism``), ``STREAMREC_KAFKA_SASL_USERNAME`` / ``_PASSWORD``, and
    ``STREAMREC_KAFKA_CONFIG``: a JSON object of any further librdkafka properties.
    """
    config: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap}
    for env, key in (
        ("STREAMREC_KAFKA_SECURITY_PROTOCOL", "security.protocol"),
        ("STREAMREC_KAFKA_SASL_MECHANISM", "sasl.mechanism"),
        ("STREAMREC_KAFKA_SASL_USERNAME", "sasl.username"),
        ("STREAMREC_KAFKA_SASL_PASSWORD", "sasl.password"),
    ):
        if os.environ.get(env):
            config[key] = os.environ[env]
    extra = os.environ.get("STREAMREC_KAFKA_CONFIG", "").strip()
    if extra:
        try:
            parsed = json.loads(extra)
        except json.JSONDecodeError as exc:
            raise ValueError(f"STREAMREC_KAFKA_CONFIG: not a JSON object ({exc.msg})") from exc
        if not isinstance(parsed, dict):
            raise ValueError("STREAMREC_KAFKA_CONFIG: must be a JSON object of librdkafka properties")
        config.update(parsed)
    return config
