"""The pure forecasting helpers, driven with hand-made step lists."""

from __future__ import annotations

import math

import pytest

from sysprune.pruners._forecast import (
    fit_curves,
    forecast_cumulative,
    forecast_level,
    points_of,
    predicted_final,
    probability_to_beat,
    t_quantile,
)


def test_points_of_drops_missing_and_nan_and_sorts() -> None:
    steps = {2: {"wall_s": 3.0}, 0: {"wall_s": 1.0}, 1: {"wall_s": None}, 3: {"wall_s": math.nan}, 4: {"cpu_s": 1.0}}
    assert points_of(steps, "wall_s") == [(0, 1.0), (2, 3.0)]
    assert points_of(steps, "energy_j") == []


# --- cumulative ---------------------------------------------------------------------------------------------------


def test_cumulative_needs_three_points() -> None:
    assert forecast_cumulative([], 9) is None
    assert forecast_cumulative([(0, 1.0), (1, 2.0)], 9) is None
    assert forecast_cumulative([(0, 1.0), (0, 1.5), (1, 2.0)], 9) is None  # a repeated step is one point


def test_cumulative_flat_cost_is_exact() -> None:
    f = forecast_cumulative([(0, 2.0), (1, 4.0), (2, 6.0)], 9)
    assert f is not None
    assert f.value == pytest.approx(20.0)
    assert f.low == pytest.approx(20.0)  # no noise, no doubt
    assert (f.final_step, f.n) == (9, 2)


def test_cumulative_ignores_a_slow_first_step() -> None:
    # Step 0 costs 5 (start-up + one step), every later step 1: the total at step 9 is 14, not 10 * 7/3.
    f = forecast_cumulative([(0, 5.0), (1, 6.0), (2, 7.0)], 9)
    assert f is not None
    assert f.value == pytest.approx(14.0)
    assert f.low == pytest.approx(14.0)


def test_cumulative_noise_widens_the_lower_bound() -> None:
    pts = [(0, 1.0), (1, 2.2), (2, 3.0), (3, 4.1)]  # rates 1.2, 0.8, 1.1
    f = forecast_cumulative(pts, 9, confidence=0.95)
    rates = [1.2, 0.8, 1.1]
    mean = sum(rates) / 3
    sd = math.sqrt(sum((r - mean) ** 2 for r in rates) / 2)
    assert f is not None
    assert f.value == pytest.approx(4.1 + 6 * mean)
    assert f.low == pytest.approx(4.1 + 6 * mean - t_quantile(0.95, 2) * sd * math.sqrt(6 + 36 / 3))
    f99 = forecast_cumulative(pts, 9, confidence=0.99)
    assert f99 is not None and f99.low < f.low < f.value


def test_cumulative_uses_gaps_between_recorded_steps() -> None:
    f = forecast_cumulative([(0, 0.0), (2, 4.0), (6, 12.0)], 10)
    assert f is not None and f.value == pytest.approx(20.0)


def test_cumulative_window_follows_recent_cost() -> None:
    pts = [(s, float(s)) for s in range(5)] + [(5 + s, 4.0 + 3.0 * (s + 1)) for s in range(5)]
    f = forecast_cumulative(pts, 19, window=5)
    assert f is not None and f.value == pytest.approx(19.0 + 3.0 * 10)


def test_cumulative_at_or_past_the_final_step_is_the_last_value() -> None:
    f = forecast_cumulative([(0, 1.0), (1, 2.0), (2, 3.5)], 2)
    assert f is not None and (f.value, f.low) == (3.5, 3.5)


# --- level --------------------------------------------------------------------------------------------------------


def test_level_needs_three_points() -> None:
    assert forecast_level([(0, 1.0), (1, 2.0)], 9) is None


def test_level_linear_trend_is_exact() -> None:
    f = forecast_level([(0, 100.0), (1, 110.0), (2, 120.0)], 9)
    assert f is not None and f.value == pytest.approx(190.0) and f.low == pytest.approx(190.0)


