"""The statistics against scipy, and the sample-ratio check flagging a skewed split."""

from __future__ import annotations

import pytest
from scipy import stats as scipy_stats

from streamrec.experiments.stats import (
    chi_square_sf,
    sample_ratio,
    two_proportion_z,
    wilson,
)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (37, 4000), (0, 1)])
def test_wilson_matches_the_reference(k: int, n: int) -> None:
    reference = scipy_stats.binomtest(k, n).proportion_ci(method="wilson")
    assert wilson(k, n) == pytest.approx((reference.low, reference.high), abs=1e-9)


def test_wilson_without_trials_says_nothing_is_known() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes"):
        wilson(3, 2)


@pytest.mark.parametrize("dof", [1, 2, 3, 7])
@pytest.mark.parametrize("x", [0.01, 0.5, 1.0, 3.84, 10.0, 40.0, 200.0])
def test_chi_square_survival_matches_scipy(x: float, dof: int) -> None:
    assert chi_square_sf(x, dof) == pytest.approx(scipy_stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_two_proportion_z_matches_the_textbook() -> None:
    c = two_proportion_z(120, 1000, 100, 1000)
    pooled = 220 / 2000
    z = (0.12 - 0.10) / (pooled * (1 - pooled) * (2 / 1000)) ** 0.5
    assert c.z == pytest.approx(z)
    assert c.p_value == pytest.approx(2 * scipy_stats.norm.sf(z))
    assert c.lift == pytest.approx(0.2)
    assert two_proportion_z(0, 0, 5, 10).p_value is None


def test_sample_ratio_flags_a_skewed_split_and_not_a_fair_one() -> None:
    shares = {"blend": 0.5, "fresh": 0.5}
    assert not sample_ratio({"blend": 5_030, "fresh": 4_970}, shares).mismatch
    skewed = sample_ratio({"blend": 5_300, "fresh": 4_700}, shares)
    assert skewed.mismatch and skewed.p_value is not None and skewed.p_value < 1e-6
    assert skewed.p_value == pytest.approx(scipy_stats.chisquare([5_300, 4_700]).pvalue)
    # Against unequal configured shares the same counts can be fair.
    assert not sample_ratio({"blend": 5_300, "fresh": 4_700}, {"blend": 0.53, "fresh": 0.47}).mismatch
    assert sample_ratio({}, shares).p_value is None
