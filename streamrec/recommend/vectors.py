"""User and item vectors, both maintained online (no retraining job). Deterministic.

**Item vectors: hashed random projection of the co-watch row.** Every title has a fixed random
unit *basis* vector drawn from a generator seeded by a hash of its id (:func:`item_basis`; the same
on every machine and run). A title's vector is its own basis plus the co-watch-count-weighted sum of
its neighbours' bases::

    item_vector(a) = basis(a) + sum_b cowatch(a, b) * basis(b)           (then unit length)

Random projection keeps dot products (Johnson-Lindenstrauss), so ``item_vector(a) . item_vector(b)``
approximates the cosine of the two titles' co-watch rows: titles watched *with the same titles*
end up close even if never watched together. The sum is linear in the counts, so the pipeline
keeps it up to date from the very increments it writes (:func:`item_vector_increments`) or
recomputes it from the stored neighbours (:func:`item_vector`); both agree up to the neighbour
trim.

**User vectors: decayed fold-in.** On every title event the user vector moves towards (or, for a
dislike, away from) the title's vector::

    user' = unit(decay * user + weight(kind) * unit(item_vector))

``weight`` comes from :data:`streamrec.recommend.state.EVENT_WEIGHTS` (complete > play > heartbeat;
dislike and low ratings are negative), ``decay`` < 1 lets old tastes fade. A user with no vector
starts at the first positive fold-in. Scores are cosines in [-1, 1].
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import threading
from collections.abc import Mapping, Sequence

import numpy as np

VECTOR_DIM = 64
USER_DECAY = 0.9  # per event: an event 10 title events ago weighs ~0.35 of a fresh one


@functools.lru_cache(maxsize=200_000)
def _basis(video_id: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(video_id.encode("utf-8"), digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    vector /= np.linalg.norm(vector)
    vector.setflags(write=False)
    return vector


def item_basis(video_id: str, dim: int = VECTOR_DIM) -> np.ndarray:
    """The title's fixed random unit vector (read-only, cached)."""
    if dim <= 0:
        raise ValueError(f"dim: must be > 0, got {dim}")
    return _basis(video_id, dim)


def _unit(vector: np.ndarray) -> np.ndarray:
    # np.linalg.norm of a 1-D real vector is sqrt(x.dot(x)); called directly, without its checks
    # (a third of a fold-in's time), for the very same float32 result.
    norm = _norm(vector) if vector.ndim == 1 and vector.dtype.kind == "f" else float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _norm(vector: np.ndarray) -> float:
    # math.sqrt of the float32 dot product, a third of np.sqrt's cost on a numpy scalar. For a
    # float32 vector the array ops round it to float32, which gives np.sqrt's float32 result:
    # a square root rounded to double, then to float, is rounded once (53 >= 2 * 24 + 2 bits).
    return math.sqrt(vector.dot(vector))


def item_vector(video_id: str, neighbours: Sequence[tuple[str, float]], dim: int = VECTOR_DIM) -> np.ndarray:
    """A title's vector from its co-watch neighbours ``[(neighbour, count), ...]`` (unit, float32)."""
    vector = item_basis(video_id, dim).astype(np.float32, copy=True)
    for neighbour, count in neighbours:
        vector += np.float32(count) * item_basis(neighbour, dim)
    return _unit(vector).astype(np.float32)


def item_vector_increments(cowatch: Mapping[tuple[str, str], int], dim: int = VECTOR_DIM) -> dict[str, np.ndarray]:
    """What to *add* to each raw (un-normalised) item vector for a batch of co-watch increments.

    The raw vector of a new title starts at ``item_basis(video_id)``; normalise when reading.
    """
    # Per item, the sum of count * basis(neighbour) in the increments' order, computed for all
    # items at once: one float32 product per pair, the products grouped by item (a stable sort
    # keeps each item's order), then round r adds every item's r-th product (a vectorised `+=`),
    # so each sum is formed in the very order of the loop `delta += np.float32(count) * basis`
    # and equals it bit for bit (tests/recommend/test_similarity_trending_vectors.py), at a
    # fraction of its cost. Items come out in the order of their first increment.
    if dim <= 0:
        raise ValueError(f"dim: must be > 0, got {dim}")
    if not cowatch:
        return {}
    items, neighbours = zip(*cowatch, strict=True)
    numbers = {item: k for k, item in enumerate(dict.fromkeys(items))}
    item_numbers = np.fromiter(map(numbers.__getitem__, items), dtype=np.intp, count=len(items))
    counts = np.fromiter(cowatch.values(), dtype=np.float32, count=len(items))
    products = (_bases(neighbours, dim) * counts[:, None])[np.argsort(item_numbers, kind="stable")]
    lengths = np.bincount(item_numbers, minlength=len(numbers))
    starts = np.cumsum(lengths) - lengths
    # Items by decreasing length: the items still adding in round r are a prefix, `active[r]` long.
    order = np.argsort(-lengths, kind="stable")
    lengths, starts = lengths[order], starts[order]
    active = len(lengths) - np.searchsorted(lengths[::-1], np.arange(int(lengths[0])), side="right")
    sums = products[starts]
    for r in range(1, int(lengths[0])):
        m = int(active[r])
        sums[:m] += products[starts[:m] + r]
    by_order = np.empty_like(sums)
    by_order[order] = sums
    return dict(zip(numbers, by_order, strict=True))


