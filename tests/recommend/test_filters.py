"""The one title filter every answer passes: catalog-known, region, maturity, excluded titles."""

from __future__ import annotations

import pytest

from streamrec.events.model import CatalogItem
from streamrec.recommend import TitleFilter, title_allowed

ITEMS = {
    "any": CatalogItem("any", "Anywhere", maturity_rating="PG"),
    "us": CatalogItem("us", "US only", regions=("US",), maturity_rating="G"),
    "adult": CatalogItem("adult", "Adult", maturity_rating="R"),
    "unrated": CatalogItem("unrated", "Unrated"),
}


def test_a_title_the_catalog_does_not_know_is_never_shown():
    assert not title_allowed(None)
    assert not TitleFilter().allows("missing", ITEMS)


@pytest.mark.parametrize(
    ("region", "cap", "excluded", "shown"),
    [
        (None, None, (), ["any", "us", "adult", "unrated"]),
        ("GB", None, (), ["any", "adult", "unrated"]),
        ("US", "PG", (), ["any", "us"]),
        (None, "NC-17", ("adult",), ["any", "us", "unrated"]),
    ],
)
def test_region_maturity_and_excluded(region, cap, excluded, shown):
    allowed = TitleFilter(region, cap, frozenset(excluded))
    assert allowed.apply([*ITEMS, "missing"], ITEMS) == shown
    assert [v for v in ITEMS if title_allowed(ITEMS[v], region, cap, excluded)] == shown
