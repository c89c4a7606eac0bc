"""Errors of the event contract: every one names the field at fault and the reason.

``EventDecodeError``: bytes that are not a record we know (no marker, unknown fingerprint,
truncated or corrupt body). ``EventValidationError``: a record or JSON object that breaks the
contract; it may carry several field errors at once (``.errors``), the first being ``.field`` /
``.reason``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class EventError(ValueError):
    """Base of the contract's errors; ``str()`` lists every field error."""

    def __init__(self, errors: list[FieldError] | FieldError | str, reason: str | None = None) -> None:
        if isinstance(errors, str):
            errors = [FieldError(errors, reason or "invalid")]
        elif isinstance(errors, FieldError):
            errors = [errors]
        if not errors:
            raise ValueError("an EventError needs at least one field error")
        self.errors: list[FieldError] = list(errors)
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in self.errors))

    @property
    def field(self) -> str:
        return self.errors[0].field

    @property
    def reason(self) -> str:
        return self.errors[0].reason

    def to_list(self) -> list[dict[str, str]]:
        return [e.to_dict() for e in self.errors]


class EventDecodeError(EventError):
    """The bytes are not a readable record (field ``header`` or ``body`` when no field applies)."""


class EventValidationError(EventError):
    """The record or JSON breaks the contract (wrong type, missing field, out of range, ...)."""
