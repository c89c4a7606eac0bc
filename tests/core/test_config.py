"""Kafka connection settings come from the environment, so production needs no code change."""

from __future__ import annotations

import pytest

from streamrec.config import kafka_client_config


def test_local_config_is_just_the_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD", "CONFIG"):
        monkeypatch.delenv(f"STREAMREC_KAFKA_{name}", raising=False)
    assert kafka_client_config("127.0.0.1:9092") == {"bootstrap.servers": "127.0.0.1:9092"}


def test_security_settings_and_extra_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAMREC_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("STREAMREC_KAFKA_CONFIG", '{"ssl.endpoint.identification.algorithm": "https"}')
    config = kafka_client_config("kafka.example:9092")
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanism"] == "PLAIN"
    assert config["ssl.endpoint.identification.algorithm"] == "https"


@pytest.mark.parametrize("raw", ["not json", "[1, 2]"])
def test_bad_extra_config_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("STREAMREC_KAFKA_CONFIG", raw)
    with pytest.raises(ValueError, match="STREAMREC_KAFKA_CONFIG"):
        kafka_client_config("127.0.0.1:9092")
