"""The statistics of an experiment's results (docs/experiments.md explains each choice).

- :func:`wilson`: the Wilson score interval of a rate (plays per impression): unlike the normal
  ("Wald") interval it stays inside [0, 1] and keeps its coverage for small counts and rates
  near 0, which is where play rates per impression live.
- :func:`two_proportion_z`: the lift of a variant's rate over the control's and the two-sided
  p-value of the pooled two-proportion z-test (H0: same rate).
- :func:`sample_ratio`: the sample-ratio-mismatch check, Pearson's chi-square of the viewers each
  arm got against the configured shares; a tiny p-value says the split itself is broken (a bug in
  assignment, logging or filtering), and then no lift can be trusted.

Pure Python (``math``): the core runs in pipeline workers that do not install scipy; the tests
check these against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Z_95 = 1.959963984540054  # two-sided 95 %
SRM_ALPHA = 0.001  # the usual threshold of the sample-ratio check: it runs continuously


def wilson(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / trials``; (0, 1) when there are no trials."""
    if successes < 0 or trials < 0 or successes > trials:
        raise ValueError(f"successes, trials: need 0 <= successes <= trials, got {successes}, {trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class Comparison:
    lift: float | None  # relative: rate / control rate - 1 (None: the control's rate is 0)
    difference: float  # absolute: rate - control rate
    z: float | None
    p_value: float | None  # two-sided; None when either arm has no trials or the pooled rate is 0 or 1


def two_proportion_z(successes: int, trials: int, control_successes: int, control_trials: int) -> Comparison:
    """A variant's rate against the control's: pooled two-proportion z-test, two-sided."""
    rate = successes / trials if trials else 0.0
    control = control_successes / control_trials if control_trials else 0.0
    lift = rate / control - 1.0 if control > 0 else None
    if trials == 0 or control_trials == 0:
        return Comparison(lift, rate - control, None, None)
    pooled = (successes + control_successes) / (trials + control_trials)
    se = math.sqrt(pooled * (1 - pooled) * (1 / trials + 1 / control_trials))
    if se == 0:
        return Comparison(lift, rate - control, None, None)
    z = (rate - control) / se
    return Comparison(lift, rate - control, z, 2 * normal_sf(abs(z)))


def _lower_gamma_series(a: float, x: float) -> float:
    """The regularized lower incomplete gamma P(a, x) by its series (x < a + 1)."""
    term = total = 1.0 / a
    n = a
    for _ in range(10_000):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_gamma_fraction(a: float, x: float) -> float:
    """The regularized upper incomplete gamma Q(a, x) by Lentz's continued fraction (x >= a + 1)."""
    tiny = 1e-300
    b = x + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi_square_sf(statistic: float, dof: int) -> float:
    """P(X > statistic) for X chi-square with ``dof`` degrees of freedom."""
    if dof < 1:
        raise ValueError(f"dof: must be >= 1, got {dof}")
    if statistic <= 0:
        return 1.0
    a, x = dof / 2.0, statistic / 2.0
    if x < a + 1:
        return max(0.0, 1.0 - _lower_gamma_series(a, x))
    return _upper_gamma_fraction(a, x)


@dataclass(frozen=True, slots=True)
class SampleRatio:
    chi_square: float
    dof: int
    p_value: float | None  # None: fewer than two arms, or no units at all
    mismatch: bool  # p_value < alpha


def sample_ratio(observed: Mapping[str, int], expected_shares: Mapping[str, float],
                 alpha: float = SRM_ALPHA) -> SampleRatio:
    """Pearson's chi-square of the observed units per arm against the configured shares."""
    arms = [a for a in expected_shares if expected_shares[a] > 0]
    total = sum(observed.get(a, 0) for a in arms)
    if len(arms) < 2 or total == 0:
        return SampleRatio(0.0, max(len(arms) - 1, 0), None, False)
    share_sum = sum(expected_shares[a] for a in arms)
    statistic = 0.0
    for arm in arms:
        expected = total * expected_shares[arm] / share_sum
        statistic += (observed.get(arm, 0) - expected) ** 2 / expected
    p = chi_square_sf(statistic, len(arms) - 1)
    return SampleRatio(statistic, len(arms) - 1, p, p < alpha)
