"""RQ1's inference on hand-made studies: metric families, permutation p-values that find more than one driver, the
bootstrap interval, and how a family evolves over training."""

from __future__ import annotations

import random

import optuna
import pandas as pd
import pytest

from sysprune.analysis import _evolution
from sysprune.analysis._families import families, family, is_bound
from sysprune.analysis._importance import infer, sequential_p, spearman


def test_families_come_from_the_registry_units_with_the_budgeted_metric_first():
    present = ["wall_s", "cpu_s", "rss_mb", "peak_rss_delta_mb", "infer_ms", "infer_ms_lo", "infer_ms_hi",
               "n_params", "model_bytes", "model_mem_mb"]  # fmt: skip
    assert families(present) == {
        "time": ["cpu_s", "wall_s"],
        "memory": ["peak_rss_delta_mb", "rss_mb", "model_mem_mb"],
        "latency": ["infer_ms"],
        "size": ["model_bytes", "n_params"],
    }
    assert is_bound("infer_ms_hi") and not is_bound("infer_ms") and not is_bound("made_up_lo")
    assert family("energy_j") == "energy" and family("not_a_metric") == "not_a_metric"


def _trials(n: int, seed: int = 0) -> tuple[list[optuna.trial.FrozenTrial], list[float]]:
    """A target driven by two parameters (a strongly, b less) and not by c."""
    rng = random.Random(seed)
    dist = {k: optuna.distributions.FloatDistribution(0.0, 1.0) for k in "abc"}
    trials, values = [], []
    for _ in range(n):
        p = {k: rng.random() for k in "abc"}
        trials.append(optuna.trial.create_trial(params=p, distributions=dist, value=0.0))
        values.append(3 * p["a"] + 1.5 * p["b"] + rng.gauss(0, 0.1))
    return trials, values


def test_sequential_p_stops_at_h_exceedances_or_at_the_limit():
    assert sequential_p(iter([True] * 50), 100, h=10) == (1.0, 10)
    assert sequential_p(iter([False, True] * 50), 100, h=10) == (0.5, 20)
    assert sequential_p(iter([False] * 500), 99, h=10) == (0.01, 99)
    assert sequential_p(iter([True, False, False]), 99, h=10) == (0.5, 3)  # the draws ran out: (1 + 1) / (3 + 1)


def test_permutation_test_finds_both_drivers_and_not_the_null_parameter():
    trials, values = _trials(60)
    inf = infer(trials, values, permutations=39, bootstraps=20, jobs=1)
    assert inf.permutations == 39 and inf.bootstraps == 20 and inf.n == 60
    assert inf.p["a"] == pytest.approx(1 / 40) and inf.p["b"] == pytest.approx(1 / 40)  # above every null fit
    assert inf.p["c"] > 0.05
    assert inf.p_holm["a"] == pytest.approx(3 / 40) and inf.p_holm["c"] >= inf.p["c"]
    lo, hi = inf.ci["a"]
    assert lo <= inf.importance["a"] <= hi and inf.importance["a"] > inf.importance["b"] > inf.importance["c"]


def test_enough_permutations_by_default_for_holm_over_the_parameters():
    trials, values = _trials(40, seed=1)
    inf = infer(trials, values, bootstraps=0, jobs=2)
    assert inf.permutations == 89  # 1.5 x 3 parameters / 0.05 - 1
    assert inf.drivers() == ["a", "b"]  # both clear Holm's threshold: more than one driver can be found


def test_spearman_between_targets():
    assert spearman({1: 1.0, 2: 2.0, 3: 3.0}, {1: 10.0, 2: 20.0, 3: 35.0}) == pytest.approx(1.0)
    assert spearman({1: 1.0, 2: 2.0}, {1: 1.0, 2: 2.0}) is None


def _steps_df():
    rows = []
    for trial, width in ((0, 16), (1, 64), (2, 256), (3, 512)):
        cpu = 0.1
        rows.append({"trial_number": trial, "step": -1, "cpu_s": cpu, "rss_mb": 100.0})
        for step in range(4):
            cpu += 0.01 * width / 16  # flat per-step cost, larger for wider models
            rows.append({"trial_number": trial, "step": step, "cpu_s": cpu, "rss_mb": 100.0 + width / 16 * step})
    return pd.DataFrame(rows)


def test_per_step_cost_is_the_increase_since_the_previous_step():
    s = _evolution.step_values(_steps_df(), "cpu_s")
    assert s[0] == pytest.approx({0: 0.01, 1: 0.01, 2: 0.01, 3: 0.01})
    assert _evolution.growth(s)[3] == pytest.approx(1.0)


def test_memory_growth_and_its_association_with_the_driver():
    df = _steps_df()
    params = {n: {"width": w} for n, w in ((0, 16), (1, 64), (2, 256), (3, 512))}
    ev = _evolution.evolve(df, "memory", "rss_mb", params, "width")
    assert ev.growth.median == pytest.approx((1 + 3 * 64 / 16 / 100 + 1 + 3 * 256 / 16 / 100) / 2)
    assert ev.rho == pytest.approx(1.0)
    text = _evolution.sentence(ev)
    assert text.startswith("memory (rss_mb) grows over training") and "Spearman rho 1.00" in text
    flat = _evolution.evolve(df, "time", "cpu_s", params, "width")
    assert "stays flat" in _evolution.sentence(flat)
    fig = _evolution.figure([ev, flat], params, "t")
    assert len(fig.data) == 6  # three thirds of width per panel, each named by its panel in the legend
    assert {t.name for t in fig.data} == {
        f"{f}: width {r}" for f in ("memory", "time") for r in ("16-16", "64-64", "256-512")
    }
