"""The chapter's statistics on inputs whose answers are published (R's documented examples, Demšar 2006)."""

from __future__ import annotations

import math

import pytest

from sysprune.analysis import _inference as inf

# R: t.test(extra ~ group, data = sleep, paired = TRUE) -> t = -4.0621, df = 9, p = 0.002833,
# 95 % CI [-2.4598858, -0.7001142], mean difference -1.58.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]

# R: friedman.test(RoundingTimes) (Hollander & Wolfe) -> chi-squared 11.143, df 2, p 0.003805.
ROUNDING = [
    [5.40, 5.50, 5.55], [5.85, 5.70, 5.75], [5.20, 5.60, 5.50], [5.55, 5.50, 5.40], [5.90, 5.85, 5.70],
    [5.45, 5.55, 5.60], [5.40, 5.40, 5.35], [5.45, 5.50, 5.35], [5.25, 5.15, 5.00], [5.85, 5.80, 5.70],
    [5.25, 5.20, 5.10], [5.65, 5.55, 5.45], [5.60, 5.35, 5.45], [5.05, 5.00, 4.95], [5.50, 5.50, 5.40],
    [5.45, 5.55, 5.50], [5.55, 5.55, 5.35], [5.45, 5.50, 5.55], [5.50, 5.45, 5.25], [5.65, 5.60, 5.40],
    [5.70, 5.65, 5.55], [6.30, 6.30, 6.25],
]  # fmt: skip


def test_paired_difference_matches_r_sleep_example():
    e = inf.difference_ci([a - b for a, b in zip(SLEEP_1, SLEEP_2)])
    assert e.n == 10 and e.point == pytest.approx(-1.58)
    assert (e.lo, e.hi) == (pytest.approx(-2.4598858), pytest.approx(-0.7001142))
    assert e.p == pytest.approx(0.002833, abs=2e-6) and e.supported
    sd = math.sqrt(sum((a - b + 1.58) ** 2 for a, b in zip(SLEEP_1, SLEEP_2)) / 9)
    assert e.effect == pytest.approx(-1.58 / sd)


def test_ratio_is_tested_on_logs_and_mapped_back():
    ratios = [math.exp(a - b) for a, b in zip(SLEEP_1, SLEEP_2)]
    e = inf.ratio_ci(ratios)
    assert e.point == pytest.approx(math.exp(-1.58))
    assert (e.lo, e.hi) == (pytest.approx(math.exp(-2.4598858)), pytest.approx(math.exp(-0.7001142)))
    assert e.p == pytest.approx(0.002833, abs=2e-6)
    with pytest.raises(ValueError, match="positive finite"):
        inf.ratio_ci([1.0, math.inf])
    with pytest.raises(ValueError, match="positive finite"):
        inf.ratio_ci([0.0, 2.0])


def test_too_few_values_give_no_interval_and_no_test():
    assert inf.ratio_ci([]) == inf.Estimate(0, None)
    one = inf.ratio_ci([2.0])
    assert one.n == 1 and one.point == pytest.approx(2.0) and one.lo is None and one.p is None
    assert not one.supported
    same = inf.difference_ci([0.0, 0.0, 0.0])  # no variance, no effect: nothing to test
    assert (same.point, same.lo, same.hi, same.p) == (0.0, 0.0, 0.0, None)