def test_level_flat_noisy_has_a_low_bound_below_the_value() -> None:
    f = forecast_level([(0, 4.0), (1, 4.4), (2, 3.8), (3, 4.2)], 19)
    assert f is not None
    assert f.low < 4.0 < f.value + 1.0


def test_level_uses_only_recent_points() -> None:
    # A jump at step 0 (allocation), then flat: with a window of 4 the jump is out of sight.
    pts = [(0, 100.0)] + [(s, 300.0) for s in range(1, 6)]
    f = forecast_level(pts, 19, window=4)
    assert f is not None and f.value == pytest.approx(300.0) and f.low == pytest.approx(300.0)


# --- learning curves ----------------------------------------------------------------------------------------------


def _pow_curve(n: int, c: float = 0.95, a: float = 0.5, alpha: float = 0.8) -> list[tuple[int, float]]:
    return [(s, c - a * (s + 1) ** -alpha) for s in range(n)]


def test_fit_curves_needs_three_points() -> None:
    assert fit_curves([(0, 0.1), (1, 0.2)], 9) == []


def test_fit_curves_leaves_out_families_with_too_few_points() -> None:
    fits = fit_curves([(0, 0.1), (1, 0.2), (2, 0.25)], 9)
    assert [f.family for f in fits] == ["log"]  # pow and exp have a shape parameter: they need four points
    assert fits[0].weight == pytest.approx(1.0)


def test_fit_curves_recovers_a_power_law() -> None:
    fits = fit_curves(_pow_curve(8), 99)
    pow_fit = next(f for f in fits if f.family == "pow")
    assert pow_fit.theta == pytest.approx(0.8, rel=0.06)  # the grid's resolution
    assert pow_fit.weight > 0.99
    assert predicted_final(fits) == pytest.approx(0.95 - 0.5 * 100**-0.8, abs=1e-3)
    assert sum(f.weight for f in fits) == pytest.approx(1.0)


def test_fit_curves_rejects_an_unknown_family() -> None:
    with pytest.raises(ValueError, match="unknown curve family 'spline'"):
        fit_curves(_pow_curve(5), 9, families=["spline"])


def test_a_straight_line_is_extrapolated_as_one() -> None:
    # exp with a small rate is a straight line: a learning curve still rising linearly is not bent down early.
    fits = fit_curves([(s, 0.3 + 0.03 * s) for s in range(6)], 19)
    assert predicted_final(fits) == pytest.approx(0.3 + 0.03 * 19, abs=0.01)


def test_few_points_give_an_uncertain_forecast() -> None:
    curve = [(s, 0.5 + 0.08 * (1 - 0.5**s)) for s in range(8)]  # flattening at 0.58
    p4 = probability_to_beat(fit_curves(curve[:4], 19), 0.7, maximize=True)
    p8 = probability_to_beat(fit_curves(curve, 19), 0.7, maximize=True)
    assert p8 < p4


def test_probability_to_beat_both_directions() -> None:
    fits = fit_curves([(s, v + (0.01 if s % 2 else -0.01)) for s, v in _pow_curve(8)], 19)
    final = predicted_final(fits)
    assert probability_to_beat(fits, final - 0.2, maximize=True) > 0.95
    assert probability_to_beat(fits, final + 0.2, maximize=True) < 0.05
    # Minimizing, "beat" means at or below the threshold.
    assert probability_to_beat(fits, final + 0.2, maximize=False) > 0.95
    assert probability_to_beat(fits, final - 0.2, maximize=False) < 0.05
    p_mid = probability_to_beat(fits, final, maximize=True)
    assert 0.2 < p_mid < 0.8


def test_probability_to_beat_an_exact_fit_is_a_point_mass() -> None:
    fits = fit_curves([(0, 1.0), (1, 2.0), (2, 1.0 + math.log2(3))], 9, families=["log"])
    # y = 1 + log2(x): exact, zero residual.
    assert fits[0].rss == pytest.approx(0.0, abs=1e-12)
    assert probability_to_beat(fits, 10.0, maximize=True) == 0.0
    assert probability_to_beat(fits, 1.0, maximize=True) == 1.0
