"""The service's HTTP errors and the checks of path and query parameters.

Every error leaves the service as one JSON shape::

    {"error": "invalid_parameter", "message": "limit: must be between 1 and 50, got 0",
     "errors": [{"field": "limit", "reason": "must be between 1 and 50, got 0"}]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from streamrec.events.ids import ID_RULE, REGION_RULE, is_id, is_region


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


def invalid(field: str, reason: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{field}: {reason}", [{"field": field, "reason": reason}])


def check_id(field: str, value: str) -> str:
    """An id in a path or query: the one id rule writes follow too (``streamrec.events.ids``)."""
    if not is_id(value):
        raise invalid(field, ID_RULE)
    return value


def check_known_params(query: Mapping[str, str], allowed: Iterable[str]) -> None:
    """Unknown query parameters are refused: a typo must not silently change an answer."""
    allowed_set = set(allowed)
    unknown = sorted(set(query) - allowed_set)
    if unknown:
        raise invalid(unknown[0], f"unknown query parameter (allowed: {', '.join(sorted(allowed_set)) or 'none'})")
    for name in allowed_set:
        if len(query.getall(name, [])) > 1:  # type: ignore[attr-defined]
            raise invalid(name, "given more than once")


def int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, f"must be an integer, got {raw[:32]!r}") from None
    if not low <= value <= high:
        raise invalid(name, f"must be between {low} and {high}, got {value}")
    return value


def choice_param(query: Mapping[str, str], name: str, default: str, choices: Iterable[str]) -> str:
    raw = query.get(name)
    if raw is None:
        return default
    options = tuple(choices)
    if raw not in options:
        raise invalid(name, f"must be one of {', '.join(options)}, got {raw[:32]!r}")
    return raw


def region_param(query: Mapping[str, str], default: str) -> str:
    raw = query.get("region")
    if raw is None or raw == "":
        return default
    if not is_region(raw):
        raise invalid("region", REGION_RULE)
    return raw


def list_param(query: Mapping[str, str], name: str, choices: Iterable[str]) -> tuple[str, ...] | None:
    """A comma-separated subset of ``choices`` in the order given; None when absent."""
    raw = query.get(name)
    if raw is None:
        return None
    options = tuple(choices)
    picked: list[str] = []
    for part in raw.split(","):
        part = part.strip()
        if part not in options:
            raise invalid(name, f"each entry must be one of {', '.join(options)}, got {part[:32]!r}")
        if part not in picked:
            picked.append(part)
    return tuple(picked)