def test_wilcoxon_exact_cannot_go_below_its_floor():
    assert inf.wilcoxon_p([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(0.0625)
    assert inf.wilcoxon_p([0.1, 0.2, 0.3]) == pytest.approx(0.25)
    assert inf.wilcoxon_p([0.0, 0.0]) is None
    # one negative difference of rank 2 among 6: W- = 2, P(W <= 2) = 3/64 (the subsets {}, {1}, {2}), two-sided 6/64
    assert inf.wilcoxon_p([1.0, -2.0, 3.0, 4.0, 5.0, 6.0]) == pytest.approx(6 / 64)


def test_clopper_pearson_matches_r_binom_test():
    zero = inf.proportion_ci(0, 21)  # R: binom.test(0, 21)$conf.int = [0, 0.1610976]
    assert zero.point == 0 and zero.lo == 0 and zero.hi == pytest.approx(0.1610976, abs=1e-7)
    e = inf.proportion_ci(682, 925)  # R: binom.test(682, 925)$conf.int = [0.7076683, 0.7654066]
    assert (e.lo, e.hi) == (pytest.approx(0.7076683, abs=1e-7), pytest.approx(0.7654066, abs=1e-7))
    assert inf.proportion_ci(0, 0).point is None


def test_holm_adjusts_step_down_and_keeps_non_tests():
    assert inf.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert inf.holm([None, 0.02, None]) == [None, pytest.approx(0.02), None]
    assert inf.holm([]) == []


def test_permutation_p_and_how_many_permutations_holm_needs():
    assert inf.permutation_p(0.9, [0.1, 0.2, 0.95]) == pytest.approx(2 / 4)
    assert inf.permutation_p(0.9, [0.1] * 99) == pytest.approx(0.01)
    b = inf.permutations_for(6)
    assert b == 239 and 1 / (b + 1) <= 0.05 / 12
    with pytest.raises(ValueError):
        inf.permutations_for(0)


def test_tolerance_from_the_binomial_standard_error():
    assert inf.binomial_se(0.97, 359) == pytest.approx(math.sqrt(0.97 * 0.03 / 359))
    assert inf.binomial_se(0.97, 359) == pytest.approx(0.0090, abs=1e-4)
    with pytest.raises(ValueError):
        inf.binomial_se(1.2, 10)


def test_seeds_for_a_ratio():
    # (z_.975 + z_.8) * 0.22 / ln 1.2 = 3.38 -> 11.4 -> 12, + 2 for the t distribution
    assert inf.seeds_for(0.22, 1.2) == 14
    assert inf.seeds_for(0.22, 2.0) < inf.seeds_for(0.22, 1.2)


def test_friedman_matches_r_rounding_times_and_demsar_cd():
    f = inf.friedman(ROUNDING, ["round out", "narrow angle", "wide angle"])
    assert f.chi2 == pytest.approx(11.143, abs=1e-3) and f.p == pytest.approx(0.003805, abs=1e-6)
    assert f.f == pytest.approx(21 * f.chi2 / (22 * 2 - f.chi2))
    # Demsar 2006, Table 5(a): q_0.05 = 2.343 for k = 3
    assert f.cd == pytest.approx(2.343 * math.sqrt(3 * 4 / (6 * 22)), abs=1e-3)
    assert sum(f.mean_ranks.values()) == pytest.approx(6.0)
    assert set(f.posthoc) == {
        ("round out", "narrow angle"),
        ("round out", "wide angle"),
        ("narrow angle", "wide angle"),
    }
    assert all(0 <= p <= 1 for p in f.posthoc.values())
    assert f.posthoc[("round out", "wide angle")] < 0.05  # wide angle is fastest (R's PMCMRplus agrees)


def test_not_reached_is_the_worst_rank_not_a_dropped_block():
    inf_ = math.inf
    r = inf.ranks([[1.0, inf_, 2.0], [inf_, inf_, 3.0]])
    assert r.tolist() == [[1.0, 3.0, 2.0], [2.5, 2.5, 1.0]]
    with pytest.raises(ValueError, match=">= 3 treatments"):
        inf.friedman([[1.0, 2.0], [2.0, 1.0]], ["a", "b"])


def test_all_blocks_tied_separate_no_pair():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # scikit-posthocs divides 0 by 0 here
        f = inf.friedman([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]], ["a", "b", "c"])
    assert set(f.mean_ranks.values()) == {2.0}
    assert f.posthoc == {("a", "b"): 1.0, ("a", "c"): 1.0, ("b", "c"): 1.0}