#: Per dimension, the titles' bases as rows of one matrix (row numbers by title), so a batch
#: gathers thousands with one fancy index instead of stacking as many arrays. Emptied when it
#: would pass the limit; a lock keeps the rows and the matrix consistent across threads.
_BASIS_ROWS: dict[int, tuple[dict[str, int], np.ndarray]] = {}
_BASIS_ROWS_LIMIT = 100_000
_BASIS_ROWS_LOCK = threading.Lock()


def _bases(video_ids: Sequence[str], dim: int) -> np.ndarray:
    """The bases of ``video_ids`` as the rows of a new (len, dim) float32 matrix."""
    with _BASIS_ROWS_LOCK:
        rows, matrix = _BASIS_ROWS.get(dim) or ({}, np.empty((0, dim), dtype=np.float32))
        at = list(map(rows.get, video_ids, itertools.repeat(-1)))
        if -1 in at:
            new = [v for v in dict.fromkeys(video_ids) if v not in rows]
            if len(rows) + len(new) > _BASIS_ROWS_LIMIT:
                rows, new = {}, list(dict.fromkeys(video_ids))
            used = len(rows)
            if used + len(new) > len(matrix):  # grown by doubling: rows are copied O(1) times each
                grown = np.empty((max(2 * len(matrix), used + len(new), 1024), dim), dtype=np.float32)
                grown[:used] = matrix[:used]
                matrix = grown
            matrix[used:used + len(new)] = np.concatenate([_basis(v, dim) for v in new]).reshape(len(new), dim)
            rows.update(zip(new, range(used, used + len(new)), strict=True))
            _BASIS_ROWS[dim] = rows, matrix
            at = list(map(rows.__getitem__, video_ids))
        return matrix[at]


def fold_in(user_vector: np.ndarray | None, item_vec: np.ndarray, weight: float,
            decay: float = USER_DECAY) -> np.ndarray | None:
    """The user-vector update rule (see the module docstring); returns a unit float32 vector.

    With no user vector yet, a negative weight leaves it absent (nothing to push away from).
    """
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay: must be in (0, 1], got {decay}")
    item_unit = _unit(np.asarray(item_vec, dtype=np.float32))
    if user_vector is None:
        return item_unit.astype(np.float32) if weight > 0 else None
    if user_vector.shape != item_unit.shape:
        raise ValueError(f"user_vector: dimension {user_vector.shape} does not match item vector {item_unit.shape}")
    # The rule's float32 operations in its order, on one new array (each in place: no copies).
    # (Python floats as weak scalars: numpy rounds them to float32 for float32 arrays, as np.float32.)
    updated = np.asarray(user_vector, dtype=np.float32) * decay
    updated += float(weight) * item_unit
    norm = _norm(updated)
    if norm > 0:
        updated /= norm
    return updated


def vector_scores(user_vector: np.ndarray | None, item_vectors: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Cosine of the user vector with each item vector; empty without a user vector."""
    if user_vector is None or not item_vectors:
        return {}
    ids = list(item_vectors)
    matrix = np.stack([np.asarray(item_vectors[i], dtype=np.float32) for i in ids])
    norms = np.linalg.norm(matrix, axis=1)
    norms[norms == 0] = 1.0
    user = _unit(np.asarray(user_vector, dtype=np.float32))
    cosines = matrix @ user / norms
    return {video_id: float(c) for video_id, c in zip(ids, cosines, strict=True)}
