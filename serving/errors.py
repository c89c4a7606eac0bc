"""The service's HTTP error: every error leaves the service as one JSON shape::

    {"error": "invalid_parameter", "message": "limit: must be between 1 and 50, got 0",
     "errors": [{"field": "limit", "reason": "must be between 1 and 50, got 0"}]}

(``serving.answers.Error`` declares it for the OpenAPI document.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class ApiError(Exception):
    """An error with an HTTP status, a machine-readable code and field-level details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        errors: Iterable[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = [dict(e) for e in errors]
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # more of the body (e.g. the per-event outcome of a batch)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message, **self.extra}
        if self.errors:
            body["errors"] = self.errors
        return body
