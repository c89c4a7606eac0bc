"""The title filter: the one rule deciding whether a title may be shown to a viewer.

Every answer that names titles passes through :func:`title_allowed` (or a :class:`TitleFilter`):
the ranking's top picks, every feed row, "more like this", trending, and every degraded answer
(the last feed re-served, the in-memory trending snapshot). A title is shown only when

- the catalog knows it: **a title the catalog does not know is never shown** (there is no rating
  or region list to check it against, and nothing to show for it);
- it is available in the viewer's region (a title with no region list is available everywhere;
  no region, ``None``, means "global": every known title);
- its rating is within the profile's cap (:func:`maturity_allowed`: a capped profile never sees
  an unrated title unless the cap is the most permissive rating);
- it is not one of the viewer's ``excluded`` titles (disliked, and whatever else the caller
  passes: seen, in progress).

Pure functions over :class:`~streamrec.events.model.CatalogItem`; no I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from streamrec.events.model import CatalogItem

#: Maturity ratings in increasing order; unknown ratings are treated as the strictest.
MATURITY_ORDER = ("G", "PG", "PG-13", "R", "NC-17")


def maturity_allowed(item_rating: str | None, max_maturity: str | None) -> bool:
    """Whether a title rated ``item_rating`` may be shown to a profile capped at ``max_maturity``.

    No cap: everything. With a cap, an unrated title is shown only if the cap is the most
    permissive rating (a kids profile never sees unrated titles).
    """
    if max_maturity is None:
        return True
    if max_maturity not in MATURITY_ORDER:
        raise ValueError(f"max_maturity: unknown rating {max_maturity!r}, expected one of {MATURITY_ORDER}")
    cap = MATURITY_ORDER.index(max_maturity)
    if item_rating is None or item_rating not in MATURITY_ORDER:
        return cap == len(MATURITY_ORDER) - 1
    return MATURITY_ORDER.index(item_rating) <= cap


def available_in(item: CatalogItem, region: str | None) -> bool:
    """The region part of the rule alone: no region list means everywhere, ``None`` means global."""
    return region is None or not item.regions or region in item.regions


def title_allowed(item: CatalogItem | None, region: str | None = None, max_maturity: str | None = None,
                  excluded: Collection[str] = ()) -> bool:
    """The title filter (see the module docstring). ``item`` is the catalog entry, None if unknown."""
    if item is None:  # the catalog does not know it: never shown
        return False
    if excluded and item.video_id in excluded:
        return False
    return available_in(item, region) and maturity_allowed(item.maturity_rating, max_maturity)


@dataclass(frozen=True, slots=True)
class TitleFilter:
    """:func:`title_allowed` bound to one viewer: region, maturity cap, excluded titles."""

    region: str | None = None
    max_maturity: str | None = None
    excluded: frozenset[str] = frozenset()

    def allows(self, video_id: str, items: Mapping[str, CatalogItem]) -> bool:
        return video_id not in self.excluded and title_allowed(items.get(video_id), self.region, self.max_maturity)

    def apply(self, video_ids: Iterable[str], items: Mapping[str, CatalogItem]) -> list[str]:
        """The ids that pass, in the given order."""
        return [v for v in video_ids if self.allows(v, items)]
