"""Path and query parameters: exactly what /openapi.json states (issue 19: the fuzzer found an empty
region taken as global)."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from serving.errors import ApiError
from serving.params import int_param, list_param, region_param

ROWS = ("top_picks", "trending_now")


@pytest.mark.parametrize("raw", ["", "U S", "-US", "x" * 33])
def test_a_region_follows_the_region_pattern_and_is_never_empty(raw: str) -> None:
    with pytest.raises(ApiError) as err:
        region_param(MultiDict(region=raw), "global")
    assert err.value.status == 400 and err.value.errors[0]["field"] == "region"


def test_an_absent_region_is_the_default() -> None:
    assert region_param(MultiDict(), "global") == "global"
    assert region_param(MultiDict(region="US"), "global") == "US"


@pytest.mark.parametrize("raw", ["+5", "1_0", " 5", "5 ", "５", "5.0", "", "9" * 40])
def test_integers_are_plain_decimal_digits(raw: str) -> None:
    with pytest.raises(ApiError) as err:
        int_param(MultiDict(limit=raw), "limit", 20, 1, 50)
    assert err.value.errors[0]["field"] == "limit"


def test_integers_in_range() -> None:
    assert int_param(MultiDict(limit="7"), "limit", 20, 1, 50) == 7
    assert int_param(MultiDict(), "limit", 20, 1, 50) == 20
    with pytest.raises(ApiError):
        int_param(MultiDict(limit="-0"), "limit", 20, 1, 50)


@pytest.mark.parametrize("raw", [" top_picks", "top_picks,", "", "top_picks,nonsense"])
def test_rows_are_entries_of_the_list_and_nothing_around_them(raw: str) -> None:
    with pytest.raises(ApiError) as err:
        list_param(MultiDict(rows=raw), "rows", ROWS)
    assert err.value.errors[0]["field"] == "rows"


def test_rows_keep_the_order_given_once_each() -> None:
    assert list_param(MultiDict(rows="trending_now,top_picks,trending_now"), "rows", ROWS) == ("trending_now", "top_picks")
