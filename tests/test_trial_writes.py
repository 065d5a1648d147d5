"""What a trial costs the worker in transactions: step -1's row goes with step 0's, the last step's row, value and
the trial's user attrs go in one transaction (sysprune.pruners._step_api.hold / report_held / store_held and the
runner's Objective) — and no row is lost when a trial ends another way between them (a death in step 0)."""

from __future__ import annotations

import uuid

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from sysprune import _compat, load_step_metrics
from sysprune.pruners import _steps
from sysprune.pruners._step_api import hold, report_held, store_held
from sysprune.spec import parse_spec
from sysprune.study._runner import run_study
from tests._workers_util import Transactions


def test_held_rows_and_attrs_go_with_the_next_step_in_one_transaction(rdb_url):
    name = f"w-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=rdb_url, study_name=name)
    first = study.ask()
    report_held(first, 0, 0.1, {"cpu_s": 0.5})  # the step table exists from now on (created at its first write)
    study.tell(first, 0.1)
    t = study.ask()
    with Transactions() as tx:
        held = hold(t, -1, {"n_params": 7.0, "wall_s": float("nan")})
    assert tx.taken == []  # nothing stored ...
    storage = _compat.study_storage(study)
    assert _steps.cached_steps(storage, _compat.trial_id(t), t.datetime_start) == {
        -1: {"n_params": 7.0, "wall_s": None}
    }
    with Transactions() as tx:  # ... until the next step: its rows, its value, the held rows, the attrs
        report_held(t, 0, 0.5, {"cpu_s": 1.0}, held=held, user_attrs={"process_cpu_s": 0.25, "note": "x"})
    assert len(tx.taken) == 1
    assert t.user_attrs == {"process_cpu_s": 0.25, "note": "x"}
    study.tell(t, 0.5)
    stored = optuna.load_study(study_name=name, storage=rdb_url).trials[1]
    assert stored.intermediate_values == {0: 0.5} and stored.user_attrs == {"process_cpu_s": 0.25, "note": "x"}
    df = load_step_metrics(rdb_url, name).query("trial_number == 1").set_index("step")
    assert df.index.tolist() == [-1, 0] and df.n_params[-1] == 7.0 and pd.isna(df.wall_s[-1])
    assert df.cpu_s[0] == 1.0


def test_held_rows_of_a_trial_that_ends_first_are_stored_and_a_finished_trial_refuses_them(rdb_url):
    name = f"w-{uuid.uuid4().hex[:8]}"
    study = optuna.create_study(storage=rdb_url, study_name=name)
    t = study.ask()
    store_held(t, hold(t, -1, {"n_params": 3.0}))
    held = hold(t, 0, {"cpu_s": 2.0})
    study.tell(t, state=TrialState.PRUNED)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        report_held(t, 1, 0.1, {"cpu_s": 3.0}, held=held, user_attrs={"late": 1})
    assert load_step_metrics(rdb_url, name).step.tolist() == [-1]  # nothing of the refused write
    assert "late" not in optuna.load_study(study_name=name, storage=rdb_url).trials[0].user_attrs


def test_other_storages_get_the_same_rows_and_attrs():
    study = optuna.create_study()  # in memory: rows as trial system attrs, attrs by set_user_attr
    t = study.ask()
    held = hold(t, -1, {"n_params": 5.0})
    report_held(t, 0, 0.25, {"cpu_s": 1.0}, held=held, user_attrs={"process_cpu_s": 0.5})
    study.tell(t, 0.25)
    frozen = study.trials[0]
    assert frozen.intermediate_values == {0: 0.25} and frozen.user_attrs == {"process_cpu_s": 0.5}
    df = load_step_metrics(study)
    assert df.step.tolist() == [-1, 0] and df.n_params.tolist()[0] == 5.0


def _faults_spec(name: str, steps: int, **params) -> object:
    return parse_spec(
        {
            "name": name,
            "model": "tests.workloads.faults",
            "steps": steps,
            "n_trials": 1,
            "seed": 0,
            "dataset": {"name": "digits"},
            "sampler": {"name": "random"},
            "search_space": {"steps": steps, **params},
            "trial": {"infer_repeats": 1, "infer_batch_size": 16},
        }
    )


def test_a_completed_trial_writes_its_last_step_and_attrs_together_and_step_minus_1_with_step_0(sqlite_url, cache_dir):
    with Transactions() as tx:
        run_study(_faults_spec("done", 3), storage_url=sqlite_url, cache_dir=str(cache_dir))
    trial = optuna.load_study(study_name="done", storage=sqlite_url).trials[0]
    assert trial.state == TrialState.COMPLETE
    assert {"process_cpu_s", "process_wall_s", "worker_cpu_s", "cpu_s"} <= trial.user_attrs.keys()
    df = load_step_metrics(sqlite_url, "done")
    assert df.step.tolist() == [-1, 0, 1, 2] and df.cpu_s.notna().all()
    steps = tx.inserting("sysprune_step_metrics")
    attrs = tx.inserting("trial_user_attributes")
    # the claim (its worker record), then one write: the last step's rows, value and the trial's attrs
    assert len(attrs) == 2 and attrs[1] is steps[-1]
    assert any(s.startswith("INSERT INTO trial_intermediate_values") for s in attrs[1])
    assert len(steps) == 3  # steps -1 and 0 together, step 1, step 2 with the attrs


def test_a_trial_that_dies_in_step_0_keeps_its_step_minus_1_row(sqlite_url, cache_dir):
    run_study(_faults_spec("dies", 2, crash="exit", crash_at=0), storage_url=sqlite_url, cache_dir=str(cache_dir))
    trial = optuna.load_study(study_name="dies", storage=sqlite_url).trials[0]
    assert trial.state == TrialState.FAIL and "step 0" in trial.user_attrs["error"]
    assert "process_cpu_s" in trial.user_attrs and "worker_cpu_s" in trial.user_attrs
    df = load_step_metrics(sqlite_url, "dies")
    assert df.step.tolist() == [-1] and df.cpu_s.notna().all()


def test_a_trial_whose_pruner_fails_at_step_minus_1_keeps_its_row(sqlite_url, cache_dir, monkeypatch):
    """An unforeseen exception after step -1 was held (here the pruner's own bug) still stores the row."""
    from sysprune.study import _objective

    def broken(trial):
        raise RuntimeError("a pruner's bug")

    monkeypatch.setattr(_objective, "should_prune", broken)
    with pytest.raises(RuntimeError, match="a pruner's bug"):
        run_study(_faults_spec("bug", 2), storage_url=sqlite_url, cache_dir=str(cache_dir))
    trial = optuna.load_study(study_name="bug", storage=sqlite_url).trials[0]
    assert trial.state == TrialState.FAIL and trial.user_attrs["error"] == "RuntimeError: a pruner's bug"
    assert load_step_metrics(sqlite_url, "bug").step.tolist() == [-1]
