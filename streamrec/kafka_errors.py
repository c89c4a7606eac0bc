"""What publishing to Kafka raises: confluent-kafka's errors mapped to streamrec's own.

``KafkaUnavailable``: the broker is unreachable or too slow (retrying later may work);
``DeliveryFailed``: the broker refused this record (retrying will not help). Both are
``KafkaPublishError``s; re-exported by :mod:`streamrec.kafka`, which raises them.
"""

from __future__ import annotations


class KafkaPublishError(RuntimeError):
    """Publishing did not complete; ``.failed`` counts the records not acknowledged."""

    def __init__(self, message: str, failed: int = 0) -> None:
        super().__init__(message)
        self.failed = failed


class KafkaUnavailable(KafkaPublishError):
    """The broker did not acknowledge in time (down, unreachable, overloaded). Retry later."""


class DeliveryFailed(KafkaPublishError):
    """The broker refused a record for good (too large, unknown topic, not authorised)."""
