from __future__ import annotations

import datetime
import math

import optuna
import pytest
from optuna.trial import create_trial

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON
from sysprune._report import report, should_prune
from sysprune._store import load_step_metrics
from sysprune.pruners import _steps


def test_report_stores_metrics_and_the_objective(sqlite_url: str) -> None:
    study = optuna.create_study(storage=sqlite_url, study_name="s")
    trial = study.ask()
    report(trial, 0, 0.25, {"wall_s": 1.5, "energy_j": None, "infer_ms": math.nan, "my_metric": 7})
    report(trial, 1, 0.5, {"wall_s": 3.0})
    df = load_step_metrics(sqlite_url, "s")
    assert df["step"].tolist() == [0, 1]
    assert df["wall_s"].tolist() == [1.5, 3.0]
    assert math.isnan(df.loc[0, "energy_j"]) and math.isnan(df.loc[0, "infer_ms"])  # missing, not zero
    assert df.loc[0, "my_metric"] == 7.0
    assert study.trials[0].intermediate_values == {0: 0.25, 1: 0.5}


def test_report_without_value_or_metrics() -> None:
    study = optuna.create_study()
    trial = study.ask()
    report(trial, 0)
    report(trial, 1, metrics={"wall_s": 1.0})
    assert study.trials[0].intermediate_values == {}


def test_report_keeps_the_first_value_of_a_step(sqlite_url: str) -> None:
    study = optuna.create_study(storage=sqlite_url, study_name="s")
    trial = study.ask()
    report(trial, 0, None, {"wall_s": 1.0})
    report(trial, 0, None, {"wall_s": 2.0, "cpu_s": 0.5})
    assert _steps.trial_steps(study._storage, trial._trial_id, trial.datetime_start) == {
        0: {"wall_s": 1.0, "cpu_s": 0.5}
    }
    _steps.clear()
    assert _steps.trial_steps(study._storage, trial._trial_id, trial.datetime_start) == {
        0: {"wall_s": 1.0, "cpu_s": 0.5}
    }


@pytest.mark.parametrize(
    "step, match",
    [(-2, r"step must be an integer >= 0, or -1 for the pre-training probe, but got step=-2"), (1.0, "step=1.0"),
     (True, "step=True"), (-1, r"value must be None at the pre-training probe \(step -1\)")],  # fmt: skip
)
def test_report_rejects_steps(step, match: str) -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match=match):
        report(trial, step, 0.5)


def test_report_rejects_bad_input() -> None:
    study = optuna.create_study()
    trial = study.ask()
    with pytest.raises(TypeError, match="trial must be an optuna.Trial"):
        report(study.trials[0], 0, 0.5)  # a FrozenTrial
    with pytest.raises(TypeError, match=r"metrics must be a mapping"):
        report(trial, 0, None, [("wall_s", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"metrics\['wall_s'\] must be a number or None, but got 'fast'"):
        report(trial, 0, None, {"wall_s": "fast"})
    with pytest.raises(TypeError, match=r"metrics\['wall_s'\] must be a number or None, but got True"):
        report(trial, 0, None, {"wall_s": True})
    with pytest.raises(ValueError, match=r"metric names must be non-empty strings"):
        report(trial, 0, None, {"": 1.0})
    assert study.trials[0].intermediate_values == {}  # nothing was reported


def test_should_prune_records_a_reason_for_optuna_pruners() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    study.add_trial(create_trial(value=0.9, intermediate_values={0: 0.9}))
    trial = study.ask()
    report(trial, 0, 0.1)
    assert should_prune(trial)
    attrs = study._storage.get_trial_user_attrs(trial._trial_id)
    assert attrs[PRUNE_REASON] == "MedianPruner: intermediate value 0.1 at step 0 is not promising"
    assert attrs[PRUNE_DETAIL]["rule"] == "intermediate"
    assert attrs[PRUNE_DETAIL]["pruner"] == "MedianPruner"


def test_should_prune_false_writes_nothing() -> None:
    study = optuna.create_study()
    trial = study.ask()
    report(trial, 0, 0.1)
    assert not should_prune(trial)
    assert study._storage.get_trial_user_attrs(trial._trial_id) == {}


def test_should_prune_works_in_a_multi_objective_study() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"], pruner=optuna.pruners.MedianPruner())
    study.add_trial(create_trial(values=[0.9, 1.0]))
    trial = study.ask()
    report(trial, 0, None, {"val_accuracy": 0.1, "infer_ms": 1.0})
    assert not should_prune(trial)


def test_should_prune_rejects_a_frozen_trial() -> None:
    study = optuna.create_study()
    study.ask()
    with pytest.raises(TypeError, match="trial must be an optuna.Trial"):
        should_prune(study.trials[0])  # type: ignore[arg-type]


def test_step_cache_is_bound_to_the_trial_start() -> None:
    # SQLite reuses trial ids after optuna.delete_study: a new trial with an old id must not see old steps.
    storage = optuna.storages.InMemoryStorage()
    start = datetime.datetime(2026, 1, 1)
    _steps.remember(storage, 7, start, 0, {"wall_s": 1.0})
    assert _steps.cached_steps(storage, 7, start) == {0: {"wall_s": 1.0}}
    assert _steps.cached_steps(storage, 7, start + datetime.timedelta(seconds=1)) is None
    _steps.remember(storage, 7, start + datetime.timedelta(seconds=1), 0, {"wall_s": 5.0})
    assert _steps.cached_steps(storage, 7, start + datetime.timedelta(seconds=1)) == {0: {"wall_s": 5.0}}
    _steps.forget(storage, 7)
    assert _steps.cached_steps(storage, 7, start + datetime.timedelta(seconds=1)) is None


def test_step_cache_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(_steps, "MAX_TRIALS", 3)
    storage = optuna.storages.InMemoryStorage()
    for trial_id in range(5):
        _steps.remember(storage, trial_id, None, 0, {"wall_s": 1.0})
    assert [_steps.cached_steps(storage, i, None) is not None for i in range(5)] == [False, False, True, True, True]


def test_the_trial_object_shows_the_reason_after_should_prune() -> None:
    from sysprune.pruners import ResourceBudgetPruner

    study = optuna.create_study(pruner=ResourceBudgetPruner({"infer_ms": 1.0}, max_steps=3))
    trial = study.ask()
    report(trial, 0, 0.5, {"infer_ms": 2.0})
    assert should_prune(trial)
    assert trial.user_attrs[PRUNE_REASON] == "budget: infer_ms measured 2 ms > budget 1 ms at step 0"
    assert trial.user_attrs[PRUNE_DETAIL]["metric"] == "infer_ms"
