"""The checks of path and query parameters: each answers the value or raises a 400 naming it.

Their rules are those ``serving.openapi`` states for the parameters: ids and regions follow
``streamrec.events.ids``; integers are plain decimal digits; a list is comma-separated entries of
its choices, nothing around them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from serving.errors import ApiError
from streamrec.events.ids import ID_RULE, REGION_RULE, is_id, is_region

_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)


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
    if _INTEGER.fullmatch(raw) is None or len(raw) > 20:
        raise invalid(name, f"must be an integer, got {raw[:32]!r}")
    value = int(raw)
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
    if raw is None:
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
        if part not in options:
            raise invalid(name, f"each entry must be one of {', '.join(options)}, got {part[:32]!r}")
        if part not in picked:
            picked.append(part)
    return tuple(picked)
