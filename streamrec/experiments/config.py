"""Experiments as configuration: variants with traffic shares, a salt, start and stop, a holdout.

An experiment gives each viewer one ranking variant (:mod:`streamrec.recommend.variants`) for as
long as it runs. The document (JSON, what ``streamrec experiment set FILE`` reads)::

    {"id": "fresh-vs-blend", "salt": "2026-12", "start": 1764547200, "stop": null,
     "holdout": 0.0, "control": "blend",
     "variants": [{"name": "blend", "share": 0.5}, {"name": "fresh", "share": 0.5}]}

``start``/``stop``: Unix seconds or ISO-8601 text (``stop`` null: open-ended); ``control``: the
variant the others are compared with (default: the first); ``holdout``: the share of viewers left
out of the experiment altogether (they get the ranking served outside experiments,
``streamrec.recommend.variants.SERVED``, and are counted apart).

Assignment (:func:`assign`) is a hash of (salt, user id), so a viewer has the same variant on
every device and in every process (serving, the pipelines, the offline replay), with nothing
stored per viewer. Two independent hashes: one says whether the viewer is held out, the other
picks the variant by the cumulative shares. Shrinking the holdout therefore only brings new
viewers in: nobody already in the experiment changes variant. Changing the shares moves only the
viewers whose hash lies between the old and the new boundaries; a new salt reshuffles everyone.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from streamrec.recommend.variants import VARIANTS

HOLDOUT = "holdout"
NAME_MAX_LEN = 64
NAME_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{NAME_MAX_LEN - 1}}}", re.ASCII)
NAME_RULE = f"must be 1-{NAME_MAX_LEN} characters of letters, digits, _ and - starting with a letter or digit"
SHARE_TOLERANCE = 1e-6
MAX_VARIANTS = 10
_FIELDS = frozenset({"id", "salt", "start", "stop", "holdout", "control", "variants"})


class ExperimentError(ValueError):
    """An experiment document that cannot be used: every problem as ``{field, reason}``."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['reason']}" for e in errors))


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    share: float


@dataclass(frozen=True, slots=True)
class Experiment:
    """A validated experiment (build it with :func:`parse_experiment`)."""

    id: str
    salt: str
    variants: tuple[Variant, ...]
    control: str
    start_ms: int
    stop_ms: int | None = None
    holdout: float = 0.0

    def running(self, now_ms: int) -> bool:
        return self.start_ms <= now_ms and (self.stop_ms is None or now_ms < self.stop_ms)

    @property
    def arms(self) -> tuple[str, ...]:
        """Every label a viewer can get: the variants, then ``holdout`` when there is one."""
        return tuple(v.name for v in self.variants) + ((HOLDOUT,) if self.holdout > 0 else ())

    def expected_shares(self) -> dict[str, float]:
        """The share of viewers each label should get (what the sample-ratio check compares with)."""
        shares = {v.name: (1.0 - self.holdout) * v.share for v in self.variants}
        if self.holdout > 0:
            shares[HOLDOUT] = self.holdout
        return shares

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "salt": self.salt, "control": self.control, "holdout": self.holdout,
                "start": self.start_ms / 1000, "stop": None if self.stop_ms is None else self.stop_ms / 1000,
                "variants": [{"name": v.name, "share": v.share} for v in self.variants]}


def _time_ms(value: Any, field: str, errors: list[dict[str, str]]) -> int | None:
    if isinstance(value, bool) or value is None:
        errors.append({"field": field, "reason": "must be Unix seconds or ISO-8601 text"})
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            errors.append({"field": field, "reason": "must be a finite, non-negative number of Unix seconds"})
            return None
        return round(value * 1000)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            errors.append({"field": field, "reason": f"not an ISO-8601 time: {value[:40]!r}"})
            return None
        if moment.tzinfo is None:
            errors.append({"field": field, "reason": "an ISO-8601 time needs its zone (Z or +hh:mm)"})
            return None
        return round(moment.timestamp() * 1000)
    errors.append({"field": field, "reason": "must be Unix seconds or ISO-8601 text"})
    return None


def _name(value: Any, field: str, errors: list[dict[str, str]]) -> str | None:
    if not isinstance(value, str):
        errors.append({"field": field, "reason": "missing" if value is None else "must be a string"})
        return None
    if NAME_PATTERN.fullmatch(value) is None:
        errors.append({"field": field, "reason": NAME_RULE})
        return None
    return value


