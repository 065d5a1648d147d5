from __future__ import annotations

import datetime
import math

import optuna
import pytest
from optuna.trial import create_trial

from sysprune._attrs import PRUNE_DETAIL, PRUNE_REASON
from sysprune.exceptions import InvalidArgument
from sysprune.pruners._step_api import report, should_prune
from sysprune.storage._step_table import load_step_metrics
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
    frozen = study.trials[0]
    assert _steps.steps_of(study, frozen) == {0: {"wall_s": 1.0, "cpu_s": 0.5}}
    _steps.clear()
    assert _steps.steps_of(study, frozen) == {0: {"wall_s": 1.0, "cpu_s": 0.5}}


@pytest.mark.parametrize(
    "step, match",
    [
        (-2, r"^report: step: value -2 is invalid; valid: an integer >= 0 or -1 \(the pre-training probe\)$"),
        (1.0, r"^report: step: value 1.0 is invalid"),
        (True, r"^report: step: value True is invalid"),
    ],
)
def test_report_rejects_steps(step, match: str) -> None:
    trial = optuna.create_study().ask()
    with pytest.raises(ValueError, match=match):
        report(trial, step, 0.5)


def test_pretraining_probe_is_step_minus_one_without_a_value(sqlite_url: str) -> None:
    study = optuna.create_study(storage=sqlite_url, study_name="s")
    trial = study.ask()
    with pytest.raises(
        ValueError,
        match=r"^report: value: value 0.5 is invalid; valid: None at step -1 \(the pre-training probe has no objective",
    ):
        report(trial, -1, 0.5, {"n_params": 10})
    report(trial, -1, None, {"n_params": 10, "model_bytes": 40})
    report(trial, 0, 0.5, {"n_params": 10, "wall_s": 1.0})
    study.tell(trial, 0.5)
    assert study.trials[0].intermediate_values == {0: 0.5}  # Optuna gets no value for the probe
    df = load_step_metrics(sqlite_url, "s")
    assert df["step"].tolist() == [-1, 0]
    assert df["n_params"].tolist() == [10.0, 10.0]
    assert df["model_bytes"].iloc[0] == 40.0 and math.isnan(df["model_bytes"].iloc[1])


def test_report_rejects_bad_input() -> None:
    study = optuna.create_study()
    trial = study.ask()
    cases = [
        (
            (study.trials[0], 0, 0.5),  # a FrozenTrial
            "trial: value of type FrozenTrial is invalid; valid: an optuna.Trial (the running trial)",
        ),
        (
            (trial, -2, 0.5),
            "step: value -2 is invalid; valid: an integer >= 0 or -1 (the pre-training probe)",
        ),
        (
            (trial, 0, None, [("wall_s", 1.0)]),
            "metrics: value [('wall_s', 1.0)] is invalid; valid: a table whose keys are metric names and values a "
            "number or None",
        ),
        ((trial, 0, None, {"wall_s": "fast"}), "metrics.wall_s: value 'fast' is invalid; valid: a number or None"),
        ((trial, 0, None, {"wall_s": True}), "metrics.wall_s: value True is invalid; valid: a number or None"),
        ((trial, 0, None, {"": 1.0}), "metrics: metric name '' is invalid; valid: a non-empty string of at most 64 "),
    ]
    for args, message in cases:
        with pytest.raises(InvalidArgument) as e:
            report(*args)
        assert str(e.value).startswith(f"report: {message}"), str(e.value)
        assert isinstance(e.value, TypeError) and isinstance(e.value, ValueError)
    assert study.trials[0].intermediate_values == {}  # nothing was reported


def test_should_prune_records_a_reason_for_optuna_pruners() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=1))
    study.add_trial(create_trial(value=0.9, intermediate_values={0: 0.9}))
    trial = study.ask()
    report(trial, 0, 0.1)
    assert should_prune(trial)
    attrs = trial.user_attrs
    assert attrs[PRUNE_REASON] == "MedianPruner: intermediate value 0.1 at step 0 is not promising"
    assert attrs[PRUNE_DETAIL]["rule"] == "intermediate"
    assert attrs[PRUNE_DETAIL]["pruner"] == "MedianPruner"


def test_should_prune_false_writes_nothing() -> None:
    study = optuna.create_study()
    trial = study.ask()
    report(trial, 0, 0.1)
    assert not should_prune(trial)
    study.tell(trial, 0.1)
    assert study.trials[0].user_attrs == {} and study.trials[0].constraints == {}


def test_prune_itself_writes_nothing() -> None:
    """Optuna's contract: BasePruner.prune answers and leaves the trial alone; only should_prune records."""
    from sysprune.pruners import ResourceBudgetPruner

    study = optuna.create_study(pruner=ResourceBudgetPruner({"model_bytes": 1.0}, max_steps=3))
    trial = study.ask()
    report(trial, 0, 0.5, {"model_bytes": 2.0})
    assert trial.should_prune()  # Optuna's own call: the pruner says yes...
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    frozen = study.trials[0]
    assert PRUNE_REASON not in frozen.user_attrs and frozen.constraints == {}  # ...and writes nothing


