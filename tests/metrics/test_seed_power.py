"""Seeds needed for 80 % power of the exact signed-rank test across seeds (pargs/metrics/seed_power.py), against
hand-computed values."""

from __future__ import annotations

import math

import pytest
from scipy.stats import norm

from pargs.metrics.seed_power import critical_value, min_seeds, power, seeds_needed


def test_critical_values_by_hand():
    # S = 5: P(W+ >= 15) = 1/32 <= 0.05 < P(W+ >= 14) = 2/32
    assert critical_value(5, 0.05) == 15
    # S = 6: P(W+ >= 19) = P(W- <= 2) = |{}, {1}, {2}| / 64 = 3/64 = 0.047; P(W+ >= 18) adds {3}, {1, 2}: 5/64
    assert critical_value(6, 0.05) == 19
    assert critical_value(6, 0.025) == 21  # 1/64 = 0.0156 <= 0.025 < 2/64
    assert critical_value(4, 0.05) is None  # 1/16 > 0.05: four seeds cannot reach the level


@pytest.mark.parametrize(("level", "seeds"), [(0.05, 5), (0.025, 6), (0.05 / 3, 6), (0.0125, 7), (0.05 / 8, 8)])
def test_min_seeds(level, seeds):
    assert min_seeds(level) == seeds


def test_power_at_five_seeds_is_every_seed_positive():
    """At S = 5 and level 0.05 only W+ = 15 rejects: power = P(all five differences > 0) = Phi(d)^5."""
    assert power(1.5, 5, 0.05) == pytest.approx(norm.cdf(1.5) ** 5, abs=0.025)  # 0.708; MC SE about 0.007
    assert power(1.5, 4, 0.05) == 0.0


def test_seeds_needed_by_hand():
    # d = 2: Phi(2)^5 = 0.9772^5 = 0.891 >= 0.8 at the fewest seeds
    assert seeds_needed(2.0, 1.0, 0.05) == 5
    # d = 1.5: Phi(1.5)^5 = 0.708 < 0.8, so more than five
    assert seeds_needed(1.5, 1.0, 0.05) > 5
    # only the ratio mean / sd matters (ranks and signs)
    assert seeds_needed(0.6, 2.0, 0.05) == seeds_needed(0.3, 1.0, 0.05)
    # Noether's approximation: n = (z_0.95 + z_0.8)^2 / (3 (p' - 1/2)^2), p' = Phi(0.3 sqrt 2) = 0.6643:
    # (1.6449 + 0.8416)^2 / (3 x 0.1643^2) = 6.183 / 0.0810 = 76.3
    p = norm.cdf(0.3 * math.sqrt(2))
    noether = (norm.ppf(0.95) + norm.ppf(0.8)) ** 2 / (3 * (p - 0.5) ** 2)
    assert noether == pytest.approx(76.3, abs=0.1)
    assert seeds_needed(0.3, 1.0, 0.05) == pytest.approx(noether, rel=0.1)


def test_seeds_needed_edge_cases():
    assert seeds_needed(0.4, 0.0, 0.05) == 5  # every seed gave the same positive difference
    assert seeds_needed(0.4, 0.0, 0.0125) == 7
    assert seeds_needed(-0.4, 1.0, 0.05) is None and seeds_needed(0.0, 1.0, 0.05) is None
    assert seeds_needed(0.05, 1.0, 0.05) is None  # d = 0.05 needs thousands: more than the search's 100
    assert seeds_needed(0.4, math.nan, 0.05) is None  # one seed: no spread to plan with