def _share(value: Any, field: str, errors: list[dict[str, str]], *, upper_open: bool = False) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        errors.append({"field": field, "reason": "must be a number"})
        return None
    if value < 0 or value > 1 or (upper_open and value >= 1):
        errors.append({"field": field, "reason": f"must be in [0, 1{')' if upper_open else ']'}, not {value:g}"})
        return None
    return float(value)


def parse_experiment(document: Any, known_variants: Iterable[str] = VARIANTS) -> Experiment:
    """A validated :class:`Experiment`, or :class:`ExperimentError` naming every field at fault."""
    if not isinstance(document, Mapping):
        raise ExperimentError([{"field": "experiment", "reason": "must be a JSON object"}])
    errors: list[dict[str, str]] = []
    errors += [{"field": str(k), "reason": "unknown field"} for k in document if k not in _FIELDS]
    exp_id = _name(document.get("id"), "id", errors)
    salt = document.get("salt", exp_id)
    if not isinstance(salt, str) or not salt or len(salt) > 256:
        errors.append({"field": "salt", "reason": "must be a non-empty string of at most 256 characters"})
    start_ms = _time_ms(document.get("start"), "start", errors) if "start" in document else None
    if "start" not in document:
        errors.append({"field": "start", "reason": "missing"})
    stop = document.get("stop")
    stop_ms = None if stop is None else _time_ms(stop, "stop", errors)
    if start_ms is not None and stop_ms is not None and stop_ms <= start_ms:
        errors.append({"field": "stop", "reason": "must be after start"})
    holdout = _share(document.get("holdout", 0.0), "holdout", errors, upper_open=True)
    known = set(known_variants)
    variants: list[Variant] = []
    raw = document.get("variants")
    if not isinstance(raw, list) or not raw:
        errors.append({"field": "variants", "reason": "must be a non-empty list"})
        raw = []
    elif len(raw) > MAX_VARIANTS:
        errors.append({"field": "variants", "reason": f"at most {MAX_VARIANTS}, not {len(raw)}"})
    for i, entry in enumerate(raw[:MAX_VARIANTS]):
        where = f"variants[{i}]"
        if not isinstance(entry, Mapping):
            errors.append({"field": where, "reason": "must be a JSON object"})
            continue
        errors += [{"field": f"{where}.{k}", "reason": "unknown field"} for k in entry if k not in ("name", "share")]
        name = _name(entry.get("name"), f"{where}.name", errors)
        if name is not None and name not in known:
            errors.append({"field": f"{where}.name", "reason": f"no variant {name!r}; known: {', '.join(sorted(known))}"})
        elif name is not None and any(v.name == name for v in variants):
            errors.append({"field": f"{where}.name", "reason": f"{name!r} is listed twice"})
        share = _share(entry.get("share"), f"{where}.share", errors)
        if name is not None and share is not None:
            variants.append(Variant(name, share))
    if len(variants) == len(raw) and variants:
        total = sum(v.share for v in variants)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            errors.append({"field": "variants", "reason": f"shares must sum to 1, not {total:g}"})
    control = document.get("control", variants[0].name if variants else None)
    if control is not None and not any(v.name == control for v in variants):
        errors.append({"field": "control", "reason": f"{control!r} is not one of the variants"})
    if errors:
        raise ExperimentError(errors)
    assert exp_id is not None and start_ms is not None and holdout is not None and isinstance(control, str)
    return Experiment(id=exp_id, salt=salt, variants=tuple(variants), control=control, start_ms=start_ms,
                      stop_ms=stop_ms, holdout=holdout)


# -- assignment ------------------------------------------------------------------------------------


def bucket(salt: str, purpose: str, user_id: str) -> float:
    """A uniform number in [0, 1) from (salt, purpose, user id): 64 bits of BLAKE2b."""
    digest = hashlib.blake2b(f"{salt}\x1f{purpose}\x1f{user_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def assign(experiment: Experiment, user_id: str) -> str:
    """The viewer's label in ``experiment``: a variant name, or ``holdout``."""
    if experiment.holdout > 0 and bucket(experiment.salt, "holdout", user_id) < experiment.holdout:
        return HOLDOUT
    u = bucket(experiment.salt, "variant", user_id)
    cumulative = 0.0
    for variant in experiment.variants:
        cumulative += variant.share
        if u < cumulative:
            return variant.name
    return next(v.name for v in reversed(experiment.variants) if v.share > 0)


def running_experiment(experiments: Sequence[Experiment], now_ms: int) -> Experiment | None:
    """The experiment that decides the ranking now: of those running, the one started last (then
    the smallest id). One ranking experiment at a time: two would compete for the same row."""
    running = [e for e in experiments if e.running(now_ms)]
    return min(running, key=lambda e: (-e.start_ms, e.id)) if running else None