def _budget_steps(pruner, sizes, values):
    """An ask/report/should_prune/tell study of two trials: one within budget, then the given one."""
    study = optuna.create_study(direction="minimize", pruner=pruner)
    for size_row, value_row in ((([10.0] * len(sizes)), [1.0] * len(values)), (sizes, values)):
        trial = study.ask()
        pruned = False
        for step, (size, value) in enumerate(zip(size_row, value_row)):
            report(trial, step, value, {"model_bytes": size})
            if should_prune(trial):
                pruned = True
                break
        study.tell(
            trial, value_row[-1] if not pruned else None, state=optuna.trial.TrialState.PRUNED if pruned else None
        )
    return study.trials[-1]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_patient_wrapper_leaves_no_trace_on_a_trial_it_lets_go_on() -> None:
    """PatientPruner(ResourceBudgetPruner): the budget pruner says prune at every step (model_bytes over budget),
    but the wrapper asks it only once the value has stopped improving for `patience` steps; it never does here."""
    from sysprune.pruners import ResourceBudgetPruner

    inner = ResourceBudgetPruner({"model_bytes": 100.0}, max_steps=4)
    trial = _budget_steps(optuna.pruners.PatientPruner(inner, patience=5), [500.0] * 4, [4.0, 3.0, 2.0, 1.0])
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert PRUNE_REASON not in trial.user_attrs and PRUNE_DETAIL not in trial.user_attrs
    assert not any(v > 0 for v in trial.constraints.values())


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_patient_wrapper_asked_through_optuna_writes_nothing() -> None:
    """The wrapper does ask the budget pruner (the value got worse) and says prune; an objective that only peeks
    through Optuna's own Trial.should_prune and completes leaves a clean COMPLETE trial."""
    from sysprune.pruners import ResourceBudgetPruner

    inner = ResourceBudgetPruner({"model_bytes": 100.0}, max_steps=3)
    study = optuna.create_study(pruner=optuna.pruners.PatientPruner(inner, patience=0))
    trial = study.ask()
    said = []
    for step, value in enumerate([1.0, 2.0, 2.0]):
        report(trial, step, value, {"model_bytes": 500.0})
        said.append(trial.should_prune())
    study.tell(trial, 2.0)
    assert said == [False, True, True]
    frozen = study.trials[0]
    assert frozen.state == optuna.trial.TrialState.COMPLETE
    assert PRUNE_REASON not in frozen.user_attrs and frozen.constraints == {}


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_patient_wrapper_records_the_budget_decision_when_it_prunes() -> None:
    from sysprune.pruners import ResourceBudgetPruner

    inner = ResourceBudgetPruner({"model_bytes": 100.0}, max_steps=4)
    trial = _budget_steps(optuna.pruners.PatientPruner(inner, patience=0), [500.0] * 4, [1.0, 2.0, 2.0, 2.0])
    assert trial.state == optuna.trial.TrialState.PRUNED and trial.last_step == 1  # worse at step 1
    assert trial.user_attrs[PRUNE_REASON] == "budget: model_bytes measured 500 B > budget 100 B at step 0"
    assert trial.user_attrs[PRUNE_DETAIL]["pruner"] == "ResourceBudgetPruner"
    assert trial.constraints == {"budget:model_bytes": 400.0}


def test_combined_with_optuna_threshold_leaves_no_trace_on_a_trial_it_lets_go_on() -> None:
    from sysprune.pruners import CombinedPruner, ResourceBudgetPruner

    pruner = CombinedPruner(
        ResourceBudgetPruner({"model_bytes": 1000.0}, max_steps=4), optuna.pruners.ThresholdPruner(upper=10.0)
    )
    trial = _budget_steps(pruner, [500.0] * 4, [4.0, 3.0, 2.0, 1.0])
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert PRUNE_REASON not in trial.user_attrs and PRUNE_DETAIL not in trial.user_attrs
    assert not any(v > 0 for v in trial.constraints.values())


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_combined_relays_a_wrapped_members_decision() -> None:
    from sysprune.pruners import CombinedPruner, ResourceBudgetPruner

    patient = optuna.pruners.PatientPruner(ResourceBudgetPruner({"model_bytes": 100.0}, max_steps=4), patience=0)
    pruner = CombinedPruner(optuna.pruners.ThresholdPruner(upper=10.0), patient)
    trial = _budget_steps(pruner, [500.0] * 4, [1.0, 2.0, 2.0, 2.0])
    assert trial.user_attrs[PRUNE_REASON] == (
        "CombinedPruner member 1: budget: model_bytes measured 500 B > budget 100 B at step 0"
    )
    assert trial.constraints == {"budget:model_bytes": 400.0}


def test_should_prune_works_in_a_multi_objective_study() -> None:
    study = optuna.create_study(directions=["maximize", "minimize"], pruner=optuna.pruners.MedianPruner())
    study.add_trial(create_trial(values=[0.9, 1.0]))
    trial = study.ask()
    report(trial, 0, None, {"val_accuracy": 0.1, "infer_ms": 1.0})
    assert not should_prune(trial)


def test_should_prune_rejects_a_frozen_trial() -> None:
    study = optuna.create_study()
    study.ask()
    with pytest.raises(
        TypeError, match=r"^should_prune: trial: value of type FrozenTrial is invalid; valid: an optuna"
    ):
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

    study = optuna.create_study(pruner=ResourceBudgetPruner({"model_bytes": 1.0}, max_steps=3))
    trial = study.ask()
    report(trial, 0, 0.5, {"model_bytes": 2.0})
    assert should_prune(trial)
    assert trial.user_attrs[PRUNE_REASON] == "budget: model_bytes measured 2 B > budget 1 B at step 0"
    assert trial.user_attrs[PRUNE_DETAIL]["metric"] == "model_bytes"
