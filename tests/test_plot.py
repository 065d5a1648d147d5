"""``sysprune.plot_*``: the dashboard's and the analyses' figures as plotly figures, built from stored studies."""

from __future__ import annotations

import datetime
import math

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

import sysprune
from sysprune._attrs import HIDDEN_CONSTRAINTS, PROCESS_CPU, PRUNE_DETAIL, PRUNE_REASON, STUDY_BUDGETS, STUDY_STEPS
from sysprune.analysis._compare import compare_study_name
from sysprune.storage._step_table import MetricStore
from tests._optuna import trial_id

BUDGET = 5000.0
T0 = datetime.datetime(2026, 1, 1, 12, 0, 0)


def _study(url: str, name: str, n: int = 12) -> optuna.Study:
    """``n`` trials of width w: n_params 10 w (step -1 and the last), cpu_s per step, val_accuracy rising; the
    widest over the budget, pruned at step -1."""
    study = optuna.create_study(storage=url, study_name=name, direction="maximize")
    study.set_user_attr(STUDY_BUDGETS, {"n_params": BUDGET})
    study.set_user_attr(STUDY_STEPS, 3)
    store = MetricStore(url)
    for i in range(n):
        width, lr = 50 * (i + 1), 0.001 * (i + 1)
        over = 10 * width > BUDGET
        steps = [-1] if over else [-1, 0, 1, 2]
        frozen = create_trial(
            state=TrialState.PRUNED if over else TrialState.COMPLETE,
            value=None if over else 0.5 + 0.03 * i,
            params={"width": width, "lr": lr},
            distributions={"width": IntDistribution(1, 10_000), "lr": FloatDistribution(1e-4, 1.0)},
            intermediate_values={} if over else {s: 0.5 + 0.01 * i * (s + 1) for s in (0, 1, 2)},
            user_attrs={
                PROCESS_CPU: 0.1 if over else 1.0 + 0.1 * i,
                HIDDEN_CONSTRAINTS: {"n_params": 10 * width - BUDGET},
                "n_params": 10.0 * width,
                **(
                    {PRUNE_REASON: "budget: n_params over", PRUNE_DETAIL: {"rule": "budget", "metric": "n_params"}}
                    if over
                    else {}
                ),
            },
        )
        frozen.datetime_start = T0 + datetime.timedelta(seconds=10 * i)
        frozen.datetime_complete = T0 + datetime.timedelta(seconds=10 * i + 5)
        study.add_trial(frozen)
        t = study.trials[-1]
        for s in steps:
            structural = s in (-1, 2)
            metrics = {"cpu_s": 0.3 * (s + 2), "val_accuracy": None if s < 0 else 0.5 + 0.01 * i * (s + 1)}
            if structural:
                metrics.update(n_params=10.0 * width, model_bytes=40.0 * width + 7 * lr)
            store.write_step(study_name=name, trial_id=trial_id(t), trial_number=t.number, step=s, metrics=metrics)
    return study


@pytest.fixture
def study(tmp_path):
    return _study(f"sqlite:///{tmp_path / 'p.db'}", "p")


def test_step_metric_draws_a_structural_metric_for_every_trial(study):
    fig = sysprune.plot_step_metric(study, "n_params")
    per_trial = {d.name: d for d in fig.data if d.name and d.name.startswith("trial ")}
    assert set(per_trial) == {f"trial {t.number}" for t in study.trials}  # the pruned ones too, at step -1
    assert all("markers" in d.mode and all(y is not None for y in d.y) for d in per_trial.values())
    assert list(per_trial["trial 11"].y) == [6000.0] and per_trial["trial 11"].x0 == -1  # pruned before training
    (budget,) = [d for d in fig.data if d.name == "budget 5000"]
    assert set(budget.y) == {BUDGET}


def test_what_fits_has_every_trial_and_the_budget_line(study):
    fig = sysprune.plot_what_fits(study, "n_params")
    xs = [x for d in fig.data if d.mode and "markers" in d.mode for x in (d.x or ())]
    assert sorted(xs) == sorted(10.0 * 50 * (i + 1) for i in range(12))
    budget = [d for d in fig.data if d.name and d.name.startswith("budget")]
    assert budget and BUDGET in list(budget[0].x)
    assert fig.layout.xaxis.type == "log"
    assert len({d.marker.symbol for d in fig.data if d.marker and d.marker.symbol}) >= 2  # feasible vs pruned


def test_compute_shows_what_each_state_spent(study):
    fig = sysprune.plot_compute(study)
    finals = {d.name.split(" (")[0]: d.y[-1] for d in fig.data if d.y is not None and len(d.y)}
    complete = sum(1.0 + 0.1 * i for i in range(10))
    assert any(math.isclose(v, complete) for v in finals.values()), finals


def test_nothing_to_draw_is_a_value_error_naming_it(study):
    with pytest.raises(ValueError, match="no finished trial of study 'p' measured 'energy_j'"):
        sysprune.plot_step_metric(study, "energy_j")


def test_importances_is_the_report_heatmap(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _study(url, "r", n=16)
    fig = sysprune.plot_importances(url, "r", n_permutations=2)
    heat = fig.data[0]
    assert heat.type == "heatmap" and set(heat.x) == {"lr", "width"} and len(heat.y) >= 1


def test_anytime_is_the_compare_figure(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    spec = sysprune.load_spec("studies/rq2_size_mlp_digits.toml")
    for policy in ("none", "budget"):
        _study(url, compare_study_name(spec.name, policy, spec.seed), n=6)
    fig = sysprune.plot_anytime("studies/rq2_size_mlp_digits.toml", storage_url=url, policies="none,budget", seeds=1)
    names = " ".join(d.name or "" for d in fig.data)
    assert "none" in names and "budget" in names
    assert any(d.y is not None and len(d.y) for d in fig.data)
