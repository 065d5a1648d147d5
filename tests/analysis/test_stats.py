"""Compute-to-target, "not reached" and the spread over seeds, on hand-made numbers."""

from __future__ import annotations

import math
import random

import pytest

from sysprune.analysis import _stats
from sysprune.analysis._stats import NA, NOT_REACHED, compute_to_target, saving, spread, summarise_savings
from sysprune.metrics._format import fmt
from tests.analysis._helpers import row


def test_spread_is_median_iqr_and_range_of_measured_values():
    s = spread([4.0, 1.0, None, 3.0, 2.0, 5.0])
    assert (s.n, s.median, s.q1, s.q3, s.lo, s.hi) == (5, 3.0, 2.0, 4.0, 1.0, 5.0)
    assert spread([None]).median is None and spread([]).fmt() == NA
    assert spread([1.0, 2.0]).median == 1.5


def test_anytime_counts_every_trial_and_only_complete_feasible_ones_can_be_best():
    rows = [
        row(0, value=0.5, compute=2.0),
        row(1, "PRUNED", value=0.99, compute=1.0, rule="curve"),  # pruned: never "best"
        row(2, value=0.9, compute=3.0, infeasible=True),  # over budget: never "best"
        row(3, "FAIL", compute=None),  # unmeasured compute adds nothing
        row(4, value=0.8, compute=4.0),
    ]
    assert _stats.anytime(rows, "maximize") == [(2.0, 0.5), (3.0, 0.5), (6.0, 0.5), (6.0, 0.5), (10.0, 0.8)]
    assert _stats.unmeasured(rows) == 1
    assert _stats.anytime(rows, "minimize")[-1] == (10.0, 0.5)


def test_compute_to_target_within_tolerance_and_not_reached():
    curve = [(1.0, None), (2.0, 0.80), (5.0, 0.896), (9.0, 0.91)]
    assert compute_to_target(curve, 0.90, 0.005, "maximize") == 5.0
    assert compute_to_target(curve, 0.90, 0.0, "maximize") == 9.0
    assert compute_to_target(curve, 0.95, 0.005, "maximize") is None  # not reached: no number
    assert compute_to_target(curve, None, 0.005, "maximize") is None  # no reference
    loss = [(1.0, 0.5), (3.0, 0.31), (4.0, 0.2)]
    assert compute_to_target(loss, 0.30, 0.01, "minimize") == 3.0


def test_saving_is_reference_over_policy_and_not_reached_is_never_a_number():
    assert saving(10.0, 2.0) == 5.0
    assert saving(10.0, None) == NOT_REACHED
    assert saving(None, 2.0) == NA
    assert saving(None, None) == NA


def test_savings_summary_ranks_not_reached_below_every_number():
    s = summarise_savings([5.0, NOT_REACHED, 3.0, NA, 7.0])
    assert (s.n, s.reached) == (4, 3)
    # ranked: not reached, 3, 5, 7 -> median between 3 and 5; q1 touches "not reached"
    assert s.median == pytest.approx(4.0)
    assert s.q1 == NOT_REACHED
    assert s.q3 == pytest.approx(5.5)
    assert "3/4 reached" in s.fmt()
    most_fail = summarise_savings([NOT_REACHED, NOT_REACHED, 2.0])
    assert most_fail.median == NOT_REACHED and most_fail.fmt().startswith(NOT_REACHED)
    assert summarise_savings([NA, NA]).fmt() == NA
    assert summarise_savings([2.0]).fmt() == "2.00x (1/1 reached)"


def test_spread_formats_a_not_reached_median():
    assert spread([1.0, math.inf, math.inf]).fmt().startswith(NOT_REACHED)


def _hand_quantile(sorted_xs: list[float], q: float) -> float:
    """The interpolation _stats used before numpy's: the reference the replacement must match."""
    pos = (len(sorted_xs) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = sorted_xs[lo], sorted_xs[hi]
    if lo == hi or a == b:
        return a
    return a + (b - a) * (pos - lo)


def test_quantile_is_the_hand_interpolation_it_replaced():
    """numpy's quantile gives what the hand-written one gave (to the last bits of a double, so the tables' 3 and 4
    significant digits are the same) on 2,000 seeded lists, and keeps the hand rules for infinities."""
    rng = random.Random(14)
    for _ in range(2000):
        xs = sorted(rng.uniform(0, 10 ** rng.randint(-3, 4)) for _ in range(rng.randint(1, 12)))
        for q in (0.25, 0.5, 0.75):
            new, old = _stats.quantile(xs, q), _hand_quantile(xs, q)
            assert new == pytest.approx(old, rel=1e-13), (xs, q)
            assert (fmt(new, 3), fmt(new, 4)) == (fmt(old, 3), fmt(old, 4))
    inf = math.inf
    assert [_stats.quantile([1.0, inf, inf], q) for q in (0.25, 0.5, 0.75)] == [inf, inf, inf]
    assert [_stats.quantile([1.0, 2.0, inf], q) for q in (0.25, 0.5, 0.75)] == [1.5, 2.0, inf]
    assert [_stats.quantile([-inf, 1.0, 3.0], q) for q in (0.25, 0.5, 0.75)] == [-inf, 1.0, 2.0]


def test_savings_summary_matches_the_hand_ranking_it_replaced():
    """The quartiles of savings, "not reached" ranked lowest, as the hand-written ranking computed them."""

    def hand(savings: list) -> tuple:
        usable = [s for s in savings if s != NA]
        reached = sorted(s for s in usable if not isinstance(s, str))
        ranked = [NOT_REACHED] * (len(usable) - len(reached)) + reached

        def q(p: float):
            pos = (len(ranked) - 1) * p
            lo, hi = math.floor(pos), math.ceil(pos)
            a, b = ranked[lo], ranked[hi]
            if isinstance(a, str) or isinstance(b, str):
                return NOT_REACHED
            return a if lo == hi else a + (b - a) * (pos - lo)

        return q(0.5), q(0.25), q(0.75)

    rng = random.Random(5)
    for _ in range(2000):
        savings = [rng.choice([NOT_REACHED, NA, rng.uniform(0.1, 20.0)]) for _ in range(rng.randint(1, 8))]
        if all(s == NA for s in savings):
            continue
        s = summarise_savings(savings)
        for new, old in zip((s.median, s.q1, s.q3), hand(savings)):
            assert new == old if isinstance(old, str) else new == pytest.approx(old, rel=1e-13), savings


def test_derived_budget_leaves_the_stated_share_within_it():
    from sysprune.analysis._results import derive_budget

    values = [float(v) for v in (123456, 234567, 345678, 456789, 567890, 678901, 789012, 890123, 901234, 912345)]
    b = derive_budget(values, 0.5)
    assert b == 568000.0  # the 5th smallest, rounded up to 3 significant digits
    assert sum(v <= b for v in values) == 5
    assert derive_budget([0.00123], 0.5) == 0.00123
    with pytest.raises(ValueError, match="no recorded values"):
        derive_budget([], 0.5)


def test_derived_budget_quantile_is_the_hand_index_it_replaced():
    """numpy's inverted-CDF quantile picks the value the hand-written index picked (the smallest with at least
    ``share`` of the values at or below it) for every share in steps of 0.001 and up to 120 values: no RQ2 budget
    can change."""
    import numpy as np

    rng = random.Random(3)
    for n in range(1, 121):
        xs = sorted(rng.uniform(0, 1000) for _ in range(n))
        for k in range(1001):
            share = k / 1000
            assert float(np.quantile(xs, share, method="inverted_cdf")) == xs[max(0, math.ceil(share * n) - 1)]
